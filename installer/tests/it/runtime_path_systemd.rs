//! A real Mosaic host's default command under a real systemd user manager
//! (inside `cargo xtask sandbox`): a roster without `command:` runs
//! `mosaic yolo <runtime> --model <hint>`, and the `mosaic` that
//! `npm i -g` put in `~/.npm-global/bin` — off the user manager's PATH
//! (Mosaic #581) — is found, with the agent's name, runtime, class, model
//! and socket in its environment. Without any `mosaic` the start fails at
//! once, naming the command and the PATH searched. Root only: skipped with
//! a reason otherwise, failing under CI=true.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use mosaic_tests::fixtures_dir;
use mosaic_tests::live::{agent_unit, wait_until};
use mosaic_tests::sandbox::inside_systemd_sandbox;

const AGENT: &str = "scout";
const COMMAND: &str = "mosaic yolo claude --model opus-4";
const PATIENCE: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join("mosaic-host").join(name)
}

fn roster() -> String {
    fixture("roster.yaml").display().to_string()
}

fn mosaic_fleet(args: &[&str]) -> Output {
    Command::new(crate::support::PRODUCT.fleet)
        .args(args)
        .output()
        .expect("run mosaic-fleet")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_default_command_finds_mosaic_in_the_npm_prefix() {
    if !inside_systemd_sandbox(
        module_path!(),
        "the_default_command_finds_mosaic_in_the_npm_prefix",
    ) {
        return;
    }
    let fleet = crate::support::sandbox_fleet();
    let npm_bin = fleet.home.join(".npm-global/bin");
    std::fs::create_dir_all(&npm_bin).unwrap();
    std::fs::copy(
        mosaic_tests::stand_ins_dir().join("mosaic.sh"),
        npm_bin.join("mosaic"),
    )
    .unwrap();
    let manager = fleet.systemctl_ok(&["show-environment"]);
    assert!(!manager.contains(".npm-global"), "the premise: {manager}");

    let report = fleet.install_ok(&["--profile", &roster(), "--start"]);

    assert_eq!(report["systemd"]["rollout"]["ok"], true, "{report:#}");
    let argv = fleet.home.join("mosaic-argv.rec");
    assert!(wait_until(PATIENCE, || argv.is_file()), "mosaic never ran");
    assert_eq!(lines(&argv), ["yolo", "claude", "--model", "opus-4"]);
    let env = lines(&fleet.home.join("mosaic-env.rec"));
    for expected in [
        "MOSAIC_AGENT_NAME=scout",
        "MOSAIC_AGENT_RUNTIME=claude",
        "MOSAIC_AGENT_CLASS=reviewer",
        "MOSAIC_AGENT_MODEL=opus-4",
        "MOSAIC_TMUX_SOCKET=mosaic-fleet",
    ] {
        assert!(
            env.iter().any(|l| l == expected),
            "no {expected} in {env:#?}"
        );
    }
    let path = format!("PATH={}:", npm_bin.display());
    assert!(env.iter().any(|l| l.starts_with(&path)), "{env:#?}");

    // fleet verify shows where the program was found, and on which PATH.
    let verify = mosaic_fleet(&["fleet", "verify"]);
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{text}");
    let found = format!(
        "ok    agent scout finds `mosaic` on its PATH: {}/mosaic (PATH {}:/usr/local/sbin:",
        npm_bin.display(),
        npm_bin.display()
    );
    assert!(text.contains(&found), "{text}");
}

#[test]
fn without_mosaic_the_start_fails_naming_the_command_and_the_path() {
    if !inside_systemd_sandbox(
        module_path!(),
        "without_mosaic_the_start_fails_naming_the_command_and_the_path",
    ) {
        return;
    }
    let fleet = crate::support::sandbox_fleet();
    let dropin = fleet
        .home
        .join(".config/systemd/user/mosaic-agent@.service.d/capture-stderr.conf");
    std::fs::create_dir_all(dropin.parent().unwrap()).unwrap();
    std::fs::copy(fixture("capture-stderr.conf"), &dropin).unwrap();

    let (output, report) = fleet.install(&["--profile", &roster(), "--start"]).unwrap();

    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let steps = report["systemd"]["rollout"]["steps"].as_array().unwrap();
    let canary = &steps[1];
    assert_eq!(canary["step"], "canary scout");
    assert_eq!(canary["ok"], false);
    let detail = canary["detail"].as_str().unwrap();
    let searched = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert!(
        detail.contains(&format!(
            "agent scout: `mosaic` (from `{COMMAND}`) is not on its PATH {searched}"
        )),
        "{detail}"
    );
    // The unit's start itself failed, saying the same (its journal, here a file).
    let stderr = std::fs::read_to_string(fleet.home.join("scout.stderr")).unwrap();
    assert!(
        stderr.contains(&format!(
            "agent 'scout' cannot start: its command '{COMMAND}' runs 'mosaic', which is not on the pane's PATH ("
        )),
        "{stderr}"
    );
    let start = fleet.systemctl_output(&["start", &agent_unit(AGENT)]);
    assert!(!start.status.success(), "a second start fails the same way");
    let start = fleet.property(&agent_unit(AGENT), "ExecStart");
    assert!(
        start.contains("status=5 "),
        "exit 5, the script's not-found: {start}"
    );
    assert!(fleet.session(AGENT).is_none(), "no session was created");
}
