//! The verbs that change who is in the fleet: `fleet init` (a roster from a
//! shipped profile), `agent add` and `agent remove`. Each is a roster edit
//! run through the installer itself ([`crate::install::pipeline`] with a
//! [`RosterSource::Edit`]): the edit is made on the installed roster under
//! the install lock, validated as a whole, and installed with everything
//! that follows from it (env files, units) as one journaled transaction and
//! a new generation — so `status`, `rollback` and `uninstall` see it, and a
//! kill midway is undone by the next command. The units follow through the
//! same reconcile as `mosaic-install` ([`crate::install::activate`]): a new agent is
//! enabled (and started when the fleet is running), a removed one stopped
//! and disabled; when the manager refuses, the generation is rolled back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::roster_edit::{self, NewAgent};
use super::{Fleet, FleetError};
use crate::install::activate::{self, ActivateOptions, ActivationReport};
use crate::install::pipeline::InstallError;
use crate::install::pipeline::{
    self, EditRefused, InstallOptions, InstallReport, RosterEdit, RosterSource,
};
use crate::install::plan::Action;
use crate::shared::layout::Layout;
use crate::shared::profile::ROSTER_PATH;
use crate::shared::profile::{name_problem, Profile};
use crate::shared::render::agent_env_path;
use crate::shared::statedir::Recovery;
use crate::shared::systemd::units::FleetServices;
use crate::shared::systemd::{agent_unit, agent_units};

/// What a roster-writing verb did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MembershipReport {
    pub(crate) roster: PathBuf,
    pub(crate) agents: Vec<String>,
    /// The generation recorded (None when nothing changed).
    pub(crate) generation: Option<u64>,
    /// Where the replaced roster (and removed env files) were backed up.
    pub(crate) backup: Option<PathBuf>,
    pub(crate) env_written: Vec<PathBuf>,
    /// Env files the operator changed: kept, ours waits beside them.
    pub(crate) env_kept: Vec<PathBuf>,
    pub(crate) env_removed: Vec<PathBuf>,
    /// Units enabled or disabled.
    pub(crate) units: Vec<String>,
    /// systemctl commands to run later, when no manager answered.
    pub(crate) commands: Vec<String>,
    /// The reconcile of the units that followed.
    pub(crate) systemd: Option<ActivationReport>,
    /// Interrupted runs finished or undone first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) recovered: Vec<Recovery>,
}

impl MembershipReport {
    fn of(layout: &Layout, report: &InstallReport) -> MembershipReport {
        let env = |actions: &[Action]| -> Vec<PathBuf> {
            report
                .files
                .iter()
                .filter(|f| actions.contains(&f.action))
                .filter(|f| {
                    f.path
                        .starts_with(layout.target(Path::new("mosaic/fleet/agents")))
                })
                .map(|f| f.path.clone())
                .collect()
        };
        let backup = report
            .generation
            .map(|n| {
                crate::shared::generation::Generations::new(layout)
                    .backup_dir(n)
                    .join("files")
            })
            .filter(|dir| dir.is_dir());
        MembershipReport {
            roster: layout.target(Path::new(ROSTER_PATH)),
            agents: report.agents.clone(),
            generation: report.generation,
            backup,
            env_written: env(&[Action::Create, Action::Update, Action::Overwrite]),
            env_kept: env(&[Action::Conflict, Action::KeepModified]),
            env_removed: env(&[Action::Remove]),
            units: Vec::new(),
            commands: Vec::new(),
            systemd: None,
            recovered: report.recovered.clone(),
        }
    }
}

impl MembershipReport {
    /// 1 when the units did not follow (a new agent failed its start).
    pub(crate) fn exit_code(&self) -> u8 {
        let failed = self
            .systemd
            .as_ref()
            .is_some_and(|s| s.outcome == crate::install::activate::Outcome::RolloutFailed);
        u8::from(failed)
    }
}

/// Reconcile the units with the edited roster; when the manager refuses,
/// roll the edit back.
fn follow(
    services: &dyn FleetServices,
    layout: &Layout,
    report: &InstallReport,
) -> Result<MembershipReport, FleetError> {
    let mut out = MembershipReport::of(layout, report);
    let opts = ActivateOptions {
        start: false,
        canary: None,
        wave: 4,
        restart_changed: false,
        timeout: std::time::Duration::from_secs(20),
        settle: crate::install::rollout::SETTLE,
    };
    let changes = activate::Changeset::of_install(report);
    let activation = match activate::activate(services, layout, &changes, &opts) {
        Ok(activation) => activation,
        Err(err) => return Err(undo(layout, FleetError::Activate(Box::new(err)))),
    };
    let actions = &activation.actions;
    out.units = agent_units(&actions.enable);
    out.units
        .extend(actions.stop_disable.iter().map(|r| agent_unit(&r.agent)));
    out.commands = activation.commands.clone();
    out.systemd = Some(activation);
    Ok(out)
}

