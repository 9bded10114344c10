//! Canary-first rollout (`--start`): the holder, then one canary agent,
//! verified, then the rest in waves, each verified. A failed verification
//! stops what this run started, leaves everything else as it was, and says
//! which step failed and why.
//!
//! "Verified" means: the unit is active, its session exists on its named
//! socket, the session's pane runs the agent's command, and the operator's
//! default tmux server has exactly the sessions it had before.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::envfile;
use crate::fleet::{SessionInfo, TmuxServer};
use crate::render::shell_quote;
use crate::systemd::{agent_unit, ServiceManager, HOLDER_UNIT};

/// What one agent should look like once started.
#[derive(Debug, Clone)]
pub struct AgentExpectation {
    pub name: String,
    pub socket: String,
    /// The command its pane runs.
    pub command: String,
}

impl AgentExpectation {
    /// From the agent's installed env file (the operator's edits included),
    /// with the same defaults as `start-agent-session.sh`.
    pub fn from_env_file(path: &Path, name: &str, default_socket: &str) -> AgentExpectation {
        let vars = std::fs::read_to_string(path)
            .map(|text| envfile::parse(&text))
            .unwrap_or_default();
        let command = vars
            .get("MOSAIC_AGENT_COMMAND")
            .cloned()
            .unwrap_or_else(|| {
                let runtime = vars
                    .get("MOSAIC_AGENT_RUNTIME")
                    .map(String::as_str)
                    .unwrap_or("claude");
                match vars.get("MOSAIC_AGENT_MODEL") {
                    Some(model) => format!("mosaic yolo {runtime} --model {}", shell_quote(model)),
                    None => format!("mosaic yolo {runtime}"),
                }
            });
        AgentExpectation {
            name: name.to_owned(),
            socket: vars
                .get("MOSAIC_TMUX_SOCKET")
                .cloned()
                .unwrap_or_else(|| default_socket.to_owned()),
            command,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RolloutPlan {
    pub socket: String,
    pub holder_session: String,
    /// In roster order.
    pub agents: Vec<AgentExpectation>,
    /// Default: the first agent.
    pub canary: Option<String>,
    pub wave: usize,
    /// How long one verification may wait for units and sessions.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolloutStep {
    pub step: String,
    pub units: Vec<String>,
    pub ok: bool,
    pub detail: String,
    pub millis: u128,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub ok: bool,
    pub steps: Vec<RolloutStep>,
    /// Units stopped again after a failure.
    pub stopped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown canary agent `{name}`; the roster's agents are {known}")]
pub struct UnknownCanary {
    pub name: String,
    pub known: String,
}

/// The waves after the canary: [canary], then chunks of `wave`.
pub fn waves(plan: &RolloutPlan) -> Result<Vec<Vec<String>>, UnknownCanary> {
    let names: Vec<&str> = plan.agents.iter().map(|a| a.name.as_str()).collect();
    let canary = match &plan.canary {
        Some(name) if !names.contains(&name.as_str()) => {
            return Err(UnknownCanary {
                name: name.clone(),
                known: names.join(", "),
            })
        }
        Some(name) => name.clone(),
        None => match names.first() {
            Some(first) => (*first).to_owned(),
            None => return Ok(Vec::new()),
        },
    };
    let rest: Vec<String> = names
        .iter()
        .filter(|n| **n != canary)
        .map(|n| (*n).to_owned())
        .collect();
    let mut out = vec![vec![canary]];
    out.extend(rest.chunks(plan.wave.max(1)).map(<[String]>::to_vec));
    Ok(out)
}

pub fn rollout(
    mgr: &dyn ServiceManager,
    plan: &RolloutPlan,
) -> Result<RolloutReport, UnknownCanary> {
    let waves = waves(plan)?;
    let default_before = TmuxServer::default_server().sessions();
    let mut report = RolloutReport {
        ok: true,
        steps: Vec::new(),
        stopped: Vec::new(),
    };
    let mut started: Vec<String> = Vec::new();

    let holder_units = vec![HOLDER_UNIT.to_owned()];
    let step = run_step(mgr, "holder", &holder_units, &mut started, || {
        verify_holder(mgr, plan)
    });
    let mut failed = !step.ok;
    report.steps.push(step);

    for (index, wave) in waves.iter().enumerate() {
        if failed {
            break;
        }
        let name = if index == 0 {
            format!("canary {}", wave[0])
        } else {
            format!("wave {index}")
        };
        let units: Vec<String> = wave.iter().map(|a| agent_unit(a)).collect();
        let step = run_step(mgr, &name, &units, &mut started, || {
            wave.iter()
                .map(|agent| {
                    let expect = plan
                        .agents
                        .iter()
                        .find(|a| &a.name == agent)
                        .expect("waves come from the plan");
                    verify_agent(mgr, expect, plan.timeout)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|details| details.join("; "))
                .and_then(|detail| default_untouched(&default_before).map(|()| detail))
        });
        failed = !step.ok;
        report.steps.push(step);
    }

    if failed {
        report.ok = false;
        let agents: Vec<String> = started
            .iter()
            .filter(|u| *u != HOLDER_UNIT)
            .cloned()
            .collect();
        let mut to_stop = agents;
        if started.iter().any(|u| u == HOLDER_UNIT) {
            to_stop.push(HOLDER_UNIT.to_owned());
        }
        if !to_stop.is_empty() {
            let _ = mgr.stop(&to_stop);
            report.stopped = to_stop;
        }
    }
    Ok(report)
}

/// Start `units` (remembering which were not active before) and verify.
fn run_step(
    mgr: &dyn ServiceManager,
    name: &str,
    units: &[String],
    started: &mut Vec<String>,
    verify: impl FnOnce() -> Result<String, String>,
) -> RolloutStep {
    let clock = Instant::now();
    let fresh: Vec<String> = units
        .iter()
        .filter(|u| mgr.property(u, "ActiveState").as_deref() != Ok("active"))
        .cloned()
        .collect();
    let result = mgr
        .start(units)
        .map_err(|err| err.to_string())
        .and_then(|()| verify());
    started.extend(fresh);
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(why) => (false, why),
    };
    RolloutStep {
        step: name.to_owned(),
        units: units.to_vec(),
        ok,
        detail,
        millis: clock.elapsed().as_millis(),
    }
}

fn verify_holder(mgr: &dyn ServiceManager, plan: &RolloutPlan) -> Result<String, String> {
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

/// Unit active, session present on its socket, pane running its command.
pub fn verify_agent(
    mgr: &dyn ServiceManager,
    agent: &AgentExpectation,
    timeout: Duration,
) -> Result<String, String> {
    let unit = agent_unit(&agent.name);
    wait_active(mgr, &unit, timeout)?;
    let server = TmuxServer::new(&agent.socket);
    poll(timeout, || server.has_session(&agent.name)).map_err(|()| {
        format!(
            "{unit} is active but tmux -L {} has no session ={}",
            agent.socket, agent.name
        )
    })?;
    let running = server
        .pane_format(&agent.name, "#{pane_start_command}")
        .unwrap_or_default();
    if loose(&running) != loose(&agent.command) {
        return Err(format!(
            "session ={} runs `{running}`, expected `{}`",
            agent.name, agent.command
        ));
    }
    Ok(format!("{} running `{}`", agent.name, agent.command))
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
            "{unit} is {} (see `journalctl --user -u {unit}`)",
            if last.is_empty() { "unknown" } else { &last }
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
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(names: &[&str], canary: Option<&str>, wave: usize) -> RolloutPlan {
        RolloutPlan {
            socket: "s".into(),
            holder_session: "_holder".into(),
            agents: names
                .iter()
                .map(|n| AgentExpectation {
                    name: (*n).into(),
                    socket: "s".into(),
                    command: "x".into(),
                })
                .collect(),
            canary: canary.map(str::to_owned),
            wave,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn canary_first_then_waves() {
        let w = waves(&plan(&["a", "b", "c", "d", "e", "f"], None, 4)).unwrap();
        assert_eq!(w, vec![vec!["a"], vec!["b", "c", "d", "e"], vec!["f"]]);
        let w = waves(&plan(&["a", "b", "c"], Some("c"), 1)).unwrap();
        assert_eq!(w, vec![vec!["c"], vec!["a"], vec!["b"]]);
    }

    #[test]
    fn unknown_canary_lists_agents() {
        let err = waves(&plan(&["a", "b"], Some("z"), 4)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown canary agent `z`; the roster's agents are a, b"
        );
    }

    #[test]
    fn tmux_quoting_is_ignored_when_comparing() {
        assert_eq!(
            loose(r#""sleep 100 # \"q\" \$HOME""#),
            loose(r#"sleep 100 # "q" $HOME"#)
        );
    }
}
