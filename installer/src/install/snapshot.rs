//! Reading the disk for the planner: the files and directories a plan looks
//! at, each resolved through [`crate::shared::confine`] so that no symlink leads a
//! read (and so the write it decides) outside the config root.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::install::plan::{DiskFile, Snapshot};
use crate::shared::confine::{ConfineError, Confiner};

impl Snapshot {
    /// Read `files` and check `dirs` through `confiner` (all config-relative).
    pub(crate) fn read<'a>(
        confiner: &Confiner,
        files: impl IntoIterator<Item = &'a PathBuf>,
        dirs: impl IntoIterator<Item = &'a PathBuf>,
    ) -> Result<Snapshot, ConfineError> {
        let mut snapshot = Snapshot::default();
        for rel in files {
            if let Some(file) = read_file(confiner, rel)? {
                snapshot.files.insert(rel.clone(), file);
            }
        }
        for rel in dirs {
            let real = confiner.resolve(rel)?;
            match std::fs::metadata(&real) {
                Ok(meta) if meta.is_dir() => {
                    snapshot.dirs.insert(rel.clone());
                }
                Ok(_) => {
                    return Err(ConfineError::Io {
                        path: real,
                        cause: std::io::Error::other(
                            "a file stands where a directory is needed; move it aside",
                        ),
                    })
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(cause) => return Err(ConfineError::Io { path: real, cause }),
            }
        }
        Ok(snapshot)
    }
}

/// Bytes and mode of the regular file at `rel`, None when absent.
pub(crate) fn read_file(confiner: &Confiner, rel: &Path) -> Result<Option<DiskFile>, ConfineError> {
    let real = confiner.resolve(rel)?;
    let io = |cause| ConfineError::Io {
        path: real.clone(),
        cause,
    };
    match std::fs::metadata(&real) {
        Ok(meta) if meta.is_file() => {
            let bytes = std::fs::read(&real).map_err(io)?;
            Ok(Some(DiskFile {
                bytes,
                mode: meta.permissions().mode() & 0o7777,
            }))
        }
        Ok(_) => Err(io(std::io::Error::other(
            "not a regular file; move it aside and run again",
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(io(err)),
    }
}
