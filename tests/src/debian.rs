//! The Debian package under test: built with `cargo xtask deb` from this
//! workspace's binaries, and the machine's package state around the tests
//! that install it (they hold [`crate::hosts::HostsLock`] while they do).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::require_tool;

pub const PACKAGE: &str = "mosaic-install";

/// Whether the .deb can be built here (dpkg-dev, binutils); a visible
/// "skipped" otherwise, a failure under `CI=true`.
pub fn can_build() -> bool {
    require_tool("dpkg-deb", "the package is built with dpkg-deb")
        && require_tool(
            "dpkg-shlibdeps",
            "Depends: comes from dpkg-shlibdeps (dpkg-dev)",
        )
        && require_tool("strip", "the binaries are stripped (binutils)")
}

/// Build the package from private copies of the debug binaries (other
/// builds may replace target/debug meanwhile) into `out_dir`.
pub fn build(out_dir: &Path, product: crate::Product) -> PathBuf {
    let bins = out_dir.join("bin");
    std::fs::create_dir_all(&bins).expect("create a bin dir");
    for (tool, built) in product.binaries() {
        std::fs::copy(built, bins.join(tool)).expect("copy a binary");
    }
    let out = Command::new(crate::xtask())
        .args(["deb", "--binary"])
        .arg(bins.join("mosaic-install"))
        .arg("--out-dir")
        .arg(out_dir)
        .output()
        .expect("run xtask deb");
    assert!(
        out.status.success(),
        "xtask deb failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(deb.is_file(), "xtask deb printed {}", deb.display());
    deb
}

/// Whether dpkg has the package installed (or half-removed, config kept).
pub fn status() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", PACKAGE])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.ends_with("not-installed")).then_some(text)
}

/// Purges the package when dropped, if a test left it installed.
pub struct PurgeOnDrop;

impl PurgeOnDrop {
    /// None (after a visible "skipped", or a failure under `CI=true`) when
    /// the machine already has the package: the test would remove it.
    pub fn new() -> Option<PurgeOnDrop> {
        if let Some(state) = status() {
            let why = format!(
                "{PACKAGE} is already installed here ({state}); the test installs and purges it"
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why}");
            }
            eprintln!("skipped: {why}");
            return None;
        }
        Some(PurgeOnDrop)
    }
}

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        if status().is_some() {
            let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
        }
    }
}
