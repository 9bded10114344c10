//! Canary-first rollout (`--start`): the holder, then one canary agent,
//! verified, then the rest in waves, each verified. A failed verification
//! stops what this run started, leaves everything else as it was, and says
//! which step failed and why. The checks themselves live in [`verify`]; they
//! reach the fleet only through the [`ServiceManager`] and [`Transport`]
//! traits and wait on a [`Clock`], so the in-memory fleet tests them.
//!
//! Units already active are not started again. As long as this run has
//! started nothing, each step is checked against one look at the whole
//! fleet taken at the beginning: on a healthy fleet the rollout is a
//! verification that costs one `systemctl show` and one query per tmux
//! server.

mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::shared::envfile;
use crate::shared::render::shell_quote;
use crate::shared::systemd::{ServiceManager, HOLDER_UNIT};
use crate::shared::transport::Transport;

pub(crate) use crate::shared::clock::{Clock, SystemClock};
pub(crate) use verify::SETTLE;

/// What one agent should look like once started.
#[derive(Debug, Clone)]
pub(crate) struct AgentExpectation {
    pub(crate) name: String,
    pub(crate) socket: String,
    /// The command its pane runs.
    pub(crate) command: String,
    /// Its env file's runtime directories (`MOSAIC_RUNTIME_PATH`, then
    /// `MOSAIC_RUNTIME_BIN`), put first on the pane's PATH.
    pub(crate) runtime_path: String,
}

impl AgentExpectation {
    /// From the agent's installed env file (the operator's edits included),
    /// with the same defaults as `start-agent-session.sh`.
    pub(crate) fn from_env_file(path: &Path, name: &str, default_socket: &str) -> AgentExpectation {
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
            runtime_path: runtime_dirs(&vars),
        }
    }
}

/// The runtime directories an env file names: `MOSAIC_RUNTIME_PATH`, then
/// `MOSAIC_RUNTIME_BIN` (as `start-agent-session.sh` reads them).
pub(crate) fn runtime_dirs(vars: &std::collections::BTreeMap<String, String>) -> String {
    [
        "MOSAIC_RUNTIME_PATH",
        crate::shared::runtime_path::RUNTIME_BIN_VAR,
    ]
    .iter()
    .filter_map(|key| vars.get(*key))
    .filter(|value| !value.is_empty())
    .cloned()
    .collect::<Vec<_>>()
    .join(":")
}

