//! `status`: the receipt compared with the disk, file by file — ok,
//! modified by you, replaced by Mosaic's copy (a hash Mosaic ships: its
//! updater put it there), missing — plus our versions waiting beside edited
//! files as `.mosaic-new`. Read-only.

use std::path::PathBuf;

use serde::Serialize;

use crate::confine::ConfineError;
use crate::layout::Layout;
use crate::legacy::KnownHashes;
use crate::plan::beside;
use crate::receipt::{sha256_hex, Receipt, ReceiptError};
use crate::render::Ownership;
use crate::snapshot::read_file;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    Ok,
    Modified,
    /// A copy Mosaic ships (`mosaic update` put it there); the next install
    /// restores ours.
    #[serde(rename = "replaced")]
    ReplacedByMosaic,
    Missing,
}

#[derive(Debug, Serialize)]
pub struct FileStatus {
    pub path: PathBuf,
    pub ownership: Ownership,
    pub state: FileState,
    /// For a file replaced by Mosaic's copy: the release it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// Our version waiting beside an edited file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub generation: u64,
    pub profile: String,
    pub version: String,
    pub files: Vec<FileStatus>,
}

impl StatusReport {
    /// Drift: a managed file modified or missing, any file missing, or a
    /// `.mosaic-new` waiting. Edited config files are the operator's to edit.
    pub fn drift(&self) -> bool {
        self.files.iter().any(|f| {
            f.waiting.is_some()
                || f.state == FileState::Missing
                || f.state == FileState::ReplacedByMosaic
                || (f.state == FileState::Modified && f.ownership == Ownership::Managed)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("nothing is installed here: no receipt at {}; run mosaic-install to install", .0.display())]
    NotInstalled(PathBuf),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Confine(#[from] ConfineError),
}

/// The current receipt, or the operator-facing "nothing is installed here".
pub fn installed_receipt(layout: &Layout) -> Result<Receipt, StatusError> {
    Receipt::load(&layout.receipt())?.ok_or_else(|| StatusError::NotInstalled(layout.receipt()))
}

pub fn status(layout: &Layout) -> Result<StatusReport, StatusError> {
    let receipt = installed_receipt(layout)?;
    let mut files = Vec::new();
    let confiner = layout.confiner()?;
    let known = KnownHashes::shipped();
    for record in &receipt.files {
        let hash = read_file(&confiner, &record.path)?.map(|disk| sha256_hex(&disk.bytes));
        let replaced_by = hash
            .as_deref()
            .and_then(|hash| known.is_pristine(&record.path, hash))
            .map(str::to_owned);
        let state = match hash {
            None => FileState::Missing,
            Some(hash) if hash == record.sha256 => FileState::Ok,
            Some(_) if replaced_by.is_some() => FileState::ReplacedByMosaic,
            Some(_) => FileState::Modified,
        };
        let new = beside(&record.path);
        let waiting = read_file(&confiner, &new)?.map(|_| layout.target(&new));
        files.push(FileStatus {
            path: layout.target(&record.path),
            ownership: record.ownership,
            state,
            replaced_by: replaced_by.filter(|_| state == FileState::ReplacedByMosaic),
            waiting,
        });
    }
    Ok(StatusReport {
        generation: receipt.generation,
        profile: receipt.profile.name,
        version: receipt.bundle_version,
        files,
    })
}
