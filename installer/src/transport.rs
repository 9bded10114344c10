//! Transports: how the fleet verbs reach agents, behind one trait. The verbs
//! in [`crate::verbs`] depend only on [`Transport`] (and on the service
//! manager traits), never on tmux itself.
//!
//! [`tmux::TmuxTransport`] is the transport today: every command carries
//! `-L <socket>`, every target is exact (`=NAME:` resolved to a pane id), and
//! the operator's default server is never addressed. [`memory::MemoryFleet`]
//! is an in-memory fleet (transport and service manager in one) for testing
//! the verbs' logic in isolation.
//!
//! # A Matrix transport
//!
//! Mosaic plans to move agent messaging to Matrix. A `MatrixTransport` would
//! map each agent to a room (and the agent's bot user) and implement:
//!
//! - [`Transport::sessions`]: one `/sync` (or the rooms' latest events) for
//!   all agents: alive = the agent's bot is joined and its presence is
//!   online; `command` = the runtime it announces in its state event; `idle`
//!   = time since its last event in the room.
//! - [`Transport::deliver`]: send one `m.room.message` (the preamble becomes
//!   the sender's user id and the room, so the body is the message alone);
//!   `Accepted` once the agent's read receipt passes the event, `Draft` when
//!   no receipt arrives in time (the agent is busy), `Down` when the room or
//!   bot is gone. There is no input line, so no Enter retries.
//! - [`Transport::recent_output`]: the room's last N messages from the agent.
//! - [`Transport::attach_command`]: `Err(Unsupported)`, or a client deep link.
//! - [`Transport::watch`]: a read-only client view of the room, or
//!   `Err(Unsupported)`.
//! - [`Transport::isolation_problems`]: agents' rooms are private and not
//!   federated beyond the configured homeserver.
//! - [`Transport::caller`]: the sending user's id.
//! - [`Transport::launches`]: the bot's current login (a device id) as the
//!   launch, and the runtime it announced as the command.
//!
//! The systemd side (units that keep each agent's process running) would not
//! change; nor would any verb, its flags, its output or its exit codes.

pub mod memory;
pub mod tmux;

pub use tmux::viewer::Watched;

use std::collections::BTreeMap;
use std::ffi::OsString;

use serde::{Deserialize, Serialize};

/// What the transport sees of one agent's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// The agent's session exists and its program has not exited.
    pub alive: bool,
    /// The program in the foreground of the agent's pane (`claude`, `bash`).
    pub command: Option<String>,
    /// Seconds since the pane last printed anything.
    pub idle_secs: Option<u64>,
}

impl SessionState {
    pub fn down() -> SessionState {
        SessionState {
            alive: false,
            command: None,
            idle_secs: None,
        }
    }
}

/// The whole fleet as the transport sees it, from one query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetView {
    /// Whether the holder (the server that carries every session) is up.
    pub holder_up: bool,
    /// Per agent asked about; agents without a session are `down()`.
    pub agents: BTreeMap<String, SessionState>,
}

/// How one agent's session was launched, as a rollout verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Launch {
    /// Which launch this is: a session that ends and is created again (by
    /// the unit's restart, say) has a new id.
    pub id: String,
    /// The command the session was started with, as given; None when the
    /// transport cannot tell.
    pub command: Option<String>,
}

/// How a submission ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Delivery {
    /// The text left the input line: the program took it.
    Accepted {
        /// Enter presses it took.
        enters: u32,
    },
    /// The text still sits on the input line, unsubmitted.
    Draft { enters: u32 },
    /// No session to deliver to.
    Down { why: String },
}

impl Delivery {
    /// `ACCEPTED`, `DRAFT` or `DOWN`.
    pub fn word(&self) -> &'static str {
        match self {
            Delivery::Accepted { .. } => "ACCEPTED",
            Delivery::Draft { .. } => "DRAFT",
            Delivery::Down { .. } => "DOWN",
        }
    }
}

