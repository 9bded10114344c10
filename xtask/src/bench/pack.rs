//! `cargo xtask bench pack`: the release xtask binary (run directly, not
//! through cargo) against the pinned npm on the same package directories,
//! side by side in one run (their runs interleaved, so both see the same
//! load), after asserting that both list the same files with the same
//! sizes and modes:
//!
//! - the templates package (small): `pack --dry-run --json` and a full
//!   pack that writes the `.tgz`; expected at least 50 times faster than
//!   npm with at most a fifth of its peak memory;
//! - a large package, typescript@5.9.3 from the registry (23.7 MB of tar,
//!   fetched once into the pack-corpus cache): a full pack; expected at
//!   least 4 times faster. The sizes of both archives are printed too, as
//!   the price of the faster compression.

use super::measure::{measure_pair, print_table, Comparison};
use crate::pack::{self, PackReport};
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use xshell::{cmd, Shell};

/// The large package: typescript, the size the issue measured.
const LARGE: (&str, &str) = (
    "typescript@5.9.3",
    "sha512-jl1vZzPDinLr9eUt3J/t7V6FgNEw9QjvBPdysz9KfQDD41fQrC2Y4vKQdiaUpFT4bXlb1RHhLpp8wtm6M5TgSw==",
);

/// What issue 13 expects: (speed-up, memory ratio) on the small package,
/// speed-up on the large one.
const SMALL_SPEEDUP: f64 = 50.0;
const SMALL_MEMORY: f64 = 5.0;
const LARGE_SPEEDUP: f64 = 4.0;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Timed runs per command on the small package (after one warm-up run).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Timed runs per command on the large package.
    #[arg(long, default_value_t = 7)]
    large_runs: usize,
    /// The small package [default: templates/].
    #[arg(long, value_name = "DIR")]
    package_dir: Option<PathBuf>,
    /// The large package [default: typescript@5.9.3 from the registry].
    #[arg(long, value_name = "DIR")]
    large_dir: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    if let Err(why) = pack::npm_reference() {
        bail!(
            "bench pack compares with npm {}, and {why}",
            pack::pinned_npm()
        );
    }
    let small = canonical(
        &args
            .package_dir
            .unwrap_or_else(|| crate::project_root().join("templates")),
    )?;
    let large = match args.large_dir {
        Some(dir) => canonical(&dir)?,
        None => crate::pack_corpus::registry_tree(LARGE.0, LARGE.1)?,
    };
    let sh = Shell::new().context("create a shell")?;
    // Measuring a debug build would measure the missing optimiser.
    sh.change_dir(crate::project_root());
    cmd!(sh, "cargo build --quiet --release -p xtask")
        .run()
        .context("building the release xtask")?;
    let xtask = crate::project_root().join("target/release/xtask");
    let out = tempfile::tempdir().context("create an output directory")?;

    same_listing(&sh, &xtask, &small)?;
    let rows = vec![
        dry_run(&sh, &xtask, &small, args.runs)?,
        full_pack(&sh, &xtask, &small, out.path(), args.runs)?,
    ];
    print_table("xtask", "npm", &rows);
    let slowest = rows
        .iter()
        .map(Comparison::speedup)
        .fold(f64::INFINITY, f64::min);
    let leanest = rows
        .iter()
        .map(Comparison::memory_ratio)
        .fold(f64::INFINITY, f64::min);
    verdict("small package: smallest speed-up", slowest, SMALL_SPEEDUP);
    verdict(
        "small package: smallest memory ratio",
        leanest,
        SMALL_MEMORY,
    );
    println!();

    let filename = same_listing(&sh, &xtask, &large)?;
    let row = full_pack(&sh, &xtask, &large, out.path(), args.large_runs)?;
    let speedup = row.speedup();
    print_table("xtask", "npm", &[row]);
    verdict("large package: speed-up", speedup, LARGE_SPEEDUP);
    let size = |tool: &str| -> Result<u64> {
        let path = out.path().join(tool).join(&filename);
        Ok(std::fs::metadata(&path)
            .with_context(|| format!("stat {}", path.display()))?
            .len())
    };
    let (ours, npm) = (size("xtask")?, size("npm")?);
    println!(
        "large package archive: xtask {ours} bytes (libdeflate level {}), npm {npm} bytes \
         (zlib level 9): {:+.2}%",
        pack::GZIP_LEVEL,
        (ours as f64 / npm as f64 - 1.0) * 100.0
    );
    Ok(())
}

fn canonical(dir: &Path) -> Result<PathBuf> {
    dir.canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))
}

fn verdict(what: &str, value: f64, expected: f64) {
    let verdict = match value >= expected {
        true => "meets",
        false => "is BELOW",
    };
    println!("{what} {value:.1}x {verdict} the expected {expected}x");
}

/// Both tools list the same files with the same sizes and modes; the
/// archive's file name.
fn same_listing(sh: &Shell, xtask: &Path, dir: &Path) -> Result<String> {
    let ours: Vec<PackReport> = serde_json::from_str(
        &cmd!(sh, "{xtask} pack --dry-run --json --package-dir {dir}")
            .quiet()
            .read()
            .context("run xtask pack --dry-run --json")?,
    )
    .context("parse the JSON of xtask pack")?;
    let ours = ours.first().context("xtask pack printed no report")?;
    let npm = pack::npm_dry_run(dir)?;
    let comparison = pack::compare_with_npm(ours, &npm);
    if !comparison.differences.is_empty() {
        bail!(
            "xtask and npm list different packages in {}:\n{}",
            dir.display(),
            comparison.differences.join("\n")
        );
    }
    println!(
        "{} ({}): identical listing from xtask and npm ({} files, {} bytes unpacked)",
        ours.id,
        dir.display(),
        ours.entry_count,
        ours.unpacked_size
    );
    Ok(ours.filename.clone())
}

fn dry_run(sh: &Shell, xtask: &Path, dir: &Path, runs: usize) -> Result<Comparison> {
    let (ours, theirs) = measure_pair(
        runs,
        || cmd!(sh, "{xtask} pack --dry-run --json --package-dir {dir}").into(),
        || npm_pack(sh, dir, &["--dry-run", "--json"]),
    )?;
    Ok(Comparison {
        task: "pack --dry-run --json".to_owned(),
        ours,
        theirs,
    })
}

/// A full pack of `dir` by each tool into `out/xtask` and `out/npm`.
fn full_pack(sh: &Shell, xtask: &Path, dir: &Path, out: &Path, runs: usize) -> Result<Comparison> {
    let (ours_out, npm_out) = (out.join("xtask"), out.join("npm"));
    std::fs::create_dir_all(&npm_out).context("create the npm output directory")?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let (ours, theirs) = measure_pair(
        runs,
        || cmd!(sh, "{xtask} pack --package-dir {dir} --out-dir {ours_out}").into(),
        || {
            let destination = [OsStr::new("--pack-destination"), npm_out.as_os_str()];
            npm_pack(sh, dir, &destination)
        },
    )?;
    Ok(Comparison {
        task: format!("pack {name} (writes the .tgz)"),
        ours,
        theirs,
    })
}

/// `npm pack --ignore-scripts <extra>` run in `dir`.
fn npm_pack<S: AsRef<OsStr>>(sh: &Shell, dir: &Path, extra: &[S]) -> Command {
    let _dir = sh.push_dir(dir);
    cmd!(sh, "npm pack --ignore-scripts {extra...}")
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .into()
}
