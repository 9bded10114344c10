//! What "verified" means for a rollout step, checked through the
//! [`ServiceManager`] and [`Transport`] traits only.
//!
//! The holder: its unit is active and the transport sees the holder up.
//! A wave of agents, watched together, one look at all of them per poll
//! (one `systemctl show` and one query per tmux server): each agent's unit
//! is active and its session is up running the agent's command; then, for
//! a settle window counted from the moment the unit became active, the
//! session stays the same launch, the unit stays active and its restart
//! count (`NRestarts`) does not grow. An agent whose unit has been active
//! longer than the window already is settled: a healthy fleet is verified
//! from one look. A failure ends the wait at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::shared::runtime_path::{
    agent_pane_path, find_program, ProgramLookup, SYSTEMD_DEFAULT_PATH,
};
use crate::shared::systemd::{agent_unit, Properties, ServiceManager, HOLDER_UNIT};
use crate::shared::transport::{Launch, Transport};

use super::{AgentExpectation, Clock, RolloutPlan};

/// How long a freshly started agent must keep running: long enough to catch
/// an agent that crashes 3 s after it starts (bad credentials, a config
/// error found while loading), with room for a loaded machine.
pub(crate) const SETTLE: Duration = Duration::from_secs(5);

/// How often to look while something is still coming up.
const POLL: Duration = Duration::from_millis(100);
/// How often to look while every agent of a wave is up and settling: a
/// crash is still caught within a quarter second, at a fraction of the
/// processes (each look is one `systemctl show` and one tmux query).
const SETTLE_POLL: Duration = Duration::from_millis(250);

/// The unit properties a look reads.
const PROPERTIES: [&str; 3] = ["ActiveState", "NRestarts", "ActiveEnterTimestampMonotonic"];

/// What a rollout checks with.
pub(super) struct Checker<'a> {
    pub(crate) services: &'a dyn ServiceManager,
    pub(crate) transport: &'a dyn Transport,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) plan: &'a RolloutPlan,
}

/// One look at units and sessions.
#[derive(Clone)]
pub(super) struct Look {
    units: BTreeMap<String, Properties>,
    launches: BTreeMap<String, Launch>,
    holder_up: bool,
    at: Duration,
}

impl Look {
    /// Whether `unit` was active at this look.
    pub(super) fn is_active(&self, unit: &str) -> bool {
        self.units
            .get(unit)
            .and_then(|props| props.get("ActiveState"))
            .is_some_and(|state| state == "active")
    }
}

impl Checker<'_> {
    /// The units (with the holder's session when `holder` is among them)
    /// and the sessions of `agents`, in one query each.
    pub(super) fn look(&self, units: &[String], agents: &[String]) -> Result<Look, String> {
        let shown = self
            .services
            .show(units, &PROPERTIES)
            .map_err(|err| err.to_string())?;
        let launches = self
            .transport
            .launches(agents)
            .map_err(|err| err.to_string())?;
        let holder_up = units.iter().any(|u| u == HOLDER_UNIT)
            && self
                .transport
                .sessions(&[])
                .map_err(|err| err.to_string())?
                .holder_up;
        Ok(Look {
            units: units.iter().cloned().zip(shown).collect(),
            launches,
            holder_up,
            at: self.clock.now(),
        })
    }

    /// The holder's unit active and its session up.
    pub(super) fn holder(&self, first: Option<Look>) -> Result<String, String> {
        let units = [HOLDER_UNIT.to_owned()];
        let begin = self.clock.now();
        let mut look = first;
        loop {
            let current = match look.take() {
                Some(look) => look,
                None => self.look(&units, &[])?,
            };
            if current.is_active(HOLDER_UNIT) && current.holder_up {
                return Ok(format!(
                    "holder session {} up on {}",
                    self.plan.holder_session,
                    self.transport.describe()
                ));
            }
            let state = state_of(current.units.get(HOLDER_UNIT));
            if state == "failed" || current.at.saturating_sub(begin) >= self.plan.timeout {
                return Err(if state == "active" {
                    format!(
                        "{HOLDER_UNIT} is active but {} has no session {}",
                        self.transport.describe(),
                        self.plan.holder_session
                    )
                } else {
                    format!(
                        "{HOLDER_UNIT} is {state}; see {}",
                        where_to_look(HOLDER_UNIT)
                    )
                });
            }
            self.clock.sleep(POLL);
        }
    }

    /// Every agent of the wave up, then settled; the first failure ends it.
    /// The detail names the agents this step did not start (`fresh` lists
    /// the units it did) as already up.
    pub(super) fn wave(
        &self,
        agents: &[&AgentExpectation],
        first: Option<Look>,
        fresh: &[String],
    ) -> Result<String, String> {
        let names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
        let units: Vec<String> = names.iter().map(|n| agent_unit(n)).collect();
        let mut watches: Vec<Watch<'_>> = agents.iter().map(|a| Watch::new(a)).collect();
        let begin = self.clock.now();
        let mut look = first;
        loop {
            let current = match look.take() {
                Some(look) => look,
                None => self.look(&units, &names)?,
            };
            let mut failures = Vec::new();
            let mut waiting = Vec::new();
            let mut settled = 0;
            for (watch, unit) in watches.iter_mut().zip(&units) {
                let props = current.units.get(unit).cloned().unwrap_or_default();
                let launch = current.launches.get(&watch.agent.name);
                match watch.observe(&props, launch, current.at, self.plan.settle) {
                    Progress::Failed(why) => failures.push(why),
                    Progress::Waiting(why) => waiting.push(why),
                    Progress::Settling => {}
                    Progress::Settled => settled += 1,
                }
            }
            if !failures.is_empty() {
                return Err(failures.join("; "));
            }
            if settled == watches.len() {
                let details: Vec<String> = agents
                    .iter()
                    .zip(&units)
                    .map(|(agent, unit)| {
                        let already = if fresh.contains(unit) {
                            ""
                        } else {
                            " (already up)"
                        };
                        format!("{} running `{}`{already}", agent.name, agent.command)
                    })
                    .collect();
                return Ok(details.join("; "));
            }
            if !waiting.is_empty() && current.at.saturating_sub(begin) >= self.plan.timeout {
                return Err(waiting.join("; "));
            }
            self.clock.sleep(if waiting.is_empty() {
                SETTLE_POLL
            } else {
                POLL
            });
        }
    }

    /// No agent session where the operator's own sessions live.
    pub(super) fn isolated(&self) -> Result<(), String> {
        let names: Vec<String> = self.plan.agents.iter().map(|a| a.name.clone()).collect();
        let problems = self.transport.isolation_problems(&names);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Where one agent is in its verification.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Not up yet: why not.
    Waiting(String),
    /// Up, inside its settle window.
    Settling,
    /// Up for the whole window.
    Settled,
    Failed(String),
}

