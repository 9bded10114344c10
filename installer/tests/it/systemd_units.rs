//! The fleet's units under a real systemd user manager (inside `cargo xtask
//! sandbox`): what an operator sees when agents are stopped, killed or exit,
//! when the holder stops, starts, restarts or its server is killed
//! (`kill-server`), when an upgrade changes the unit files, and when
//! uninstall takes the fleet down. Root only: skipped with a reason
//! otherwise, failing under CI=true.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mosaic_tests::bundle_copy;
use mosaic_tests::live::LiveFleet;
use mosaic_tests::live::{agent_unit, wait_until, Session, HOLDER};
use mosaic_tests::sandbox::inside_systemd_sandbox;

/// The bound for systemd to bring a vanished session back.
const RESTART_BOUND: Duration = Duration::from_secs(10);
const AGENTS: [&str; 3] = ["agent-1", "agent-10", "agent-2"];

/// Installs `suffixes.yaml` and starts the holder and its three agents.
fn running_fleet() -> LiveFleet {
    let fleet = crate::support::sandbox_fleet();
    fleet.install_ok(&[
        "--profile",
        &mosaic_tests::sandbox::canary_roster("suffixes.yaml"),
    ]);
    let mut units = vec![HOLDER.to_owned()];
    units.extend(AGENTS.map(agent_unit));
    let mut args = vec!["start"];
    args.extend(units.iter().map(String::as_str));
    fleet.systemctl_ok(&args);
    let sessions = fleet.sessions();
    for agent in AGENTS {
        assert!(
            sessions.contains_key(agent),
            "systemctl start returned before the session ={agent} existed: {sessions:?}"
        );
    }
    fleet
}

/// Waits until `agent`'s unit is active with a session other than `old`.
fn comes_back(fleet: &LiveFleet, agent: &str, old: &Session) -> bool {
    wait_until(RESTART_BOUND, || {
        fleet.state(&agent_unit(agent)) == "active"
            && fleet
                .session(agent)
                .is_some_and(|s| s.pane_pid != old.pane_pid)
    })
}

#[test]
fn an_agent_stops_alone_and_comes_back_when_its_session_goes() {
    if !inside_systemd_sandbox(
        module_path!(),
        "an_agent_stops_alone_and_comes_back_when_its_session_goes",
    ) {
        return;
    }
    let fleet = running_fleet();
    let before = fleet.sessions();

    fleet.systemctl_ok(&["stop", &agent_unit("agent-1")]);
    let after = fleet.sessions();
    assert_eq!(fleet.state(&agent_unit("agent-1")), "inactive");
    assert!(!after.contains_key("agent-1"), "agent-1 survived its stop");
    assert_eq!(
        after.get("agent-10"),
        before.get("agent-10"),
        "agent-10 was touched"
    );
    assert_eq!(fleet.state(&agent_unit("agent-10")), "active");

    let killed = fleet.tmux(&["kill-session", "-t", "=agent-10"]);
    assert!(killed.status.success());
    assert!(
        comes_back(&fleet, "agent-10", &before["agent-10"]),
        "agent-10 was not restarted within 10 s of kill-session"
    );
    assert_ne!(fleet.property(&agent_unit("agent-10"), "NRestarts"), "0");

    // The fake REPL exits when it reads `exit`: the agent's program ends.
    let sent = fleet.tmux(&["send-keys", "-t", "=agent-2:", "exit", "Enter"]);
    assert!(sent.status.success());
    assert!(
        comes_back(&fleet, "agent-2", &before["agent-2"]),
        "agent-2 was not restarted within 10 s of its program exiting"
    );

    assert_eq!(
        fleet.state(&agent_unit("agent-1")),
        "inactive",
        "the other agents' restarts brought the stopped agent-1 back"
    );
}

