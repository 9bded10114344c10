//! The write-ahead journal: the on-disk half of a [`super::Transaction`].
//!
//! `<state>/transaction.wal` holds one JSON record per line: a [`Begin`]
//! (what the run is, where its backups go, what to do once committed),
//! then one [`Change`] per step, each appended and fsynced *before* the step
//! touches the disk. Every record carries what its undo needs (the backup
//! and the hashes that tell "still ours" from "changed since"), so undoing
//! is idempotent: it may run again after being killed itself.
//!
//! The commit point is one atomic rename, `transaction.wal` →
//! `transaction.done`. What follows it (moving the journal into the
//! generation for `rollback`, pruning old generations, or purging the state)
//! is idempotent too and recorded by the `.done` file's existence. So after
//! a kill at any point the next run finds either a `.wal` (undo every step:
//! the old state) or a `.done` (finish: the new state) — never a mix. This is
//! dpkg's `--configure -a` made automatic, on rustup's transaction.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::durable::{create_dir_with_mode, io, sync_dir};
use super::ApplyError;
use crate::shared::receipt::sha256_hex;

/// The in-flight journal, relative to the state directory.
pub(crate) const WAL: &str = "transaction.wal";
/// A committed journal whose finishing steps may not have run yet.
pub(crate) const DONE: &str = "transaction.done";
/// Name of a directory tree being created or purged, in its parent: it
/// appears and disappears with one rename, so a kill never leaves half of
/// the state directory's chain of parents behind.
pub(crate) const STAGING: &str = ".mosaic-install-staging";

/// One recorded step, written before it is taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Change {
    /// A file that did not exist is written (through `temp`).
    Created {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        temp: Option<PathBuf>,
    },
    /// A file is replaced; its old bytes are copied to `backup` first.
    Replaced {
        path: PathBuf,
        backup: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Fingerprint>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new: Option<Fingerprint>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        temp: Option<PathBuf>,
    },
    /// A file is removed; its bytes are copied to `backup` first.
    Removed {
        path: PathBuf,
        backup: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Fingerprint>,
    },
    /// A file's mode changes.
    Chmod {
        path: PathBuf,
        old_mode: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
    },
    /// A directory is created.
    CreatedDir { path: PathBuf },
    /// An empty directory is removed.
    RemovedDir { path: PathBuf, mode: u32 },
}

/// Contents and mode of a file, to recognise it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    pub(crate) sha256: String,
    pub(crate) mode: u32,
}

impl Fingerprint {
    pub(crate) fn of(bytes: &[u8], mode: u32) -> Fingerprint {
        Fingerprint {
            sha256: sha256_hex(bytes),
            mode: mode & 0o7777,
        }
    }

    /// The file at `path` (not following a final symlink), None when absent.
    fn read(path: &Path) -> Result<Option<Fingerprint>, ApplyError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => {
                let bytes = fs::read(path).map_err(io("read", path))?;
                Ok(Some(Fingerprint::of(&bytes, meta.mode())))
            }
            Ok(_) => Err(io("inspect", path)(std::io::Error::other(
                "not a regular file",
            ))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io("inspect", path)(err)),
        }
    }
}

/// What a transaction is, recorded first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Begin {
    /// What the operator ran, for messages ("install", "agent add tui-3").
    pub(crate) command: String,
    /// The generation this run records, if it records one.
    pub(crate) generation: Option<u64>,
    /// Everything below it belongs to this run: removed when it is undone.
    pub(crate) backup_dir: PathBuf,
    /// Directories of the state directory's chain this run created.
    #[serde(default)]
    pub(crate) created_state_dirs: Vec<PathBuf>,
    pub(crate) finish: Finish,
}

/// What happens after the commit point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Finish {
    /// Keep the journal as the generation's, for `rollback`, and prune.
    Generation { journal: PathBuf, prune: Prune },
    /// Nothing to keep: drop the journal.
    Discard,
    /// The state directory goes (with the parents this installer created
    /// for it, when they hold nothing else).
    Purge {
        state: PathBuf,
        created_parents: Vec<PathBuf>,
    },
}

