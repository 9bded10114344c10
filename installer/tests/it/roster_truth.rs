//! The installed roster is the single source of truth, under a real
//! systemd user manager (inside `cargo xtask sandbox`): roster A running,
//! then `mosaic-install --profile B --start --restart-changed` stops and
//! disables the agent B dropped, starts the one it added (visible to every
//! `mosaic-fleet` verb, its `.local.env` reaching its pane), restarts the
//! one whose command changed and leaves the untouched one's pane alone;
//! then `agent add` is a generation `status` calls clean and `rollback`
//! takes back, unit included. Root only: skipped with a reason otherwise,
//! failing under CI=true.

use mosaic_tests::assert_ok;
use std::process::{Command, Output};

use mosaic_tests::fixtures_dir;
use mosaic_tests::live::agent_unit;
use mosaic_tests::live::LiveFleet;
use mosaic_tests::sandbox::inside_systemd_sandbox;

fn roster(name: &str) -> String {
    fixtures_dir()
        .join("roster-truth")
        .join(name)
        .display()
        .to_string()
}

fn fleet_cmd(args: &[&str]) -> Output {
    Command::new(crate::support::PRODUCT.fleet)
        .env("USER", "tester")
        .args(args)
        .output()
        .expect("run mosaic-fleet")
}

fn enabled(fleet: &LiveFleet, agent: &str) -> String {
    let out = fleet.systemctl_output(&["is-enabled", &agent_unit(agent)]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The value of `name` in the environment of `agent`'s pane process.
fn pane_env(fleet: &LiveFleet, agent: &str, name: &str) -> Option<String> {
    let pid = fleet.session(agent)?.pane_pid;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|b| *b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .find_map(|entry| entry.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

#[test]
fn a_new_roster_drives_units_sessions_and_every_verb() {
    if !inside_systemd_sandbox(
        module_path!(),
        "a_new_roster_drives_units_sessions_and_every_verb",
    ) {
        return;
    }
    let fleet = crate::support::sandbox_fleet();
    fleet.install_ok(&["--profile", &roster("a.yaml"), "--start"]);
    let before = fleet.sessions();
    for agent in ["keep", "change", "gone"] {
        assert!(
            before.contains_key(agent),
            "{agent} did not start: {before:?}"
        );
    }
    // The operator's override for the agent B adds, in place beforehand.
    let agents = fleet.home.join(".config/mosaic/fleet/agents");
    std::fs::write(
        agents.join("fresh.local.env"),
        "MOSAIC_TEST_OVERRIDE=\"from fresh.local.env\"\n",
    )
    .unwrap();

    let report = fleet.install_ok(&[
        "--profile",
        &roster("b.yaml"),
        "--start",
        "--restart-changed",
    ]);

    let actions = &report["systemd"]["actions"];
    assert_eq!(actions["stop_disable"][0]["agent"], "gone", "{actions:#}");
    assert_eq!(actions["restart"][0]["agent"], "change", "{actions:#}");
    assert_eq!(fleet.state(&agent_unit("gone")), "inactive");
    assert_eq!(enabled(&fleet, "gone"), "disabled");
    assert!(
        fleet.session("gone").is_none(),
        "the dropped agent still runs"
    );
    assert!(!agents.join("gone.env").exists());

    let after = fleet.sessions();
    assert_eq!(
        after["keep"].pane_pid, before["keep"].pane_pid,
        "the untouched agent was restarted"
    );
    assert_ne!(
        after["change"].pane_pid, before["change"].pane_pid,
        "the changed agent was not restarted"
    );
    assert_eq!(fleet.state(&agent_unit("fresh")), "active");
    assert_eq!(enabled(&fleet, "fresh"), "enabled");
    assert_eq!(
        pane_env(&fleet, "fresh", "MOSAIC_TEST_OVERRIDE").as_deref(),
        Some("from fresh.local.env")
    );

    // Every verb sees the new agent, and the roster, the receipt and
    // systemd agree.
    assert_ok(
        &fleet_cmd(&["agent", "status", "fresh"]),
        "agent status fresh",
    );
    assert_ok(&fleet_cmd(&["agent", "tail", "fresh"]), "agent tail fresh");
    assert_ok(&fleet_cmd(&["fleet", "verify"]), "fleet verify");
    let status = Command::new(crate::support::PRODUCT.install)
        .arg("status")
        .output()
        .unwrap();
    assert_ok(&status, "mosaic-install status");

    // agent add: a generation status calls clean, rollback takes back.
    let added = fleet_cmd(&[
        "agent",
        "add",
        "extra",
        "--runtime",
        "pi",
        "--command",
        "~/bin/fake-agent",
    ]);
    assert_ok(&added, "agent add extra");
    assert_eq!(
        fleet.state(&agent_unit("extra")),
        "active",
        "new agent on a running fleet starts"
    );
    let status = Command::new(crate::support::PRODUCT.install)
        .arg("status")
        .output()
        .unwrap();
    assert_ok(&status, "status after agent add");
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("clean: "), "{text}");
    let rolled = Command::new(crate::support::PRODUCT.install)
        .arg("rollback")
        .output()
        .unwrap();
    assert_ok(&rolled, "rollback");
    assert_eq!(fleet.state(&agent_unit("extra")), "inactive");
    assert_eq!(enabled(&fleet, "extra"), "disabled");
    assert!(!agents.join("extra.env").exists());
    let roster_text =
        std::fs::read_to_string(fleet.home.join(".config/mosaic/fleet/roster.yaml")).unwrap();
    assert!(!roster_text.contains("extra"), "{roster_text}");
    assert_ok(
        &fleet_cmd(&["fleet", "verify"]),
        "fleet verify after rollback",
    );
}
