//! Launches on a tmux server: one `list-panes -a` names every session's
//! pane (`%N`, unique for the server's life), the pane's process (new for
//! every launch) and the command the session was started with, which tmux
//! shows quoted and escaped; [`unescape`] gives it back as it was given.

use std::collections::BTreeMap;

use crate::shared::transport::Launch;

/// The fields [`parse`] reads, tab-separated (tmux escapes a tab in the
/// start command, so the last field holds it whole).
pub(super) const FORMAT: &str =
    "#{session_name}\t#{window_active}\t#{pane_active}\t#{pane_dead}\t#{pane_id}\t#{pane_pid}\t#{pane_start_command}";

/// The launch of every session whose active pane still runs, by session.
pub(super) fn parse(panes: &str) -> BTreeMap<&str, Launch> {
    panes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.splitn(7, '\t').collect();
            let [session, "1", "1", dead, pane, pid, command] = fields[..] else {
                return None;
            };
            (dead != "1").then(|| {
                let launch = Launch {
                    id: format!("{pane}/{pid}"),
                    command: Some(unescape(command)),
                };
                (session, launch)
            })
        })
        .collect()
}

/// A start command as tmux shows it, back as it was given: tmux wraps one
/// with specials in double (or single) quotes and escapes `"`, `\`, `$`, a
/// leading `~` and control characters C-style (`\t`, `\n`, `\001`).
pub(super) fn unescape(shown: &str) -> String {
    let quoted = |q: char| shown.len() >= 2 && shown.starts_with(q) && shown.ends_with(q);
    if quoted('\'') {
        return shown[1..shown.len() - 1].to_owned();
    }
    let inner = if quoted('"') {
        &shown[1..shown.len() - 1]
    } else {
        shown
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.bytes().peekable();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let Some(next) = bytes.next() else {
            out.push(byte);
            break;
        };
        let decoded = match next {
            b't' => b'\t',
            b'n' => b'\n',
            b'r' => b'\r',
            b'a' => 0x07,
            b'b' => 0x08,
            b'v' => 0x0b,
            b'f' => 0x0c,
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                u8::try_from(value).unwrap_or(u8::MAX)
            }
            other => other,
        };
        out.push(decoded);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_commands_come_back_as_given() {
        // What tmux 3.3 shows for each (see `display -p '#{pane_start_command}'`).
        let cases = [
            (r#""sleep 100""#, "sleep 100"),
            (r#""sleep 100 # \"q\" \$HOME""#, r#"sleep 100 # "q" $HOME"#),
            (r#""sleep 100 # back\\slash""#, r"sleep 100 # back\slash"),
            (r#""sleep 100 # tab\tx""#, "sleep 100 # tab\tx"),
            (r#""sleep 100 # nl\nx""#, "sleep 100 # nl\nx"),
            (r#""sleep 100 # \001ctl""#, "sleep 100 # \u{1}ctl"),
            (r#""\~/x; sleep 100""#, "~/x; sleep 100"),
            (r#""sleep 100 # ünï ✓""#, "sleep 100 # ünï ✓"),
            ("'it'", "it"),
            ("fake-agent", "fake-agent"),
        ];
        for (shown, given) in cases {
            assert_eq!(unescape(shown), given, "{shown}");
        }
    }

    #[test]
    fn only_live_active_panes_count() {
        let panes = "a\t1\t1\t0\t%1\t100\t\"sleep 1\"\n\
                     b\t1\t1\t1\t%2\t101\t\"sleep 2\"\n\
                     c\t0\t1\t0\t%3\t102\tx\n\
                     c\t1\t1\t0\t%4\t103\ty\n";
        let launches = parse(panes);
        assert_eq!(
            launches.keys().copied().collect::<Vec<_>>(),
            ["a", "c"],
            "b's pane is dead; c's first pane is not in its active window"
        );
        assert_eq!(launches["a"].id, "%1/100");
        assert_eq!(launches["a"].command.as_deref(), Some("sleep 1"));
        assert_eq!(launches["c"].id, "%4/103");
    }
}
