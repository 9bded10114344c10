//! The inside of the sandbox (`xtask sandbox-inside`, hidden): pid 1 of the
//! namespaces `unshare` made. It proves they are fresh, builds the private
//! `/run` and `/sys/fs/cgroup`, starts the user manager, runs the command and
//! stops the manager. It refuses to do anything outside such namespaces.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use nix::sys::signal::SigSet;
use xshell::{cmd, Shell};

use super::cgroups::{self, CGROUP_ROOT, HIERARCHIES};
use super::{exit_code, GO_FILE, MANAGER_LOG, READY_FILE, SYSTEMD, TMUX_DIR};

const GO_TIMEOUT: Duration = Duration::from_secs(30);
const MANAGER_START_TIMEOUT: Duration = Duration::from_secs(30);
const MANAGER_EXIT_TIMEOUT: Duration = Duration::from_secs(15);
const MANAGER_TERM_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// Variables of the caller's environment that would point the command at
/// the host's tmux, session bus, config or runtime directories instead of
/// the sandbox's.
const HOST_VARIABLES: [&str; 9] = [
    "TMUX",
    "TMUX_PANE",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "MOSAIC_HOME",
    "MOSAIC_RUNTIME_BIN",
];

#[derive(clap::Args)]
pub(crate) struct InsideArgs {
    #[arg(long)]
    home: PathBuf,
    #[arg(long)]
    state_dir: PathBuf,
    /// The outer process's cgroup, mount and PID namespaces (`/proc/self/ns` links).
    #[arg(long)]
    host_namespaces: String,
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

pub(crate) fn inside(args: InsideArgs) -> Result<()> {
    check_fresh_namespaces(&args.host_namespaces)?;
    // The outer process blocks signals while it waits, and spawned processes
    // inherit the mask: the manager and the command get a clean one.
    SigSet::empty()
        .thread_set_mask()
        .context("clear the signal mask")?;
    let sh = Shell::new()?;
    let uid = nix::unistd::geteuid();
    let runtime_dir = PathBuf::from(format!("/run/user/{uid}"));
    let log = args.state_dir.join(MANAGER_LOG);

    make_mounts_private(&sh)?;
    check_below_host_root()?;
    mount_run(&sh, &runtime_dir)?;
    mount_cgroups(&sh)?;
    check_cgroup_view()?;
    capture_console(&sh, &args.state_dir, &log)?;
    wait_for_go(&args.state_dir)?;

    let variables = [
        ("HOME", args.home.into_os_string()),
        ("XDG_RUNTIME_DIR", runtime_dir.into_os_string()),
        (
            "TMUX_TMPDIR",
            args.state_dir.join(TMUX_DIR).into_os_string(),
        ),
        ("MOSAIC_SANDBOX", "1".into()),
    ];
    for (key, value) in &variables {
        sh.set_var(key, value);
    }
    let mut manager = start_manager(&sh, &variables, &log)?;
    let startup = wait_until_running(&sh, &mut manager, &log)?;
    eprintln!(
        "sandbox: user manager running after {} ms",
        startup.as_millis()
    );
    fs::write(
        args.state_dir.join(READY_FILE),
        startup.as_millis().to_string(),
    )
    .context("write the ready file")?;

    let (program, arguments) = args.command.split_first().expect("clap requires a command");
    let mut command = Command::from(cmd!(sh, "{program} {arguments...}"));
    for key in HOST_VARIABLES {
        command.env_remove(key);
    }
    let status = command.status();
    stop_manager(&sh, &mut manager);
    let status = status.with_context(|| format!("run {}", program.to_string_lossy()))?;
    // pid 1 exiting makes the kernel kill everything left in the namespace.
    std::process::exit(exit_code(status))
}

/// Pid 1 of a PID namespace, and cgroup, mount and PID namespaces that are
/// not the outer process's.
fn check_fresh_namespaces(host_namespaces: &str) -> Result<()> {
    ensure!(
        std::process::id() == 1,
        "refusing to start a systemd user manager: not pid 1 of a fresh PID namespace \
         (use `cargo xtask sandbox`)"
    );
    let host: Vec<&str> = host_namespaces.split(',').collect();
    for ns in ["cgroup", "mnt", "pid"] {
        let link = format!("/proc/self/ns/{ns}");
        let mine = fs::read_link(&link).with_context(|| format!("read {link}"))?;
        let mine = mine.to_string_lossy();
        ensure!(
            host.iter().any(|h| h.starts_with(&format!("{ns}:["))),
            "--host-namespaces names no {ns} namespace"
        );
        ensure!(
            !host.contains(&mine.as_ref()),
            "refusing to start a systemd user manager: still in the host's {ns} namespace ({mine})"
        );
    }
    Ok(())
}

/// `unshare --propagation private` did this already; the sandbox does not
/// rely on it: a shared mount here would show the tmpfs mounts on the host.
fn make_mounts_private(sh: &Shell) -> Result<()> {
    cmd!(sh, "mount --make-rprivate /").quiet().run()?;
    let shared: Vec<String> = cgroups::mountinfo("self")?
        .into_iter()
        .filter(|m| m.optional.iter().any(|o| o.starts_with("shared:")))
        .map(|m| m.mount_point)
        .collect();
    ensure!(
        shared.is_empty(),
        "mounts still shared with the host: {}",
        shared.join(", ")
    );
    Ok(())
}

/// Seen from inside the cgroup namespace, the host's own mounts of the
/// hierarchies start above this namespace's root (`/..`): the root is a
/// cgroup below the host's, never the host's root itself.
fn check_below_host_root() -> Result<()> {
    let mounts = cgroups::mountinfo("self")?;
    for hierarchy in &HIERARCHIES {
        let mount = cgroups::hierarchy_mount(&mounts, hierarchy)
            .with_context(|| format!("the host's {} hierarchy is not visible", hierarchy.dir))?;
        ensure!(
            mount.root.starts_with("/.."),
            "refusing to start a systemd user manager: the cgroup namespace is rooted at the \
             host's {} root cgroup, not at a child cgroup",
            hierarchy.dir
        );
    }
    Ok(())
}

/// A private `/run`: `/run/systemd/system` tells the manager systemd is
/// booted; `/run/user/<uid>` is its `XDG_RUNTIME_DIR` (private socket, bus).
fn mount_run(sh: &Shell, runtime_dir: &Path) -> Result<()> {
    cmd!(sh, "mount -t tmpfs -o mode=0755 mosaic-sandbox-run /run")
        .quiet()
        .run()?;
    fs::create_dir_all("/run/systemd/system").context("create /run/systemd/system")?;
    fs::create_dir_all(runtime_dir).with_context(|| format!("create {}", runtime_dir.display()))?;
    fs::set_permissions(runtime_dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", runtime_dir.display()))
}

/// A tmpfs on `/sys/fs/cgroup` with each hierarchy mounted again: mounted
/// from inside the cgroup namespace, each is rooted at the child cgroup.
fn mount_cgroups(sh: &Shell) -> Result<()> {
    cmd!(
        sh,
        "mount -t tmpfs -o mode=0755 mosaic-sandbox-cgroup {CGROUP_ROOT}"
    )
    .quiet()
    .run()?;
    for hierarchy in &HIERARCHIES {
        let mount_point = hierarchy.mount_point();
        fs::create_dir(&mount_point)
            .with_context(|| format!("create {}", mount_point.display()))?;
        match hierarchy.v1_options {
            Some(options) => cmd!(sh, "mount -t cgroup -o {options} cgroup {mount_point}"),
            None => cmd!(sh, "mount -t cgroup2 cgroup2 {mount_point}"),
        }
        .quiet()
        .run()?;
    }
    Ok(())
}

/// This process is at the root of every hierarchy, and every hierarchy is
/// mounted at that root: the manager sees the child cgroup and nothing above.
fn check_cgroup_view() -> Result<()> {
    let mounts = cgroups::mountinfo("self")?;
    let top = mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == CGROUP_ROOT)
        .map(|m| m.fs_type.as_str());
    ensure!(
        top == Some("tmpfs"),
        "{CGROUP_ROOT} is not the sandbox's tmpfs"
    );
    for (hierarchy, path) in HIERARCHIES.iter().zip(cgroups::cgroup_paths("self")?) {
        ensure!(
            path == "/",
            "this process is in {path} of the {} hierarchy, not at the namespace's root",
            hierarchy.dir
        );
        let mount = cgroups::hierarchy_mount(&mounts, hierarchy)
            .with_context(|| format!("{} is not mounted inside", hierarchy.dir))?;
        ensure!(
            mount.root == "/",
            "{} is mounted at {} instead of the namespace's root",
            hierarchy.dir,
            mount.root
        );
    }
    Ok(())
}

/// The manager always logs to `/dev/console` and its generators to
/// `/dev/kmsg`: both become a pipe that a thread appends to `manager.log`
/// (a plain file would be overwritten by each writer from offset 0).
fn capture_console(sh: &Shell, state_dir: &Path, log: &Path) -> Result<()> {
    let fifo = state_dir.join("console.fifo");
    cmd!(sh, "mkfifo -m 0600 {fifo}").quiet().run()?;
    // Read and write: the pipe never reports end-of-file when writers close.
    let mut reader = fs::File::options()
        .read(true)
        .write(true)
        .open(&fifo)
        .with_context(|| format!("open {}", fifo.display()))?;
    let mut writer = append(log)?;
    std::thread::spawn(move || std::io::copy(&mut reader, &mut writer));
    for device in ["/dev/console", "/dev/kmsg"] {
        if Path::new(device).exists() {
            cmd!(sh, "mount --bind {fifo} {device}").quiet().run()?;
        }
    }
    Ok(())
}

fn append(log: &Path) -> Result<fs::File> {
    fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))
}

