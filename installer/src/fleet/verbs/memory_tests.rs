//! The verbs' logic in isolation, over the in-memory fleet (transport and
//! service manager in one): which units each verb starts, stops, enables or
//! restarts and in what order, what each agent receives, how outcomes turn
//! into reports and exit codes. The real-tmux and sandboxed-systemd tests
//! check the same verbs against the real things; these pin the decisions.

use std::time::Duration;

use crate::fleet::verbs::agent::{self, ResetMethod, UnitAction, Waits, KICK_START};
use crate::fleet::verbs::roster_edit::NewAgent;
use crate::fleet::verbs::send::{self, short_hostname, Recipients, SendOptions, SendRequest};
use crate::fleet::verbs::{fleet_wide, membership, Fleet, FleetError, InstalledRoster};
use crate::install::rollout::{Clock, SETTLE};
use crate::shared::command::ExitStatus;
use crate::shared::layout::Layout;
use crate::shared::profile::RuntimeSettings;
use crate::shared::transport::memory::MemoryFleet;
use crate::shared::transport::{Delivery, DeliveryOptions, Transport};
use mosaic_tests::{fixtures_dir, TempHome};

const AGENTS: [&str; 3] = ["agent-1", "agent-10", "sink"];
const SOON: Waits = Waits {
    session: Duration::from_millis(300),
    ready: Duration::from_millis(300),
};

/// A temp home holding the test roster (no env files: roster defaults).
fn home() -> (TempHome, Layout) {
    let home = TempHome::new();
    let layout = Layout::for_home(home.path()).unwrap();
    let roster = layout.target("mosaic/fleet/roster.yaml".as_ref());
    std::fs::create_dir_all(roster.parent().unwrap()).unwrap();
    std::fs::copy(fixtures_dir().join("fleet/roster.yaml"), &roster).unwrap();
    (home, layout)
}

fn with_fleet<T>(memory: &MemoryFleet, run: impl FnOnce(&Fleet<'_>) -> T) -> T {
    let (_home, layout) = home();
    let fleet = Fleet {
        roster: InstalledRoster::load_for(&layout, &crate::shared::host::machine()).unwrap(),
        layout,
        transport: memory,
        services: memory,
    };
    run(&fleet)
}

/// Manager calls other than status queries.
fn actions(memory: &MemoryFleet) -> Vec<String> {
    memory
        .calls()
        .into_iter()
        .filter(|c| !c.starts_with("show "))
        .collect()
}

fn send_to(to: Recipients, body: &str) -> SendRequest {
    SendRequest {
        to,
        body: body.into(),
        source: Some("ops:desk".into()),
        options: SendOptions::default(),
    }
}

fn preamble(agent: &str) -> String {
    format!("[ops:desk -> {}:{agent}] ", short_hostname())
}

#[test]
fn broadcast_reports_down_agents_and_delivers_to_the_rest() {
    let memory = MemoryFleet::running(&AGENTS);
    memory.kill_session("agent-10");

    let report = with_fleet(&memory, |f| {
        send::send(f, &send_to(Recipients::All, "hi\n"))
    })
    .unwrap();

    let outcomes: Vec<_> = report
        .results
        .iter()
        .map(|r| (r.agent.as_str(), r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("agent-1", "ACCEPTED"),
            ("agent-10", "DOWN"),
            ("sink", "ACCEPTED")
        ]
    );
    assert_eq!(report.exit_code(), 3);
    assert_eq!(
        memory.submitted("agent-1"),
        [format!("{}hi", preamble("agent-1"))]
    );
    assert_eq!(
        memory.submitted("sink"),
        [format!("{}hi", preamble("sink"))]
    );
}

#[test]
fn a_draft_is_reported_and_outranks_down() {
    let memory = MemoryFleet::running(&AGENTS);
    memory.make_draft_sink("sink");
    memory.kill_session("agent-1");

    let report = with_fleet(&memory, |f| send::send(f, &send_to(Recipients::All, "x"))).unwrap();

    assert!(matches!(
        report.results[2].delivery,
        Delivery::Draft { enters: 3, .. }
    ));
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        memory.pane("sink").unwrap().draft,
        Some(format!("{}x", preamble("sink")))
    );
}

