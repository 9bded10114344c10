//! What the canary drives and observes: `mosaic-install --json`, the user
//! manager through `systemctl --user`, the fleet's named tmux server, and
//! (read-only, except for the sandbox's own probe session) the default one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use xshell::{cmd, Cmd, Shell};

/// One pane's session as tmux lists it: a recreated session has a new pane
/// process (and usually a new creation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub created: String,
    pub pane_pid: String,
}

pub struct Fleet {
    sh: Shell,
    installer: PathBuf,
    /// The manager's `TMUX_TMPDIR` (None: unset).
    tmux_tmpdir: Option<String>,
    pub socket: String,
    /// The roster's agents, known once installed.
    pub agents: Vec<String>,
}

pub const HOLDER: &str = "mosaic-tmux-holder.service";

pub fn agent_unit(agent: &str) -> String {
    format!("mosaic-agent@{agent}.service")
}

impl Fleet {
    /// `tmux_tmpdir`: the `TMUX_TMPDIR` the manager gives its units (None:
    /// unset), so that this process reaches the same tmux servers.
    pub fn new(installer: &Path, socket: &str, tmux_tmpdir: Option<&str>) -> Result<Fleet> {
        Ok(Fleet {
            sh: Shell::new()?,
            installer: installer.to_path_buf(),
            tmux_tmpdir: tmux_tmpdir.map(str::to_owned),
            socket: socket.to_owned(),
            agents: Vec::new(),
        })
    }

    /// A command that reaches the same tmux servers as the units do.
    fn tmux_env<'a>(&self, cmd: Cmd<'a>) -> Cmd<'a> {
        let cmd = cmd.env_remove("TMUX").env_remove("TMUX_PANE").quiet();
        match &self.tmux_tmpdir {
            Some(dir) => cmd.env("TMUX_TMPDIR", dir),
            None => cmd.env_remove("TMUX_TMPDIR"),
        }
    }

    fn tmux<'a>(&'a self, socket: &str, args: &[&str]) -> Cmd<'a> {
        self.tmux_env(cmd!(self.sh, "tmux -L {socket} {args...}"))
    }

    pub fn home(&self) -> Result<PathBuf> {
        Ok(PathBuf::from(self.sh.var("HOME").context("HOME is unset")?))
    }

    /// `mosaic-install --json ARGS`: whether it exited 0, and its report.
    pub fn install(&self, args: &[&str]) -> Result<(bool, Value)> {
        let installer = &self.installer;
        let output = self
            .tmux_env(cmd!(self.sh, "{installer} --json {args...}"))
            .ignore_status()
            .output()
            .context("run mosaic-install")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = serde_json::from_str(&stdout).with_context(|| {
            format!(
                "mosaic-install {} exited {} without a JSON report: {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
        Ok((output.status.success(), report))
    }

    pub fn systemctl(&self, args: &[&str]) -> Result<String> {
        cmd!(self.sh, "systemctl --user {args...}")
            .quiet()
            .read()
            .with_context(|| format!("systemctl --user {}", args.join(" ")))
    }

    pub fn property(&self, unit: &str, name: &str) -> String {
        cmd!(self.sh, "systemctl --user show --value -p {name} {unit}")
            .quiet()
            .ignore_status()
            .ignore_stderr()
            .read()
            .unwrap_or_default()
    }

    pub fn active(&self, unit: &str) -> bool {
        self.property(unit, "ActiveState") == "active"
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
        let out = cmd!(
            self.sh,
            "systemctl --user {listing...} --plain --no-legend mosaic-*"
        )
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
        out.lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// The sessions of the fleet's server by name (empty when it is down).
    pub fn sessions(&self) -> BTreeMap<String, Session> {
        self.sessions_on(&self.socket)
    }

    pub fn session(&self, name: &str) -> Option<Session> {
        self.sessions().remove(name)
    }

    pub fn server_running(&self) -> bool {
        self.tmux(&self.socket, &["list-sessions"])
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
    }

    pub fn kill_session(&self, name: &str) -> Result<()> {
        let target = format!("={name}");
        self.tmux(&self.socket, &["kill-session", "-t", &target])
            .run()
            .with_context(|| format!("tmux -L {} kill-session -t {target}", self.socket))
    }

    /// Ends the fleet's own named server (the canary's throwaway socket).
    pub fn kill_server(&self) {
        let _ = self
            .tmux(&self.socket, &["kill-server"])
            .ignore_status()
            .ignore_stderr()
            .run();
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
        self.tmux("default", &["new-session", "-d", "-s", name, "sleep 86400"])
            .run()
            .context("create the probe session on the sandbox's default tmux server")
    }

    fn sessions_on(&self, socket: &str) -> BTreeMap<String, Session> {
        let format = "#{session_name}\t#{session_created}\t#{pane_pid}";
        let out = self
            .tmux(socket, &["list-panes", "-a", "-F", format])
            .ignore_status()
            .ignore_stderr()
            .read()
            .unwrap_or_default();
        out.lines()
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

/// Polls `check` every 100 ms until it holds or `timeout` passes; how long it took.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
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