/// Install with the roster edited by `edit` (under the lock).
fn install_edit(
    layout: &Layout,
    host: &str,
    command: String,
    also_replace: Vec<PathBuf>,
    edit: impl Fn(Option<&Profile>) -> Result<String, FleetError> + Send + Sync + 'static,
) -> Result<InstallReport, FleetError> {
    let mut opts = InstallOptions::new(layout.clone());
    opts.host = Some(host.to_owned());
    opts.roster = RosterSource::Edit(RosterEdit {
        command,
        also_replace,
        edit: Arc::new(move |installed| {
            edit(installed).map_err(|err| EditRefused(err.to_string()))
        }),
    });
    pipeline::install(&opts).map_err(|err| match err {
        InstallError::Edit(refused) => FleetError::Refused(refused.0),
        other => FleetError::Install(Box::new(other)),
    })
}

/// `fleet init --profile P [--force]`: the roster from a shipped profile
/// (or a roster file) installed with everything that follows from it.
pub(crate) fn init(
    layout: &Layout,
    services: &dyn FleetServices,
    spec: &str,
    force: bool,
    host: &str,
) -> Result<MembershipReport, FleetError> {
    let profile = Profile::resolve(spec, &crate::shared::bundle::Bundle::embedded())?;
    let roster = layout.target(Path::new(ROSTER_PATH));
    let text = profile.text.clone();
    let report = install_edit(
        layout,
        host,
        format!("fleet init --profile {spec}"),
        Vec::new(),
        {
            let roster = roster.clone();
            move |installed| match installed {
                Some(_) if !force => Err(FleetError::RosterExists {
                    path: roster.clone(),
                }),
                _ => Ok(text.clone()),
            }
        },
    )?;
    follow(services, layout, &report)
}

/// `agent add`: validated like a profile, appended to the roster as text,
/// installed (its env file), then its unit enabled (or the command to run
/// reported when no manager answers). A failed enable rolls it back.
pub(crate) fn add(fleet: &Fleet<'_>, agent: &NewAgent) -> Result<MembershipReport, FleetError> {
    if let Some(problem) = name_problem(&agent.name) {
        return Err(FleetError::BadName {
            name: agent.name.clone(),
            problem,
        });
    }
    let path = fleet.roster.path.clone();
    let new = agent.clone();
    let report = install_edit(
        &fleet.layout,
        &fleet.roster.host,
        format!("agent add {}", agent.name),
        Vec::new(),
        move |installed| {
            let installed = installed.ok_or_else(|| FleetError::NoRoster { path: path.clone() })?;
            if installed.roster.agents.iter().any(|a| a.name == new.name) {
                return Err(FleetError::AgentExists {
                    name: new.name.clone(),
                    path: path.clone(),
                });
            }
            roster_edit::append_agent(&installed.text, &new).map_err(|why| FleetError::RosterEdit {
                path: path.clone(),
                why,
            })
        },
    )?;
    follow(fleet.services, &fleet.layout, &report)
}

/// `agent remove NAME [--purge]`: cut the agent out of the roster and
/// install that (its env file goes when unchanged; with `purge` also when
/// the operator edited it, backed up), then stop and disable its unit; a
/// failed stop or disable rolls it back.
pub(crate) fn remove(
    fleet: &Fleet<'_>,
    name: &str,
    purge: bool,
) -> Result<MembershipReport, FleetError> {
    let agent = fleet.agent(name)?.name.clone();
    let path = fleet.roster.path.clone();
    let target = agent.clone();
    let report = install_edit(
        &fleet.layout,
        &fleet.roster.host,
        format!("agent remove {agent}"),
        if purge {
            vec![agent_env_path(&agent)]
        } else {
            Vec::new()
        },
        move |installed| {
            let installed = installed.ok_or_else(|| FleetError::NoRoster { path: path.clone() })?;
            let names: Vec<&str> = installed
                .roster
                .agents
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            if !names.contains(&target.as_str()) {
                return Err(FleetError::UnknownAgent {
                    name: target.clone(),
                    known: names.join(", "),
                });
            }
            if names.len() == 1 {
                return Err(FleetError::LastAgent {
                    name: target.clone(),
                });
            }
            roster_edit::remove_agent(&installed.text, &target).map_err(|why| {
                FleetError::RosterEdit {
                    path: path.clone(),
                    why,
                }
            })
        },
    )?;
    follow(fleet.services, &fleet.layout, &report)
}

/// The edit is installed but its unit step failed: roll the generation back.
fn undo(layout: &Layout, cause: FleetError) -> FleetError {
    let problems = match crate::install::rollback::rollback_newest(layout, true) {
        Ok(_) => Vec::new(),
        Err(err) => vec![err.to_string()],
    };
    FleetError::Undone {
        cause: Box::new(cause),
        problems,
    }
}
