//! The Debian package of `cargo xtask deb` (and `dist`), checked with the
//! real Debian tools: built twice from the same tree it is the same bytes;
//! `lintian` finds no error or warning (what it still reports is overridden
//! in the package, each override with its reason); its control file
//! declares what the binaries need; and `dpkg-deb -c` lists exactly the
//! files the README promises. Installing and removing it is tested with the
//! Ansible role (`ansible_fleet.rs`), which installs it for real.

use std::process::{Command, Output};

use mosaic_tests::{debian, require_tool, workspace_root};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The paths of the README's package listing (the `text` block after the
/// "What the package installs" heading).
fn readme_listing() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    let section = readme
        .split_once("### What the package installs")
        .expect("the README has a `### What the package installs` section")
        .1;
    let block = section
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a ```text block lists the package's files")
        .0;
    block.lines().map(str::to_owned).collect()
}

/// `pattern` with at most one `*`, which matches within one path segment.
fn matches(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path,
        Some((head, tail)) => {
            path.len() >= head.len() + tail.len()
                && path.starts_with(head)
                && path.ends_with(tail)
                && !path[head.len()..path.len() - tail.len()].contains('/')
        }
    }
}

#[test]
fn deb_is_reproducible_lintian_clean_and_lists_what_the_readme_says() {
    if !debian::can_build() || !require_tool("lintian", "the package must pass lintian") {
        return;
    }
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = std::thread::scope(|scope| {
        let other = scope.spawn(|| debian::build(two.path(), crate::support::PRODUCT));
        (
            debian::build(one.path(), crate::support::PRODUCT),
            other.join().expect("second build"),
        )
    });
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        name.starts_with(&format!("mosaic-install_{version}-1_")) && name.ends_with(".deb"),
        "{name}"
    );
    assert!(
        std::fs::read(&first).unwrap() == std::fs::read(&second).unwrap(),
        "two builds from the same tree differ"
    );

    // lintian: no error, no warning; exit 0 with --fail-on.
    let deb = first.to_str().unwrap();
    let lint = run("lintian", &["--fail-on", "error,warning", deb]);
    let tags: Vec<String> = stdout(&lint)
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:"))
        .map(str::to_owned)
        .collect();
    assert!(
        lint.status.success() && tags.is_empty(),
        "lintian: {tags:#?}\n{}",
        String::from_utf8_lossy(&lint.stderr)
    );

    // The control file: what the binaries link, what every command drives.
    let field = |name: &str| {
        stdout(&run("dpkg-deb", &["-f", deb, name]))
            .trim()
            .to_owned()
    };
    let depends = field("Depends");
    for needed in ["libc6", "tmux", "systemd"] {
        assert!(depends.contains(needed), "Depends: {depends}");
    }
    assert!(!depends.contains("npm"), "no command needs npm: {depends}");
    assert_eq!(field("Suggests"), "npm");
    assert_eq!(field("Package"), "mosaic-install");

    // dpkg -c: exactly the README's files, and only their directories.
    let contents = stdout(&run("dpkg-deb", &["-c", deb]));
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for line in contents.lines() {
        let path = line.split_whitespace().nth(5).expect("a dpkg-deb -c line");
        let path = path.trim_start_matches('.').to_owned();
        if line.starts_with('d') {
            dirs.push(path);
        } else {
            files.push(path);
        }
    }
    let listing = readme_listing();
    for file in &files {
        let hits: Vec<&String> = listing.iter().filter(|p| matches(p, file)).collect();
        assert_eq!(hits.len(), 1, "{file} in the README's listing: {hits:?}");
    }
    for pattern in &listing {
        assert!(
            files.iter().any(|f| matches(pattern, f)),
            "the README lists {pattern}, the package has no such file"
        );
    }
    for dir in &dirs {
        assert!(
            files.iter().any(|f| f.starts_with(dir.as_str())),
            "empty directory {dir} in the package"
        );
    }
    let pages = files.iter().filter(|f| f.ends_with(".1.gz")).count();
    assert!(
        pages > 20,
        "one man page per command and subcommand: {pages}"
    );
}

#[test]
fn glob_matches_one_segment() {
    assert!(matches("/a/b*.gz", "/a/bc.gz"));
    assert!(matches("/a/b*.gz", "/a/b.gz"));
    assert!(!matches("/a/b*.gz", "/a/b/c.gz"));
    assert!(!matches("/a/b", "/a/bc"));
}