/// Which generations survive: the newest `keep`, and every one from
/// `protect_from` on (an unresolved conflict needs them to roll back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Prune {
    pub(crate) generations: PathBuf,
    pub(crate) backups: PathBuf,
    pub(crate) newest: u64,
    pub(crate) keep: u64,
    pub(crate) protect_from: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Record {
    Begin(Begin),
    Step(Change),
}

/// An open write-ahead journal.
pub(crate) struct Wal {
    file: File,
    pub(crate) path: PathBuf,
}

impl Wal {
    /// Create `<state>/transaction.wal` holding `begin`. When the state
    /// directory does not exist, it is built under a staging name with the
    /// journal inside and renamed into place: one step, never half a chain.
    pub(crate) fn create(state: &Path, mut begin: Begin) -> Result<(Wal, Begin), ApplyError> {
        let path = state.join(WAL);
        if state.is_dir() {
            let file = create_private(&path)?;
            let mut wal = Wal { file, path };
            wal.append_record(&Record::Begin(begin.clone()))?;
            sync_dir(state)?;
            return Ok((wal, begin));
        }
        let missing = missing_chain(state);
        let top = missing.first().expect("state is missing").clone();
        let parent = top.parent().expect("the state directory is not /");
        let staging = parent.join(STAGING);
        remove_tree(&staging)?;
        begin.created_state_dirs = missing.clone();
        // The chain built under the staging name, then renamed into place.
        for dir in &missing {
            let staged = staging.join(dir.strip_prefix(&top).expect("inside top"));
            create_dir_with_mode(&staged, 0o700).map_err(io("create directory", &staged))?;
        }
        let staged_state = staging.join(state.strip_prefix(&top).expect("inside top"));
        let file = create_private(&staged_state.join(WAL))?;
        let mut wal = Wal { file, path };
        wal.append_record(&Record::Begin(begin.clone()))?;
        for dir in missing.iter().rev() {
            sync_dir(&staging.join(dir.strip_prefix(&top).expect("inside top")))?;
        }
        fs::rename(&staging, &top).map_err(io("rename into place", &top))?;
        sync_dir(parent)?;
        Ok((wal, begin))
    }

    /// Append steps (one write, one fsync) before they are taken.
    pub(crate) fn append(&mut self, steps: &[Change]) -> Result<(), ApplyError> {
        let mut lines = Vec::new();
        for step in steps {
            serde_json::to_writer(&mut lines, &Record::Step(step.clone()))
                .expect("journal records serialize");
            lines.push(b'\n');
        }
        self.write_synced(&lines)
    }

    fn append_record(&mut self, record: &Record) -> Result<(), ApplyError> {
        let mut line = serde_json::to_vec(record).expect("journal records serialize");
        line.push(b'\n');
        self.write_synced(&line)
    }

    fn write_synced(&mut self, bytes: &[u8]) -> Result<(), ApplyError> {
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(io("write the journal", &self.path))
    }
}

/// Create a 0600 file that did not exist, never following a symlink.
fn create_private(path: &Path) -> Result<File, ApplyError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io("create", path))?;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io("set mode of", path))?;
    Ok(file)
}

/// The directories from the first missing ancestor of `dir` down to `dir`.
fn missing_chain(dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|d| fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// `dir` and its missing parents, each 0700 whatever the umask; `dir`
/// itself made 0700 again when it exists (a run killed between its mkdir
/// and its chmod, finished now).
fn create_private_dirs(dir: &Path) -> Result<(), ApplyError> {
    for missing in missing_chain(dir) {
        match create_dir_with_mode(&missing, 0o700) {
            Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(io("create directory", &missing)(err))
            }
            _ => {}
        }
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io("set mode of", dir))
}

fn remove_tree(path: &Path) -> Result<(), ApplyError> {
    match fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io("remove", path)(err)),
        _ => Ok(()),
    }
}

