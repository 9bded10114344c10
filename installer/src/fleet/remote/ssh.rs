//! ssh: one shell command on another host, run the way the fleet's remote
//! verbs need it — `BatchMode=yes` (a missing key is an error, never a
//! password prompt), a connect timeout, keep-alives so that a dead
//! connection ends the run, and the destination after `--` so that no roster
//! value is ever read as an ssh option.
//!
//! The remote command announces what it runs with a marker line on stdout
//! (`mosaic-remote: <runner>`) before anything else. That is how a failure
//! of ssh itself (exit 255 before the marker: the host was not reached, so
//! nothing ran there) is told apart from a connection lost while the remote
//! program ran (exit 255 after it: the outcome there is unknown).

// This module owns ssh: every ssh command of the crate is built here.
#![allow(clippy::disallowed_types)]

use std::fs::File;
use std::io::{Seek, Write};
use std::process::{Command, Stdio};

/// The first stdout line of every remote command, before its runner's name.
pub(crate) const MARKER: &str = "mosaic-remote: ";

/// ssh's own exit status for its failures (connection, authentication).
const SSH_FAILED: i32 = 255;

/// An ssh destination from the roster: `[user@]host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination(String);

impl Destination {
    /// Accept what ssh takes as a destination; refuse what could be read
    /// as an option or split by a shell.
    pub(crate) fn parse(text: &str) -> Result<Destination, String> {
        if text.is_empty() {
            return Err("is empty".into());
        }
        if text.starts_with('-') {
            return Err("starts with `-` (ssh would read it as an option)".into());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("contains whitespace or a control character".into());
        }
        if text.ends_with('@') {
            return Err("names a user but no host".into());
        }
        Ok(Destination(text.to_owned()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What came back from one remote command.
#[derive(Debug, Clone)]
pub(crate) struct RemoteRun {
    /// What the remote side announced it runs; None when the command never
    /// started there.
    pub(crate) runner: Option<String>,
    /// The exit status (ssh passes the remote one through); None when ssh
    /// was killed by a signal.
    pub(crate) code: Option<i32>,
    /// Standard output after the marker line.
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

impl RemoteRun {
    /// ssh failed before the remote command started: nothing ran there.
    pub(crate) fn unreached(&self) -> bool {
        self.runner.is_none() && self.code == Some(SSH_FAILED)
    }

    /// The connection failed after the remote command had started.
    pub(crate) fn dropped(&self) -> bool {
        self.runner.is_some() && self.code == Some(SSH_FAILED)
    }

    /// The last non-empty line ssh or the remote side wrote to stderr.
    pub(crate) fn why(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .unwrap_or("no message")
            .to_owned()
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SshError {
    #[error("cannot run ssh: {0}; install the OpenSSH client (apt-get install openssh-client)")]
    Spawn(std::io::Error),
    #[error("cannot hand the message to ssh: {0}")]
    Input(std::io::Error),
}

/// Run `script` (a POSIX shell command line) on `dest`, with `input` on its
/// standard input (none: /dev/null). The input goes through an unlinked
/// temp file, so a remote side that stops reading never blocks or signals us.
pub(crate) fn run(
    dest: &Destination,
    script: &str,
    input: Option<&[u8]>,
) -> Result<RemoteRun, SshError> {
    let stdin = match input {
        Some(bytes) => {
            let mut file: File = tempfile::tempfile().map_err(SshError::Input)?;
            file.write_all(bytes).map_err(SshError::Input)?;
            file.rewind().map_err(SshError::Input)?;
            Stdio::from(file)
        }
        None => Stdio::null(),
    };
    let output = Command::new("ssh")
        .args([
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
            "-o",
            "LogLevel=ERROR",
            "--",
        ])
        .arg(dest.as_str())
        .arg(script)
        .stdin(stdin)
        .output()
        .map_err(SshError::Spawn)?;
    let (runner, stdout) = split_marker(&output.stdout);
    Ok(RemoteRun {
        runner,
        code: output.status.code(),
        stdout,
        stderr: output.stderr,
    })
}

/// The runner named by the marker line, and what follows it. Lines before
/// the marker (a login shell's chatter) are dropped.
fn split_marker(stdout: &[u8]) -> (Option<String>, Vec<u8>) {
    let mut rest = stdout;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let (line, after) = rest.split_at(end);
        let text = String::from_utf8_lossy(line);
        if let Some(runner) = text.trim_end().strip_prefix(MARKER) {
            return (Some(runner.to_owned()), after.to_vec());
        }
        rest = after;
    }
    (None, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert!(Destination::parse("ops@box2").is_ok());
        assert!(Destination::parse("box2.example.com").is_ok());
        for bad in ["", "-oProxyCommand=sh", "a b", "ops@", "a\nb"] {
            assert!(Destination::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn marker_splits_stdout_and_drops_chatter() {
        let (runner, rest) = split_marker(b"motd\nmosaic-remote: mosaic-fleet\nrow 1\nrow 2\n");
        assert_eq!(runner.as_deref(), Some("mosaic-fleet"));
        assert_eq!(rest, b"row 1\nrow 2\n");
        let (runner, rest) = split_marker(b"ssh chatter only\n");
        assert_eq!((runner, rest), (None, Vec::new()));
    }

    #[test]
    fn unreached_only_before_the_marker() {
        let run = |runner: Option<&str>, code| RemoteRun {
            runner: runner.map(str::to_owned),
            code: Some(code),
            stdout: Vec::new(),
            stderr: b"\nssh: connect to host 127.0.0.1 port 1: Connection refused\n\n".to_vec(),
        };
        assert!(run(None, 255).unreached());
        assert!(!run(Some("mosaic-fleet"), 255).unreached());
        assert!(run(Some("mosaic-fleet"), 255).dropped());
        assert!(!run(Some("mosaic-fleet"), 3).dropped());
        assert_eq!(
            run(None, 255).why(),
            "ssh: connect to host 127.0.0.1 port 1: Connection refused"
        );
    }
}