#[test]
fn bad_messages_and_unknown_agents_send_nothing() {
    let memory = MemoryFleet::running(&AGENTS);
    let big = "x".repeat(send::MAX_MESSAGE_BYTES + 1);

    let (unknown, too_big, empty) = with_fleet(&memory, |f| {
        (
            send::send(f, &send_to(Recipients::One("agent-2".into()), "hi")).unwrap_err(),
            send::send(f, &send_to(Recipients::All, &big)).unwrap_err(),
            send::send(f, &send_to(Recipients::All, "\n\n")).unwrap_err(),
        )
    });

    assert_eq!(
        unknown.to_string(),
        "unknown agent `agent-2`; the roster's agents are: agent-1, agent-10, sink"
    );
    assert!(
        matches!(too_big, FleetError::MessageTooLarge { bytes, limit: 65536 } if bytes == 65537)
    );
    assert!(matches!(empty, FleetError::EmptyMessage));
    assert!(AGENTS.iter().all(|a| memory.submitted(a).is_empty()));
}

#[test]
fn the_caller_on_the_transport_names_the_source() {
    let memory = MemoryFleet::running(&AGENTS);
    memory.set_caller("agent-10");
    let mut request = send_to(Recipients::One("agent-1".into()), "review this");
    request.source = None;

    with_fleet(&memory, |f| send::send(f, &request)).unwrap();

    let host = short_hostname();
    assert_eq!(
        memory.submitted("agent-1"),
        [format!("[{host}:agent-10 -> {host}:agent-1] review this")]
    );
}

#[test]
fn an_operator_is_never_taken_for_an_agent() {
    let memory = MemoryFleet::running(&AGENTS);
    let mut request = send_to(Recipients::One("agent-1".into()), "status?");
    request.source = None;

    let report = with_fleet(&memory, |f| send::send(f, &request)).unwrap();

    let host = short_hostname();
    assert_eq!(report.source, format!("{host}:operator"));
    assert_eq!(
        memory.submitted("agent-1"),
        [format!("[{host}:operator -> {host}:agent-1] status?")]
    );
}

#[test]
fn a_program_that_never_gets_ready_is_typed_nothing() {
    let memory = MemoryFleet::running(&AGENTS);
    memory.make_never_ready("agent-10");

    let (sent, started, reset) = with_fleet(&memory, |f| {
        (
            send::send(f, &send_to(Recipients::All, "hi")).unwrap(),
            agent::unit_action(f, "agent-10", UnitAction::Restart, SOON).unwrap(),
            agent::reset(f, "agent-10", false, SOON).unwrap(),
        )
    });

    let outcomes: Vec<_> = sent.results.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, ["ACCEPTED", "NOT-READY", "ACCEPTED"]);
    assert_eq!(sent.exit_code(), 5);
    assert!(started.session_alive && !started.ok, "{started:?}");
    assert_eq!(reset.outcome, "NOT-READY");
    assert_eq!(reset.delivery.exit_code(), 5);
    assert!(memory.submitted("agent-10").is_empty());
}

#[test]
fn control_characters_are_refused_before_any_agent_is_typed_into() {
    let memory = MemoryFleet::running(&AGENTS);

    let (refused, from, stripped) = with_fleet(&memory, |f| {
        let mut from = send_to(Recipients::All, "fine");
        from.source = Some("ops\x1b]0;x".into());
        let mut stripped = send_to(Recipients::One("agent-1".into()), "a\x1b[201~\rb\0c\r\n");
        stripped.options.sanitize = true;
        (
            send::send(
                f,
                &send_to(Recipients::All, "ok\r\nthen\x1b[201~\rrm -rf ~"),
            )
            .unwrap_err(),
            send::send(f, &from).unwrap_err(),
            send::send(f, &stripped).unwrap(),
        )
    });

    assert_eq!(refused.exit_code(), 2);
    assert!(
        refused
            .to_string()
            .starts_with("the message contains ESC (0x1b) at byte 8:"),
        "{refused}"
    );
    assert!(
        from.to_string()
            .starts_with("the --from label contains ESC (0x1b) at byte 3:"),
        "{from}"
    );
    assert_eq!(stripped.exit_code(), 0);
    assert_eq!(
        memory.submitted("agent-1"),
        [format!("{}a[201~\nbc", preamble("agent-1"))]
    );
    assert!(memory.submitted("agent-10").is_empty() && memory.submitted("sink").is_empty());
}

