//! Applying: the transactional executor. Every filesystem change the
//! installer makes goes through a [`Transaction`], which records each step
//! in an on-disk write-ahead journal ([`journal`]) before taking it, backs
//! up what it replaces or removes, and writes atomically (same-directory
//! temp file, fsync, rename, fsync of the directory). An error undoes every
//! step in reverse order (the rustup pattern); a kill is undone by the next
//! run, which finds the journal ([`crate::shared::statedir::recover`]).
//!
//! [`Transaction::run`] is the only way in: install, uninstall, rollback and
//! every roster edit call it with the steps as a closure.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::shared::confine::{ConfineError, Confiner};
use crate::shared::lock::InstallLock;

mod durable;
pub(crate) mod journal;

pub(crate) use durable::atomic_write;
pub(crate) use durable::sync_dir;
use durable::{durable_temp, io, write_and_rename};
pub(crate) use journal::{Begin, Change, Fingerprint, Finish, Prune, UndoOutcome};
use journal::{Wal, DONE};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error("cannot {what} {}: {cause}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot write the new version of {}: {cause}", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("injected failure after filesystem operation {0} (fault-injection test)")]
    Injected(usize),
}

/// A transaction that failed, and how its undo went.
#[derive(Debug, thiserror::Error)]
#[error("{failure}\n{}", describe_undo(undo, journal))]
pub(crate) struct TxError {
    pub(crate) failure: Box<ApplyError>,
    pub(crate) undo: UndoOutcome,
    /// Where the journal stays when the undo could not finish.
    pub(crate) journal: Option<PathBuf>,
    /// Filesystem operations performed before the failure.
    pub(crate) ops: usize,
}

/// Operator-facing account of an undo: nothing changed, or exactly which
/// files still need their backups, and where those are.
pub(crate) fn describe_undo(undo: &UndoOutcome, journal: &Option<PathBuf>) -> String {
    let mut out = String::new();
    if undo.failed.is_empty() {
        out.push_str("nothing was changed: every step already taken was undone");
    } else {
        out.push_str("the undo could not finish; every backup is kept. Still to restore:");
        for file in &undo.failed {
            out.push_str(&format!("\n  {file}"));
        }
        if let Some(journal) = journal {
            out.push_str(&format!(
                "\nthe journal {} stays: the next mosaic-install or mosaic-fleet command retries the undo once the cause is fixed (free disk space, permissions); to give up instead, restore those files by hand and move the journal aside",
                journal.display()
            ));
        }
    }
    for file in &undo.kept {
        out.push_str(&format!("\n  kept {file}"));
    }
    out
}

/// What a run is, for its journal.
#[derive(Debug, Clone)]
pub(crate) struct TxSpec {
    /// What the operator ran ("install", "agent add tui-3").
    pub(crate) command: String,
    /// The generation it records, if any.
    pub(crate) generation: Option<u64>,
    /// Where its backups go (everything below belongs to this run).
    pub(crate) backup_dir: PathBuf,
    /// What happens after the commit point.
    pub(crate) finish: Finish,
}

/// A committed run's result.
#[derive(Debug)]
pub(crate) struct Committed<T> {
    pub(crate) value: T,
    /// Filesystem operations performed.
    pub(crate) ops: usize,
    /// A finishing step that failed after the commit point; the next run
    /// completes it.
    pub(crate) unfinished: Option<String>,
}

/// The filesystem changes of one run. Paths given to it are absolute and
/// checked against `roots` (symlinks leaving every root are refused).
pub(crate) struct Transaction {
    roots: Vec<Confiner>,
    wal: Wal,
    begin: Begin,
    steps: Vec<Change>,
    ops: usize,
    fail_after: Option<usize>,
    /// Numbers temp files and backups, unique within the run.
    seq: usize,
    /// Directories whose entries changed since the last [`Transaction::sync_dirs`].
    dirty_dirs: BTreeSet<PathBuf>,
}

