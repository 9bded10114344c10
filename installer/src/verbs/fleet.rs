//! The fleet verbs over a running fleet: `fleet start` (the canary-first
//! rollout of [`crate::rollout`]), `fleet stop` (agents, then the holder),
//! `fleet verify` (every check listed, pass or fail) and `fleet status`
//! (one row per agent from one unit query and one transport query).
//! `fleet init` lives in [`super::membership`] with the other roster writes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::UnitState;
use super::{Fleet, FleetError};
use crate::rollout::{self, AgentExpectation, RolloutPlan, RolloutReport};
use crate::systemd::{agent_unit, ServiceManager, HOLDER_UNIT};
use crate::transport::SessionState;

/// One agent's row of `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentStatus {
    pub name: String,
    /// None when no service manager answered.
    pub unit: Option<UnitState>,
    pub session: SessionState,
}

impl AgentStatus {
    /// Session alive and unit active (or the unit's state unknown).
    pub fn healthy(&self) -> bool {
        self.session.alive && self.unit.as_ref().is_none_or(UnitState::is_active)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReport {
    /// Where the fleet lives: `tmux -L mosaic-fleet`.
    pub transport: String,
    pub holder_session: String,
    pub holder_up: bool,
    pub holder_unit: Option<UnitState>,
    pub agents: Vec<AgentStatus>,
    /// Why unit states are missing, when no service manager answered.
    pub systemd_error: Option<String>,
}

impl StatusReport {
    pub fn healthy(&self) -> bool {
        self.holder_up && self.agents.iter().all(AgentStatus::healthy)
    }
}

/// Status of every local agent, or of `only`.
pub fn status(fleet: &Fleet<'_>, only: Option<&str>) -> Result<StatusReport, FleetError> {
    let names = match only {
        Some(name) => vec![fleet.local_agent(name)?.name.clone()],
        None => fleet.local_names(),
    };
    let mut units = vec![HOLDER_UNIT.to_owned()];
    units.extend(names.iter().map(|n| agent_unit(n)));
    let (mut states, systemd_error) = match fleet.services.unit_states(&units) {
        Ok(states) => (states.into_iter().map(Some).collect(), None),
        Err(err) => (vec![None; units.len()], Some(err.message)),
    };
    let view = fleet.transport.sessions(&names)?;
    let holder_unit = states.remove(0);
    let agents = names
        .iter()
        .zip(states)
        .map(|(name, unit)| AgentStatus {
            name: name.clone(),
            unit,
            session: view
                .agents
                .get(name)
                .cloned()
                .unwrap_or_else(SessionState::down),
        })
        .collect();
    Ok(StatusReport {
        transport: fleet.transport.describe(),
        holder_session: fleet.roster.profile.roster.holder_session().to_owned(),
        holder_up: view.holder_up,
        holder_unit,
        agents,
        systemd_error,
    })
}

/// One check of `fleet verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl VerifyReport {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }
}

/// Holder up, every enabled agent's unit active and session alive, and no
/// fleet session where the operator's own sessions live.
pub fn verify(fleet: &Fleet<'_>) -> Result<VerifyReport, FleetError> {
    let report = status(fleet, None)?;
    let mut checks = Vec::new();
    let mut check = |check: String, ok: bool, detail: String| {
        checks.push(Check { check, ok, detail });
    };
    match &report.systemd_error {
        Some(why) => check("systemd user manager".into(), false, why.clone()),
        None => {
            let holder = report.holder_unit.as_ref();
            check(
                format!("{HOLDER_UNIT} active"),
                holder.is_some_and(UnitState::is_active),
                describe_unit(holder),
            );
        }
    }
    check(
        format!(
            "holder session {} on {}",
            report.holder_session, report.transport
        ),
        report.holder_up,
        if report.holder_up { "up" } else { "down" }.into(),
    );
    for agent in &report.agents {
        // Without a manager every agent is checked; with one, the enabled.
        if agent.unit.as_ref().is_some_and(|u| !u.is_enabled()) {
            continue;
        }
        if let Some(unit) = &agent.unit {
            check(
                format!("{} active", unit.unit),
                unit.is_active(),
                describe_unit(Some(unit)),
            );
        }
        check(
            format!("agent {} session alive", agent.name),
            agent.session.alive,
            match &agent.session.command {
                Some(command) if agent.session.alive => format!("running {command}"),
                _ => "no live session".into(),
            },
        );
    }
    let problems = fleet.transport.isolation_problems(&fleet.local_names());
    check(
        "default tmux server untouched".into(),
        problems.is_empty(),
        if problems.is_empty() {
            "no fleet session on it".into()
        } else {
            problems.join("; ")
        },
    );
    Ok(VerifyReport {
        ok: checks.iter().all(|c| c.ok),
        checks,
    })
}

fn describe_unit(unit: Option<&UnitState>) -> String {
    match unit {
        Some(u) => format!("{} ({}), {}", u.active, u.sub, u.enabled),
        None => "unknown".into(),
    }
}

/// Canary-first start of every local agent, reusing the installer's rollout.
pub fn start(
    fleet: &Fleet<'_>,
    canary: Option<String>,
    wave: usize,
    timeout: Duration,
) -> Result<RolloutReport, FleetError> {
    let names = fleet.local_names();
    let mut units = vec![HOLDER_UNIT.to_owned()];
    units.extend(names.iter().map(|n| agent_unit(n)));
    fleet.require_manager(vec![format!("systemctl --user start {}", units.join(" "))])?;
    let roster = &fleet.roster.profile.roster;
    let plan = RolloutPlan {
        socket: roster.socket().to_owned(),
        holder_session: roster.holder_session().to_owned(),
        agents: fleet
            .roster
            .agents
            .iter()
            .filter(|a| a.is_local())
            .map(|a| AgentExpectation {
                name: a.name.clone(),
                socket: a.socket.clone(),
                command: a.command.clone(),
            })
            .collect(),
        canary,
        wave,
        timeout,
    };
    let manager: &dyn ServiceManager = fleet.services;
    Ok(rollout::rollout(manager, &plan)?)
}

#[derive(Debug, Clone, Serialize)]
pub struct StopReport {
    pub stopped: Vec<String>,
    /// Agent sessions still alive afterwards (should be none).
    pub sessions_left: Vec<String>,
    pub holder_up: bool,
}

/// Stop every agent's unit, then the holder's.
pub fn stop(fleet: &Fleet<'_>) -> Result<StopReport, FleetError> {
    let names = fleet.local_names();
    let agents: Vec<String> = names.iter().map(|n| agent_unit(n)).collect();
    let holder = vec![HOLDER_UNIT.to_owned()];
    let all = [agents.clone(), holder.clone()].concat();
    fleet.require_manager(vec![format!("systemctl --user stop {}", all.join(" "))])?;
    if !agents.is_empty() {
        fleet.services.stop(&agents)?;
    }
    fleet.services.stop(&holder)?;
    let view = fleet.transport.sessions(&names)?;
    Ok(StopReport {
        stopped: all,
        sessions_left: view
            .agents
            .iter()
            .filter(|(_, s)| s.alive)
            .map(|(n, _)| n.clone())
            .collect(),
        holder_up: view.holder_up,
    })
}
