//! Transports: how the fleet verbs reach agents, behind one trait. The verbs
//! in [`crate::fleet::verbs`] depend only on [`Transport`] (and on the service
//! manager traits), never on tmux itself.
//!
//! [`tmux::TmuxTransport`] is the transport today: every command carries
//! `-L <socket>`, every target is exact (`=NAME:` resolved to a pane id), and
//! the operator's default server is never addressed. `memory::MemoryFleet`
//! (tests only) is an in-memory fleet (transport and service manager in one) for testing
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
//! - [`Transport::deliver`]: send one `m.room.message` per submission (the
//!   preamble becomes the sender's user id and the room, so the body is the
//!   message alone); `Accepted` once the agent's read receipt passes the
//!   event, `Draft` when no receipt arrives in time (the agent is busy),
//!   `Down` when the room or bot is gone. There is no input line, so no
//!   Enter retries, no shared terminal and so no per-agent lock (`Busy`
//!   never happens), and control characters are plain text.
//! - [`Transport::wait_ready`]: the bot's presence is online.
//! - [`Transport::recent_output`]: the room's last N messages from the agent.
//! - [`Transport::attach_command`]: a client deep link, or an error saying a
//!   room cannot be attached to from a terminal.
//! - [`Transport::watch`]: a read-only client view of the room, or that
//!   same error.
//! - [`Transport::isolation_problems`]: agents' rooms are private and not
//!   federated beyond the configured homeserver.
//! - [`Transport::caller`]: the agent whose bot credentials the caller
//!   holds, if any.
//! - [`Transport::launches`]: the bot's current login (a device id) as the
//!   launch, and the runtime it announced as the command.
//!
//! The systemd side (units that keep each agent's process running) would not
//! change; nor would any verb, its flags, its output or its exit codes.

#[cfg(test)]
pub(crate) mod memory;
pub(crate) mod tmux;

pub(crate) use tmux::viewer::Watched;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::shared::profile::{InputMode, RuntimeSettings};

/// What the transport sees of one agent's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionState {
    /// The agent's session exists and its program has not exited.
    pub(crate) alive: bool,
    /// The program in the foreground of the agent's pane (`claude`, `bash`).
    pub(crate) command: Option<String>,
    /// Seconds since the pane last printed anything.
    pub(crate) idle_secs: Option<u64>,
}

impl SessionState {
    pub(crate) fn down() -> SessionState {
        SessionState {
            alive: false,
            command: None,
            idle_secs: None,
        }
    }
}

/// The whole fleet as the transport sees it, from one query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FleetView {
    /// Whether the holder (the server that carries every session) is up.
    pub(crate) holder_up: bool,
    /// Per agent asked about; agents without a session are `down()`.
    pub(crate) agents: BTreeMap<String, SessionState>,
}

/// How one agent's session was launched, as a rollout verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Launch {
    /// Which launch this is: a session that ends and is created again (by
    /// the unit's restart, say) has a new id.
    pub(crate) id: String,
    /// The command the session was started with, as given; None when the
    /// transport cannot tell.
    pub(crate) command: Option<String>,
}

/// How a delivery ended. Each outcome has its exit code ([`Delivery::exit_code`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "SCREAMING-KEBAB-CASE")]
pub(crate) enum Delivery {
    /// Every submission left the input line and the pane changed: the
    /// program took the text.
    Accepted {
        /// Enter presses it took, over all submissions.
        enters: u32,
        /// Submissions made (one, or one per line with `--lines`).
        submissions: u32,
    },
    /// The text still sits on the input line, unsubmitted, after every
    /// Enter attempt.
    Draft { enters: u32, why: String },
    /// No session to deliver to.
    Down { why: String },
    /// The submit cannot be confirmed: the text never showed on the input
    /// line (so Enter was not pressed), or the pane is blank.
    Unconfirmed { why: String },
    /// The program did not become ready for input in time; nothing was typed.
    NotReady { why: String },
    /// Another sender held the agent for longer than the lock wait; nothing
    /// was typed.
    Busy { why: String },
}

impl Delivery {
    /// `ACCEPTED`, `DRAFT`, `DOWN`, `UNCONFIRMED`, `NOT-READY` or `BUSY`.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            Delivery::Accepted { .. } => "ACCEPTED",
            Delivery::Draft { .. } => "DRAFT",
            Delivery::Down { .. } => "DOWN",
            Delivery::Unconfirmed { .. } => "UNCONFIRMED",
            Delivery::NotReady { .. } => "NOT-READY",
            Delivery::Busy { .. } => "BUSY",
        }
    }

    /// The exit code of `mosaic-fleet agent send` and `send-message.sh`
    /// for this outcome: 0 accepted; 1 draft or unconfirmed (the text may
    /// sit unsubmitted); 3 down; 5 not ready; 6 busy. (2 is bad input and 4
    /// a failed tmux command, which are errors, not outcomes.)
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Delivery::Accepted { .. } => 0,
            Delivery::Draft { .. } | Delivery::Unconfirmed { .. } => 1,
            Delivery::Down { .. } => 3,
            Delivery::NotReady { .. } => 5,
            Delivery::Busy { .. } => 6,
        }
    }

    /// Why it was not accepted (None when it was).
    pub(crate) fn why(&self) -> Option<&str> {
        match self {
            Delivery::Accepted { .. } => None,
            Delivery::Draft { why, .. }
            | Delivery::Down { why }
            | Delivery::Unconfirmed { why }
            | Delivery::NotReady { why }
            | Delivery::Busy { why } => Some(why),
        }
    }
}

