//! `cargo xtask bench fleet`: bringing up 20 agents through the systemd
//! units against a plain loop of `tmux -L <socket> new-session -d` for the
//! same 20 sessions, in one run inside the systemd sandbox (root only).
//!
//! The systemd side is one `systemctl --user start` of the holder and the 20
//! agent instances of an installed generated roster; it returns once every
//! session exists (the units create them in `ExecStartPre=`). The loop starts
//! the same command (the fake REPL of `tests/fixtures/canary/`) in 20
//! sessions on its own socket. Before each run the previous one is taken
//! down (untimed): the holder stopped, the loop's server ended. Reports both
//! medians and their ratio; issue 5 expects systemd within 3x of the loop.

use std::cell::RefCell;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use xshell::{cmd, Shell};

use super::measure::{measure, Measurement};
use crate::sandbox::{self, Sandbox};

const AGENTS: usize = 20;
const HOLDER: &str = "mosaic-tmux-holder.service";
const FLEET_SOCKET: &str = "mosaic-fleet";
const LOOP_SOCKET: &str = "bench-loop";

#[derive(clap::Args)]
pub struct Args {
    /// Timed runs per side (after one warm-up run).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Measure here: the sandbox's side of the benchmark.
    #[arg(long, hide = true)]
    inside: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.inside {
        return inside(args.runs);
    }
    if let Some(reason) = sandbox::unavailable_reason() {
        anyhow::bail!("bench fleet runs in the systemd sandbox, which cannot run here: {reason}");
    }
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    super::measure::release_installer(&sh)?;
    let exe = std::env::current_exe().context("locate the xtask binary")?;
    let runs = args.runs.to_string();
    let command: Vec<OsString> = vec![
        exe.into(),
        "bench".into(),
        "fleet".into(),
        "--inside".into(),
        "--runs".into(),
        runs.into(),
    ];
    let status = Sandbox {
        home: None,
        keep_home: false,
    }
    .run(&command)?;
    ensure!(
        status.success(),
        "bench fleet failed inside the sandbox ({status})"
    );
    Ok(())
}

fn inside(runs: usize) -> Result<()> {
    ensure!(
        std::env::var("MOSAIC_SANDBOX").as_deref() == Ok("1"),
        "`bench fleet --inside` only runs inside `cargo xtask sandbox`"
    );
    let sh = Shell::new()?;
    let home = sh.var("HOME").context("HOME is unset")?;
    let root = crate::project_root();
    let fake_agent = root.join("tests/fixtures/canary/fake-agent.sh");
    sh.create_dir(format!("{home}/bin"))?;
    sh.copy_file(&fake_agent, format!("{home}/bin/fake-agent"))?;
    let roster = format!("{home}/bench-roster.yaml");
    sh.write_file(&roster, generated_roster())?;
    let installer = root.join("target/release/mosaic-install");
    cmd!(sh, "{installer} --profile {roster}")
        .quiet()
        .ignore_stdout()
        .run()
        .context("install the generated roster")?;

    let names: Vec<String> = (1..=AGENTS).map(|i| format!("bench-{i:02}")).collect();
    let mut units = vec![HOLDER.to_owned()];
    units.extend(names.iter().map(|n| format!("mosaic-agent@{n}.service")));
    let teardown_error = RefCell::new(None);
    let teardown = |result: Result<()>| {
        if let Err(err) = result {
            teardown_error.borrow_mut().get_or_insert(err);
        }
    };

    let systemd = measure(runs, || {
        teardown(stop_fleet(&sh));
        let mut command = Command::new("systemctl");
        command.args(["--user", "start"]).args(&units);
        command
    })?;
    let started = sessions(&sh, FLEET_SOCKET);
    ensure!(
        names.iter().all(|n| started.contains(n)),
        "the units did not bring up all {AGENTS} sessions: {started:?}"
    );
    teardown(stop_fleet(&sh));

    let script = format!(
        "for name in {}; do tmux -L {LOOP_SOCKET} new-session -d -s \"$name\" ~/bin/fake-agent; done",
        names.join(" ")
    );
    let plain = measure(runs, || {
        teardown(end_loop_server(&sh));
        let mut command = Command::new("bash");
        command.args(["-c", &script]);
        command
    })?;
    let started = sessions(&sh, LOOP_SOCKET);
    ensure!(
        started.len() == AGENTS,
        "the loop did not bring up {AGENTS} sessions: {started:?}"
    );
    teardown(end_loop_server(&sh));
    if let Some(err) = teardown_error.into_inner() {
        return Err(err.context("taking a run down"));
    }
    print(&systemd, &plain);
    Ok(())
}

fn print(systemd: &Measurement, plain: &Measurement) {
    let ms = |m: &Measurement| m.median.as_secs_f64() * 1000.0;
    let rows = [
        (
            "systemd units",
            format!("systemctl --user start {HOLDER} + {AGENTS} agent units"),
            ms(systemd),
        ),
        (
            "tmux loop",
            format!("{AGENTS} x tmux -L {LOOP_SOCKET} new-session -d"),
            ms(plain),
        ),
    ];
    let width = rows
        .iter()
        .map(|(_, what, _)| what.len())
        .max()
        .unwrap_or(0);
    println!(
        "bench fleet: {AGENTS} agents, {} timed runs per side after one warm-up, in the systemd sandbox",
        systemd.runs
    );
    for (name, what, median) in &rows {
        println!("  {name:<13}  {what:<width$}  median {median:>7.1} ms");
    }
    println!(
        "  ratio          systemd / loop = {:.2}x (issue 5 expects at most 3x)",
        ms(systemd) / ms(plain)
    );
}

/// Stops the holder, and with it (PartOf=) every agent; the server is gone.
fn stop_fleet(sh: &Shell) -> Result<()> {
    cmd!(sh, "systemctl --user stop {HOLDER}")
        .quiet()
        .run()
        .context("stop the holder")?;
    ensure!(
        sessions(sh, FLEET_SOCKET).is_empty(),
        "sessions survived the holder's stop"
    );
    Ok(())
}

/// Ends the loop's server and waits until it no longer answers: a session
/// created meanwhile would land in the dying server and be lost.
fn end_loop_server(sh: &Shell) -> Result<()> {
    let answers = || {
        cmd!(sh, "tmux -L {LOOP_SOCKET} list-sessions")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
    };
    if !answers() {
        return Ok(());
    }
    cmd!(sh, "tmux -L {LOOP_SOCKET} kill-server")
        .quiet()
        .run()
        .context("end the loop's tmux server")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while answers() {
        ensure!(
            Instant::now() < deadline,
            "the loop's tmux server does not end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn sessions(sh: &Shell, socket: &str) -> Vec<String> {
    let format = "#{session_name}";
    cmd!(sh, "tmux -L {socket} list-sessions -F {format}")
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .read()
        .unwrap_or_default()
        .lines()
        .filter(|name| !name.starts_with('_'))
        .map(str::to_owned)
        .collect()
}

/// `AGENTS` agents running the fake REPL copied into `~/bin`.
fn generated_roster() -> String {
    let mut text = String::from(
        "# generated by cargo xtask bench fleet\nversion: 1\ntransport: tmux\nagents:\n",
    );
    for i in 1..=AGENTS {
        let _ = writeln!(
            text,
            "  - name: bench-{i:02}\n    runtime: claude\n    command: ~/bin/fake-agent"
        );
    }
    text
}
