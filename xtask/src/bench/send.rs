//! `cargo xtask bench send`: the release `mosaic-fleet` against the shipped
//! shell tools, in one run, on a throwaway tmux server (its own
//! `TMUX_TMPDIR`, a named socket; killed by that socket afterwards):
//!
//! - latency of one `agent send --verify` to an idle stand-in TUI (the
//!   tests' `stand-in-tui`: bracketed paste, input line on the cursor row),
//!   p50 and p99 over the runs, against `send-message.sh` submitting the same
//!   text (preamble included) to the same pane; both wait for the same ready
//!   pattern (the roster's `ready_pattern`, `-P` for the script);
//! - throughput with 8 concurrent senders to that one agent (they queue on
//!   the agent's send lock), messages per second, for each tool;
//! - `fleet status` of a 100-agent roster against 10 `tmux` invocations.
//!
//! Every delivery is checked: the TUI must have logged each message once.
//! No systemd manager is reached: `XDG_RUNTIME_DIR` is an empty directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use xshell::{cmd, Shell};

use super::measure::{measure, print_table, Comparison};

const SOCKET: &str = "mosaic-bench-send";
const AGENTS: usize = 100;
const SENDERS: usize = 8;
const READY: &str = "^> ";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Timed sends per tool for the latency percentiles (after one warm-up).
    #[arg(long, default_value_t = 100)]
    runs: usize,
    /// Messages per concurrent sender for the throughput.
    #[arg(long, default_value_t = 10)]
    per_sender: usize,
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
    fn tui_log(&self) -> PathBuf {
        self.dir.path().join("tui.log")
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
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
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

    /// Messages the TUI has logged so far.
    fn logged(&self) -> usize {
        std::fs::read_to_string(self.tui_log())
            .map(|t| t.lines().count())
            .unwrap_or(0)
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

/// How one tool sends one message to the TUI.
struct Sender<'a> {
    world: &'a World,
    fleet: &'a Path,
    send_message: &'a Path,
    host: String,
    counter: AtomicUsize,
}

impl Sender<'_> {
    fn command(&self, ours: bool) -> Command {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let text = format!("benchmark message {n}, one line of text");
        if ours {
            let mut command = self.world.command(self.fleet);
            command.args(["agent", "send", "tui", "--verify", "--from", "bench:desk"]);
            command.args(["-m", &text]);
            command
        } else {
            let mut command = self.world.command(self.send_message);
            command.args(["-L", SOCKET, "-P", READY, "-t", "=tui"]);
            command.arg(format!("[bench:desk -> {}:tui] {text}", self.host));
            command
        }
    }

    /// Send once, checking success; the wall-clock time.
    fn once(&self, ours: bool) -> Result<Duration> {
        let mut command = self.command(ours);
        let start = Instant::now();
        let out = command.output().context("run a sender")?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!(
                "{command:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(took)
    }
}

/// p50 and p99 (nearest rank) of `runs` sequential sends.
fn latency(sender: &Sender<'_>, ours: bool, runs: usize) -> Result<(Duration, Duration)> {
    sender.once(ours)?;
    let mut times = (0..runs)
        .map(|_| sender.once(ours))
        .collect::<Result<Vec<_>>>()?;
    times.sort();
    let rank = |p: f64| times[((p * runs as f64).ceil() as usize).clamp(1, runs) - 1];
    Ok((rank(0.50), rank(0.99)))
}

/// Messages per second with `SENDERS` concurrent senders, `per_sender` each.
fn throughput(sender: &Sender<'_>, ours: bool, per_sender: usize) -> Result<f64> {
    let start = Instant::now();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..SENDERS)
            .map(|_| scope.spawn(|| (0..per_sender).try_for_each(|_| sender.once(ours).map(drop))))
            .collect();
        threads
            .into_iter()
            .try_for_each(|t| t.join().expect("a sender thread panicked"))
    })?;
    Ok((SENDERS * per_sender) as f64 / start.elapsed().as_secs_f64())
}

