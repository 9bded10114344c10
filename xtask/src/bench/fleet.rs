//! `cargo xtask bench fleet`: bringing up a fleet of N agents (default 50)
//! four ways, in one run inside the systemd sandbox (root only):
//!
//! - a raw loop of `tmux -L <socket> new-session -d` for N sessions: the
//!   floor, what the same sessions cost without systemd;
//! - one `systemctl --user start` of the holder and the N agent units of an
//!   installed generated roster (it returns once every session exists: an
//!   agent unit is `Type=forking`, started once its script has created the
//!   session);
//! - `mosaic-fleet fleet start` from stopped: the holder, the canary, then
//!   waves (`--wave`, default 4), each verified; with `--settle 0` by
//!   default, because the settle window is waiting by design (each step
//!   waits it on top: the product's default is 5 s);
//! - `mosaic-fleet fleet start` on the running fleet once every unit has
//!   been up longer than the product's default window: it verifies and
//!   returns.
//!
//! Every agent runs the fake REPL of `tests/fixtures/canary/`. The sides run
//! in rounds (one warm-up round, then `--runs` timed rounds, each running
//! every side once) so that load coming and going on a shared machine
//! weighs on each alike; each run's setup (untimed) takes the previous one
//! down or brings the fleet up. Prints the medians and their ratios, then
//! where one more `systemctl start` spends its time, from the units' own
//! timestamps, and the CPU time of the whole sandbox for it and the loop.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use xshell::{cmd, Shell};

use super::measure::{measure_rounds, Measurement};
use crate::sandbox::{self, Sandbox};

const HOLDER: &str = "mosaic-tmux-holder.service";
const FLEET_SOCKET: &str = "mosaic-fleet";
const LOOP_SOCKET: &str = "bench-loop";
/// The settle window of the healthy-fleet runs: the product's default, so
/// that they take the path an operator's `fleet start` takes.
const HEALTHY_SETTLE: Duration = Duration::from_secs(5);

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Timed rounds (after one warm-up round); each runs every side once.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Agents in the generated roster.
    #[arg(long, default_value_t = 50)]
    agents: usize,
    /// `fleet start --wave` of the runs from stopped.
    #[arg(long, default_value_t = 4)]
    wave: usize,
    /// `fleet start --settle` of the runs from stopped (seconds each step
    /// then waits on top; 0 measures the rollout's own work).
    #[arg(long, default_value_t = 0)]
    settle: u64,
    /// Measure here: the sandbox's side of the benchmark.
    #[arg(long, hide = true)]
    inside: bool,
}

