//! `cargo xtask bench upgrade`: the release `mosaic-install` upgrading a
//! Mosaic 0.0.31 tree (the legacy fixture: operator files plus a pristine
//! shipped script), a no-op upgrade of a settled install, and `status`,
//! each against a fresh install of the same profile in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use xshell::Shell;

use super::measure::{measure, print_table, release_installer, Comparison};

/// Layers of tests/fixtures/legacy-0.0.31 that make a pristine 0.0.31 tree.
const LEGACY_LAYERS: [&str; 3] = ["base", "marker", "shipped"];
const PROFILE: &str = "usc";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Timed runs per command (after one warm-up run).
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let sh = Shell::new()?;
    let root = crate::project_root();
    sh.change_dir(&root);
    let installer = release_installer(&sh)?;
    let fixture = root.join("tests/fixtures/legacy-0.0.31");
    let scratch = tempfile::tempdir().context("create a scratch directory")?;
    let tmux = scratch.path().join("tmux");
    std::fs::create_dir(&tmux)?;

    let counter = AtomicUsize::new(0);
    let fresh_home = || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        scratch.path().join(format!("home-{n}"))
    };
    let installer_cmd = |home: &Path, args: &[&str]| {
        let mut command = Command::new(&installer);
        command
            .arg("--home")
            .arg(home)
            .args(args)
            .env("TMUX_TMPDIR", &tmux);
        command
    };
    let install = |home: &Path| installer_cmd(home, &["--no-systemctl", "--profile", PROFILE]);
    // The legacy tree is laid down before the timer starts (make() runs
    // before the process is spawned).
    let legacy_home = || -> PathBuf {
        let home = fresh_home();
        let mosaic = home.join(".config/mosaic");
        for layer in LEGACY_LAYERS {
            copy_layer(&fixture.join(layer), &mosaic).expect("copy the legacy fixture");
        }
        home
    };

    let settled = fresh_home();
    anyhow::ensure!(
        install(&settled).output()?.status.success(),
        "installing {PROFILE} into {}",
        settled.display()
    );
    let fresh = measure(args.runs, || install(&fresh_home()))?;
    let rows = vec![
        Comparison {
            task: "upgrade 0.0.31 tree".into(),
            ours: measure(args.runs, || install(&legacy_home()))?,
            theirs: fresh.clone(),
        },
        Comparison {
            task: "no-op upgrade".into(),
            ours: measure(args.runs, || install(&settled))?,
            theirs: fresh.clone(),
        },
        Comparison {
            task: "status".into(),
            ours: measure(args.runs, || installer_cmd(&settled, &["status"]))?,
            theirs: fresh,
        },
    ];
    print_table("mosaic-install", "fresh install", &rows);
    for row in &rows {
        println!(
            "{}: {:.2}x the cost of a fresh install",
            row.task,
            1.0 / row.speedup()
        );
    }
    Ok(())
}

/// Copy the contents of `layer` into `into`, keeping modes (fs_extra).
fn copy_layer(layer: &Path, into: &Path) -> Result<()> {
    std::fs::create_dir_all(into)?;
    let options = fs_extra::dir::CopyOptions::new()
        .content_only(true)
        .overwrite(true);
    fs_extra::dir::copy(layer, into, &options)
        .with_context(|| format!("copying {} into {}", layer.display(), into.display()))?;
    Ok(())
}
