//! Unit states for the fleet verbs: what `fleet status` and `fleet verify`
//! ask the service manager about many units at once. An extension of
//! [`ServiceManager`]: the default asks property by property; `systemctl
//! --user` answers for every unit in one `systemctl show`, which is what
//! keeps `fleet status` of a hundred agents one process, not four hundred.

use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::systemd::{ServiceManager, SystemctlUser, SystemdError};

const PROPERTIES: [&str; 4] = ["ActiveState", "SubState", "UnitFileState", "NRestarts"];

/// One unit as the service manager sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    pub unit: String,
    /// `active`, `inactive`, `failed`, `activating`, ...
    pub active: String,
    /// `running`, `dead`, `auto-restart`, ...
    pub sub: String,
    /// `enabled`, `disabled`, ... (empty when the manager does not say).
    pub enabled: String,
    /// Automatic restarts since the unit was last started by hand.
    pub restarts: Option<u64>,
}

impl UnitState {
    pub fn is_active(&self) -> bool {
        self.active == "active"
    }

    pub fn is_enabled(&self) -> bool {
        matches!(
            self.enabled.as_str(),
            "enabled" | "enabled-runtime" | "linked"
        )
    }
}

/// What the fleet verbs need from a service manager beyond [`ServiceManager`].
pub trait FleetServices: ServiceManager {
    /// The state of every unit, in the order asked.
    fn unit_states(&self, units: &[String]) -> Result<Vec<UnitState>, SystemdError> {
        units
            .iter()
            .map(|unit| {
                Ok(UnitState {
                    unit: unit.clone(),
                    active: self.property(unit, "ActiveState")?,
                    sub: self.property(unit, "SubState")?,
                    enabled: self.property(unit, "UnitFileState")?,
                    restarts: self.property(unit, "NRestarts")?.parse().ok(),
                })
            })
            .collect()
    }
}

impl FleetServices for SystemctlUser {
    fn unit_states(&self, units: &[String]) -> Result<Vec<UnitState>, SystemdError> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let args = format!("show -p {}", PROPERTIES.join(","));
        let output = Command::new("systemctl")
            .arg("--user")
            .args(["show", "-p", &PROPERTIES.join(",")])
            .args(units)
            .output()
            .map_err(|err| SystemdError {
                args: args.clone(),
                message: format!("cannot run systemctl: {err}"),
            })?;
        if !output.status.success() {
            return Err(SystemdError {
                args,
                message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(parse_show(&String::from_utf8_lossy(&output.stdout), units))
    }
}

/// `systemctl show` prints one block of `Key=value` lines per unit, in the
/// order asked, separated by blank lines.
fn parse_show(text: &str, units: &[String]) -> Vec<UnitState> {
    let mut blocks = text.split("\n\n");
    units
        .iter()
        .map(|unit| {
            let block = blocks.next().unwrap_or("");
            let value = |key: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or("")
                    .to_owned()
            };
            UnitState {
                unit: unit.clone(),
                active: value("ActiveState"),
                sub: value("SubState"),
                enabled: value("UnitFileState"),
                restarts: value("NRestarts").parse().ok(),
            }
        })
        .collect()
}

/// A service manager that is deliberately not there: `--home` names a home
/// that is not `$HOME`, and the user manager only reads units from `$HOME`.
#[derive(Debug, Clone)]
pub struct DetachedServices {
    pub reason: String,
}

impl DetachedServices {
    fn refuse(&self, args: &str) -> SystemdError {
        SystemdError {
            args: args.to_owned(),
            message: self.reason.clone(),
        }
    }
}

impl ServiceManager for DetachedServices {
    fn reachable(&self) -> Result<(), String> {
        Err(self.reason.clone())
    }
    fn daemon_reload(&self) -> Result<(), SystemdError> {
        Err(self.refuse("daemon-reload"))
    }
    fn enable(&self, _units: &[String]) -> Result<(), SystemdError> {
        Err(self.refuse("enable"))
    }
    fn disable(&self, _units: &[String]) -> Result<(), SystemdError> {
        Err(self.refuse("disable"))
    }
    fn start(&self, _units: &[String]) -> Result<(), SystemdError> {
        Err(self.refuse("start"))
    }
    fn stop(&self, _units: &[String]) -> Result<(), SystemdError> {
        Err(self.refuse("stop"))
    }
    fn restart(&self, _units: &[String]) -> Result<(), SystemdError> {
        Err(self.refuse("restart"))
    }
    fn property(&self, _unit: &str, _name: &str) -> Result<String, SystemdError> {
        Err(self.refuse("show"))
    }
}

impl FleetServices for DetachedServices {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_blocks_map_to_units_in_order() {
        let text = "ActiveState=active\nSubState=running\nUnitFileState=enabled\nNRestarts=2\n\n\
                    ActiveState=inactive\nSubState=dead\nUnitFileState=disabled\nNRestarts=0\n";
        let units = vec!["a.service".to_owned(), "b.service".to_owned()];
        let states = parse_show(text, &units);
        assert_eq!(states[0].active, "active");
        assert_eq!(states[0].restarts, Some(2));
        assert!(states[0].is_enabled());
        assert_eq!(states[1].sub, "dead");
        assert!(!states[1].is_active());
    }
}
