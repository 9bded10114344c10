//! Canary-first rollout (`--start`): the holder, then one canary agent,
//! verified, then the rest in waves, each verified. A failed verification
//! stops what this run started, leaves everything else as it was, and says
//! which step failed and why. The checks themselves live in [`verify`].

mod verify;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::envfile;
use crate::fleet::TmuxServer;
use crate::render::shell_quote;
use crate::systemd::{ServiceManager, HOLDER_UNIT};

pub use verify::SETTLE;

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
    /// Units this run started that were not active before.
    pub started: Vec<String>,
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
        started: Vec::new(),
        stopped: Vec::new(),
    };
    let mut started: Vec<String> = Vec::new();

    let holder_units = vec![HOLDER_UNIT.to_owned()];
    let step = run_step(mgr, "holder", &holder_units, &mut started, || {
        verify::holder(mgr, plan)
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
        let agents: Vec<&AgentExpectation> = wave
            .iter()
            .map(|agent| {
                plan.agents
                    .iter()
                    .find(|a| &a.name == agent)
                    .expect("waves come from the plan")
            })
            .collect();
        let units = crate::systemd::agent_units(wave);
        let step = run_step(mgr, &name, &units, &mut started, || {
            verify::wave(mgr, &agents, plan.timeout, &default_before)
        });
        failed = !step.ok;
        report.steps.push(step);
    }

    if failed {
        report.ok = false;
        report.stopped = stop_started(mgr, &started);
    }
    report.started = started;
    Ok(report)
}

/// Stops the agents this run started, and the holder last if this run
/// started it (no agent ran before then: they need it).
fn stop_started(mgr: &dyn ServiceManager, started: &[String]) -> Vec<String> {
    let mut to_stop: Vec<String> = started
        .iter()
        .filter(|u| *u != HOLDER_UNIT)
        .cloned()
        .collect();
    if started.iter().any(|u| u == HOLDER_UNIT) {
        to_stop.push(HOLDER_UNIT.to_owned());
    }
    if !to_stop.is_empty() {
        let _ = mgr.stop(&to_stop);
    }
    to_stop
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
}
