//! The fleet's tmux side: queries against one named tmux server. Every
//! command carries `-L <socket>` and every session target is exact-match
//! (`=name`), so `agent-1` never hits `agent-10` and the operator's default
//! server is only ever read, by its explicit name `default`.

// This module owns tmux: every tmux command of the crate is built here.
#![allow(clippy::disallowed_types)]

use std::process::{Command, Output};

/// One tmux server, addressed by socket name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TmuxServer {
    pub(crate) socket: String,
}

/// A session as `list-sessions` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct SessionInfo {
    pub(crate) name: String,
    /// Unix time the session was created: a recreated session differs.
    pub(crate) created: String,
}

impl TmuxServer {
    pub(crate) fn new(socket: &str) -> TmuxServer {
        TmuxServer {
            socket: socket.to_owned(),
        }
    }

    /// The operator's default server, for read-only checks.
    pub(crate) fn default_server() -> TmuxServer {
        TmuxServer::new("default")
    }

    /// `tmux -u -L <socket>`, the one way this crate builds a tmux command
    /// (without `$TMUX`, so a caller inside tmux cannot redirect it). `-u`:
    /// without a UTF-8 locale (an ssh login on a host whose locale is unset)
    /// tmux prints the tabs of our `-F` formats as `_`, and every agent would
    /// read as down.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command
            .env_remove("TMUX")
            .arg("-u")
            .arg("-L")
            .arg(&self.socket);
        command
    }

    fn run(&self, args: &[&str]) -> std::io::Result<Output> {
        self.command().args(args).output()
    }

    /// Whether the server runs and answers.
    pub(crate) fn running(&self) -> bool {
        self.run(&["list-sessions"])
            .is_ok_and(|out| out.status.success())
    }

    /// Whether a session called exactly `name` exists.
    pub(crate) fn has_session(&self, name: &str) -> bool {
        self.run(&["has-session", "-t", &format!("={name}")])
            .is_ok_and(|out| out.status.success())
    }

    /// The sessions of this server; empty when it does not run.
    pub(crate) fn sessions(&self) -> Vec<SessionInfo> {
        let Ok(out) = self.run(&["list-sessions", "-F", "#{session_name}\t#{session_created}"])
        else {
            return Vec::new();
        };
        if !out.status.success() {
            return Vec::new();
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let (name, created) = line.split_once('\t')?;
                Some(SessionInfo {
                    name: name.to_owned(),
                    created: created.to_owned(),
                })
            })
            .collect()
    }
}
