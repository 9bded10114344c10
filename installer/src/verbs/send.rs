//! `agent send`: a message to one agent, or to every agent with `--all`,
//! with the addressing preamble of `agent-send.sh`
//! (`[<src_host>:<src_session> -> <dst_host>:<dst_session>] <message>`) and
//! the reliable submit of `send-message.sh` (through the transport).
//!
//! One submission carries at most [`MAX_MESSAGE_BYTES`] of message: a larger
//! text is refused before anything is sent, because splitting it would turn
//! one message into several submissions the agent reads as separate turns.

use serde::Serialize;

use super::{Fleet, FleetError};
use crate::transport::{Delivery, SubmitOptions};

/// The largest message body (64 KiB), preamble not counted.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Who gets the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    One(String),
    /// Every agent of the roster on this machine.
    All,
}

#[derive(Debug, Clone)]
pub struct SendRequest {
    pub to: Recipients,
    pub body: String,
    /// Replaces `<src_host>:<src_session>` in the preamble.
    pub source: Option<String>,
    pub options: SubmitOptions,
}

/// What happened for one agent.
#[derive(Debug, Clone, Serialize)]
pub struct SendResult {
    pub agent: String,
    /// `ACCEPTED`, `DRAFT` or `DOWN`.
    pub outcome: &'static str,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    pub source: String,
    pub results: Vec<SendResult>,
}

impl SendReport {
    /// 0 when every agent accepted; 1 when one holds a draft; else 3 (down),
    /// as send-message.sh exits.
    pub fn exit_code(&self) -> u8 {
        let any = |word: &str| self.results.iter().any(|r| r.outcome == word);
        if any("DRAFT") {
            1
        } else if any("DOWN") {
            3
        } else {
            0
        }
    }
}

/// The text an agent receives.
pub fn with_preamble(source: &str, dst_host: &str, dst_session: &str, body: &str) -> String {
    format!("[{source} -> {dst_host}:{dst_session}] {body}")
}

/// Trailing newlines dropped (Enter is what submits); empty and oversized
/// messages refused.
pub fn prepare_body(body: &str) -> Result<String, FleetError> {
    let body = body.trim_end_matches(['\n', '\r']);
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

/// This machine's short name (up to the first dot), as the scripts print it.
pub fn short_hostname() -> String {
    crate::host::short(&crate::host::machine()).to_owned()
}

/// `<src_host>:<src_session>`: the caller's session on the transport when
/// it runs in one, else the user's name.
pub fn source_label(fleet: &Fleet<'_>, host: &str) -> String {
    let session = fleet
        .transport
        .caller()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "shell".to_owned());
    format!("{host}:{session}")
}

pub fn send(fleet: &Fleet<'_>, request: &SendRequest) -> Result<SendReport, FleetError> {
    let targets = match &request.to {
        Recipients::One(name) => vec![fleet.local_agent(name)?.name.clone()],
        Recipients::All => fleet.local_names(),
    };
    let body = prepare_body(&request.body)?;
    let host = crate::host::short(&fleet.roster.host).to_owned();
    let source = request
        .source
        .clone()
        .unwrap_or_else(|| source_label(fleet, &host));
    // Broadcasts skip agents already known to be down instead of trying.
    let alive = match request.to {
        Recipients::All => Some(fleet.transport.sessions(&targets)?),
        Recipients::One(_) => None,
    };
    let mut results = Vec::new();
    for agent in targets {
        let down = alive
            .as_ref()
            .and_then(|view| view.agents.get(&agent))
            .is_some_and(|state| !state.alive);
        let delivery = if down {
            Delivery::Down {
                why: format!("agent {agent} has no live session"),
            }
        } else {
            let text = with_preamble(&source, &host, &agent, &body);
            fleet.transport.deliver(&agent, &text, request.options)?
        };
        results.push(SendResult {
            agent,
            outcome: delivery.word(),
            delivery,
        });
    }
    Ok(SendReport { source, results })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_matches_agent_send() {
        assert_eq!(
            with_preamble("h1:me", "h2", "worker-1", "hi $x"),
            "[h1:me -> h2:worker-1] hi $x"
        );
    }

    #[test]
    fn body_limits() {
        assert_eq!(prepare_body("hi\n\n").unwrap(), "hi");
        assert!(matches!(
            prepare_body(" \n\t"),
            Err(FleetError::EmptyMessage)
        ));
        let exact = "x".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(prepare_body(&exact).unwrap().len(), MAX_MESSAGE_BYTES);
        let over = "é".repeat(MAX_MESSAGE_BYTES / 2 + 1);
        assert!(matches!(
            prepare_body(&over),
            Err(FleetError::MessageTooLarge { bytes, .. }) if bytes == MAX_MESSAGE_BYTES + 2
        ));
    }

    #[test]
    fn hostname_is_short() {
        let host = short_hostname();
        assert!(!host.is_empty() && !host.contains('.'), "{host}");
    }
}
