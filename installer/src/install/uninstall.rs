//! `uninstall`: remove what mosaic-install wrote and the operator did not
//! change — including our `.mosaic-new` files and the directories we
//! created once they are empty — and keep (and list) everything else. The
//! fleet's configuration (the roster and the env files generated from it)
//! and the installer's state (generations, backups) stay unless `--purge`;
//! every path left behind is named with why and how to remove it. One
//! journaled transaction.

use std::path::PathBuf;

use serde::Serialize;

use crate::install::plan::beside;
use crate::install::snapshot::read_file;
use crate::install::status::{installed_receipt, StatusError};
use crate::shared::confine::ConfineError;
use crate::shared::layout::Layout;
use crate::shared::receipt::{sha256_hex, ReceiptError};
use crate::shared::render::Ownership;
use crate::shared::statedir::{self, RecoverError, Recovery};
use crate::shared::transaction::{Finish, Transaction, TxError, TxSpec};

#[derive(Debug, Serialize)]
pub(crate) struct UninstallReport {
    pub(crate) dry_run: bool,
    pub(crate) purge: bool,
    pub(crate) removed: Vec<PathBuf>,
    /// Kept, with why.
    pub(crate) kept: Vec<(PathBuf, String)>,
    /// Everything else left behind: why, and how to remove it.
    pub(crate) left_behind: Vec<LeftBehind>,
    pub(crate) removed_dirs: Vec<PathBuf>,
    /// Agents whose units were installed (for the systemd step).
    pub(crate) agents: Vec<String>,
    /// Interrupted runs finished or undone first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) recovered: Vec<Recovery>,
    /// How the units were stopped and disabled first; filled in by the CLI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) systemd: Option<crate::install::activate::DeactivationReport>,
}

/// A path `uninstall` leaves, why, and how to remove it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LeftBehind {
    pub(crate) path: PathBuf,
    pub(crate) why: String,
    pub(crate) remove: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UninstallError {
    #[error(transparent)]
    NotInstalled(#[from] StatusError),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error(transparent)]
    State(#[from] RecoverError),
    #[error("{0}\nthe uninstall did not happen")]
    Apply(Box<TxError>),
}

pub(crate) fn uninstall(
    layout: &Layout,
    dry_run: bool,
    purge: bool,
) -> Result<UninstallReport, UninstallError> {
    // Refuse before taking the lock in a home with nothing installed; then
    // read the receipt again once the lock is held and recovery has run.
    let mut recovered = statedir::recover_if_pending(layout)?;
    installed_receipt(layout)?;
    let locked = if dry_run {
        None
    } else {
        let locked = statedir::lock(layout)?;
        recovered.extend(locked.recovered.iter().cloned());
        Some(locked)
    };
    let receipt = installed_receipt(layout)?;
    let mut report = UninstallReport {
        dry_run,
        purge,
        removed: Vec::new(),
        kept: Vec::new(),
        left_behind: Vec::new(),
        removed_dirs: Vec::new(),
        agents: receipt.agents.clone(),
        recovered,
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
        } else if !unchanged {
            report.kept.push((target, "changed by you".into()));
        } else if record.ownership == Ownership::Config && !purge {
            report.left_behind.push(LeftBehind {
                path: target,
                why: "the fleet's configuration; a reinstall brings the same fleet back".into(),
                remove: "mosaic-install uninstall --purge".into(),
            });
        } else {
            to_remove.push(target);
        }
        let new = beside(&record.path);
        if let Some(waiting) = read_file(&confiner, &new)? {
            if sha256_hex(&waiting.bytes) == record.sha256 {
                to_remove.push(layout.target(&new));
            }
        }
    }
    report.left_behind.extend(operator_files(layout));
    if !purge {
        report.left_behind.push(LeftBehind {
            path: layout.state.clone(),
            why: "the installer's generations and backups: the old bytes of every file it replaced"
                .into(),
            remove: format!(
                "mosaic-install uninstall --purge (or rm -r {} once nothing else is installed)",
                layout.state.display()
            ),
        });
    }
    let mut dirs = receipt.created_dirs.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));

    let Some(locked) = locked else {
        report.removed_dirs = emptied_dirs(layout, &dirs, &to_remove);
        report.removed = to_remove;
        return Ok(report);
    };
    let finish = if purge {
        Finish::Purge {
            state: layout.state.clone(),
            created_parents: receipt.created_state_dirs.clone(),
        }
    } else {
        Finish::Discard
    };
    let spec = TxSpec {
        command: if purge {
            "uninstall --purge"
        } else {
            "uninstall"
        }
        .into(),
        generation: None,
        backup_dir: layout
            .backups()
            .join(format!("uninstall-{}", receipt.generation)),
        finish,
    };
    let roots = layout.write_roots();
    let removed_dirs = Transaction::run(&locked.lock, &layout.state, roots, spec, |tx| {
        for path in &to_remove {
            tx.remove(path)?;
        }
        let mut removed_dirs = Vec::new();
        for dir in &dirs {
            let target = layout.target(dir);
            if tx.remove_dir_if_empty(&target)? {
                removed_dirs.push(target);
            }
        }
        tx.remove(&layout.receipt())?;
        Ok(removed_dirs)
    })
    .map_err(|err| UninstallError::Apply(Box::new(err)))?;
    report.removed_dirs = removed_dirs.value;
    report.removed = to_remove;
    Ok(report)
}

/// The operator's own files beside ours: `.local.env` overrides and
/// `.mosaic-new` files they have not merged yet (ours that differ from what
/// we last wrote are theirs to look at).
fn operator_files(layout: &Layout) -> Vec<LeftBehind> {
    let agents = layout.target(std::path::Path::new("mosaic/fleet/agents"));
    let mut out: Vec<LeftBehind> = std::fs::read_dir(&agents)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".local.env"))
        .map(|path| LeftBehind {
            remove: format!("rm {}", path.display()),
            path,
            why: "your overrides; never written or removed by mosaic-install".into(),
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
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
