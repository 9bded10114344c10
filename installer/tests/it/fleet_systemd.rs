//! `mosaic-fleet` against a real systemd user manager (inside `cargo xtask
//! sandbox`): `fleet start` rolls out canary-first (and, again on the
//! running fleet, starts and restarts nothing), `fleet status` shows
//! unit states and restarts, `fleet verify` passes and then names a stopped
//! agent, `agent stop|start|restart` act on exactly one agent's unit and
//! session, `agent add|remove` enable and disable units, `agent reset`
//! submits the reset command or restarts and kick-starts, and `fleet stop`
//! takes everything down. Root only: skipped with a reason otherwise,
//! failing under CI=true.

use mosaic_tests::{json, stdout as text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use mosaic_tests::live::LiveFleet;
use mosaic_tests::live::{agent_unit, wait_until, HOLDER};
use mosaic_tests::sandbox::inside_systemd_sandbox;
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(20);

/// The sandbox fleet with the fleet tests' roster installed and enabled.
fn installed() -> LiveFleet {
    let mut fleet = crate::support::sandbox_fleet();
    fleet.socket = "fleet-verbs".into();
    let roster = fleet.home.join("roster.yaml");
    let text = crate::support::fleet::fixture_roster_text("fleet/roster.yaml", &fleet.home);
    std::fs::write(&roster, text).unwrap();
    fleet.install_ok(&["--profile", roster.to_str().unwrap()]);
    fleet
}

fn mosaic_fleet(args: &[&str]) -> Output {
    Command::new(crate::support::PRODUCT.fleet)
        .env("USER", "tester")
        .args(args)
        .output()
        .expect("run mosaic-fleet")
}

fn ok(args: &[&str]) -> Output {
    let out = mosaic_fleet(args);
    assert!(
        out.status.success(),
        "mosaic-fleet {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn record(home: &Path, agent: &str) -> Vec<String> {
    let path: PathBuf = home.join(format!("{agent}.rec"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.replace("\x1b[200~", "").replace("\x1b[201~", ""))
        .collect()
}

/// Each unit's InvocationID: a unit started or restarted gets a new one.
fn invocation_ids(fleet: &LiveFleet) -> Vec<String> {
    [HOLDER.to_owned()]
        .into_iter()
        .chain(["agent-1", "agent-10", "sink"].map(agent_unit))
        .map(|unit| fleet.property(&unit, "InvocationID"))
        .collect()
}

fn started() -> LiveFleet {
    let fleet = installed();
    let report = json(&ok(&[
        "--json", "fleet", "start", "--canary", "agent-10", "--wave", "1", "--settle", "1",
    ]));
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["holder", "canary agent-10", "wave 1", "wave 2"]);
    fleet
}

#[test]
fn fleet_start_status_verify_stop_and_unit_verbs() {
    if !inside_systemd_sandbox(
        module_path!(),
        "fleet_start_status_verify_stop_and_unit_verbs",
    ) {
        return;
    }
    let fleet = started();
    ok(&["fleet", "verify"]);

    // A second start finds every unit running and settled: it verifies,
    // starts and restarts nothing, and every session stays.
    let sessions = fleet.sessions();
    let invocations = invocation_ids(&fleet);
    let again = json(&ok(&["--json", "fleet", "start", "--settle", "1"]));
    assert_eq!(again["ok"], true, "{again}");
    let steps = again["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["ok"] == true), "{again}");
    for step in &steps[1..] {
        let detail = step["detail"].as_str().unwrap();
        assert!(detail.ends_with("(already up)"), "{detail}");
    }
    assert_eq!(fleet.sessions(), sessions);
    assert_eq!(invocation_ids(&fleet), invocations);

    let status = json(&ok(&["--json", "fleet", "status"]));
    assert_eq!(status["holder_unit"]["active"], "active");
    for agent in status["agents"].as_array().unwrap() {
        assert_eq!(agent["unit"]["active"], "active", "{agent}");
        assert_eq!(agent["unit"]["enabled"], "enabled", "{agent}");
        assert_eq!(agent["unit"]["restarts"], 0, "{agent}");
        assert_eq!(agent["session"]["alive"], true, "{agent}");
    }

    // A session that dies is brought back by systemd, and counted.
    let before = fleet.session("agent-1").unwrap();
    assert!(fleet
        .tmux(&["kill-session", "-t", "=agent-1"])
        .status
        .success());
    assert!(wait_until(PATIENCE, || fleet
        .session("agent-1")
        .is_some_and(|s| s != before)));
    let status = json(&ok(&["--json", "agent", "status", "agent-1"]));
    assert_eq!(status["agents"][0]["unit"]["restarts"], 1, "{status}");

    // Stopping agent-10 leaves agent-1 alone; verify names what is down.
    let agent_1 = fleet.session("agent-1").unwrap();
    ok(&["agent", "stop", "agent-10"]);
    assert_eq!(fleet.state(&agent_unit("agent-10")), "inactive");
    assert!(fleet.session("agent-10").is_none());
    assert_eq!(fleet.session("agent-1"), Some(agent_1.clone()));
    let verify = mosaic_fleet(&["fleet", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        text(&verify)
            .contains("  - mosaic-agent@agent-10.service active: inactive (dead), enabled"),
        "{}",
        text(&verify)
    );
    assert!(text(&verify).contains("  - agent agent-10 session alive: no live session"));
    assert_eq!(mosaic_fleet(&["fleet", "status"]).status.code(), Some(1));

    ok(&["agent", "start", "agent-10"]);
    assert!(fleet.session("agent-10").is_some());
    ok(&["agent", "restart", "agent-1"]);
    assert_ne!(fleet.session("agent-1"), Some(agent_1));
    ok(&["fleet", "verify"]);

    let stop = json(&ok(&["--json", "fleet", "stop"]));
    assert_eq!(stop["sessions_left"], Value::Array(Vec::new()));
    assert_eq!(fleet.state(HOLDER), "inactive");
    for agent in ["agent-1", "agent-10", "sink"] {
        assert_eq!(fleet.state(&agent_unit(agent)), "inactive");
    }
    assert!(fleet.sessions().is_empty());
    assert_eq!(mosaic_fleet(&["fleet", "verify"]).status.code(), Some(1));
}

#[test]
fn agent_add_send_reset_and_remove_over_real_units() {
    if !inside_systemd_sandbox(
        module_path!(),
        "agent_add_send_reset_and_remove_over_real_units",
    ) {
        return;
    }
    let fleet = started();
    let home = fleet.home.clone();
    let command = format!(
        "bash {} {}/agent-2.rec",
        mosaic_tests::stand_ins_dir().join("recorder.sh").display(),
        home.display()
    );

    ok(&[
        "agent",
        "add",
        "agent-2",
        "--runtime",
        "pi",
        "--command",
        &command,
    ]);
    assert_eq!(
        fleet
            .systemctl_ok(&["is-enabled", &agent_unit("agent-2")])
            .trim(),
        "enabled"
    );
    ok(&["agent", "start", "agent-2"]);
    assert!(wait_until(PATIENCE, || fleet.session("agent-2").is_some()));
    assert!(wait_until(PATIENCE, || {
        String::from_utf8_lossy(
            &fleet
                .tmux(&["capture-pane", "-p", "-t", "=agent-2:"])
                .stdout,
        )
        .contains("ready>")
    }));
    let sent = ok(&[
        "agent",
        "send",
        "agent-2",
        "--verify",
        "--from",
        "ops:desk",
        "-m",
        "welcome $USER",
    ]);
    assert_eq!(text(&sent), "agent-2: ACCEPTED\n");
    let host = mosaic_tests::short_hostname();
    assert!(wait_until(PATIENCE, || record(&home, "agent-2")
        == [format!("[ops:desk -> {host}:agent-2] welcome $USER")]));

    // claude has a reset command; codex (agent-10) has none: restart + kick-start.
    assert!(wait_until(PATIENCE, || {
        String::from_utf8_lossy(
            &fleet
                .tmux(&["capture-pane", "-p", "-t", "=agent-1:"])
                .stdout,
        )
        .contains("ready>")
    }));
    let reset = json(&ok(&["--json", "agent", "reset", "agent-1"]));
    assert_eq!(reset["method"], "reset-command");
    assert!(wait_until(PATIENCE, || record(&home, "agent-1")
        .last()
        .map(String::as_str)
        == Some("/clear")));
    let before = fleet.session("agent-10").unwrap();
    let reset = json(&ok(&["--json", "agent", "reset", "agent-10"]));
    assert_eq!(reset["method"], "restart", "{reset}");
    assert_eq!(reset["outcome"], "ACCEPTED", "{reset}");
    assert_ne!(fleet.session("agent-10"), Some(before));
    assert!(wait_until(PATIENCE, || record(&home, "agent-10")
        .last()
        .is_some_and(|l| l.ends_with(crate::support::KICK_START))));

    ok(&["agent", "remove", "agent-2"]);
    let enabled = fleet.systemctl_output(&["is-enabled", &agent_unit("agent-2")]);
    assert_eq!(String::from_utf8_lossy(&enabled.stdout).trim(), "disabled");
    assert_eq!(fleet.state(&agent_unit("agent-2")), "inactive");
    assert!(fleet.session("agent-2").is_none());
    // Its env file was generated from the roster and never edited: gone.
    assert!(!home
        .join(".config/mosaic/fleet/agents/agent-2.env")
        .exists());
    ok(&["fleet", "verify"]);
}
