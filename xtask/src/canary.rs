//! `cargo xtask canary`: the whole canary rollout end to end against a real
//! systemd user manager, with a per-step report (step, result, duration) and
//! a non-zero exit when any step fails. The steps are in [`steps`].
//!
//! By default the manager is the isolated one of [`crate::sandbox`] (root
//! only): the canary builds `mosaic-install`, then runs itself again inside
//! the sandbox (`canary --inside`, hidden) where `$HOME`, the runtime dir and
//! `TMUX_TMPDIR` are throwaway. The roster is the real `usc` profile; its
//! agents get a command that exists here the way an operator would give it:
//! by editing each env file's `MOSAIC_AGENT_COMMAND`, pointing at
//! `tests/fixtures/canary/fake-agent.sh`, a small REPL.
//!
//! `--live` runs the same steps against the invoking user's own manager (see
//! [`live`] for what it refuses and why). When neither can run the canary
//! says why, and fails under `CI=true`.

mod bundle;
mod live;
mod report;
mod steps;
mod upgrade;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use xshell::{cmd, Shell};

use crate::sandbox::{self, Sandbox};
use mosaic_tests::live::LiveFleet;
use steps::Target;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Run against your own systemd user manager (throwaway tmux socket;
    /// refuses when a Mosaic fleet is installed) instead of the sandbox.
    #[arg(long)]
    live: bool,
    /// Keep the sandbox's temporary HOME after the run (its path is printed).
    #[arg(long, conflicts_with = "live")]
    keep_home: bool,
    /// Run the steps here: the sandbox's side of the canary.
    #[arg(long, hide = true, conflicts_with = "live")]
    inside: bool,
}

pub(crate) fn run(args: Args) -> Result<()> {
    if args.inside {
        return inside();
    }
    let installer = build_installer()?;
    if args.live {
        return live::run(&installer);
    }
    if let Some(reason) = sandbox::unavailable_reason() {
        return unavailable(&format!(
            "the systemd sandbox cannot run here: {reason}; use --live to run against your own user manager"
        ));
    }
    let exe = std::env::current_exe().context("locate the xtask binary")?;
    let command: Vec<OsString> = vec![exe.into(), "canary".into(), "--inside".into()];
    let status = Sandbox {
        home: None,
        keep_home: args.keep_home,
    }
    .run(&command)?;
    ensure!(status.success(), "canary: failed ({status})");
    Ok(())
}

/// The steps against the sandbox's manager, run inside it.
fn inside() -> Result<()> {
    ensure!(
        std::env::var("MOSAIC_SANDBOX").as_deref() == Ok("1"),
        "`canary --inside` only runs inside `cargo xtask sandbox`; run `cargo xtask canary`"
    );
    let home = std::env::var("HOME").context("HOME is unset")?;
    let tmux_tmpdir = std::env::var("TMUX_TMPDIR").context("TMUX_TMPDIR is unset")?;
    let target = target("usc".to_owned(), true);
    let mut fleet = LiveFleet::new(&installer_path()?, "mosaic-fleet", Some(&tmux_tmpdir))?;
    println!(
        "canary: sandboxed systemd user manager; HOME={home}, TMUX_TMPDIR={tmux_tmpdir}, profile usc"
    );
    finish(steps::run(&mut fleet, &target))
}

fn target(profile: String, create_probe: bool) -> Target {
    let root = crate::project_root();
    Target {
        profile,
        create_probe,
        templates: root.join("templates"),
        fake_agent: root.join("tests/fixtures/canary/fake-agent.sh"),
    }
}

fn finish(report: report::Report) -> Result<()> {
    report.print();
    if report.failed() {
        bail!("canary: a step failed (see the report above)");
    }
    Ok(())
}

/// Neither the sandbox nor `--live` can run: say why; an error under CI.
fn unavailable(why: &str) -> Result<()> {
    if std::env::var("CI").as_deref() == Ok("true") {
        bail!("canary: {why}");
    }
    println!("canary: skipped: {why}");
    Ok(())
}

fn build_installer() -> Result<PathBuf> {
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    cmd!(sh, "cargo build --quiet -p mosaic-install")
        .run()
        .context("build mosaic-install")?;
    installer_path()
}

/// `mosaic-install` next to this xtask binary (same target dir and profile).
fn installer_path() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locate the xtask binary")?;
    let installer = exe
        .parent()
        .map(|dir| dir.join("mosaic-install"))
        .filter(|path| path.is_file());
    installer.with_context(|| {
        format!(
            "no mosaic-install next to {}; run `cargo build -p mosaic-install`",
            exe.display()
        )
    })
}
