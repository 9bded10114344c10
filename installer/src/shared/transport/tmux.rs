//! The tmux transport: agents are sessions on named tmux servers (the
//! holder's socket, or an agent's own `socket` from the roster).
//!
//! Every command carries `-L <socket>`; every target is exact: a session is
//! `=NAME:` (so `agent-1` never matches `agent-10`), resolved once to its
//! pane id (`%N`, unique on the server) for everything after. The operator's
//! default server is only ever read, by its explicit name `-L default`, to
//! check that no agent session leaked onto it.
//!
//! Delivering a message (the protocol `send-message.sh` shares): the
//! agent's send queue in `send_lock`, the wait for the program to be ready
//! in `ready`, what is read from the pane in `pane`, and each verified
//! paste and Enter in `submit`.

// The tmux transport runs the commands shared::tmux builds.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod launch;
mod pane;
mod ready;
mod send_lock;
mod submit;
pub(crate) mod viewer;

use crate::shared::profile::InputMode;
use crate::shared::tmux::TmuxServer;

use super::{
    Delivery, DeliveryOptions, FleetView, Launch, Readiness, ReadyRule, SessionState, Transport,
    TransportError,
};
use send_lock::LockWait;
use submit::Submitted;

const PANE_FORMAT: &str =
    "#{session_name}\t#{window_active}\t#{pane_active}\t#{pane_dead}\t#{window_activity}\t#{pane_current_command}";

/// Agents as sessions on named tmux servers.
#[derive(Debug, Clone)]
pub(crate) struct TmuxTransport {
    default_socket: String,
    holder_session: String,
    /// Agents whose socket is not the default one.
    sockets: BTreeMap<String, String>,
}

impl TmuxTransport {
    pub(crate) fn new(default_socket: &str, holder_session: &str) -> TmuxTransport {
        TmuxTransport {
            default_socket: default_socket.to_owned(),
            holder_session: holder_session.to_owned(),
            sockets: BTreeMap::new(),
        }
    }

    /// Address `agent` on `socket` instead of the default socket.
    pub(crate) fn with_agent_socket(mut self, agent: &str, socket: &str) -> TmuxTransport {
        if socket != self.default_socket {
            self.sockets.insert(agent.to_owned(), socket.to_owned());
        }
        self
    }

    fn socket_of(&self, agent: &str) -> &str {
        self.sockets
            .get(agent)
            .map(String::as_str)
            .unwrap_or(&self.default_socket)
    }

