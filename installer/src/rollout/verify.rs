//! What "verified" means for a rollout step. The holder: its unit is active
//! and its session exists on the named socket. A wave of agents: each unit
//! is active, its session exists on its socket and its pane runs the agent's
//! command; then, after [`SETTLE`], every session is still the same one (same
//! pane process, no restart of the unit in between); and the operator's
//! default tmux server has exactly the sessions it had before.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::fleet::{SessionInfo, TmuxServer};
use crate::runtime_path::{agent_pane_path, find_program, ProgramLookup, SYSTEMD_DEFAULT_PATH};
use crate::systemd::{agent_unit, ServiceManager, HOLDER_UNIT};

use super::{AgentExpectation, RolloutPlan};

/// How long a freshly started wave must keep its sessions: an agent whose
/// program exits at once (a missing binary, bad credentials) loses its
/// session within this time, even when it lived long enough to be seen.
pub const SETTLE: Duration = Duration::from_secs(2);

const POLL: Duration = Duration::from_millis(100);

pub(super) fn holder(mgr: &dyn ServiceManager, plan: &RolloutPlan) -> Result<String, String> {
    wait_active(mgr, HOLDER_UNIT, plan.timeout)?;
    let server = TmuxServer::new(&plan.socket);
    poll(plan.timeout, || server.has_session(&plan.holder_session)).map_err(|()| {
        format!(
            "{HOLDER_UNIT} is active but tmux -L {} has no session {}",
            plan.socket, plan.holder_session
        )
    })?;
    Ok(format!(
        "tmux -L {} up with session {}",
        plan.socket, plan.holder_session
    ))
}

/// One agent as first seen up: its pane's process and the unit's restarts.
struct Sighting {
    pane_pid: String,
    restarts: String,
}

pub(super) fn wave(
    mgr: &dyn ServiceManager,
    agents: &[&AgentExpectation],
    timeout: Duration,
    default_before: &[SessionInfo],
) -> Result<String, String> {
    let sightings = agents
        .iter()
        .map(|agent| come_up(mgr, agent, timeout))
        .collect::<Result<Vec<_>, _>>()?;
    std::thread::sleep(SETTLE.min(timeout));
    for (agent, sighting) in agents.iter().zip(&sightings) {
        still_up(mgr, agent, sighting)?;
    }
    default_untouched(default_before)?;
    let details: Vec<String> = agents
        .iter()
        .map(|agent| format!("{} running `{}`", agent.name, agent.command))
        .collect();
    Ok(details.join("; "))
}

/// Unit active, session present on its socket, pane running its command.
/// Fails early when the unit restarts meanwhile: its session already ended.
fn come_up(
    mgr: &dyn ServiceManager,
    agent: &AgentExpectation,
    timeout: Duration,
) -> Result<Sighting, String> {
    let unit = agent_unit(&agent.name);
    let restarts = mgr.property(&unit, "NRestarts").unwrap_or_default();
    let server = TmuxServer::new(&agent.socket);
    let mut state = String::new();
    let mut restarted = false;
    let up = poll(timeout, || {
        state = mgr.property(&unit, "ActiveState").unwrap_or_default();
        restarted = mgr.property(&unit, "NRestarts").unwrap_or_default() != restarts;
        restarted || (state == "active" && server.has_session(&agent.name))
    });
    if restarted {
        return Err(ended(agent, "right after it started"));
    }
    if up.is_err() {
        return Err(if state == "active" {
            format!(
                "{unit} is active but tmux -L {} has no session ={}",
                agent.socket, agent.name
            )
        } else {
            format!(
                "{unit} is {} after {} s; see {}",
                if state.is_empty() { "unknown" } else { &state },
                timeout.as_secs(),
                where_to_look(&unit)
            )
        });
    }
    // One read for both: the pid and the command of the same pane.
    let pane = server.pane_format(&agent.name, "#{pane_pid}\t#{pane_start_command}");
    let Some((pane_pid, running)) = pane.as_deref().and_then(|p| p.split_once('\t')) else {
        return Err(ended(agent, "right after it started"));
    };
    if loose(running) != loose(&agent.command) {
        return Err(format!(
            "session ={} runs `{running}`, expected `{}`",
            agent.name, agent.command
        ));
    }
    Ok(Sighting {
        pane_pid: pane_pid.to_owned(),
        restarts,
    })
}