/// One agent as first seen up.
#[derive(Debug)]
struct Sighting {
    launch: String,
    restarts: u64,
    /// When its unit became active (monotonic): the window counts from here.
    since: Duration,
}

/// One agent of a wave, followed from look to look.
#[derive(Debug)]
struct Watch<'a> {
    agent: &'a AgentExpectation,
    unit: String,
    /// Restarts at the first look.
    baseline: Option<u64>,
    was_active: bool,
    seen: Option<Sighting>,
}

impl<'a> Watch<'a> {
    fn new(agent: &'a AgentExpectation) -> Watch<'a> {
        Watch {
            agent,
            unit: agent_unit(&agent.name),
            baseline: None,
            was_active: false,
            seen: None,
        }
    }

    fn observe(
        &mut self,
        unit: &Properties,
        launch: Option<&Launch>,
        now: Duration,
        settle: Duration,
    ) -> Progress {
        let state = state_of(Some(unit));
        let active = state == "active";
        let restarts: u64 = unit
            .get("NRestarts")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let baseline = *self.baseline.get_or_insert(restarts);
        if let Some(seen) = &self.seen {
            let within = format!("within {} s of starting", settle.as_secs_f32());
            if launch.is_none_or(|l| l.id != seen.launch) {
                return Progress::Failed(self.ended(&within));
            }
            if restarts != seen.restarts || !active {
                let what = if restarts != seen.restarts {
                    format!("restarted (NRestarts {} -> {restarts})", seen.restarts)
                } else {
                    format!("went {state}")
                };
                return Progress::Failed(format!(
                    "{} {what} {within} although session ={} stayed: its supervisor exited; see {}",
                    self.unit,
                    self.agent.name,
                    where_to_look(&self.unit)
                ));
            }
            return settled_by(seen.since, now, settle);
        }
        if restarts > baseline || (self.was_active && !active) {
            return Progress::Failed(self.ended("right after it started"));
        }
        self.was_active |= active;
        let Some(launch) = launch.filter(|_| active) else {
            return Progress::Waiting(if active {
                format!(
                    "{} is active but agent {} has no live session",
                    self.unit, self.agent.name
                )
            } else {
                format!(
                    "{} is {state}; see {}",
                    self.unit,
                    where_to_look(&self.unit)
                )
            });
        };
        if let Some(running) = &launch.command {
            if running != &self.agent.command {
                return Progress::Failed(format!(
                    "session ={} runs `{running}`, expected `{}`",
                    self.agent.name, self.agent.command
                ));
            }
        }
        let since = unit
            .get("ActiveEnterTimestampMonotonic")
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|usec| *usec > 0)
            .map_or(now, Duration::from_micros)
            .min(now);
        self.seen = Some(Sighting {
            launch: launch.id.clone(),
            restarts,
            since,
        });
        settled_by(since, now, settle)
    }

    fn ended(&self, when: &str) -> String {
        format!(
            "session ={} ended {when}: its command `{}` exited or was killed, and {} is restarting it; see {}",
            self.agent.name,
            self.agent.command,
            self.unit,
            where_to_look(&self.unit)
        )
    }
}

