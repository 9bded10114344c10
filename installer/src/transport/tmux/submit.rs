//! The reliable submit of `send-message.sh`, natively: the text goes into a
//! uniquely named buffer (`load-buffer -b NAME -`, from stdin, so no size or
//! quoting limits of a command line), is pasted as one bracketed paste and
//! the buffer deleted (`paste-buffer -p -d`), then Enter is pressed, and
//! pressed again with a growing wait for as long as the end of the text
//! still sits on the line under the cursor (an unsubmitted draft). The pane
//! is addressed by its id on the named socket. Polling is finer than the
//! script's, which is where its speed comes from; the checks are the same.

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::TmuxTransport;
use crate::transport::{draft_marker, Delivery, SubmitOptions, TransportError};

/// How often a pane is looked at while waiting.
const POLL: Duration = Duration::from_millis(15);
/// How long the pasted text may take to show up (a program that does not
/// echo is given this long before Enter).
const ECHO_WAIT: Duration = Duration::from_secs(1);
/// Pause between the echo and Enter, so Enter is not read as part of the paste.
const SETTLE: Duration = Duration::from_millis(50);
/// Enter attempt N waits N times this for the draft to go.
const ATTEMPT_WAIT: Duration = Duration::from_millis(500);

/// Paste `text` into `pane` on `socket` and press Enter until it is taken.
/// An error leaves no buffer behind.
pub(super) fn submit(
    socket: &str,
    pane: &str,
    text: &str,
    options: SubmitOptions,
) -> Result<Delivery, TransportError> {
    let marker = draft_marker(text);
    let buffer = unique_buffer();
    load_buffer(socket, &buffer, text)?;
    let pasted = TmuxTransport::query(
        socket,
        &["paste-buffer", "-p", "-d", "-b", &buffer, "-t", pane],
    );
    if let Err(err) = pasted {
        let _ = TmuxTransport::run(socket, &["delete-buffer", "-b", &buffer]);
        return Err(err);
    }
    if wait_for(ECHO_WAIT, || is_draft(socket, pane, &marker))? {
        std::thread::sleep(SETTLE);
    }
    let attempts = options.attempts.max(1);
    for attempt in 1..=attempts {
        TmuxTransport::query(socket, &["send-keys", "-t", pane, "Enter"])?;
        let gone = wait_for(ATTEMPT_WAIT * attempt, || {
            is_draft(socket, pane, &marker).map(|draft| !draft)
        })?;
        if gone {
            return Ok(Delivery::Accepted { enters: attempt });
        }
    }
    Ok(Delivery::Draft { enters: attempts })
}

/// Whether the end of the text still sits on the logical line under the
/// cursor (wrapped rows joined). A pane that is gone holds no draft.
fn is_draft(socket: &str, pane: &str, marker: &str) -> Result<bool, TransportError> {
    if marker.is_empty() {
        return Ok(false);
    }
    let Ok(row) = TmuxTransport::query(
        socket,
        &["display-message", "-p", "-t", pane, "#{cursor_y}"],
    ) else {
        return Ok(false);
    };
    let row: i64 = row.trim().parse().unwrap_or(0);
    let (start, end) = ((row - 2).to_string(), row.to_string());
    let args = [
        "capture-pane",
        "-p",
        "-J",
        "-t",
        pane,
        "-S",
        &start,
        "-E",
        &end,
    ];
    let Ok(text) = TmuxTransport::query(socket, &args) else {
        return Ok(false);
    };
    Ok(text
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .is_some_and(|line| line.contains(marker)))
}

/// Poll `check` until it holds or `wait` passes.
fn wait_for(
    wait: Duration,
    mut check: impl FnMut() -> Result<bool, TransportError>,
) -> Result<bool, TransportError> {
    let deadline = Instant::now() + wait;
    loop {
        if check()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
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