#[test]
fn the_holder_takes_the_fleet_down_and_brings_it_back() {
    if !inside_systemd_sandbox(
        module_path!(),
        "the_holder_takes_the_fleet_down_and_brings_it_back",
    ) {
        return;
    }
    let fleet = running_fleet();

    fleet.systemctl_ok(&["stop", HOLDER]);
    for agent in AGENTS {
        assert_eq!(fleet.state(&agent_unit(agent)), "inactive", "{agent}");
    }
    assert!(
        !fleet.tmux(&["list-sessions"]).status.success(),
        "the server survived"
    );

    fleet.systemctl_ok(&["start", &agent_unit("agent-2")]);
    assert_eq!(
        fleet.state(HOLDER),
        "active",
        "starting an agent starts the holder"
    );
    assert!(fleet.session("agent-2").is_some());
    assert_eq!(fleet.state(&agent_unit("agent-1")), "inactive");

    fleet.systemctl_ok(&["start", &agent_unit("agent-1"), &agent_unit("agent-10")]);
    let before = fleet.sessions();
    fleet.systemctl_ok(&["restart", HOLDER]);
    for agent in AGENTS {
        assert!(
            comes_back(&fleet, agent, &before[agent]),
            "{agent} did not come back with a new session after the holder's restart"
        );
    }
}

#[test]
fn after_kill_server_the_holder_comes_back_by_itself_and_the_agents_with_it() {
    if !inside_systemd_sandbox(
        module_path!(),
        "after_kill_server_the_holder_comes_back_by_itself_and_the_agents_with_it",
    ) {
        return;
    }
    let fleet = running_fleet();
    fleet.systemctl_ok(&["stop", &agent_unit("agent-1")]);
    let before = fleet.sessions();

    // `tmux kill-server` ends the server cleanly (exit 0): Restart=always
    // restarts the holder itself (its NRestarts counts it), and the
    // holder's restart restarts the running agents, each in a new session.
    assert!(fleet.tmux(&["kill-server"]).status.success());
    assert!(
        holder_restarted(&fleet, 1),
        "the holder did not restart by itself within 10 s of kill-server"
    );
    for agent in ["agent-10", "agent-2"] {
        assert!(
            comes_back(&fleet, agent, &before[agent]),
            "{agent} did not come back within 10 s of kill-server"
        );
    }
    assert_eq!(
        fleet.state(&agent_unit("agent-1")),
        "inactive",
        "the stopped agent-1 was started by the holder's restart"
    );

    // With no agent running, nothing else would bring the holder back.
    fleet.systemctl_ok(&["stop", &agent_unit("agent-10"), &agent_unit("agent-2")]);
    assert!(fleet.tmux(&["kill-server"]).status.success());
    assert!(
        holder_restarted(&fleet, 2),
        "the holder alone did not come back within 10 s of kill-server"
    );
    for agent in AGENTS {
        assert_eq!(fleet.state(&agent_unit(agent)), "inactive", "{agent}");
    }
}

/// Waits until the holder has restarted `times` times in all and is up
/// again with its session.
fn holder_restarted(fleet: &LiveFleet, times: u64) -> bool {
    wait_until(RESTART_BOUND, || {
        fleet.property(HOLDER, "NRestarts").parse() == Ok(times)
            && fleet.state(HOLDER) == "active"
            && fleet
                .tmux(&["has-session", "-t", "=_holder"])
                .status
                .success()
    })
}

