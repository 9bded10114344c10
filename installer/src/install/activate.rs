//! Activation: what follows a successful apply — the reconcile of the units
//! with the roster just installed ([`crate::install::reconcile`] decides, this module
//! gathers the facts and carries the actions out): `daemon-reload`, stop
//! and disable agents that left, enable the holder and every roster agent,
//! restart what changed (`--restart-changed`), and start canary-first
//! (`--start`, or a new agent on a running fleet). When no user manager is
//! reachable the files stay installed and the exact commands to run later
//! are reported instead. Also the reverse for `uninstall`: stop and disable
//! the fleet's units before their files go.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::install::pipeline::InstallReport;
use crate::install::plan::Action;
use crate::install::reconcile::{self, Actions, Facts, Options, UnitFacts};
use crate::install::rollout::{
    self, AgentExpectation, RolloutPlan, RolloutReport, SystemClock, UnknownCanary,
};
use crate::shared::envfile;
use crate::shared::layout::Layout;
use crate::shared::render::{agent_env_path, local_env_path};
use crate::shared::systemd::units::{FleetServices, UnitState};
use crate::shared::systemd::{self, SystemdError, AGENT_TEMPLATE, HOLDER_UNIT};
use crate::shared::transport::tmux::TmuxTransport;

#[derive(Debug, Clone)]
pub(crate) struct ActivateOptions {
    pub(crate) start: bool,
    pub(crate) canary: Option<String>,
    pub(crate) wave: usize,
    pub(crate) restart_changed: bool,
    pub(crate) timeout: Duration,
    /// How long each freshly started agent must keep running.
    pub(crate) settle: Duration,
}

/// What the units follow: the roster a run installed (or restored) and
/// what it changed on disk that a running unit reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct Changeset {
    pub(crate) agents: Vec<String>,
    pub(crate) previous_agents: Vec<String>,
    pub(crate) socket: String,
    pub(crate) holder_session: String,
    /// What systemd reads from the holder unit changed.
    pub(crate) holder_changed: bool,
    /// What systemd reads from the agent template changed.
    pub(crate) template_changed: bool,
    /// Agents whose env file variables changed.
    pub(crate) env_changed: Vec<String>,
}

