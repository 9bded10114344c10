//! The installer's state directory (`~/.local/state/mosaic-install`): how a
//! run gets to use it. [`lock`] is the door every state-changing command
//! goes through: it checks that the directory cannot be used to write
//! outside the home ([`check`]), takes the install lock, and finishes or
//! undoes a run that was interrupted ([`recover`]) before anything else.
//! Read-only commands call [`recover_if_pending`], which takes the lock only
//! when there is something to recover.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::shared::layout::Layout;
use crate::shared::lock::{InstallLock, LockError};
use crate::shared::transaction::journal::{
    self, Begin, Journal, JournalError, Unrestored, DONE, WAL,
};
use crate::shared::transaction::{describe_undo, sync_dir, ApplyError, UndoOutcome};

#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("refusing to use the state directory: {} is a symlink to {}, which leads outside {}; replace it with a real directory (`rm {}`), then run again", path.display(), target.display(), anchor.display(), path.display())]
    Escapes {
        path: PathBuf,
        target: PathBuf,
        anchor: PathBuf,
    },
    #[error("refusing to use the state directory: {} is a symlink, and the installer's state never holds links (it could lead a backup or a restore anywhere); remove it (`rm {}`), then run again", path.display(), path.display())]
    Link { path: PathBuf },
    #[error("refusing to use the state directory: {} belongs to uid {owner}, not to you (uid {uid}); another user could swap what rollback restores; remove it or give it back (`chown {uid} {}`), then run again", path.display(), path.display())]
    Owner { path: PathBuf, owner: u32, uid: u32 },
    #[error("refusing to use the state directory: {} is writable by other users (mode {mode:04o}); another user could plant links or swap backups in it; run `chmod go-w {}`, then run again", path.display(), path.display())]
    Writable { path: PathBuf, mode: u32 },
    #[error("cannot inspect {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RecoverError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot create the home directory {}: {cause}", path.display())]
    Home {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("an interrupted `{command}` could not be undone\n{}", describe_undo(undo, &Some(journal.clone())))]
    Unfinished {
        command: String,
        undo: Box<UndoOutcome>,
        journal: PathBuf,
    },
    #[error("an interrupted `{command}` was committed, but finishing it failed: {cause}; the next command tries again")]
    Finish {
        command: String,
        cause: Box<ApplyError>,
    },
    #[error("an interrupted `{command}` was undone, but removing its journal failed: {cause}")]
    Retire {
        command: String,
        cause: Box<ApplyError>,
    },
    #[error(transparent)]
    Journal(#[from] Box<JournalError>),
}

/// What recovery did, for the operator.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum Recovery {
    /// The run had not reached its commit point: every step was undone.
    Undone {
        command: String,
        generation: Option<u64>,
        steps: usize,
        /// Files someone else changed since; left as they are.
        kept: Vec<Unrestored>,
    },
    /// The run had committed: its finishing steps were completed.
    Completed {
        command: String,
        generation: Option<u64>,
    },
    /// A half-created or half-removed state directory was removed.
    Cleaned { path: PathBuf },
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let generation =
            |g: &Option<u64>| g.map(|n| format!(" (generation {n})")).unwrap_or_default();
        match self {
            Recovery::Undone {
                command,
                generation: g,
                steps,
                kept,
            } => {
                write!(
                    f,
                    "an interrupted `{command}`{} was undone ({steps} steps): everything is as it was before it",
                    generation(g)
                )?;
                for file in kept {
                    write!(f, "\n  kept {file}")?;
                }
                Ok(())
            }
            Recovery::Completed {
                command,
                generation: g,
            } => write!(
                f,
                "an interrupted `{command}`{} had committed and was completed",
                generation(g)
            ),
            Recovery::Cleaned { path } => {
                write!(f, "removed {}, left by an interrupted run", path.display())
            }
        }
    }
}

/// The lock, taken by every command that changes anything, with the state
/// directory checked and any interrupted run recovered first.
pub(crate) struct Locked {
    pub(crate) lock: InstallLock,
    pub(crate) recovered: Vec<Recovery>,
}