/// A journal read back: its begin record and steps. A last line cut short
/// (a power cut while appending) is an intent whose step never started.
#[derive(Debug)]
pub(crate) struct Journal {
    pub(crate) begin: Begin,
    pub(crate) steps: Vec<Change>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    #[error("cannot read the journal {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the journal {} is damaged at line {line}: {why}; move it aside only after restoring the files it names by hand", path.display())]
    Damaged {
        path: PathBuf,
        line: usize,
        why: String,
    },
}

impl Journal {
    pub(crate) fn load(path: &Path) -> Result<Journal, JournalError> {
        let text = fs::read_to_string(path).map_err(|cause| JournalError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let damaged = |line: usize, why: String| JournalError::Damaged {
            path: path.to_path_buf(),
            line,
            why,
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut begin = None;
        let mut steps = Vec::new();
        for (at, line) in lines.iter().enumerate() {
            let record = match serde_json::from_str::<Record>(line) {
                Ok(record) => record,
                // Only the last line can be torn, and only when unfinished.
                Err(_) if at + 1 == lines.len() && !line.ends_with('\n') => break,
                Err(err) => return Err(damaged(at + 1, err.to_string())),
            };
            match record {
                Record::Begin(b) if at == 0 => begin = Some(b),
                Record::Step(step) if at > 0 => steps.push(step),
                _ => return Err(damaged(at + 1, "records out of order".into())),
            }
        }
        let begin = begin.ok_or_else(|| damaged(1, "no begin record".into()))?;
        Ok(Journal { begin, steps })
    }

    /// The steps of a generation's journal: the line format above, or the
    /// JSON array earlier versions wrote.
    pub(crate) fn load_steps(path: &Path) -> Result<Vec<Change>, JournalError> {
        let bytes = fs::read(path).map_err(|cause| JournalError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        if bytes.first() == Some(&b'[') {
            return serde_json::from_slice(&bytes).map_err(|err| JournalError::Damaged {
                path: path.to_path_buf(),
                line: err.line(),
                why: err.to_string(),
            });
        }
        Ok(Journal::load(path)?.steps)
    }
}

/// A file the undo could not bring back, and where its bytes are.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Unrestored {
    pub(crate) path: PathBuf,
    /// The bytes from before the run, when there is a backup.
    pub(crate) backup: Option<PathBuf>,
    pub(crate) why: String,
}

impl std::fmt::Display for Unrestored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backup {
            Some(backup) => write!(
                f,
                "{}: {}; its earlier version is kept at {}",
                self.path.display(),
                self.why,
                backup.display()
            ),
            None => write!(f, "{}: {}", self.path.display(), self.why),
        }
    }
}

/// How an undo went.
#[derive(Debug, Default, Serialize)]
pub(crate) struct UndoOutcome {
    /// Steps reverted (or found never taken).
    pub(crate) steps: usize,
    /// Files changed by someone else since the step: left as they are.
    pub(crate) kept: Vec<Unrestored>,
    /// Steps that failed: the journal and every backup stay for a retry.
    pub(crate) failed: Vec<Unrestored>,
}

