//! `cargo xtask lint`: `bash -n` and `shellcheck` on every script of the
//! bundle, Prettier (pinned, through npm: the check Mosaic's own CI runs on
//! the files it ships) on every Markdown, JSON and YAML file of the bundle
//! and on our own docs, and `systemd-analyze --user verify` on every unit as
//! rendered and installed for every embedded profile (in a temp home, so
//! that the ExecStart scripts exist). Any warning fails the lint.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

/// The Prettier release the format check runs (Mosaic's CI runs Prettier 3).
pub(crate) const PRETTIER: &str = "prettier@3.10.1";
/// Our own docs, beside every Markdown, JSON and YAML file of `templates/`.
const DOCS: [&str; 3] = ["README.md", "ARCHITECTURE.md", "dist/README.md"];

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Only lint scripts and formatting (skip systemd-analyze).
    #[arg(long)]
    pub(crate) scripts_only: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let root = crate::project_root();
    let scripts = scripts(&root.join("templates"))?;
    for script in &scripts {
        cmd!(sh, "bash -n {script}")
            .quiet()
            .run()
            .with_context(|| format!("bash -n {}", script.display()))?;
    }
    let script_args = &scripts;
    // -x: follow `source`, so the self-tests are checked with the harness
    // they source (tools/selftest/lib.sh) in view.
    cmd!(sh, "shellcheck -x --severity=style {script_args...}")
        .quiet()
        .run()
        .context("shellcheck found problems (see above); fix them or install shellcheck if it is missing")?;
    println!(
        "lint: {} scripts pass bash -n and shellcheck",
        scripts.len()
    );
    let formatted = prettier(&sh, &root)?;
    println!("lint: {formatted} Markdown, JSON and YAML files pass {PRETTIER} --check");
    if args.scripts_only {
        return Ok(());
    }
    cmd!(sh, "cargo build --quiet -p mosaic-install")
        .quiet()
        .run()
        .context("building mosaic-install")?;
    let installer = root.join("target/debug/mosaic-install");
    let out = sh.create_temp_dir()?;
    let profiles = cmd!(sh, "{installer} profiles --json")
        .read()
        .context("listing profiles")?;
    let profiles: Vec<serde_json::Value> = serde_json::from_str(&profiles)?;
    let mut checked = 0;
    for profile in profiles.iter().filter_map(|p| p["name"].as_str()) {
        checked += verify_profile(&sh, &installer, out.path(), profile)?;
    }
    println!("lint: {checked} units pass systemd-analyze --user verify with no warnings");
    Ok(())
}

/// Install `profile` into a temp home and verify its units, the agent
/// template through one instance per agent. Returns units verified.
fn verify_profile(
    sh: &Shell,
    installer: &Path,
    scratch: &Path,
    profile: &str,
) -> anyhow::Result<usize> {
    let home = scratch.join(profile);
    let runtime = scratch.join(format!("{profile}-run"));
    let tmux = scratch.join(format!("{profile}-tmux"));
    sh.create_dir(&runtime)?;
    sh.create_dir(&tmux)?;
    let json = cmd!(sh, "{installer} --home {home} --json --profile {profile}")
        .env("TMUX_TMPDIR", &tmux)
        .read()
        .with_context(|| format!("installing profile {profile} into {}", home.display()))?;
    let report: serde_json::Value = serde_json::from_str(&json)?;
    let mut units = vec!["mosaic-tmux-holder.service".to_owned()];
    units.extend(
        report["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .map(|a| format!("mosaic-agent@{a}.service")),
    );
    let count = units.len();
    let _dir = sh.push_dir(home.join(".config/systemd/user"));
    let output = cmd!(sh, "systemd-analyze --user verify {units...}")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .ignore_status()
        .output()
        .context("running systemd-analyze (install systemd to lint units)")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !stderr.trim().is_empty() || !stdout.trim().is_empty() {
        bail!("systemd-analyze --user verify of profile {profile} reported:\n{stdout}{stderr}");
    }
    Ok(count)
}

/// `prettier --check` on the bundle's Markdown, JSON and YAML and on our
/// docs, through npx (the pinned release, fetched once into npm's cache).
/// Returns the number of files checked.
fn prettier(sh: &Shell, root: &Path) -> anyhow::Result<usize> {
    let mut files = files_with(&root.join("templates"), &["md", "json", "yaml", "yml"])?;
    files.extend(DOCS.iter().map(|doc| root.join(doc)));
    let count = files.len();
    let _dir = sh.push_dir(root);
    cmd!(sh, "npx --yes {PRETTIER} --check {files...}")
        .quiet()
        .run()
        .with_context(|| {
            format!(
                "{PRETTIER} --check found files it would format (listed above); format them with `npx --yes {PRETTIER} --write <file>...` (npm must be installed)"
            )
        })?;
    Ok(count)
}

/// Every `*.sh` under `dir`, sorted.
fn scripts(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    files_with(dir, &["sh"])
}

/// Every file under `dir` whose extension is one of `extensions`, sorted.
fn files_with(dir: &Path, extensions: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| extensions.iter().any(|x| e == *x))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