/// How hard to try when submitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmitOptions {
    /// Enter presses before giving up on a draft (send-message.sh's `-r`).
    pub attempts: u32,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions { attempts: 3 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot run {program}: {cause}; is it installed and on PATH?")]
    Spawn {
        program: String,
        cause: std::io::Error,
    },
    #[error("`{command}` failed: {message}")]
    Failed { command: String, message: String },
    #[error("agent {agent} has no live session {where_}")]
    NoSession { agent: String, where_: String },
    #[error("{0} is not supported by this transport")]
    Unsupported(&'static str),
}

/// What the verbs need from whatever carries messages to agents.
pub trait Transport {
    /// Where the fleet lives, for people: `tmux -L mosaic-fleet`.
    fn describe(&self) -> String;

    /// The holder and every named agent's session, in one query.
    fn sessions(&self, agents: &[String]) -> Result<FleetView, TransportError>;

    /// Submit `text` to the agent's input as one paste, then Enter, retried
    /// while the text still sits there as a draft.
    fn deliver(
        &self,
        agent: &str,
        text: &str,
        options: SubmitOptions,
    ) -> Result<Delivery, TransportError>;

    /// The last `lines` lines the agent's pane shows (scrollback included);
    /// for a full-screen program, its whole visible screen.
    fn recent_output(&self, agent: &str, lines: usize) -> Result<String, TransportError>;

    /// The program and arguments that attach a terminal to the agent, to
    /// work with it.
    fn attach_command(&self, agent: &str) -> Result<Vec<OsString>, TransportError>;

    /// Show the agent on this terminal without side effects: read-only,
    /// the agent's window size unchanged, nothing left behind. Returns when
    /// the viewer detaches (or the agent's session ends).
    fn watch(&self, agent: &str) -> Result<Watched, TransportError>;

    /// Ways fleet state leaked where the operator's own sessions live
    /// (tmux: an agent session on the default server); empty when none.
    fn isolation_problems(&self, agents: &[String]) -> Vec<String>;

    /// The name the caller goes by on this transport (tmux: the session it
    /// runs in), for the addressing preamble; None outside the transport.
    fn caller(&self) -> Option<String>;

    /// The launch of each named agent's live session, in one query; agents
    /// without a live session are absent. What a rollout watches while a
    /// freshly started wave settles: a crash shows as a missing or new id.
    fn launches(&self, agents: &[String]) -> Result<BTreeMap<String, Launch>, TransportError>;
}

/// The end of a message's last line that shows it is still on the input
/// line: at most 16 characters, trailing whitespace and anything up to the
/// last control character dropped (terminals show those differently). The
/// same marker send-message.sh uses.
pub fn draft_marker(text: &str) -> String {
    let trimmed = text.trim_end();
    let last_line = trimmed.rsplit('\n').next().unwrap_or("");
    let tail: Vec<char> = last_line.chars().collect();
    let start = tail.len().saturating_sub(16);
    let tail = &tail[start..];
    let after_control = tail
        .iter()
        .rposition(|c| c.is_control())
        .map_or(0, |at| at + 1);
    tail[after_control..].iter().collect()
}

/// The last `n` of `lines`, each ending in a newline: what `recent_output`
/// returns for every transport.
fn last_lines<S: AsRef<str>>(lines: &[S], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|line| format!("{}\n", line.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_marker_is_the_end_of_the_last_line() {
        assert_eq!(draft_marker("hello world"), "hello world");
        assert_eq!(
            draft_marker("a\nsecond line here  \n\n"),
            "second line here"
        );
        assert_eq!(draft_marker("0123456789abcdefghijXYZ"), "789abcdefghijXYZ");
        assert_eq!(
            draft_marker("ünïcødé ✓ 日本語 100% the end")
                .chars()
                .count(),
            16
        );
        assert_eq!(draft_marker("tab\there"), "here");
        assert_eq!(draft_marker("   \n  "), "");
    }

    #[test]
    fn delivery_words() {
        assert_eq!(Delivery::Accepted { enters: 1 }.word(), "ACCEPTED");
        assert_eq!(Delivery::Draft { enters: 3 }.word(), "DRAFT");
        assert_eq!(Delivery::Down { why: "x".into() }.word(), "DOWN");
    }
}
