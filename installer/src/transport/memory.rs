//! An in-memory fleet for testing the verbs' logic in isolation: one
//! [`MemoryFleet`] is at once the [`Transport`] and the service manager, so
//! that starting an agent's unit gives it a session, stopping the holder
//! ends every agent, and a delivered message lands in the agent's record.
//! It only models what the verbs observe; the real-tmux and real-systemd
//! tests cover the real thing.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

use std::time::Duration;

use super::{
    Delivery, DeliveryOptions, FleetView, Readiness, ReadyRule, SessionState, Transport,
    TransportError,
};
use crate::systemd::{ServiceManager, SystemdError, HOLDER_UNIT};
use crate::verbs::units::FleetServices;

/// One unit of the in-memory manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryUnit {
    pub active: bool,
    pub enabled: bool,
    pub restarts: u64,
}

/// One agent's session.
#[derive(Debug, Clone, Default)]
pub struct MemoryPane {
    /// What was submitted, in order.
    pub submitted: Vec<String>,
    /// Text left on the input line (a pane that never accepts Enter).
    pub draft: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    unreachable: Option<String>,
    /// Manager verbs that fail although the manager answers.
    failing: BTreeSet<String>,
    units: BTreeMap<String, MemoryUnit>,
    panes: BTreeMap<String, MemoryPane>,
    /// Agents whose program keeps every text as a draft.
    draft_sinks: BTreeSet<String>,
    /// Agents whose program never becomes ready for input.
    never_ready: BTreeSet<String>,
    /// Every service-manager call, as `verb unit...`.
    calls: Vec<String>,
    leaked: Vec<String>,
    caller: Option<String>,
}

/// A fleet that lives in memory.
#[derive(Debug, Default)]
pub struct MemoryFleet {
    state: RefCell<State>,
}

fn agent_of(unit: &str) -> Option<&str> {
    unit.strip_prefix("mosaic-agent@")?.strip_suffix(".service")
}

impl MemoryFleet {
    pub fn new() -> MemoryFleet {
        MemoryFleet::default()
    }

    /// Holder and these agents enabled and running.
    pub fn running(agents: &[&str]) -> MemoryFleet {
        let fleet = MemoryFleet::new();
        let units = crate::systemd::fleet_units(agents);
        fleet.enable(&units).expect("memory manager");
        fleet.start(&units).expect("memory manager");
        fleet.state.borrow_mut().calls.clear();
        fleet
    }

    /// Make every manager call fail as if no manager answered.
    pub fn set_unreachable(&self, why: &str) {
        self.state.borrow_mut().unreachable = Some(why.to_owned());
    }

    /// Make every `verb` call (`enable`, `stop`, ...) fail from now on.
    pub fn fail_on(&self, verb: &str) {
        self.state.borrow_mut().failing.insert(verb.to_owned());
    }

    /// The agent's program holds every text as a draft from now on.
    pub fn make_draft_sink(&self, agent: &str) {
        self.state.borrow_mut().draft_sinks.insert(agent.to_owned());
    }

    /// The agent's program never becomes ready for input from now on.
    pub fn make_never_ready(&self, agent: &str) {
        self.state.borrow_mut().never_ready.insert(agent.to_owned());
    }

    /// The agent's session ends (its program exited); the unit stays.
    pub fn kill_session(&self, agent: &str) {
        self.state.borrow_mut().panes.remove(agent);
    }

    /// Pretend an agent session leaked onto the operator's server.
    pub fn leak(&self, problem: &str) {
        self.state.borrow_mut().leaked.push(problem.to_owned());
    }

    pub fn set_caller(&self, name: &str) {
        self.state.borrow_mut().caller = Some(name.to_owned());
    }

    pub fn submitted(&self, agent: &str) -> Vec<String> {
        self.pane(agent).map(|p| p.submitted).unwrap_or_default()
    }

    pub fn pane(&self, agent: &str) -> Option<MemoryPane> {
        self.state.borrow().panes.get(agent).cloned()
    }

    pub fn unit(&self, unit: &str) -> MemoryUnit {
        self.state
            .borrow()
            .units
            .get(unit)
            .cloned()
            .unwrap_or_default()
    }

    /// Every service-manager call so far, as `verb unit...`.
    pub fn calls(&self) -> Vec<String> {
        self.state.borrow().calls.clone()
    }

    fn call(&self, verb: &str, units: &[String]) -> Result<(), SystemdError> {
        let mut state = self.state.borrow_mut();
        let failure = match &state.unreachable {
            Some(why) => Some(why.clone()),
            None => state
                .failing
                .contains(verb)
                .then(|| format!("{verb} failed (injected)")),
        };
        if let Some(message) = failure {
            return Err(SystemdError {
                args: format!("{verb} {}", units.join(" ")),
                message,
            });
        }
        state.calls.push(format!("{verb} {}", units.join(" ")));
        Ok(())
    }

    fn set_active(&self, unit: &str, active: bool) {
        let mut state = self.state.borrow_mut();
        state.units.entry(unit.to_owned()).or_default().active = active;
        if unit == HOLDER_UNIT && !active {
            // PartOf=: the holder takes every agent down with it.
            state.panes.clear();
            for (name, unit) in state.units.iter_mut() {
                if agent_of(name).is_some() {
                    unit.active = false;
                }
            }
        }
        if let Some(agent) = agent_of(unit) {
            if active {
                state.panes.entry(agent.to_owned()).or_default();
            } else {
                state.panes.remove(agent);
            }
        }
    }
}

