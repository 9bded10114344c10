//! The package being packed: its directory and the `package.json` fields
//! that decide the archive (`name`, `version`, `files`).
//!
//! Fields with which npm would add files by rules this port does not
//! implement (`bin`, `main`, `browser`, bundled dependencies, workspaces)
//! are refused, so that the selection never silently differs from npm's.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

const UNSUPPORTED_FIELDS: &[&str] = &[
    "bin",
    "main",
    "browser",
    "bundleDependencies",
    "bundledDependencies",
    "workspaces",
];

pub struct Package {
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    /// The `files` list, when there is one (without it npm takes everything
    /// not ignored).
    pub files: Option<Vec<String>>,
}

impl Package {
    pub fn load(dir: &Path) -> Result<Package> {
        let manifest_path = dir.join("package.json");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("read {}", manifest_path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parse {}", manifest_path.display()))?;
        let field = |name: &str| -> Result<String> {
            match json.get(name) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => bail!(
                    "{}: `{name}` must be a non-empty string (npm: \"Invalid package, must have name and version\")",
                    manifest_path.display()
                ),
            }
        };
        for unsupported in UNSUPPORTED_FIELDS {
            if json.get(unsupported).is_some() {
                bail!(
                    "{}: `{unsupported}` adds files by rules xtask pack does not implement; \
                     pack this package with npm",
                    manifest_path.display()
                );
            }
        }
        if json.pointer("/directories/bin").is_some() {
            bail!(
                "{}: `directories.bin` is not supported by xtask pack",
                manifest_path.display()
            );
        }
        let files = match json.get("files") {
            None => None,
            Some(serde_json::Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_owned).with_context(|| {
                            format!(
                                "{}: every `files` entry must be a string, found {item}",
                                manifest_path.display()
                            )
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            Some(other) => bail!(
                "{}: `files` must be an array of strings, found {other}",
                manifest_path.display()
            ),
        };
        Ok(Package {
            dir: dir.to_path_buf(),
            name: field("name")?,
            version: field("version")?,
            files,
        })
    }

    /// npm's `<name>@<version>`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// npm's tarball name: `@scope/name` becomes `scope-name`.
    pub fn filename(&self) -> String {
        let name = self.name.replacen('@', "", 1).replacen('/', "-", 1);
        format!("{name}-{}.tgz", self.version)
    }
}
