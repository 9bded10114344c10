//! `cargo xtask bench send`: the release `mosaic-fleet` against the shipped
//! shell tools, in one run, on a throwaway tmux server (its own
//! `TMUX_TMPDIR`, a named socket; killed by that socket afterwards):
//!
//! - `agent send --verify` to a live recorder pane until the text is
//!   submitted, against `send-message.sh` submitting the same text (the
//!   preamble included) to the same pane;
//! - `fleet status` of a 100-agent roster (100 live sessions), against 10
//!   separate `tmux` invocations (one query for each of 10 agents).
//!
//! No systemd manager is reached: `XDG_RUNTIME_DIR` is an empty directory,
//! so the one `systemctl --user show` that `fleet status` makes fails fast,
//! as it does on a machine without a user manager.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{ensure, Context, Result};
use xshell::{cmd, Shell};

use super::measure::{measure, print_table, Comparison};

const SOCKET: &str = "mosaic-bench-send";
const AGENTS: usize = 100;

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per command (after one warm-up run).
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

/// The throwaway world: home, tmux dir, runtime dir; its server is killed
/// (by its socket, in its own TMUX_TMPDIR) when dropped.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn tmux_dir(&self) -> PathBuf {
        self.dir.path().join("tmux")
    }
    fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A command with this world's environment.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env("HOME", self.home())
            .env("TMUX_TMPDIR", self.tmux_dir())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env("USER", "bench")
            .env_remove("TMUX")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("XDG_CONFIG_HOME");
        command
    }

    fn tmux(&self, sh: &Shell, args: &[&str]) -> Result<()> {
        let tmux_dir = self.tmux_dir();
        cmd!(sh, "tmux -f /dev/null -L {SOCKET} {args...}")
            .env("TMUX_TMPDIR", tmux_dir)
            .env_remove("TMUX")
            .quiet()
            .run()
            .with_context(|| format!("tmux -L {SOCKET} {}", args.join(" ")))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self
            .command("tmux")
            .args(["-L", SOCKET, "kill-server"])
            .output();
    }
}

pub fn run(args: Args) -> Result<()> {
    let sh = Shell::new()?;
    let root = crate::project_root();
    sh.change_dir(&root);
    // The release build of the mosaic-install package builds both binaries.
    let fleet = super::measure::release_installer(&sh)?.with_file_name("mosaic-fleet");
    let send_message = root.join("templates/framework/tools/tmux/send-message.sh");
    let recorder = root.join("tests/fixtures/scripts/recorder.sh");

    let world = World {
        dir: tempfile::Builder::new()
            .prefix("mbs-")
            .tempdir_in("/tmp")
            .context("create a scratch directory")?,
    };
    for dir in [world.home(), world.tmux_dir(), world.runtime_dir()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let roster = world.dir.path().join("roster.yaml");
    std::fs::write(&roster, generated_roster(AGENTS))?;
    let install = world
        .command(root.join("target/release/mosaic-install"))
        .args(["--no-systemctl", "--profile"])
        .arg(&roster)
        .output()
        .context("run mosaic-install")?;
    ensure!(
        install.status.success(),
        "mosaic-install failed: {install:?}"
    );

    start_sessions(&sh, &world, &recorder)?;

    let counter = AtomicUsize::new(0);
    let next = || counter.fetch_add(1, Ordering::Relaxed);
    let host = cmd!(sh, "hostname -s").quiet().read().unwrap_or_default();
    let ours_send = || {
        let mut command = world.command(&fleet);
        command.args([
            "agent",
            "send",
            "rec",
            "--verify",
            "--from",
            "bench:desk",
            "-m",
        ]);
        command.arg(format!("benchmark message {}", next()));
        command
    };
    let theirs_send = || {
        let mut command = world.command(&send_message);
        command.args(["-L", SOCKET, "-t", "=rec"]);
        command.arg(format!(
            "[bench:desk -> {host}:rec] benchmark message {}",
            next()
        ));
        command
    };
    let ours_status = || {
        let mut command = world.command(&fleet);
        command.args(["--json", "fleet", "status"]);
        command
    };
    let ten_queries = ten_tmux_queries(&world)?;
    let theirs_status = || {
        let mut command = world.command("bash");
        command.arg(&ten_queries);
        command
    };

    let rows = vec![
        Comparison {
            task: "agent send --verify".into(),
            ours: measure(args.runs, ours_send)?,
            theirs: measure(args.runs, theirs_send)?,
        },
        Comparison {
            task: format!("fleet status, {AGENTS} agents"),
            ours: measure(args.runs, ours_status)?,
            theirs: measure(args.runs, theirs_status)?,
        },
    ];
    print_table("mosaic-fleet", "shell/tmux", &rows);
    println!(
        "(the shell side: send-message.sh with the same text, preamble included; and 10 separate `tmux display-message` queries, one per agent)"
    );
    Ok(())
}

/// The holder, the recorder `rec`, and one idle session per other agent.
fn start_sessions(sh: &Shell, world: &World, recorder: &Path) -> Result<()> {
    world.tmux(sh, &["new-session", "-d", "-s", "_holder", "sleep 86400"])?;
    let record = world.dir.path().join("rec.log");
    let command = format!("bash {} {}", recorder.display(), record.display());
    world.tmux(
        sh,
        &[
            "new-session",
            "-d",
            "-s",
            "rec",
            "-x",
            "160",
            "-y",
            "40",
            &command,
        ],
    )?;
    for i in 1..AGENTS {
        let name = format!("agent-{i:03}");
        world.tmux(sh, &["new-session", "-d", "-s", &name, "sleep 86400"])?;
    }
    Ok(())
}

/// The baseline for `fleet status`: 10 tmux processes, one per agent.
fn ten_tmux_queries(world: &World) -> Result<PathBuf> {
    let mut script = String::from("set -e\n");
    for i in 1..=10 {
        writeln!(
            script,
            "tmux -L {SOCKET} display-message -p -t '=agent-{i:03}:' '#{{pane_current_command}} #{{window_activity}}' >/dev/null"
        )?;
    }
    let path = world.dir.path().join("ten-queries.sh");
    std::fs::write(&path, script)?;
    Ok(path)
}

/// `n` agents: `rec` (the recorder) and `agent-001` .. `agent-<n-1>`.
fn generated_roster(n: usize) -> String {
    let mut text = format!(
        "# generated for bench send\nversion: 1\ntransport: tmux\ntmux:\n  socket_name: {SOCKET}\nagents:\n  - name: rec\n    runtime: claude\n"
    );
    for i in 1..n {
        let _ = writeln!(text, "  - name: agent-{i:03}\n    runtime: claude");
    }
    text
}
