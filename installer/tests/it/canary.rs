//! `mosaic-install --start` against a real systemd user manager (inside
//! `cargo xtask sandbox`): the canary-first rollout with `--canary` and
//! `--wave`, its JSON steps and timings, a failed canary or wave that
//! stops what the run started and nothing else, and an agent that crashes
//! 3 s after it starts caught by the settle window; without any manager, the
//! commands to run later; and `cargo xtask canary` end to end. Sandboxed
//! tests are root only: skipped with a reason otherwise, failing under CI=true.

use crate::support::mosaic_install;
use std::process::Command;

use mosaic_tests::live::{agent_unit, HOLDER};
use mosaic_tests::sandbox::inside_systemd_sandbox;
use mosaic_tests::{TempHome, TmuxWorld};
use serde_json::Value;

fn step_names(report: &Value) -> Vec<String> {
    report["systemd"]["rollout"]["steps"]
        .as_array()
        .expect("rollout steps")
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect()
}

fn stopped(report: &Value) -> Vec<String> {
    serde_json::from_value(report["systemd"]["rollout"]["stopped"].clone()).unwrap()
}

#[test]
fn start_rolls_out_the_canary_then_waves_with_timings() {
    if !inside_systemd_sandbox(
        module_path!(),
        "start_rolls_out_the_canary_then_waves_with_timings",
    ) {
        return;
    }
    let fleet = crate::support::sandbox_fleet();
    let profile = mosaic_tests::sandbox::canary_roster("suffixes.yaml");

    let report = fleet.install_ok(&[
        "--profile",
        &profile,
        "--start",
        "--canary",
        "agent-2",
        "--wave",
        "1",
        "--settle",
        "1",
    ]);

    let rollout = &report["systemd"]["rollout"];
    assert_eq!(rollout["ok"], true);
    assert_eq!(
        step_names(&report),
        ["holder", "canary agent-2", "wave 1", "wave 2"]
    );
    let units: Vec<Vec<String>> = rollout["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::from_value(s["units"].clone()).unwrap())
        .collect();
    assert_eq!(
        units,
        [
            vec![HOLDER.to_owned()],
            vec![agent_unit("agent-2")],
            vec![agent_unit("agent-1")],
            vec![agent_unit("agent-10")]
        ]
    );
    for step in rollout["steps"].as_array().unwrap() {
        assert_eq!(step["ok"], true, "{step}");
        assert!(step["millis"].is_u64(), "no timing: {step}");
    }
    let sessions = fleet.sessions();
    for agent in ["agent-1", "agent-10", "agent-2"] {
        assert_eq!(fleet.state(&agent_unit(agent)), "active");
        assert!(sessions.contains_key(agent), "no session ={agent}");
    }
}

#[test]
fn a_failed_canary_or_wave_stops_what_the_run_started_and_nothing_else() {
    if !inside_systemd_sandbox(
        module_path!(),
        "a_failed_canary_or_wave_stops_what_the_run_started_and_nothing_else",
    ) {
        return;
    }
    let fleet = crate::support::sandbox_fleet();
    let profile = mosaic_tests::sandbox::canary_roster("mixed.yaml");
    fleet.install_ok(&["--profile", &profile]);
    fleet.systemctl_ok(&["start", &agent_unit("steady")]);
    let steady = fleet
        .session("steady")
        .expect("steady runs before the rollout");

    // The canary itself fails: nothing else is started.
    let (output, report) = fleet
        .install(&["--profile", &profile, "--start", "--canary", "broken"])
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{report:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let failed = &report["systemd"]["rollout"]["steps"][1];
    assert_eq!(failed["step"], "canary broken");
    assert_eq!(failed["ok"], false);
    let why = failed["detail"].as_str().unwrap();
    assert!(
        why.contains("session =broken ended") && why.contains("~/bin/crashing-agent"),
        "the report says why: {why}"
    );
    assert_eq!(stopped(&report), [agent_unit("broken")]);
    for agent in ["broken", "good-1", "good-2"] {
        assert_ne!(fleet.state(&agent_unit(agent)), "active", "{agent}");
    }
    assert_eq!(fleet.session("steady"), Some(steady.clone()));
    assert!(fleet.session("broken").is_none());

    // A wave fails after a good canary: the canary and the wave's agents
    // this run started are stopped, `steady` (already running) is not.
    let output = Command::new(crate::support::PRODUCT.install)
        .args(["--profile", &profile, "--start", "--canary", "good-1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("canary good-1"), "{text}");
    let wave = text
        .lines()
        .find(|l| l.contains("wave 1"))
        .unwrap_or_default();
    assert!(
        wave.contains("FAILED") && wave.contains("session =broken ended"),
        "the failed step and why: {text}"
    );
    assert!(
        text.contains(&format!(
            "rollout failed: stopped what this run started: {} {} {}",
            agent_unit("good-1"),
            agent_unit("broken"),
            agent_unit("good-2")
        )),
        "{text}"
    );
    for agent in ["broken", "good-1", "good-2"] {
        assert_ne!(fleet.state(&agent_unit(agent)), "active", "{agent}");
    }
    assert_eq!(fleet.state(&agent_unit("steady")), "active");
    assert_eq!(fleet.session("steady"), Some(steady));
}

#[test]
fn an_agent_crashing_at_3s_fails_the_rollout_within_the_default_settle_window() {
    if !inside_systemd_sandbox(
        module_path!(),
        "an_agent_crashing_at_3s_fails_the_rollout_within_the_default_settle_window",
    ) {
        return;
    }
    let fleet = crate::support::sandbox_fleet();
    let profile = mosaic_tests::sandbox::canary_roster("late-crash.yaml");

    let (output, report) = fleet.install(&["--profile", &profile, "--start"]).unwrap();

    assert_eq!(
        output.status.code(),
        Some(1),
        "{report:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(step_names(&report), ["holder", "canary good-1", "wave 1"]);
    let wave = &report["systemd"]["rollout"]["steps"][2];
    assert_eq!(wave["ok"], false);
    let why = wave["detail"].as_str().unwrap();
    assert!(
        why.starts_with(
            "session =late ended within 5 s of starting: its command `~/bin/crashing-agent 3` exited"
        ),
        "the report says which agent, when and why: {why}"
    );
    assert_eq!(
        stopped(&report),
        [
            agent_unit("good-1"),
            agent_unit("late"),
            agent_unit("good-2"),
            HOLDER.to_owned()
        ]
    );
    for unit in [agent_unit("good-1"), agent_unit("late"), HOLDER.to_owned()] {
        assert_ne!(fleet.state(&unit), "active", "{unit}");
    }
    assert!(fleet.sessions().is_empty(), "{:?}", fleet.sessions());
}

#[test]
fn without_a_user_manager_the_commands_to_run_are_printed_and_the_install_succeeds() {
    let home = TempHome::new();
    let world = TmuxWorld::new();

    let output = mosaic_install(home.path(), &world)
        .args(["--profile", "minimal", "--start"])
        .output()
        .unwrap();

    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("systemd: not run: no systemd user manager is reachable"),
        "{text}"
    );
    let units = format!("{HOLDER} {}", agent_unit("canary"));
    for command in [
        "systemctl --user daemon-reload".to_owned(),
        format!("systemctl --user enable {units}"),
        format!("systemctl --user start {units}"),
        "loginctl enable-linger \"$USER\"".to_owned(),
    ] {
        assert!(
            text.lines()
                .any(|line| line.trim_start().starts_with(&command)),
            "missing `{command}` in:\n{text}"
        );
    }
    assert!(home
        .path()
        .join(".config/systemd/user")
        .join(HOLDER)
        .is_file());
}

#[test]
fn cargo_xtask_canary_passes_every_step() {
    if !mosaic_tests::sandbox::systemd_sandbox_available() {
        return;
    }
    let output = Command::new(mosaic_tests::xtask())
        .arg("canary")
        .output()
        .expect("run xtask canary");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo xtask canary failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains(" steps ok, 0 failed, 0 skipped"), "{text}");
}
