//! `rollback`: undo the newest generation exactly, using its journal and
//! backups, which brings back the previous generation's files and receipt.
//! The undo is itself a transaction, so a failure (or a kill) leaves the
//! newest generation in place. Managed files the operator changed since are
//! backed up before they are replaced, and reported; config files (the
//! roster, agent env files) the operator changed since are kept as they
//! are, and reported: they may hold settings or keys.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::install::status::{installed_receipt, StatusError};
use crate::shared::generation::{GenerationError, Generations};
use crate::shared::layout::Layout;
use crate::shared::profile::Profile;
use crate::shared::receipt::{sha256_hex, FileRecord, Receipt, ReceiptError};
use crate::shared::render::Ownership;
use crate::shared::statedir::{self, RecoverError, Recovery};
use crate::shared::transaction::{ApplyError, Change, Finish, Transaction, TxError, TxSpec};

#[derive(Debug, Serialize)]
pub(crate) struct RollbackReport {
    pub(crate) from_generation: u64,
    /// The generation now current; None when the rolled-back one was the first.
    pub(crate) to_generation: Option<u64>,
    pub(crate) restored: Vec<PathBuf>,
    pub(crate) removed: Vec<PathBuf>,
    /// Managed files changed since the rolled-back install; their bytes
    /// were backed up into `backup_dir` before being replaced.
    pub(crate) edited: Vec<PathBuf>,
    /// Config files changed since the rolled-back install: kept as they are.
    pub(crate) kept_config: Vec<PathBuf>,
    /// Agents of this host the roster on disk lists but the restored
    /// generation does not: an edit of the operator's that the undone
    /// generation installed. The next install brings them back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) roster_still_lists: Vec<String>,
    pub(crate) backup_dir: PathBuf,
    /// The agents of the generation now current, and of the undone one.
    pub(crate) agents: Vec<String>,
    pub(crate) previous_agents: Vec<String>,
    #[serde(skip)]
    pub(crate) socket: String,
    #[serde(skip)]
    pub(crate) holder_session: String,
    /// The reconcile of the units with the restored roster; filled in by
    /// the CLI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) systemd: Option<crate::install::activate::ActivationReport>,
    /// Interrupted runs finished or undone first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) recovered: Vec<Recovery>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RollbackError {
    #[error(transparent)]
    NotInstalled(#[from] StatusError),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Generation(#[from] GenerationError),
    #[error(transparent)]
    State(#[from] RecoverError),
    #[error("generation {0} is the first: there is nothing to roll back to; use `mosaic-install uninstall` to remove it")]
    First(u64),
    #[error("{0}\nthe rollback did not happen: generation {1} is still current")]
    Apply(Box<TxError>, u64),
}

/// `mosaic-install rollback`: undo the newest generation; the first one is
/// refused (uninstall removes it).
pub(crate) fn rollback(layout: &Layout) -> Result<RollbackReport, RollbackError> {
    rollback_newest(layout, false)
}

/// Undo the newest generation; with `first_too`, the first one as well
/// (back to the home as it was before any install: a failed roster edit
/// that was the home's first install).
pub(crate) fn rollback_newest(
    layout: &Layout,
    first_too: bool,
) -> Result<RollbackReport, RollbackError> {
    // Refuse before taking the lock in a home with nothing installed; then
    // read the receipt again once the lock is held and recovery has run.
    let mut recovered = statedir::recover_if_pending(layout)?;
    installed_receipt(layout)?;
    let locked = statedir::lock(layout)?;
    recovered.extend(locked.recovered.iter().cloned());
    let receipt = installed_receipt(layout)?;
    let n = receipt.generation;
    let generations = Generations::new(layout);
    let journal = generations.load_journal(n)?;
    let previous = journal.iter().find_map(|change| match change {
        Change::Replaced { path, backup, .. } if path.ends_with("mosaic-install/receipt.json") => {
            Receipt::load(backup).ok().flatten()
        }
        _ => None,
    });
    if previous.is_none() && !first_too {
        return Err(RollbackError::First(n));
    }

    let mut report = RollbackReport {
        from_generation: n,
        to_generation: previous.as_ref().map(|p| p.generation),
        restored: Vec::new(),
        removed: Vec::new(),
        edited: Vec::new(),
        kept_config: Vec::new(),
        roster_still_lists: Vec::new(),
        backup_dir: generations.backup_dir(n).join("rollback"),
        agents: previous
            .as_ref()
            .map(|p| p.agents.clone())
            .unwrap_or_default(),
        previous_agents: receipt.agents.clone(),
        socket: previous
            .as_ref()
            .map_or(receipt.socket.clone(), |p| p.socket.clone()),
        holder_session: crate::shared::profile::DEFAULT_HOLDER_SESSION.to_owned(),
        systemd: None,
        recovered,
    };
    let records = Records::new(layout, &receipt);
    let spec = TxSpec {
        command: "rollback".into(),
        generation: None,
        backup_dir: report.backup_dir.clone(),
        finish: Finish::Discard,
    };
    let roots = layout.write_roots();
    let result = Transaction::run(&locked.lock, &layout.state, roots, spec, |tx| {
        for change in journal.iter().rev() {
            match change {
                Change::Created { path, .. } => {
                    if kept_as_changed(&records, path, &mut report) {
                        continue;
                    }
                    if path.exists() {
                        tx.remove(path)?;
                        report.removed.push(path.clone());
                    }
                }
                Change::Replaced { path, backup, .. } | Change::Removed { path, backup, .. } => {
                    if kept_as_changed(&records, path, &mut report) {
                        continue;
                    }
                    let bytes = std::fs::read(backup).map_err(|cause| ApplyError::Io {
                        what: "read backup",
                        path: backup.clone(),
                        cause,
                    })?;
                    let mode = std::fs::metadata(backup)
                        .map(|m| m.permissions().mode())
                        .unwrap_or(0o644)
                        & 0o7777;
                    tx.write(path, &bytes, mode)?;
                    report.restored.push(path.clone());
                }
                Change::Chmod { path, old_mode, .. } => {
                    if path.exists() {
                        tx.chmod(path, *old_mode)?;
                    }
                }
                Change::CreatedDir { path } => {
                    tx.remove_dir_if_empty(path)?;
                }
                Change::RemovedDir { path, mode } => tx.create_dir_all(path, *mode)?,
            }
        }
        Ok(())
    });
    result.map_err(|err| RollbackError::Apply(Box::new(err), n))?;
    // The restored roster names the holder's session the units follow.
    let roster = layout.target(Path::new(crate::shared::profile::ROSTER_PATH));
    if let Some(profile) = std::fs::read_to_string(&roster)
        .ok()
        .and_then(|text| Profile::parse("restored", &roster.display().to_string(), &text).ok())
    {
        report.holder_session = profile.roster.holder_session().to_owned();
        let host = previous
            .as_ref()
            .and_then(|p| p.host.clone())
            .unwrap_or_else(crate::shared::host::machine);
        report.roster_still_lists = profile
            .roster
            .agents
            .iter()
            .filter(|agent| agent.runs_on(&host) && !report.agents.contains(&agent.name))
            .map(|agent| agent.name.clone())
            .collect();
    }
    Ok(report)
}

/// Notes a file the operator changed since the undone generation wrote it:
/// a config file is kept as it is (true: leave it alone), a managed one is
/// listed and then restored all the same (its bytes are backed up first).
fn kept_as_changed(records: &Records, path: &Path, report: &mut RollbackReport) -> bool {
    match records.changed_since(path) {
        Some(Ownership::Config) => {
            report.kept_config.push(path.to_path_buf());
            true
        }
        Some(Ownership::Managed) => {
            report.edited.push(path.to_path_buf());
            false
        }
        None => false,
    }
}

impl RollbackReport {
    /// What the units follow after the rollback: the restored roster, and
    /// the unit and env files it put back.
    pub(crate) fn changes(&self) -> crate::install::activate::Changeset {
        let touched = |path: &Path| {
            self.restored
                .iter()
                .chain(&self.removed)
                .any(|p| p.ends_with(path))
        };
        let unit = |name: &str| Path::new("systemd/user").join(name);
        crate::install::activate::Changeset {
            agents: self.agents.clone(),
            previous_agents: self.previous_agents.clone(),
            socket: self.socket.clone(),
            holder_session: self.holder_session.clone(),
            holder_changed: touched(&unit(crate::shared::systemd::HOLDER_UNIT)),
            template_changed: touched(&unit(crate::shared::systemd::AGENT_TEMPLATE)),
            env_changed: self
                .agents
                .iter()
                .filter(|agent| touched(&crate::shared::render::agent_env_path(agent)))
                .cloned()
                .collect(),
        }
    }
}

/// The rolled-back generation's receipt, looked up by absolute path.
struct Records<'a> {
    /// Each root with the receipt-relative prefix of what lies below it:
    /// the Mosaic tree (which `MOSAIC_HOME` may move) and the config root.
    roots: Vec<(PathBuf, PathBuf)>,
    receipt: &'a Receipt,
}

impl<'a> Records<'a> {
    fn new(layout: &Layout, receipt: &'a Receipt) -> Self {
        let mut roots = Vec::new();
        for (root, prefix) in [
            (
                &layout.mosaic,
                PathBuf::from(crate::shared::layout::MOSAIC_REL),
            ),
            (&layout.config, PathBuf::new()),
        ] {
            roots.push((root.clone(), prefix.clone()));
            if let Ok(real) = root.canonicalize() {
                roots.push((real, prefix));
            }
        }
        Records { roots, receipt }
    }

    fn record(&self, path: &Path) -> Option<&FileRecord> {
        let rel = self
            .roots
            .iter()
            .find_map(|(root, prefix)| Some(prefix.join(path.strip_prefix(root).ok()?)))?;
        self.receipt.file(&rel)
    }

    /// The file's ownership when it exists and differs from what the
    /// rolled-back generation recorded (the operator changed it since).
    fn changed_since(&self, path: &Path) -> Option<Ownership> {
        let record = self.record(path)?;
        let bytes = std::fs::read(path).ok()?;
        (sha256_hex(&bytes) != record.sha256).then_some(record.ownership)
    }
}
