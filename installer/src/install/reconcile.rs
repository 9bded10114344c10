//! Reconcile, as sd-switch does: the roster in effect (desired) × what
//! was installed before × what systemd says (enabled, active) → the unit
//! actions of one run. Pure: the facts are gathered first
//! ([`crate::install::activate`]), so the table test below and `--dry-run` need no
//! manager at all.
//!
//! The rules, per agent unit:
//! - in the roster, not enabled → enable; started too when the run starts
//!   the fleet (`--start`) or when the agent is new and the fleet is
//!   running (its holder is active); an agent the operator stopped stays
//!   stopped;
//! - enabled, active or installed before but no longer in the installed roster →
//!   stop (when active) and disable;
//! - in the roster, active, and its effective settings changed (the unit,
//!   its generated env file, its `.local.env`) → restart with
//!   `--restart-changed`, else listed as "needs restart" with the reason.
//!   A changed holder unit restarts the holder (and with it, through
//!   `PartOf=`, every agent).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// One agent unit as systemd sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UnitFacts {
    pub(crate) enabled: bool,
    pub(crate) active: bool,
}

/// Everything the decision needs, gathered beforehand.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    /// The roster's local agents, in roster order.
    pub(crate) desired: Vec<String>,
    /// The agents the previous receipt installed.
    pub(crate) previous: Vec<String>,
    /// Agent units systemd knows: each enabled (a `.wants/` link) or active
    /// instance, and every desired or previous one.
    pub(crate) units: BTreeMap<String, UnitFacts>,
    pub(crate) holder_active: bool,
    /// Why the holder needs a restart, when it does.
    pub(crate) holder_changed: Option<String>,
    /// Agents whose effective settings changed, with why.
    pub(crate) changed: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// `--start`: bring the whole fleet up (canary first).
    pub(crate) start: bool,
    /// `--restart-changed`.
    pub(crate) restart_changed: bool,
}

/// One run's unit actions; empty lists are "nothing to do".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Actions {
    /// Agents whose units get enabled.
    pub(crate) enable: Vec<String>,
    /// Agents started (after the holder), canary first.
    pub(crate) start: Vec<String>,
    /// Agents stopped (when active) and disabled, with why.
    pub(crate) stop_disable: Vec<Reasoned>,
    /// Agents restarted, with why.
    pub(crate) restart: Vec<Reasoned>,
    /// Restart the holder (which restarts every agent with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) restart_holder: Option<String>,
    /// Running agents (or the holder) whose new settings wait for a restart.
    pub(crate) needs_restart: Vec<Reasoned>,
    /// The whole fleet is started (`--start`): holder, canary, waves.
    pub(crate) start_fleet: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Reasoned {
    pub(crate) agent: String,
    pub(crate) reason: String,
}

impl Actions {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Actions::default()
    }
}

