//! Mosaic's own install markers, read and never written: the framework
//! schema version in `.framework-version`, the manifest `install.sh` writes
//! (`.install-manifest.json`, 0600: `version`, `installedAt`, `cliVersion`,
//! `frameworkVersion`, `mutations`), `AGENTS.md`, and the CLI's version in
//! the npm prefix (`<prefix>/lib/node_modules/@mosaicstack/mosaic/package.json`).
//!
//! Also Mosaic's preserved set — the files `mosaic update` keeps and no
//! command of ours may write, move or remove — with the markers themselves.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The framework schema version, e.g. `2`.
pub(crate) const FRAMEWORK_VERSION: &str = ".framework-version";
/// Written by Mosaic's `install.sh`.
pub(crate) const INSTALL_MANIFEST: &str = ".install-manifest.json";
/// Where the CLI's package sits below an npm prefix.
pub(crate) const CLI_PACKAGE: &str = "lib/node_modules/@mosaicstack/mosaic/package.json";

/// What Mosaic's install manifest says (the fields this installer reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct InstallManifest {
    /// The manifest's own format version.
    pub(crate) version: Option<String>,
    pub(crate) installed_at: Option<String>,
    pub(crate) cli_version: Option<String>,
    pub(crate) framework_version: Option<String>,
    /// How many changes outside the tree `install.sh` recorded.
    pub(crate) mutations: usize,
}

/// The CLI found in an npm prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CliPackage {
    pub(crate) version: String,
    pub(crate) package_json: PathBuf,
}

/// Everything Mosaic's markers say about the tree (all optional: an old or
/// hand-made tree may lack any of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct MosaicMarkers {
    /// `.framework-version`, else the manifest's `frameworkVersion`.
    pub(crate) framework_schema: Option<String>,
    pub(crate) manifest: Option<InstallManifest>,
    pub(crate) agents_md: bool,
    pub(crate) cli: Option<CliPackage>,
}

impl MosaicMarkers {
    /// Read the markers of the tree `mosaic_dir`; the CLI is looked for
    /// below each of `npm_prefixes`, first found wins.
    pub(crate) fn read(mosaic_dir: &Path, npm_prefixes: &[PathBuf]) -> MosaicMarkers {
        let manifest = read_manifest(&mosaic_dir.join(INSTALL_MANIFEST));
        let schema = std::fs::read_to_string(mosaic_dir.join(FRAMEWORK_VERSION))
            .ok()
            .map(|text| text.trim().to_owned())
            .filter(|v| !v.is_empty() && !v.contains(char::is_whitespace));
        MosaicMarkers {
            framework_schema: schema
                .or_else(|| manifest.as_ref().and_then(|m| m.framework_version.clone())),
            agents_md: mosaic_dir.join("AGENTS.md").is_file(),
            cli: npm_prefixes.iter().find_map(|prefix| read_cli(prefix)),
            manifest,
        }
    }

    /// The Mosaic release that installed the tree: the manifest's
    /// `cliVersion`, else the installed CLI's version.
    pub(crate) fn version(&self) -> Option<String> {
        self.manifest
            .as_ref()
            .and_then(|m| m.cli_version.clone())
            .or_else(|| self.cli.as_ref().map(|cli| cli.version.clone()))
    }

    /// "Mosaic 0.0.31 (CLI 0.0.31, framework schema 2)".
    pub(crate) fn label(&self) -> String {
        let mut details = Vec::new();
        if let Some(cli) = &self.cli {
            details.push(format!("CLI {}", cli.version));
        }
        if let Some(schema) = &self.framework_schema {
            details.push(format!("framework schema {schema}"));
        }
        let head = match self.version() {
            Some(version) => format!("Mosaic {version}"),
            None => "Mosaic, unknown version".to_owned(),
        };
        if details.is_empty() {
            head
        } else {
            format!("{head} ({})", details.join(", "))
        }
    }
}

