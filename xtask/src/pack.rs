//! `cargo xtask pack`: `npm pack` without Node, for `templates/` or any npm
//! package directory, following npm 11 (the version pinned in
//! `xtask/npm-version.txt`). It reads and normalizes `package.json`
//! (`package`, with Node's path rules in `node_path`), selects files as
//! `npm pack` does (`select`, on the glob port in `glob`, `segment` and
//! `brace`, with bundled dependencies from `bundle`), writes the archive npm
//! would write (`archive`, headers in `header`), reports what
//! `npm pack --dry-run --json` reports (`report`, in the orders of
//! `collate`), and with `--check` runs the CI packaging check (`check`,
//! which also compares with real npm through `npm`).

mod archive;
mod brace;
mod bundle;
mod check;
mod collate;
mod glob;
mod header;
mod node_path;
mod npm;
mod package;
mod report;
mod segment;
mod select;

pub(crate) use archive::{hex, integrity_of, LEVEL as GZIP_LEVEL};
pub(crate) use header::NPM_MTIME;
pub(crate) use npm::{
    compare as compare_with_npm, dry_run as npm_dry_run, pack as npm_pack, pinned as pinned_npm,
    reference as npm_reference,
};
pub(crate) use report::PackReport;

use anyhow::Result;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print what would be packed and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the JSON report of `npm pack --json` instead of the table.
    #[arg(long)]
    json: bool,
    /// The CI packaging check, for any package: reproducible, unpacks to the
    /// files on disk, every `bin` target packed, the manifest's required
    /// files and modes and nothing unexpected (when there is a manifest),
    /// and equal to `npm pack` when the pinned npm is on PATH. Writes nothing.
    #[arg(long, conflicts_with_all = ["dry_run", "json", "out_dir"])]
    check: bool,
    /// The package directory [default: templates/].
    #[arg(long, value_name = "DIR")]
    package_dir: Option<PathBuf>,
    /// With --check: the list of required and allowed files [default:
    /// xtask/pack-manifest.txt for templates/, none for --package-dir].
    #[arg(long, value_name = "FILE", requires = "check")]
    manifest: Option<PathBuf>,
    /// Where the `.tgz` is written [default: dist/].
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    out_dir: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let root = crate::project_root();
    if args.check {
        let manifest = match (&args.package_dir, args.manifest) {
            (_, Some(manifest)) => Some(manifest),
            (None, None) => Some(root.join("xtask").join("pack-manifest.txt")),
            (Some(_), None) => None,
        };
        let dir = args.package_dir.unwrap_or_else(|| root.join("templates"));
        return check::run(&dir, manifest.as_deref());
    }
    let dir = args.package_dir.unwrap_or_else(|| root.join("templates"));
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
pub(crate) struct Packed {
    package: package::Package,
    files: Vec<String>,
    archive: archive::Archive,
}

impl Packed {
    pub(crate) fn new(dir: &Path) -> Result<Packed> {
        let package = package::Package::load(dir)?;
        let files = select::select(&package)?;
        let archive = archive::Archive::build(dir, &files, &package.bin_targets())?;
        Ok(Packed {
            package,
            files,
            archive,
        })
    }

    pub(crate) fn report(&self) -> PackReport {
        PackReport::new(&self.package, &self.archive)
    }

    /// Writes `<name>-<version>.tgz` into `out_dir` and returns its path.
    pub(crate) fn write(&self, out_dir: &Path) -> Result<PathBuf> {
        archive::write(
            out_dir,
            &self.package.tarball_file_name(),
            &self.archive.tgz,
        )
    }
}
