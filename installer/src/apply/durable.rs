//! Durable single-file writes: a temp file in the target's directory,
//! written, given its mode, fsynced, then renamed over the target, and the
//! directory fsynced so the rename survives a crash.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::ApplyError;

/// Same-directory temp file, mode, fsync, rename, fsync of the directory.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ApplyError> {
    write_and_rename(path, bytes, mode)?;
    sync_parent(path)
}

/// Same-directory temp file, mode, fsync, rename; the directory's fsync is
/// left to the caller.
pub(super) fn write_and_rename(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ApplyError> {
    durable_temp(path, bytes, mode)?
        .persist(path)
        .map_err(|err| io("rename into place", path)(err.error))
}

/// A temp file beside `path` holding `bytes` with `mode`, fsynced and
/// closed; it is deleted again when dropped unless persisted. Errors name
/// `path`, the file the operator knows, not the temp file.
pub(super) fn durable_temp(
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<tempfile::TempPath, ApplyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".mosaic-install-")
        .tempfile_in(dir)
        .map_err(io("create a temp file beside", path))?;
    // Through the plain File: NamedTempFile's own writes append the temp
    // path to their errors.
    temp.as_file_mut()
        .write_all(bytes)
        .map_err(io("write the new version of", path))?;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io("set the mode of the new version of", path))?;
    temp.as_file()
        .sync_all()
        .map_err(io("fsync the new version of", path))?;
    Ok(temp.into_temp_path())
}

fn sync_parent(path: &Path) -> Result<(), ApplyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

pub(super) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError {
    let path = path.to_path_buf();
    move |cause| ApplyError::Io { what, path, cause }
}