impl UndoOutcome {
    pub(crate) fn complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Undo `steps` in reverse. Each undo first looks at the disk: a step never
/// taken, or already undone, is left alone; a file someone else changed
/// since is kept (and reported); a failure is reported and the rest goes on.
/// Backups are only removed once nothing needed them.
pub(crate) fn undo(begin: &Begin, steps: &[Change]) -> UndoOutcome {
    let mut outcome = UndoOutcome::default();
    for step in steps.iter().rev() {
        match undo_step(begin, step, &outcome) {
            Ok(None) => outcome.steps += 1,
            Ok(Some(kept)) => outcome.kept.push(kept),
            Err(failed) => outcome.failed.push(failed),
        }
    }
    if outcome.kept.is_empty() && outcome.failed.is_empty() {
        if let Err(err) = remove_tree(&begin.backup_dir) {
            outcome.failed.push(Unrestored {
                path: begin.backup_dir.clone(),
                backup: None,
                why: err.to_string(),
            });
        }
    }
    outcome
}

fn undo_step(
    begin: &Begin,
    step: &Change,
    so_far: &UndoOutcome,
) -> Result<Option<Unrestored>, Unrestored> {
    let failed = |path: &Path, backup: Option<&Path>| {
        let path = path.to_path_buf();
        let backup = backup.map(Path::to_path_buf);
        move |err: ApplyError| Unrestored {
            path,
            backup,
            why: err.to_string(),
        }
    };
    match step {
        Change::Created { path, sha256, temp } => {
            remove_temp(temp.as_deref()).map_err(failed(path, None))?;
            let Some(now) = Fingerprint::read(path).map_err(failed(path, None))? else {
                return Ok(None);
            };
            if sha256.as_ref().is_some_and(|ours| *ours != now.sha256) {
                return Ok(Some(Unrestored {
                    path: path.clone(),
                    backup: None,
                    why: "written by someone else since; kept".into(),
                }));
            }
            remove_file(path).map_err(failed(path, None))?;
        }
        Change::Replaced {
            path,
            backup,
            old,
            new,
            temp,
        } => {
            remove_temp(temp.as_deref()).map_err(failed(path, Some(backup)))?;
            let now = Fingerprint::read(path).map_err(failed(path, Some(backup)))?;
            if now.is_some() && now == *old {
                return Ok(None);
            }
            let ours = now.is_none() || new.is_none() || now == *new;
            let same_bytes = now.as_ref().map(|n| &n.sha256) == old.as_ref().map(|o| &o.sha256);
            if !ours && !same_bytes {
                return Ok(Some(Unrestored {
                    path: path.clone(),
                    backup: Some(backup.clone()),
                    why: "changed by someone else since; kept".into(),
                }));
            }
            restore(backup, path, old.as_ref()).map_err(failed(path, Some(backup)))?;
        }
        Change::Removed { path, backup, old } => {
            let now = Fingerprint::read(path).map_err(failed(path, Some(backup)))?;
            match now {
                None => restore(backup, path, old.as_ref()).map_err(failed(path, Some(backup)))?,
                Some(now) if old.as_ref().is_none_or(|o| o.sha256 == now.sha256) => {}
                Some(_) => {
                    return Ok(Some(Unrestored {
                        path: path.clone(),
                        backup: Some(backup.clone()),
                        why: "written by someone else since; kept".into(),
                    }))
                }
            }
        }
        Change::Chmod {
            path,
            old_mode,
            mode,
        } => {
            let meta = match fs::symlink_metadata(path) {
                Ok(meta) => meta,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(failed(path, None)(io("inspect", path)(err))),
            };
            let current = meta.mode() & 0o7777;
            if mode.is_none_or(|m| m == current) && current != *old_mode {
                fs::set_permissions(path, fs::Permissions::from_mode(*old_mode))
                    .map_err(|e| failed(path, None)(io("set mode of", path)(e)))?;
            }
        }
        Change::CreatedDir { path } => {
            let inside_backups = path.starts_with(&begin.backup_dir);
            let result = if inside_backups {
                // Backups are dropped only when nothing needed them.
                if !so_far.kept.is_empty() || !so_far.failed.is_empty() {
                    return Ok(None);
                }
                remove_tree(path)
            } else {
                match fs::remove_dir(path) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        Err(io("remove directory", path)(err))
                    }
                    _ => Ok(()),
                }
            };
            result.map_err(failed(path, None))?;
            if let Some(parent) = path.parent() {
                sync_dir(parent).map_err(failed(path, None))?;
            }
        }
        Change::RemovedDir { path, mode } => {
            if fs::symlink_metadata(path).is_err() {
                create_dir_with_mode(path, *mode)
                    .map_err(|e| failed(path, None)(io("recreate", path)(e)))?;
            }
        }
    }
    Ok(None)
}