#[derive(Debug, Clone)]
pub(crate) struct RolloutPlan {
    pub(crate) holder_session: String,
    /// In roster order.
    pub(crate) agents: Vec<AgentExpectation>,
    /// Default: the first agent.
    pub(crate) canary: Option<String>,
    pub(crate) wave: usize,
    /// How long one verification may wait for units and sessions to come up.
    pub(crate) timeout: Duration,
    /// How long a freshly started agent must then keep running, its session
    /// the same and its unit not restarted (default [`SETTLE`]).
    pub(crate) settle: Duration,
    /// The fleet owner's home (`~/` in commands, `~/.npm-global/bin`).
    pub(crate) home: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RolloutStep {
    pub(crate) step: String,
    pub(crate) units: Vec<String>,
    pub(crate) ok: bool,
    pub(crate) detail: String,
    pub(crate) millis: u128,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RolloutReport {
    pub(crate) ok: bool,
    pub(crate) steps: Vec<RolloutStep>,
    /// Units this run started that were not active before.
    pub(crate) started: Vec<String>,
    /// Units stopped again after a failure.
    pub(crate) stopped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown canary agent `{name}`; the roster's agents are {known}")]
pub(crate) struct UnknownCanary {
    pub(crate) name: String,
    pub(crate) known: String,
}

/// The waves after the canary: `[canary]`, then chunks of `wave`.
pub(crate) fn waves(plan: &RolloutPlan) -> Result<Vec<Vec<String>>, UnknownCanary> {
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

pub(crate) fn rollout(
    services: &dyn ServiceManager,
    transport: &dyn Transport,
    clock: &dyn Clock,
    plan: &RolloutPlan,
) -> Result<RolloutReport, UnknownCanary> {
    let waves = waves(plan)?;
    let check = verify::Checker {
        services,
        transport,
        clock,
        plan,
    };
    let mut report = RolloutReport {
        ok: true,
        steps: Vec::new(),
        started: Vec::new(),
        stopped: Vec::new(),
    };
    let mut started: Vec<String> = Vec::new();

    let names: Vec<String> = plan.agents.iter().map(|a| a.name.clone()).collect();
    let all_units = crate::shared::systemd::fleet_units(&names);
    let mut first = check.look(&all_units, &names).ok();
    let holder_units = vec![HOLDER_UNIT.to_owned()];
    let step = run_step(
        &check,
        "holder",
        &holder_units,
        &mut first,
        &mut started,
        |look, _| check.holder(look),
    );
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
        let units = crate::shared::systemd::agent_units(wave);
        let last = index + 1 == waves.len();
        let mut step = run_step(
            &check,
            &name,
            &units,
            &mut first,
            &mut started,
            |look, fresh| {
                let detail = check.wave(&agents, look, fresh)?;
                if !fresh.is_empty() || last {
                    check.isolated()?;
                }
                Ok(detail)
            },
        );
        failed = !step.ok;
        if failed {
            for problem in verify::programs_missing(services, &agents, &plan.home) {
                step.detail.push_str("; ");
                step.detail.push_str(&problem);
            }
        }
        report.steps.push(step);
    }

    if failed {
        report.ok = false;
        report.stopped = stop_started(services, &started);
    }
    report.started = started;
    Ok(report)
}

/// Stops the agents this run started, and the holder last if this run
/// started it (no agent ran before then: they need it).
fn stop_started(services: &dyn ServiceManager, started: &[String]) -> Vec<String> {
    let mut to_stop: Vec<String> = started
        .iter()
        .filter(|u| *u != HOLDER_UNIT)
        .cloned()
        .collect();
    if started.iter().any(|u| u == HOLDER_UNIT) {
        to_stop.push(HOLDER_UNIT.to_owned());
    }
    if !to_stop.is_empty() {
        let _ = services.stop(&to_stop);
    }
    to_stop
}

/// Start those of `units` that are not active (remembering them) and
/// verify, telling `verify` which units this step started. `first` is the
/// look taken before anything was started: it answers for this step until
/// the rollout starts something, and is given to `verify` (else None:
/// verify looks for itself).
fn run_step(
    check: &verify::Checker<'_>,
    name: &str,
    units: &[String],
    first: &mut Option<verify::Look>,
    started: &mut Vec<String>,
    verify: impl FnOnce(Option<verify::Look>, &[String]) -> Result<String, String>,
) -> RolloutStep {
    let begin = check.clock.now();
    let result = fresh_units(check, units, first.as_ref()).and_then(|fresh| {
        if fresh.is_empty() {
            return verify(first.clone(), &fresh);
        }
        // From here on the first look no longer tells how things are.
        *first = None;
        started.extend(fresh.iter().cloned());
        check
            .services
            .start(&fresh)
            .map_err(|err| err.to_string())?;
        verify(None, &fresh)
    });
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(why) => (false, why),
    };
    RolloutStep {
        step: name.to_owned(),
        units: units.to_vec(),
        ok,
        detail,
        millis: check.clock.now().saturating_sub(begin).as_millis(),
    }
}

/// Those of `units` that are not active, from the first look when it still
/// holds, else from a new query.
fn fresh_units(
    check: &verify::Checker<'_>,
    units: &[String],
    first: Option<&verify::Look>,
) -> Result<Vec<String>, String> {
    let look = match first {
        Some(look) => look,
        None => &check.look(units, &[])?,
    };
    Ok(units
        .iter()
        .filter(|unit| !look.is_active(unit))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(names: &[&str], canary: Option<&str>, wave: usize) -> RolloutPlan {
        RolloutPlan {
            holder_session: "_holder".into(),
            agents: names
                .iter()
                .map(|n| AgentExpectation {
                    name: (*n).into(),
                    socket: "s".into(),
                    command: "x".into(),
                    runtime_path: String::new(),
                })
                .collect(),
            canary: canary.map(str::to_owned),
            wave,
            timeout: Duration::from_secs(1),
            settle: SETTLE,
            home: PathBuf::from("/h"),
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

#[cfg(test)]
mod memory_tests;