fn settled_by(since: Duration, now: Duration, settle: Duration) -> Progress {
    if now.saturating_sub(since) >= settle {
        Progress::Settled
    } else {
        Progress::Settling
    }
}

/// `ActiveState`, or `unknown` when the manager did not say.
fn state_of(unit: Option<&Properties>) -> &str {
    unit.and_then(|props| props.get("ActiveState"))
        .map(String::as_str)
        .filter(|state| !state.is_empty())
        .unwrap_or("unknown")
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn agent() -> AgentExpectation {
        AgentExpectation {
            name: "a".into(),
            socket: "s".into(),
            command: "run a".into(),
            runtime_path: String::new(),
        }
    }

    fn unit(state: &str, restarts: u64, since: Duration) -> Properties {
        [
            ("ActiveState", state.to_owned()),
            ("NRestarts", restarts.to_string()),
            (
                "ActiveEnterTimestampMonotonic",
                since.as_micros().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn launch(id: &str, command: Option<&str>) -> Launch {
        Launch {
            id: id.into(),
            command: command.map(str::to_owned),
        }
    }

    #[test]
    fn a_fresh_agent_settles_after_the_window_counted_from_its_activation() {
        let agent = agent();
        let mut watch = Watch::new(&agent);
        let up = unit("active", 0, 100 * SECOND);
        let l = launch("%1/10", Some("run a"));
        let settle = 5 * SECOND;
        assert_eq!(
            watch.observe(&up, Some(&l), 101 * SECOND, settle),
            Progress::Settling
        );
        assert_eq!(
            watch.observe(&up, Some(&l), 104 * SECOND, settle),
            Progress::Settling
        );
        assert_eq!(
            watch.observe(&up, Some(&l), 105 * SECOND, settle),
            Progress::Settled
        );
    }

    #[test]
    fn an_agent_up_longer_than_the_window_is_settled_at_first_sight() {
        let agent = agent();
        let mut watch = Watch::new(&agent);
        let up = unit("active", 3, 10 * SECOND);
        let l = launch("%1/10", None);
        assert_eq!(
            watch.observe(&up, Some(&l), 100 * SECOND, 5 * SECOND),
            Progress::Settled
        );
    }

    #[test]
    fn a_session_that_ends_or_is_replaced_while_settling_fails() {
        let agent = agent();
        let up = unit("active", 0, 100 * SECOND);
        for later in [None, Some(launch("%2/11", None))] {
            let mut watch = Watch::new(&agent);
            let first = launch("%1/10", None);
            watch.observe(&up, Some(&first), 100 * SECOND, 5 * SECOND);
            let Progress::Failed(why) =
                watch.observe(&up, later.as_ref(), 103 * SECOND, 5 * SECOND)
            else {
                panic!("not failed for {later:?}");
            };
            assert!(
                why.starts_with("session =a ended within 5 s of starting: its command `run a`"),
                "{why}"
            );
        }
    }

    #[test]
    fn a_restart_count_that_grows_fails_even_with_the_same_session() {
        let agent = agent();
        let mut watch = Watch::new(&agent);
        let l = launch("%1/10", None);
        watch.observe(
            &unit("active", 2, 100 * SECOND),
            Some(&l),
            100 * SECOND,
            5 * SECOND,
        );
        let Progress::Failed(why) = watch.observe(
            &unit("active", 3, 102 * SECOND),
            Some(&l),
            102 * SECOND,
            5 * SECOND,
        ) else {
            panic!("a restart was not noticed");
        };
        assert!(why.contains("NRestarts 2 -> 3"), "{why}");
    }

    #[test]
    fn going_down_or_restarting_before_coming_up_fails() {
        let agent = agent();
        let mut watch = Watch::new(&agent);
        let waiting = watch.observe(&unit("active", 0, 100 * SECOND), None, 100 * SECOND, SECOND);
        assert!(matches!(waiting, Progress::Waiting(ref why) if why.contains("no live session")));
        let down = watch.observe(
            &unit("activating", 0, 100 * SECOND),
            None,
            101 * SECOND,
            SECOND,
        );
        assert!(
            matches!(down, Progress::Failed(ref why) if why.contains("ended right after it started"))
        );

        let mut watch = Watch::new(&agent);
        watch.observe(
            &unit("activating", 1, Duration::ZERO),
            None,
            100 * SECOND,
            SECOND,
        );
        let restarted = watch.observe(
            &unit("activating", 2, Duration::ZERO),
            None,
            102 * SECOND,
            SECOND,
        );
        assert!(matches!(restarted, Progress::Failed(_)));
    }

    #[test]
    fn a_session_running_another_command_fails() {
        let agent = agent();
        let mut watch = Watch::new(&agent);
        let l = launch("%1/10", Some("run b"));
        assert_eq!(
            watch.observe(&unit("active", 0, SECOND), Some(&l), SECOND, SECOND),
            Progress::Failed("session =a runs `run b`, expected `run a`".into())
        );
    }
}
