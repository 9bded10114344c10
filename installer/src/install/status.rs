//! `status`: the receipt compared with the disk, file by file — ok, edited
//! (a config file the operator changed: theirs to change), modified (a
//! managed file: drift), replaced by Mosaic's copy (a hash Mosaic ships:
//! its updater put it there), missing — plus our versions waiting beside
//! edited files as `.mosaic-new`; and the agents as the roster, the receipt
//! and systemd each see them, so that a roster changed by hand or a unit
//! enabled outside the roster shows. Read-only.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::install::activate::enabled_instances;
use crate::install::legacy::KnownHashes;
use crate::install::plan::beside;
use crate::install::snapshot::read_file;
use crate::shared::confine::ConfineError;
use crate::shared::layout::Layout;
use crate::shared::profile::{Profile, ProfileLabel, ROSTER_PATH};
use crate::shared::receipt::{sha256_hex, Receipt, ReceiptError};
use crate::shared::render::Ownership;
use crate::shared::systemd::agent_units;
use crate::shared::systemd::units::{FleetServices, UnitState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileState {
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
pub(crate) struct AgentStatus {
    pub(crate) name: String,
    /// In the installed roster (this host's agents).
    pub(crate) in_roster: bool,
    /// Installed by the last run (its env file and unit are in place).
    pub(crate) installed: bool,
    /// The unit's state, when a manager answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unit: Option<UnitState>,
}

impl AgentStatus {
    /// Why the three views disagree, if they do.
    pub(crate) fn problem(&self) -> Option<&'static str> {
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
pub(crate) struct FileStatus {
    pub(crate) path: PathBuf,
    pub(crate) ownership: Ownership,
    pub(crate) state: FileState,
    /// For a file replaced by Mosaic's copy: the release it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) replaced_by: Option<String>,
    /// Our version waiting beside an edited file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) waiting: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub(crate) struct StatusReport {
    /// Interrupted runs finished or undone first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) recovered: Vec<crate::shared::statedir::Recovery>,
    pub(crate) generation: u64,
    pub(crate) profile: String,
    pub(crate) version: String,
    pub(crate) files: Vec<FileStatus>,
    pub(crate) agents: Vec<AgentStatus>,
    /// Why the installed roster could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) roster_error: Option<String>,
    /// Why no unit states are shown (no manager asked, or none answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) systemd: Option<String>,
}

impl StatusReport {
    /// Drift: a managed file modified, any file missing, a `.mosaic-new`
    /// waiting, a roster that does not read, or an agent on which the
    /// roster, the receipt and systemd disagree. Edited config files are
    /// the operator's to edit.
    pub(crate) fn drift(&self) -> bool {
        self.files.iter().any(|f| {
            f.waiting.is_some()
                || matches!(
                    f.state,
                    FileState::Missing | FileState::Modified | FileState::ReplacedByMosaic
                )
        }) || self.roster_error.is_some()
            || self.agents.iter().any(|a| a.problem().is_some())
    }

    pub(crate) fn count(&self, state: FileState) -> usize {
        self.files.iter().filter(|f| f.state == state).count()
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StatusError {
    #[error("nothing is installed here: no receipt at {}; run mosaic-install to install", .0.display())]
    NotInstalled(PathBuf),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error(transparent)]
    State(#[from] Box<crate::shared::statedir::RecoverError>),
}

/// The current receipt, or the operator-facing "nothing is installed here".
pub(crate) fn installed_receipt(layout: &Layout) -> Result<Receipt, StatusError> {
    Receipt::load(&layout.receipt())?.ok_or_else(|| StatusError::NotInstalled(layout.receipt()))
}

/// `services`: the user manager to ask about the units (None: not asked,
/// as for a `--home` that is not `$HOME`).
pub(crate) fn status(
    layout: &Layout,
    services: Option<&dyn FleetServices>,
) -> Result<StatusReport, StatusError> {
    // The truth after an interrupted run is the state recovery leaves.
    let recovered = crate::shared::statedir::recover_if_pending(layout).map_err(Box::new)?;
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
    // The roster's agents of the host the last install was for.
    let host = receipt
        .host
        .clone()
        .unwrap_or_else(crate::shared::host::machine);
    let (roster, roster_error) = match Profile::installed(layout, &host) {
        Ok(Some(profile)) => (
            profile
                .local_agents()
                .map(|a| a.name.clone())
                .collect::<Vec<_>>(),
            None,
        ),
        Ok(None) => (
            Vec::new(),
            Some(format!(
                "no roster at {}: run mosaic-install to put one back",
                layout.target(Path::new(ROSTER_PATH)).display()
            )),
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