fn remove_temp(temp: Option<&Path>) -> Result<(), ApplyError> {
    match temp.map(fs::remove_file) {
        Some(Err(err)) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(io("remove", temp.expect("some"))(err))
        }
        _ => Ok(()),
    }
}

fn remove_file(path: &Path) -> Result<(), ApplyError> {
    fs::remove_file(path).map_err(io("remove", path))?;
    sync_dir(path.parent().unwrap_or(Path::new("/")))
}

/// Put `backup`'s bytes back at `path`. The backup must be whole (its hash
/// is the recorded one). Renaming it into place needs no free inode or
/// block, so undo works on a full disk; across filesystems it is copied.
fn restore(backup: &Path, path: &Path, old: Option<&Fingerprint>) -> Result<(), ApplyError> {
    let found = Fingerprint::read(backup)?;
    let whole = match (old, &found) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(old), Some(found)) => old.sha256 == found.sha256,
    };
    if !whole {
        return Err(io("restore from", backup)(std::io::Error::other(
            "the backup is missing or incomplete",
        )));
    }
    let mode = old.map_or(found.expect("checked").mode, |o| o.mode);
    fs::set_permissions(backup, fs::Permissions::from_mode(mode))
        .map_err(io("set mode of", backup))?;
    match fs::rename(backup, path) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EXDEV) => {
            let bytes = fs::read(backup).map_err(io("read backup", backup))?;
            super::durable::write_and_rename(path, &bytes, mode, None)?;
        }
        Err(err) => return Err(io("restore", path)(err)),
    }
    sync_dir(path.parent().unwrap_or(Path::new("/")))
}

/// The steps after the commit point. Idempotent: a kill midway leaves the
/// `.done` file, and the next run calls this again.
pub(crate) fn finish(done: &Path, begin: &Begin) -> Result<(), ApplyError> {
    match &begin.finish {
        Finish::Generation { journal, prune } => {
            prune_generations(prune)?;
            if let Some(dir) = journal.parent() {
                create_private_dirs(dir)?;
            }
            fs::rename(done, journal).map_err(io("keep the journal as", journal))?;
            sync_dir(journal.parent().expect("has a parent"))?;
            sync_dir(done.parent().expect("has a parent"))
        }
        Finish::Discard => {
            remove_file(done)?;
            Ok(())
        }
        Finish::Purge {
            state,
            created_parents,
        } => remove_state_chain(state, created_parents),
    }
}

/// Remove the state directory, and the parents of it in `created` (the
/// ones this installer made) while they hold nothing else, with one rename
/// out of sight first.
pub(crate) fn remove_state_chain(state: &Path, created: &[PathBuf]) -> Result<(), ApplyError> {
    let mut top = state.to_path_buf();
    while let Some(parent) = top.parent().filter(|p| created.iter().any(|c| c == p)) {
        let only_child = fs::read_dir(parent)
            .map(|entries| entries.flatten().count() == 1)
            .unwrap_or(false);
        if !only_child {
            break;
        }
        top = parent.to_path_buf();
    }
    let parent = top.parent().expect("the state directory is not /");
    let staging = parent.join(STAGING);
    remove_tree(&staging)?;
    fs::rename(&top, &staging).map_err(io("move aside", &top))?;
    sync_dir(parent)?;
    remove_tree(&staging)
}

fn prune_generations(prune: &Prune) -> Result<(), ApplyError> {
    let mut cutoff = prune.newest.saturating_sub(prune.keep.max(1));
    if let Some(protected) = prune.protect_from {
        cutoff = cutoff.min(protected.saturating_sub(1));
    }
    for dir in [&prune.generations, &prune.backups] {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let old = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u64>().ok())
                .is_some_and(|n| n <= cutoff);
            if old {
                remove_tree(&entry.path())?;
            }
        }
    }
    Ok(())
}

/// Leftovers of an interrupted run in the state directory's chain.
pub(crate) fn staging_leftovers(state: &Path) -> Vec<PathBuf> {
    state
        .ancestors()
        .skip(1)
        .map(|dir| dir.join(STAGING))
        .filter(|staging| fs::symlink_metadata(staging).is_ok())
        .collect()
}

