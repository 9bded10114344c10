//! Every `--help` page of both binaries, pinned: what an operator reads
//! before anything else. The pages are found by walking each page's
//! `Commands:` list, so a new subcommand gets its snapshot (and a review)
//! without being listed here.

use mosaic_tests::{describe, text};

use crate::support::PRODUCT;

/// The subcommands a help page lists (`help` itself aside).
fn subcommands(page: &str) -> Vec<String> {
    page.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Snapshots `BIN [path...] --help` and every page below it; returns how
/// many pages it pinned.
fn pin_pages(binary: &str, path: &[String]) -> usize {
    let program = match binary {
        "mosaic-install" => PRODUCT.install,
        _ => PRODUCT.fleet,
    };
    let out = std::process::Command::new(program)
        .args(path)
        .arg("--help")
        .env("HOME", "/nonexistent")
        .output()
        .expect("run --help");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{binary} {path:?} --help: {}",
        describe(&out)
    );
    assert!(
        out.stderr.is_empty(),
        "{binary} {path:?} --help wrote to stderr: {}",
        describe(&out)
    );
    let page = text(&out.stdout);
    let mut name = format!("help__{binary}");
    for part in path {
        name.push('_');
        name.push_str(part);
    }
    crate::support::snapshots().bind(|| insta::assert_snapshot!(name, page));
    let mut pages = 1;
    for sub in subcommands(&page) {
        let mut deeper = path.to_vec();
        deeper.push(sub);
        pages += pin_pages(binary, &deeper);
    }
    pages
}

#[test]
fn every_help_page_of_mosaic_install_is_pinned() {
    assert_eq!(pin_pages("mosaic-install", &[]), 7);
}

#[test]
fn every_help_page_of_mosaic_fleet_is_pinned() {
    assert_eq!(pin_pages("mosaic-fleet", &[]), 20);
}