    /// The agents grouped by the server they live on; the default socket
    /// always has an entry (it carries the holder).
    fn by_socket<'a>(&'a self, agents: &'a [String]) -> BTreeMap<&'a str, Vec<&'a String>> {
        let mut by_socket: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
        by_socket.entry(&self.default_socket).or_default();
        for agent in agents {
            by_socket
                .entry(self.socket_of(agent))
                .or_default()
                .push(agent);
        }
        by_socket
    }

    fn command(socket: &str) -> Command {
        TmuxServer::new(socket).command()
    }

    fn run(socket: &str, args: &[&str]) -> Result<Output, TransportError> {
        Self::command(socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|cause| TransportError::Spawn {
                program: "tmux".into(),
                cause,
            })
    }

    /// Run and require success; stdout as text.
    fn query(socket: &str, args: &[&str]) -> Result<String, TransportError> {
        let out = Self::run(socket, args)?;
        if !out.status.success() {
            return Err(TransportError::Failed {
                command: format!("tmux -L {socket} {}", args.join(" ")),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The pane of the agent's session, or why there is none.
    fn pane(&self, agent: &str) -> Result<(String, String), String> {
        let socket = self.socket_of(agent).to_owned();
        let target = format!("={agent}:");
        match Self::query(
            &socket,
            &["display-message", "-p", "-t", &target, "#{pane_id}"],
        ) {
            Ok(id) if !id.trim().is_empty() => Ok((socket, id.trim().to_owned())),
            _ if !server_runs(&socket) => Err(format!(
                "no tmux server on socket {socket} (is mosaic-tmux-holder.service running?)"
            )),
            _ => Err(format!("no session ={agent} on tmux -L {socket}")),
        }
    }
}

fn no_session(agent: &str, why: String) -> TransportError {
    TransportError::NoSession {
        agent: agent.to_owned(),
        where_: format!("({why})"),
    }
}

fn server_runs(socket: &str) -> bool {
    TmuxServer::new(socket).running()
}

impl Transport for TmuxTransport {
    fn describe(&self) -> String {
        format!("tmux -L {}", self.default_socket)
    }

    fn sessions(&self, agents: &[String]) -> Result<FleetView, TransportError> {
        let by_socket = self.by_socket(agents);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut view = FleetView {
            holder_up: false,
            agents: BTreeMap::new(),
        };
        for (socket, names) in by_socket {
            let panes = Self::query(socket, &["list-panes", "-a", "-F", PANE_FORMAT]);
            let mut seen: BTreeMap<String, SessionState> = BTreeMap::new();
            for line in panes.as_deref().unwrap_or("").lines() {
                let fields: Vec<&str> = line.splitn(6, '\t').collect();
                let [session, window_active, pane_active, dead, activity, command] = fields[..]
                else {
                    continue;
                };
                if window_active != "1" || pane_active != "1" {
                    continue;
                }
                seen.insert(
                    session.to_owned(),
                    SessionState {
                        alive: dead != "1",
                        command: Some(command.to_owned()),
                        idle_secs: activity.parse::<u64>().ok().map(|t| now.saturating_sub(t)),
                    },
                );
            }
            if socket == self.default_socket {
                view.holder_up = seen.contains_key(&self.holder_session);
            }
            for name in names {
                let state = seen.remove(name).unwrap_or_else(SessionState::down);
                view.agents.insert(name.clone(), state);
            }
        }
        Ok(view)
    }

    fn deliver(
        &self,
        agent: &str,
        submissions: &[String],
        options: &DeliveryOptions,
    ) -> Result<Delivery, TransportError> {
        let (socket, pane) = match self.pane(agent) {
            Ok(found) => found,
            Err(why) => return Ok(Delivery::Down { why }),
        };
        match deliver_locked(&socket, &pane, agent, submissions, options) {
            Err(err) => match self.pane(agent) {
                Err(why) => Ok(Delivery::Down { why }),
                Ok(_) => Err(err),
            },
            delivered => delivered,
        }
    }

    fn wait_ready(
        &self,
        agent: &str,
        rule: &ReadyRule,
        timeout: Duration,
    ) -> Result<Readiness, TransportError> {
        match self.pane(agent) {
            Ok((socket, pane)) => ready::wait_ready(&socket, &pane, rule, timeout),
            Err(why) => Ok(Readiness::Down { why }),
        }
    }

    fn recent_output(&self, agent: &str, lines: usize) -> Result<String, TransportError> {
        let (socket, pane) = self.pane(agent).map_err(|why| no_session(agent, why))?;
        // A full-screen program draws on the alternate screen: its visible
        // screen is what it shows (the scrollback above it is from before
        // it started, and its last lines are often blank).
        let alternate = Self::query(
            &socket,
            &["display-message", "-p", "-t", &pane, "#{alternate_on}"],
        )?;
        if alternate.trim() == "1" {
            let screen = Self::query(&socket, &["capture-pane", "-p", "-t", &pane])?;
            let rows: Vec<&str> = screen.trim_end().lines().collect();
            return Ok(super::last_lines(&rows, rows.len()));
        }
        let start = format!("-{lines}");
        let text = Self::query(
            &socket,
            &["capture-pane", "-p", "-J", "-t", &pane, "-S", &start],
        )?;
        let all: Vec<&str> = text.trim_end().lines().collect();
        Ok(super::last_lines(&all, lines))
    }

    fn attach_command(&self, agent: &str) -> Result<Vec<OsString>, TransportError> {
        let (socket, _) = self.pane(agent).map_err(|why| no_session(agent, why))?;
        let mut argv: Vec<OsString> = ["tmux", "-L", &socket, "attach-session", "-t"]
            .into_iter()
            .map(OsString::from)
            .collect();
        argv.push(format!("={agent}").into());
        Ok(argv)
    }

    fn watch(&self, agent: &str) -> Result<viewer::Watched, TransportError> {
        let (socket, _) = self.pane(agent).map_err(|why| no_session(agent, why))?;
        viewer::watch(&socket, agent)
    }

    fn isolation_problems(&self, agents: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        for socket in std::iter::once(&self.default_socket).chain(self.sockets.values()) {
            if socket == "default" {
                problems.push(format!(
                    "the fleet uses the socket `default`, which is the operator's own tmux server; give tmux.socket_name another name (the default is {})",
                    crate::shared::profile::DEFAULT_SOCKET
                ));
            }
        }
        let listed = Self::query("default", &["list-sessions", "-F", "#{session_name}"]);
        for session in listed.as_deref().unwrap_or("").lines() {
            if !agents.iter().any(|a| a == session) {
                continue;
            }
            let target = format!("={session}");
            let env = Self::query(
                "default",
                &["show-environment", "-t", &target, "MOSAIC_AGENT_NAME"],
            );
            if env.is_ok_and(|line| line.trim() == format!("MOSAIC_AGENT_NAME={session}")) {
                problems.push(format!(
                    "agent {session} runs on the default tmux server (session ={session} has MOSAIC_AGENT_NAME={session}); fleet agents belong on tmux -L {}",
                    self.socket_of(session)
                ));
            }
        }
        problems
    }

    fn caller(&self) -> Option<String> {
        let tmux = std::env::var("TMUX").ok()?;
        let caller_socket = PathBuf::from(tmux.split(',').next()?);
        let dir = send_lock::socket_dir();
        let socket = std::iter::once(&self.default_socket)
            .chain(self.sockets.values())
            .find(|socket| same_file(&caller_socket, &dir.join(socket.as_str())))?;
        let mut args = vec!["display-message", "-p"];
        let pane = std::env::var("TMUX_PANE").unwrap_or_default();
        if !pane.is_empty() {
            args.extend(["-t", &pane]);
        }
        args.push("#S");
        let name = Self::query(socket, &args).ok()?;
        Some(name.trim().to_owned()).filter(|n| !n.is_empty())
    }

    fn launches(&self, agents: &[String]) -> Result<BTreeMap<String, Launch>, TransportError> {
        let mut found = BTreeMap::new();
        for (socket, names) in self.by_socket(agents) {
            if names.is_empty() {
                continue;
            }
            // No server on the socket: no session, which the caller reports.
            let panes = Self::query(socket, &["list-panes", "-a", "-F", launch::FORMAT]);
            let mut launches = launch::parse(panes.as_deref().unwrap_or(""));
            for name in names {
                if let Some(launch) = launches.remove(name.as_str()) {
                    found.insert(name.clone(), launch);
                }
            }
        }
        Ok(found)
    }
}

/// Whether two paths name the same file (a socket reached through a
/// symlinked temp directory is still the same socket).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Deliver every submission while holding the agent's send lock, once the
/// program is ready.
fn deliver_locked(
    socket: &str,
    pane: &str,
    agent: &str,
    submissions: &[String],
    options: &DeliveryOptions,
) -> Result<Delivery, TransportError> {
    let queue = send_lock::queue_dir(socket, agent);
    let _lock = match send_lock::acquire(&queue, options.lock_wait)? {
        LockWait::Acquired(lock) => lock,
        LockWait::TimedOut { ahead, holder } => {
            return Ok(Delivery::Busy {
                why: format!(
                    "{ahead} sender(s) ahead after waiting {} s (the agent is held by `{holder}`; queue {}); nothing was typed",
                    options.lock_wait.as_secs(),
                    queue.display()
                ),
            })
        }
    };
    match ready::wait_ready(socket, pane, &options.ready, options.ready_timeout)? {
        Readiness::Ready { .. } => {}
        Readiness::NotReady { why } => return Ok(Delivery::NotReady { why }),
        Readiness::Down { why } => return Ok(Delivery::Down { why }),
    }
    let bracketed = options.input == InputMode::Paste;
    let total = submissions.len();
    let mut enters = 0;
    for (index, text) in submissions.iter().enumerate() {
        let which = if total > 1 {
            format!("line {} of {total}: ", index + 1)
        } else {
            String::new()
        };
        match submit::submit(socket, pane, text, bracketed, options.attempts)? {
            Submitted::Accepted { enters: n } => enters += n,
            Submitted::Draft { enters: n } => {
                return Ok(Delivery::Draft {
                    enters: enters + n,
                    why: format!(
                        "{which}the text is still on the input line after {n} Enter presses; the program is not taking input"
                    ),
                })
            }
            Submitted::Unconfirmed { why } => {
                return Ok(Delivery::Unconfirmed {
                    why: format!("{which}{why}"),
                })
            }
            Submitted::Gone => {
                return Ok(Delivery::Down {
                    why: format!("{which}pane {pane} of agent {agent} is gone"),
                })
            }
        }
    }
    Ok(Delivery::Accepted {
        enters,
        submissions: u32::try_from(total).unwrap_or(u32::MAX),
    })
}
