//! Applying: the transactional executor. Every filesystem change the
//! installer makes goes through a [`Transaction`], which backs up what it
//! replaces or removes, writes atomically (same-directory temp file, fsync,
//! rename, fsync of the directory) and records how to undo each step. An
//! error, or dropping an uncommitted transaction, undoes every step in
//! reverse order (the rustup pattern).
//!
//! The journal of a committed transaction is saved with its backups so that
//! `rollback` can undo a whole generation later.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::confine::{ConfineError, Confiner};

mod durable;

pub use durable::atomic_write;
use durable::{durable_temp, io, write_and_rename};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error("cannot {what} {}: {cause}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("injected failure after filesystem operation {0} (fault-injection test)")]
    Injected(usize),
}

/// One recorded change, undone in reverse order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// A file that did not exist was written.
    Created { path: PathBuf },
    /// A file was replaced; its old bytes are at `backup`.
    Replaced { path: PathBuf, backup: PathBuf },
    /// A file was removed; its bytes are at `backup`.
    Removed { path: PathBuf, backup: PathBuf },
    /// A file's mode changed.
    Chmod { path: PathBuf, old_mode: u32 },
    /// A directory was created.
    CreatedDir { path: PathBuf },
    /// An empty directory was removed.
    RemovedDir { path: PathBuf, mode: u32 },
}

/// The filesystem changes of one run. Paths given to it are absolute and
/// checked against `roots` (symlinks leaving every root are refused).
pub struct Transaction {
    roots: Vec<Confiner>,
    backup_dir: PathBuf,
    journal: Vec<Change>,
    ops: usize,
    fail_after: Option<usize>,
    committed: bool,
    backup_count: usize,
    /// Directories created to hold backups, removed again on rollback.
    backup_dirs_created: Vec<PathBuf>,
    /// Directories whose entries changed since the last [`Transaction::sync_dirs`].
    dirty_dirs: std::collections::BTreeSet<PathBuf>,
}

impl Transaction {
    /// Start a transaction that may write under `roots` and keeps backups
    /// in `backup_dir` (created on first use, removed again on rollback).
    pub fn begin(roots: Vec<PathBuf>, backup_dir: PathBuf) -> Transaction {
        // Journals record real paths, so accept the roots' canonical forms too.
        let canonical: Vec<PathBuf> = roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
        let roots = roots
            .iter()
            .chain(&canonical)
            .filter_map(|root| Confiner::new(root).ok())
            .collect();
        Transaction {
            roots,
            backup_dir,
            journal: Vec::new(),
            ops: 0,
            fail_after: None,
            committed: false,
            backup_count: 0,
            backup_dirs_created: Vec::new(),
            dirty_dirs: Default::default(),
        }
    }

    /// Fail after the k-th filesystem operation, to prove rollback restores
    /// the tree at every crash point. Test builds only.
    #[cfg(feature = "fault-injection")]
    pub fn fail_after(&mut self, k: Option<usize>) {
        self.fail_after = k;
    }

    /// Filesystem operations performed so far.
    pub fn ops(&self) -> usize {
        self.ops
    }

    pub fn journal(&self) -> &[Change] {
        &self.journal
    }

    fn tick(&mut self) -> Result<(), ApplyError> {
        self.ops += 1;
        match self.fail_after {
            Some(k) if self.ops >= k => Err(ApplyError::Injected(self.ops)),
            _ => Ok(()),
        }
    }

    /// Resolve `path` inside one of the roots, refusing escaping symlinks.
    fn confined(&self, path: &Path) -> Result<PathBuf, ApplyError> {
        for root in &self.roots {
            if let Ok(rel) = path.strip_prefix(root.root()) {
                return Ok(root.resolve(rel)?);
            }
        }
        Err(ConfineError::NotRelative(path.to_path_buf()).into())
    }

    /// Create `dir` and any missing parents with `mode`, recording each.
    pub fn create_dir_all(&mut self, dir: &Path, mode: u32) -> Result<(), ApplyError> {
        let real = self.confined(dir)?;
        let mut missing = Vec::new();
        let mut cursor = real.as_path();
        while !cursor.exists() {
            missing.push(cursor.to_path_buf());
            match cursor.parent() {
                Some(parent) => cursor = parent,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            self.tick()?;
            fs::create_dir(&dir).map_err(io("create directory", &dir))?;
            self.journal.push(Change::CreatedDir { path: dir.clone() });
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .map_err(io("set mode of", &dir))?;
        }
        Ok(())
    }

    /// Write `bytes` to `path` atomically with `mode`, backing up what was there.
    pub fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), ApplyError> {
        let real = self.confined(path)?;
        let previous = self.backup(&real)?;
        self.tick()?;
        write_and_rename(&real, bytes, mode)?;
        self.mark_dirty(&real);
        self.journal.push(match previous {
            Some(backup) => Change::Replaced { path: real, backup },
            None => Change::Created { path: real },
        });
        Ok(())
    }

