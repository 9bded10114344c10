//! `uninstall`: remove what mosaic-install wrote and the operator did not
//! change — including our `.mosaic-new` files and the directories we
//! created once they are empty — and keep (and list) everything else.
//! One transaction; the installer's state goes last.

use std::path::PathBuf;

use serde::Serialize;

use crate::apply::{ApplyError, Transaction};
use crate::confine::ConfineError;
use crate::layout::Layout;
use crate::lock::{InstallLock, LockError};
use crate::plan::beside;
use crate::receipt::{sha256_hex, ReceiptError};
use crate::snapshot::read_file;
use crate::status::{installed_receipt, StatusError};

#[derive(Debug, Serialize)]
pub struct UninstallReport {
    pub dry_run: bool,
    pub removed: Vec<PathBuf>,
    /// Kept, with why.
    pub kept: Vec<(PathBuf, String)>,
    pub removed_dirs: Vec<PathBuf>,
    /// Agents whose units were installed (for the systemd step).
    pub agents: Vec<String>,
    /// How the units were stopped and disabled first; filled in by the CLI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub systemd: Option<crate::activate::DeactivationReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    #[error(transparent)]
    NotInstalled(#[from] StatusError),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0}\nnothing was removed: every step already taken was undone")]
    Apply(Box<ApplyError>),
}

pub fn uninstall(layout: &Layout, dry_run: bool) -> Result<UninstallReport, UninstallError> {
    // Refuse before taking the lock, which would create state in a home
    // that has none; then read the receipt again under the lock.
    installed_receipt(layout)?;
    let lock = if dry_run {
        None
    } else {
        Some(InstallLock::acquire(&layout.lock())?)
    };
    let receipt = installed_receipt(layout)?;
    let mut report = UninstallReport {
        dry_run,
        removed: Vec::new(),
        kept: Vec::new(),
        removed_dirs: Vec::new(),
        agents: receipt.agents.clone(),
        systemd: None,
    };
    let mut to_remove = Vec::new();
    let confiner = layout.confiner()?;
    for record in &receipt.files {
        let target = layout.target(&record.path);
        let Some(disk) = read_file(&confiner, &record.path)? else {
            continue;
        };
        let unchanged = sha256_hex(&disk.bytes) == record.sha256;
        if record.preexisting {
            report
                .kept
                .push((target, "existed before mosaic-install".into()));
        } else if unchanged {
            to_remove.push(target);
        } else {
            report.kept.push((target, "changed by you".into()));
        }
        let new = beside(&record.path);
        if let Some(waiting) = read_file(&confiner, &new)? {
            if sha256_hex(&waiting.bytes) == record.sha256 {
                to_remove.push(layout.target(&new));
            }
        }
    }
    let mut dirs = receipt.created_dirs.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));

    if dry_run {
        report.removed_dirs = emptied_dirs(layout, &dirs, &to_remove);
        report.removed = to_remove;
        return Ok(report);
    }
    let backups = layout
        .backups()
        .join(format!("uninstall-{}", receipt.generation));
    let mut tx = Transaction::begin(layout.write_roots(), backups);
    let result = (|| -> Result<(), ApplyError> {
        for path in &to_remove {
            tx.remove(path)?;
        }
        for dir in &dirs {
            let target = layout.target(dir);
            if tx.remove_dir_if_empty(&target)? {
                report.removed_dirs.push(target);
            }
        }
        tx.remove(&layout.receipt())?;
        tx.sync_dirs()
    })();
    if let Err(err) = result {
        tx.rollback();
        return Err(UninstallError::Apply(Box::new(err)));
    }
    tx.commit();
    report.removed = to_remove;
    // Our own state: generations and backups of an install that is gone.
    let _ = std::fs::remove_dir_all(layout.generations());
    let _ = std::fs::remove_dir_all(layout.backups());
    let _ = std::fs::remove_file(layout.lock());
    drop(lock);
    let _ = std::fs::remove_dir(&layout.state);
    Ok(report)
}

/// The created directories (deepest first) that would be empty once
/// `removed` are gone, as the real run would find them.
fn emptied_dirs(layout: &Layout, dirs: &[PathBuf], removed: &[PathBuf]) -> Vec<PathBuf> {
    let mut gone: std::collections::BTreeSet<PathBuf> = removed.iter().cloned().collect();
    let mut emptied = Vec::new();
    for dir in dirs {
        let target = layout.target(dir);
        let Ok(entries) = std::fs::read_dir(&target) else {
            continue;
        };
        let empty = entries.flatten().all(|entry| gone.contains(&entry.path()));
        if empty {
            gone.insert(target.clone());
            emptied.push(target);
        }
    }
    emptied
}
