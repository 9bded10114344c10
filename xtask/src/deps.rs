//! The machine tools the test suite drives for real (tmux, systemd,
//! shellcheck, npm, hyperfine, unshare, flock for the messaging scripts'
//! send queue, and zsh and fish for the completions), and their Debian packages. `ci`
//! installs what is missing when it runs as root with apt-get (a fresh CI
//! machine); anywhere else it names the command to run.

use anyhow::bail;
use xshell::{cmd, Shell};

/// (command, Debian package)
const TOOLS: &[(&str, &str)] = &[
    ("tmux", "tmux"),
    ("shellcheck", "shellcheck"),
    ("systemd-analyze", "systemd"),
    ("systemctl", "systemd"),
    ("unshare", "util-linux"),
    ("flock", "util-linux"),
    ("npm", "npm"),
    ("hyperfine", "hyperfine"),
    ("zsh", "zsh"),
    ("fish", "fish"),
];

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
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
    let packages = missing_packages();
    if packages.is_empty() {
        return Ok(());
    }
    let root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0");
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