#[test]
fn an_upgrade_reloads_the_units_and_keeps_sessions_unless_restart_changed() {
    if !inside_systemd_sandbox(
        module_path!(),
        "an_upgrade_reloads_the_units_and_keeps_sessions_unless_restart_changed",
    ) {
        return;
    }
    let fleet = running_fleet();
    let profile = mosaic_tests::sandbox::canary_roster("suffixes.yaml");
    let sessions = fleet.sessions();
    let units_before = invocations(&fleet);

    let next = changed_bundle("9.0.0", "(upgrade 1)");
    let report = fleet.install_ok(&["--bundle", &path(next.path()), "--profile", &profile]);
    assert_eq!(report["systemd"]["restarted"], serde_json::json!([]));
    assert_descriptions_end_with(&fleet, "(upgrade 1)");
    assert_eq!(
        fleet.sessions(),
        sessions,
        "a plain upgrade touched sessions"
    );
    assert_eq!(
        invocations(&fleet),
        units_before,
        "a plain upgrade restarted units"
    );

    // Only the version in the header comments changes: nothing to restart.
    let next = changed_bundle("9.0.1", "(upgrade 1)");
    let args = [
        "--bundle",
        &path(next.path()),
        "--profile",
        &profile,
        "--restart-changed",
    ];
    let report = fleet.install_ok(&args);
    assert_eq!(report["systemd"]["restarted"], serde_json::json!([]));
    assert_eq!(fleet.sessions(), sessions);

    let next = changed_bundle("9.0.2", "(upgrade 2)");
    let args = [
        "--bundle",
        &path(next.path()),
        "--profile",
        &profile,
        "--restart-changed",
    ];
    let report = fleet.install_ok(&args);
    let restarted: Vec<String> =
        serde_json::from_value(report["systemd"]["restarted"].clone()).unwrap();
    assert_eq!(restarted, AGENTS.map(agent_unit));
    assert_descriptions_end_with(&fleet, "(upgrade 2)");
    let now = fleet.sessions();
    for agent in AGENTS {
        assert_ne!(
            now[agent].pane_pid, sessions[agent].pane_pid,
            "{agent} kept its session"
        );
        assert_eq!(fleet.state(&agent_unit(agent)), "active");
    }
}

#[test]
fn uninstall_purge_stops_and_disables_every_unit_and_leaves_none_behind() {
    if !inside_systemd_sandbox(
        module_path!(),
        "uninstall_purge_stops_and_disables_every_unit_and_leaves_none_behind",
    ) {
        return;
    }
    let fleet = running_fleet();

    let report = fleet.install_ok(&["uninstall", "--purge"]);

    let systemd = &report["systemd"];
    assert_eq!(systemd["outcome"], "done", "{report:#}");
    assert_eq!(systemd["units"].as_array().unwrap().len(), 4, "{report:#}");
    assert_eq!(
        systemd["stopped"].as_array().unwrap().len(),
        4,
        "every unit was running: {report:#}"
    );
    let listed = |args: &[&str]| -> String {
        let output = fleet.systemctl_output(args);
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let units = listed(&["list-units", "--all", "--plain", "--no-legend", "mosaic-*"]);
    assert_eq!(units, "", "units still loaded");
    let files = listed(&["list-unit-files", "--plain", "--no-legend", "mosaic-*"]);
    assert_eq!(files, "", "unit files still installed");
    assert!(
        !fleet.tmux(&["list-sessions"]).status.success(),
        "the server survived"
    );
    assert!(
        !fleet.home.join(".config/systemd/user").exists(),
        "the unit directory (with the enablement links) is left behind"
    );
}

fn invocations(fleet: &LiveFleet) -> BTreeMap<String, String> {
    AGENTS
        .iter()
        .map(|a| {
            (
                a.to_string(),
                fleet.property(&agent_unit(a), "InvocationID"),
            )
        })
        .collect()
}

fn assert_descriptions_end_with(fleet: &LiveFleet, marker: &str) {
    for agent in AGENTS {
        let unit = agent_unit(agent);
        assert_eq!(fleet.property(&unit, "NeedDaemonReload"), "no", "{unit}");
        let description = fleet.property(&unit, "Description");
        assert!(description.ends_with(marker), "{unit}: {description}");
    }
}

/// The next bundle with the agent unit's Description changed.
fn changed_bundle(version: &str, marker: &str) -> tempfile::TempDir {
    let bundle = bundle_copy(version);
    let unit = bundle.path().join("systemd/user/mosaic-agent@.service.j2");
    let text = std::fs::read_to_string(&unit).unwrap();
    let changed: String = text
        .lines()
        .map(|line| match line.starts_with("Description=") {
            true => format!("{line} {marker}\n"),
            false => format!("{line}\n"),
        })
        .collect();
    assert_ne!(changed, text, "the agent unit has no Description=");
    std::fs::write(&unit, changed).unwrap();
    bundle
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
