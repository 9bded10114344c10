//! `cargo xtask sandbox`: runs a command next to a real systemd user manager
//! (`/usr/lib/systemd/systemd --user`) that is fully isolated from the host,
//! for the canary rollout and the integration tests. Root only.
//!
//! A user manager believes it owns the cgroup it starts in; started at the
//! host's root cgroup it moves every process on the machine into its own
//! cgroups. The recipe (issue 5) therefore gives it a root of its own:
//!
//! 1. The outer process (this module, [`Sandbox::run`]) creates a fresh child
//!    cgroup `mosaic-sandbox-<pid>-<n>` below its own cgroup in each hierarchy
//!    systemd uses (`name=systemd`, `pids`, `memory`, `cpu`, `cpuacct`, cgroup2
//!    `unified`), moves itself in, spawns `unshare --mount --pid --fork --cgroup
//!    --mount-proc --kill-child`, and moves itself straight back. The cgroup
//!    namespace that `unshare` creates is rooted at the child: everything
//!    inside sees the child as `/`, so the manager can only rearrange it.
//! 2. Before the inside may start the manager, the outer checks that `unshare`
//!    really sits in the children, then writes a `go` file.
//! 3. The inside ([`inside`], a hidden subcommand, pid 1 of the new PID
//!    namespace) checks it is in fresh cgroup, mount and PID namespaces and
//!    that its cgroup root lies below the host's (the host's mounts show it
//!    as `/..`), and makes every mount private (nothing propagates to the
//!    host). It mounts a tmpfs on `/run` (with `/run/systemd/system`, so the
//!    manager believes systemd is booted, and `/run/user/<uid>` as
//!    `XDG_RUNTIME_DIR`) and a tmpfs on `/sys/fs/cgroup` with the hierarchies
//!    mounted again (now rooted at the child, which it verifies), and points
//!    `/dev/console` and `/dev/kmsg` at a pipe into `manager.log` (the manager
//!    logs to the console, its generators to kmsg: the host's stay clean).
//! 4. Once the `go` file exists it starts the manager with a clean environment
//!    (the sandbox `HOME`, the runtime dir, its own `TMUX_TMPDIR`, which every
//!    unit inherits), waits (at most 30 s) for `systemctl --user
//!    is-system-running` to say running or degraded, runs the command with the
//!    same variables, asks the manager to exit and exits with the command's
//!    status. When pid 1 exits the kernel kills whatever is left in the
//!    namespace: nothing started inside outlives the run.
//! 5. The outer process removes the child cgroups (with anything systemd
//!    created below them) in every case, through a guard; SIGTERM and SIGHUP
//!    tear the sandbox down first, Ctrl-C is left to the command.

mod cgroups;
mod inside;
mod signals;

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use cgroups::ChildCgroups;
pub(crate) use inside::{inside, InsideArgs};
use signals::{Event, SignalWatch};

/// The systemd binary that runs as the user manager.
const SYSTEMD: &str = "/usr/lib/systemd/systemd";
/// Written by the outer process once `unshare` is verified to sit in the
/// child cgroups: only then does the inside start the manager.
const GO_FILE: &str = "go";
/// Written by the inside once the manager runs: the command did start.
const READY_FILE: &str = "ready";
const MANAGER_LOG: &str = "manager.log";
/// `TMUX_TMPDIR` inside, under the state dir (kept short for `sun_path`).
const TMUX_DIR: &str = "tmux";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Use DIR as the sandbox's $HOME (created if missing, never removed).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Keep the temporary $HOME after the run (its path is printed).
    #[arg(long)]
    keep_home: bool,
    /// The command to run inside, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let sandbox = Sandbox {
        home: args.home,
        keep_home: args.keep_home,
    };
    let status = sandbox.run(&args.command)?;
    std::process::exit(exit_code(status))
}

/// One sandbox run: a systemd user manager in throwaway namespaces, and a
/// command that talks to it (`systemctl --user` works as usual inside).
pub(crate) struct Sandbox {
    /// `$HOME` inside; a temp dir when `None`.
    pub(crate) home: Option<PathBuf>,
    /// Keep the temp `$HOME` (ignored when `home` is given: that one is kept).
    pub(crate) keep_home: bool,
}

