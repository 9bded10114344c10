//! Generations: every install that changes something is a numbered
//! generation with its receipt (`generations/<n>/receipt.json`) and the
//! backups and journal of what it changed (`backups/<n>/`). `rollback`
//! undoes the newest; the last [`KEEP`] are kept (and every one an
//! unresolved conflict still needs).

use std::fs;
use std::path::PathBuf;

use crate::shared::layout::Layout;
use crate::shared::transaction::journal::{Journal, JournalError};
use crate::shared::transaction::{Change, Finish, Prune};

/// Generations kept by default.
pub(crate) const KEEP: u64 = 5;

pub(crate) struct Generations<'a> {
    layout: &'a Layout,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum GenerationError {
    #[error("no journal for generation {n} at {}: it was pruned or never written, so it cannot be rolled back", path.display())]
    NoJournal { n: u64, path: PathBuf },
    #[error(transparent)]
    Damaged(#[from] JournalError),
}

impl<'a> Generations<'a> {
    pub(crate) fn new(layout: &'a Layout) -> Self {
        Generations { layout }
    }

    pub(crate) fn receipt_path(&self, n: u64) -> PathBuf {
        self.layout
            .generations()
            .join(n.to_string())
            .join("receipt.json")
    }

    pub(crate) fn backup_dir(&self, n: u64) -> PathBuf {
        self.layout.backups().join(n.to_string())
    }

    pub(crate) fn journal_path(&self, n: u64) -> PathBuf {
        self.backup_dir(n).join("journal.json")
    }

    /// A number no generation, live or rolled back, has used.
    pub(crate) fn next_number(&self, current: Option<u64>) -> u64 {
        let used = [self.layout.generations(), self.layout.backups()]
            .into_iter()
            .flat_map(|dir| fs::read_dir(dir).into_iter().flatten().flatten())
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u64>().ok());
        used.chain(current).max().unwrap_or(0) + 1
    }

    pub(crate) fn load_journal(&self, n: u64) -> Result<Vec<Change>, GenerationError> {
        let path = self.journal_path(n);
        if !path.is_file() {
            return Err(GenerationError::NoJournal { n, path });
        }
        Ok(Journal::load_steps(&path)?)
    }

    /// What follows the commit of generation `n`: its journal kept for
    /// `rollback`, generations older than the newest `keep` pruned, except
    /// those from `protect_from` on.
    pub(crate) fn finish(&self, n: u64, keep: u64, protect_from: Option<u64>) -> Finish {
        Finish::Generation {
            journal: self.journal_path(n),
            prune: Prune {
                generations: self.layout.generations(),
                backups: self.layout.backups(),
                newest: n,
                keep,
                protect_from,
            },
        }
    }
}
