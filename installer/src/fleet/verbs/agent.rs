//! The per-agent verbs: `roster`, `start`/`stop`/`restart` (the agent's unit,
//! then a wait for its session and, when it runs, for its program to be
//! ready for input), `tail` (recent output), `attach` (the command to exec),
//! `watch` (`attach --read-only`: a viewer that changes nothing) and
//! `reset` (the runtime's reset command, or a restart and a kick-start
//! message when the runtime has none; either is delivered like `agent send`,
//! so only once the program is ready). `agent status` is
//! [`super::fleet_wide::status`] for one agent; `send` has its own module.

use std::ffi::OsString;
use std::time::Duration;

use serde::Serialize;

use super::send::{source_label, with_preamble};
use super::{AgentView, Fleet, FleetError};
use crate::shared::systemd::agent_unit;
use crate::shared::transport::{Delivery, DeliveryOptions, Readiness, ReadyRule, Watched};

/// The message a freshly restarted agent gets when its runtime has no reset
/// command.
pub(crate) const KICK_START: &str = "You were restarted with a fresh conversation by `mosaic-fleet agent reset`. Wait for your next instruction.";

/// Every agent of the roster, local or not.
pub(crate) fn roster<'a>(fleet: &'a Fleet<'_>) -> &'a [AgentView] {
    &fleet.roster.agents
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UnitAction {
    Start,
    Stop,
    Restart,
}

impl UnitAction {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            UnitAction::Start => "start",
            UnitAction::Stop => "stop",
            UnitAction::Restart => "restart",
        }
    }
}

/// How long a verb waits for an agent's session, then for its program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waits {
    /// For the unit's session to come up or go away.
    pub(crate) session: Duration,
    /// For the program to be ready for input (start, restart, reset).
    pub(crate) ready: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct UnitActionReport {
    pub(crate) agent: String,
    pub(crate) unit: String,
    pub(crate) action: UnitAction,
    /// Whether the session is alive once the action settled.
    pub(crate) session_alive: bool,
    /// For start and restart: whether the program became ready for input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) readiness: Option<Readiness>,
    /// Whether the session ended up as the action wants it (and, for start
    /// and restart, its program ready).
    pub(crate) ok: bool,
}

/// The readiness rule of an agent's runtime.
fn ready_rule(fleet: &Fleet<'_>, runtime: &str) -> ReadyRule {
    ReadyRule::for_runtime(&fleet.roster.profile.roster.runtime(runtime))
}

/// Start, stop or restart one agent's unit, then wait for its session to
/// come up or go away, and (start, restart) for its program to be ready.
pub(crate) fn unit_action(
    fleet: &Fleet<'_>,
    name: &str,
    action: UnitAction,
    waits: Waits,
) -> Result<UnitActionReport, FleetError> {
    let agent = fleet.local_agent(name)?;
    let unit = agent_unit(&agent.name);
    fleet.require_manager(vec![format!("systemctl --user {} {unit}", action.verb())])?;
    let units = vec![unit.clone()];
    match action {
        UnitAction::Start => fleet.services.start(&units)?,
        UnitAction::Stop => fleet.services.stop(&units)?,
        UnitAction::Restart => fleet.services.restart(&units)?,
    }
    let want_alive = action != UnitAction::Stop;
    let settled = fleet.wait_session(&agent.name, want_alive, waits.session);
    let readiness = if want_alive && settled {
        let rule = ready_rule(fleet, &agent.runtime);
        Some(
            fleet
                .transport
                .wait_ready(&agent.name, &rule, waits.ready)?,
        )
    } else {
        None
    };
    let ready = readiness
        .as_ref()
        .is_none_or(|r| matches!(r, Readiness::Ready { .. }));
    Ok(UnitActionReport {
        agent: agent.name.clone(),
        unit,
        action,
        session_alive: settled == want_alive,
        readiness,
        ok: settled && ready,
    })
}

/// The last `lines` lines of the agent's pane.
pub(crate) fn tail(fleet: &Fleet<'_>, name: &str, lines: usize) -> Result<String, FleetError> {
    let agent = fleet.local_agent(name)?;
    Ok(fleet.transport.recent_output(&agent.name, lines)?)
}

/// The program and arguments that attach a terminal to the agent.
pub(crate) fn attach(fleet: &Fleet<'_>, name: &str) -> Result<Vec<OsString>, FleetError> {
    let agent = fleet.local_agent(name)?;
    Ok(fleet.transport.attach_command(&agent.name)?)
}

/// Watch the agent on this terminal until the viewer detaches: read-only,
/// its window size unchanged, nothing left behind.
pub(crate) fn watch(fleet: &Fleet<'_>, name: &str) -> Result<Watched, FleetError> {
    let agent = fleet.local_agent(name)?;
    Ok(fleet.transport.watch(&agent.name)?)
}

/// How an agent was reset.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub(crate) enum ResetMethod {
    /// The runtime's reset command was submitted to the running agent.
    ResetCommand { command: String },
    /// The unit was restarted and a kick-start message sent.
    Restart { session_alive: bool },
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResetReport {
    pub(crate) agent: String,
    #[serde(flatten)]
    pub(crate) method: ResetMethod,
    /// `ACCEPTED`, `DRAFT`, `DOWN`, `UNCONFIRMED`, `NOT-READY` or `BUSY`
    /// for what was submitted.
    pub(crate) outcome: &'static str,
    pub(crate) delivery: Delivery,
}

/// Clear an agent's conversation: its runtime's `reset_command` from the
/// roster, or (no such command, or `new_process`) a unit restart followed by
/// a kick-start message. Whatever is submitted waits for the program to be
/// ready, and for any other sender to finish.
pub(crate) fn reset(
    fleet: &Fleet<'_>,
    name: &str,
    new_process: bool,
    waits: Waits,
) -> Result<ResetReport, FleetError> {
    let agent = fleet.local_agent(name)?;
    let settings = fleet.roster.profile.roster.runtime(&agent.runtime);
    let reset_command = settings
        .reset_command
        .clone()
        .filter(|c| !c.trim().is_empty());
    let mut options = DeliveryOptions::for_runtime(&settings);
    options.ready_timeout = waits.ready;
    if let (Some(command), false) = (reset_command, new_process) {
        let delivery =
            fleet
                .transport
                .deliver(&agent.name, std::slice::from_ref(&command), &options)?;
        return Ok(ResetReport {
            agent: agent.name.clone(),
            method: ResetMethod::ResetCommand { command },
            outcome: delivery.word(),
            delivery,
        });
    }
    let restarted = unit_action(fleet, name, UnitAction::Restart, waits)?;
    let delivery = match restarted.readiness {
        Some(Readiness::NotReady { why }) => Delivery::NotReady {
            why: format!("after the restart: {why}"),
        },
        Some(Readiness::Down { why }) => Delivery::Down { why },
        _ => {
            let host = crate::shared::host::short(&fleet.roster.host).to_owned();
            let source = source_label(fleet, &host);
            let text = with_preamble(&source, &host, &agent.name, KICK_START);
            fleet.transport.deliver(&agent.name, &[text], &options)?
        }
    };
    Ok(ResetReport {
        agent: agent.name.clone(),
        method: ResetMethod::Restart {
            session_alive: restarted.session_alive,
        },
        outcome: delivery.word(),
        delivery,
    })
}
