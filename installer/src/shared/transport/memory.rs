//! An in-memory fleet for testing the verbs' logic in isolation: one
//! [`MemoryFleet`] is at once the [`Transport`], the service manager and the
//! [`Clock`], so that starting an agent's unit gives it a session, stopping
//! the holder ends every agent, and a delivered message lands in the agent's
//! record. It only models what the verbs observe; the real-tmux and
//! real-systemd tests cover the real thing.
//!
//! Time is the fleet's own: it moves only when someone sleeps on it, and
//! what is due meanwhile happens at its moment, as the real units behave:
//! an agent whose program exits ([`MemoryFleet::crash_after`]) loses its
//! session; its unit's supervisor notices within [`SUPERVISE_POLL`] and the
//! unit fails; [`RESTART_SEC`] later systemd starts it again (`NRestarts`
//! + 1, a new session).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::time::Duration;

use super::{
    Delivery, DeliveryOptions, FleetView, Launch, Readiness, ReadyRule, SessionState, Transport,
    TransportError, Watched,
};
use crate::shared::clock::Clock;
use crate::shared::systemd::units::FleetServices;
use crate::shared::systemd::{ServiceManager, SystemdError, HOLDER_UNIT};

/// How often an agent unit's supervisor looks for its session
/// (`start-agent-session.sh --supervise`).
pub(crate) const SUPERVISE_POLL: Duration = Duration::from_secs(1);
/// The agent unit's `RestartSec=`.
pub(crate) const RESTART_SEC: Duration = Duration::from_secs(2);
/// Where the fleet's clock starts: the machine has been up an hour.
const BOOT_UPTIME: Duration = Duration::from_secs(3600);
/// When the units of [`MemoryFleet::running`] became active.
const RUNNING_SINCE: Duration = Duration::from_secs(10);

/// One unit of the in-memory manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemoryUnit {
    pub(crate) active: bool,
    /// Failed, waiting [`RESTART_SEC`] to be started again.
    pub(crate) auto_restart: bool,
    pub(crate) enabled: bool,
    pub(crate) restarts: u64,
    /// When it last became active, on the fleet's clock.
    pub(crate) active_since: Duration,
}

/// One agent's session.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryPane {
    /// What was submitted, in order.
    pub(crate) submitted: Vec<String>,
    /// Text left on the input line (a pane that never accepts Enter).
    pub(crate) draft: Option<String>,
    /// Which launch of the agent's session this is.
    pub(crate) launch: u64,
}

/// Something due at a moment of the fleet's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Due {
    /// The program of this launch exits: its session ends.
    ProgramExits { agent: String, launch: u64 },
    /// The unit's supervisor looks for the session.
    SupervisorLooks { agent: String },
    /// The supervisor process itself dies; the session stays.
    SupervisorDies { agent: String },
    /// systemd starts the failed unit again.
    Restart { agent: String },
}

impl Due {
    fn agent(&self) -> &str {
        match self {
            Due::ProgramExits { agent, .. }
            | Due::SupervisorLooks { agent }
            | Due::SupervisorDies { agent }
            | Due::Restart { agent } => agent,
        }
    }
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
    now: Duration,
    /// Sessions launched so far: the next launch's id.
    launched: u64,
    /// What is due, in no particular order.
    due: Vec<(Duration, Due)>,
    /// Agents whose program exits this long after each launch.
    crash_after: BTreeMap<String, Duration>,
    /// Agents whose supervisor dies this long after their unit next starts.
    supervisor_dies: BTreeMap<String, Duration>,
    /// The command each agent's session reports it was started with.
    commands: BTreeMap<String, String>,
}

/// A fleet that lives in memory.
#[derive(Debug, Default)]
pub(crate) struct MemoryFleet {
    state: RefCell<State>,
}

fn agent_of(unit: &str) -> Option<&str> {
    unit.strip_prefix("mosaic-agent@")?.strip_suffix(".service")
}

impl MemoryFleet {
    pub(crate) fn new() -> MemoryFleet {
        let fleet = MemoryFleet::default();
        fleet.state.borrow_mut().now = BOOT_UPTIME;
        fleet
    }

    /// Holder and these agents enabled and running for most of an hour.
    pub(crate) fn running(agents: &[&str]) -> MemoryFleet {
        let fleet = MemoryFleet::new();
        let units = crate::shared::systemd::fleet_units(agents);
        fleet.enable(&units).expect("memory manager");
        fleet.start(&units).expect("memory manager");
        {
            let mut state = fleet.state.borrow_mut();
            state.calls.clear();
            for unit in state.units.values_mut() {
                unit.active_since = RUNNING_SINCE;
            }
        }
        fleet
    }

