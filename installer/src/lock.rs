//! The install lock: one mosaic-install at a time per state directory.
//!
//! An advisory `flock` on `<state>/lock`, which also holds the owner's pid so
//! that a second run can say who holds it. The kernel drops the lock when
//! the process dies, so a crash never leaves a stale lock behind.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another mosaic-install is running (pid {pid}) and holds {}; wait for it to finish, then run again", path.display())]
    Held { pid: String, path: PathBuf },
    #[error("cannot take the install lock {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

pub struct InstallLock {
    file: File,
    path: PathBuf,
    /// Directories created to hold the lock, removed again by `abandon`.
    created: Vec<PathBuf>,
    created_file: bool,
}

impl InstallLock {
    /// Take the lock at `path`, failing fast if another process holds it.
    pub fn acquire(path: &Path) -> Result<InstallLock, LockError> {
        let err = |cause| LockError::Io {
            path: path.to_path_buf(),
            cause,
        };
        let mut created = Vec::new();
        let mut cursor = path.parent();
        while let Some(dir) = cursor.filter(|d| !d.exists()) {
            created.push(dir.to_path_buf());
            cursor = dir.parent();
        }
        // Another run may create the same directories at the same moment:
        // only what this run really created is ours to remove again.
        let mut made = Vec::new();
        for dir in created.iter().rev() {
            match fs::create_dir(dir) {
                Ok(()) => made.push(dir.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e)),
            }
        }
        made.reverse();
        let created = made;
        let created_file = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Held {
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.into()
                    },
                    path: path.to_path_buf(),
                });
            }
            Err(fs::TryLockError::Error(cause)) => return Err(err(cause)),
        }
        file.set_len(0).map_err(err)?;
        file.rewind().map_err(err)?;
        writeln!(file, "{}", std::process::id()).map_err(err)?;
        Ok(InstallLock {
            file,
            path: path.to_path_buf(),
            created,
            created_file,
        })
    }

    /// Release after a failed run: also remove the lock file and directories
    /// this lock created, so a failed first install leaves no trace.
    pub fn abandon(self) {
        if self.created_file {
            let _ = fs::remove_file(&self.path);
        }
        for dir in &self.created {
            let _ = fs::remove_dir(dir);
        }
        drop(self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/lock");
        let first = InstallLock::acquire(&path).unwrap();
        let err = InstallLock::acquire(&path)
            .err()
            .expect("second lock fails");
        let message = err.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        first.abandon();
        assert!(!dir.path().join("state").exists());
    }
}
