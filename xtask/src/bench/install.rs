//! `cargo xtask bench install`: the release `mosaic-install` against a shell
//! baseline that copies the same rendered files with `mkdir -p`/`cp`/`chmod`,
//! side by side in one run: a fresh `usc` install, a no-op re-run, and fresh
//! installs of generated rosters of 10, 100 and 1000 agents, each into its
//! own temp home. Reports medians, ratios and peak memory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use super::measure::{measure, print_table, release_installer, Comparison, Measurement};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Timed runs per command (after one warm-up run).
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

/// A profile to install: its `--profile` argument and its rendered tree.
struct Case {
    task: String,
    profile: String,
    rendered: PathBuf,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let sh = Shell::new()?;
    let root = crate::project_root();
    sh.change_dir(&root);
    let installer = release_installer(&sh)?;
    let scratch = tempfile::tempdir().context("create a scratch directory")?;
    let tmux = scratch.path().join("tmux");
    std::fs::create_dir(&tmux)?;

    let mut cases = vec![case(&sh, &installer, scratch.path(), "fresh usc", "usc")?];
    for agents in [10, 100, 1000] {
        let roster = scratch.path().join(format!("roster-{agents}.yaml"));
        std::fs::write(&roster, generated_roster(agents))?;
        let profile = roster.display().to_string();
        cases.push(case(
            &sh,
            &installer,
            scratch.path(),
            &format!("fresh {agents} agents"),
            &profile,
        )?);
    }

    let counter = AtomicUsize::new(0);
    let fresh_home = || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        scratch.path().join(format!("home-{n}"))
    };
    let ours = |profile: &str, home: &Path| {
        let mut command = Command::new(&installer);
        command
            .args(["--home"])
            .arg(home)
            .args(["--no-systemctl", "--profile", profile])
            .env("TMUX_TMPDIR", &tmux);
        command
    };

    let mut rows = Vec::new();
    for case in &cases {
        let script = copy_script(&case.rendered, scratch.path())?;
        rows.push(Comparison {
            task: case.task.clone(),
            ours: measure(args.runs, || ours(&case.profile, &fresh_home()))?,
            theirs: measure(args.runs, || shell(&script, &fresh_home()))?,
        });
    }
    // No-op: the same home again and again, already installed.
    let settled = fresh_home();
    let status = ours("usc", &settled).output()?.status;
    anyhow::ensure!(
        status.success(),
        "installing usc into {}",
        settled.display()
    );
    let usc_script = copy_script(&cases[0].rendered, scratch.path())?;
    rows.insert(
        1,
        Comparison {
            task: "no-op re-run usc".into(),
            ours: measure(args.runs, || ours("usc", &settled))?,
            theirs: measure(args.runs, || shell(&usc_script, &settled))?,
        },
    );

    print_table("mosaic-install", "shell cp", &rows);
    let by_task = |task: &str| -> &Measurement {
        &rows
            .iter()
            .find(|r| r.task == task)
            .expect("row exists")
            .ours
    };
    let scale = by_task("fresh 1000 agents").median.as_secs_f64()
        / by_task("fresh 10 agents").median.as_secs_f64();
    println!(
        "1000 agents cost {scale:.1}x what 10 agents cost (expected at most 30x); peak memory for 1000 agents {:.1} MiB (expected under 64 MiB)",
        by_task("fresh 1000 agents").peak_rss_kib as f64 / 1024.0
    );
    Ok(())
}

/// Render `profile` once, for the shell baseline to copy.
fn case(sh: &Shell, installer: &Path, scratch: &Path, task: &str, profile: &str) -> Result<Case> {
    let rendered = scratch.join(format!("rendered-{}", task.replace(' ', "-")));
    cmd!(
        sh,
        "{installer} render --profile {profile} --out {rendered}"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| format!("rendering {profile}"))?;
    Ok(Case {
        task: task.to_owned(),
        profile: profile.to_owned(),
        rendered,
    })
}

/// A bash script (written next to `from`) that installs the rendered tree
/// `from` into `$1/.config` the plain way: `mkdir -p` per directory, `cp`
/// and `chmod` per file.
fn copy_script(from: &Path, scratch: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut script = String::from("set -e\nh=\"$1/.config\"\n");
    let mut made = std::collections::BTreeSet::new();
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(from)?.display().to_string();
            let parent = Path::new(&rel).parent().map(|p| p.display().to_string());
            let parent = parent.unwrap_or_default();
            if made.insert(parent.clone()) {
                writeln!(script, "mkdir -p \"$h/{parent}\"")?;
            }
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o7777;
            writeln!(
                script,
                "cp '{}' \"$h/{rel}\"\nchmod {mode:o} \"$h/{rel}\"",
                path.display()
            )?;
        }
    }
    let file = scratch.join(format!(
        "copy-{}.sh",
        from.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&file, script)?;
    Ok(file)
}

fn shell(script: &Path, home: &Path) -> Command {
    let mut command = Command::new("bash");
    command.arg(script).arg(home);
    command
}

/// A roster of `n` agents cycling through the runtimes.
fn generated_roster(n: usize) -> String {
    let runtimes = ["claude", "codex", "opencode", "pi"];
    let mut text =
        String::from("# generated for bench install\nversion: 1\ntransport: tmux\nagents:\n");
    for i in 0..n {
        let _ = writeln!(
            text,
            "  - name: agent-{i}\n    runtime: {}\n    class: worker",
            runtimes[i % runtimes.len()]
        );
    }
    text
}
