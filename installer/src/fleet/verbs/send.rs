//! `agent send`: a message to one agent, or to every agent with `--all`,
//! with the addressing preamble of `agent-send.sh`
//! (`[<src_host>:<src_session> -> <dst_host>:<dst_session>] <message>`),
//! delivered by the transport exactly once, whole, as one submission, or
//! with an outcome that says it was not.
//!
//! Everything that can be refused is refused before anything is sent, for
//! every recipient: control characters ([`super::message`]), an empty or
//! oversized message, and, for a runtime whose program reads lines
//! (`input: lines`), a multi-line message without `--lines` or a line over
//! the terminal's limit. One submission carries at most
//! [`MAX_MESSAGE_BYTES`] of message, because splitting it would turn one
//! message into several submissions the agent reads as separate turns.

use std::time::Duration;

use serde::Serialize;

use super::message;
use super::{Fleet, FleetError};
use crate::shared::profile::{InputMode, TERMINAL_LINE_MAX};
use crate::shared::transport::{Delivery, DeliveryOptions};

/// The largest message body (64 KiB), preamble not counted.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The sender label of someone who is not an agent of the fleet.
pub(crate) const OPERATOR: &str = "operator";

/// Who gets the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recipients {
    One(String),
    /// Every agent of the roster on this machine.
    All,
}

/// How to send, as the flags of `agent send` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendOptions {
    /// Enter presses before giving up on a draft.
    pub(crate) attempts: u32,
    /// Longest wait for the agent's program to be ready.
    pub(crate) ready_timeout: Duration,
    /// Longest wait for the senders ahead in the agent's queue.
    pub(crate) lock_wait: Duration,
    /// Strip control characters instead of refusing the message.
    pub(crate) sanitize: bool,
    /// One submission per line of the message.
    pub(crate) lines: bool,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            attempts: DeliveryOptions::ATTEMPTS,
            ready_timeout: DeliveryOptions::READY_TIMEOUT,
            lock_wait: DeliveryOptions::LOCK_WAIT,
            sanitize: false,
            lines: false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SendRequest {
    pub(crate) to: Recipients,
    pub(crate) body: String,
    /// Replaces `<src_host>:<src_session>` in the preamble.
    pub(crate) source: Option<String>,
    pub(crate) options: SendOptions,
}

/// What happened for one agent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SendResult {
    pub(crate) agent: String,
    /// `ACCEPTED`, `DRAFT`, `DOWN`, `UNCONFIRMED`, `NOT-READY` or `BUSY`.
    pub(crate) outcome: &'static str,
    pub(crate) delivery: Delivery,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SendReport {
    pub(crate) source: String,
    pub(crate) results: Vec<SendResult>,
}

impl SendReport {
    /// 0 when every agent accepted; else the code of the outcome that
    /// matters most, in this order: 1 (draft or unconfirmed: the text may
    /// sit unsubmitted), 5 (not ready), 6 (busy), 3 (down).
    pub(crate) fn exit_code(&self) -> u8 {
        [1, 5, 6, 3]
            .into_iter()
            .find(|code| self.results.iter().any(|r| r.delivery.exit_code() == *code))
            .unwrap_or(0)
    }
}

/// The text an agent receives.
pub(crate) fn with_preamble(source: &str, dst_host: &str, dst_session: &str, body: &str) -> String {
    format!("[{source} -> {dst_host}:{dst_session}] {body}")
}

