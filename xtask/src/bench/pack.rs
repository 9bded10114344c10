//! `cargo xtask bench pack`: the release xtask binary (run directly, not
//! through cargo) against npm on the same package directory, side by side in
//! one run — `pack --dry-run --json` and a full pack that writes the `.tgz`
//! — after asserting that both list the same files with the same sizes and
//! modes.

use super::measure::{measure, print_table, Comparison};
use crate::pack::{self, PackReport};
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use xshell::{cmd, Shell};

/// The speed-up issue 4 expects over npm.
const EXPECTED_SPEEDUP: f64 = 20.0;

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per command (after one warm-up run).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// The package to pack [default: templates/].
    #[arg(long, value_name = "DIR")]
    package_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    if let Err(why) = pack::npm_reference() {
        bail!(
            "bench pack compares with npm {}, and {why}",
            pack::pinned_npm()
        );
    }
    let dir = args
        .package_dir
        .unwrap_or_else(|| crate::project_root().join("templates"));
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))?;
    let sh = Shell::new().context("create a shell")?;
    // Measuring a debug build would measure the missing optimiser.
    sh.change_dir(crate::project_root());
    cmd!(sh, "cargo build --quiet --release -p xtask")
        .run()
        .context("building the release xtask")?;
    let xtask = crate::project_root().join("target/release/xtask");

    let ours: Vec<PackReport> = serde_json::from_str(
        &cmd!(sh, "{xtask} pack --dry-run --json --package-dir {dir}")
            .quiet()
            .read()
            .context("run xtask pack --dry-run --json")?,
    )
    .context("parse the JSON of xtask pack")?;
    let ours = ours.first().context("xtask pack printed no report")?;
    let npm = pack::npm_dry_run(&dir)?;
    let comparison = pack::compare_with_npm(ours, &npm);
    if !comparison.differences.is_empty() {
        bail!(
            "xtask and npm list different packages:\n{}",
            comparison.differences.join("\n")
        );
    }
    println!(
        "{}: identical listing from xtask and npm ({} files, {} bytes unpacked)",
        dir.display(),
        ours.entry_count,
        ours.unpacked_size
    );

    let out = tempfile::tempdir().context("create an output directory")?;
    let (ours_out, npm_out) = (out.path().join("xtask"), out.path().join("npm"));
    std::fs::create_dir_all(&npm_out).context("create the npm output directory")?;
    let rows = vec![
        Comparison {
            task: "pack --dry-run --json".to_owned(),
            ours: measure(args.runs, || {
                cmd!(sh, "{xtask} pack --dry-run --json --package-dir {dir}").into()
            })?,
            theirs: measure(args.runs, || npm_pack(&sh, &dir, &["--dry-run", "--json"]))?,
        },
        Comparison {
            task: "pack (writes the .tgz)".to_owned(),
            ours: measure(args.runs, || {
                cmd!(sh, "{xtask} pack --package-dir {dir} --out-dir {ours_out}").into()
            })?,
            theirs: measure(args.runs, || {
                let destination = [OsStr::new("--pack-destination"), npm_out.as_os_str()];
                npm_pack(&sh, &dir, &destination)
            })?,
        },
    ];
    print_table("xtask", "npm", &rows);
    let slowest = rows
        .iter()
        .map(Comparison::speedup)
        .fold(f64::INFINITY, f64::min);
    let verdict = match slowest >= EXPECTED_SPEEDUP {
        true => "meets",
        false => "is BELOW",
    };
    println!("smallest speed-up {slowest:.1}x {verdict} the expected {EXPECTED_SPEEDUP}x");
    Ok(())
}

/// `npm pack --ignore-scripts <extra>` run in `dir`.
fn npm_pack<S: AsRef<OsStr>>(sh: &Shell, dir: &Path, extra: &[S]) -> Command {
    let _dir = sh.push_dir(dir);
    cmd!(sh, "npm pack --ignore-scripts {extra...}")
        .env("npm_config_update_notifier", "false")
        .env("npm_config_fund", "false")
        .into()
}