/// When an agent counts as ready for input.
#[derive(Debug, Clone)]
pub(crate) struct ReadyRule {
    /// Matches the visible screen once the program can take input (the
    /// runtime's `ready_pattern`). When set, it alone decides.
    pub(crate) pattern: Option<regex::Regex>,
    /// Without a pattern: the screen must stay unchanged this long...
    pub(crate) quiet: Duration,
    /// ...the program in the foreground must have run this long...
    pub(crate) min_age: Duration,
    /// ...and (for `input: paste`) it must have taken the terminal out of
    /// line mode, as every interactive program does once it reads keys.
    pub(crate) raw_terminal: bool,
}

impl ReadyRule {
    /// The quiet window without a pattern.
    pub(crate) const QUIET: Duration = Duration::from_millis(500);
    /// How long a program must have run without a pattern.
    pub(crate) const MIN_AGE: Duration = Duration::from_secs(2);

    /// The rule for a runtime: its `ready_pattern` (already validated by the
    /// roster, so it compiles), else the quiet window and age, and the raw
    /// terminal for programs that take a paste.
    pub(crate) fn for_runtime(settings: &RuntimeSettings) -> ReadyRule {
        ReadyRule {
            pattern: settings
                .ready_pattern
                .as_deref()
                .and_then(|p| regex::Regex::new(p).ok()),
            quiet: Self::QUIET,
            min_age: Self::MIN_AGE,
            raw_terminal: settings.input.unwrap_or_default() == InputMode::Paste,
        }
    }
}

/// How to deliver: the runtime's input mode and readiness, and how long to
/// wait for the agent's lock, its readiness and its Enter.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryOptions {
    /// Enter presses before giving up on a draft (send-message.sh's `-r`).
    pub(crate) attempts: u32,
    pub(crate) input: InputMode,
    pub(crate) ready: ReadyRule,
    /// Longest wait for the program to become ready.
    pub(crate) ready_timeout: Duration,
    /// Longest wait for the senders ahead in the agent's queue.
    pub(crate) lock_wait: Duration,
}

impl DeliveryOptions {
    pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);
    pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(60);
    pub(crate) const ATTEMPTS: u32 = 3;

    /// The defaults for a runtime's settings.
    pub(crate) fn for_runtime(settings: &RuntimeSettings) -> DeliveryOptions {
        DeliveryOptions {
            attempts: Self::ATTEMPTS,
            input: settings.input.unwrap_or_default(),
            ready: ReadyRule::for_runtime(settings),
            ready_timeout: Self::READY_TIMEOUT,
            lock_wait: Self::LOCK_WAIT,
        }
    }
}

/// Whether an agent became ready for input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub(crate) enum Readiness {
    Ready { waited_ms: u64 },
    NotReady { why: String },
    Down { why: String },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("cannot run {program}: {cause}; is it installed and on PATH?")]
    Spawn {
        program: String,
        cause: std::io::Error,
    },
    #[error("`{command}` failed: {message}")]
    Failed { command: String, message: String },
    #[error("agent {agent} has no live session {where_}")]
    NoSession { agent: String, where_: String },
    #[error("cannot {what} the agent's send queue {}: {cause}; check that directory's owner and permissions", path.display())]
    Lock {
        what: String,
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
}

/// What the verbs need from whatever carries messages to agents.
pub(crate) trait Transport {
    /// Where the fleet lives, for people: `tmux -L mosaic-fleet`.
    fn describe(&self) -> String;

    /// The holder and every named agent's session, in one query.
    fn sessions(&self, agents: &[String]) -> Result<FleetView, TransportError>;

    /// Submit each of `submissions` to the agent's input, in order, as one
    /// submission each, while no other sender (of any tool) types into the
    /// agent: wait for the agent's lock and for the program to be ready,
    /// then paste and press Enter until the text has left the input line.
    /// Either every submission is accepted or the outcome says which step
    /// failed; nothing is ever typed into a program that is not ready.
    fn deliver(
        &self,
        agent: &str,
        submissions: &[String],
        options: &DeliveryOptions,
    ) -> Result<Delivery, TransportError>;

    /// Wait until the agent's program can take input (or `timeout` passes).
    fn wait_ready(
        &self,
        agent: &str,
        rule: &ReadyRule,
        timeout: Duration,
    ) -> Result<Readiness, TransportError>;

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

    /// The agent the caller is, when it runs inside one of the fleet's
    /// agents (tmux: a pane on one of the fleet's sockets), for the
    /// addressing preamble; None for anyone else (an operator).
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
pub(crate) fn draft_marker(text: &str) -> String {
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
    fn delivery_words_and_exit_codes() {
        let why = || "x".to_owned();
        let all = [
            Delivery::Accepted {
                enters: 1,
                submissions: 1,
            },
            Delivery::Draft {
                enters: 3,
                why: why(),
            },
            Delivery::Down { why: why() },
            Delivery::Unconfirmed { why: why() },
            Delivery::NotReady { why: why() },
            Delivery::Busy { why: why() },
        ];
        let words: Vec<_> = all.iter().map(|d| (d.word(), d.exit_code())).collect();
        assert_eq!(
            words,
            [
                ("ACCEPTED", 0),
                ("DRAFT", 1),
                ("DOWN", 3),
                ("UNCONFIRMED", 1),
                ("NOT-READY", 5),
                ("BUSY", 6)
            ]
        );
        let json = serde_json::to_value(&all[4]).unwrap();
        assert_eq!(json["outcome"], "NOT-READY");
    }
}
