//! The verbs that change who is in the fleet: `fleet init` (a roster from a
//! shipped profile), `agent add` and `agent remove`. Each validates first
//! (the profile rules, on the whole edited roster), then writes through the
//! installer's [`Transaction`] under the install lock: atomic writes, the
//! replaced roster backed up, every step undone on error. Env files are
//! rendered exactly as `mosaic-install` renders them and, being the
//! operator's, never overwritten.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::roster_edit::{self, NewAgent};
use super::{backup_dir, Fleet, FleetError};
use crate::apply::{ApplyError, Transaction};
use crate::bundle::Bundle;
use crate::install::ROSTER_PATH;
use crate::layout::Layout;
use crate::lock::InstallLock;
use crate::profile::{name_problem, Profile};
use crate::render::{self, agent_env_path};
use crate::systemd::agent_unit;

/// What a roster-writing verb did.
#[derive(Debug, Clone, Serialize)]
pub struct MembershipReport {
    pub roster: PathBuf,
    pub agents: Vec<String>,
    /// Where the replaced roster (and removed env file) were backed up.
    pub backup: Option<PathBuf>,
    pub env_written: Vec<PathBuf>,
    /// Existing env files left as they were (they are the operator's).
    pub env_kept: Vec<PathBuf>,
    pub env_removed: Vec<PathBuf>,
    /// Units enabled or disabled.
    pub units: Vec<String>,
    /// systemctl commands to run later, when no manager answered.
    pub commands: Vec<String>,
}

/// The writes of one verb: one transaction under the install lock, kept
/// only by [`ConfigWrite::commit`]; a failed step rolls everything back.
struct ConfigWrite<'a> {
    layout: &'a Layout,
    /// None once rolled back.
    tx: Option<Transaction>,
    backups: PathBuf,
    _lock: InstallLock,
    report: MembershipReport,
}

impl<'a> ConfigWrite<'a> {
    fn begin(layout: &'a Layout, verb: &str, agents: Vec<String>) -> Result<Self, FleetError> {
        let lock = InstallLock::acquire(&layout.lock())?;
        let backups = backup_dir(layout, verb);
        Ok(ConfigWrite {
            layout,
            tx: Some(Transaction::begin(
                vec![layout.config.clone()],
                backups.clone(),
            )),
            backups,
            _lock: lock,
            report: MembershipReport {
                roster: layout.target(Path::new(ROSTER_PATH)),
                agents,
                backup: None,
                env_written: Vec::new(),
                env_kept: Vec::new(),
                env_removed: Vec::new(),
                units: Vec::new(),
                commands: Vec::new(),
            },
        })
    }