/// The same session as when first seen, and no restart of the unit since.
fn still_up(
    mgr: &dyn ServiceManager,
    agent: &AgentExpectation,
    seen: &Sighting,
) -> Result<(), String> {
    let unit = agent_unit(&agent.name);
    let pane_pid = TmuxServer::new(&agent.socket).pane_format(&agent.name, "#{pane_pid}");
    let restarts = mgr.property(&unit, "NRestarts").unwrap_or_default();
    if pane_pid.as_deref() == Some(seen.pane_pid.as_str()) && restarts == seen.restarts {
        return Ok(());
    }
    Err(ended(
        agent,
        &format!("within {} s of starting", SETTLE.as_secs()),
    ))
}

fn ended(agent: &AgentExpectation, when: &str) -> String {
    let unit = agent_unit(&agent.name);
    format!(
        "session ={} ended {when}: its command `{}` exited or was killed, and {unit} is restarting it; see {}",
        agent.name,
        agent.command,
        where_to_look(&unit)
    )
}

/// Agents of a failed wave whose command's program is not on the PATH
/// their pane would get: the usual reason a start fails at once (Mosaic
/// #581), said with the program and the PATH searched.
pub(super) fn programs_missing(
    mgr: &dyn ServiceManager,
    agents: &[&AgentExpectation],
    home: &Path,
) -> Vec<String> {
    let base = mgr
        .manager_path()
        .unwrap_or_else(|| SYSTEMD_DEFAULT_PATH.to_owned());
    agents
        .iter()
        .filter_map(|agent| {
            let path = agent_pane_path(&agent.runtime_path, home, &base);
            match find_program(&agent.command, &path, home) {
                ProgramLookup::NotFound { program } => Some(format!(
                    "agent {}: `{program}` (from `{}`) is not on its PATH {path}; install it, or name its directory in MOSAIC_RUNTIME_BIN and run mosaic-install again",
                    agent.name, agent.command
                )),
                _ => None,
            }
        })
        .collect()
}

fn where_to_look(unit: &str) -> String {
    format!("`systemctl --user status {unit}` and `journalctl --user -u {unit}`")
}

/// tmux shows a start command quoted and escaped when it has specials.
fn loose(command: &str) -> String {
    let trimmed = command
        .strip_prefix('"')
        .and_then(|c| c.strip_suffix('"'))
        .unwrap_or(command);
    trimmed.replace('\\', "")
}

fn default_untouched(before: &[SessionInfo]) -> Result<(), String> {
    let after = TmuxServer::default_server().sessions();
    if after == before {
        Ok(())
    } else {
        Err(format!(
            "the default tmux server changed: before {before:?}, after {after:?}"
        ))
    }
}

fn wait_active(mgr: &dyn ServiceManager, unit: &str, timeout: Duration) -> Result<(), String> {
    let mut last = String::new();
    let found = poll(timeout, || {
        last = mgr.property(unit, "ActiveState").unwrap_or_default();
        last == "active" || last == "failed"
    });
    match (found, last.as_str()) {
        (Ok(()), "active") => Ok(()),
        _ => Err(format!(
            "{unit} is {}; see {}",
            if last.is_empty() { "unknown" } else { &last },
            where_to_look(unit)
        )),
    }
}

fn poll(timeout: Duration, mut check: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(());
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmux_quoting_is_ignored_when_comparing() {
        assert_eq!(
            loose(r#""sleep 100 # \"q\" \$HOME""#),
            loose(r#"sleep 100 # "q" $HOME"#)
        );
    }
}
