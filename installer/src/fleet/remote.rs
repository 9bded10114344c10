//! Agents on other hosts: `agent send|status|tail` to an agent whose roster
//! `host:` is another machine, and `fleet status --hosts` over every host of
//! the roster, all over ssh ([`ssh`]).
//!
//! A remote verb is the remote host's own verb: ssh runs
//! `mosaic-fleet --host <host> …` there (the `mosaic-install` package puts it
//! on PATH) and its output and exit code come back verbatim, so a remote
//! send has exactly the delivery rules, `--verify` outcomes and exit codes of
//! a send on that host — whichever version runs there. Where `mosaic-fleet`
//! is not installed, `agent send` ships `send-message.sh` from this binary's
//! bundle and runs it next to the pane, as `agent-send.sh -H` does, and
//! reports its outcome like a local send; `status` and `tail` need the
//! remote `mosaic-fleet` and say so.
//!
//! A host that ssh cannot reach ran nothing: a send to it is `DOWN` (exit 3),
//! `fleet status --hosts` shows it as unreachable and still prints every
//! other host. A connection lost after the remote command started leaves
//! the outcome unknown, and the error says so rather than guessing.

pub(crate) mod ssh;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;

use crate::fleet::verbs::fleet_wide::{self, StatusReport};
use crate::fleet::verbs::send::{SendReport, SendResult};
use crate::fleet::verbs::{AgentView, Fleet, FleetError};
use crate::shared::bundle::Bundle;
use crate::shared::render::shell_quote;
use crate::shared::transport::Delivery;
use ssh::{Destination, RemoteRun};

/// The send script shipped to hosts without `mosaic-fleet`.
const SEND_SCRIPT: &str = "framework/tools/tmux/send-message.sh";
/// What `send-message.sh -v` logs once the text left the input line.
const SUBMITTED_LOG: &str = "accepted (Enter pressed ";

#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error("agent `{agent}` has ssh destination `{value}`, which {why}: give `ssh: user@host` in the roster")]
    BadDestination {
        agent: String,
        value: String,
        why: String,
    },
    #[error(transparent)]
    Ssh(#[from] ssh::SshError),
    #[error("host {host} is unreachable over ssh ({dest}): {why}\n    check that `ssh -o BatchMode=yes {dest} true` works for this user (key, known host, address)")]
    Unreachable {
        host: String,
        dest: Destination,
        why: String,
    },
    #[error("mosaic-fleet is not installed on host {host} ({dest}): install the mosaic-install package there for `agent status` and `agent tail` (`agent send` works without it)")]
    NoFleet { host: String, dest: Destination },
    #[error("the connection to host {host} ({dest}) dropped while `{what}` ran there: {why}\n    whether it finished is unknown; look with `mosaic-fleet agent tail` before sending again")]
    Dropped {
        host: String,
        dest: Destination,
        what: String,
        why: String,
    },
    #[error("`{what}` failed on host {host} ({dest}) with exit status {code}: {why}")]
    Failed {
        host: String,
        dest: Destination,
        what: String,
        code: String,
        why: String,
    },
}

impl RemoteError {
    /// 2 for a roster value the operator must fix, 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            RemoteError::BadDestination { .. } => 2,
            _ => 1,
        }
    }
}

/// Where a remote agent is reached: its host and the ssh destination (the
/// roster's `ssh:`, else the host name itself, as `ssh <host>` would).
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    pub(crate) host: String,
    pub(crate) dest: Destination,
}

impl Reach {
    pub(crate) fn of(agent: &AgentView) -> Result<Reach, RemoteError> {
        let host = agent.host.clone().unwrap_or_default();
        let value = agent.ssh.clone().unwrap_or_else(|| host.clone());
        let dest = Destination::parse(&value).map_err(|why| RemoteError::BadDestination {
            agent: agent.name.clone(),
            value,
            why,
        })?;
        Ok(Reach { host, dest })
    }

    fn fail(&self, what: &str, run: &RemoteRun) -> RemoteError {
        if run.unreached() {
            return RemoteError::Unreachable {
                host: self.host.clone(),
                dest: self.dest.clone(),
                why: run.why(),
            };
        }
        if run.dropped() {
            return RemoteError::Dropped {
                host: self.host.clone(),
                dest: self.dest.clone(),
                what: what.to_owned(),
                why: run.why(),
            };
        }
        if run.runner.as_deref() == Some(NO_FLEET) {
            return RemoteError::NoFleet {
                host: self.host.clone(),
                dest: self.dest.clone(),
            };
        }
        RemoteError::Failed {
            host: self.host.clone(),
            dest: self.dest.clone(),
            what: what.to_owned(),
            code: run.code.map_or("none (killed)".into(), |c| c.to_string()),
            why: run.why(),
        }
    }
}