impl Transaction {
    /// Run `body` as one transaction with its journal in `state`, writing
    /// only under `roots`. The caller holds the install lock. On success
    /// the commit point is passed and the finishing steps run; on failure
    /// every step is undone (and the journal stays if that cannot finish).
    pub(crate) fn run<T>(
        _lock: &InstallLock,
        state: &Path,
        roots: Vec<PathBuf>,
        spec: TxSpec,
        body: impl FnOnce(&mut Transaction) -> Result<T, ApplyError>,
    ) -> Result<Committed<T>, TxError> {
        let begin = Begin {
            command: spec.command,
            generation: spec.generation,
            backup_dir: spec.backup_dir,
            created_state_dirs: Vec::new(),
            finish: spec.finish,
        };
        let (wal, begin) = Wal::create(state, begin).map_err(|failure| TxError {
            failure: Box::new(failure),
            undo: UndoOutcome::default(),
            journal: None,
            ops: 0,
        })?;
        let mut tx = Transaction {
            roots: confiners(&roots),
            wal,
            begin,
            steps: Vec::new(),
            ops: 0,
            fail_after: None,
            seq: 0,
            dirty_dirs: BTreeSet::new(),
        };
        let result = body(&mut tx).and_then(|value| {
            tx.sync_dirs()?;
            Ok(value)
        });
        match result {
            Ok(value) => Ok(tx.commit(state, value)),
            Err(failure) => Err(tx.abort(state, failure)),
        }
    }

    fn commit<T>(self, state: &Path, value: T) -> Committed<T> {
        let done = state.join(DONE);
        // The commit point: before this rename the run is undone, after it
        // the run is finished.
        let committed = fs::rename(&self.wal.path, &done)
            .map_err(io("commit the journal", &self.wal.path))
            .and_then(|()| sync_dir(state));
        let unfinished = committed
            .and_then(|()| journal::finish(&done, &self.begin))
            .err()
            .map(|err| err.to_string());
        Committed {
            value,
            ops: self.ops,
            unfinished,
        }
    }

    fn abort(self, state: &Path, failure: ApplyError) -> TxError {
        let undo = journal::undo(&self.begin, &self.steps);
        let journal = if undo.complete() {
            crate::shared::statedir::retire_undone(state, &self.begin)
                .err()
                .map(|_| self.wal.path.clone())
        } else {
            Some(self.wal.path.clone())
        };
        TxError {
            failure: Box::new(failure),
            undo,
            journal,
            ops: self.ops,
        }
    }

    /// Fail after the k-th filesystem operation, to prove the undo restores
    /// the tree at every crash point. Test builds only.
    #[cfg(test)]
    pub(crate) fn fail_after(&mut self, k: Option<usize>) {
        self.fail_after = k;
    }

    /// The state directory and the parents of it this run created.
    pub(crate) fn created_state_dirs(&self) -> &[PathBuf] {
        &self.begin.created_state_dirs
    }

    fn tick(&mut self) -> Result<(), ApplyError> {
        self.ops += 1;
        match self.fail_after {
            Some(k) if self.ops >= k => Err(ApplyError::Injected(self.ops)),
            _ => Ok(()),
        }
    }

    /// Record steps in the journal (durably) before taking them.
    fn record(&mut self, steps: Vec<Change>) -> Result<(), ApplyError> {
        self.wal.append(&steps)?;
        self.steps.extend(steps);
        Ok(())
    }

    fn next_seq(&mut self) -> usize {
        self.seq += 1;
        self.seq
    }

