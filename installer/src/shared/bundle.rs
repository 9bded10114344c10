//! The bundle: the `templates/` tree, embedded in the binary with
//! `include_dir`, or read from an unpacked package directory (`--bundle`).
//!
//! The bundle knows which of its files are installed and where, which are
//! templates (`.j2`), and which are the profiles; it knows nothing about
//! rosters or the disk it installs into. A bundle read from disk is bounded
//! (file count, each file's size, the total) so that pointing `--bundle` at
//! the wrong directory fails at once instead of filling memory.

use std::io::Read;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../templates");

/// Where profiles live inside the bundle.
pub(crate) const PROFILES_DIR: &str = "framework/fleet/examples";
/// The per-agent env file template.
pub(crate) const AGENT_ENV_TEMPLATE: &str = "framework/fleet/agents/agent.env.j2";
/// Suffix of files rendered with minijinja.
pub(crate) const TEMPLATE_SUFFIX: &str = ".j2";
/// Largest file a bundle read from disk may hold (1 MiB).
pub(crate) const MAX_BUNDLE_FILE_BYTES: u64 = 1 << 20;
/// Largest sum of a bundle's files (16 MiB).
pub(crate) const MAX_BUNDLE_BYTES: u64 = 16 << 20;
/// Most files a bundle may hold.
pub(crate) const MAX_BUNDLE_FILES: usize = 10_000;

/// One file of the bundle: its path inside `templates/` and its bytes.
#[derive(Debug, Clone)]
pub(crate) struct BundleFile {
    pub(crate) path: String,
    pub(crate) contents: Vec<u8>,
}

/// The set of files the installer renders from.
#[derive(Debug, Clone)]
pub(crate) struct Bundle {
    /// Human-readable origin: "embedded" or the directory it was read from.
    pub(crate) origin: String,
    /// Version from the bundle's package.json.
    pub(crate) version: String,
    files: Vec<BundleFile>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BundleError {
    #[error("cannot read bundle file {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("bundle {origin} has no usable package.json version: {why}; point --bundle at an unpacked mosaic-fleet-templates package")]
    Version { origin: String, why: String },
    #[error("bundle file {}: {rule}\n    fix: point --bundle at an unpacked mosaic-fleet-templates package (the shipped one holds about 20 files, 120 KB)", path.display())]
    Limit { path: PathBuf, rule: String },
}

impl Bundle {
    /// The templates compiled into this binary.
    pub(crate) fn embedded() -> Bundle {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED, &mut files);
        Bundle::from_files("embedded".into(), files).expect("embedded package.json is valid")
    }

    /// A bundle read from a directory shaped like `templates/` (or an
    /// unpacked npm package of it).
    pub(crate) fn from_dir(dir: &Path) -> Result<Bundle, BundleError> {
        let mut files = Vec::new();
        collect_dir(dir, dir, &mut files, &mut 0)?;
        Bundle::from_files(dir.display().to_string(), files)
    }

    fn from_files(origin: String, mut files: Vec<BundleFile>) -> Result<Bundle, BundleError> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let manifest = files
            .iter()
            .find(|f| f.path == "package.json")
            .ok_or_else(|| BundleError::Version {
                origin: origin.clone(),
                why: "package.json is missing".into(),
            })?;
        let json: serde_json::Value =
            serde_json::from_slice(&manifest.contents).map_err(|err| BundleError::Version {
                origin: origin.clone(),
                why: err.to_string(),
            })?;
        let version = json["version"]
            .as_str()
            .ok_or_else(|| BundleError::Version {
                origin: origin.clone(),
                why: "`version` is not a string".into(),
            })?
            .to_owned();
        Ok(Bundle {
            origin,
            version,
            files,
        })
    }

    /// Every file, sorted by path.
    pub(crate) fn files(&self) -> &[BundleFile] {
        &self.files
    }

    pub(crate) fn file(&self, path: &str) -> Option<&BundleFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Names of the embedded profiles, sorted.
    pub(crate) fn profile_names(&self) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|f| {
                f.path
                    .strip_prefix(PROFILES_DIR)?
                    .strip_prefix('/')?
                    .strip_suffix(".yaml")
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The YAML text of an embedded profile.
    pub(crate) fn profile_text(&self, name: &str) -> Option<&str> {
        let file = self.file(&format!("{PROFILES_DIR}/{name}.yaml"))?;
        std::str::from_utf8(&file.contents).ok()
    }
}

