//! Watching an agent without side effects (`agent watch`, `agent attach
//! --read-only`): a throwaway viewer session grouped with the agent's
//! (`new-session -d -t =<agent>`), attached read-only (`attach -r`).
//!
//! A grouped session shares the agent's windows, and a lone client sizes
//! them, read-only or not (tmux only ignores an `ignore-size` client when
//! another client is attached). So while the viewer is attached the agent's
//! windows are held at their size (`window-size manual`), and afterwards
//! their own setting comes back. The viewer is removed by this process
//! when the client detaches (terminal signals are ignored meanwhile, so a
//! closed terminal still gets its cleanup), when the attach fails, and when
//! the agent's session ends meanwhile (a viewer must not keep the agent's
//! windows, and with them its program, alive after its unit stopped it). A
//! viewer whose `mosaic-fleet` was killed is removed by the next watch.
//! Not `destroy-unattached`: on a grouped session, tmux 3.3a takes its
//! whole server down with it now and then (every session of the fleet).

use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;

use super::TmuxTransport;
use crate::shared::tmux::TmuxServer;
use crate::shared::transport::TransportError;

const POLL: Duration = Duration::from_millis(200);

/// How a watch ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Watched {
    /// The viewer session's name (gone again).
    pub(crate) viewer: String,
    /// The tmux client's exit status (0: detached).
    pub(crate) exit_code: i32,
    /// The agent's session ended while it was watched.
    pub(crate) session_ended: bool,
}

/// One window of the agent's session and its own `window-size` setting
/// (None: inherited).
struct HeldWindow {
    id: String,
    own_setting: Option<String>,
}

pub(super) fn watch(socket: &str, agent: &str) -> Result<Watched, TransportError> {
    let run = |args: &[&str]| TmuxTransport::query(socket, args);
    remove_orphaned_viewers(socket, agent);
    let target = format!("={agent}:");
    let viewer = format!("{agent}@view-{}", std::process::id());
    let id = run(&[
        "new-session",
        "-d",
        "-P",
        "-F",
        "#{session_id}",
        "-s",
        &viewer,
        "-t",
        &format!("={agent}"),
    ])?
    .trim()
    .to_owned();
    let held = match hold_windows(socket, &target) {
        Ok(held) => held,
        Err(err) => {
            let _ = run(&["kill-session", "-t", &id]);
            return Err(err);
        }
    };
    let outcome = attach(socket, agent, &id);
    let _ = run(&["kill-session", "-t", &id]);
    release_windows(socket, agent, &held);
    let (exit_code, session_ended) = outcome?;
    Ok(Watched {
        viewer,
        exit_code,
        session_ended,
    })
}

/// Viewers of `agent` whose `mosaic-fleet` (the pid in their name) is gone:
/// killed before it could clean up. Addressed by id (a name with `@` is
/// not a target tmux reads back).
fn remove_orphaned_viewers(socket: &str, agent: &str) {
    let prefix = format!("{agent}@view-");
    let Ok(listed) = TmuxTransport::query(
        socket,
        &["list-sessions", "-F", "#{session_id} #{session_name}"],
    ) else {
        return;
    };
    for line in listed.lines() {
        let Some((id, name)) = line.split_once(' ') else {
            continue;
        };
        let pid = name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = TmuxTransport::query(socket, &["kill-session", "-t", id]);
        }
    }
}

/// `window-size manual` on every window of the agent's session.
fn hold_windows(socket: &str, target: &str) -> Result<Vec<HeldWindow>, TransportError> {
    let run = |args: &[&str]| TmuxTransport::query(socket, args);
    let mut held = Vec::new();
    for id in run(&["list-windows", "-t", target, "-F", "#{window_id}"])?.lines() {
        let own = run(&["show-options", "-w", "-q", "-v", "-t", id, "window-size"])?;
        run(&["set-option", "-w", "-t", id, "window-size", "manual"])?;
        held.push(HeldWindow {
            id: id.to_owned(),
            own_setting: Some(own.trim().to_owned()).filter(|s| !s.is_empty()),
        });
    }
    Ok(held)
}

/// Give the windows their own setting back, unless another viewer of the
/// same agent still watches (it holds them too).
fn release_windows(socket: &str, agent: &str, held: &[HeldWindow]) {
    let prefix = format!("{agent}@view-");
    let others = TmuxServer::new(socket)
        .sessions()
        .iter()
        .any(|s| s.name.starts_with(&prefix));
    if others {
        return;
    }
    for window in held {
        let id = window.id.as_str();
        let _ = match &window.own_setting {
            Some(value) => TmuxTransport::query(
                socket,
                &["set-option", "-w", "-t", id, "window-size", value],
            ),
            None => {
                TmuxTransport::query(socket, &["set-option", "-w", "-u", "-t", id, "window-size"])
            }
        };
    }
}

/// Attach this terminal read-only to the viewer `id` until the client ends,
/// or the agent's session does. Returns the client's exit status and
/// whether the session ended.
fn attach(socket: &str, agent: &str, id: &str) -> Result<(i32, bool), TransportError> {
    let mut child = TmuxServer::new(socket)
        .command()
        .args(["attach-session", "-r", "-t", id])
        .stdin(Stdio::inherit())
        .spawn()
        .map_err(|cause| TransportError::Spawn {
            program: "tmux".into(),
            cause,
        })?;
    // Keys and a closing terminal are the client's business; this process
    // stays to clean up.
    let ignored = ignore_terminal_signals();
    let server = TmuxServer::new(socket);
    let result = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok((status.code().unwrap_or(1), false)),
            Ok(None) if !server.has_session(agent) => {
                let _ = server.command().args(["kill-session", "-t", id]).output();
                let status = child.wait().map(|s| s.code().unwrap_or(1)).unwrap_or(1);
                break Ok((status, true));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(cause) => {
                break Err(TransportError::Spawn {
                    program: "tmux".into(),
                    cause,
                })
            }
        }
    };
    restore_signals(ignored);
    result
}

type SavedHandlers = Vec<(libc::c_int, libc::sighandler_t)>;

fn ignore_terminal_signals() -> SavedHandlers {
    [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP]
        .into_iter()
        // SAFETY: SIG_IGN is a valid disposition for these signals.
        .map(|signal| (signal, unsafe { libc::signal(signal, libc::SIG_IGN) }))
        .collect()
}

fn restore_signals(saved: SavedHandlers) {
    for (signal, handler) in saved {
        // SAFETY: restores the disposition signal() returned for it.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}
