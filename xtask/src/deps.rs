//! The machine tools the test suite drives for real (tmux, systemd,
//! shellcheck, npm, hyperfine, unshare, zsh and fish for the completions,
//! and rsync for a simulated `mosaic update`), and their Debian packages. `ci`
//! installs what is missing when it runs as root with apt-get (a fresh CI
//! machine); anywhere else it names the command to run. npm must also be
//! the version `xtask pack` follows (`xtask/npm-version.txt`): CI installs
//! it with npm itself.

use anyhow::bail;
use xshell::{cmd, Shell};

/// (command, Debian package)
const TOOLS: &[(&str, &str)] = &[
    ("tmux", "tmux"),
    ("strace", "strace"),
    ("shellcheck", "shellcheck"),
    ("systemd-analyze", "systemd"),
    ("systemctl", "systemd"),
    ("unshare", "util-linux"),
    ("npm", "npm"),
    ("hyperfine", "hyperfine"),
    ("zsh", "zsh"),
    ("fish", "fish"),
    ("rsync", "rsync"),
];

fn on_path(tool: &str) -> bool {
    which(tool).is_some()
}

/// Where `tool` is on PATH.
pub fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Debian packages whose commands are missing, deduplicated.
pub fn missing_packages() -> Vec<&'static str> {
    let mut packages: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| *package)
        .collect();
    if !std::path::Path::new("/usr/lib/systemd/systemd").exists() {
        packages.push("systemd");
    }
    packages.sort_unstable();
    packages.dedup();
    packages
}

/// Install what is missing (root with apt-get), or fail naming the command.
pub fn ensure(sh: &Shell) -> anyhow::Result<()> {
    let root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0");
    ensure_packages(sh, root)?;
    ensure_pinned_npm(sh, root)
}

fn ensure_packages(sh: &Shell, root: bool) -> anyhow::Result<()> {
    let packages = missing_packages();
    if packages.is_empty() {
        return Ok(());
    }
    if !root || !on_path("apt-get") {
        bail!(
            "the tests need these Debian packages: {}; install them with `sudo apt-get install -y {}`",
            packages.join(" "),
            packages.join(" ")
        );
    }
    println!("ci: installing {}", packages.join(" "));
    cmd!(sh, "apt-get update -qq")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    cmd!(sh, "apt-get install -y -qq {packages...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Ok(())
}

/// npm at the pinned version: the pack tests and `pack-corpus` compare with
/// it. A CI machine (root, `CI=true`) gets it from the npm registry with
/// `npm install -g`; anywhere else the command is named.
fn ensure_pinned_npm(sh: &Shell, root: bool) -> anyhow::Result<()> {
    let pinned = crate::pack::pinned_npm();
    let found = || {
        cmd!(sh, "npm --version")
            .env("npm_config_update_notifier", "false")
            .quiet()
            .read()
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let before = found();
    if before == pinned {
        return Ok(());
    }
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !root || !ci {
        bail!(
            "the pack tests compare with npm {pinned}, and npm {before} is installed; \
             install it with `npm install -g npm@{pinned}`"
        );
    }
    let node = cmd!(sh, "node --version")
        .quiet()
        .read()
        .unwrap_or_default();
    println!(
        "ci: installing npm {pinned} (npm {before} on node {})",
        node.trim()
    );
    cmd!(sh, "npm install -g --no-fund --no-audit npm@{pinned}")
        .env("npm_config_update_notifier", "false")
        .run()?;
    let after = found();
    if after != pinned {
        bail!(
            "npm install -g npm@{pinned} left npm {after:?} on PATH; npm {pinned} needs \
             node 20.17 or newer (this machine has node {})",
            node.trim()
        );
    }
    Ok(())
}
