//! The bundle: the `templates/` tree, embedded in the binary with
//! `include_dir`, or read from an unpacked package directory (`--bundle`).
//!
//! The bundle knows which of its files are installed and where, which are
//! templates (`.j2`), and which are the profiles; it knows nothing about
//! rosters or the disk it installs into.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../templates");

/// Where profiles live inside the bundle.
pub const PROFILES_DIR: &str = "framework/fleet/examples";
/// The per-agent env file template.
pub const AGENT_ENV_TEMPLATE: &str = "framework/fleet/agents/agent.env.j2";
/// Suffix of files rendered with minijinja.
pub const TEMPLATE_SUFFIX: &str = ".j2";

/// One file of the bundle: its path inside `templates/` and its bytes.
#[derive(Debug, Clone)]
pub struct BundleFile {
    pub path: String,
    pub contents: Vec<u8>,
}

/// The set of files the installer renders from.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Human-readable origin: "embedded" or the directory it was read from.
    pub origin: String,
    /// Version from the bundle's package.json.
    pub version: String,
    files: Vec<BundleFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read bundle file {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("bundle {origin} has no usable package.json version: {why}; point --bundle at an unpacked mosaic-fleet-templates package")]
    Version { origin: String, why: String },
}

impl Bundle {
    /// The templates compiled into this binary.
    pub fn embedded() -> Bundle {
        let mut files = Vec::new();
        collect_embedded(&EMBEDDED, &mut files);
        Bundle::from_files("embedded".into(), files).expect("embedded package.json is valid")
    }

    /// A bundle read from a directory shaped like `templates/` (or an
    /// unpacked npm package of it).
    pub fn from_dir(dir: &Path) -> Result<Bundle, BundleError> {
        let mut files = Vec::new();
        collect_dir(dir, dir, &mut files)?;
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
    pub fn files(&self) -> &[BundleFile] {
        &self.files
    }

    pub fn file(&self, path: &str) -> Option<&BundleFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Names of the embedded profiles, sorted.
    pub fn profile_names(&self) -> Vec<String> {
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
    pub fn profile_text(&self, name: &str) -> Option<&str> {
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

fn collect_dir(root: &Path, dir: &Path, out: &mut Vec<BundleFile>) -> Result<(), BundleError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| BundleError::Read { path, cause }
    };
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(read_err(&path))?;
        if kind.is_dir() {
            if entry.file_name() != "node_modules" {
                collect_dir(root, &path, out)?;
            }
        } else if kind.is_file() {
            let contents = std::fs::read(&path).map_err(read_err(&path))?;
            let rel = path.strip_prefix(root).expect("walked from root");
            out.push(BundleFile {
                path: rel.to_string_lossy().into_owned(),
                contents,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
