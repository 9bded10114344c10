//! `status`: the receipt compared with the disk, file by file — ok, edited
//! (a config file the operator changed: theirs to change), modified (a
//! managed file: drift), replaced by Mosaic's copy (a hash Mosaic ships:
//! its updater put it there), missing — plus our versions waiting beside
//! edited files as `.mosaic-new`; and the agents as the roster, the receipt
//! and systemd each see them, so that a roster changed by hand or a unit
//! enabled outside the roster shows. Read-only.

use std::path::PathBuf;

use serde::Serialize;

use crate::activate::enabled_instances;
use crate::confine::ConfineError;
use crate::layout::Layout;
use crate::legacy::KnownHashes;
use crate::plan::beside;
use crate::profile::ProfileLabel;
use crate::receipt::{sha256_hex, Receipt, ReceiptError};
use crate::render::Ownership;
use crate::snapshot::read_file;
use crate::systemd::agent_units;
use crate::verbs::units::{FleetServices, UnitState};
use crate::verbs::InstalledRoster;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Ok,
    /// A managed file changed since we wrote it: drift.
    Modified,
    /// A config file (roster, env file) the operator changed.
    Edited,
    /// A copy Mosaic ships (`mosaic update` put it there); the next install
    /// restores ours.
    #[serde(rename = "replaced")]
    ReplacedByMosaic,
    Missing,
}

/// One agent as the roster, the receipt and systemd see it.
#[derive(Debug, Serialize)]
pub struct AgentStatus {
    pub name: String,
    /// In the installed roster (this host's agents).
    pub in_roster: bool,
    /// Installed by the last run (its env file and unit are in place).
    pub installed: bool,
    /// The unit's state, when a manager answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitState>,
}

impl AgentStatus {
    /// Why the three views disagree, if they do.
    pub fn problem(&self) -> Option<&'static str> {
        let enabled = self.unit.as_ref().map(UnitState::is_enabled);
        match (self.in_roster, self.installed, enabled) {
            (true, false, _) => Some("in the roster but not installed: run mosaic-install"),
            (false, true, _) => Some("installed but no longer in the roster: run mosaic-install"),
            (false, false, Some(true)) => {
                Some("its unit is enabled, but it is not in the roster: run mosaic-install")
            }
            (true, true, Some(false)) => {
                Some("in the roster, but its unit is not enabled: run mosaic-install")
            }
            _ => None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FileStatus {
    pub path: PathBuf,
    pub ownership: Ownership,
    pub state: FileState,
    /// For a file replaced by Mosaic's copy: the release it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// Our version waiting beside an edited file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// Interrupted runs finished or undone first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<crate::statedir::Recovery>,
    pub generation: u64,
    pub profile: String,
    pub version: String,
    pub files: Vec<FileStatus>,
    pub agents: Vec<AgentStatus>,
    /// Why the installed roster could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roster_error: Option<String>,
    /// Why no unit states are shown (no manager asked, or none answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub systemd: Option<String>,
}

impl StatusReport {
    /// Drift: a managed file modified, any file missing, a `.mosaic-new`
    /// waiting, a roster that does not read, or an agent on which the
    /// roster, the receipt and systemd disagree. Edited config files are
    /// the operator's to edit.
    pub fn drift(&self) -> bool {
        self.files.iter().any(|f| {
            f.waiting.is_some()
                || matches!(
                    f.state,
                    FileState::Missing | FileState::Modified | FileState::ReplacedByMosaic
                )
        }) || self.roster_error.is_some()
            || self.agents.iter().any(|a| a.problem().is_some())
    }

    pub fn count(&self, state: FileState) -> usize {
        self.files.iter().filter(|f| f.state == state).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("nothing is installed here: no receipt at {}; run mosaic-install to install", .0.display())]
    NotInstalled(PathBuf),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error(transparent)]
    State(#[from] Box<crate::statedir::RecoverError>),
}

/// The current receipt, or the operator-facing "nothing is installed here".
pub fn installed_receipt(layout: &Layout) -> Result<Receipt, StatusError> {
    Receipt::load(&layout.receipt())?.ok_or_else(|| StatusError::NotInstalled(layout.receipt()))
}

/// `services`: the user manager to ask about the units (None: not asked,
/// as for a `--home` that is not `$HOME`).
pub fn status(
    layout: &Layout,
    services: Option<&dyn FleetServices>,
) -> Result<StatusReport, StatusError> {
    // The truth after an interrupted run is the state recovery leaves.
    let recovered = crate::statedir::recover_if_pending(layout).map_err(Box::new)?;
    let receipt = installed_receipt(layout)?;
    let mut files = Vec::new();
    let confiner = layout.confiner()?;
    let known = KnownHashes::shipped();
    for record in &receipt.files {
        let hash = read_file(&confiner, &record.path)?.map(|disk| sha256_hex(&disk.bytes));
        let replaced_by = hash
            .as_deref()
            .and_then(|hash| known.is_pristine(&record.path, hash))
            .map(str::to_owned);
        let state = match hash {
            None => FileState::Missing,
            Some(hash) if hash == record.sha256 => FileState::Ok,
            Some(_) if replaced_by.is_some() => FileState::ReplacedByMosaic,
            Some(_) if record.ownership == Ownership::Config => FileState::Edited,
            Some(_) => FileState::Modified,
        };
        let new = beside(&record.path);
        let waiting = read_file(&confiner, &new)?.map(|_| layout.target(&new));
        files.push(FileStatus {
            path: layout.target(&record.path),
            ownership: record.ownership,
            state,
            replaced_by: replaced_by.filter(|_| state == FileState::ReplacedByMosaic),
            waiting,
        });
    }
    let (roster, roster_error) = match InstalledRoster::load(layout) {
        Ok(roster) => (
            roster
                .agents
                .iter()
                .filter(|a| a.is_local())
                .map(|a| a.name.clone())
                .collect::<Vec<_>>(),
            None,
        ),
        Err(err) => (Vec::new(), Some(err.to_string())),
    };
    let mut names: Vec<String> = roster.clone();
    for agent in receipt.agents.iter().chain(&enabled_instances(layout)) {
        if !names.contains(agent) {
            names.push(agent.clone());
        }
    }
    let (states, systemd) = unit_states(services, &names);
    let agents = names
        .iter()
        .enumerate()
        .map(|(at, name)| AgentStatus {
            name: name.clone(),
            in_roster: roster.contains(name),
            installed: receipt.agents.contains(name),
            unit: states.as_ref().and_then(|s| s.get(at).cloned()),
        })
        .collect();
    Ok(StatusReport {
        recovered,
        generation: receipt.generation,
        profile: ProfileLabel::cleaned(&receipt.profile.name).to_string(),
        version: receipt.bundle_version,
        files,
        agents,
        roster_error,
        systemd,
    })
}

/// The agents' unit states, or why there are none.
fn unit_states(
    services: Option<&dyn FleetServices>,
    names: &[String],
) -> (Option<Vec<UnitState>>, Option<String>) {
    let Some(services) = services else {
        return (None, Some("not asked (--home is not $HOME)".into()));
    };
    if let Err(why) = services.reachable() {
        return (None, Some(format!("no user manager answered ({why})")));
    }
    match services.unit_states(&agent_units(names)) {
        Ok(states) => (Some(states), None),
        Err(err) => (None, Some(err.to_string())),
    }
}
