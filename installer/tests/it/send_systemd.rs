//! Delivery right after a real systemd unit (re)starts an agent (inside
//! `cargo xtask sandbox`): `agent start`, `agent restart` and `agent reset`'s
//! kick-start, to a TUI that takes seconds to read keys (ready by its
//! runtime's `ready_pattern`) and to one that also throws away what was
//! typed while it loaded (ready by the fallback rule). Every message must
//! arrive once, whole, as one submission, after the program is ready.
//! Root only: skipped with a reason otherwise, failing under CI=true.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::KICK_START;
use mosaic_tests::fixtures_dir;
use mosaic_tests::live::{wait_until, HOLDER};
use mosaic_tests::sandbox::inside_systemd_sandbox;
use mosaic_tests::short_hostname;

const PATIENCE: Duration = Duration::from_secs(30);
const TEXT: &str = "first line\nsecond line\nthird line";

fn mosaic_fleet(args: &[&str]) -> Output {
    Command::new(crate::support::PRODUCT.fleet)
        .args(args)
        .output()
        .expect("run mosaic-fleet")
}

fn says(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The submissions a stand-in logged, in order.
fn log(home: &Path, agent: &str) -> Vec<String> {
    std::fs::read_to_string(home.join(format!("{agent}.log")))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            value["text"].as_str().expect("a text").to_owned()
        })
        .collect()
}

/// `agent send --verify` of `text`, which must be accepted and then be the
/// agent's only new submission.
fn send_once(home: &Path, agent: &str, text: &str) {
    let before = log(home, agent).len();
    let out = mosaic_fleet(&[
        "agent", "send", agent, "--verify", "--from", "ops:desk", "-m", text,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{agent}: ACCEPTED\n"),
        "{}",
        says(&out)
    );
    let want = format!("[ops:desk -> {}:{agent}] {text}", short_hostname());
    assert!(
        wait_until(PATIENCE, || log(home, agent).len() > before),
        "nothing logged"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(log(home, agent)[before..], [want], "{agent}");
}

#[test]
fn start_restart_and_reset_deliver_once_the_program_is_ready() {
    if !inside_systemd_sandbox(
        module_path!(),
        "start_restart_and_reset_deliver_once_the_program_is_ready",
    ) {
        return;
    }
    let mut fleet = crate::support::sandbox_fleet();
    fleet.socket = "fleet-send".into();
    let home = fleet.home.clone();
    let text = std::fs::read_to_string(fixtures_dir().join("send/systemd-roster.yaml")).unwrap();
    let bin = mosaic_tests::stand_in_tui();
    let text = text
        .replace("@BIN@", &bin.parent().unwrap().display().to_string())
        .replace("@HOME@", &home.display().to_string());
    let roster = home.join("roster.yaml");
    std::fs::write(&roster, text).unwrap();
    fleet.install_ok(&["--profile", roster.to_str().unwrap()]);
    fleet.systemctl_ok(&["start", HOLDER]);

    for agent in ["slow", "flush"] {
        // Start, then send: start returns once the program is ready.
        let started = mosaic_fleet(&["agent", "start", agent]);
        assert!(started.status.success(), "{}", says(&started));
        assert!(
            String::from_utf8_lossy(&started.stdout).contains("ready for input after"),
            "{}",
            says(&started)
        );
        send_once(&home, agent, TEXT);

        // Restart without waiting for the program: send waits itself.
        let restarted = mosaic_fleet(&["agent", "restart", agent, "--ready-timeout", "0"]);
        assert_eq!(restarted.status.code(), Some(1), "{}", says(&restarted));
        assert!(
            String::from_utf8_lossy(&restarted.stdout).contains("NOT-READY"),
            "{}",
            says(&restarted)
        );
        send_once(&home, agent, &format!("after the restart: {TEXT}"));

        // Reset: restart, then the kick-start message, once ready.
        let before = log(&home, agent).len();
        let reset = mosaic_fleet(&["--json", "agent", "reset", agent]);
        assert!(reset.status.success(), "{}", says(&reset));
        let report: serde_json::Value = serde_json::from_slice(&reset.stdout).unwrap();
        assert_eq!(report["method"], "restart", "{report}");
        assert_eq!(report["outcome"], "ACCEPTED", "{report}");
        assert!(wait_until(PATIENCE, || log(&home, agent).len() > before));
        std::thread::sleep(Duration::from_millis(500));
        let got = log(&home, agent);
        assert_eq!(got.len(), before + 1, "{got:#?}");
        assert!(
            got[before].ends_with(&format!("] {KICK_START}")),
            "{got:#?}"
        );
    }
}