/// The remote `mosaic-fleet`'s output and exit code, to be passed on as is.
#[derive(Debug, Clone)]
pub(crate) struct Verbatim {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) code: u8,
}

/// How a remote send ended.
#[derive(Debug, Clone)]
pub(crate) enum Sent {
    /// The remote `mosaic-fleet agent send` ran: its own words and exit code.
    Verbatim(Verbatim),
    /// Decided here: the host was not reached (`DOWN`), or the shipped
    /// `send-message.sh` ran and its exit status says the outcome.
    Report(SendReport),
}

/// A send to one agent on another host.
#[derive(Debug, Clone)]
pub(crate) struct RemoteSend<'a> {
    /// The message, already checked by [`crate::fleet::verbs::send::prepare_body`].
    pub(crate) body: &'a str,
    /// `<src_host>:<src_session>` of this side.
    pub(crate) source: String,
    pub(crate) attempts: u32,
    pub(crate) verify: bool,
    pub(crate) json: bool,
    /// Seconds to wait for the program to be ready (`--ready-timeout`).
    pub(crate) ready_timeout: u64,
    /// Seconds to wait for other senders to the agent (`--wait`).
    pub(crate) lock_wait: u64,
    /// Strip control characters instead of refusing (`--sanitize`).
    pub(crate) sanitize: bool,
    /// One submission per line (`--lines`).
    pub(crate) lines: bool,
}

/// Runner names the remote command announces.
const FLEET: &str = "mosaic-fleet";
const SCRIPT: &str = "send-message.sh";
const NO_FLEET: &str = "none";

/// `agent send` to a remote agent: the host's own `mosaic-fleet agent send`
/// (the message on its stdin, our sender label as `--from`), or else the
/// shipped `send-message.sh` with the preamble added here.
pub(crate) fn send(agent: &AgentView, request: &RemoteSend<'_>) -> Result<Sent, FleetError> {
    let reach = Reach::of(agent)?;
    let mut verb = vec![
        "agent".to_owned(),
        "send".to_owned(),
        agent.name.clone(),
        "--from".to_owned(),
        request.source.clone(),
        "-r".to_owned(),
        request.attempts.to_string(),
        "--ready-timeout".to_owned(),
        request.ready_timeout.to_string(),
        "--wait".to_owned(),
        request.lock_wait.to_string(),
    ];
    for (on, flag) in [
        (request.verify, "--verify"),
        (request.sanitize, "--sanitize"),
        (request.lines, "--lines"),
    ] {
        if on {
            verb.push(flag.to_owned());
        }
    }
    let preamble = crate::fleet::verbs::send::with_preamble(
        &request.source,
        crate::shared::host::short(&reach.host),
        &agent.name,
        "",
    );
    let script_text = Bundle::embedded()
        .file(SEND_SCRIPT)
        .map(|f| f.contents.clone())
        .unwrap_or_default();
    let fallback = format!(
        "printf '%s\\n' {marker}; exec bash -c \"$(printf %s {script} | base64 -d)\" send-message.sh -v -L {socket} -r {attempts} -R {ready} -w {wait}{sanitize} -t {target} -b \"$({{ printf %s {preamble}; cat; }} | base64 | tr -d '\\n')\"",
        marker = shell_quote(&format!("{}{SCRIPT}", ssh::MARKER)),
        script = shell_quote(&BASE64.encode(&script_text)),
        socket = shell_quote(&agent.socket),
        attempts = request.attempts,
        ready = request.ready_timeout,
        wait = request.lock_wait,
        sanitize = if request.sanitize { " -x" } else { "" },
        target = shell_quote(&format!("={}", agent.name)),
        preamble = shell_quote(&preamble),
    );
    let script = remote_script(&reach.host, request.json, &verb, &fallback);
    let run =
        ssh::run(&reach.dest, &script, Some(request.body.as_bytes())).map_err(RemoteError::from)?;
    let what = format!("agent send {}", agent.name);
    let down = |why: String| {
        Sent::Report(SendReport {
            source: request.source.clone(),
            results: vec![SendResult {
                agent: agent.name.clone(),
                outcome: "DOWN",
                delivery: Delivery::Down { why },
            }],
        })
    };
    if run.unreached() {
        let reason = reach.fail(&what, &run).to_string();
        return Ok(down(reason.lines().next().unwrap_or_default().to_owned()));
    }
    match (run.runner.as_deref(), run.code) {
        (_, Some(255)) | (None, _) => Err(reach.fail(&what, &run).into()),
        (Some(FLEET), Some(code)) => Ok(Sent::Verbatim(Verbatim {
            stdout: run.stdout,
            stderr: run.stderr,
            code: u8::try_from(code).unwrap_or(1),
        })),
        (Some(SCRIPT), Some(code @ (0 | 1 | 3 | 5 | 6))) => {
            let why = format!("on host {}: {}", reach.host, run.why());
            let delivery = match code {
                0 => Delivery::Accepted {
                    enters: enters_logged(&run.stderr).unwrap_or(request.attempts),
                    submissions: 1,
                },
                1 => Delivery::Draft {
                    enters: request.attempts,
                    why,
                },
                3 => Delivery::Down { why },
                5 => Delivery::NotReady { why },
                _ => Delivery::Busy { why },
            };
            Ok(report(request, agent, delivery))
        }
        _ => Err(reach.fail(&what, &run).into()),
    }
}