pub(crate) fn reconcile(facts: &Facts, opts: Options) -> Actions {
    let desired: BTreeSet<&str> = facts.desired.iter().map(String::as_str).collect();
    let previous: BTreeSet<&str> = facts.previous.iter().map(String::as_str).collect();
    let unit = |agent: &str| facts.units.get(agent).copied().unwrap_or_default();
    let mut out = Actions {
        start_fleet: opts.start,
        ..Actions::default()
    };

    let mut gone: Vec<&str> = facts
        .units
        .iter()
        .filter(|(_, u)| u.enabled || u.active)
        .map(|(name, _)| name.as_str())
        .chain(previous.iter().copied())
        .filter(|name| !desired.contains(name))
        .collect();
    gone.sort_unstable();
    gone.dedup();
    for agent in gone {
        let u = unit(agent);
        let reason = if previous.contains(agent) {
            "no longer in the installed roster"
        } else {
            "enabled, but not in the roster"
        };
        if u.enabled || u.active || previous.contains(agent) {
            out.stop_disable.push(Reasoned {
                agent: agent.to_owned(),
                reason: reason.into(),
            });
        }
    }

    for agent in &facts.desired {
        let u = unit(agent);
        if !u.enabled {
            out.enable.push(agent.clone());
        }
        let new = !previous.contains(agent.as_str());
        let starts = !u.active && (opts.start || (new && facts.holder_active));
        if starts && !opts.start {
            out.start.push(agent.clone());
        }
        if let Some(reason) = facts.changed.get(agent).filter(|_| u.active) {
            let item = Reasoned {
                agent: agent.clone(),
                reason: reason.clone(),
            };
            if facts.holder_changed.is_some() && facts.holder_active && opts.restart_changed {
                // Restarting the holder restarts this agent anyway.
                continue;
            }
            if opts.restart_changed {
                out.restart.push(item);
            } else {
                out.needs_restart.push(item);
            }
        }
    }
    if let Some(reason) = facts.holder_changed.clone().filter(|_| facts.holder_active) {
        if opts.restart_changed {
            out.restart_holder = Some(reason);
        } else {
            out.needs_restart.push(Reasoned {
                agent: crate::shared::systemd::HOLDER_UNIT.to_owned(),
                reason,
            });
        }
    }
    if opts.start {
        out.start = facts.desired.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn units(list: &[(&str, bool, bool)]) -> BTreeMap<String, UnitFacts> {
        list.iter()
            .map(|(name, enabled, active)| {
                (
                    (*name).to_owned(),
                    UnitFacts {
                        enabled: *enabled,
                        active: *active,
                    },
                )
            })
            .collect()
    }

    fn reasoned(agent: &str, reason: &str) -> Reasoned {
        Reasoned {
            agent: agent.into(),
            reason: reason.into(),
        }
    }

    /// old roster × new roster × disk × unit states → actions.
    #[test]
    fn the_reconcile_table() {
        struct Row {
            what: &'static str,
            facts: Facts,
            opts: Options,
            expect: Actions,
        }
        let running =
            |list: &[&str]| units(&list.iter().map(|n| (*n, true, true)).collect::<Vec<_>>());
        let rows = vec![
            Row {
                what: "first install, no manager state: enable all, start nothing",
                facts: Facts {
                    desired: names(&["a", "b"]),
                    ..Facts::default()
                },
                opts: Options::default(),
                expect: Actions {
                    enable: names(&["a", "b"]),
                    ..Actions::default()
                },
            },
            Row {
                what: "first install with --start: enable all, start the fleet",
                facts: Facts {
                    desired: names(&["a", "b"]),
                    ..Facts::default()
                },
                opts: Options {
                    start: true,
                    ..Options::default()
                },
                expect: Actions {
                    enable: names(&["a", "b"]),
                    start: names(&["a", "b"]),
                    start_fleet: true,
                    ..Actions::default()
                },
            },
            Row {
                what: "nothing changed on a running fleet: nothing to do",
                facts: Facts {
                    desired: names(&["a", "b"]),
                    previous: names(&["a", "b"]),
                    units: running(&["a", "b"]),
                    holder_active: true,
                    ..Facts::default()
                },
                opts: Options::default(),
                expect: Actions::default(),
            },
            Row {
                what: "roster A -> B on a running fleet: new started, removed stopped",
                facts: Facts {
                    desired: names(&["a", "c"]),
                    previous: names(&["a", "b"]),
                    units: running(&["a", "b"]),
                    holder_active: true,
                    ..Facts::default()
                },
                opts: Options::default(),
                expect: Actions {
                    enable: names(&["c"]),
                    start: names(&["c"]),
                    stop_disable: vec![reasoned("b", "no longer in the installed roster")],
                    ..Actions::default()
                },
            },
            Row {
                what: "a new agent while the fleet is down: enabled, not started",
                facts: Facts {
                    desired: names(&["a", "c"]),
                    previous: names(&["a"]),
                    units: units(&[("a", true, false)]),
                    holder_active: false,
                    ..Facts::default()
                },
                opts: Options::default(),
                expect: Actions {
                    enable: names(&["c"]),
                    ..Actions::default()
                },
            },
            Row {
                what: "an agent the operator stopped stays stopped",
                facts: Facts {
                    desired: names(&["a", "b"]),
                    previous: names(&["a", "b"]),
                    units: units(&[("a", true, true), ("b", true, false)]),
                    holder_active: true,
                    ..Facts::default()
                },
                opts: Options::default(),
                expect: Actions::default(),
            },
            Row {
                what: "a stray enabled unit not in the roster is stopped and disabled",
                facts: Facts {
                    desired: names(&["a"]),
                    previous: names(&["a"]),
                    units: units(&[("a", true, true), ("ghost", true, true)]),
                    holder_active: true,
                    ..Facts::default()
                },
                opts: Options::default(),
                expect: Actions {
                    stop_disable: vec![reasoned("ghost", "enabled, but not in the roster")],
                    ..Actions::default()
                },
            },
            Row {
                what: "changed settings without --restart-changed: needs restart",
                facts: Facts {
                    desired: names(&["a", "b"]),
                    previous: names(&["a", "b"]),
                    units: units(&[("a", true, true), ("b", true, false)]),
                    holder_active: true,
                    changed: [
                        ("a".to_owned(), "its command changed".to_owned()),
                        ("b".to_owned(), "its command changed".to_owned()),
                    ]
                    .into(),
                    ..Facts::default()
                },
                opts: Options::default(),
                expect: Actions {
                    needs_restart: vec![reasoned("a", "its command changed")],
                    ..Actions::default()
                },
            },
            Row {
                what: "changed settings with --restart-changed: restarted",
                facts: Facts {
                    desired: names(&["a", "b"]),
                    previous: names(&["a", "b"]),
                    units: running(&["a", "b"]),
                    holder_active: true,
                    changed: [("b".to_owned(), "its .local.env changed".to_owned())].into(),
                    ..Facts::default()
                },
                opts: Options {
                    restart_changed: true,
                    ..Options::default()
                },
                expect: Actions {
                    restart: vec![reasoned("b", "its .local.env changed")],
                    ..Actions::default()
                },
            },
            Row {
                what: "a changed holder restarts the holder alone",
                facts: Facts {
                    desired: names(&["a"]),
                    previous: names(&["a"]),
                    units: running(&["a"]),
                    holder_active: true,
                    holder_changed: Some("the holder unit changed".into()),
                    changed: [("a".to_owned(), "the agent unit changed".to_owned())].into(),
                },
                opts: Options {
                    restart_changed: true,
                    ..Options::default()
                },
                expect: Actions {
                    restart_holder: Some("the holder unit changed".into()),
                    ..Actions::default()
                },
            },
            Row {
                what: "a removed agent that is no longer enabled or running: disabled anyway",
                facts: Facts {
                    desired: names(&["a"]),
                    previous: names(&["a", "b"]),
                    units: running(&["a"]),
                    holder_active: true,
                    ..Facts::default()
                },
                opts: Options::default(),
                expect: Actions {
                    stop_disable: vec![reasoned("b", "no longer in the installed roster")],
                    ..Actions::default()
                },
            },
        ];
        for row in rows {
            assert_eq!(reconcile(&row.facts, row.opts), row.expect, "{}", row.what);
        }
    }
}
