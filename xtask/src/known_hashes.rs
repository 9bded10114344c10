//! `cargo xtask known-hashes DIR --release VERSION`: keeps the installer's
//! table of Mosaic's copies of our files honest. DIR is a Mosaic framework
//! tree (what `mosaic update` syncs into `~/.config/mosaic`: a release's
//! `framework/` directory). Every file there at a path where we install one
//! of ours, with bytes other than ours, is Mosaic's copy: its sha256 joins
//! `installer/src/install/legacy/known-hashes.tsv` as `Mosaic VERSION`, so that
//! `status` can say "replaced by Mosaic's copy" and the next install restores
//! ours without calling it an edit. Rows already there are not repeated.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::Digest;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// A Mosaic framework tree: what installs into ~/.config/mosaic.
    pub(crate) dir: PathBuf,
    /// The Mosaic release the tree is, e.g. 0.0.32 (recorded as "Mosaic 0.0.32").
    #[arg(long, value_name = "VERSION")]
    pub(crate) release: String,
    /// The table to update (default: installer/src/install/legacy/known-hashes.tsv).
    #[arg(long, value_name = "FILE")]
    pub(crate) table: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
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
        .unwrap_or_else(|| root.join("installer/src/install/legacy/known-hashes.tsv"));
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
    let ours_root = root.join("templates/framework");

    let (mut found, mut same, mut already) = (0, 0, 0);
    let mut rows = Vec::new();
    for (rel, ours) in framework_files(&ours_root)? {
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

/// The bundle files installed verbatim into the Mosaic tree (those under
/// `templates/framework/` but the `.j2` templates, which are rendered per
/// install, so no copy can match them), by their path in it.
fn framework_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("reading {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_none_or(|e| e != "j2") {
                let rel = path
                    .strip_prefix(dir)
                    .expect("below dir")
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(&path)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Lowercase hex sha256.
fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
