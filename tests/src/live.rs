//! A fleet under a real systemd user manager, driven and observed the way an
//! operator would: `mosaic-install --json`, `systemctl --user`, the fleet's
//! named tmux server and (read-only, but for the sandbox's own probe
//! session) the default one. The one driver of both the sandbox tests
//! ([`crate::sandbox`]) and `cargo xtask canary`: fallible calls return
//! errors with the command that failed, and the `*_ok` forms assert.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The holder's unit.
pub const HOLDER: &str = "mosaic-tmux-holder.service";

/// An agent's unit.
pub fn agent_unit(agent: &str) -> String {
    format!("mosaic-agent@{agent}.service")
}

/// One pane's session as tmux lists it: a recreated session has a new pane
/// process (and usually a new creation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub created: String,
    pub pane_pid: String,
}

pub struct LiveFleet {
    /// `$HOME` of this process: the home the user manager installs into.
    pub home: PathBuf,
    /// The fleet's tmux socket.
    pub socket: String,
    /// The roster's agents, once an install said which.
    pub agents: Vec<String>,
    installer: PathBuf,
    /// The manager's `TMUX_TMPDIR` (None: unset), so that this process
    /// reaches the same tmux servers as the units.
    tmux_tmpdir: Option<String>,
}

impl LiveFleet {
    pub fn new(installer: &Path, socket: &str, tmux_tmpdir: Option<&str>) -> Result<LiveFleet> {
        let home = std::env::var_os("HOME").context("HOME is unset")?;
        Ok(LiveFleet {
            home: PathBuf::from(home),
            socket: socket.to_owned(),
            agents: Vec::new(),
            installer: installer.to_path_buf(),
            tmux_tmpdir: tmux_tmpdir.map(str::to_owned),
        })
    }

    /// A command that reaches the same tmux servers as the units do.
    fn with_tmux_env(&self, mut command: Command) -> Command {
        command.env_remove("TMUX").env_remove("TMUX_PANE");
        match &self.tmux_tmpdir {
            Some(dir) => command.env("TMUX_TMPDIR", dir),
            None => command.env_remove("TMUX_TMPDIR"),
        };
        command
    }

    /// `mosaic-install --json ARGS`: how it exited, and its report.
    pub fn install(&self, args: &[&str]) -> Result<(Output, Value)> {
        let mut command = self.with_tmux_env(Command::new(&self.installer));
        let output = command
            .arg("--json")
            .args(args)
            .output()
            .context("run mosaic-install")?;
        let report = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "mosaic-install {} exited {} without a JSON report: {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
        Ok((output, report))
    }

    /// `mosaic-install --json ARGS`, asserting that it exits 0; its report.
    pub fn install_ok(&self, args: &[&str]) -> Value {
        let (output, report) = self.install(args).unwrap_or_else(|err| panic!("{err:#}"));
        assert!(
            output.status.success(),
            "mosaic-install {args:?} failed: {report:#}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        report
    }

    /// `systemctl --user ARGS`, whatever its exit status.
    pub fn systemctl_output(&self, args: &[&str]) -> Output {
        Command::new("systemctl")
            .arg("--user")
            .args(args)
            .output()
            .expect("run systemctl")
    }

    /// `systemctl --user ARGS`; its stdout, or an error naming the command.
    pub fn systemctl(&self, args: &[&str]) -> Result<String> {
        let output = self.systemctl_output(args);
        if !output.status.success() {
            bail!(
                "systemctl --user {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `systemctl --user ARGS`, asserting success; its stdout.
    pub fn systemctl_ok(&self, args: &[&str]) -> String {
        self.systemctl(args).unwrap_or_else(|err| panic!("{err:#}"))
    }

    /// A unit property (empty when the manager does not answer).
    pub fn property(&self, unit: &str, name: &str) -> String {
        let output = self.systemctl_output(&["show", "--value", "-p", name, unit]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// `ActiveState`.
    pub fn state(&self, unit: &str) -> String {
        self.property(unit, "ActiveState")
    }

    pub fn active(&self, unit: &str) -> bool {
        self.state(unit) == "active"
    }

    /// Units named `mosaic-*` the manager has loaded, in any state.
    pub fn loaded_units(&self) -> Vec<String> {
        self.listed(&["list-units", "--all"])
    }

    /// Unit files named `mosaic-*` the manager can find.
    pub fn unit_files(&self) -> Vec<String> {
        self.listed(&["list-unit-files"])
    }

    /// The first column of a listing of `mosaic-*` (which exits non-zero
    /// when nothing matches).
    fn listed(&self, listing: &[&str]) -> Vec<String> {
        let mut args = listing.to_vec();
        args.extend(["--plain", "--no-legend", "mosaic-*"]);
        let output = self.systemctl_output(&args);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// `tmux -L SOCKET ARGS`, whatever its exit status.
    fn tmux_on(&self, socket: &str, args: &[&str]) -> Output {
        let mut command = self.with_tmux_env(Command::new("tmux"));
        command
            .args(["-L", socket])
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// `tmux -L <the fleet's socket> ARGS`, whatever its exit status.
    pub fn tmux(&self, args: &[&str]) -> Output {
        self.tmux_on(&self.socket, args)
    }

    /// The sessions of the fleet's server by name (empty when it is down).
    pub fn sessions(&self) -> BTreeMap<String, Session> {
        self.sessions_on(&self.socket)
    }

    pub fn session(&self, name: &str) -> Option<Session> {
        self.sessions().remove(name)
    }

    pub fn server_running(&self) -> bool {
        self.tmux(&["list-sessions"]).status.success()
    }

    /// Kills the session named exactly `name` on the fleet's server.
    pub fn kill_session(&self, name: &str) -> Result<()> {
        let target = format!("={name}");
        let output = self.tmux(&["kill-session", "-t", &target]);
        if !output.status.success() {
            bail!(
                "tmux -L {} kill-session -t {target} failed: {}",
                self.socket,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Ends the fleet's own named server (a throwaway socket's).
    pub fn kill_server(&self) {
        self.tmux(&["kill-server"]);
    }

    /// The default server's sessions (read-only).
    pub fn default_sessions(&self) -> BTreeMap<String, Session> {
        self.sessions_on("default")
    }

    /// Creates a session on the default server of the sandbox's own
    /// `TMUX_TMPDIR`; refuses anywhere else.
    pub fn create_default_probe(&self, name: &str) -> Result<()> {
        let private =
            std::env::var("MOSAIC_SANDBOX").as_deref() == Ok("1") && self.tmux_tmpdir.is_some();
        if !private {
            bail!("refusing to create a session on a default tmux server outside the sandbox");
        }
        let output = self.tmux_on("default", &["new-session", "-d", "-s", name, "sleep 86400"]);
        if !output.status.success() {
            bail!(
                "could not create the probe session on the sandbox's default tmux server: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    fn sessions_on(&self, socket: &str) -> BTreeMap<String, Session> {
        let format = "#{session_name}\t#{session_created}\t#{pane_pid}";
        let output = self.tmux_on(socket, &["list-panes", "-a", "-F", format]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let name = fields.next()?.to_owned();
                let session = Session {
                    created: fields.next()?.to_owned(),
                    pane_pid: fields.next()?.to_owned(),
                };
                Some((name, session))
            })
            .collect()
    }
}

/// Polls `check` every 100 ms until it holds (true) or `timeout` passes.
pub fn wait_until(timeout: Duration, check: impl FnMut() -> bool) -> bool {
    time_until(timeout, check).is_some()
}

/// Polls `check` every 100 ms until it holds or `timeout` passes; how long
/// it took.
pub fn time_until(timeout: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
