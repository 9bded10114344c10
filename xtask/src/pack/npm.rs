//! Real npm as the reference: run `npm pack --dry-run --json` on a package
//! directory (it writes nothing) and compare its report with ours, field by
//! field. The gzip-dependent fields (`size`, `shasum`, `integrity`) differ
//! by construction (Node's zlib is not ours) and are reported as notes.

use super::report::{FileReport, PackReport};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Whether `npm` is on PATH.
pub fn available() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("npm").is_file()))
}

/// The report of `npm pack --dry-run --json --ignore-scripts` in `dir`.
pub fn dry_run(dir: &Path) -> Result<PackReport> {
    let sh = xshell::Shell::new().context("create a shell")?;
    sh.change_dir(dir);
    let output = xshell::cmd!(sh, "npm pack --dry-run --json --ignore-scripts")
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .quiet()
        .ignore_status()
        .output()
        .context("run npm pack --dry-run --json")?;
    if !output.status.success() {
        bail!(
            "npm pack --dry-run --json failed in {} ({}):\n{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut reports: Vec<PackReport> = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parse the JSON of npm pack in {}", dir.display()))?;
    match reports.len() {
        1 => Ok(reports.remove(0)),
        n => bail!("npm pack printed {n} reports for {}", dir.display()),
    }
}

/// How our report differs from npm's.
#[derive(Default)]
pub struct Comparison {
    /// Differences in what is packed: these fail a check.
    pub differences: Vec<String>,
    /// Differences that only reflect the gzip implementation.
    pub gzip_notes: Vec<String>,
}

pub fn compare(ours: &PackReport, npm: &PackReport) -> Comparison {
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
