//! Real npm as the reference: `npm pack --json` on a package directory
//! (with `--dry-run` it writes nothing) and our report compared with its,
//! field by field. The gzip-dependent fields (`size`, `shasum`,
//! `integrity`) differ by construction (Node's zlib is not ours) and are
//! reported as notes. xtask pack follows one npm version, pinned in
//! `xtask/npm-version.txt`; only that version is a reference.

use super::report::{FileReport, PackReport};
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::Path;

/// The npm version xtask pack follows (`xtask/npm-version.txt`).
pub(crate) fn pinned() -> &'static str {
    include_str!("../../npm-version.txt").trim()
}

/// Whether `npm` is on PATH.
pub(crate) fn available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("npm").is_file()))
}

/// The version of the npm on PATH, if there is one.
pub(crate) fn version() -> Option<String> {
    if !available() {
        return None;
    }
    let sh = xshell::Shell::new().ok()?;
    let out = xshell::cmd!(sh, "npm --version")
        .env("npm_config_update_notifier", "false")
        .quiet()
        .read()
        .ok()?;
    Some(out.trim().to_owned())
}

/// npm on PATH, or why it cannot be the reference.
pub(crate) fn reference() -> std::result::Result<(), String> {
    match version() {
        None => Err("npm is not on PATH".to_owned()),
        Some(v) if v == pinned() => Ok(()),
        Some(v) => Err(format!(
            "npm {v} is on PATH, and xtask pack follows npm {}",
            pinned()
        )),
    }
}

/// The report of `npm pack --dry-run --json --ignore-scripts` in `dir`.
pub(crate) fn dry_run(dir: &Path) -> Result<PackReport> {
    let (report, _) = pack(dir, &["--dry-run"], None)?;
    Ok(report)
}

/// `npm pack --json --ignore-scripts <extra>` in `dir`, with npm's cache
/// in `cache` when given: the report, and the JSON object it came from.
pub(crate) fn pack<S: AsRef<OsStr>>(
    dir: &Path,
    extra: &[S],
    cache: Option<&Path>,
) -> Result<(PackReport, serde_json::Value)> {
    let sh = xshell::Shell::new().context("create a shell")?;
    sh.change_dir(dir);
    let mut command = xshell::cmd!(sh, "npm pack --json --ignore-scripts {extra...}")
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false")
        .quiet()
        .ignore_status();
    if let Some(cache) = cache {
        command = command.env("npm_config_cache", cache);
    }
    let output = command.output().context("run npm pack --json")?;
    if !output.status.success() {
        bail!(
            "npm pack --json failed in {} ({}):\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut json: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parse the JSON of npm pack in {}", dir.display()))?;
    if json.len() != 1 {
        bail!(
            "npm pack printed {} reports for {}",
            json.len(),
            dir.display()
        );
    }
    let object = json.remove(0);
    let report = serde_json::from_value(object.clone())
        .with_context(|| format!("read the report of npm pack in {}", dir.display()))?;
    Ok((report, object))
}

/// How our report differs from npm's.
#[derive(Default)]
pub(crate) struct Comparison {
    /// Differences in what is packed: these fail a check.
    pub(crate) differences: Vec<String>,
    /// Differences that only reflect the gzip implementation.
    pub(crate) gzip_notes: Vec<String>,
}

pub(crate) fn compare(ours: &PackReport, npm: &PackReport) -> Comparison {
    let mut out = Comparison::default();
    let mut field = |name: &str, a: String, b: String, fatal: bool| {
        if a != b {
            let line = format!("{name}: xtask {a}, npm {b}");
            match fatal {
                true => out.differences.push(line),
                false => out.gzip_notes.push(line),
            }
        }
    };
    field("id", ours.id.clone(), npm.id.clone(), true);
    field("name", ours.name.clone(), npm.name.clone(), true);
    field("version", ours.version.clone(), npm.version.clone(), true);
    field(
        "filename",
        ours.filename.clone(),
        npm.filename.clone(),
        true,
    );
    let (ou, nu) = (ours.unpacked_size, npm.unpacked_size);
    field("unpackedSize", ou.to_string(), nu.to_string(), true);
    let (oc, nc) = (ours.entry_count, npm.entry_count);
    field("entryCount", oc.to_string(), nc.to_string(), true);
    field(
        "bundled",
        format!("{:?}", ours.bundled),
        format!("{:?}", npm.bundled),
        true,
    );
    field("size", ours.size.to_string(), npm.size.to_string(), false);
    field("shasum", ours.shasum.clone(), npm.shasum.clone(), false);
    field(
        "integrity",
        ours.integrity.clone(),
        npm.integrity.clone(),
        false,
    );
    out.differences
        .extend(compare_files(&ours.files, &npm.files));
    out
}

fn compare_files(ours: &[FileReport], npm: &[FileReport]) -> Vec<String> {
    let mut out = Vec::new();
    for theirs in npm {
        match ours.iter().find(|f| f.path == theirs.path) {
            None => out.push(format!("{}: packed by npm, not by xtask", theirs.path)),
            Some(mine) if mine != theirs => out.push(format!(
                "{}: xtask size {} mode {:04o}, npm size {} mode {:04o}",
                theirs.path, mine.size, mine.mode, theirs.size, theirs.mode
            )),
            Some(_) => {}
        }
    }
    for mine in ours {
        if !npm.iter().any(|f| f.path == mine.path) {
            out.push(format!("{}: packed by xtask, not by npm", mine.path));
        }
    }
    if out.is_empty() && ours != npm {
        let order = |files: &[FileReport]| {
            files
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(format!(
            "files order: xtask [{}], npm [{}]",
            order(ours),
            order(npm)
        ));
    }
    out
}
