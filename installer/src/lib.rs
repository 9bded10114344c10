//! mosaic-install: renders the embedded fleet bundle for a roster profile and
//! installs it safely into a home directory.
//!
//! Data flows one way: [`profile`] → [`render`] → [`plan`] → [`apply`] →
//! [`receipt`]. See ARCHITECTURE.md at the repository root.

pub mod activate;
pub mod apply;
pub mod bundle;
pub mod cli;
pub mod confine;
pub mod envfile;
pub mod fleet;
pub mod fleet_cli;
pub mod generation;
pub mod host;
pub mod install;
pub mod layout;
pub mod legacy;
pub mod lock;
pub mod output;
pub mod plan;
pub mod profile;
pub mod receipt;
pub mod reconcile;
pub mod remote;
pub mod render;
pub mod report;
pub mod rollback;
pub mod rollout;
pub mod runtime_path;
pub mod snapshot;
pub mod statedir;
pub mod status;
pub mod systemd;
pub mod transport;
pub mod uninstall;
pub mod verbs;