    /// From now on, the agent's program exits `after` each launch of its
    /// session (a crash at 3 s: `crash_after(agent, 3 s)`); its unit then
    /// restarts it, again and again.
    pub(crate) fn crash_after(&self, agent: &str, after: Duration) {
        let mut state = self.state.borrow_mut();
        state.crash_after.insert(agent.to_owned(), after);
        let launch = state.panes.get(agent).map(|pane| pane.launch);
        if let Some(launch) = launch {
            let at = state.now + after;
            state.schedule(
                at,
                Due::ProgramExits {
                    agent: agent.to_owned(),
                    launch,
                },
            );
        }
    }

    /// The supervisor of the agent's unit dies `after` the unit next starts,
    /// once: systemd restarts the unit (`NRestarts` + 1) and the new
    /// supervisor finds the session still there.
    pub(crate) fn supervisor_dies_after(&self, agent: &str, after: Duration) {
        let mut state = self.state.borrow_mut();
        state.supervisor_dies.insert(agent.to_owned(), after);
    }

    /// The command the agent's session reports it was started with (by
    /// default the in-memory transport cannot tell).
    pub(crate) fn launches_with(&self, agent: &str, command: &str) {
        let mut state = self.state.borrow_mut();
        state.commands.insert(agent.to_owned(), command.to_owned());
    }

    /// Make every manager call fail as if no manager answered.
    pub(crate) fn set_unreachable(&self, why: &str) {
        self.state.borrow_mut().unreachable = Some(why.to_owned());
    }

    /// Make every `verb` call (`enable`, `stop`, ...) fail from now on.
    pub(crate) fn fail_on(&self, verb: &str) {
        self.state.borrow_mut().failing.insert(verb.to_owned());
    }

    /// The agent's program holds every text as a draft from now on.
    pub(crate) fn make_draft_sink(&self, agent: &str) {
        self.state.borrow_mut().draft_sinks.insert(agent.to_owned());
    }

    /// The agent's program never becomes ready for input from now on.
    pub(crate) fn make_never_ready(&self, agent: &str) {
        self.state.borrow_mut().never_ready.insert(agent.to_owned());
    }

    /// The agent's session ends (its program exited); the unit stays.
    pub(crate) fn kill_session(&self, agent: &str) {
        self.state.borrow_mut().panes.remove(agent);
    }

    /// Pretend an agent session leaked onto the operator's server.
    pub(crate) fn leak(&self, problem: &str) {
        self.state.borrow_mut().leaked.push(problem.to_owned());
    }

    pub(crate) fn set_caller(&self, name: &str) {
        self.state.borrow_mut().caller = Some(name.to_owned());
    }

    pub(crate) fn submitted(&self, agent: &str) -> Vec<String> {
        self.pane(agent).map(|p| p.submitted).unwrap_or_default()
    }

    pub(crate) fn pane(&self, agent: &str) -> Option<MemoryPane> {
        self.state.borrow().panes.get(agent).cloned()
    }

    fn require_pane(&self, agent: &str) -> Result<MemoryPane, TransportError> {
        self.pane(agent).ok_or_else(|| TransportError::NoSession {
            agent: agent.to_owned(),
            where_: "in memory".into(),
        })
    }

    pub(crate) fn unit(&self, unit: &str) -> MemoryUnit {
        self.state
            .borrow()
            .units
            .get(unit)
            .cloned()
            .unwrap_or_default()
    }

    /// Every service-manager call so far, as `verb unit...`.
    pub(crate) fn calls(&self) -> Vec<String> {
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

    /// A start or stop asked of the manager (not one of its own restarts).
    fn set_active(&self, unit: &str, active: bool) {
        let mut state = self.state.borrow_mut();
        if unit == HOLDER_UNIT && !active {
            // PartOf=: the holder takes every agent down with it.
            let agents: Vec<String> = state.panes.keys().cloned().collect();
            for agent in agents {
                state.deactivate(&agent);
            }
            for (name, unit) in state.units.iter_mut() {
                if agent_of(name).is_some() {
                    unit.active = false;
                    unit.auto_restart = false;
                }
            }
            state.due.clear();
        }
        match agent_of(unit) {
            Some(agent) if active => state.activate(agent),
            Some(agent) => state.deactivate(agent),
            None => {
                let now = state.now;
                let entry = state.units.entry(unit.to_owned()).or_default();
                if active && !entry.active {
                    entry.active_since = now;
                }
                entry.active = active;
            }
        }
    }
}

impl State {
    fn schedule(&mut self, at: Duration, due: Due) {
        self.due.push((at, due));
    }

    fn unit_of(&mut self, agent: &str) -> &mut MemoryUnit {
        self.units
            .entry(crate::shared::systemd::agent_unit(agent))
            .or_default()
    }