/// Waits until the outer process has checked where `unshare` runs.
fn wait_for_go(state_dir: &Path) -> Result<()> {
    let deadline = Instant::now() + GO_TIMEOUT;
    while !state_dir.join(GO_FILE).exists() {
        ensure!(
            Instant::now() < deadline,
            "the outer process never confirmed the child cgroups"
        );
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The manager gets a clean environment (it hands it on to every unit): the
/// sandbox variables, PATH, locale and the user's names. Its own process
/// group keeps Ctrl-C meant for the command away from it.
fn start_manager(sh: &Shell, variables: &[(&str, OsString)], log: &Path) -> Result<Child> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let manager = cmd!(sh, "{SYSTEMD} --user --log-target=console")
        .env_clear()
        .envs(variables.iter().cloned())
        .env("PATH", path)
        .env("USER", "root")
        .env("LOGNAME", "root");
    let mut manager = Command::from(manager);
    for (key, value) in std::env::vars_os() {
        if key
            .to_str()
            .is_some_and(|k| k == "LANG" || k.starts_with("LC_"))
        {
            manager.env(key, value);
        }
    }
    let mut log_file = append(log)?;
    writeln!(log_file, "sandbox: starting {SYSTEMD} --user").context("write manager.log")?;
    manager
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().context("clone the log handle")?)
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .context("start the user manager")
}

