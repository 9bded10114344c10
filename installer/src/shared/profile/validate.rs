//! Profile validation: the rules that make every name safe at once as a
//! tmux session, a systemd instance and a file name, and every value safe to
//! write into an env file. Every violation is collected, each with its line,
//! field, rule and fix.

use std::collections::BTreeSet;
use std::fmt;

use super::locate::Locator;
use super::{Roster, MAX_FIELD_BYTES, MAX_NAME_LEN, RUNTIMES};

const CONTROL_FIX: &str =
    "remove the control characters (newline, tab, escape, NUL) from the value";
const SIZE_FIX: &str =
    "shorten the value to at most 4096 bytes (a long command belongs in a script it runs)";
const WORKDIR_FIX: &str = "use an absolute path or one starting with ~/";

/// One broken rule: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) line: Option<usize>,
    pub(crate) field: String,
    pub(crate) rule: String,
    pub(crate) fix: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}: {}\n    fix: {}", self.field, self.rule, self.fix)
    }
}

/// Why `name` cannot be an agent (or holder session) name, if it cannot.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "is {} characters long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        ));
    }
    if name.contains('.') {
        return Some(
            "contains `.`: tmux silently renames a session called `a.b` to `a_b`, so the \
             unit's exact-match stop (kill-session -t =NAME) would miss it"
                .into(),
        );
    }
    if name.contains(':') {
        return Some(
            "contains `:`, which tmux reads as the session:window separator in targets".into(),
        );
    }
    if name.starts_with('-') {
        return Some("starts with `-`, which tmux and systemctl would read as an option".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Some(format!(
            "contains {bad:?}; only ASCII letters, digits, `_` and `-` are valid at once in a \
             tmux session, a systemd instance and a file name"
        ));
    }
    None
}

/// Why `socket` cannot be a tmux socket name, if it cannot.
pub(crate) fn socket_problem(socket: &str) -> Option<String> {
    if socket.is_empty() {
        return Some(
            "is empty: `tmux -L ''` addresses the socket directory itself, not a server".into(),
        );
    }
    if socket == "default" {
        return Some(
            "is `default`, the socket of the operator's own tmux server, which the fleet \
             must never touch: the holder's stop (`tmux -L default kill-server`) would \
             kill that server and every session on it"
                .into(),
        );
    }
    if socket.len() > MAX_NAME_LEN {
        return Some(format!("must be 1 to {MAX_NAME_LEN} characters long"));
    }
    if socket.contains('/') {
        return Some("contains `/`: tmux -L takes a name, not a path".into());
    }
    if socket.starts_with('.') || socket.starts_with('-') {
        return Some(
            "starts with `.` or `-`: `.` and `..` name directories, and `-` reads as an option"
                .into(),
        );
    }
    if let Some(bad) = socket
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Some(format!(
            "contains {bad:?}; only ASCII letters, digits, `_`, `-` and `.` are allowed"
        ));
    }
    None
}

pub(super) fn workdir_problem(dir: &str) -> Option<String> {
    let shaped = dir.starts_with('/') || dir == "~" || dir.starts_with("~/");
    (!shaped).then(|| format!("`{}` is neither absolute nor ~/-relative", shown(dir)))
}

/// Why a value is too long for a roster field, if it is.
fn size_problem(value: &str) -> Option<String> {
    (value.len() > MAX_FIELD_BYTES).then(|| {
        format!(
            "is {} bytes long; a roster field may be at most {MAX_FIELD_BYTES} bytes (4 KiB)",
            value.len()
        )
    })
}

/// Why a free-text value cannot be a roster field, and its fix.
fn text_problem(value: &str) -> Option<(String, &'static str)> {
    size_problem(value)
        .map(|p| (p, SIZE_FIX))
        .or_else(|| control_problem(value).map(|p| (p, CONTROL_FIX)))
}

/// A working directory's problem (size, then shape, then control
/// characters), and its fix.
fn workdir_text_problem(dir: &str) -> Option<(String, &'static str)> {
    size_problem(dir)
        .map(|p| (p, SIZE_FIX))
        .or_else(|| workdir_problem(dir).map(|p| (p, WORKDIR_FIX)))
        .or_else(|| control_problem(dir).map(|p| (p, CONTROL_FIX)))
}

