//! Mosaic 0.0.31 trees: finding an existing Mosaic tree that no receipt
//! accounts for, what Mosaic's own markers ([`crate::shared::mosaic`]) say about it, and
//! the table of hashes of files Mosaic shipped: copies of ours its updater
//! may put in place, and pristine copies from before this installer.
//!
//! Every file of such a tree is the operator's unless its hash is in the
//! table. Existing sessions on the operator's default tmux server are listed
//! for the report, read-only (`tmux -L default list-sessions`), never touched.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::shared::mosaic::MosaicMarkers;
use crate::shared::tmux::TmuxServer;

const KNOWN_HASHES: &str = include_str!("legacy/known-hashes.tsv");

/// Pristine hashes of earlier shipped versions, by config-relative path.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownHashes {
    entries: Vec<(PathBuf, String, String)>,
}

impl KnownHashes {
    /// The table compiled into the installer.
    pub(crate) fn shipped() -> KnownHashes {
        KnownHashes::parse(KNOWN_HASHES)
    }

    pub(super) fn parse(text: &str) -> KnownHashes {
        let entries = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let mut cols = line.split('\t');
                Some((
                    PathBuf::from(cols.next()?),
                    cols.next()?.to_owned(),
                    cols.next()?.to_owned(),
                ))
            })
            .collect();
        KnownHashes { entries }
    }

    /// The release a pristine copy came from, if `sha256` is one.
    pub(crate) fn is_pristine(&self, path: &Path, sha256: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(p, hash, _)| p == path && hash == sha256)
            .map(|(_, _, release)| release.as_str())
    }
}

/// An existing Mosaic tree without a receipt.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LegacyInstall {
    pub(crate) mosaic_dir: PathBuf,
    /// The Mosaic release that installed it, e.g. "0.0.31"; None when no
    /// marker says.
    pub(crate) version: Option<String>,
    /// What Mosaic's markers say.
    pub(crate) markers: MosaicMarkers,
    /// Regular files found in the tree (all of them the operator's).
    pub(crate) files: usize,
    /// Sessions on the operator's default tmux server (listed, untouched).
    pub(crate) default_sessions: Vec<String>,
}

impl LegacyInstall {
    /// "Mosaic 0.0.31 (CLI 0.0.31, framework schema 2)".
    pub(crate) fn version_label(&self) -> String {
        self.markers.label()
    }
}

/// Look for a Mosaic tree at `mosaic_dir` (its CLI below `npm_prefixes`);
/// call only without a receipt.
pub(crate) fn detect(mosaic_dir: &Path, npm_prefixes: &[PathBuf]) -> Option<LegacyInstall> {
    if !mosaic_dir.is_dir() {
        return None;
    }
    let markers = MosaicMarkers::read(mosaic_dir, npm_prefixes);
    Some(LegacyInstall {
        files: count_files(mosaic_dir),
        default_sessions: TmuxServer::default_server()
            .sessions()
            .into_iter()
            .map(|session| session.name)
            .collect(),
        mosaic_dir: mosaic_dir.to_path_buf(),
        version: markers.version(),
        markers,
    })
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => count_files(&entry.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_knows_the_0031_send_message() {
        let known = KnownHashes::shipped();
        let path = Path::new("mosaic/tools/tmux/send-message.sh");
        let hash = "a430c4678d72dcf98b6e3fc30cfd6238101abd26e5cfe9b511c07b76b0784503";
        assert_eq!(known.is_pristine(path, hash), Some("Mosaic 0.0.31"));
        assert_eq!(known.is_pristine(path, &"0".repeat(64)), None);
        assert_eq!(known.is_pristine(Path::new("other"), hash), None);
    }
}
