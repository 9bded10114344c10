//! Durable single-file writes: a temp file in the target's directory,
//! written, given its mode, fsynced, then renamed over the target, and the
//! directory fsynced so the rename survives a crash. Errors name the target
//! (the file the operator knows), not the temp file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ApplyError;

/// Same-directory temp file, mode, fsync, rename, fsync of the directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ApplyError> {
    write_and_rename(path, bytes, mode, None)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Same-directory temp file (at `temp` when given, which must not exist),
/// mode, fsync, rename; the directory's fsync is left to the caller.
pub(super) fn write_and_rename(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    temp: Option<&Path>,
) -> Result<(), ApplyError> {
    let temp = durable_temp(path, bytes, mode, temp)?;
    fs::rename(&temp, path).map_err(|cause| {
        let _ = fs::remove_file(&temp);
        io("rename into place", path)(cause)
    })
}

/// A temp file beside `path` holding `bytes` with `mode`, fsynced and
/// closed. Created exclusively and without following a symlink; removed
/// again on failure. Errors name `path`, the file the operator knows, not
/// the temp file.
pub(super) fn durable_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    temp: Option<&Path>,
) -> Result<PathBuf, ApplyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = match temp {
        Some(temp) => temp.to_path_buf(),
        None => random_temp(dir),
    };
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()
    })();
    written.map_err(|cause| {
        let _ = fs::remove_file(&temp);
        ApplyError::Write {
            path: path.to_path_buf(),
            cause,
        }
    })?;
    Ok(temp)
}

fn random_temp(dir: &Path) -> PathBuf {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        ".mosaic-install-{}-{nanos:09}.tmp",
        std::process::id()
    ))
}

/// `mkdir` with `mode` from the start (the umask can only take bits away),
/// then exactly `mode`: a kill between the two never leaves a directory
/// more open than asked for.
pub(crate) fn create_dir_with_mode(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(mode).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

/// fsync a directory, so the renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ApplyError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError {
    let path = path.to_path_buf();
    move |cause| ApplyError::Io { what, path, cause }
}