fn wait_until_running(sh: &Shell, manager: &mut Child, log: &Path) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if let Some(status) = manager.try_wait().context("check the user manager")? {
            bail!(
                "the user manager exited during startup ({status}); {}",
                log_tail(log)
            );
        }
        let state = cmd!(sh, "systemctl --user is-system-running")
            .quiet()
            .ignore_status()
            .ignore_stderr()
            .read()?;
        if state == "running" || state == "degraded" {
            if state == "degraded" {
                eprintln!("sandbox: warning: the user manager is degraded");
            }
            return Ok(started.elapsed());
        }
        if started.elapsed() > MANAGER_START_TIMEOUT {
            bail!(
                "the user manager did not come up within {} s (state: {state:?}); {}",
                MANAGER_START_TIMEOUT.as_secs(),
                log_tail(log)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Asks the manager to exit (it stops its units first), then SIGTERM, then
/// SIGKILL; each step bounded.
fn stop_manager(sh: &Shell, manager: &mut Child) {
    let started = Instant::now();
    let _ = cmd!(sh, "systemctl --user exit")
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .run();
    let mut stopped = wait_timeout(manager, MANAGER_EXIT_TIMEOUT);
    if !stopped {
        eprintln!("sandbox: warning: the user manager ignored `systemctl --user exit`");
        if let Ok(pid) = i32::try_from(manager.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        stopped = wait_timeout(manager, MANAGER_TERM_TIMEOUT);
    }
    if !stopped {
        let _ = manager.kill();
        let _ = manager.wait();
    }
    eprintln!(
        "sandbox: user manager stopped after {} ms",
        started.elapsed().as_millis()
    );
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return true;
        }
        std::thread::sleep(POLL);
    }
    false
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    format!("last lines of {}:\n{tail}", log.display())
}