    /// A temp file name beside `real`, recorded so an undo removes it.
    fn temp_for(&mut self, real: &Path) -> PathBuf {
        let seq = self.next_seq();
        real.with_file_name(format!(".mosaic-install-tmp-{seq}"))
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

    /// Create `dir` and any missing parents with `mode` (whatever the
    /// umask), recording each.
    pub(crate) fn create_dir_all(&mut self, dir: &Path, mode: u32) -> Result<(), ApplyError> {
        let real = self.confined(dir)?;
        self.create_real_dirs(&real, mode)
    }

    fn create_real_dirs(&mut self, real: &Path, mode: u32) -> Result<(), ApplyError> {
        let mut missing: Vec<PathBuf> = real
            .ancestors()
            .take_while(|d| fs::symlink_metadata(d).is_err())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        for dir in missing {
            self.record(vec![Change::CreatedDir { path: dir.clone() }])?;
            self.tick()?;
            durable::create_dir_with_mode(&dir, mode).map_err(io("create directory", &dir))?;
            self.mark_dirty(&dir);
        }
        Ok(())
    }

    /// Write `bytes` to `path` atomically with `mode`, backing up what was there.
    pub(crate) fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), ApplyError> {
        let real = self.confined(path)?;
        let new = Fingerprint::of(bytes, mode);
        let temp = self.temp_for(&real);
        match self.read_existing(&real)? {
            Some((old_bytes, old)) => {
                let backup = self.backup_path(&real)?;
                self.record(vec![Change::Replaced {
                    path: real.clone(),
                    backup: backup.clone(),
                    old: Some(old.clone()),
                    new: Some(new),
                    temp: Some(temp.clone()),
                }])?;
                self.tick()?;
                atomic_write(&backup, &old_bytes, old.mode)?;
            }
            None => self.record(vec![Change::Created {
                path: real.clone(),
                sha256: Some(new.sha256),
                temp: Some(temp.clone()),
            }])?,
        }
        self.tick()?;
        write_and_rename(&real, bytes, mode, Some(&temp))?;
        self.mark_dirty(&real);
        Ok(())
    }

