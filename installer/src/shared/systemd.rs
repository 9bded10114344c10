//! systemd: the user service manager behind a small trait, so that tests
//! and `cargo xtask canary` can point the installer at a specific manager
//! (the sandboxed one) and the fleet verbs can depend on the trait only.
//!
//! [`SystemctlUser`] drives `systemctl --user` of the invoking user.

// This module owns systemctl: every systemctl command of the crate is built here.
#![allow(clippy::disallowed_types)]

pub(crate) mod units;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("systemctl --user {args} failed: {message}")]
pub(crate) struct SystemdError {
    pub(crate) args: String,
    pub(crate) message: String,
}

/// The unit names of the fleet.
pub(crate) const HOLDER_UNIT: &str = "mosaic-tmux-holder.service";
/// The agents' template unit; each agent runs as an instance of it.
pub(crate) const AGENT_TEMPLATE: &str = "mosaic-agent@.service";

pub(crate) fn agent_unit(agent: &str) -> String {
    format!("mosaic-agent@{agent}.service")
}

/// One unit per agent, in the agents' order.
pub(crate) fn agent_units<S: AsRef<str>>(agents: &[S]) -> Vec<String> {
    agents.iter().map(|a| agent_unit(a.as_ref())).collect()
}

/// The holder, then one unit per agent: what is enabled and started.
pub(crate) fn fleet_units<S: AsRef<str>>(agents: &[S]) -> Vec<String> {
    let mut units = vec![HOLDER_UNIT.to_owned()];
    units.extend(agent_units(agents));
    units
}

/// What the installer and the fleet verbs need from a service manager.
pub(crate) trait ServiceManager {
    /// Ok when a manager answers; Err(why) otherwise.
    fn reachable(&self) -> Result<(), String>;
    fn daemon_reload(&self) -> Result<(), SystemdError>;
    fn enable(&self, units: &[String]) -> Result<(), SystemdError>;
    fn disable(&self, units: &[String]) -> Result<(), SystemdError>;
    /// Start units and wait for the start jobs to finish.
    fn start(&self, units: &[String]) -> Result<(), SystemdError>;
    fn stop(&self, units: &[String]) -> Result<(), SystemdError>;
    fn restart(&self, units: &[String]) -> Result<(), SystemdError>;
    /// A unit property (`ActiveState`, `NRestarts`, ...), as systemctl shows it.
    fn property(&self, unit: &str, name: &str) -> Result<String, SystemdError>;

    /// Several properties of several units: one map per unit, in the order
    /// asked. The default asks property by property; `systemctl --user`
    /// answers in one query, so that checking a wave of agents (or a
    /// hundred) costs one process, not hundreds.
    fn show(&self, units: &[String], names: &[&str]) -> Result<Vec<Properties>, SystemdError> {
        units
            .iter()
            .map(|unit| {
                names
                    .iter()
                    .map(|name| Ok(((*name).to_owned(), self.property(unit, name)?)))
                    .collect()
            })
            .collect()
    }

    /// The PATH the manager gives its units; None when it cannot be told
    /// (then [`crate::shared::runtime_path::SYSTEMD_DEFAULT_PATH`] is the best guess).
    fn manager_path(&self) -> Option<String> {
        None
    }
}

/// A unit's properties by name, as `systemctl show` prints them.
pub(crate) type Properties = BTreeMap<String, String>;

/// `systemctl --user` of the invoking user.
#[derive(Debug, Default, Clone)]
pub(crate) struct SystemctlUser;