impl Changeset {
    /// From an install's plan (what it writes or would write).
    pub(crate) fn of_install(report: &InstallReport) -> Changeset {
        Changeset {
            agents: report.agents.clone(),
            previous_agents: report.previous_agents.clone(),
            socket: report.socket.clone(),
            holder_session: report.holder_session.clone(),
            holder_changed: unit_changed(report, HOLDER_UNIT),
            template_changed: unit_changed(report, AGENT_TEMPLATE),
            env_changed: report
                .agents
                .iter()
                .filter(|agent| env_changed(report, agent))
                .cloned()
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// Reloaded and enabled (and started, with --start).
    Done,
    /// Not attempted (`--no-systemctl`, or a --home that is not $HOME).
    Skipped,
    /// No user manager answered.
    Unreachable,
    /// The rollout failed verification.
    RolloutFailed,
    /// `--dry-run`: what would be done, nothing done.
    Preview,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ActivationReport {
    pub(crate) outcome: Outcome,
    /// Why it was skipped or unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Commands to run by hand (when skipped or unreachable).
    pub(crate) commands: Vec<String>,
    /// What the run did (or, not run, would do) to the units, and why.
    pub(crate) actions: Actions,
    /// Units enabled (the holder and every roster agent).
    pub(crate) enabled: Vec<String>,
    /// Units stopped (when running) and disabled.
    pub(crate) disabled: Vec<String>,
    /// Units restarted.
    pub(crate) restarted: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rollout: Option<RolloutReport>,
    /// None when it cannot be told.
    pub(crate) linger: Option<bool>,
}

impl ActivationReport {
    /// systemctl was not run (`outcome` says why not): the reason, the
    /// actions as far as they can be told without a manager, and the exact
    /// commands to run by hand.
    fn not_run(report: &Changeset, outcome: Outcome, reason: String) -> ActivationReport {
        // Without a manager, assume what the last install enabled still is.
        let facts = Facts {
            desired: report.agents.clone(),
            previous: report.previous_agents.clone(),
            units: report
                .previous_agents
                .iter()
                .map(|agent| {
                    let unit = UnitFacts {
                        enabled: true,
                        active: false,
                    };
                    (agent.clone(), unit)
                })
                .collect(),
            ..Facts::default()
        };
        let actions = reconcile::reconcile(&facts, Options::default());
        let removed: Vec<String> = actions
            .stop_disable
            .iter()
            .map(|r| r.agent.clone())
            .collect();
        ActivationReport {
            outcome,
            reason: Some(reason),
            commands: systemd::manual_commands(&report.agents, &removed),
            actions,
            enabled: Vec::new(),
            disabled: Vec::new(),
            restarted: Vec::new(),
            rollout: None,
            linger: systemd::linger_enabled(),
        }
    }

    /// Skipped on purpose (`--no-systemctl`, a --home that is not $HOME).
    pub(crate) fn skipped(report: &Changeset, reason: String) -> ActivationReport {
        ActivationReport::not_run(report, Outcome::Skipped, reason)
    }

    /// Whether a unit changed state: one disabled, restarted, or started by
    /// the rollout (enabling what is enabled already changes nothing).
    pub(crate) fn changed(&self) -> bool {
        !self.disabled.is_empty()
            || !self.restarted.is_empty()
            || self.rollout.as_ref().is_some_and(|r| !r.started.is_empty())
    }
}

/// `--dry-run`: the actions a run would take, from the same facts (the
/// manager is only asked, never told; without one, from the receipts).
pub(crate) fn preview(
    mgr: Option<&dyn FleetServices>,
    layout: &Layout,
    report: &Changeset,
    opts: &ActivateOptions,
) -> Result<ActivationReport, ActivateError> {
    let reachable = mgr.filter(|m| m.reachable().is_ok());
    let mut out = ActivationReport::not_run(report, Outcome::Preview, "dry run".into());
    if let Some(mgr) = reachable {
        let facts = gather(mgr, layout, report)?;
        out.actions = reconcile::reconcile(
            &facts,
            Options {
                start: opts.start,
                restart_changed: opts.restart_changed,
            },
        );
    }
    out.commands.clear();
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ActivateError {
    #[error(transparent)]
    Systemd(#[from] systemd::SystemdError),
    #[error(transparent)]
    Canary(#[from] UnknownCanary),
}

/// Reconcile the units with the roster just installed: gather the facts,
/// decide ([`reconcile`]), then reload, stop and disable what left,
/// enable what is new, restart what changed, and start (canary-first,
/// verified) what should run.
pub(crate) fn activate(
    mgr: &dyn FleetServices,
    layout: &Layout,
    report: &Changeset,
    opts: &ActivateOptions,
) -> Result<ActivationReport, ActivateError> {
    if let Err(why) = mgr.reachable() {
        return Ok(ActivationReport::not_run(
            report,
            Outcome::Unreachable,
            format!("no systemd user manager is reachable ({why})"),
        ));
    }
    mgr.daemon_reload()?;
    let facts = gather(mgr, layout, report)?;
    let actions = reconcile::reconcile(
        &facts,
        Options {
            start: opts.start,
            restart_changed: opts.restart_changed,
        },
    );
    let mut out = ActivationReport {
        outcome: Outcome::Done,
        reason: None,
        commands: Vec::new(),
        enabled: Vec::new(),
        disabled: Vec::new(),
        restarted: Vec::new(),
        actions: actions.clone(),
        rollout: None,
        linger: systemd::linger_enabled(),
    };
    let gone: Vec<String> = actions
        .stop_disable
        .iter()
        .map(|r| r.agent.clone())
        .collect();
    if !gone.is_empty() {
        let units = systemd::agent_units(&gone);
        let running: Vec<String> = units
            .iter()
            .zip(&gone)
            .filter(|(_, agent)| facts.units.get(*agent).is_some_and(|u| u.active))
            .map(|(unit, _)| unit.clone())
            .collect();
        if !running.is_empty() {
            mgr.stop(&running)?;
        }
        mgr.disable(&units)?;
        out.disabled = units;
    }
    // The holder and every agent: enabling what already is changes nothing.
    out.enabled = systemd::fleet_units(&report.agents);
    mgr.enable(&out.enabled)?;
    if actions.restart_holder.is_some() {
        mgr.restart(&[HOLDER_UNIT.to_owned()])?;
        out.restarted.push(HOLDER_UNIT.to_owned());
    }
    let restart: Vec<String> = actions.restart.iter().map(|r| r.agent.clone()).collect();
    if !restart.is_empty() {
        let units = systemd::agent_units(&restart);
        mgr.restart(&units)?;
        out.restarted.extend(units);
    }
    if !actions.start.is_empty() {
        let plan = RolloutPlan {
            holder_session: report.holder_session.clone(),
            agents: actions
                .start
                .iter()
                .map(|name| {
                    let env = layout.target(&agent_env_path(name));
                    AgentExpectation::from_env_file(Path::new(&env), name, &report.socket)
                })
                .collect(),
            canary: opts.canary.clone().filter(|_| actions.start_fleet),
            wave: opts.wave,
            timeout: opts.timeout,
            settle: opts.settle,
            home: layout.home.clone(),
        };
        let transport = plan.agents.iter().fold(
            TmuxTransport::new(&report.socket, &report.holder_session),
            |transport, agent| transport.with_agent_socket(&agent.name, &agent.socket),
        );
        let rollout = rollout::rollout(mgr, &transport, &SystemClock, &plan)?;
        if !rollout.ok {
            out.outcome = Outcome::RolloutFailed;
        }
        out.rollout = Some(rollout);
    }
    Ok(out)
}

/// What the decision needs: the unit states of every agent the roster,
/// the last receipt or a `.wants/` link names, and what this install
/// changed in each agent's effective settings.
fn gather(
    mgr: &dyn FleetServices,
    layout: &Layout,
    report: &Changeset,
) -> Result<Facts, SystemdError> {
    let mut names: Vec<String> = report.agents.clone();
    for agent in report
        .previous_agents
        .iter()
        .chain(&enabled_instances(layout))
    {
        if !names.contains(agent) {
            names.push(agent.clone());
        }
    }
    let mut units = systemd::agent_units(&names);
    units.push(HOLDER_UNIT.to_owned());
    let states = mgr.unit_states(&units)?;
    let mut facts = Facts {
        desired: report.agents.clone(),
        previous: report.previous_agents.clone(),
        holder_active: states.last().is_some_and(UnitState::is_active),
        ..Facts::default()
    };
    for (agent, state) in names.iter().zip(&states) {
        facts.units.insert(
            agent.clone(),
            UnitFacts {
                enabled: state.is_enabled(),
                active: state.is_active(),
            },
        );
    }
    if report.holder_changed {
        facts.holder_changed = Some("its unit file changed".into());
    }
    for (agent, state) in report.agents.iter().zip(&states) {
        let reason = if report.template_changed {
            Some("the agent unit changed".to_owned())
        } else if report.env_changed.contains(agent) {
            Some(format!("its settings changed ({agent}.env)"))
        } else if local_env_newer(layout, agent, state.active_since) {
            Some(format!("{agent}.local.env changed after it started"))
        } else {
            None
        };
        if let Some(reason) = reason {
            facts.changed.insert(agent.clone(), reason);
        }
    }
    Ok(facts)
}

/// Agent instances enabled in the user manager's config (`*.wants/` links).
pub(crate) fn enabled_instances(layout: &Layout) -> Vec<String> {
    let dir = layout.target(Path::new("systemd/user"));
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wants"))
        .flat_map(|wants| {
            std::fs::read_dir(wants.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|link| {
            let name = link.file_name().to_string_lossy().into_owned();
            let agent = name
                .strip_prefix("mosaic-agent@")?
                .strip_suffix(".service")?;
            (!agent.is_empty()).then(|| agent.to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Did this install change what systemd reads from `name` (not just its
/// header comment)?
fn unit_changed(report: &InstallReport, name: &str) -> bool {
    report.plan.files.iter().any(|f| {
        f.path.ends_with(Path::new("systemd/user").join(name))
            && matches!(f.action, Action::Update | Action::Overwrite)
            && directives(f.current.as_ref().map(|c| c.bytes.as_slice()))
                != directives(f.desired.as_deref())
    })
}

/// Did this install change the variables of `agent`'s env file?
fn env_changed(report: &InstallReport, agent: &str) -> bool {
    let path = agent_env_path(agent);
    report.plan.files.iter().any(|f| {
        f.path == path
            && matches!(f.action, Action::Update | Action::Overwrite)
            && variables(f.current.as_ref().map(|c| c.bytes.as_slice()))
                != variables(f.desired.as_deref())
    })
}

fn variables(bytes: Option<&[u8]>) -> std::collections::BTreeMap<String, String> {
    envfile::parse(&String::from_utf8_lossy(bytes.unwrap_or_default()))
        .into_iter()
        .collect()
}

/// Was `agent`'s `.local.env` modified after its unit became active?
fn local_env_newer(layout: &Layout, agent: &str, active_since: Option<u64>) -> bool {
    let Some(since) = active_since else {
        return false;
    };
    let local = layout.target(&local_env_path(agent));
    std::fs::metadata(local)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .is_some_and(|modified| modified.as_secs() >= since)
}

/// A unit file's lines as systemd reads them: no comments, no blank lines.
fn directives(bytes: Option<&[u8]>) -> Vec<String> {
    String::from_utf8_lossy(bytes.unwrap_or_default())
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with(';'))
        .map(str::to_owned)
        .collect()
}

/// What `uninstall` did to the running fleet.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeactivationReport {
    /// `Done`, `Skipped` or `Unreachable` (then `commands` are to run by
    /// hand), or `Preview` (`--dry-run`).
    pub(crate) outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// The systemctl commands run, in order; or, not run, the ones to run.
    pub(crate) commands: Vec<String>,
    /// Units that were running and were stopped (or would be).
    pub(crate) stopped: Vec<String>,
    /// Units disabled (agents first, the holder last).
    pub(crate) units: Vec<String>,
}

/// The fleet's units as `uninstall` takes them down: every agent the
/// receipt installed or a `.wants/` link enables, then the holder.
pub(crate) fn fleet_units_to_remove(layout: &Layout, agents: &[String]) -> Vec<String> {
    let mut names = agents.to_vec();
    for agent in enabled_instances(layout) {
        if !names.contains(&agent) {
            names.push(agent);
        }
    }
    let mut units = systemd::agent_units(&names);
    units.push(HOLDER_UNIT.to_owned());
    units
}

/// Before `uninstall` removes the unit files: stop and disable the agents'
/// units and the holder (systemd cannot disable a unit whose file is gone).
/// Run [`crate::shared::systemd::ServiceManager::daemon_reload`] once the files are removed, so that
/// the manager forgets the units (and add it to `commands`).
pub(crate) fn deactivate(
    mgr: &dyn FleetServices,
    layout: &Layout,
    agents: &[String],
) -> Result<DeactivationReport, SystemdError> {
    let units = fleet_units_to_remove(layout, agents);
    if let Err(why) = mgr.reachable() {
        return Ok(DeactivationReport {
            outcome: Outcome::Unreachable,
            reason: Some(format!("no systemd user manager is reachable ({why})")),
            commands: systemd::manual_uninstall_commands(&units),
            stopped: Vec::new(),
            units: Vec::new(),
        });
    }
    let running: Vec<String> = mgr
        .unit_states(&units)?
        .into_iter()
        .filter(UnitState::is_active)
        .map(|state| state.unit)
        .collect();
    let mut commands = Vec::new();
    if !running.is_empty() {
        mgr.stop(&running)?;
        commands.push(format!("systemctl --user stop {}", running.join(" ")));
    }
    mgr.disable(&units)?;
    commands.push(format!("systemctl --user disable {}", units.join(" ")));
    Ok(DeactivationReport {
        outcome: Outcome::Done,
        reason: None,
        commands,
        stopped: running,
        units,
    })
}

/// `uninstall` without touching the manager (`--no-systemctl`, a foreign
/// `--home`, `--dry-run`): what would be stopped and the commands to run.
pub(crate) fn deactivation_not_run(
    mgr: Option<&dyn FleetServices>,
    layout: &Layout,
    agents: &[String],
    outcome: Outcome,
    reason: String,
) -> DeactivationReport {
    let units = fleet_units_to_remove(layout, agents);
    let stopped = mgr
        .filter(|m| m.reachable().is_ok())
        .and_then(|m| m.unit_states(&units).ok())
        .map(|states| {
            states
                .into_iter()
                .filter(UnitState::is_active)
                .map(|s| s.unit)
                .collect()
        })
        .unwrap_or_default();
    DeactivationReport {
        outcome,
        reason: Some(reason),
        commands: systemd::manual_uninstall_commands(&units),
        stopped,
        units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_not_directives() {
        let old = b"# Managed by mosaic-install 0.1.0\n[Service]\nRestart=always\n";
        let new = b"# Managed by mosaic-install 0.2.0\n\n[Service]\n; note\nRestart=always\n";
        assert_eq!(directives(Some(old)), directives(Some(new)));
        assert_ne!(
            directives(Some(old)),
            directives(Some(b"[Service]\nRestart=no\n"))
        );
    }
}