    /// Create files that do not exist yet. Their temp files are written and
    /// fsynced in parallel — the fsyncs dominate, and the filesystem can
    /// commit many at once — then renamed into place one by one, each
    /// recorded, exactly as [`Transaction::write`] would. A file that
    /// appeared meanwhile goes through `write` (backed up first).
    pub fn create_files(&mut self, files: &[(PathBuf, &[u8], u32)]) -> Result<(), ApplyError> {
        let reals = files
            .iter()
            .map(|(path, _, _)| self.confined(path))
            .collect::<Result<Vec<_>, _>>()?;
        let chunk = files.len().div_ceil(PARALLEL_WRITES).max(1);
        let temps: Vec<Result<tempfile::TempPath, ApplyError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = files
                .chunks(chunk)
                .zip(reals.chunks(chunk))
                .map(|(files, reals)| {
                    scope.spawn(move || {
                        files
                            .iter()
                            .zip(reals)
                            .map(|((_, bytes, mode), real)| durable_temp(real, bytes, *mode))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().expect("a temp-file writer panicked"))
                .collect()
        });
        // Any error drops every temp file (TempPath deletes on drop).
        let temps = temps.into_iter().collect::<Result<Vec<_>, _>>()?;
        for (((path, bytes, mode), real), temp) in files.iter().zip(reals).zip(temps) {
            if fs::symlink_metadata(&real).is_ok() {
                drop(temp);
                self.write(path, bytes, *mode)?;
                continue;
            }
            self.tick()?;
            temp.persist(&real)
                .map_err(|err| io("rename into place", &real)(err.error))?;
            self.mark_dirty(&real);
            self.journal.push(Change::Created { path: real });
        }
        Ok(())
    }

    /// Remove `path` after backing it up.
    pub fn remove(&mut self, path: &Path) -> Result<(), ApplyError> {
        let real = self.confined(path)?;
        let Some(backup) = self.backup(&real)? else {
            return Ok(());
        };
        self.tick()?;
        fs::remove_file(&real).map_err(io("remove", &real))?;
        self.mark_dirty(&real);
        self.journal.push(Change::Removed { path: real, backup });
        Ok(())
    }

    /// Change the mode of `path`.
    pub fn chmod(&mut self, path: &Path, mode: u32) -> Result<(), ApplyError> {
        let real = self.confined(path)?;
        let old_mode = fs::metadata(&real)
            .map_err(io("inspect", &real))?
            .permissions()
            .mode()
            & 0o7777;
        self.tick()?;
        fs::set_permissions(&real, fs::Permissions::from_mode(mode))
            .map_err(io("set mode of", &real))?;
        self.journal.push(Change::Chmod {
            path: real,
            old_mode,
        });
        Ok(())
    }

    /// Remove the directory `dir` if it exists and is empty.
    pub fn remove_dir_if_empty(&mut self, dir: &Path) -> Result<bool, ApplyError> {
        let real = self.confined(dir)?;
        let empty = fs::read_dir(&real).is_ok_and(|mut entries| entries.next().is_none());
        if !empty {
            return Ok(false);
        }
        let mode = fs::metadata(&real)
            .map_err(io("inspect", &real))?
            .permissions()
            .mode()
            & 0o7777;
        self.tick()?;
        fs::remove_dir(&real).map_err(io("remove", &real))?;
        self.mark_dirty(&real);
        self.journal.push(Change::RemovedDir { path: real, mode });
        Ok(true)
    }

    /// Copy the file at `real` (if any) into the backup dir.
    fn backup(&mut self, real: &Path) -> Result<Option<PathBuf>, ApplyError> {
        let meta = match fs::metadata(real) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io("inspect", real)(err)),
        };
        if !self.backup_dir.exists() {
            self.tick()?;
            let mut missing = Vec::new();
            let mut cursor = Some(self.backup_dir.as_path());
            while let Some(dir) = cursor.filter(|d| !d.exists()) {
                missing.push(dir.to_path_buf());
                cursor = dir.parent();
            }
            for dir in missing.into_iter().rev() {
                fs::create_dir(&dir).map_err(io("create", &dir))?;
                self.backup_dirs_created.push(dir);
            }
        }
        self.backup_count += 1;
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let backup = self
            .backup_dir
            .join(format!("{:04}-{name}", self.backup_count));
        self.tick()?;
        let bytes = fs::read(real).map_err(io("read", real))?;
        atomic_write(&backup, &bytes, meta.permissions().mode() & 0o7777)?;
        Ok(Some(backup))
    }

    fn mark_dirty(&mut self, path: &Path) {
        if let Some(dir) = path.parent() {
            self.dirty_dirs.insert(dir.to_path_buf());
        }
    }

    /// Make every rename and removal so far durable: one fsync per changed
    /// directory rather than one per file. Call before anything that must
    /// only become durable after them (the receipt).
    pub fn sync_dirs(&mut self) -> Result<(), ApplyError> {
        for dir in std::mem::take(&mut self.dirty_dirs) {
            match File::open(&dir) {
                Ok(handle) => handle.sync_all().map_err(io("fsync directory", &dir))?,
                // Removed later in this transaction: its parent is dirty instead.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(io("open directory", &dir)(err)),
            }
        }
        Ok(())
    }

    /// Keep every change; the journal is returned for `rollback` later.
    pub fn commit(mut self) -> Vec<Change> {
        self.committed = true;
        std::mem::take(&mut self.journal)
    }

    /// Undo every change in reverse order and drop the backups. Errors are
    /// collected and reported; undo goes on past them.
    pub fn rollback(mut self) -> Vec<String> {
        self.committed = true;
        let journal = std::mem::take(&mut self.journal);
        let mut problems = undo(&journal);
        if self.backup_dir.exists() {
            if let Err(err) = fs::remove_dir_all(&self.backup_dir) {
                problems.push(format!(
                    "could not remove backups {}: {err}",
                    self.backup_dir.display()
                ));
            }
        }
        for dir in self.backup_dirs_created.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
        problems
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.committed {
            let journal = std::mem::take(&mut self.journal);
            for problem in undo(&journal) {
                eprintln!("mosaic-install: while undoing: {problem}");
            }
        }
    }
}