pub(crate) fn run(args: Args) -> Result<()> {
    ensure!(
        args.runs > 0 && args.per_sender > 0,
        "give at least one run and one message"
    );
    let sh = Shell::new()?;
    let root = crate::project_root();
    sh.change_dir(&root);
    // The release build of the mosaic-install package builds both binaries.
    let fleet = super::measure::release_installer(&sh)?.with_file_name("mosaic-fleet");
    cmd!(
        sh,
        "cargo build --quiet --release -p mosaic-tests --bin stand-in-tui"
    )
    .quiet()
    .run()
    .context("building the stand-in TUI")?;
    let tui = root.join("target/release/stand-in-tui");
    let send_message = root.join("templates/framework/tools/tmux/send-message.sh");

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
    start_sessions(&sh, &world, &tui)?;

    let sender = Sender {
        world: &world,
        fleet: &fleet,
        send_message: &send_message,
        host: cmd!(sh, "hostname -s").quiet().read().unwrap_or_default(),
        counter: AtomicUsize::new(0),
    };
    let ours = latency(&sender, true, args.runs)?;
    let theirs = latency(&sender, false, args.runs)?;
    let ours_rate = throughput(&sender, true, args.per_sender)?;
    let theirs_rate = throughput(&sender, false, args.per_sender)?;
    let sent = sender.counter.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while world.logged() < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure!(
        world.logged() == sent,
        "the TUI logged {} submissions for {sent} messages sent",
        world.logged()
    );

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!(
        "{:<44}  {:>14}  {:>14}  {:>8}",
        "send to an idle TUI", "mosaic-fleet", "send-message.sh", "ratio"
    );
    let row = |task: &str, a: String, b: String, ratio: f64| {
        println!("{task:<44}  {a:>14}  {b:>14}  {ratio:>7.1}x");
    };
    row(
        "latency p50 (--verify)",
        ms(ours.0),
        ms(theirs.0),
        theirs.0.as_secs_f64() / ours.0.as_secs_f64(),
    );
    row(
        "latency p99 (--verify)",
        ms(ours.1),
        ms(theirs.1),
        theirs.1.as_secs_f64() / ours.1.as_secs_f64(),
    );
    row(
        &format!("throughput, {SENDERS} concurrent senders"),
        format!("{ours_rate:.1} msg/s"),
        format!("{theirs_rate:.1} msg/s"),
        ours_rate / theirs_rate,
    );
    println!(
        "({} sequential sends per tool after one warm-up; {SENDERS} senders × {} messages for the throughput; every one of the {sent} messages was logged once by the TUI)\n",
        args.runs, args.per_sender
    );

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
    let rows = vec![Comparison {
        task: format!("fleet status, {AGENTS} agents"),
        ours: measure(20, ours_status)?,
        theirs: measure(20, theirs_status)?,
    }];
    print_table("mosaic-fleet", "shell/tmux", &rows);
    println!("(the shell side: 10 separate `tmux display-message` queries, one per agent)");
    Ok(())
}

/// The holder, the stand-in TUI `tui`, and one idle session per other agent.
fn start_sessions(sh: &Shell, world: &World, tui: &Path) -> Result<()> {
    world.tmux(sh, &["new-session", "-d", "-s", "_holder", "sleep 86400"])?;
    let command = format!("exec {} --log {}", tui.display(), world.tui_log().display());
    world.tmux(
        sh,
        &[
            "new-session",
            "-d",
            "-s",
            "tui",
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let screen = cmd!(sh, "tmux -L {SOCKET} capture-pane -p -t =tui:")
            .env("TMUX_TMPDIR", world.tmux_dir())
            .quiet()
            .read()
            .unwrap_or_default();
        if screen.contains("stand-in TUI ready") {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the stand-in TUI did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// `n` agents: `tui` (the stand-in, ready when its input line shows) and
/// `agent-001` .. `agent-<n-1>`.
fn generated_roster(n: usize) -> String {
    let mut text = format!(
        "# generated for bench send\nversion: 1\ntransport: tmux\ntmux:\n  socket_name: {SOCKET}\nruntimes:\n  claude:\n    ready_pattern: '(?m){READY}'\nagents:\n  - name: tui\n    runtime: claude\n"
    );
    for i in 1..n {
        let _ = writeln!(text, "  - name: agent-{i:03}\n    runtime: claude");
    }
    text
}