fn collect_embedded(dir: &Dir<'static>, out: &mut Vec<BundleFile>) {
    for file in dir.files() {
        out.push(BundleFile {
            path: file.path().to_string_lossy().into_owned(),
            contents: file.contents().to_vec(),
        });
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError {
    let path = path.to_path_buf();
    move |cause| BundleError::Read { path, cause }
}

/// Collect the files under `dir`; `total` is the bytes read so far.
fn collect_dir(
    root: &Path,
    dir: &Path,
    out: &mut Vec<BundleFile>,
    total: &mut u64,
) -> Result<(), BundleError> {
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(read_err(&path))?;
        if kind.is_dir() {
            if entry.file_name() != "node_modules" {
                collect_dir(root, &path, out, total)?;
            }
        } else if kind.is_file() {
            let limit = |rule: String| BundleError::Limit {
                path: path.clone(),
                rule,
            };
            if out.len() == MAX_BUNDLE_FILES {
                return Err(limit(format!(
                    "is one file too many: a bundle may hold at most {MAX_BUNDLE_FILES} files"
                )));
            }
            let contents = read_bounded(&path)?;
            if contents.len() as u64 > MAX_BUNDLE_FILE_BYTES {
                return Err(limit(format!(
                    "is more than {MAX_BUNDLE_FILE_BYTES} bytes (1 MiB), the limit for one bundle file"
                )));
            }
            *total += contents.len() as u64;
            if *total > MAX_BUNDLE_BYTES {
                return Err(limit(format!(
                    "takes the bundle past {MAX_BUNDLE_BYTES} bytes (16 MiB), the limit for a whole bundle"
                )));
            }
            let rel = path.strip_prefix(root).expect("walked from root");
            out.push(BundleFile {
                path: rel.to_string_lossy().into_owned(),
                contents,
            });
        }
    }
    Ok(())
}

/// A file's bytes, reading at most one byte past [`MAX_BUNDLE_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, BundleError> {
    let file = std::fs::File::open(path).map_err(read_err(path))?;
    let mut contents = Vec::new();
    file.take(MAX_BUNDLE_FILE_BYTES + 1)
        .read_to_end(&mut contents)
        .map_err(read_err(path))?;
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_dir_with(extra: &str, bytes: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.json"), r#"{"version": "1.0.0"}"#).unwrap();
        std::fs::write(dir.path().join(extra), vec![b'x'; bytes]).unwrap();
        dir
    }

    #[test]
    fn a_bundle_file_over_1_mib_is_refused_naming_it() {
        let at_limit = bundle_dir_with("big.txt", MAX_BUNDLE_FILE_BYTES as usize);
        assert!(Bundle::from_dir(at_limit.path()).is_ok());
        let over = bundle_dir_with("big.txt", MAX_BUNDLE_FILE_BYTES as usize + 1);
        let err = Bundle::from_dir(over.path()).unwrap_err().to_string();
        let wanted = format!(
            "bundle file {}: is more than 1048576 bytes (1 MiB), the limit for one bundle file",
            over.path().join("big.txt").display()
        );
        assert!(err.starts_with(&wanted), "{err}");
    }

    #[test]
    fn a_bundle_over_16_mib_in_all_is_refused() {
        let dir = bundle_dir_with("a", 0);
        for index in 0..17 {
            let file = dir.path().join(format!("part-{index}"));
            std::fs::write(file, vec![b'x'; MAX_BUNDLE_FILE_BYTES as usize]).unwrap();
        }
        let err = Bundle::from_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("past 16777216 bytes (16 MiB), the limit for a whole bundle"),
            "{err}"
        );
    }

    #[test]
    fn embedded_bundle_has_profiles_and_version() {
        let bundle = Bundle::embedded();
        assert_eq!(
            bundle.profile_names(),
            ["local-canary", "minimal", "usc"].map(String::from)
        );
        assert_eq!(bundle.version, env!("CARGO_PKG_VERSION"));
        assert!(bundle.file(AGENT_ENV_TEMPLATE).is_some());
    }
}