pub(crate) fn run(args: Args) -> Result<()> {
    ensure!(args.agents > 0, "--agents must be at least 1");
    ensure!(args.wave > 0, "--wave must be at least 1");
    if args.inside {
        return inside(&args);
    }
    if let Some(reason) = sandbox::unavailable_reason() {
        anyhow::bail!("bench fleet runs in the systemd sandbox, which cannot run here: {reason}");
    }
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    // The release build of the mosaic-install package builds both binaries.
    super::measure::release_installer(&sh)?;
    let exe = std::env::current_exe().context("locate the xtask binary")?;
    let mut command: Vec<OsString> = vec![exe.into(), "bench".into(), "fleet".into()];
    for (flag, value) in [
        ("--runs", args.runs.to_string()),
        ("--agents", args.agents.to_string()),
        ("--wave", args.wave.to_string()),
        ("--settle", args.settle.to_string()),
    ] {
        command.push(flag.into());
        command.push(value.into());
    }
    command.push("--inside".into());
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

/// The installed fleet inside the sandbox.
struct Bench {
    sh: Shell,
    fleet_bin: PathBuf,
    names: Vec<String>,
    /// The holder, then one unit per agent.
    units: Vec<String>,
}

fn inside(args: &Args) -> Result<()> {
    ensure!(
        std::env::var("MOSAIC_SANDBOX").as_deref() == Ok("1"),
        "`bench fleet --inside` only runs inside `cargo xtask sandbox`"
    );
    let sh = Shell::new()?;
    let home = sh.var("HOME").context("HOME is unset")?;
    let root = crate::project_root();
    sh.create_dir(format!("{home}/bin"))?;
    sh.copy_file(
        root.join("tests/fixtures/canary/fake-agent.sh"),
        format!("{home}/bin/fake-agent"),
    )?;
    let roster = format!("{home}/bench-roster.yaml");
    sh.write_file(&roster, generated_roster(args.agents))?;
    let installer = root.join("target/release/mosaic-install");
    cmd!(sh, "{installer} --profile {roster}")
        .quiet()
        .ignore_stdout()
        .run()
        .context("install the generated roster")?;

    let names: Vec<String> = (1..=args.agents).map(|i| format!("bench-{i:03}")).collect();
    let mut units = vec![HOLDER.to_owned()];
    units.extend(names.iter().map(|n| format!("mosaic-agent@{n}.service")));
    let bench = Bench {
        sh,
        fleet_bin: root.join("target/release/mosaic-fleet"),
        names,
        units,
    };
    let measured = bench.measure(args)?;
    let started = bench.sessions(FLEET_SOCKET);
    ensure!(
        bench.names.iter().all(|n| started.contains(n)),
        "the fleet is not fully up after the last run: {started:?}"
    );
    print(args, &measured);
    bench.breakdown(args.agents)?;
    bench.stop_fleet()?;
    Ok(())
}

/// The medians of one benchmark run.
struct Measured {
    tmux_loop: Measurement,
    systemctl: Measurement,
    fleet_start: Measurement,
    healthy: Measurement,
}

impl Bench {
    fn measure(&self, args: &Args) -> Result<Measured> {
        // `set -e`: a session the loop fails to create fails the run.
        let script = format!(
            "set -e; for name in {}; do tmux -L {LOOP_SOCKET} new-session -d -s \"$name\" ~/bin/fake-agent; done",
            self.names.join(" ")
        );
        let mut tmux_loop = || {
            self.all_down()?;
            let mut command = Command::new("bash");
            command.args(["-c", &script]);
            Ok(command)
        };
        let mut systemctl = || {
            self.all_down()?;
            let mut command = Command::new("systemctl");
            command.args(["--user", "start"]).args(&self.units);
            Ok(command)
        };
        let (wave, settle) = (args.wave.to_string(), args.settle.to_string());
        let mut fleet_start = || {
            self.all_down()?;
            Ok(self.fleet_start(&wave, &settle))
        };
        let healthy_settle = HEALTHY_SETTLE.as_secs().to_string();
        let mut healthy = || {
            self.end_loop_server()?;
            self.systemctl(&["start"], &self.units)?;
            std::thread::sleep(HEALTHY_SETTLE);
            Ok(self.fleet_start("4", &healthy_settle))
        };
        let mut measured = measure_rounds(
            args.runs,
            &mut [
                &mut tmux_loop,
                &mut systemctl,
                &mut fleet_start,
                &mut healthy,
            ],
        )?
        .into_iter();
        let mut next = || measured.next().expect("one measurement per side");
        Ok(Measured {
            tmux_loop: next(),
            systemctl: next(),
            fleet_start: next(),
            healthy: next(),
        })
    }

    /// `mosaic-fleet fleet start`; exits 1 (failing the run) when a step
    /// does not verify.
    fn fleet_start(&self, wave: &str, settle: &str) -> Command {
        let mut command = Command::new(&self.fleet_bin);
        command.args(["fleet", "start", "--wave", wave, "--settle", settle]);
        command
    }

    /// No fleet and no loop server: where every bring-up starts from.
    fn all_down(&self) -> Result<()> {
        self.stop_fleet()?;
        self.end_loop_server()
    }

    /// Stops the holder, and with it (PartOf=) every agent.
    fn stop_fleet(&self) -> Result<()> {
        self.systemctl(&["stop"], &[HOLDER.to_owned()])?;
        ensure!(
            self.sessions(FLEET_SOCKET).is_empty(),
            "sessions survived the holder's stop"
        );
        Ok(())
    }

    fn systemctl(&self, args: &[&str], units: &[String]) -> Result<()> {
        let sh = &self.sh;
        cmd!(sh, "systemctl --user {args...} {units...}")
            .quiet()
            .run()
            .with_context(|| format!("systemctl --user {}", args.join(" ")))
    }

    /// Ends the loop's server and waits until it no longer answers: a
    /// session created meanwhile would land in the dying server and be lost.
    fn end_loop_server(&self) -> Result<()> {
        let sh = &self.sh;
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

    fn sessions(&self, socket: &str) -> Vec<String> {
        let sh = &self.sh;
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

    /// One more `systemctl start` and one more loop, untimed by `measure`:
    /// where the start spends its time, from the units' timestamps, and the
    /// CPU time each costs the whole sandbox.
    fn breakdown(&self, agents: usize) -> Result<()> {
        self.all_down()?;
        let cpu = CpuClock::find();
        let (cpu_before, clock) = (cpu.read(), Instant::now());
        self.systemctl(&["start"], &self.units)?;
        let wall = clock.elapsed();
        let systemd_cpu = cpu.since(cpu_before);
        let timeline = Timeline::read(&self.sh, &self.units)?;

        self.all_down()?;
        let script = format!(
            "for name in {}; do tmux -L {LOOP_SOCKET} new-session -d -s \"$name\" ~/bin/fake-agent; done",
            self.names.join(" ")
        );
        let cpu_before = cpu.read();
        let sh = &self.sh;
        cmd!(sh, "bash -c {script}")
            .quiet()
            .run()
            .context("the loop")?;
        let loop_cpu = cpu.since(cpu_before);
        self.end_loop_server()?;

        println!(
            "where one more `systemctl --user start` of the holder and {agents} agents spends its time (the units' monotonic timestamps, from the holder's start):"
        );
        timeline.print(wall);
        match (systemd_cpu, loop_cpu) {
            (Some(systemd), Some(tmux_loop)) => println!(
                "  CPU time of the whole sandbox: systemctl start {:.0} ms, tmux loop {:.0} ms ({:.2}x)",
                ms(systemd),
                ms(tmux_loop),
                ms(systemd) / ms(tmux_loop)
            ),
            _ => println!("  CPU time: no cpuacct.usage or cpu.stat in this sandbox's cgroup"),
        }
        Ok(())
    }
}

fn print(args: &Args, m: &Measured) {
    let agents = args.agents;
    let steps = 1 + (agents - 1).div_ceil(args.wave);
    let rows = [
        (
            "tmux loop",
            format!("{agents} x tmux -L {LOOP_SOCKET} new-session -d"),
            &m.tmux_loop,
        ),
        (
            "systemctl start",
            format!("systemctl --user start {HOLDER} + {agents} agent units"),
            &m.systemctl,
        ),
        (
            "fleet start",
            format!(
                "mosaic-fleet fleet start from stopped, --wave {} --settle {} (holder, canary, {} waves)",
                args.wave,
                args.settle,
                steps - 1
            ),
            &m.fleet_start,
        ),
        (
            "healthy start",
            format!(
                "mosaic-fleet fleet start on the running fleet (--settle {})",
                HEALTHY_SETTLE.as_secs()
            ),
            &m.healthy,
        ),
    ];
    let width = rows
        .iter()
        .map(|(_, what, _)| what.len())
        .max()
        .unwrap_or(0);
    println!(
        "bench fleet: {agents} agents, {} timed rounds after one warm-up round (each round runs every side once), in the systemd sandbox",
        m.tmux_loop.runs
    );
    for (name, what, measurement) in &rows {
        println!(
            "  {name:<15}  {what:<width$}  median {:>8.1} ms",
            ms(measurement.median)
        );
    }
    let ratio = |a: &Measurement, b: &Measurement| ms(a.median) / ms(b.median);
    println!(
        "  ratios: systemctl start / tmux loop = {:.2}x; fleet start / systemctl start = {:.2}x; fleet start / tmux loop = {:.2}x",
        ratio(&m.systemctl, &m.tmux_loop),
        ratio(&m.fleet_start, &m.systemctl),
        ratio(&m.fleet_start, &m.tmux_loop),
    );
    println!(
        "  a healthy fleet answers in {:.0} ms; a rollout from stopped with the default --settle 5 waits {steps} x 5 s = {} s on top",
        ms(m.healthy.median),
        steps * 5
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Each unit's start, from `systemctl show`: when its start job left the
/// inactive state (its ExecStart began) and when it became active (the
/// script returned, its session created), in µs since boot.
struct Timeline {
    holder: [u64; 2],
    agents: Vec<[u64; 2]>,
}

const TIMESTAMPS: [&str; 2] = [
    "InactiveExitTimestampMonotonic",
    "ActiveEnterTimestampMonotonic",
];

impl Timeline {
    fn read(sh: &Shell, units: &[String]) -> Result<Timeline> {
        let properties = TIMESTAMPS.join(",");
        let text = cmd!(sh, "systemctl --user show -p {properties} {units...}")
            .quiet()
            .read()
            .context("read the units' timestamps")?;
        let mut blocks = text.split("\n\n").map(|block| {
            let values: BTreeMap<&str, u64> = block
                .lines()
                .filter_map(|line| line.split_once('='))
                .filter_map(|(key, value)| Some((key, value.parse().ok()?)))
                .collect();
            TIMESTAMPS.map(|key| values.get(key).copied().unwrap_or(0))
        });
        let holder = blocks.next().context("no timestamps for the holder")?;
        let agents: Vec<[u64; 2]> = blocks.take(units.len() - 1).collect();
        ensure!(
            agents.len() == units.len() - 1 && agents.iter().all(|a| a.iter().all(|t| *t > 0)),
            "systemctl show gave no complete timestamps for every agent:\n{text}"
        );
        Ok(Timeline { holder, agents })
    }

    fn print(&self, wall: Duration) {
        let t0 = self.holder[0];
        let at = |usec: u64| usec.saturating_sub(t0) as f64 / 1000.0;
        let mut begin: Vec<f64> = self.agents.iter().map(|a| at(a[0])).collect();
        let mut start: Vec<f64> = self
            .agents
            .iter()
            .map(|a| a[1].saturating_sub(a[0]) as f64 / 1000.0)
            .collect();
        let mut active: Vec<f64> = self.agents.iter().map(|a| at(a[1])).collect();
        for list in [&mut begin, &mut start, &mut active] {
            list.sort_by(f64::total_cmp);
        }
        let median = |list: &[f64]| list[list.len() / 2];
        let last = |list: &[f64]| list[list.len() - 1];
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  holder (Type=forking tmux server) active after {:>6.1} ms",
            at(self.holder[1])
        );
        let _ = writeln!(
            out,
            "  agents' starts begin (After= the holder)         first {:>6.1} ms, median {:>6.1} ms, last {:>6.1} ms",
            begin[0],
            median(&begin),
            last(&begin)
        );
        let _ = writeln!(
            out,
            "  one agent's start (script until its session)    min {:>6.1} ms, median {:>6.1} ms, max {:>6.1} ms",
            start[0],
            median(&start),
            last(&start)
        );
        let _ = writeln!(
            out,
            "  agents active                                    first {:>6.1} ms, median {:>6.1} ms, last {:>6.1} ms; systemctl returned after {:.1} ms",
            active[0],
            median(&active),
            last(&active),
            ms(wall)
        );
        print!("{out}");
    }
}

/// The CPU time consumed by everything in the sandbox (its cgroup is the
/// root of the namespace): cgroup v1 `cpuacct.usage` or v2 `cpu.stat`.
struct CpuClock {
    path: Option<PathBuf>,
}

impl CpuClock {
    fn find() -> CpuClock {
        let path = [
            "/sys/fs/cgroup/cpuacct/cpuacct.usage",
            "/sys/fs/cgroup/cpu.stat",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
        CpuClock { path }
    }

    fn read(&self) -> Option<Duration> {
        let path: &Path = self.path.as_deref()?;
        let text = std::fs::read_to_string(path).ok()?;
        if path.ends_with("cpuacct.usage") {
            return text.trim().parse().ok().map(Duration::from_nanos);
        }
        text.lines()
            .find_map(|line| line.strip_prefix("usage_usec "))
            .and_then(|usec| usec.trim().parse().ok())
            .map(Duration::from_micros)
    }

    fn since(&self, before: Option<Duration>) -> Option<Duration> {
        Some(self.read()?.saturating_sub(before?))
    }
}

/// `agents` agents running the fake REPL copied into `~/bin`.
fn generated_roster(agents: usize) -> String {
    let mut text = String::from(
        "# generated by cargo xtask bench fleet\nversion: 1\ntransport: tmux\nagents:\n",
    );
    for i in 1..=agents {
        let _ = writeln!(
            text,
            "  - name: bench-{i:03}\n    runtime: claude\n    command: ~/bin/fake-agent"
        );
    }
    text
}