#[test]
fn reset_submits_the_runtimes_reset_command_without_a_preamble() {
    let memory = MemoryFleet::running(&AGENTS);

    let report = with_fleet(&memory, |f| agent::reset(f, "agent-1", false, SOON)).unwrap();

    assert!(
        matches!(report.method, ResetMethod::ResetCommand { ref command } if command == "/clear")
    );
    assert_eq!(report.outcome, "ACCEPTED");
    assert_eq!(memory.submitted("agent-1"), ["/clear"]);
    assert!(actions(&memory).is_empty(), "{:?}", memory.calls());
}

#[test]
fn reset_without_a_reset_command_restarts_and_kick_starts() {
    let memory = MemoryFleet::running(&AGENTS);

    let report = with_fleet(&memory, |f| agent::reset(f, "agent-10", false, SOON)).unwrap();
    let forced = with_fleet(&memory, |f| agent::reset(f, "agent-1", true, SOON)).unwrap();

    assert!(matches!(
        report.method,
        ResetMethod::Restart {
            session_alive: true
        }
    ));
    assert!(matches!(forced.method, ResetMethod::Restart { .. }));
    assert_eq!(
        actions(&memory),
        [
            "restart mosaic-agent@agent-10.service",
            "restart mosaic-agent@agent-1.service"
        ]
    );
    let host = short_hostname();
    let kick = format!("[{host}:");
    let got = memory.submitted("agent-10");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(&kick) && got[0].ends_with(&format!("-> {host}:agent-10] {KICK_START}")),
        "{got:?}"
    );
}

#[test]
fn unit_verbs_drive_the_agents_unit_and_wait_for_its_session() {
    let memory = MemoryFleet::running(&AGENTS);

    let stopped = with_fleet(&memory, |f| {
        agent::unit_action(f, "agent-1", UnitAction::Stop, SOON)
    })
    .unwrap();
    let alive_after_stop = memory.pane("agent-1").is_some();
    let started = with_fleet(&memory, |f| {
        agent::unit_action(f, "agent-1", UnitAction::Start, SOON)
    })
    .unwrap();

    assert!(stopped.ok && !stopped.session_alive && !alive_after_stop);
    assert!(stopped.readiness.is_none());
    assert!(started.ok && started.session_alive);
    assert!(matches!(
        started.readiness,
        Some(crate::shared::transport::Readiness::Ready { .. })
    ));
    assert!(memory.pane("agent-10").is_some(), "agent-10 was touched");
    assert_eq!(
        actions(&memory),
        [
            "stop mosaic-agent@agent-1.service",
            "start mosaic-agent@agent-1.service"
        ]
    );
}

fn start_options() -> fleet_wide::StartOptions {
    fleet_wide::StartOptions {
        canary: None,
        wave: 4,
        timeout: Duration::from_secs(20),
        settle: SETTLE,
    }
}

#[test]
fn fleet_start_of_a_healthy_fleet_starts_nothing_and_does_not_wait() {
    let memory = MemoryFleet::running(&AGENTS);
    let before = memory.now();

    let report = with_fleet(&memory, |f| fleet_wide::start(f, &start_options(), &memory)).unwrap();

    assert!(report.ok, "{report:#?}");
    assert_eq!(actions(&memory), Vec::<String>::new());
    assert_eq!(memory.now(), before, "a healthy fleet was waited on");
}