/// Check the state directory, take the install lock, recover.
pub(crate) fn lock(layout: &Layout) -> Result<Locked, RecoverError> {
    check(layout)?;
    fs::create_dir_all(&layout.home).map_err(|cause| RecoverError::Home {
        path: layout.home.clone(),
        cause,
    })?;
    let lock = InstallLock::acquire(&layout.home)?;
    let recovered = recover(layout, &lock)?;
    Ok(Locked { lock, recovered })
}

/// For read-only commands: recover when an interrupted run left anything,
/// taking the lock only then (a home with nothing pending stays untouched).
pub(crate) fn recover_if_pending(layout: &Layout) -> Result<Vec<Recovery>, RecoverError> {
    check(layout)?;
    if !pending(layout) {
        return Ok(Vec::new());
    }
    Ok(lock(layout)?.recovered)
}

fn pending(layout: &Layout) -> bool {
    let state = &layout.state;
    fs::symlink_metadata(state.join(WAL)).is_ok()
        || fs::symlink_metadata(state.join(DONE)).is_ok()
        || !journal::staging_leftovers(state).is_empty()
}

/// Finish or undo what an interrupted run left. Needs the lock.
pub(crate) fn recover(layout: &Layout, _lock: &InstallLock) -> Result<Vec<Recovery>, RecoverError> {
    let state = &layout.state;
    let mut out = Vec::new();
    for staging in journal::staging_leftovers(state) {
        journal::remove_staging(&staging).map_err(|cause| RecoverError::Retire {
            command: "create or remove the state directory".into(),
            cause: Box::new(cause),
        })?;
        out.push(Recovery::Cleaned { path: staging });
    }
    let wal = state.join(WAL);
    if fs::symlink_metadata(&wal).is_ok() {
        if never_begun(&wal) {
            // Killed while writing the begin record: no step was taken.
            fs::remove_file(&wal)
                .map_err(|cause| RecoverError::Retire {
                    command: "an unknown run".into(),
                    cause: Box::new(ApplyError::Io {
                        what: "remove",
                        path: wal.clone(),
                        cause,
                    }),
                })
                .and_then(|()| {
                    sync_dir(state).map_err(|cause| RecoverError::Retire {
                        command: "an unknown run".into(),
                        cause: Box::new(cause),
                    })
                })?;
        } else {
            let journal = Journal::load(&wal).map_err(Box::new)?;
            let command = journal.begin.command.clone();
            let undo = journal::undo(&journal.begin, &journal.steps);
            if !undo.complete() {
                return Err(RecoverError::Unfinished {
                    command,
                    undo: Box::new(undo),
                    journal: wal,
                });
            }
            retire_undone(state, &journal.begin).map_err(|cause| RecoverError::Retire {
                command: command.clone(),
                cause: Box::new(cause),
            })?;
            out.push(Recovery::Undone {
                command,
                generation: journal.begin.generation,
                steps: undo.steps,
                kept: undo.kept,
            });
        }
    }
    let done = state.join(DONE);
    if fs::symlink_metadata(&done).is_ok() {
        let journal = Journal::load(&done).map_err(Box::new)?;
        let command = journal.begin.command.clone();
        journal::finish(&done, &journal.begin).map_err(|cause| RecoverError::Finish {
            command: command.clone(),
            cause: Box::new(cause),
        })?;
        out.push(Recovery::Completed {
            command,
            generation: journal.begin.generation,
        });
    }
    Ok(out)
}

/// A journal with no complete line holds no step.
fn never_begun(wal: &Path) -> bool {
    fs::read(wal).is_ok_and(|bytes| !bytes.contains(&b'\n'))
}

/// Drop the journal of a run whose every step was undone; a run that
/// created the state directory's chain removes it again, the same way.
pub(crate) fn retire_undone(state: &Path, begin: &Begin) -> Result<(), ApplyError> {
    if begin.created_state_dirs.is_empty() {
        let wal = state.join(WAL);
        fs::remove_file(&wal).map_err(|cause| ApplyError::Io {
            what: "remove",
            path: wal,
            cause,
        })?;
        return sync_dir(state);
    }
    journal::remove_state_chain(state, &begin.created_state_dirs)
}

