//! `cargo xtask pack --check`, the CI packaging check, for any package
//! directory. It packs the package twice in memory (the two archives must
//! be identical), reads the archive back (every entry must be the file on
//! disk, same size, mode and sha256), requires every `bin` target to be in
//! the archive (npm would install a dangling command otherwise), holds the
//! entries against a manifest of required and allowed files when there is
//! one (every required file present with its mode, nothing outside the
//! allow-list), and, when the pinned npm is on PATH, against real
//! `npm pack --dry-run --json`. Every problem is printed with the file it
//! concerns; any problem fails the check.

use super::archive::{self, Archive};
use super::glob::{Pattern, PATH_GLOBS};
use super::{npm, Packed};
use anyhow::{bail, Context, Result};
use sha2::Digest as _;
use std::path::Path;

/// The checked-in list of required and allowed files.
struct Manifest {
    required: Vec<(u32, String)>,
    allowed: Vec<(u32, Pattern, String)>,
}

impl Manifest {
    fn load(path: &Path) -> Result<Manifest> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let mut manifest = Manifest {
            required: Vec::new(),
            allowed: Vec::new(),
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{}:{}", path.display(), index + 1);
            let mut fields = line.splitn(3, ' ');
            let (Some(kind), Some(mode), Some(target)) =
                (fields.next(), fields.next(), fields.next())
            else {
                bail!("{}: expected `required|allowed <mode> <path>`", at());
            };
            let mode = u32::from_str_radix(mode, 8)
                .with_context(|| format!("{}: `{mode}` is not an octal mode", at()))?;
            let target = target.trim().to_owned();
            match kind {
                "required" => manifest.required.push((mode, target)),
                "allowed" => {
                    let pattern = Pattern::new(&target, PATH_GLOBS)
                        .with_context(|| format!("{}: bad glob", at()))?;
                    manifest.allowed.push((mode, pattern, target));
                }
                other => bail!("{}: `{other}` is neither `required` nor `allowed`", at()),
            }
        }
        Ok(manifest)
    }

    /// What is wrong with the archive's entries, one line per file.
    fn problems(&self, archive: &Archive) -> Vec<String> {
        let mut problems = Vec::new();
        for (mode, path) in &self.required {
            match archive.entries.iter().find(|e| &e.path == path) {
                None => problems.push(format!("missing required file: {path}")),
                Some(entry) if entry.mode != *mode => problems.push(format!(
                    "wrong mode: {path} is {:04o} in the archive, the manifest requires {mode:04o}",
                    entry.mode
                )),
                Some(_) => {}
            }
        }
        for entry in &archive.entries {
            if self.required.iter().any(|(_, path)| path == &entry.path) {
                continue;
            }
            let allowed = self
                .allowed
                .iter()
                .find(|(_, pattern, _)| pattern.matches(&entry.path, false));
            match allowed {
                None => problems.push(format!(
                    "unexpected file: {} is in the archive but neither required nor allowed",
                    entry.path
                )),
                Some((mode, _, glob)) if entry.mode != *mode => problems.push(format!(
                    "wrong mode: {} is {:04o} in the archive, `allowed {mode:04o} {glob}` requires {mode:04o}",
                    entry.path, entry.mode
                )),
                Some(_) => {}
            }
        }
        problems
    }
}

pub(crate) fn run(dir: &Path, manifest_path: Option<&Path>) -> Result<()> {
    let packed = Packed::new(dir)?;
    let mut problems = Vec::new();
    let manifest_summary = match manifest_path {
        Some(path) => {
            problems.extend(Manifest::load(path)?.problems(&packed.archive));
            format!("manifest {}", path.display())
        }
        None => "no manifest of required files given".to_owned(),
    };
    for (command, target) in &packed.package.manifest.bin {
        if !packed.archive.entries.iter().any(|e| &e.path == target) {
            problems.push(format!(
                "bin `{command}` points to {target}, which is not in the archive \
                 (npm install would link a missing file)"
            ));
        }
    }

    let again = Archive::build(dir, &packed.files, &packed.package.bin_targets())?;
    if again.tgz != packed.archive.tgz {
        problems.push("not reproducible: packing twice gave different archives".to_owned());
    }
    problems.extend(unpack_problems(dir, &packed.archive)?);

    let report = packed.report();
    let npm_summary = if let Err(why) = npm::reference() {
        format!("npm comparison skipped: {why}")
    } else {
        let npm_report = npm::dry_run(dir)?;
        let comparison = npm::compare(&report, &npm_report);
        if !comparison.gzip_notes.is_empty() {
            println!(
                "pack --check: note: {} (expected: the gzip layer is not Node's zlib)",
                comparison.gzip_notes.join("; ")
            );
        }
        let summary = match comparison.differences.is_empty() {
            true => "same files, sizes and modes as npm pack".to_owned(),
            false => "differs from npm pack".to_owned(),
        };
        problems.extend(
            comparison
                .differences
                .into_iter()
                .map(|d| format!("npm: {d}")),
        );
        summary
    };

    if problems.is_empty() {
        println!(
            "pack --check: ok: {} ({} files, {} bytes unpacked), reproducible, {manifest_summary}, {npm_summary}",
            report.id,
            report.entry_count,
            report.unpacked_size,
        );
        return Ok(());
    }
    for problem in &problems {
        println!("pack --check: {problem}");
    }
    bail!(
        "pack --check failed for {}: {} problem(s)",
        dir.display(),
        problems.len()
    )
}

/// Reads the archive back and compares every entry with the file on disk.
fn unpack_problems(dir: &Path, archive: &Archive) -> Result<Vec<String>> {
    let unpacked = archive::unpack(&archive.tgz)?;
    let mut expected = Vec::with_capacity(archive.entries.len());
    for entry in &archive.entries {
        let content = match &entry.link_to {
            Some(target) => format!("link to {target}"),
            None => {
                let path = dir.join(&entry.path);
                let bytes =
                    std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                archive::hex(&sha2::Sha256::digest(&bytes))
            }
        };
        expected.push(archive::Unpacked {
            path: entry.path.clone(),
            size: entry.size,
            mode: entry.mode,
            content,
        });
    }
    let mut problems = Vec::new();
    for want in &expected {
        match unpacked.iter().find(|u| u.path == want.path) {
            None => problems.push(format!("unpacked archive lacks {}", want.path)),
            Some(got) if got != want => problems.push(format!(
                "unpacked {} differs from the file on disk: {got:?}, expected {want:?}",
                want.path
            )),
            Some(_) => {}
        }
    }
    for got in &unpacked {
        if !expected.iter().any(|want| want.path == got.path) {
            problems.push(format!("unpacked archive has an extra entry {}", got.path));
        }
    }
    Ok(problems)
}