impl Sandbox {
    /// Runs `command` (program and arguments) inside and returns its exit
    /// status. Errors when the sandbox cannot run here or did not come up;
    /// the child cgroups are removed in every case. Call it from the main
    /// thread: it blocks SIGINT, SIGTERM, SIGHUP and SIGCHLD there meanwhile.
    pub(crate) fn run(&self, command: &[OsString]) -> Result<ExitStatus> {
        if let Some(reason) = unavailable_reason() {
            bail!("cannot run the systemd sandbox: {reason}");
        }
        cgroups::check_host_layout()?;
        let home = self.prepare_home()?;
        // In /tmp with a short name: tmux socket paths must fit in sun_path.
        let state = tempfile::Builder::new()
            .prefix("msb-")
            .tempdir_in("/tmp")
            .context("create the sandbox state dir")?;
        fs::create_dir(state.path().join(TMUX_DIR)).context("create TMUX_TMPDIR")?;

        let watch = SignalWatch::start()?;
        let mut cgroups = ChildCgroups::create(&cgroup_name())?;
        let mut child = spawn_inside(&cgroups, home.path(), state.path(), command)?;
        let waited = wait_for(&mut child, &watch);
        let removed = cgroups.remove();
        drop(watch);
        home.finish();

        let (status, stopped_by) = waited?;
        removed?;
        if let Some(signal) = stopped_by {
            bail!("the sandbox was stopped by {signal}");
        }
        if !state.path().join(READY_FILE).exists() {
            let kept = state.keep();
            bail!(
                "the sandbox did not come up ({status}); the manager log is kept at {}",
                kept.join(MANAGER_LOG).display()
            );
        }
        Ok(status)
    }

    fn prepare_home(&self) -> Result<Home> {
        if let Some(dir) = &self.home {
            fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            let dir = dir
                .canonicalize()
                .with_context(|| format!("resolve {}", dir.display()))?;
            return Ok(Home::Given(dir));
        }
        let dir = tempfile::Builder::new()
            .prefix("mosaic-sandbox-home-")
            .tempdir()
            .context("create a temp HOME")?;
        Ok(Home::Temp {
            dir,
            keep: self.keep_home,
        })
    }
}

/// Why the sandbox cannot run on this machine, if it cannot.
pub(crate) fn unavailable_reason() -> Option<String> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Some(format!(
            "it needs root for namespaces, mounts and cgroups (running as uid {euid})"
        ));
    }
    if !Path::new(SYSTEMD).is_file() {
        return Some(format!("{SYSTEMD} is not installed"));
    }
    ["unshare", "mount", "mkfifo", "systemctl"]
        .into_iter()
        .find(|tool| !on_path(tool))
        .map(|tool| format!("`{tool}` is not on PATH"))
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

enum Home {
    Given(PathBuf),
    Temp { dir: tempfile::TempDir, keep: bool },
}

impl Home {
    fn path(&self) -> &Path {
        match self {
            Home::Given(dir) => dir,
            Home::Temp { dir, .. } => dir.path(),
        }
    }

    /// Removes a temp home unless asked to keep it.
    fn finish(self) {
        if let Home::Temp { dir, keep: true } = self {
            eprintln!("sandbox: kept HOME at {}", dir.keep().display());
        }
    }
}

/// Unique per process and run, so that leftovers name their owner.
fn cgroup_name() -> String {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    format!("mosaic-sandbox-{}-{run}", std::process::id())
}

/// Enters the child cgroups just long enough to spawn `unshare`, then checks
/// that it sits there before letting the inside go on.
fn spawn_inside(
    cgroups: &ChildCgroups,
    home: &Path,
    state: &Path,
    command: &[OsString],
) -> Result<Child> {
    let sh = Shell::new()?;
    let exe = std::env::current_exe().context("locate the xtask binary")?;
    let host_namespaces = ["cgroup", "mnt", "pid"]
        .iter()
        .map(|ns| {
            let link = format!("/proc/self/ns/{ns}");
            fs::read_link(&link)
                .with_context(|| format!("read {link}"))
                .map(|target| target.display().to_string())
        })
        .collect::<Result<Vec<_>>>()?
        .join(",");
    let unshare = cmd!(
        sh,
        "unshare --mount --pid --fork --cgroup --mount-proc --kill-child --propagation private
            {exe} sandbox-inside --home {home} --state-dir {state}
            --host-namespaces {host_namespaces} -- {command...}"
    );

    cgroups.enter().context("enter the child cgroups")?;
    let spawned = Command::from(unshare).spawn();
    let left = cgroups.leave().context("leave the child cgroups");
    let mut child = spawned.context("spawn unshare")?;
    let checked = left
        .and_then(|()| cgroups.check_inside(&child.id().to_string()))
        .and_then(|()| {
            fs::write(state.join(GO_FILE), "").context("write the go file for the inside")
        });
    if let Err(err) = checked {
        let _ = child.kill();
        let _ = child.wait();
        return Err(err);
    }
    Ok(child)
}

/// Waits for `unshare` to exit. SIGTERM or SIGHUP kill it, and with it (by
/// `--kill-child`) pid 1 of the sandbox and so everything inside.
fn wait_for(child: &mut Child, watch: &SignalWatch) -> Result<(ExitStatus, Option<String>)> {
    let mut stopped_by = None;
    loop {
        let event = match child.try_wait() {
            Ok(Some(status)) => return Ok((status, stopped_by)),
            Ok(None) => watch.next(),
            Err(err) => Err(err).context("wait for unshare"),
        };
        match event {
            Ok(Event::Terminate(signal)) => {
                eprintln!("sandbox: {signal} received, stopping the sandbox");
                stopped_by = Some(signal.to_string());
                let _ = child.kill();
            }
            Ok(Event::Interrupt | Event::Child) => {}
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err);
            }
        }
    }
}

/// The status a shell would report: the code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