/// Remove a staging leftover (it only ever holds this installer's state).
pub(crate) fn remove_staging(staging: &Path) -> Result<(), ApplyError> {
    remove_tree(staging)?;
    sync_dir(staging.parent().expect("has a parent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn begin(dir: &Path) -> Begin {
        Begin {
            command: "test".into(),
            generation: Some(1),
            backup_dir: dir.join("state/backups/1"),
            created_state_dirs: Vec::new(),
            finish: Finish::Discard,
        }
    }

    #[test]
    fn wal_creates_the_state_chain_in_one_rename_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b/state");
        let (mut wal, begun) = Wal::create(&state, begin(dir.path())).unwrap();
        assert_eq!(
            begun.created_state_dirs,
            vec![dir.path().join("a"), dir.path().join("a/b"), state.clone()]
        );
        let step = Change::CreatedDir {
            path: dir.path().join("x"),
        };
        wal.append(std::slice::from_ref(&step)).unwrap();
        let journal = Journal::load(&state.join(WAL)).unwrap();
        assert_eq!(journal.begin, begun);
        assert_eq!(journal.steps, vec![step]);
        let mode = fs::metadata(dir.path().join("a")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        assert!(!dir.path().join(STAGING).exists());
    }

    #[test]
    fn a_torn_last_line_is_an_intent_never_started() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("s")).unwrap();
        let (_wal, _) = Wal::create(&dir.path().join("s"), begin(dir.path())).unwrap();
        let path = dir.path().join("s").join(WAL);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"step":{"kind":"created-d"#).unwrap();
        assert!(Journal::load(&path).unwrap().steps.is_empty());
        file.write_all(b"\n{}\n").unwrap();
        assert!(Journal::load(&path).is_err(), "damage in the middle");
    }

    #[test]
    fn undo_keeps_a_file_changed_since_and_its_backup() {
        let dir = tempfile::tempdir().unwrap();
        let begin = begin(dir.path());
        fs::create_dir_all(&begin.backup_dir).unwrap();
        let file = dir.path().join("f");
        let backup = begin.backup_dir.join("0001-f");
        fs::write(&backup, "old").unwrap();
        fs::write(&file, "edited since").unwrap();
        let steps = vec![
            Change::CreatedDir {
                path: begin.backup_dir.clone(),
            },
            Change::Replaced {
                path: file.clone(),
                backup: backup.clone(),
                old: Some(Fingerprint::of(b"old", 0o644)),
                new: Some(Fingerprint::of(b"new", 0o644)),
                temp: None,
            },
        ];
        let outcome = undo(&begin, &steps);
        assert!(outcome.complete());
        assert_eq!(outcome.kept.len(), 1, "{outcome:?}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "edited since");
        assert_eq!(fs::read_to_string(&backup).unwrap(), "old", "backup kept");
    }

    #[test]
    fn undo_restores_by_rename_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let begin = begin(dir.path());
        fs::create_dir_all(&begin.backup_dir).unwrap();
        let file = dir.path().join("f");
        let backup = begin.backup_dir.join("0001-f");
        fs::write(&backup, "old").unwrap();
        fs::set_permissions(&backup, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&file, "new").unwrap();
        let steps = vec![
            Change::CreatedDir {
                path: begin.backup_dir.clone(),
            },
            Change::Replaced {
                path: file.clone(),
                backup,
                old: Some(Fingerprint::of(b"old", 0o600)),
                new: Some(Fingerprint::of(b"new", 0o644)),
                temp: None,
            },
        ];
        let first = undo(&begin, &steps);
        assert!(first.complete() && first.kept.is_empty(), "{first:?}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "old");
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
        assert!(!begin.backup_dir.exists());
        let again = undo(&begin, &steps);
        assert!(again.complete() && again.kept.is_empty(), "{again:?}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "old");
    }
}
