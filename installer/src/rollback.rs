//! `rollback`: undo the newest generation exactly, using its journal and
//! backups, which brings back the previous generation's files and receipt.
//! The undo is itself a transaction, so a failure leaves the newest
//! generation in place; files the operator changed since are backed up
//! before they are replaced, and reported.

use std::path::PathBuf;

use serde::Serialize;

use crate::apply::{ApplyError, Change, Transaction};
use crate::generation::{GenerationError, Generations};
use crate::layout::Layout;
use crate::lock::{InstallLock, LockError};
use crate::receipt::{sha256_hex, Receipt, ReceiptError};
use crate::status::{installed_receipt, StatusError};

#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub from_generation: u64,
    /// The generation now current; None when the rolled-back one was the first.
    pub to_generation: Option<u64>,
    pub restored: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    /// Files changed since the rolled-back install; their bytes were backed
    /// up into `backup_dir` before being replaced.
    pub edited: Vec<PathBuf>,
    pub backup_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    NotInstalled(#[from] StatusError),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Generation(#[from] GenerationError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("generation {0} is the first: there is nothing to roll back to; use `mosaic-install uninstall` to remove it")]
    First(u64),
    #[error("{0}\nthe rollback was undone: generation {1} is still current")]
    Apply(Box<ApplyError>, u64),
}

pub fn rollback(layout: &Layout) -> Result<RollbackReport, RollbackError> {
    // Refuse before taking the lock, which would create state in a home
    // that has none; then read the receipt again under the lock.
    installed_receipt(layout)?;
    let _lock = InstallLock::acquire(&layout.lock())?;
    let receipt = installed_receipt(layout)?;
    let n = receipt.generation;
    let generations = Generations::new(layout);
    let journal = generations.load_journal(n)?;
    let previous = journal.iter().find_map(|change| match change {
        Change::Replaced { path, backup } if path.ends_with("mosaic-install/receipt.json") => {
            Receipt::load(backup).ok().flatten()
        }
        _ => None,
    });
    let Some(previous) = previous else {
        return Err(RollbackError::First(n));
    };

    let mut report = RollbackReport {
        from_generation: n,
        to_generation: Some(previous.generation),
        restored: Vec::new(),
        removed: Vec::new(),
        edited: Vec::new(),
        backup_dir: generations.backup_dir(n).join("rollback"),
    };
    // Edits made since generation n to files it wrote are replaced by the
    // undo: say so (their bytes land in the rollback backups).
    let touched: Vec<&PathBuf> = journal
        .iter()
        .filter_map(|change| match change {
            Change::Created { path } | Change::Replaced { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    report.edited = receipt
        .files
        .iter()
        .filter(|record| touched.iter().any(|path| path.ends_with(&record.path)))
        .filter(|record| {
            std::fs::read(layout.target(&record.path))
                .is_ok_and(|bytes| sha256_hex(&bytes) != record.sha256)
        })
        .map(|record| layout.target(&record.path))
        .collect();

    let mut tx = Transaction::begin(layout.write_roots(), report.backup_dir.clone());
    let result = (|| -> Result<(), ApplyError> {
        for change in journal.iter().rev() {
            match change {
                Change::Created { path } => {
                    tx.remove(path)?;
                    report.removed.push(path.clone());
                }
                Change::Replaced { path, backup } | Change::Removed { path, backup } => {
                    let bytes = std::fs::read(backup).map_err(|cause| ApplyError::Io {
                        what: "read backup",
                        path: backup.clone(),
                        cause,
                    })?;
                    let mode = std::fs::metadata(backup)
                        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
                        .unwrap_or(0o644)
                        & 0o7777;
                    tx.write(path, &bytes, mode)?;
                    report.restored.push(path.clone());
                }
                Change::Chmod { path, old_mode } => tx.chmod(path, *old_mode)?,
                Change::CreatedDir { path } => {
                    tx.remove_dir_if_empty(path)?;
                }
                Change::RemovedDir { path, mode } => tx.create_dir_all(path, *mode)?,
            }
        }
        tx.sync_dirs()
    })();
    if let Err(err) = result {
        tx.rollback();
        return Err(RollbackError::Apply(Box::new(err), n));
    }
    tx.commit();
    Ok(report)
}
