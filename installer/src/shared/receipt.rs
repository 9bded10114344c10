//! The receipt: what one install wrote (path, mode, sha256, ownership), the
//! directories it created and the agents it enabled. It is how upgrades,
//! `status`, `uninstall` and `rollback` tell our bytes from the operator's.
//!
//! The current receipt is `<state>/receipt.json`; every generation keeps a
//! copy under `<state>/generations/<n>/receipt.json`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::shared::render::Ownership;

/// Name written into every receipt, to recognise our own files.
pub(crate) const TOOL: &str = "mosaic-install";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Receipt {
    pub(crate) tool: String,
    /// Version of mosaic-install that wrote it.
    pub(crate) version: String,
    /// Version of the bundle that was installed.
    pub(crate) bundle_version: String,
    pub(crate) generation: u64,
    pub(crate) profile: ProfileRecord,
    /// Absolute config root the paths below are relative to.
    pub(crate) config_dir: PathBuf,
    pub(crate) files: Vec<FileRecord>,
    /// Directories this installer created (config-relative), for uninstall.
    pub(crate) created_dirs: Vec<PathBuf>,
    /// Local agents whose units were installed.
    pub(crate) agents: Vec<String>,
    /// The tmux socket of the holder server.
    pub(crate) socket: String,
    /// The state directory and the parents of it this installer created
    /// (absolute), removed again by `uninstall` while they hold nothing else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) created_state_dirs: Vec<PathBuf>,
    /// The host the agents were chosen for (`--host`); the default host of
    /// the next run in this home. None in receipts written before `--host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProfileRecord {
    pub(crate) name: String,
    pub(crate) origin: String,
    pub(crate) sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    /// Config-relative path.
    pub(crate) path: PathBuf,
    /// Octal mode, e.g. "0755".
    pub(crate) mode: String,
    /// sha256 of what we shipped for this path. When the operator's version
    /// was kept (a conflict), this is still our version, so the next run sees
    /// theirs as modified again.
    pub(crate) sha256: String,
    pub(crate) ownership: Ownership,
    /// The path held a file before mosaic-install first wrote it; such
    /// files are never removed by `uninstall`.
    #[serde(default)]
    pub(crate) preexisting: bool,
    /// For a managed file the operator changed: the generation that first
    /// found the conflict. Generations from it on are never pruned, so the
    /// upgrade that met the edit can still be rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) conflict_since: Option<u64>,
}

impl FileRecord {
    pub(crate) fn mode_bits(&self) -> u32 {
        u32::from_str_radix(&self.mode, 8).unwrap_or(0o644)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReceiptError {
    #[error("cannot read receipt {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("receipt {} is damaged ({cause}); move it aside to treat this install as unknown, or restore it from {}", path.display(), path.parent().map(|p| p.join("generations").display().to_string()).unwrap_or_default())]
    Parse {
        path: PathBuf,
        cause: serde_json::Error,
    },
}

impl Receipt {
    /// Load a receipt; `Ok(None)` when there is none.
    pub(crate) fn load(path: &Path) -> Result<Option<Receipt>, ReceiptError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => {
                return Err(ReceiptError::Read {
                    path: path.to_path_buf(),
                    cause,
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|cause| ReceiptError::Parse {
                path: path.to_path_buf(),
                cause,
            })
    }

    /// Pretty JSON with a trailing newline.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("receipt serializes");
        bytes.push(b'\n');
        bytes
    }

    pub(crate) fn file(&self, path: &Path) -> Option<&FileRecord> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// Lowercase hex sha256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Octal mode as the receipt spells it.
pub(crate) fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn receipt_round_trips() {
        let receipt = Receipt {
            tool: TOOL.into(),
            version: "0.1.0".into(),
            bundle_version: "0.1.0".into(),
            generation: 3,
            profile: ProfileRecord {
                name: "usc".into(),
                origin: "embedded".into(),
                sha256: sha256_hex(b"x"),
            },
            config_dir: "/h/.config".into(),
            files: vec![FileRecord {
                path: "mosaic/a.sh".into(),
                mode: mode_string(0o755),
                sha256: sha256_hex(b"a"),
                ownership: Ownership::Managed,
                preexisting: false,
                conflict_since: None,
            }],
            created_dirs: vec!["mosaic".into()],
            agents: vec!["a".into()],
            socket: "mosaic-fleet".into(),
            created_state_dirs: Vec::new(),
            host: Some("box1".into()),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, receipt.to_bytes()).unwrap();
        assert_eq!(Receipt::load(&path).unwrap(), Some(receipt.clone()));
        assert_eq!(receipt.files[0].mode_bits(), 0o755);
        assert_eq!(Receipt::load(&dir.path().join("none")).unwrap(), None);
    }
}
