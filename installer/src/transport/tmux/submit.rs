//! One submission into a pane, verified: the text goes into a uniquely
//! named buffer (`load-buffer -b NAME -`, from stdin, so no size or quoting
//! limits of a command line) and is pasted and the buffer deleted
//! (`paste-buffer -d`, bracketed with `-p` for programs that take a paste).
//! Enter is pressed once the paste shows on the input line, and again only
//! while the text still sits there after a long wait.
//!
//! Fail closed, and never press Enter on an empty input line:
//! - the paste never shows on the input line → `UNCONFIRMED`, no Enter (a
//!   program that lost the text would take Enter as an empty submission);
//! - after Enter, the text has left the input line and the pane changed →
//!   `ACCEPTED`; the pane went blank → `UNCONFIRMED`;
//! - the text (or the input line exactly as the paste left it, for programs
//!   that show a long paste as a summary) is still there → Enter again,
//!   after 2 s, 4 s, 6 s...; still there after the last → `DRAFT`.
//!
//! The waits are long because a busy program may keep the text on its
//! input line for a while after taking it, and an early second Enter would
//! then submit an empty line.

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::pane::PaneView;
use super::TmuxTransport;
use crate::transport::{draft_marker, TransportError};

/// How often a pane is looked at while waiting.
const POLL: Duration = Duration::from_millis(15);
/// How long the paste may take to show on the input line.
const ECHO_WAIT: Duration = Duration::from_secs(5);
/// The input line must stay the same this long before Enter, once the end
/// of the text shows (so Enter is not read as part of the paste)...
const SETTLE: Duration = Duration::from_millis(50);
/// ...or this long when the input line changed but the end of the text is
/// not on it (a summary of a long paste, or a paste still being drawn).
const SETTLE_UNSEEN: Duration = Duration::from_millis(300);
/// Enter attempt N waits N times this for the text to leave the input line.
const ATTEMPT_WAIT: Duration = Duration::from_secs(2);

/// How one submission ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Submitted {
    Accepted { enters: u32 },
    Draft { enters: u32 },
    Unconfirmed { why: String },
    Gone,
}

/// Paste `text` into `pane` on `socket` (bracketed when `bracketed`) and
/// press Enter until it has left the input line. An error leaves no buffer
/// behind.
pub(super) fn submit(
    socket: &str,
    pane: &str,
    text: &str,
    bracketed: bool,
    attempts: u32,
) -> Result<Submitted, TransportError> {
    let marker = draft_marker(text);
    let Some(before) = PaneView::read(socket, pane)? else {
        return Ok(Submitted::Gone);
    };
    paste(socket, pane, text, bracketed)?;
    let Some(pasted) = wait_for_echo(socket, pane, &before, &marker)? else {
        return Ok(match PaneView::read(socket, pane)? {
            None => Submitted::Gone,
            Some(_) => Submitted::Unconfirmed {
                why: format!(
                    "the text did not show on the input line within {} s, so Enter was not pressed; the program may have dropped it",
                    ECHO_WAIT.as_secs()
                ),
            },
        });
    };
    let still_there = |view: &PaneView| {
        (!marker.is_empty() && view.input_line.contains(&marker)) || view.same_input(&pasted)
    };
    let attempts = attempts.max(1);
    for attempt in 1..=attempts {
        TmuxTransport::query(socket, &["send-keys", "-t", pane, "Enter"])?;
        let deadline = Instant::now() + ATTEMPT_WAIT * attempt;
        let last = loop {
            let Some(view) = PaneView::read(socket, pane)? else {
                // The program ended on this text (`/exit`): it took it.
                return Ok(Submitted::Accepted { enters: attempt });
            };
            if !still_there(&view) && !view.blank() {
                return Ok(Submitted::Accepted { enters: attempt });
            }
            if Instant::now() >= deadline {
                break view;
            }
            std::thread::sleep(POLL);
        };
        if !still_there(&last) {
            // Blank: the input line is empty, so no second Enter.
            return Ok(Submitted::Unconfirmed {
                why: "the pane went blank after Enter, so the submit cannot be confirmed".into(),
            });
        }
    }
    Ok(Submitted::Draft { enters: attempts })
}

/// Wait for the paste to show on the input line and settle; the settled
/// view, or None when the input line never changed.
fn wait_for_echo(
    socket: &str,
    pane: &str,
    before: &PaneView,
    marker: &str,
) -> Result<Option<PaneView>, TransportError> {
    let deadline = Instant::now() + ECHO_WAIT;
    let mut settled: Option<(PaneView, Instant)> = None;
    loop {
        let Some(view) = PaneView::read(socket, pane)? else {
            return Ok(None);
        };
        let now = Instant::now();
        if view.same_input(before) {
            settled = None;
            if now >= deadline {
                return Ok(None);
            }
        } else {
            let seen = !marker.is_empty() && view.input_line.contains(marker);
            let settle = if seen { SETTLE } else { SETTLE_UNSEEN };
            match &settled {
                Some((last, since)) if last.same_input(&view) => {
                    // A line that never stops changing gets Enter anyway
                    // once the echo wait is over.
                    if now - *since >= settle || now >= deadline + SETTLE_UNSEEN {
                        return Ok(Some(view));
                    }
                }
                _ => settled = Some((view, now)),
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Load `text` into a fresh buffer and paste it (and delete it) into `pane`.
fn paste(socket: &str, pane: &str, text: &str, bracketed: bool) -> Result<(), TransportError> {
    let buffer = unique_buffer();
    load_buffer(socket, &buffer, text)?;
    let mut args = vec!["paste-buffer", "-d", "-b", &buffer, "-t", pane];
    if bracketed {
        args.insert(1, "-p");
    }
    if let Err(err) = TmuxTransport::query(socket, &args) {
        let _ = TmuxTransport::run(socket, &["delete-buffer", "-b", &buffer]);
        return Err(err);
    }
    Ok(())
}

/// A buffer name no other sender uses at the same time.
fn unique_buffer() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "mosaic-fleet-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn load_buffer(socket: &str, buffer: &str, text: &str) -> Result<(), TransportError> {
    let spawn = |cause| TransportError::Spawn {
        program: "tmux".into(),
        cause,
    };
    let mut child = TmuxTransport::command(socket)
        .args(["load-buffer", "-b", buffer, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    let written = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes());
    let out = child.wait_with_output().map_err(spawn)?;
    if written.is_err() || !out.status.success() {
        return Err(TransportError::Failed {
            command: format!("tmux -L {socket} load-buffer -b {buffer} -"),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}
