//! Unit states for the fleet verbs: what `fleet status` and `fleet verify`
//! ask the service manager about many units at once. An extension of
//! [`ServiceManager`] built on its [`ServiceManager::show`]: `systemctl
//! --user` answers for every unit in one `systemctl show`, which is what
//! keeps `fleet status` of a hundred agents one process, not four hundred.

use serde::{Deserialize, Serialize};

use crate::shared::systemd::{ServiceManager, SystemctlUser, SystemdError};

const PROPERTIES: [&str; 5] = [
    "ActiveState",
    "SubState",
    "UnitFileState",
    "NRestarts",
    "ActiveEnterTimestamp",
];

/// One unit as the service manager sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UnitState {
    pub(crate) unit: String,
    /// `active`, `inactive`, `failed`, `activating`, ...
    pub(crate) active: String,
    /// `running`, `dead`, `auto-restart`, ...
    pub(crate) sub: String,
    /// `enabled`, `disabled`, ... (empty when the manager does not say).
    pub(crate) enabled: String,
    /// Automatic restarts since the unit was last started by hand.
    pub(crate) restarts: Option<u64>,
    /// When it last became active (Unix seconds), when the manager says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active_since: Option<u64>,
}

impl UnitState {
    pub(crate) fn is_active(&self) -> bool {
        self.active == "active"
    }

    pub(crate) fn is_enabled(&self) -> bool {
        matches!(
            self.enabled.as_str(),
            "enabled" | "enabled-runtime" | "linked"
        )
    }
}

/// What the fleet verbs need from a service manager beyond [`ServiceManager`].
pub(crate) trait FleetServices: ServiceManager {
    /// The state of every unit, in the order asked.
    fn unit_states(&self, units: &[String]) -> Result<Vec<UnitState>, SystemdError> {
        let shown = self.show(units, &PROPERTIES)?;
        Ok(units
            .iter()
            .zip(shown)
            .map(|(unit, mut props)| {
                let mut take = |key: &str| props.remove(key).unwrap_or_default();
                UnitState {
                    unit: unit.clone(),
                    active: take("ActiveState"),
                    sub: take("SubState"),
                    enabled: take("UnitFileState"),
                    restarts: take("NRestarts").parse().ok(),
                    active_since: unix_seconds(&take("ActiveEnterTimestamp")),
                }
            })
            .collect())
    }
}

impl FleetServices for SystemctlUser {}

/// `@1733087160` (`--timestamp=unix`); None for an empty or other value.
fn unix_seconds(value: &str) -> Option<u64> {
    value.strip_prefix('@')?.parse().ok()
}

/// A service manager that is deliberately not there: `--home` names a home
/// that is not `$HOME`, and the user manager only reads units from `$HOME`.
#[derive(Debug, Clone)]
pub(crate) struct DetachedServices {
    pub(crate) reason: String,
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