/// A value as an error message quotes it: long ones are cut so that the
/// message stays readable.
fn shown(value: &str) -> String {
    const KEEP: usize = 40;
    match value.char_indices().nth(KEEP) {
        Some((at, _)) => format!("{}…", &value[..at]),
        None => value.to_owned(),
    }
}

/// Control characters cannot be written into an env file so that systemd
/// and bash both read back the original value.
pub(super) fn control_problem(value: &str) -> Option<String> {
    value.chars().find(|c| c.is_control()).map(|c| {
        let what = match c {
            '\n' => "a newline".to_owned(),
            '\0' => "a NUL byte".to_owned(),
            other => format!("the control character {other:?}"),
        };
        format!("contains {what}, which cannot be written safely into an env file")
    })
}

/// The one-line reason of a regex error. A syntax error prints as the
/// pattern, a caret line under the offending character and `error: WHY`;
/// this keeps WHY and the caret's column.
fn regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let why = lines
        .iter()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or(text.as_str());
    // The pattern and the caret line are both indented by four spaces.
    let column = lines
        .iter()
        .find(|line| line.trim_start() == "^" || line.trim_start().starts_with('^'))
        .and_then(|line| line.find('^'))
        .and_then(|at| at.checked_sub(3));
    match column {
        Some(column) => format!("{why} (at character {column})"),
        None => why.to_owned(),
    }
}

/// Why `pattern` cannot be a runtime's `ready_pattern`, if it cannot: it
/// must compile, and must not match an empty screen (it would say "ready"
/// before the program drew anything).
pub(super) fn pattern_problem(pattern: &str) -> Option<String> {
    match regex::Regex::new(pattern) {
        Err(err) => Some(format!(
            "`{pattern}` is not a valid regular expression: {}",
            regex_error(&err)
        )),
        Ok(regex) if regex.is_match("") => Some(format!(
            "`{pattern}` matches an empty screen, so it would never wait"
        )),
        Ok(_) => None,
    }
}