#[test]
fn fleet_start_fails_on_an_agent_that_crashes_at_3s_and_stops_what_it_started() {
    let memory = MemoryFleet::new();
    memory.crash_after("agent-10", Duration::from_secs(3));

    let report = with_fleet(&memory, |f| fleet_wide::start(f, &start_options(), &memory)).unwrap();

    assert!(!report.ok);
    let failed = report.steps.last().unwrap();
    assert_eq!((failed.step.as_str(), failed.ok), ("wave 1", false));
    assert!(
        failed
            .detail
            .starts_with("session =agent-10 ended within 5 s of starting"),
        "{}",
        failed.detail
    );
    assert_eq!(
        report.stopped,
        [
            "mosaic-agent@agent-1.service",
            "mosaic-agent@agent-10.service",
            "mosaic-agent@sink.service",
            "mosaic-tmux-holder.service"
        ]
    );
    assert!(memory.pane("agent-1").is_none() && memory.pane("sink").is_none());
}

#[test]
fn fleet_stop_stops_agents_before_the_holder() {
    let memory = MemoryFleet::running(&AGENTS);

    let report = with_fleet(&memory, fleet_wide::stop).unwrap();

    assert!(report.sessions_left.is_empty() && !report.holder_up);
    assert_eq!(
        actions(&memory),
        [
            "stop mosaic-agent@agent-1.service mosaic-agent@agent-10.service mosaic-agent@sink.service",
            "stop mosaic-tmux-holder.service"
        ]
    );
}

#[test]
fn status_and_verify_name_what_is_down() {
    let memory = MemoryFleet::running(&AGENTS);
    memory.kill_session("sink");
    memory.leak("agent agent-1 runs on the default tmux server");

    let (status, verify) = with_fleet(&memory, |f| {
        (
            fleet_wide::status(f, None).unwrap(),
            fleet_wide::verify(f).unwrap(),
        )
    });

    assert!(!status.healthy());
    assert!(status.agents[0].healthy() && !status.agents[2].healthy());
    let failed: Vec<&str> = verify.failures().map(|c| c.check.as_str()).collect();
    assert_eq!(
        failed,
        ["agent sink session alive", "default tmux server untouched"]
    );
}

/// A roster agent whose unit is not enabled is a second truth about the
/// fleet: verify fails on it (and says how to fix it).
#[test]
fn verify_fails_on_a_roster_agent_whose_unit_is_not_enabled() {
    let memory = MemoryFleet::running(&AGENTS);
    use crate::shared::systemd::ServiceManager;
    memory
        .disable(&["mosaic-agent@sink.service".to_owned()])
        .unwrap();

    let verify = with_fleet(&memory, fleet_wide::verify).unwrap();

    assert!(!verify.ok);
    let failed: Vec<&str> = verify.failures().map(|c| c.check.as_str()).collect();
    assert_eq!(failed, ["mosaic-agent@sink.service enabled"]);
    let detail = &verify.failures().next().unwrap().detail;
    assert!(detail.contains("run mosaic-install"), "{detail}");
}

/// A unit enabled outside the roster (a `.wants/` link) fails verify.
#[test]
fn verify_fails_on_an_enabled_unit_outside_the_roster() {
    let memory = MemoryFleet::running(&AGENTS);
    let (_home, layout) = home();
    let wants = layout.target("systemd/user/default.target.wants".as_ref());
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "../mosaic-agent@.service",
        wants.join("mosaic-agent@ghost.service"),
    )
    .unwrap();
    let fleet = Fleet {
        roster: InstalledRoster::load_for(&layout, &crate::shared::host::machine()).unwrap(),
        layout: layout.clone(),
        transport: &memory,
        services: &memory,
    };

    let verify = fleet_wide::verify(&fleet).unwrap();

    let failed: Vec<&str> = verify.failures().map(|c| c.check.as_str()).collect();
    assert_eq!(failed, ["mosaic-agent@ghost.service not in the roster"]);
}

#[test]
fn status_without_a_manager_shows_sessions_and_says_why() {
    let memory = MemoryFleet::running(&AGENTS);
    memory.set_unreachable("Failed to connect to bus");

    let status = with_fleet(&memory, |f| fleet_wide::status(f, Some("agent-10"))).unwrap();

    assert_eq!(
        status.systemd_error.as_deref(),
        Some("Failed to connect to bus")
    );
    assert_eq!(status.agents.len(), 1);
    assert!(status.agents[0].unit.is_none() && status.healthy());
}