impl SystemctlUser {
    fn run(&self, args: &[&str], units: &[String]) -> Result<String, SystemdError> {
        let output = Command::new("systemctl")
            .arg("--user")
            .args(args)
            .args(units)
            .output()
            .map_err(|err| SystemdError {
                args: args.join(" "),
                message: format!("cannot run systemctl: {err}"),
            })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(SystemdError {
                args: [args.join(" "), units.join(" ")]
                    .join(" ")
                    .trim()
                    .to_owned(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }
}

impl ServiceManager for SystemctlUser {
    fn reachable(&self) -> Result<(), String> {
        self.run(&["show-environment"], &[])
            .map(|_| ())
            .map_err(|err| err.message)
    }

    fn daemon_reload(&self) -> Result<(), SystemdError> {
        self.run(&["daemon-reload"], &[]).map(|_| ())
    }

    fn enable(&self, units: &[String]) -> Result<(), SystemdError> {
        self.run(&["enable", "--quiet"], units).map(|_| ())
    }

    fn disable(&self, units: &[String]) -> Result<(), SystemdError> {
        self.run(&["disable", "--quiet"], units).map(|_| ())
    }

    fn start(&self, units: &[String]) -> Result<(), SystemdError> {
        self.run(&["start"], units).map(|_| ())
    }

    fn stop(&self, units: &[String]) -> Result<(), SystemdError> {
        self.run(&["stop"], units).map(|_| ())
    }

    fn restart(&self, units: &[String]) -> Result<(), SystemdError> {
        self.run(&["restart"], units).map(|_| ())
    }

    fn property(&self, unit: &str, name: &str) -> Result<String, SystemdError> {
        let out = self.run(&["show", "--value", "-p", name], &[unit.to_owned()])?;
        Ok(out.trim().to_owned())
    }

    fn show(&self, units: &[String], names: &[&str]) -> Result<Vec<Properties>, SystemdError> {
        // Without units, `systemctl show` describes the manager itself.
        if units.is_empty() {
            return Ok(Vec::new());
        }
        // Timestamps as `@<unix seconds>`, which need no locale to read.
        let out = self.run(&["show", "--timestamp=unix", "-p", &names.join(",")], units)?;
        Ok(parse_show(&out, units.len()))
    }

    fn manager_path(&self) -> Option<String> {
        let environment = self.run(&["show-environment"], &[]).ok()?;
        environment
            .lines()
            .find_map(|line| line.strip_prefix("PATH="))
            .map(str::to_owned)
    }
}

/// `systemctl show` prints one block of `Key=value` lines per unit, in the
/// order asked, separated by blank lines.
fn parse_show(text: &str, units: usize) -> Vec<Properties> {
    let mut blocks = text.split("\n\n");
    (0..units)
        .map(|_| {
            blocks
                .next()
                .unwrap_or("")
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect()
        })
        .collect()
}

/// Whether logind keeps this user's manager running after logout; None
/// when it cannot be told.
pub(crate) fn linger_enabled() -> Option<bool> {
    let user = std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())?;
    let dir = Path::new("/var/lib/systemd/linger");
    dir.is_dir().then(|| dir.join(user).exists())
}

/// The commands an operator runs by hand when the installer could not.
pub(crate) fn manual_commands(agents: &[String], removed: &[String]) -> Vec<String> {
    let mut commands = vec!["systemctl --user daemon-reload".to_owned()];
    if !removed.is_empty() {
        let units = agent_units(removed);
        commands.push(format!(
            "systemctl --user disable --now {}",
            units.join(" ")
        ));
    }
    let units = fleet_units(agents);
    commands.push(format!("systemctl --user enable {}", units.join(" ")));
    commands.push(format!("systemctl --user start {}", units.join(" ")));
    commands
}

/// The commands an operator runs by hand to take the fleet's `units` down
/// before (or after) `uninstall` when the installer could not.
pub(crate) fn manual_uninstall_commands(units: &[String]) -> Vec<String> {
    vec![
        format!("systemctl --user disable --now {}", units.join(" ")),
        "systemctl --user daemon-reload".to_owned(),
    ]
}

pub(crate) const LINGER_HINT: &str =
    "loginctl enable-linger \"$USER\"   # keep the fleet running after you log out";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_blocks_map_to_units_in_order() {
        let text = "ActiveState=active\nNRestarts=2\nExecMainStatus=0\n\n\
                    ActiveState=inactive\nNRestarts=0\n";
        let units = parse_show(text, 3);
        assert_eq!(units[0]["ActiveState"], "active");
        assert_eq!(units[0]["NRestarts"], "2");
        assert_eq!(units[1]["ActiveState"], "inactive");
        assert!(!units[1].contains_key("ExecMainStatus"));
        assert!(units[2].is_empty(), "a unit systemctl said nothing about");
    }
}