fn read_manifest(path: &Path) -> Option<InstallManifest> {
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let field = |name: &str| match &json[name] {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    };
    Some(InstallManifest {
        version: field("version"),
        installed_at: field("installedAt"),
        cli_version: field("cliVersion"),
        framework_version: field("frameworkVersion"),
        mutations: json["mutations"].as_array().map_or(0, Vec::len),
    })
}

fn read_cli(prefix: &Path) -> Option<CliPackage> {
    let package_json = prefix.join(CLI_PACKAGE);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&package_json).ok()?).ok()?;
    Some(CliPackage {
        version: json["version"].as_str()?.to_owned(),
        package_json,
    })
}

/// Why a path of the Mosaic tree (relative to it) is Mosaic's and never
/// ours to write, move or remove; None when it is not. Mosaic's preserved
/// set (`SOUL.md`, `USER.md`, `TOOLS.md`, `*.local` at any depth,
/// `credentials`) and its markers.
pub(crate) fn protected(inside_tree: &Path) -> Option<&'static str> {
    let mut parts = inside_tree.iter().map(|p| p.to_string_lossy());
    let first = parts.next()?;
    let top = match first.as_ref() {
        "SOUL.md" | "USER.md" | "TOOLS.md" => Some("one of Mosaic's preserved files"),
        "credentials" => Some("Mosaic's credentials"),
        FRAMEWORK_VERSION | INSTALL_MANIFEST => Some("one of Mosaic's install markers"),
        _ => None,
    };
    let local = std::iter::once(first)
        .chain(parts)
        .any(|part| part.ends_with(".local"));
    top.or(local.then_some("a *.local file, which Mosaic preserves"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_markers_make_the_label() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, prefix) = (dir.path().join("mosaic"), dir.path().join("npm"));
        std::fs::create_dir_all(&tree).unwrap();
        let none = MosaicMarkers::read(&tree, std::slice::from_ref(&prefix));
        assert_eq!(none.label(), "Mosaic, unknown version");

        std::fs::write(tree.join(FRAMEWORK_VERSION), "2\n").unwrap();
        std::fs::write(
            tree.join(INSTALL_MANIFEST),
            r#"{"version":1,"installedAt":"2026-05-14T09:12:44Z","cliVersion":"0.0.31","frameworkVersion":2,"mutations":[{"kind":"symlink"}]}"#,
        )
        .unwrap();
        let cli = prefix.join(CLI_PACKAGE);
        std::fs::create_dir_all(cli.parent().unwrap()).unwrap();
        std::fs::write(&cli, r#"{"name":"@mosaicstack/mosaic","version":"0.0.32"}"#).unwrap();
        let markers = MosaicMarkers::read(&tree, &[dir.path().join("none"), prefix]);
        assert_eq!(
            markers.label(),
            "Mosaic 0.0.31 (CLI 0.0.32, framework schema 2)"
        );
        let manifest = markers.manifest.unwrap();
        assert_eq!(manifest.version.as_deref(), Some("1"));
        assert_eq!(
            manifest.installed_at.as_deref(),
            Some("2026-05-14T09:12:44Z")
        );
        assert_eq!(manifest.mutations, 1);
        assert_eq!(markers.cli.unwrap().package_json, cli);
    }

    #[test]
    fn the_preserved_set_and_markers_are_protected() {
        for path in [
            "SOUL.md",
            "USER.md",
            "TOOLS.md",
            "credentials",
            "credentials/gitea.token",
            "settings.local",
            "guides/house-rules.local",
            ".framework-version",
            ".install-manifest.json",
        ] {
            assert!(protected(Path::new(path)).is_some(), "{path}");
        }
        for path in [
            "AGENTS.md",
            "tools/tmux/SOUL.md",
            "fleet/roster.yaml",
            "x.local.env",
        ] {
            assert!(protected(Path::new(path)).is_none(), "{path}");
        }
    }
}