/// Undo a journal in reverse order; returns what could not be undone.
pub fn undo(journal: &[Change]) -> Vec<String> {
    let mut problems = Vec::new();
    for change in journal.iter().rev() {
        let result = match change {
            Change::Created { path } => fs::remove_file(path).map_err(io("remove", path)),
            Change::Replaced { path, backup } | Change::Removed { path, backup } => {
                restore(backup, path)
            }
            Change::Chmod { path, old_mode } => {
                fs::set_permissions(path, fs::Permissions::from_mode(*old_mode))
                    .map_err(io("set mode of", path))
            }
            Change::CreatedDir { path } => fs::remove_dir(path).map_err(io("remove", path)),
            Change::RemovedDir { path, mode } => fs::create_dir(path)
                .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(*mode)))
                .map_err(io("recreate", path)),
        };
        if let Err(err) = result {
            problems.push(err.to_string());
        }
    }
    problems
}

fn restore(backup: &Path, path: &Path) -> Result<(), ApplyError> {
    let meta = fs::metadata(backup).map_err(io("inspect backup", backup))?;
    let bytes = fs::read(backup).map_err(io("read backup", backup))?;
    atomic_write(path, &bytes, meta.permissions().mode() & 0o7777)
}

/// How many temp files are written and fsynced at once by
/// [`Transaction::create_files`].
const PARALLEL_WRITES: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("root");
        fs::create_dir(&root).unwrap();
        let backups = dir.path().canonicalize().unwrap().join("backups");
        (dir, root, backups)
    }

    #[test]
    fn rollback_restores_replaced_and_removes_created() {
        let (_dir, root, backups) = setup();
        fs::write(root.join("old"), "old").unwrap();
        fs::write(root.join("gone"), "gone").unwrap();
        let mut tx = Transaction::begin(vec![root.clone()], backups.clone());
        tx.create_dir_all(&root.join("a/b"), 0o755).unwrap();
        tx.write(&root.join("a/b/new"), b"new", 0o644).unwrap();
        tx.write(&root.join("old"), b"changed", 0o600).unwrap();
        tx.remove(&root.join("gone")).unwrap();
        assert_eq!(fs::read_to_string(root.join("old")).unwrap(), "changed");
        assert!(tx.rollback().is_empty());
        assert_eq!(fs::read_to_string(root.join("old")).unwrap(), "old");
        assert_eq!(fs::read_to_string(root.join("gone")).unwrap(), "gone");
        assert!(!root.join("a").exists());
        assert!(!backups.exists());
    }

    #[test]
    fn dropping_uncommitted_transaction_undoes() {
        let (_dir, root, backups) = setup();
        {
            let mut tx = Transaction::begin(vec![root.clone()], backups);
            tx.write(&root.join("f"), b"x", 0o644).unwrap();
        }
        assert!(!root.join("f").exists());
    }

    #[test]
    fn created_files_land_with_modes_and_roll_back() {
        let (_dir, root, backups) = setup();
        let names: Vec<PathBuf> = (0..20).map(|i| root.join(format!("f{i}"))).collect();
        let files: Vec<(PathBuf, &[u8], u32)> = names
            .iter()
            .map(|p| (p.clone(), b"x".as_slice(), 0o600))
            .collect();
        let mut tx = Transaction::begin(vec![root.clone()], backups);
        tx.create_files(&files).unwrap();
        assert_eq!(tx.journal().len(), 20);
        let mode = fs::metadata(&names[7]).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o600);
        assert!(tx.rollback().is_empty());
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            0,
            "no file or temp file left"
        );
    }

    #[test]
    fn atomic_write_sets_mode() {
        let (_dir, root, _) = setup();
        atomic_write(&root.join("s.sh"), b"#!/bin/sh\n", 0o755).unwrap();
        let mode = fs::metadata(root.join("s.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }
}
