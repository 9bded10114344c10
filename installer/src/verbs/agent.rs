//! The per-agent verbs: `roster`, `start`/`stop`/`restart` (the agent's unit,
//! then a look at its session), `tail` (recent output), `attach` (the
//! command to exec), `watch` (`attach --read-only`: a viewer that changes
//! nothing) and `reset` (the runtime's reset command, or a restart and a
//! kick-start message when the runtime has none). `agent status` is
//! [`super::fleet::status`] for one agent; `send` has its own module.

use std::ffi::OsString;
use std::time::Duration;

use serde::Serialize;

use super::send::{source_label, with_preamble};
use super::{AgentView, Fleet, FleetError};
use crate::systemd::agent_unit;
use crate::transport::{Delivery, SubmitOptions, Watched};

/// The message a freshly restarted agent gets when its runtime has no reset
/// command.
pub const KICK_START: &str = "You were restarted with a fresh conversation by `mosaic-fleet agent reset`. Wait for your next instruction.";

/// Every agent of the roster, local or not.
pub fn roster<'a>(fleet: &'a Fleet<'_>) -> &'a [AgentView] {
    &fleet.roster.agents
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitAction {
    Start,
    Stop,
    Restart,
}

impl UnitAction {
    pub fn verb(self) -> &'static str {
        match self {
            UnitAction::Start => "start",
            UnitAction::Stop => "stop",
            UnitAction::Restart => "restart",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitActionReport {
    pub agent: String,
    pub unit: String,
    pub action: UnitAction,
    /// Whether the session is alive once the action settled.
    pub session_alive: bool,
    /// Whether the session ended up as the action wants it.
    pub ok: bool,
}

/// Start, stop or restart one agent's unit, then wait (up to `timeout`) for
/// its session to come up or go away.
pub fn unit_action(
    fleet: &Fleet<'_>,
    name: &str,
    action: UnitAction,
    timeout: Duration,
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
    let ok = fleet.wait_session(&agent.name, want_alive, timeout);
    Ok(UnitActionReport {
        agent: agent.name.clone(),
        unit,
        action,
        session_alive: ok == want_alive,
        ok,
    })
}

/// The last `lines` lines of the agent's pane.
pub fn tail(fleet: &Fleet<'_>, name: &str, lines: usize) -> Result<String, FleetError> {
    let agent = fleet.local_agent(name)?;
    Ok(fleet.transport.recent_output(&agent.name, lines)?)
}

/// The program and arguments that attach a terminal to the agent.
pub fn attach(fleet: &Fleet<'_>, name: &str) -> Result<Vec<OsString>, FleetError> {
    let agent = fleet.local_agent(name)?;
    Ok(fleet.transport.attach_command(&agent.name)?)
}

/// Watch the agent on this terminal until the viewer detaches: read-only,
/// its window size unchanged, nothing left behind.
pub fn watch(fleet: &Fleet<'_>, name: &str) -> Result<Watched, FleetError> {
    let agent = fleet.local_agent(name)?;
    Ok(fleet.transport.watch(&agent.name)?)
}

/// How an agent was reset.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum ResetMethod {
    /// The runtime's reset command was submitted to the running agent.
    ResetCommand { command: String },
    /// The unit was restarted and a kick-start message sent.
    Restart { session_alive: bool },
}

#[derive(Debug, Clone, Serialize)]
pub struct ResetReport {
    pub agent: String,
    #[serde(flatten)]
    pub method: ResetMethod,
    /// `ACCEPTED`, `DRAFT` or `DOWN` for what was submitted.
    pub outcome: &'static str,
    pub delivery: Delivery,
}

/// Clear an agent's conversation: its runtime's `reset_command` from the
/// roster, or (no such command, or `new_process`) a unit restart followed by
/// a kick-start message.
pub fn reset(
    fleet: &Fleet<'_>,
    name: &str,
    new_process: bool,
    timeout: Duration,
) -> Result<ResetReport, FleetError> {
    let agent = fleet.local_agent(name)?;
    let reset_command = fleet
        .roster
        .profile
        .roster
        .runtimes
        .get(&agent.runtime)
        .and_then(|r| r.reset_command.clone())
        .filter(|c| !c.trim().is_empty());
    let options = SubmitOptions::default();
    if let (Some(command), false) = (reset_command, new_process) {
        let delivery = fleet.transport.deliver(&agent.name, &command, options)?;
        return Ok(ResetReport {
            agent: agent.name.clone(),
            method: ResetMethod::ResetCommand { command },
            outcome: delivery.word(),
            delivery,
        });
    }
    let restarted = unit_action(fleet, name, UnitAction::Restart, timeout)?;
    let host = crate::host::short(&fleet.roster.host).to_owned();
    let text = with_preamble(&source_label(fleet, &host), &host, &agent.name, KICK_START);
    let delivery = fleet.transport.deliver(&agent.name, &text, options)?;
    Ok(ResetReport {
        agent: agent.name.clone(),
        method: ResetMethod::Restart {
            session_alive: restarted.session_alive,
        },
        outcome: delivery.word(),
        delivery,
    })
}
