//! `cargo xtask canary --live`: the same steps against the invoking user's
//! own systemd user manager, for operators.
//!
//! Its limit: `mosaic-install` has no unit-name prefix, and the user manager
//! reads units only from the real `~/.config/systemd/user`. A live run
//! therefore installs into the real `$HOME` under the fleet's real unit names,
//! and refuses to run next to anything of a Mosaic fleet (`~/.config/mosaic`,
//! an install receipt, a `mosaic-*` unit file or loaded unit) or with a moved
//! `XDG_CONFIG_HOME`/`XDG_STATE_HOME`. What it can keep apart it does: the
//! roster is `usc` with a throwaway socket `mosaic-canary-<pid>`, the
//! operator's default tmux server is only compared before and after, and
//! afterwards it removes what uninstall leaves (the env files it edited), and
//! on failure uninstalls and takes its units down first.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use xshell::{cmd, Shell};

use mosaic_tests::live::{agent_unit, LiveFleet, HOLDER};

pub(crate) fn run(installer: &Path) -> Result<()> {
    let sh = Shell::new()?;
    let Ok(environment) = cmd!(sh, "systemctl --user show-environment")
        .quiet()
        .ignore_stderr()
        .read()
    else {
        return super::unavailable(
            "--live: no systemd user manager answers for this user (`systemctl --user show-environment` failed)",
        );
    };
    let home = PathBuf::from(sh.var("HOME").context("HOME is unset")?);
    refuse_next_to_a_fleet(&sh, &home)?;

    let socket = format!("mosaic-canary-{}", std::process::id());
    let scratch = tempfile::tempdir().context("create a temp dir for the roster")?;
    let roster = scratch.path().join("canary-usc.yaml");
    write_roster(&roster, &socket)?;
    let tmux_tmpdir = environment
        .lines()
        .find_map(|line| line.strip_prefix("TMUX_TMPDIR="));
    let mut fleet = LiveFleet::new(installer, &socket, tmux_tmpdir)?;
    let target = super::target(roster.display().to_string(), false);
    println!(
        "canary --live: your systemd user manager; HOME={}, tmux -L {socket}, profile usc with that socket",
        home.display()
    );
    let report = super::steps::run(&mut fleet, &target);
    clean_up(&fleet, &home, report.failed());
    super::finish(report)
}

fn refuse_next_to_a_fleet(sh: &Shell, home: &Path) -> Result<()> {
    for (variable, usual) in [
        ("XDG_CONFIG_HOME", home.join(".config")),
        ("XDG_STATE_HOME", home.join(".local/state")),
    ] {
        if let Ok(value) = sh.var(variable) {
            ensure!(
                Path::new(&value) == usual,
                "--live needs {variable} unset or {} (the user manager reads units from ~/.config only)",
                usual.display()
            );
        }
    }
    let mut found: Vec<String> = [".config/mosaic", ".local/state/mosaic-install"]
        .iter()
        .map(|rel| home.join(rel))
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    for listing in [&["list-unit-files"][..], &["list-units", "--all"]] {
        // Exits non-zero when nothing matches: only the listing counts.
        let units = cmd!(
            sh,
            "systemctl --user {listing...} --plain --no-legend mosaic-*"
        )
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .read()
        .with_context(|| format!("systemctl --user {}", listing.join(" ")))?;
        found.extend(
            units
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned)),
        );
    }
    if !found.is_empty() {
        bail!(
            "--live installs into your real HOME under the fleet's unit names (mosaic-install has no \
             unit-name prefix), so it does not run next to an existing Mosaic fleet; found: {}",
            found.join(", ")
        );
    }
    Ok(())
}

/// `usc` with the throwaway socket.
fn write_roster(path: &Path, socket: &str) -> Result<()> {
    let usc = crate::project_root().join("templates/framework/fleet/examples/usc.yaml");
    let text = fs::read_to_string(&usc).with_context(|| format!("read {}", usc.display()))?;
    let from = "socket_name: mosaic-fleet";
    ensure!(text.contains(from), "{} has no `{from}`", usc.display());
    fs::write(
        path,
        text.replacen(from, &format!("socket_name: {socket}"), 1),
    )
    .with_context(|| format!("write {}", path.display()))
}

/// Best effort: on failure take the units down and uninstall; always remove
/// the env files the canary edited (uninstall keeps them as the operator's).
fn clean_up(fleet: &LiveFleet, home: &Path, failed: bool) {
    if failed {
        let mut units: Vec<String> = fleet.agents.iter().map(|a| agent_unit(a)).collect();
        units.push(HOLDER.to_owned());
        let mut args = vec!["disable", "--now"];
        args.extend(units.iter().map(String::as_str));
        let _ = fleet.systemctl(&args);
        let _ = fleet.install(&["uninstall"]);
        let _ = fleet.systemctl(&["daemon-reload"]);
        fleet.kill_server();
    }
    let agents_dir = home.join(".config/mosaic/fleet/agents");
    for agent in &fleet.agents {
        let _ = fs::remove_file(agents_dir.join(format!("{agent}.env")));
    }
    for dir in [
        ".config/mosaic/fleet/agents",
        ".config/mosaic/fleet",
        ".config/mosaic",
    ] {
        let _ = fs::remove_dir(home.join(dir));
    }
}
