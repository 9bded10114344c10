//! What delivery reads from an agent's pane: the cursor, the input line
//! (the logical line under the cursor, wrapped rows joined) and the visible
//! screen. Decisions about drafts look at the input region only: the input
//! line, and the rows a paste changed (a program may draw its input box
//! away from the cursor, as programs that park the cursor under their
//! status line do). Never at other transcript rows: a line reader's echo of
//! what it already took sits right above the cursor and is no draft.

use super::TmuxTransport;
use crate::shared::transport::TransportError;

/// One look at a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PaneView {
    /// Column and row of the cursor on the visible screen.
    pub(crate) cursor: (u32, u32),
    /// The logical line under the cursor, wrapped rows joined.
    pub(crate) input_line: String,
    /// The visible screen, one line per row.
    pub(crate) screen: String,
}

impl PaneView {
    /// The pane as it is now; None when it is gone (no such pane, its
    /// program exited, or no server).
    pub(super) fn read(socket: &str, pane: &str) -> Result<Option<PaneView>, TransportError> {
        let args = [
            "display-message",
            "-p",
            "-t",
            pane,
            "#{pane_dead} #{cursor_x} #{cursor_y}",
            ";",
            "capture-pane",
            "-p",
            "-t",
            pane,
        ];
        let out = TmuxTransport::run(socket, &args)?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let (head, screen) = text.split_once('\n').unwrap_or((&text, ""));
        let fields: Vec<u32> = head
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let [dead, x, y] = fields[..] else {
            return Ok(None);
        };
        if dead == 1 {
            return Ok(None);
        }
        let Some(input_line) = input_line(socket, pane, y)? else {
            return Ok(None);
        };
        Ok(Some(PaneView {
            cursor: (x, y),
            input_line,
            screen: screen.to_owned(),
        }))
    }

    /// The same input line, with the cursor in the same place.
    pub(super) fn same_input(&self, other: &PaneView) -> bool {
        self.cursor == other.cursor && self.input_line == other.input_line
    }

    /// Nothing at all on the screen.
    pub(super) fn blank(&self) -> bool {
        self.screen.trim().is_empty()
    }

    /// The screen's rows.
    fn rows(&self) -> Vec<&str> {
        self.screen.lines().collect()
    }

    /// Indices of the rows that differ from `other`'s.
    pub(super) fn changed_rows(&self, other: &PaneView) -> Vec<usize> {
        let (mine, theirs) = (self.rows(), other.rows());
        (0..mine.len().max(theirs.len()))
            .filter(|&i| mine.get(i) != theirs.get(i))
            .collect()
    }

    /// Whether `rows` read the same here as in `other`.
    pub(super) fn same_rows(&self, other: &PaneView, rows: &[usize]) -> bool {
        let (mine, theirs) = (self.rows(), other.rows());
        rows.iter().all(|&i| mine.get(i) == theirs.get(i))
    }

    /// How often `marker` shows on the screen (rows joined, so that a
    /// marker wrapped by the terminal counts).
    pub(super) fn marker_count(&self, marker: &str) -> usize {
        if marker.is_empty() {
            return 0;
        }
        self.screen.replace('\n', "").matches(marker).count()
    }
}

/// The logical line that ends on row `row`: the rows from three above it
/// down to it, wrapped rows joined (`-J`), last line of the capture. A
/// marker of at most 16 characters fits in three rows of any usable width.
fn input_line(socket: &str, pane: &str, row: u32) -> Result<Option<String>, TransportError> {
    let start = row.saturating_sub(3).to_string();
    let end = row.to_string();
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
    let out = TmuxTransport::run(socket, &args)?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // Each row ends in a newline: drop exactly that one, so that an empty
    // cursor row stays the (empty) last line instead of the row above it.
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(Some(text.rsplit('\n').next().unwrap_or("").to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(cursor: (u32, u32), line: &str, screen: &str) -> PaneView {
        PaneView {
            cursor,
            input_line: line.to_owned(),
            screen: screen.to_owned(),
        }
    }

    #[test]
    fn the_input_region_is_the_rows_a_paste_changed() {
        let before = view((0, 3), "", "old\n> \n  ? help\n\n");
        let pasted = view((0, 3), "", "old\n> [p] hello\n  ? help\n\n");
        assert_eq!(pasted.changed_rows(&before), [1]);
        let region = pasted.changed_rows(&before);
        // Taken: the input row is back to the prompt, the transcript grew.
        let taken = view((0, 3), "", "• [p] hello\n> \n  ? help\n\n");
        assert!(!taken.same_rows(&pasted, &region));
        // Another row changing (a clock) leaves the region as pasted.
        let ticking = view((0, 3), "", "old\n> [p] hello\n  ? help 12:01\n\n");
        assert!(ticking.same_rows(&pasted, &region) && ticking.same_input(&pasted));
    }

    #[test]
    fn markers_are_counted_across_wrapped_rows() {
        let screen = view(
            (0, 0),
            "",
            "xx the end of the me\nssage xx\nthe end of the message\n",
        );
        assert_eq!(screen.marker_count("end of the message"), 2);
        assert_eq!(screen.marker_count(""), 0);
        assert!(view((0, 0), "", " \n\n").blank());
    }
}