/// Refuse a state directory that could lead a write outside the home or
/// that another user could tamper with: every existing component below the
/// home (or below `$XDG_STATE_HOME`'s parent) and everything inside the
/// state directory must be a real directory or file (a link may only lead
/// to a place inside the home), owned by this user and not writable by
/// group or others.
pub(crate) fn check(layout: &Layout) -> Result<(), StateError> {
    let state = &layout.state;
    let anchor = if state.starts_with(&layout.home) {
        layout.home.clone()
    } else {
        state
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"))
            .to_path_buf()
    };
    let real_anchor = anchor.canonicalize().unwrap_or_else(|_| anchor.clone());
    let mut current = anchor.clone();
    for part in state.strip_prefix(&anchor).unwrap_or(state).iter() {
        current.push(part);
        let meta = match fs::symlink_metadata(&current) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(cause) => return Err(io(&current, cause)),
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&current).map_err(|cause| io(&current, cause))?;
            let real = current
                .canonicalize()
                .map_err(|cause| io(&current, cause))?;
            if !real.starts_with(&real_anchor) {
                return Err(StateError::Escapes {
                    path: current,
                    target,
                    anchor,
                });
            }
            let meta = fs::metadata(&real).map_err(|cause| io(&real, cause))?;
            owned_and_private(&current, &meta)?;
        } else {
            owned_and_private(&current, &meta)?;
        }
    }
    check_inside(state, 0)
}

/// Everything inside the state directory: no links, ours, private.
fn check_inside(dir: &Path, depth: usize) -> Result<(), StateError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(cause) => return Err(io(dir, cause)),
    };
    for entry in entries {
        let entry = entry.map_err(|cause| io(dir, cause))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(|cause| io(&path, cause))?;
        if meta.file_type().is_symlink() {
            return Err(StateError::Link { path });
        }
        owned_and_private(&path, &meta)?;
        if meta.is_dir() && depth < 4 {
            check_inside(&path, depth + 1)?;
        }
    }
    Ok(())
}

fn owned_and_private(path: &Path, meta: &fs::Metadata) -> Result<(), StateError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(StateError::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StateError::Writable {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn io(path: &Path, cause: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn layout() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::for_home(&dir.path().canonicalize().unwrap()).unwrap();
        (dir, layout)
    }

    #[test]
    fn a_state_link_leaving_the_home_is_refused() {
        let (_dir, layout) = layout();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(layout.home.join(".local")).unwrap();
        symlink(outside.path(), layout.home.join(".local/state")).unwrap();
        let err = check(&layout).unwrap_err();
        assert!(matches!(err, StateError::Escapes { .. }), "{err}");
        assert!(err.to_string().contains("leads outside"), "{err}");
    }

    #[test]
    fn a_link_inside_the_state_directory_is_refused() {
        let (_dir, layout) = layout();
        fs::create_dir_all(&layout.state).unwrap();
        symlink("/etc/passwd", layout.state.join("lock")).unwrap();
        let err = check(&layout).unwrap_err();
        assert!(matches!(err, StateError::Link { .. }), "{err}");
    }

    #[test]
    fn a_world_writable_state_directory_is_refused() {
        let (_dir, layout) = layout();
        fs::create_dir_all(layout.state.join("backups")).unwrap();
        fs::set_permissions(
            layout.state.join("backups"),
            fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let err = check(&layout).unwrap_err();
        assert!(
            matches!(err, StateError::Writable { mode: 0o777, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod go-w"), "{err}");
    }

    #[test]
    fn nothing_pending_takes_no_lock_and_writes_nothing() {
        let (_dir, layout) = layout();
        assert!(recover_if_pending(&layout).unwrap().is_empty());
        assert_eq!(fs::read_dir(&layout.home).unwrap().count(), 0);
    }
}