    /// Create files that do not exist yet: all recorded with one journal
    /// write, their temp files written and fsynced in parallel (the fsyncs
    /// dominate, and the filesystem can commit many at once), then renamed
    /// into place one by one. A file that appeared meanwhile goes through
    /// [`Transaction::write`] (backed up first).
    pub(crate) fn create_files(
        &mut self,
        files: &[(PathBuf, &[u8], u32)],
    ) -> Result<(), ApplyError> {
        let mut fresh = Vec::new();
        for (path, bytes, mode) in files {
            let real = self.confined(path)?;
            if fs::symlink_metadata(&real).is_ok() {
                self.write(path, bytes, *mode)?;
            } else {
                let temp = self.temp_for(&real);
                fresh.push((real, temp, *bytes, *mode));
            }
        }
        self.record(
            fresh
                .iter()
                .map(|(real, temp, bytes, _)| Change::Created {
                    path: real.clone(),
                    sha256: Some(crate::shared::receipt::sha256_hex(bytes)),
                    temp: Some(temp.clone()),
                })
                .collect(),
        )?;
        let chunk = fresh.len().div_ceil(PARALLEL_WRITES).max(1);
        let written: Vec<Result<PathBuf, ApplyError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = fresh
                .chunks(chunk)
                .map(|files| {
                    scope.spawn(move || {
                        files
                            .iter()
                            .map(|(real, temp, bytes, mode)| {
                                durable_temp(real, bytes, *mode, Some(temp))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().expect("a temp-file writer panicked"))
                .collect()
        });
        for result in written {
            result?;
        }
        for (real, temp, _, _) in &fresh {
            self.tick()?;
            fs::rename(temp, real).map_err(io("rename into place", real))?;
            self.mark_dirty(real);
        }
        Ok(())
    }

    /// Remove `path` after backing it up.
    pub(crate) fn remove(&mut self, path: &Path) -> Result<(), ApplyError> {
        let real = self.confined(path)?;
        let Some((bytes, old)) = self.read_existing(&real)? else {
            return Ok(());
        };
        let backup = self.backup_path(&real)?;
        self.record(vec![Change::Removed {
            path: real.clone(),
            backup: backup.clone(),
            old: Some(old.clone()),
        }])?;
        self.tick()?;
        atomic_write(&backup, &bytes, old.mode)?;
        self.tick()?;
        fs::remove_file(&real).map_err(io("remove", &real))?;
        self.mark_dirty(&real);
        Ok(())
    }

    /// Change the mode of `path`.
    pub(crate) fn chmod(&mut self, path: &Path, mode: u32) -> Result<(), ApplyError> {
        let real = self.confined(path)?;
        let old_mode = fs::symlink_metadata(&real)
            .map_err(io("inspect", &real))?
            .mode()
            & 0o7777;
        self.record(vec![Change::Chmod {
            path: real.clone(),
            old_mode,
            mode: Some(mode),
        }])?;
        self.tick()?;
        fs::set_permissions(&real, fs::Permissions::from_mode(mode))
            .map_err(io("set mode of", &real))
    }

    /// Remove the directory `dir` if it exists and is empty.
    pub(crate) fn remove_dir_if_empty(&mut self, dir: &Path) -> Result<bool, ApplyError> {
        let real = self.confined(dir)?;
        let empty = fs::read_dir(&real).is_ok_and(|mut entries| entries.next().is_none());
        if !empty {
            return Ok(false);
        }
        let mode = fs::symlink_metadata(&real)
            .map_err(io("inspect", &real))?
            .mode()
            & 0o7777;
        self.record(vec![Change::RemovedDir {
            path: real.clone(),
            mode,
        }])?;
        self.tick()?;
        fs::remove_dir(&real).map_err(io("remove", &real))?;
        self.mark_dirty(&real);
        Ok(true)
    }

    /// Bytes and fingerprint of the regular file at `real`, None when absent.
    fn read_existing(&self, real: &Path) -> Result<Option<(Vec<u8>, Fingerprint)>, ApplyError> {
        match fs::symlink_metadata(real) {
            Ok(meta) if meta.is_file() => {
                let bytes = fs::read(real).map_err(io("read", real))?;
                let fingerprint = Fingerprint::of(&bytes, meta.mode());
                Ok(Some((bytes, fingerprint)))
            }
            Ok(_) => Err(io("replace", real)(std::io::Error::other(
                "not a regular file; move it aside and run again",
            ))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io("inspect", real)(err)),
        }
    }

    /// Where the backup of `real` goes; the backup directory is created
    /// (and recorded) on first use.
    fn backup_path(&mut self, real: &Path) -> Result<PathBuf, ApplyError> {
        let dir = self.begin.backup_dir.join("files");
        if fs::symlink_metadata(&dir).is_err() {
            let dir = self.confined(&dir)?;
            self.create_real_dirs(&dir, 0o700)?;
        }
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let seq = self.next_seq();
        Ok(dir.join(format!("{seq:04}-{name}")))
    }

    fn mark_dirty(&mut self, path: &Path) {
        if let Some(dir) = path.parent() {
            self.dirty_dirs.insert(dir.to_path_buf());
        }
    }

    /// Make every rename and removal so far durable: one fsync per changed
    /// directory rather than one per file. Call before anything that must
    /// only become durable after them (the receipt).
    pub(crate) fn sync_dirs(&mut self) -> Result<(), ApplyError> {
        for dir in std::mem::take(&mut self.dirty_dirs) {
            match sync_dir(&dir) {
                Ok(()) => {}
                // Removed later in this transaction: its parent is dirty instead.
                Err(ApplyError::Io { cause, .. })
                    if cause.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

fn confiners(roots: &[PathBuf]) -> Vec<Confiner> {
    // Journals record real paths, so accept the roots' canonical forms too.
    let canonical: Vec<PathBuf> = roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
    roots
        .iter()
        .chain(&canonical)
        .filter_map(|root| Confiner::new(root).ok())
        .collect()
}

/// How many temp files are written and fsynced at once by
/// [`Transaction::create_files`].
const PARALLEL_WRITES: usize = 8;

#[cfg(test)]
mod tests;