fn report(request: &RemoteSend<'_>, agent: &AgentView, delivery: Delivery) -> Sent {
    Sent::Report(SendReport {
        source: request.source.clone(),
        results: vec![SendResult {
            agent: agent.name.clone(),
            outcome: delivery.word(),
            delivery,
        }],
    })
}

/// How many Enter presses `send-message.sh -v` logged before the text left
/// the input line.
fn enters_logged(stderr: &[u8]) -> Option<u32> {
    String::from_utf8_lossy(stderr).lines().find_map(|line| {
        let (_, rest) = line.split_once(SUBMITTED_LOG)?;
        rest.split(' ').next()?.parse().ok()
    })
}

/// `agent status NAME` or `agent tail NAME` of a remote agent: the host's
/// own `mosaic-fleet` verb, verbatim.
pub(crate) fn relay(
    agent: &AgentView,
    verb: &[String],
    json: bool,
) -> Result<Verbatim, FleetError> {
    let reach = Reach::of(agent)?;
    let fallback = no_fleet();
    let script = remote_script(&reach.host, json, verb, &fallback);
    let run = ssh::run(&reach.dest, &script, None).map_err(RemoteError::from)?;
    match (run.runner.as_deref(), run.code) {
        (Some(FLEET), Some(code)) if code != 255 => Ok(Verbatim {
            stdout: run.stdout,
            stderr: run.stderr,
            code: u8::try_from(code).unwrap_or(1),
        }),
        _ => Err(reach.fail(&verb.join(" "), &run).into()),
    }
}

/// The command line ssh runs on the remote host: that host's `mosaic-fleet`
/// (acting for `host`, with `verb`) when it is on PATH, else `fallback`. One
/// line handed to `sh -c`, so that any login shell (bash, fish, ...) runs
/// the same POSIX script.
fn remote_script(host: &str, json: bool, verb: &[String], fallback: &str) -> String {
    let mut fleet = format!("{FLEET} --host {}", shell_quote(host));
    if json {
        fleet.push_str(" --json");
    }
    for word in verb {
        fleet.push(' ');
        fleet.push_str(&shell_quote(word));
    }
    let script = format!(
        "if command -v {FLEET} >/dev/null 2>&1; then printf '%s\\n' {marker}; exec {fleet}; fi; {fallback}",
        marker = shell_quote(&format!("{}{FLEET}", ssh::MARKER)),
    );
    format!("sh -c {}", shell_quote(&script))
}

/// The fallback of the verbs that need the remote `mosaic-fleet`: say so.
fn no_fleet() -> String {
    format!(
        "printf '%s\\n' {}; exit 127",
        shell_quote(&format!("{}{NO_FLEET}", ssh::MARKER))
    )
}

/// One host's part of `fleet status --hosts`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostStatus {
    pub(crate) host: String,
    /// The ssh destination; None for this host (asked directly).
    pub(crate) ssh: Option<String>,
    /// The host's own `fleet status`; None when it did not answer.
    pub(crate) status: Option<StatusReport>,
    /// ssh could not reach the host.
    pub(crate) unreachable: bool,
    /// Why there is no status.
    pub(crate) error: Option<String>,
}

