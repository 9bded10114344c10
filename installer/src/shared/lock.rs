//! The install lock: one state-changing run at a time per home.
//!
//! The lock is an advisory `flock` on the home directory itself, not on a
//! file: taking it creates nothing (a first install into an empty home, or a
//! `status` that must recover an interrupted run, writes no lock file), and
//! there is no lock file a planted symlink could turn into a write outside
//! the home. The kernel drops the lock when the process dies, so a crash
//! never leaves a stale lock behind. A second run names the holder's pid,
//! which the kernel lists in `/proc/locks`.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a held lock is retried before giving up.
const GRACE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error("another mosaic-install or mosaic-fleet is running (pid {pid}) and holds the install lock on {}; wait for it to finish, then run again", path.display())]
    Held { pid: String, path: PathBuf },
    #[error("cannot take the install lock on {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Held for the life of the value.
pub(crate) struct InstallLock {
    _dir: File,
}

impl InstallLock {
    /// Lock `home` (a directory that exists), failing fast if another
    /// process holds it. "Fast" allows a short grace: a lock is also held
    /// for a moment by a child forked while it was taken (until its exec
    /// closes the inherited descriptor).
    pub(crate) fn acquire(home: &Path) -> Result<InstallLock, LockError> {
        let err = |cause| LockError::Io {
            path: home.to_path_buf(),
            cause,
        };
        let dir = File::open(home).map_err(err)?;
        let deadline = Instant::now() + GRACE;
        loop {
            match dir.try_lock() {
                Ok(()) => return Ok(InstallLock { _dir: dir }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(LockError::Held {
                        pid: holder(&dir).unwrap_or_else(|| "unknown".into()),
                        path: home.to_path_buf(),
                    })
                }
                Err(std::fs::TryLockError::Error(cause)) => return Err(err(cause)),
            }
        }
    }
}

/// The pid holding an flock on `file`, from `/proc/locks`, whose lines read
/// `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF` (device in hex).
fn holder(file: &File) -> Option<String> {
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Waiters are listed as `1: -> FLOCK ...`: skip them.
        let holds = fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&id.as_str());
        holds.then(|| fields[4].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let first = InstallLock::acquire(dir.path()).unwrap();
        let err = InstallLock::acquire(dir.path())
            .err()
            .expect("second lock fails");
        let message = err.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        InstallLock::acquire(dir.path()).expect("free again once dropped");
    }
}