pub(super) fn validate(roster: &Roster, text: &str) -> Vec<Violation> {
    let locate = Locator::new(text);
    let mut out = Vec::new();
    let mut push = |line: Option<usize>, field: String, rule: String, fix: &str| {
        out.push(Violation {
            line,
            field,
            rule,
            fix: fix.to_owned(),
        });
    };
    if roster.version != 1 {
        push(
            locate.key(&["version"]),
            "version".into(),
            format!("is {}; only roster version 1 exists", roster.version),
            "set `version: 1`",
        );
    }
    if roster.transport != "tmux" {
        push(
            locate.key(&["transport"]),
            "transport".into(),
            format!(
                "is `{}`; only `tmux` is supported",
                shown(&roster.transport)
            ),
            "set `transport: tmux`",
        );
    }
    if let Some(problem) = socket_problem(roster.socket()) {
        push(
            locate.key(&["tmux", "socket_name|socketName"]),
            "tmux.socket_name".into(),
            problem,
            "use a plain name such as `mosaic-fleet`",
        );
    }
    if let Some(problem) = name_problem(roster.holder_session()) {
        push(
            locate.key(&["tmux", "holder_session|holderSession"]),
            "tmux.holder_session".into(),
            problem,
            "use a plain name such as `_holder`",
        );
    }
    if let Some(dir) = &roster.defaults.working_directory {
        if let Some((problem, fix)) = workdir_text_problem(dir) {
            push(
                locate.key(&["defaults", "working_directory|workingDirectory"]),
                "defaults.working_directory".into(),
                problem,
                fix,
            );
        }
    }
    for (runtime, settings) in &roster.runtimes {
        if !RUNTIMES.contains(&runtime.as_str()) {
            push(
                locate.key(&["runtimes", runtime]),
                format!("runtimes.{}", shown(runtime)),
                format!("`{}` is not a runtime", shown(runtime)),
                &format!("use one of {}", RUNTIMES.join(", ")),
            );
        }
        if let Some((problem, fix)) = settings.reset_command.as_deref().and_then(text_problem) {
            push(
                locate.key(&["runtimes", runtime, "reset_command|resetCommand"]),
                format!("runtimes.{}.reset_command", shown(runtime)),
                problem,
                fix,
            );
        }
        if let Some(problem) = settings.ready_pattern.as_deref().and_then(pattern_problem) {
            push(
                locate.key(&["runtimes", runtime, "ready_pattern|readyPattern"]),
                format!("runtimes.{runtime}.ready_pattern"),
                problem,
                "write a regular expression in Rust regex syntax (https://docs.rs/regex), for example '(?m)^> ' for a prompt at the start of a line",
            );
        }
    }
    if roster.agents.is_empty() {
        push(
            locate.key(&["agents"]),
            "agents".into(),
            "is empty; a fleet needs at least one agent".into(),
            "add an agent with `name` and `runtime`",
        );
    }
    let mut seen = BTreeSet::new();
    for (index, agent) in roster.agents.iter().enumerate() {
        let at = |field: &str| format!("agents[{index}].{field}");
        let line = |field: &str| locate.agent(index, field);
        if let Some(problem) = name_problem(&agent.name) {
            push(
                line("name"),
                at("name"),
                format!("`{}` {problem}", shown(&agent.name)),
                "use ASCII letters, digits, `_` and `-` (at most 64), not starting with `-`",
            );
        } else if !seen.insert(agent.name.as_str()) {
            push(
                line("name"),
                at("name"),
                format!("`{}` is a duplicate agent name", agent.name),
                "give every agent a unique name",
            );
        } else if agent.name == roster.holder_session() {
            push(
                line("name"),
                at("name"),
                format!("`{}` is the holder session's name", agent.name),
                "rename the agent or set tmux.holder_session",
            );
        }
        if !RUNTIMES.contains(&agent.runtime.as_str()) {
            push(
                line("runtime"),
                at("runtime"),
                format!("`{}` is not a runtime", shown(&agent.runtime)),
                &format!("use one of {}", RUNTIMES.join(", ")),
            );
        }
        if let Some(problem) = agent.socket.as_deref().and_then(socket_problem) {
            push(
                line("socket"),
                at("socket"),
                problem,
                "use a plain name such as `mosaic-fleet`",
            );
        }
        // Its size and control characters are checked with the other texts.
        if let Some(dir) = agent
            .working_directory
            .as_deref()
            .filter(|d| size_problem(d).is_none())
        {
            if let Some(problem) = workdir_problem(dir) {
                push(
                    line("working_directory|workingDirectory"),
                    at("working_directory"),
                    problem,
                    WORKDIR_FIX,
                );
            }
        }
        let texts = [
            ("class", "class", &agent.class),
            ("host", "host", &agent.host),
            ("ssh", "ssh", &agent.ssh),
            ("model_hint", "model_hint|modelHint", &agent.model_hint),
            ("command", "command", &agent.command),
            (
                "working_directory",
                "working_directory|workingDirectory",
                &agent.working_directory,
            ),
        ];
        for (field, keys, value) in texts {
            if let Some((problem, fix)) = value.as_deref().and_then(text_problem) {
                push(line(keys), at(field), problem, fix);
            }
        }
        if agent
            .command
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            push(
                line("command"),
                at("command"),
                "is empty".into(),
                "remove `command` to use the default launch command, or give one",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pattern_problem;

    #[test]
    fn a_bad_ready_pattern_is_named_with_the_reason_and_where() {
        assert_eq!(
            pattern_problem("(>").as_deref(),
            Some("`(>` is not a valid regular expression: unclosed group (at character 1)")
        );
        assert_eq!(
            pattern_problem("ok [z-a]").as_deref(),
            Some("`ok [z-a]` is not a valid regular expression: invalid character class range, the start must be <= the end (at character 5)")
        );
        assert_eq!(
            pattern_problem("x*").as_deref(),
            Some("`x*` matches an empty screen, so it would never wait")
        );
        assert_eq!(pattern_problem("(?m)^> "), None);
    }
}
