//! The machine tools the test suite drives for real, and where they come
//! from. Debian packages: tmux, systemd, shellcheck, npm, hyperfine,
//! unshare, strace (the kill-point harness), flock (the messaging scripts'
//! send queue), zsh and fish (completions),
//! rsync (a simulated `mosaic update`), sshd and the ssh client (the
//! multi-host tests), dpkg-dev, binutils and lintian (the .deb), sudo and
//! python3 with venv and apt bindings (the Ansible role's targets). `ci`
//! installs what is missing when it runs as root with apt-get (a fresh CI
//! machine); anywhere else it names the command to run. Python tools
//! (ansible-core, ansible-lint) are pinned and go into a venv under
//! `target/python-tools` ([`python_tools`]); `cargo-insta`, at the version
//! of the `insta` crate in `Cargo.lock`, goes into `target/cargo-tools`
//! ([`cargo_insta`]). npm must also be the version
//! `xtask pack` follows (`xtask/npm-version.txt`): CI installs it with npm
//! itself.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

/// (command, Debian package)
const TOOLS: &[(&str, &str)] = &[
    ("tmux", "tmux"),
    ("strace", "strace"),
    ("shellcheck", "shellcheck"),
    ("systemd-analyze", "systemd"),
    ("systemctl", "systemd"),
    ("unshare", "util-linux"),
    ("flock", "util-linux"),
    ("npm", "npm"),
    ("hyperfine", "hyperfine"),
    ("zsh", "zsh"),
    ("fish", "fish"),
    ("rsync", "rsync"),
    ("sshd", "openssh-server"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("useradd", "passwd"),
    ("sudo", "sudo"),
    ("dpkg-shlibdeps", "dpkg-dev"),
    ("strip", "binutils"),
    ("lintian", "lintian"),
    ("python3", "python3"),
];

/// Debian packages without a command of their own to look for.
const LIBRARIES: &[&str] = &["python3-venv", "python3-apt"];

/// The Python tools, pinned: the versions CI tests the role with.
pub(crate) const PYTHON_TOOLS: &[&str] = &["ansible-core==2.19.14", "ansible-lint==26.10.1"];

fn on_path(tool: &str) -> bool {
    which(tool).is_some()
}

/// Where `tool` is on PATH.
pub(crate) fn which(tool: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

fn installed(package: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .is_ok_and(|out| out.stdout.ends_with(b"install ok installed"))
}

/// Debian packages whose commands are missing, deduplicated.
pub(crate) fn missing_packages() -> Vec<&'static str> {
    let mut packages: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| *package)
        .collect();
    packages.extend(LIBRARIES.iter().filter(|p| !installed(p)));
    if !std::path::Path::new("/usr/lib/systemd/systemd").exists() {
        packages.push("systemd");
    }
    packages.sort_unstable();
    packages.dedup();
    packages
}

/// Install what is missing (root with apt-get), or fail naming the command.
pub(crate) fn ensure(sh: &Shell) -> anyhow::Result<()> {
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
    let _no_services = NoServiceStarts::new()?;
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

/// While it lives, a `policy-rc.d` that forbids starting services, so that
/// installing openssh-server starts no sshd on port 22 (the tests run their
/// own, on 127.0.0.1 only); a machine's own policy-rc.d is left as it is.
struct NoServiceStarts(Option<&'static Path>);

impl NoServiceStarts {
    fn new() -> anyhow::Result<NoServiceStarts> {
        let path = Path::new("/usr/sbin/policy-rc.d");
        if path.exists() {
            return Ok(NoServiceStarts(None));
        }
        std::fs::write(
            path,
            "#!/bin/sh\n# cargo xtask ci: install packages, start no service\nexit 101\n",
        )
        .context("write /usr/sbin/policy-rc.d")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
        Ok(NoServiceStarts(Some(path)))
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The venv of [`PYTHON_TOOLS`] under `target/python-tools`, created or
/// updated when its pins differ; returns its `bin/`.
pub(crate) fn python_tools(sh: &Shell, target_dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = target_dir.join("python-tools");
    let stamp = venv.join("pins.txt");
    let pins = PYTHON_TOOLS.join("\n") + "\n";
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(pins.as_str()) {
        return Ok(venv.join("bin"));
    }
    println!(
        "ci: installing {} into {}",
        PYTHON_TOOLS.join(" "),
        venv.display()
    );
    cmd!(sh, "python3 -m venv --clear {venv}")
        .run()
        .context("create the Python venv (Debian: apt-get install python3-venv)")?;
    let pip = venv.join("bin/pip");
    let tools = PYTHON_TOOLS;
    cmd!(
        sh,
        "{pip} install --quiet --disable-pip-version-check {tools...}"
    )
    .run()
    .context("pip install the pinned Python tools")?;
    std::fs::write(&stamp, pins).context("record the installed pins")?;
    Ok(venv.join("bin"))
}

/// `cargo-insta` at the version of the `insta` crate the lockfile pins (the
/// two must agree on the snapshot format), installed with `cargo install
/// --locked` under `target/cargo-tools` when that version is not there;
/// returns its `bin/`.
pub(crate) fn cargo_insta(sh: &Shell, target_dir: &Path) -> anyhow::Result<PathBuf> {
    let lock = crate::project_root().join("Cargo.lock");
    let text =
        std::fs::read_to_string(&lock).with_context(|| format!("read {}", lock.display()))?;
    let version = locked_version(&text, "insta")
        .with_context(|| format!("{} has no `insta` package", lock.display()))?;
    let root = target_dir.join("cargo-tools");
    let bin = root.join("bin");
    let installed = cmd!(sh, "{bin}/cargo-insta --version")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    if installed.trim() == format!("cargo-insta {version}") {
        return Ok(bin);
    }
    println!(
        "ci: installing cargo-insta {version} into {}",
        root.display()
    );
    cmd!(
        sh,
        "cargo install --quiet --locked cargo-insta --version {version} --root {root}"
    )
    .run()
    .context("cargo install cargo-insta")?;
    Ok(bin)
}

/// The version of package `name` in a `Cargo.lock`.
fn locked_version<'a>(lock: &'a str, name: &str) -> Option<&'a str> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == wanted {
            let version = lines.next()?.strip_prefix("version = \"")?;
            return version.strip_suffix('"');
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locked_version;

    #[test]
    fn the_locked_version_is_read_from_the_package_entry() {
        let lock = "[[package]]\nname = \"insta-extra\"\nversion = \"9.9.9\"\n\n[[package]]\nname = \"insta\"\nversion = \"1.49.0\"\n";
        assert_eq!(locked_version(lock, "insta"), Some("1.49.0"));
        assert_eq!(locked_version(lock, "serde"), None);
    }
}