    fn write_roster(&mut self, text: &str) -> Result<(), FleetError> {
        let path = self.report.roster.clone();
        let mode = std::fs::metadata(&path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        self.apply(|tx| {
            tx.create_dir_all(path.parent().expect("roster has a parent"), 0o755)?;
            tx.write(&path, text.as_bytes(), mode)
        })
    }

    /// Write the agent's env file from `profile` unless one exists.
    fn write_env(&mut self, profile: &Profile, agent: &str) -> Result<(), FleetError> {
        let rel = agent_env_path(agent);
        let path = self.layout.target(&rel);
        if path.exists() {
            self.report.env_kept.push(path);
            return Ok(());
        }
        let tree = render::render(
            &Bundle::embedded(),
            profile,
            &self.layout.unit_mosaic_dir()?,
        )?;
        // An agent on another host has no env file here.
        if let Some(file) = tree.files.iter().find(|f| f.path == rel) {
            self.apply(|tx| {
                tx.create_dir_all(path.parent().expect("env file has a parent"), 0o700)?;
                tx.write(&path, &file.contents, file.mode)
            })?;
            self.report.env_written.push(path);
        }
        Ok(())
    }

    fn remove_env(&mut self, path: PathBuf) -> Result<(), FleetError> {
        self.apply(|tx| tx.remove(&path))?;
        self.report.env_removed.push(path);
        Ok(())
    }

    /// Run one step; when it fails, undo every step so far.
    fn apply(
        &mut self,
        step: impl FnOnce(&mut Transaction) -> Result<(), ApplyError>,
    ) -> Result<(), FleetError> {
        let tx = self.tx.as_mut().expect("steps run before any rollback");
        step(tx).map_err(|failure| FleetError::Apply {
            failure: Box::new(failure),
            problems: self
                .tx
                .take()
                .map(Transaction::rollback)
                .unwrap_or_default(),
        })
    }

    /// Undo every write, for a failure after them (a failed enable).
    fn undo(mut self, cause: FleetError) -> FleetError {
        FleetError::Undone {
            cause: Box::new(cause),
            problems: self
                .tx
                .take()
                .map(Transaction::rollback)
                .unwrap_or_default(),
        }
    }

    fn commit(mut self) -> MembershipReport {
        if let Some(tx) = self.tx.take() {
            tx.commit();
        }
        let mut report = self.report;
        report.backup = self.backups.is_dir().then_some(self.backups);
        report
    }
}

/// `fleet init --profile P [--force]`: the roster from a shipped profile
/// (or a roster file), and env files for its agents that have none.
pub fn init(
    layout: &Layout,
    spec: &str,
    force: bool,
    host: &str,
) -> Result<MembershipReport, FleetError> {
    let mut profile = Profile::resolve(spec, &Bundle::embedded())?;
    profile.host = host.to_owned();
    let roster = layout.target(Path::new(ROSTER_PATH));
    if roster.exists() && !force {
        return Err(FleetError::RosterExists { path: roster });
    }
    let names = profile
        .roster
        .agents
        .iter()
        .map(|a| a.name.clone())
        .collect();
    let mut write = ConfigWrite::begin(layout, "init", names)?;
    write.write_roster(&profile.text)?;
    for agent in profile.local_agents() {
        write.write_env(&profile, &agent.name)?;
    }
    Ok(write.commit())
}

/// `agent add`: validated like a profile, appended to the roster as text,
/// its env file written, then its unit enabled (or the command to run
/// reported when no manager answers). A failed enable undoes the writes.
pub fn add(fleet: &Fleet<'_>, agent: &NewAgent) -> Result<MembershipReport, FleetError> {
    if let Some(problem) = name_problem(&agent.name) {
        return Err(FleetError::BadName {
            name: agent.name.clone(),
            problem,
        });
    }
    let roster = &fleet.roster;
    if roster.agents.iter().any(|a| a.name == agent.name) {
        return Err(FleetError::AgentExists {
            name: agent.name.clone(),
            path: roster.path.clone(),
        });
    }
    let (text, profile) = edited_roster(
        fleet,
        roster_edit::append_agent(&roster.profile.text, agent),
    )?;
    let mut write = ConfigWrite::begin(&fleet.layout, "add", agent_names(&profile))?;
    write.write_roster(&text)?;
    write.write_env(&profile, &agent.name)?;
    let units = vec![agent_unit(&agent.name)];
    if fleet.services.reachable().is_ok() {
        if let Err(err) = fleet.services.enable(&units) {
            return Err(write.undo(err.into()));
        }
        write.report.units = units;
    } else {
        write.report.commands = vec![format!("systemctl --user enable --now {}", units[0])];
    }
    Ok(write.commit())
}

/// `agent remove NAME [--purge]`: cut the agent out of the roster (and its
/// env file with `purge`), stop and disable its unit, then keep the writes;
/// a failed stop or disable undoes them.
pub fn remove(fleet: &Fleet<'_>, name: &str, purge: bool) -> Result<MembershipReport, FleetError> {
    let agent = fleet.agent(name)?;
    let roster = &fleet.roster;
    if roster.agents.len() == 1 {
        return Err(FleetError::LastAgent {
            name: name.to_owned(),
        });
    }
    let (text, profile) = edited_roster(
        fleet,
        roster_edit::remove_agent(&roster.profile.text, &agent.name),
    )?;
    let mut write = ConfigWrite::begin(&fleet.layout, "remove", agent_names(&profile))?;
    write.write_roster(&text)?;
    let env = fleet.layout.target(&agent_env_path(&agent.name));
    if env.exists() {
        if purge {
            write.remove_env(env)?;
        } else {
            write.report.env_kept.push(env);
        }
    }
    let units = vec![agent_unit(&agent.name)];
    if fleet.services.reachable().is_ok() {
        let stopped = fleet
            .services
            .stop(&units)
            .and_then(|()| fleet.services.disable(&units));
        if let Err(err) = stopped {
            return Err(write.undo(err.into()));
        }
        write.report.units = units;
    } else {
        write.report.commands = vec![format!("systemctl --user disable --now {}", units[0])];
    }
    Ok(write.commit())
}

/// The edited roster text, re-validated as a whole with the profile rules.
fn edited_roster(
    fleet: &Fleet<'_>,
    edit: Result<String, String>,
) -> Result<(String, Profile), FleetError> {
    let path = &fleet.roster.path;
    let text = edit.map_err(|why| FleetError::RosterEdit {
        path: path.clone(),
        why,
    })?;
    let mut profile = Profile::parse("installed", &path.display().to_string(), &text)?;
    profile.host = fleet.roster.host.clone();
    Ok((text, profile))
}

fn agent_names(profile: &Profile) -> Vec<String> {
    profile
        .roster
        .agents
        .iter()
        .map(|a| a.name.clone())
        .collect()
}