/// The body as it will be sent: control characters refused (or stripped
/// with `sanitize`), line endings made LF, trailing newlines dropped (Enter
/// is what submits); empty and oversized messages refused.
pub(crate) fn prepare_body(body: &str, sanitize: bool) -> Result<String, FleetError> {
    let body = message::clean(body, sanitize).map_err(|found| FleetError::ControlCharacter {
        what: "the message".into(),
        found,
    })?;
    let body = body.trim_end_matches('\n');
    if body.trim().is_empty() {
        return Err(FleetError::EmptyMessage);
    }
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(FleetError::MessageTooLarge {
            bytes: body.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(body.to_owned())
}

/// The submissions one agent gets: the whole text as one; or, with
/// `lines`, each non-blank line as one (the preamble on the first). For a
/// program that reads lines, a multi-line text needs `lines`, and no line
/// may pass the terminal's limit.
pub(crate) fn submissions(
    agent: &str,
    preamble: &str,
    body: &str,
    input: InputMode,
    lines: bool,
) -> Result<Vec<String>, FleetError> {
    let texts: Vec<String> = if lines {
        body.split('\n')
            .filter(|line| !line.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                if i == 0 {
                    format!("{preamble}{line}")
                } else {
                    line.to_owned()
                }
            })
            .collect()
    } else {
        vec![format!("{preamble}{body}")]
    };
    if input == InputMode::Lines {
        let count = body.split('\n').count();
        if !lines && count > 1 {
            return Err(FleetError::MultiLineToLineReader {
                agent: agent.to_owned(),
                lines: count,
            });
        }
        if let Some((index, text)) = texts
            .iter()
            .enumerate()
            .find(|(_, text)| text.len() > TERMINAL_LINE_MAX)
        {
            return Err(FleetError::LineTooLong {
                agent: agent.to_owned(),
                line: index + 1,
                bytes: text.len(),
                limit: TERMINAL_LINE_MAX,
            });
        }
    }
    Ok(texts)
}

/// This host's short name (up to the first dot), as the scripts print it.
#[cfg(test)]
pub(crate) fn short_hostname() -> String {
    crate::shared::host::short(&crate::shared::host::machine()).to_owned()
}

/// `<src_host>:<src_session>`: the agent the caller is, when it runs inside
/// one of the fleet's agents, else `operator`, so that an operator never
/// speaks as an agent.
pub(crate) fn source_label(fleet: &Fleet<'_>, host: &str) -> String {
    let session = fleet
        .transport
        .caller()
        .unwrap_or_else(|| OPERATOR.to_owned());
    format!("{host}:{session}")
}

pub(crate) fn send(fleet: &Fleet<'_>, request: &SendRequest) -> Result<SendReport, FleetError> {
    let targets = match &request.to {
        Recipients::One(name) => vec![fleet.local_agent(name)?.name.clone()],
        Recipients::All => fleet.local_names(),
    };
    let options = request.options;
    let body = prepare_body(&request.body, options.sanitize)?;
    let host = crate::shared::host::short(&fleet.roster.host).to_owned();
    let source = match &request.source {
        Some(label) => message::clean(label, options.sanitize)
            .map_err(|found| FleetError::ControlCharacter {
                what: "the --from label".into(),
                found,
            })?
            .replace('\n', " "),
        None => source_label(fleet, &host),
    };
    // Every refusal comes before the first agent is typed into.
    let mut planned = Vec::new();
    for agent in targets {
        let view = fleet.agent(&agent)?;
        let settings = fleet.roster.profile.roster.runtime(&view.runtime);
        let mut delivery = DeliveryOptions::for_runtime(&settings);
        delivery.attempts = options.attempts;
        delivery.ready_timeout = options.ready_timeout;
        delivery.lock_wait = options.lock_wait;
        let preamble = with_preamble(&source, &host, &agent, "");
        let texts = submissions(&agent, &preamble, &body, delivery.input, options.lines)?;
        planned.push((agent, texts, delivery));
    }
    // Broadcasts skip agents already known to be down instead of trying.
    let alive = match request.to {
        Recipients::All => Some(fleet.transport.sessions(&planned_names(&planned))?),
        Recipients::One(_) => None,
    };
    let mut results = Vec::new();
    for (agent, texts, delivery_options) in planned {
        let down = alive
            .as_ref()
            .and_then(|view| view.agents.get(&agent))
            .is_some_and(|state| !state.alive);
        let delivery = if down {
            Delivery::Down {
                why: format!("agent {agent} has no live session"),
            }
        } else {
            fleet.transport.deliver(&agent, &texts, &delivery_options)?
        };
        results.push(SendResult {
            agent,
            outcome: delivery.word(),
            delivery,
        });
    }
    Ok(SendReport { source, results })
}

fn planned_names(planned: &[(String, Vec<String>, DeliveryOptions)]) -> Vec<String> {
    planned.iter().map(|(agent, _, _)| agent.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::command::ExitStatus;

    #[test]
    fn preamble_matches_agent_send() {
        assert_eq!(
            with_preamble("h1:me", "h2", "worker-1", "hi $x"),
            "[h1:me -> h2:worker-1] hi $x"
        );
    }

    #[test]
    fn body_limits() {
        assert_eq!(prepare_body("hi\r\n\n", false).unwrap(), "hi");
        assert!(matches!(
            prepare_body(" \n\t", false),
            Err(FleetError::EmptyMessage)
        ));
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(
            prepare_body(&exact, false).unwrap().len(),
            MAX_MESSAGE_BYTES
        );
        let over = "é".repeat(MAX_MESSAGE_BYTES / 2 + 1);
        assert!(matches!(
            prepare_body(&over, false),
            Err(FleetError::MessageTooLarge { bytes, .. }) if bytes == MAX_MESSAGE_BYTES + 2
        ));
    }

    #[test]
    fn control_characters_are_refused_or_stripped() {
        let err = prepare_body("ab\x1b[201~\r", false).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the message contains ESC (0x1b) at byte 2"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
        assert_eq!(prepare_body("ab\x1b[201~\r", true).unwrap(), "ab[201~");
    }

    #[test]
    fn line_readers_get_lines() {
        let one = submissions("q", "[p] ", "a\nb", InputMode::Paste, false).unwrap();
        assert_eq!(one, ["[p] a\nb"]);
        let err = submissions("q", "[p] ", "a\nb", InputMode::Lines, false).unwrap_err();
        assert!(matches!(
            err,
            FleetError::MultiLineToLineReader { lines: 2, .. }
        ));
        let lines = submissions("q", "[p] ", "a\n\n  \nb", InputMode::Lines, true).unwrap();
        assert_eq!(lines, ["[p] a", "b"]);
        let long = "x".repeat(TERMINAL_LINE_MAX - 4);
        assert!(submissions("q", "[p] ", &long, InputMode::Lines, false).is_ok());
        let err =
            submissions("q", "[p] ", &format!("{long}y"), InputMode::Lines, false).unwrap_err();
        assert!(
            matches!(err, FleetError::LineTooLong { line: 1, bytes, .. } if bytes == TERMINAL_LINE_MAX + 1)
        );
        // A paste program takes the long line whole.
        assert!(submissions("q", "[p] ", &format!("{long}y"), InputMode::Paste, false).is_ok());
    }

    #[test]
    fn hostname_is_short() {
        let host = short_hostname();
        assert!(!host.is_empty() && !host.contains('.'), "{host}");
    }
}
