//! Waiting until an agent's program can take input, so that a message is
//! never typed into a program that is still starting: text typed then lands
//! in a line-mode terminal (split into lines, one submission each) or is
//! flushed away when the program starts reading keys.
//!
//! With the runtime's `ready_pattern`, ready means the pattern matches the
//! visible screen. Without one, ready means all of: the screen has not
//! changed for the quiet window (tmux's window activity, or two looks that
//! far apart); the program in the pane's foreground has run for at least
//! the minimum age; and, for programs that take a paste, the terminal is out
//! of line mode (`ICANON` off, read with `tcgetattr` on the pane's tty),
//! which every interactive program does once it reads keys.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::TmuxTransport;
use crate::shared::transport::{Readiness, ReadyRule, TransportError};

const POLL: Duration = Duration::from_millis(25);

/// What the fallback rule sees of a pane.
struct PaneProcess {
    pid: u32,
    tty: String,
    /// Unix seconds of the window's last output.
    activity: u64,
}

/// Wait until the program in `pane` is ready by `rule`, for at most `timeout`.
pub(super) fn wait_ready(
    socket: &str,
    pane: &str,
    rule: &ReadyRule,
    timeout: Duration,
) -> Result<Readiness, TransportError> {
    let start = Instant::now();
    let mut last_screen: Option<String> = None;
    let mut unchanged_since = start;
    loop {
        let Some(screen) = screen(socket, pane)? else {
            return Ok(Readiness::Down {
                why: format!("pane {pane} is gone"),
            });
        };
        let now = Instant::now();
        if last_screen.as_deref() != Some(screen.as_str()) {
            last_screen = Some(screen);
            unchanged_since = now;
        }
        let unmet = match &rule.pattern {
            Some(pattern) => (!pattern.is_match(last_screen.as_deref().unwrap_or(""))).then(|| {
                format!("the screen does not match the runtime's ready_pattern `{pattern}`")
            }),
            None => {
                let Some(process) = process(socket, pane)? else {
                    return Ok(Readiness::Down {
                        why: format!("pane {pane} is gone"),
                    });
                };
                fallback_unmet(rule, &process, now - unchanged_since)
            }
        };
        let waited = start.elapsed();
        match unmet {
            None => {
                return Ok(Readiness::Ready {
                    waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                })
            }
            Some(why) if waited >= timeout => {
                return Ok(Readiness::NotReady {
                    why: format!(
                        "not ready for input after {:.1} s: {why}; nothing was typed",
                        waited.as_secs_f64()
                    ),
                })
            }
            Some(_) => std::thread::sleep(POLL),
        }
    }
}

/// Why the fallback rule does not hold yet (None when it does).
fn fallback_unmet(rule: &ReadyRule, process: &PaneProcess, unchanged: Duration) -> Option<String> {
    if rule.raw_terminal && terminal_in_line_mode(&process.tty) == Some(true) {
        return Some(
            "its terminal is still in line mode (the program has not started reading keys)".into(),
        );
    }
    let age = foreground_age(process.pid);
    if age.is_some_and(|age| age < rule.min_age) {
        return Some(format!(
            "its program has run for less than {:.1} s",
            rule.min_age.as_secs_f64()
        ));
    }
    // tmux keeps the window's last output in whole seconds: two seconds
    // back is more than one second of quiet for sure.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let quiet_by_activity = Duration::from_secs(now.saturating_sub(process.activity + 1));
    if unchanged.max(quiet_by_activity) < rule.quiet {
        return Some(format!(
            "its screen has not been still for {:.1} s",
            rule.quiet.as_secs_f64()
        ));
    }
    None
}

/// The visible screen; None when the pane is gone.
fn screen(socket: &str, pane: &str) -> Result<Option<String>, TransportError> {
    let out = TmuxTransport::run(socket, &["capture-pane", "-p", "-J", "-t", pane])?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn process(socket: &str, pane: &str) -> Result<Option<PaneProcess>, TransportError> {
    let format = "#{pane_dead}\t#{pane_pid}\t#{pane_tty}\t#{window_activity}";
    let out = TmuxTransport::run(socket, &["display-message", "-p", "-t", pane, format])?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.trim_end().split('\t').collect();
    let [dead, pid, tty, activity] = fields[..] else {
        return Ok(None);
    };
    if dead == "1" {
        return Ok(None);
    }
    Ok(Some(PaneProcess {
        pid: pid.parse().unwrap_or(0),
        tty: tty.to_owned(),
        activity: activity.parse().unwrap_or(0),
    }))
}

/// How long the pane's foreground program has run: the process group the
/// pane's terminal has in the foreground (the program the pane's shell
/// started, if any), else the pane's own process. None when /proc cannot
/// tell (another system, or a process that just exited).
fn foreground_age(pane_pid: u32) -> Option<Duration> {
    let stat = ProcStat::read(pane_pid)?;
    let foreground = (stat.tpgid > 0)
        .then(|| ProcStat::read(u32::try_from(stat.tpgid).ok()?))
        .flatten()
        .unwrap_or(stat);
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    let started = foreground.start_ticks as f64 / ticks as f64;
    Some(Duration::from_secs_f64((uptime - started).max(0.0)))
}

/// The fields of `/proc/PID/stat` readiness needs.
struct ProcStat {
    tpgid: i64,
    start_ticks: u64,
}

impl ProcStat {
    fn read(pid: u32) -> Option<ProcStat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let after_name = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // fields[0] is field 3 (state): field N is fields[N - 3].
        Some(ProcStat {
            tpgid: fields.get(5)?.parse().ok()?,
            start_ticks: fields.get(19)?.parse().ok()?,
        })
    }
}

/// Whether the terminal at `tty` is in line mode (canonical input, where
/// the kernel collects a line before the program sees it). None when it
/// cannot be read; the rule then does not wait on it.
fn terminal_in_line_mode(tty: &str) -> Option<bool> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(tty)
        .ok()?;
    // SAFETY: termios is plain old data; tcgetattr fills it from a valid,
    // open descriptor that lives until the end of this function.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(file.as_raw_fd(), &mut termios) } != 0 {
        return None;
    }
    Some(termios.c_lflag & libc::ICANON != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_an_age_and_a_start() {
        let pid = std::process::id();
        let stat = ProcStat::read(pid).expect("read own /proc stat");
        assert!(stat.start_ticks > 0);
        assert!(foreground_age(pid).is_some());
    }

    #[test]
    fn fallback_waits_for_age_then_quiet() {
        let rule = ReadyRule {
            pattern: None,
            quiet: Duration::from_millis(500),
            min_age: Duration::from_secs(3600 * 24 * 365 * 100),
            raw_terminal: false,
        };
        let process = PaneProcess {
            pid: std::process::id(),
            tty: String::new(),
            activity: 0,
        };
        let unmet = fallback_unmet(&rule, &process, Duration::ZERO).unwrap();
        assert!(unmet.contains("has run for less than"), "{unmet}");
        let rule = ReadyRule {
            min_age: Duration::ZERO,
            ..rule
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let busy = PaneProcess {
            activity: now,
            ..process
        };
        let unmet = fallback_unmet(&rule, &busy, Duration::from_millis(100)).unwrap();
        assert!(unmet.contains("has not been still"), "{unmet}");
        assert_eq!(fallback_unmet(&rule, &busy, Duration::from_secs(1)), None);
        let idle = PaneProcess {
            activity: now - 10,
            ..busy
        };
        assert_eq!(fallback_unmet(&rule, &idle, Duration::ZERO), None);
    }
}