    /// The agent's unit becomes active: its session is created, or reused.
    fn activate(&mut self, agent: &str) {
        let now = self.now;
        let unit = self.unit_of(agent);
        if unit.active {
            return;
        }
        unit.active = true;
        unit.auto_restart = false;
        unit.active_since = now;
        // A start while a restart is pending takes its place.
        self.due
            .retain(|(_, due)| !matches!(due, Due::Restart { agent: a } if a == agent));
        if !self.panes.contains_key(agent) {
            self.launched += 1;
            let launch = self.launched;
            self.panes.insert(
                agent.to_owned(),
                MemoryPane {
                    launch,
                    ..MemoryPane::default()
                },
            );
            if let Some(after) = self.crash_after.get(agent).copied() {
                let agent = agent.to_owned();
                self.schedule(now + after, Due::ProgramExits { agent, launch });
            }
        }
        if let Some(after) = self.supervisor_dies.remove(agent) {
            let agent = agent.to_owned();
            self.schedule(now + after, Due::SupervisorDies { agent });
        }
    }

    /// The agent's unit is stopped: its session ends, nothing is due.
    fn deactivate(&mut self, agent: &str) {
        let unit = self.unit_of(agent);
        unit.active = false;
        unit.auto_restart = false;
        self.panes.remove(agent);
        self.due.retain(|(_, due)| due.agent() != agent);
    }

    /// The agent's unit fails: systemd starts it again after RestartSec.
    fn fail(&mut self, agent: &str) {
        let unit = self.unit_of(agent);
        unit.active = false;
        unit.auto_restart = true;
        let at = self.now + RESTART_SEC;
        let agent = agent.to_owned();
        self.schedule(at, Due::Restart { agent });
    }

    fn happen(&mut self, due: Due) {
        match due {
            Due::ProgramExits { agent, launch } => {
                if self.panes.get(&agent).is_some_and(|p| p.launch == launch) {
                    self.panes.remove(&agent);
                    let at = self.now + SUPERVISE_POLL;
                    self.schedule(at, Due::SupervisorLooks { agent });
                }
            }
            Due::SupervisorLooks { agent } => {
                if self.unit_of(&agent).active && !self.panes.contains_key(&agent) {
                    self.fail(&agent);
                }
            }
            Due::SupervisorDies { agent } => {
                if self.unit_of(&agent).active {
                    self.fail(&agent);
                }
            }
            Due::Restart { agent } => {
                self.unit_of(&agent).restarts += 1;
                self.activate(&agent);
            }
        }
    }

    /// Move the clock to `until`, making everything due meanwhile happen in
    /// order (what happens may make more due).
    fn advance(&mut self, until: Duration) {
        loop {
            let next = self
                .due
                .iter()
                .enumerate()
                .filter(|(_, (at, _))| *at <= until)
                .min_by_key(|(_, (at, _))| *at)
                .map(|(index, _)| index);
            let Some(index) = next else {
                break;
            };
            let (at, due) = self.due.remove(index);
            self.now = self.now.max(at);
            self.happen(due);
        }
        self.now = until;
    }
}

impl Clock for MemoryFleet {
    fn now(&self) -> Duration {
        self.state.borrow().now
    }

    fn sleep(&self, duration: Duration) {
        let mut state = self.state.borrow_mut();
        let until = state.now + duration;
        state.advance(until);
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
            "ActiveState" if unit.auto_restart => "activating".into(),
            "ActiveState" => "inactive".into(),
            "SubState" if unit.active => "running".into(),
            "SubState" if unit.auto_restart => "auto-restart".into(),
            "SubState" => "dead".into(),
            "UnitFileState" if unit.enabled => "enabled".into(),
            "UnitFileState" => "disabled".into(),
            "NRestarts" => unit.restarts.to_string(),
            "ActiveEnterTimestampMonotonic" => unit.active_since.as_micros().to_string(),
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
        let pane = self.require_pane(agent)?;
        Ok(super::last_lines(&pane.submitted, lines))
    }

    fn attach_command(&self, agent: &str) -> Result<Vec<OsString>, TransportError> {
        self.require_pane(agent)?;
        Ok(vec!["memory-attach".into(), agent.into()])
    }

    fn watch(&self, agent: &str) -> Result<Watched, TransportError> {
        self.require_pane(agent)?;
        Ok(Watched {
            viewer: format!("{agent}@view"),
            exit_code: 0,
            session_ended: false,
        })
    }

    fn isolation_problems(&self, _agents: &[String]) -> Vec<String> {
        self.state.borrow().leaked.clone()
    }

    fn caller(&self) -> Option<String> {
        self.state.borrow().caller.clone()
    }

    fn launches(&self, agents: &[String]) -> Result<BTreeMap<String, Launch>, TransportError> {
        let state = self.state.borrow();
        Ok(agents
            .iter()
            .filter_map(|agent| {
                let pane = state.panes.get(agent)?;
                let launch = Launch {
                    id: pane.launch.to_string(),
                    command: state.commands.get(agent).cloned(),
                };
                Some((agent.clone(), launch))
            })
            .collect())
    }
}
