//! `cargo xtask pack`: the npm-style package of `templates/` without Node.
//! It reads `package.json` (`package`), selects files as `npm pack` does
//! (`select`, on the glob port in `glob`, `segment` and `brace`), writes
//! the archive npm would write (`archive`), reports what
//! `npm pack --dry-run --json` reports (`report`, in the orders of
//! `collate`), and with `--check` runs the CI packaging check (`check`,
//! which also compares with real npm through `npm`).

mod archive;
mod brace;
mod check;
mod collate;
mod glob;
mod npm;
mod package;
mod report;
mod segment;
mod select;

pub use archive::{hex, NPM_MTIME};
pub use npm::{available as npm_available, compare as compare_with_npm, dry_run as npm_dry_run};
pub use report::PackReport;

use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Print what would be packed and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the JSON report of `npm pack --json` instead of the table.
    #[arg(long)]
    json: bool,
    /// The CI packaging check: required files and modes, nothing unexpected,
    /// reproducible, unpacks to the files on disk, and equal to `npm pack`
    /// when npm is on PATH. Writes nothing.
    #[arg(long, conflicts_with_all = ["dry_run", "json", "out_dir"])]
    check: bool,
    /// The package directory [default: templates/].
    #[arg(long, value_name = "DIR")]
    package_dir: Option<PathBuf>,
    /// With --check: the list of required and allowed files
    /// [default: xtask/pack-manifest.txt].
    #[arg(long, value_name = "FILE", requires = "check")]
    manifest: Option<PathBuf>,
    /// Where the `.tgz` is written [default: dist/].
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    out_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let root = crate::project_root();
    let dir = args.package_dir.unwrap_or_else(|| root.join("templates"));
    if args.check {
        let manifest = args
            .manifest
            .unwrap_or_else(|| root.join("xtask").join("pack-manifest.txt"));
        return check::run(&dir, &manifest);
    }
    let packed = Packed::new(&dir)?;
    let report = packed.report();
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_table());
    }
    if !args.dry_run {
        let out_dir = args.out_dir.unwrap_or_else(|| root.join("dist"));
        let path = packed.write(&out_dir)?;
        match args.json {
            true => eprintln!("wrote {}", path.display()),
            false => println!("wrote {}", path.display()),
        }
    }
    Ok(())
}

/// A package selected and archived in memory.
pub struct Packed {
    package: package::Package,
    files: Vec<String>,
    archive: archive::Archive,
}

impl Packed {
    pub fn new(dir: &Path) -> Result<Packed> {
        let package = package::Package::load(dir)?;
        let files = select::select(&package)?;
        let archive = archive::Archive::build(dir, &files)?;
        Ok(Packed {
            package,
            files,
            archive,
        })
    }

    pub fn report(&self) -> PackReport {
        PackReport::new(&self.package, &self.archive)
    }

    /// Writes `<name>-<version>.tgz` into `out_dir` and returns its path.
    pub fn write(&self, out_dir: &Path) -> Result<PathBuf> {
        archive::write(out_dir, &self.package.filename(), &self.archive.tgz)
    }
}
