//! The fleet verbs over a running fleet: `fleet start` (the canary-first
//! rollout of [`crate::install::rollout`]), `fleet stop` (agents, then the holder),
//! `fleet verify` (every check listed, pass or fail) and `fleet status`
//! (one row per agent from one unit query and one transport query).
//! `fleet init` lives in [`super::membership`] with the other roster writes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AgentView, Fleet, FleetError};
use crate::install::rollout::{self, AgentExpectation, Clock, RolloutPlan, RolloutReport};
use crate::shared::runtime_path::{
    agent_pane_path, find_program, ProgramLookup, SYSTEMD_DEFAULT_PATH,
};
use crate::shared::systemd::units::UnitState;
use crate::shared::systemd::{agent_unit, ServiceManager, HOLDER_UNIT};
use crate::shared::transport::SessionState;

/// One agent's row of `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AgentStatus {
    pub(crate) name: String,
    /// None when no service manager answered.
    pub(crate) unit: Option<UnitState>,
    pub(crate) session: SessionState,
}

impl AgentStatus {
    /// Session alive and unit active (or the unit's state unknown).
    pub(crate) fn healthy(&self) -> bool {
        self.session.alive && self.unit.as_ref().is_none_or(UnitState::is_active)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusReport {
    /// Where the fleet lives: `tmux -L mosaic-fleet`.
    pub(crate) transport: String,
    pub(crate) holder_session: String,
    pub(crate) holder_up: bool,
    pub(crate) holder_unit: Option<UnitState>,
    pub(crate) agents: Vec<AgentStatus>,
    /// Why unit states are missing, when no service manager answered.
    pub(crate) systemd_error: Option<String>,
}

impl StatusReport {
    pub(crate) fn healthy(&self) -> bool {
        self.holder_up && self.agents.iter().all(AgentStatus::healthy)
    }
}

/// Status of every local agent, or of `only`.
pub(crate) fn status(fleet: &Fleet<'_>, only: Option<&str>) -> Result<StatusReport, FleetError> {
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
pub(crate) struct Check {
    pub(crate) check: String,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct VerifyReport {
    pub(crate) ok: bool,
    pub(crate) checks: Vec<Check>,
}

impl VerifyReport {
    pub(crate) fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.ok)
    }
}

/// Holder up, every enabled agent's unit active and session alive, and no
/// fleet session where the operator's own sessions live.
pub(crate) fn verify(fleet: &Fleet<'_>) -> Result<VerifyReport, FleetError> {
    let report = status(fleet, None)?;
    let base_path = fleet
        .services
        .manager_path()
        .unwrap_or_else(|| SYSTEMD_DEFAULT_PATH.to_owned());
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
        if let Some(unit) = &agent.unit {
            check(
                format!("{} enabled", unit.unit),
                unit.is_enabled(),
                if unit.is_enabled() {
                    "enabled".into()
                } else {
                    format!(
                        "{}: a roster agent must be enabled; run mosaic-install",
                        unit.enabled
                    )
                },
            );
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
        let (what, ok, detail) = program_check(fleet, fleet.agent(&agent.name)?, &base_path);
        check(what, ok, detail);
    }
    // A unit enabled outside the roster is a second truth about the fleet.
    let names = fleet.local_names();
    for stray in crate::install::activate::enabled_instances(&fleet.layout)
        .into_iter()
        .filter(|agent| !names.contains(agent))
    {
        check(
            format!("{} not in the roster", agent_unit(&stray)),
            false,
            format!(
                "enabled, but `{stray}` is not in the roster; run mosaic-install (it stops and disables it), or `systemctl --user disable --now {}`",
                agent_unit(&stray)
            ),
        );
    }
    let problems = fleet.transport.isolation_problems(&names);
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

/// Whether the agent's command finds its program on the PATH its pane
/// gets (Mosaic #581), and that PATH: a check of `verify`.
fn program_check(fleet: &Fleet<'_>, agent: &AgentView, base: &str) -> (String, bool, String) {
    let home = &fleet.layout.home;
    let runtime = agent.runtime_path.as_deref().unwrap_or("");
    let path = agent_pane_path(runtime, home, base);
    match find_program(&agent.command, &path, home) {
        ProgramLookup::Found { program, path: at } => (
            format!("agent {} finds `{program}` on its PATH", agent.name),
            true,
            format!("{} (PATH {path})", at.display()),
        ),
        ProgramLookup::NotFound { program } => (
            format!("agent {} finds `{program}` on its PATH", agent.name),
            false,
            format!(
                "not on its PATH {path}; install it, or name its directory in MOSAIC_RUNTIME_BIN and run mosaic-install again"
            ),
        ),
        ProgramLookup::NotChecked { why } => (
            format!("agent {} command", agent.name),
            true,
            format!("not checked ({why}); PATH {path}"),
        ),
    }
}

fn describe_unit(unit: Option<&UnitState>) -> String {
    match unit {
        Some(u) => format!("{} ({}), {}", u.active, u.sub, u.enabled),
        None => "unknown".into(),
    }
}

/// How `fleet start` rolls out.
#[derive(Debug, Clone)]
pub(crate) struct StartOptions {
    /// Default: the roster's first local agent.
    pub(crate) canary: Option<String>,
    pub(crate) wave: usize,
    /// How long one verification may wait for units and sessions.
    pub(crate) timeout: Duration,
    /// How long each freshly started agent must keep running.
    pub(crate) settle: Duration,
}

/// Canary-first start of every local agent, reusing the installer's
/// rollout: units already running are not started again, and a healthy
/// fleet is verified from one look and returned at once.
pub(crate) fn start(
    fleet: &Fleet<'_>,
    options: &StartOptions,
    clock: &dyn Clock,
) -> Result<RolloutReport, FleetError> {
    let names = fleet.local_names();
    let mut units = vec![HOLDER_UNIT.to_owned()];
    units.extend(names.iter().map(|n| agent_unit(n)));
    fleet.require_manager(vec![format!("systemctl --user start {}", units.join(" "))])?;
    let roster = &fleet.roster.profile.roster;
    let plan = RolloutPlan {
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
                runtime_path: a.runtime_path.clone().unwrap_or_default(),
            })
            .collect(),
        canary: options.canary.clone(),
        wave: options.wave,
        timeout: options.timeout,
        settle: options.settle,
        home: fleet.layout.home.clone(),
    };
    let manager: &dyn ServiceManager = fleet.services;
    Ok(rollout::rollout(manager, fleet.transport, clock, &plan)?)
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct StopReport {
    pub(crate) stopped: Vec<String>,
    /// Agent sessions still alive afterwards (should be none).
    pub(crate) sessions_left: Vec<String>,
    pub(crate) holder_up: bool,
}

/// Stop every agent's unit, then the holder's.
pub(crate) fn stop(fleet: &Fleet<'_>) -> Result<StopReport, FleetError> {
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