#[test]
fn a_failed_enable_undoes_every_write_of_add() {
    let memory = MemoryFleet::running(&AGENTS);
    let (home, layout) = home();
    let roster_path = layout.target("mosaic/fleet/roster.yaml".as_ref());
    let fleet = Fleet {
        roster: InstalledRoster::load_for(&layout, &crate::shared::host::machine()).unwrap(),
        layout: layout.clone(),
        transport: &memory,
        services: &memory,
    };
    let new = |name: &str| NewAgent {
        name: name.into(),
        runtime: "pi".into(),
        ..NewAgent::default()
    };
    let before = std::fs::read(&roster_path).unwrap();

    memory.fail_on("enable");
    let failed = membership::add(&fleet, &new("agent-3")).unwrap_err();
    let after_failure = std::fs::read(&roster_path).unwrap();
    let env_after_failure = layout
        .target("mosaic/fleet/agents/agent-3.env".as_ref())
        .exists();

    assert!(
        failed
            .to_string()
            .contains("nothing was changed: the roster and env files were restored"),
        "{failed}"
    );
    assert_eq!(after_failure, before);
    assert!(!env_after_failure);
    drop(home);
}

#[test]
fn add_and_remove_drive_enable_then_stop_and_disable() {
    let memory = MemoryFleet::running(&AGENTS);
    let (_home, layout) = home();
    let load = || Fleet {
        roster: InstalledRoster::load_for(&layout, &crate::shared::host::machine()).unwrap(),
        layout: layout.clone(),
        transport: &memory,
        services: &memory,
    };

    let added = membership::add(
        &load(),
        &NewAgent {
            name: "agent-3".into(),
            runtime: "pi".into(),
            ..NewAgent::default()
        },
    )
    .unwrap();
    let removed = membership::remove(&load(), "agent-1", false).unwrap();

    // The same reconcile as mosaic-install: the new agent enabled (and,
    // the fleet running, started), the removed one stopped and disabled.
    let added_actions = &added.systemd.as_ref().unwrap().actions;
    assert_eq!(added_actions.enable, ["agent-3"]);
    assert_eq!(added_actions.start, ["agent-3"]);
    assert!(memory.unit("mosaic-agent@agent-3.service").enabled);
    assert_eq!(removed.agents, ["agent-10", "sink", "agent-3"]);
    let removed_actions = &removed.systemd.as_ref().unwrap().actions;
    assert_eq!(removed_actions.stop_disable.len(), 1);
    assert_eq!(removed_actions.stop_disable[0].agent, "agent-1");
    assert_eq!(removed.units, ["mosaic-agent@agent-1.service"]);
    let calls = actions(&memory);
    let stop = calls
        .iter()
        .position(|c| c == "stop mosaic-agent@agent-1.service");
    let disable = calls
        .iter()
        .position(|c| c == "disable mosaic-agent@agent-1.service");
    assert!(stop.is_some() && stop < disable, "{calls:?}");
    assert!(!memory.unit("mosaic-agent@agent-1.service").enabled);
    assert!(memory.pane("agent-1").is_none());
}

#[test]
fn tail_attach_and_watch_go_through_the_transport() {
    let memory = MemoryFleet::running(&AGENTS);
    let options = DeliveryOptions::for_runtime(&RuntimeSettings::default());
    for n in 1..=3 {
        let text = format!("line {n}");
        memory.deliver("agent-1", &[text], &options).unwrap();
    }

    let (tail, attach, watched, gone, gone_watch) = with_fleet(&memory, |f| {
        (
            agent::tail(f, "agent-1", 2).unwrap(),
            agent::attach(f, "agent-1").unwrap(),
            agent::watch(f, "agent-1").unwrap(),
            {
                memory.kill_session("agent-10");
                agent::attach(f, "agent-10").unwrap_err()
            },
            agent::watch(f, "agent-10").unwrap_err(),
        )
    });

    assert_eq!(tail, "line 2\nline 3\n");
    assert_eq!(attach, ["memory-attach", "agent-1"]);
    assert_eq!(watched.viewer, "agent-1@view");
    for err in [gone, gone_watch] {
        assert!(
            err.to_string()
                .contains("agent agent-10 has no live session"),
            "{err}"
        );
    }
}
