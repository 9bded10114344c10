//! `cargo xtask known-hashes DIR --release VERSION`: keeps the installer's
//! table of Mosaic's copies of our files honest. DIR is a Mosaic framework
//! tree (what `mosaic update` syncs into `~/.config/mosaic`: a release's
//! `framework/` directory). Every file there at a path where we install one
//! of ours, with bytes other than ours, is Mosaic's copy: its sha256 joins
//! `installer/src/legacy/known-hashes.tsv` as `Mosaic VERSION`, so that
//! `status` can say "replaced by Mosaic's copy" and the next install restores
//! ours without calling it an edit. Rows already there are not repeated.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Context};
use mosaic_install::bundle::{Bundle, TEMPLATE_SUFFIX};
use mosaic_install::receipt::sha256_hex;

#[derive(clap::Args)]
pub struct Args {
    /// A Mosaic framework tree: what installs into ~/.config/mosaic.
    pub dir: PathBuf,
    /// The Mosaic release the tree is, e.g. 0.0.32 (recorded as "Mosaic 0.0.32").
    #[arg(long, value_name = "VERSION")]
    pub release: String,
    /// The table to update (default: installer/src/legacy/known-hashes.tsv).
    #[arg(long, value_name = "FILE")]
    pub table: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let release = args.release.trim_start_matches('v');
    if release.is_empty() || release.contains(char::is_whitespace) {
        bail!(
            "--release {:?} is not a version: give the Mosaic release the tree comes from, e.g. --release 0.0.32",
            args.release
        );
    }
    if !args.dir.is_dir() {
        bail!(
            "{} is not a directory: give the Mosaic framework tree (what installs into ~/.config/mosaic)",
            args.dir.display()
        );
    }
    let root = crate::project_root();
    let table = args
        .table
        .unwrap_or_else(|| root.join("installer/src/legacy/known-hashes.tsv"));
    let text = std::fs::read_to_string(&table)
        .with_context(|| format!("reading the table {}", table.display()))?;
    let known: BTreeSet<(String, String)> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut cols = line.split('\t');
            Some((cols.next()?.to_owned(), cols.next()?.to_owned()))
        })
        .collect();
    let bundle = Bundle::from_dir(&root.join("templates")).context("reading templates/")?;

    let (mut found, mut same, mut already) = (0, 0, 0);
    let mut rows = Vec::new();
    for (rel, ours) in framework_files(&bundle) {
        let Ok(theirs) = std::fs::read(args.dir.join(&rel)) else {
            continue;
        };
        found += 1;
        let hash = sha256_hex(&theirs);
        let path = format!("mosaic/{rel}");
        if hash == sha256_hex(&ours) {
            same += 1;
        } else if known.contains(&(path.clone(), hash.clone())) {
            already += 1;
        } else {
            rows.push(format!("{path}\t{hash}\tMosaic {release}\n"));
        }
    }
    if found == 0 {
        bail!(
            "{} holds none of the files we install into the Mosaic tree (such as tools/tmux/send-message.sh); give the framework tree itself, the directory that installs into ~/.config/mosaic",
            args.dir.display()
        );
    }
    if !rows.is_empty() {
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.extend(rows.iter().map(String::as_str));
        std::fs::write(&table, text).with_context(|| format!("writing {}", table.display()))?;
    }
    println!(
        "known-hashes: Mosaic {release} has {found} of our files: {} new hash(es) added to {}, {already} already known, {same} identical to ours",
        rows.len(),
        table.display()
    );
    for row in &rows {
        print!("  + {row}");
    }
    Ok(())
}

/// The bundle files installed verbatim into the Mosaic tree, by their path
/// in it (templates are rendered per install, so no copy can match them).
fn framework_files(bundle: &Bundle) -> Vec<(String, Vec<u8>)> {
    bundle
        .files()
        .iter()
        .filter(|file| !file.path.ends_with(TEMPLATE_SUFFIX))
        .filter_map(|file| {
            let rel = file.path.strip_prefix("framework/")?;
            Some((rel.to_owned(), file.contents.clone()))
        })
        .collect()
}
