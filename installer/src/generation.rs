//! Generations: every install that changes something is a numbered
//! generation with its receipt (`generations/<n>/receipt.json`) and the
//! backups and journal of what it changed (`backups/<n>/`). `rollback`
//! undoes the newest; the last [`KEEP`] are kept.

use std::fs;
use std::path::PathBuf;

use crate::apply::Change;
use crate::layout::Layout;

/// Generations kept by default.
pub const KEEP: u64 = 5;

pub struct Generations<'a> {
    layout: &'a Layout,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("no journal for generation {n} at {}: it was pruned or never written, so it cannot be rolled back", path.display())]
    NoJournal { n: u64, path: PathBuf },
    #[error("journal {} is damaged: {cause}", path.display())]
    Damaged {
        path: PathBuf,
        cause: serde_json::Error,
    },
}

impl<'a> Generations<'a> {
    pub fn new(layout: &'a Layout) -> Self {
        Generations { layout }
    }

    pub fn receipt_path(&self, n: u64) -> PathBuf {
        self.layout
            .generations()
            .join(n.to_string())
            .join("receipt.json")
    }

    pub fn backup_dir(&self, n: u64) -> PathBuf {
        self.layout.backups().join(n.to_string())
    }

    pub fn journal_path(&self, n: u64) -> PathBuf {
        self.backup_dir(n).join("journal.json")
    }

    /// A number no generation, live or rolled back, has used.
    pub fn next_number(&self, current: Option<u64>) -> u64 {
        let used = [self.layout.generations(), self.layout.backups()]
            .into_iter()
            .flat_map(|dir| fs::read_dir(dir).into_iter().flatten().flatten())
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u64>().ok());
        used.chain(current).max().unwrap_or(0) + 1
    }

    pub fn load_journal(&self, n: u64) -> Result<Vec<Change>, GenerationError> {
        let path = self.journal_path(n);
        let bytes = fs::read(&path).map_err(|_| GenerationError::NoJournal {
            n,
            path: path.clone(),
        })?;
        serde_json::from_slice(&bytes).map_err(|cause| GenerationError::Damaged { path, cause })
    }

    /// Drop generations older than the newest `keep` (best effort: this is
    /// our own state, and a leftover only costs disk space).
    pub fn prune(&self, newest: u64, keep: u64) {
        let cutoff = newest.saturating_sub(keep.max(1));
        for dir in [self.layout.generations(), self.layout.backups()] {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let old = entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.parse::<u64>().ok())
                    .is_some_and(|n| n <= cutoff);
                if old {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}
