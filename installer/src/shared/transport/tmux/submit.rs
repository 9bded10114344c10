//! One submission into a pane, verified: the text goes into a uniquely
//! named buffer (`load-buffer -b NAME -`, from stdin, so no size or quoting
//! limits of a command line) and is pasted and the buffer deleted
//! (`paste-buffer -d`, bracketed with `-p` for programs that take a paste).
//! Enter is pressed once the paste shows in the input region, and again
//! only while the text still sits there after a long wait.
//!
//! Fail closed, and never press Enter on an empty input line:
//! - the paste never shows → `UNCONFIRMED`, no Enter (a program that lost
//!   the text would take Enter as an empty submission). It shows when the
//!   input line (the cursor's) changes, the end of the text appears on the
//!   screen once more, or, weakest, the screen changes; then it must settle;
//! - the input region is the input line and the rows the paste changed;
//! - after Enter, the text has left: the end of the text is not on the input
//!   line and the input region no longer reads as the paste left it (the
//!   pane changed) → `ACCEPTED`; the pane went blank → `UNCONFIRMED`;
//! - the text is still there → Enter again, after 2 s, 4 s, 6 s...; still
//!   there after the last → `DRAFT`.
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
use crate::shared::transport::{draft_marker, TransportError};

/// How often a pane is looked at while waiting.
const POLL: Duration = Duration::from_millis(15);
/// How long the paste may take to show.
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
    let region = pasted.changed_rows(&before);
    // The end of the text on the input line says nothing when it was there
    // before the paste already.
    let marker_tells = !marker.is_empty() && !before.input_line.contains(&marker);
    let still_there = |view: &PaneView| {
        (marker_tells && view.input_line.contains(&marker))
            || (view.same_input(&pasted) && view.same_rows(&pasted, &region))
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

/// How sure a look is that the paste shows, and what must stay still for
/// it to have settled.
#[derive(PartialEq, Eq)]
enum Echo {
    /// The end of the text is on the input line, or once more on the
    /// screen: the cursor, the input line and that count must settle.
    Seen((u32, u32), String, usize),
    /// The input line changed without it (a summary of a long paste):
    /// the cursor and the input line must settle, for longer.
    InputChanged((u32, u32), String),
    /// Only the screen changed: all of it must settle, for longer.
    ScreenChanged(PaneView),
}

impl Echo {
    fn of(view: &PaneView, before: &PaneView, marker: &str) -> Option<Echo> {
        let count = view.marker_count(marker);
        // The end of the text on the input line counts when it was not
        // there before, or the input line changed since.
        let on_line = !marker.is_empty()
            && view.input_line.contains(marker)
            && (!before.input_line.contains(marker) || !view.same_input(before));
        if on_line || count > before.marker_count(marker) {
            return Some(Echo::Seen(view.cursor, view.input_line.clone(), count));
        }
        if !view.same_input(before) {
            return Some(Echo::InputChanged(view.cursor, view.input_line.clone()));
        }
        (view.screen != before.screen).then(|| Echo::ScreenChanged(view.clone()))
    }

    fn settle(&self) -> Duration {
        match self {
            Echo::Seen(..) => SETTLE,
            _ => SETTLE_UNSEEN,
        }
    }
}

/// Wait for the paste to show and settle; the settled view, or None when
/// nothing showed.
fn wait_for_echo(
    socket: &str,
    pane: &str,
    before: &PaneView,
    marker: &str,
) -> Result<Option<PaneView>, TransportError> {
    let deadline = Instant::now() + ECHO_WAIT;
    let mut settling: Option<(Echo, Instant)> = None;
    loop {
        let Some(view) = PaneView::read(socket, pane)? else {
            return Ok(None);
        };
        let now = Instant::now();
        match Echo::of(&view, before, marker) {
            None => {
                settling = None;
                if now >= deadline {
                    return Ok(None);
                }
            }
            // A screen that never stops changing gets Enter anyway once the
            // echo wait is over: it did change.
            Some(_) if now >= deadline + SETTLE_UNSEEN => return Ok(Some(view)),
            Some(echo) => match &settling {
                Some((last, since)) if *last == echo => {
                    if now - *since >= echo.settle() {
                        return Ok(Some(view));
                    }
                }
                _ => settling = Some((echo, now)),
            },
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
