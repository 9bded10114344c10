//! Activation: what follows a successful apply — `daemon-reload`, enabling
//! the holder and one unit per roster agent (disabling agents removed from
//! the roster), optionally restarting units whose files changed, and the
//! canary-first rollout. When no user manager is reachable the files stay
//! installed and the exact commands to run later are reported instead.
//! Also the reverse for `uninstall`: stop and disable the fleet's units
//! before their files go.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::install::InstallReport;
use crate::layout::Layout;
use crate::plan::Action;
use crate::render::agent_env_path;
use crate::rollout::{self, AgentExpectation, RolloutPlan, RolloutReport, UnknownCanary};
use crate::systemd::{self, ServiceManager, SystemdError, AGENT_TEMPLATE, HOLDER_UNIT};

#[derive(Debug, Clone)]
pub struct ActivateOptions {
    pub start: bool,
    pub canary: Option<String>,
    pub wave: usize,
    pub restart_changed: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Reloaded and enabled (and started, with --start).
    Done,
    /// Not attempted (`--no-systemctl`, or a --home that is not $HOME).
    Skipped,
    /// No user manager answered.
    Unreachable,
    /// The rollout failed verification.
    RolloutFailed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActivationReport {
    pub outcome: Outcome,
    /// Why it was skipped or unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Commands to run by hand (when skipped or unreachable).
    pub commands: Vec<String>,
    pub enabled: Vec<String>,
    pub disabled: Vec<String>,
    pub restarted: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutReport>,
    /// None when it cannot be told.
    pub linger: Option<bool>,
}

impl ActivationReport {
    /// systemctl was not run (`outcome` says why not): the reason, and the
    /// exact commands to run by hand.
    fn not_run(report: &InstallReport, outcome: Outcome, reason: String) -> ActivationReport {
        ActivationReport {
            outcome,
            reason: Some(reason),
            commands: systemd::manual_commands(&report.agents, &report.removed_agents),
            enabled: Vec::new(),
            disabled: Vec::new(),
            restarted: Vec::new(),
            rollout: None,
            linger: systemd::linger_enabled(),
        }
    }

    /// Skipped on purpose (`--no-systemctl`, a --home that is not $HOME).
    pub fn skipped(report: &InstallReport, reason: String) -> ActivationReport {
        ActivationReport::not_run(report, Outcome::Skipped, reason)
    }

    /// Whether a unit changed state: one disabled, restarted, or started by
    /// the rollout (enabling what is enabled already changes nothing).
    pub fn changed(&self) -> bool {
        !self.disabled.is_empty()
            || !self.restarted.is_empty()
            || self.rollout.as_ref().is_some_and(|r| !r.started.is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error(transparent)]
    Systemd(#[from] systemd::SystemdError),
    #[error(transparent)]
    Canary(#[from] UnknownCanary),
}

pub fn activate(
    mgr: &dyn ServiceManager,
    layout: &Layout,
    report: &InstallReport,
    opts: &ActivateOptions,
) -> Result<ActivationReport, ActivateError> {
    if let Err(why) = mgr.reachable() {
        return Ok(ActivationReport::not_run(
            report,
            Outcome::Unreachable,
            format!("no systemd user manager is reachable ({why})"),
        ));
    }
    let mut out = ActivationReport {
        outcome: Outcome::Done,
        reason: None,
        commands: Vec::new(),
        enabled: systemd::fleet_units(&report.agents),
        disabled: systemd::agent_units(&report.removed_agents),
        restarted: Vec::new(),
        rollout: None,
        linger: systemd::linger_enabled(),
    };
    mgr.daemon_reload()?;
    if !out.disabled.is_empty() {
        mgr.disable(&out.disabled)?;
    }
    mgr.enable(&out.enabled)?;

    if opts.restart_changed {
        out.restarted = changed_running_units(mgr, report);
        if !out.restarted.is_empty() {
            mgr.restart(&out.restarted)?;
        }
    }
    if opts.start {
        let plan = RolloutPlan {
            socket: report.socket.clone(),
            holder_session: report.holder_session.clone(),
            agents: report
                .agents
                .iter()
                .map(|name| {
                    let env = layout.target(&agent_env_path(name));
                    AgentExpectation::from_env_file(Path::new(&env), name, &report.socket)
                })
                .collect(),
            canary: opts.canary.clone(),
            wave: opts.wave,
            timeout: opts.timeout,
        };
        let rollout = rollout::rollout(mgr, &plan)?;
        if !rollout.ok {
            out.outcome = Outcome::RolloutFailed;
        }
        out.rollout = Some(rollout);
    }
    Ok(out)
}

/// Running units whose unit file this install changed in what systemd reads
/// (a new version in the header comment alone restarts nothing). Restarting
/// the holder restarts every agent with it (PartOf=), so it comes alone.
fn changed_running_units(mgr: &dyn ServiceManager, report: &InstallReport) -> Vec<String> {
    let changed = |name: &str| {
        report.plan.files.iter().any(|f| {
            f.path.ends_with(Path::new("systemd/user").join(name))
                && matches!(f.action, Action::Update | Action::Overwrite)
                && directives(f.current.as_ref().map(|c| c.bytes.as_slice()))
                    != directives(f.desired.as_deref())
        })
    };
    let active = |unit: &str| mgr.property(unit, "ActiveState").as_deref() == Ok("active");
    if changed(HOLDER_UNIT) && active(HOLDER_UNIT) {
        return vec![HOLDER_UNIT.to_owned()];
    }
    if !changed(AGENT_TEMPLATE) {
        return Vec::new();
    }
    systemd::agent_units(&report.agents)
        .into_iter()
        .filter(|unit| active(unit))
        .collect()
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
pub struct DeactivationReport {
    /// `Done`, or `Unreachable` with the commands to run by hand.
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub commands: Vec<String>,
    /// Units stopped and disabled (agents first, the holder last).
    pub units: Vec<String>,
}

/// Before `uninstall` removes the unit files: stop and disable the agents'
/// units and the holder (systemd cannot disable a unit whose file is gone).
/// Run [`ServiceManager::daemon_reload`] once the files are removed, so that
/// the manager forgets the units.
pub fn deactivate(
    mgr: &dyn ServiceManager,
    agents: &[String],
) -> Result<DeactivationReport, SystemdError> {
    let mut units = systemd::agent_units(agents);
    units.push(HOLDER_UNIT.to_owned());
    if let Err(why) = mgr.reachable() {
        return Ok(DeactivationReport {
            outcome: Outcome::Unreachable,
            reason: Some(format!("no systemd user manager is reachable ({why})")),
            commands: systemd::manual_uninstall_commands(agents),
            units: Vec::new(),
        });
    }
    mgr.stop(&units)?;
    mgr.disable(&units)?;
    Ok(DeactivationReport {
        outcome: Outcome::Done,
        reason: None,
        commands: Vec::new(),
        units,
    })
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