impl ServiceManager for MemoryFleet {
    fn reachable(&self) -> Result<(), String> {
        match &self.state.borrow().unreachable {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    fn daemon_reload(&self) -> Result<(), SystemdError> {
        self.call("daemon-reload", &[])
    }

    fn enable(&self, units: &[String]) -> Result<(), SystemdError> {
        self.call("enable", units)?;
        let mut state = self.state.borrow_mut();
        for unit in units {
            state.units.entry(unit.clone()).or_default().enabled = true;
        }
        Ok(())
    }

    fn disable(&self, units: &[String]) -> Result<(), SystemdError> {
        self.call("disable", units)?;
        let mut state = self.state.borrow_mut();
        for unit in units {
            state.units.entry(unit.clone()).or_default().enabled = false;
        }
        Ok(())
    }

    fn start(&self, units: &[String]) -> Result<(), SystemdError> {
        self.call("start", units)?;
        for unit in units {
            self.set_active(unit, true);
        }
        Ok(())
    }

    fn stop(&self, units: &[String]) -> Result<(), SystemdError> {
        self.call("stop", units)?;
        for unit in units {
            self.set_active(unit, false);
        }
        Ok(())
    }

    fn restart(&self, units: &[String]) -> Result<(), SystemdError> {
        self.call("restart", units)?;
        for unit in units {
            self.set_active(unit, false);
            self.set_active(unit, true);
        }
        Ok(())
    }

    fn property(&self, unit: &str, name: &str) -> Result<String, SystemdError> {
        self.call("show", &[unit.to_owned()])?;
        let unit = self.unit(unit);
        Ok(match name {
            "ActiveState" if unit.active => "active".into(),
            "ActiveState" => "inactive".into(),
            "SubState" if unit.active => "running".into(),
            "SubState" => "dead".into(),
            "UnitFileState" if unit.enabled => "enabled".into(),
            "UnitFileState" => "disabled".into(),
            "NRestarts" => unit.restarts.to_string(),
            _ => String::new(),
        })
    }
}

impl FleetServices for MemoryFleet {}

impl Transport for MemoryFleet {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn sessions(&self, agents: &[String]) -> Result<FleetView, TransportError> {
        let state = self.state.borrow();
        let holder_up = state.units.get(HOLDER_UNIT).is_some_and(|u| u.active);
        let agents = agents
            .iter()
            .map(|name| {
                let session = match state.panes.get(name) {
                    Some(_) => SessionState {
                        alive: true,
                        command: Some("agent".into()),
                        idle_secs: Some(0),
                    },
                    None => SessionState::down(),
                };
                (name.clone(), session)
            })
            .collect();
        Ok(FleetView { holder_up, agents })
    }

    fn deliver(
        &self,
        agent: &str,
        submissions: &[String],
        options: &DeliveryOptions,
    ) -> Result<Delivery, TransportError> {
        match self.wait_ready(agent, &options.ready, options.ready_timeout)? {
            Readiness::Ready { .. } => {}
            Readiness::NotReady { why } => return Ok(Delivery::NotReady { why }),
            Readiness::Down { why } => return Ok(Delivery::Down { why }),
        }
        let mut state = self.state.borrow_mut();
        let sink = state.draft_sinks.contains(agent);
        let pane = state.panes.get_mut(agent).expect("ready means alive");
        if sink {
            pane.draft = submissions.first().cloned();
            return Ok(Delivery::Draft {
                enters: options.attempts,
                why: "the memory sink keeps every text".into(),
            });
        }
        pane.submitted.extend(submissions.iter().cloned());
        let submissions = u32::try_from(submissions.len()).unwrap_or(u32::MAX);
        Ok(Delivery::Accepted {
            enters: submissions,
            submissions,
        })
    }

    fn wait_ready(
        &self,
        agent: &str,
        _rule: &ReadyRule,
        _timeout: Duration,
    ) -> Result<Readiness, TransportError> {
        let state = self.state.borrow();
        Ok(if !state.panes.contains_key(agent) {
            Readiness::Down {
                why: format!("no session ={agent} in memory"),
            }
        } else if state.never_ready.contains(agent) {
            Readiness::NotReady {
                why: format!("agent {agent} never becomes ready in memory"),
            }
        } else {
            Readiness::Ready { waited_ms: 0 }
        })
    }

    fn recent_output(&self, agent: &str, lines: usize) -> Result<String, TransportError> {
        let pane = self.pane(agent).ok_or_else(|| TransportError::NoSession {
            agent: agent.to_owned(),
            where_: "in memory".into(),
        })?;
        Ok(super::last_lines(&pane.submitted, lines))
    }

    fn attach_command(
        &self,
        agent: &str,
        read_only: bool,
    ) -> Result<Vec<OsString>, TransportError> {
        if self.pane(agent).is_none() {
            return Err(TransportError::NoSession {
                agent: agent.to_owned(),
                where_: "in memory".into(),
            });
        }
        let mode = if read_only { "read-only" } else { "read-write" };
        Ok(vec!["memory-attach".into(), agent.into(), mode.into()])
    }

    fn isolation_problems(&self, _agents: &[String]) -> Vec<String> {
        self.state.borrow().leaked.clone()
    }

    fn caller(&self) -> Option<String> {
        self.state.borrow().caller.clone()
    }
}