impl HostStatus {
    pub(crate) fn healthy(&self) -> bool {
        self.status.as_ref().is_some_and(StatusReport::healthy)
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct HostsReport {
    pub(crate) hosts: Vec<HostStatus>,
}

impl HostsReport {
    /// Every host answered and every agent is up.
    pub(crate) fn healthy(&self) -> bool {
        self.hosts.iter().all(HostStatus::healthy)
    }
}

/// The roster's hosts in roster order: this host (no destination) and one
/// ssh destination per other host.
fn roster_hosts(fleet: &Fleet<'_>) -> Vec<(String, Option<Result<Reach, RemoteError>>)> {
    let mut hosts: Vec<(String, Option<Result<Reach, RemoteError>>)> = Vec::new();
    for agent in &fleet.roster.agents {
        let host = match (&agent.host, agent.is_local()) {
            (Some(host), false) => host.clone(),
            _ => fleet.roster.host.clone(),
        };
        if hosts
            .iter()
            .any(|(known, _)| crate::shared::host::same_host(known, &host))
        {
            continue;
        }
        let reach = (!agent.is_local()).then(|| Reach::of(agent));
        hosts.push((host, reach));
    }
    hosts
}

/// `fleet status --hosts`: every host's `fleet status`, asked in parallel
/// (this host directly, the others over ssh); a host that does not answer
/// is reported as such, the others regardless.
pub(crate) fn hosts_status(fleet: &Fleet<'_>) -> Result<HostsReport, FleetError> {
    let hosts = roster_hosts(fleet);
    let verb = ["fleet".to_owned(), "status".to_owned()];
    let (local, remote) = std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|(host, reach)| {
                let verb = &verb;
                scope.spawn(move || match reach {
                    None => None,
                    Some(Err(err)) => Some(HostStatus {
                        host: host.clone(),
                        ssh: None,
                        status: None,
                        unreachable: false,
                        error: Some(err.to_string()),
                    }),
                    Some(Ok(reach)) => Some(remote_status(reach, verb)),
                })
            })
            .collect();
        let local = fleet_wide::status(fleet, None);
        let remote: Vec<Option<HostStatus>> = handles
            .into_iter()
            .map(|h| h.join().expect("a status thread panicked"))
            .collect();
        (local, remote)
    });
    let mut local = Some(local?);
    let hosts = hosts
        .into_iter()
        .zip(remote)
        .filter_map(|((host, _), remote)| match remote {
            Some(status) => Some(status),
            None => local.take().map(|status| HostStatus {
                host,
                ssh: None,
                status: Some(status),
                unreachable: false,
                error: None,
            }),
        })
        .collect();
    Ok(HostsReport { hosts })
}

fn remote_status(reach: &Reach, verb: &[String]) -> HostStatus {
    let mut out = HostStatus {
        host: reach.host.clone(),
        ssh: Some(reach.dest.to_string()),
        status: None,
        unreachable: false,
        error: None,
    };
    let fallback = no_fleet();
    let script = remote_script(&reach.host, true, verb, &fallback);
    let run = match ssh::run(&reach.dest, &script, None) {
        Ok(run) => run,
        Err(err) => {
            out.error = Some(err.to_string());
            return out;
        }
    };
    // `fleet status` exits 1 when an agent is down; its report still came.
    let answered = run.runner.as_deref() == Some(FLEET) && matches!(run.code, Some(0 | 1));
    match serde_json::from_slice::<StatusReport>(&run.stdout) {
        Ok(status) if answered => out.status = Some(status),
        _ => {
            let err = reach.fail("mosaic-fleet fleet status", &run);
            out.unreachable = matches!(err, RemoteError::Unreachable { .. });
            out.error = Some(match err {
                RemoteError::Unreachable { why, .. } => why,
                other => other.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_script_logs_what_we_parse() {
        let bundle = Bundle::embedded();
        let script = bundle.file(SEND_SCRIPT).expect("bundled");
        let text = String::from_utf8_lossy(&script.contents);
        assert!(
            text.contains(&format!("{SUBMITTED_LOG}$attempt time(s))")),
            "send-message.sh no longer logs `{SUBMITTED_LOG}N time(s))`: update enters_logged"
        );
        let log = b"send-message.sh: pasted\nsend-message.sh: accepted (Enter pressed 2 time(s))\n";
        assert_eq!(enters_logged(log), Some(2));
        assert_eq!(enters_logged(b"nothing"), None);
    }

    /// Run a remote command line here, with `sh` as the login shell.
    #[allow(clippy::disallowed_types)]
    fn run_here(command: &str, path: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", command])
            .env("PATH", path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn remote_script_runs_mosaic_fleet_else_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join(FLEET);
        std::fs::write(&fake, "#!/bin/sh\nfor a; do printf '[%s]' \"$a\"; done\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let verb = ["agent".into(), "send".into(), "it's $x".into()];
        let command = remote_script("box 2", true, &verb, &no_fleet());
        assert_eq!(
            run_here(&command, &format!("{}:/usr/bin:/bin", dir.path().display())),
            "mosaic-remote: mosaic-fleet\n[--host][box 2][--json][agent][send][it's $x]"
        );
        assert_eq!(run_here(&command, "/usr/bin:/bin"), "mosaic-remote: none\n");
    }
}
