//! What both binaries stand on. Nothing here depends on [`crate::install`]
//! or [`crate::fleet`] (a tidy test checks it), and only [`command`] knows
//! there is a command line.
//!
//! - Where things are: [`layout`] (every path of a home), [`confine`] (no
//!   write follows a link out of it), [`statedir`] (the state directory,
//!   the lock and recovery), [`lock`], [`host`], [`runtime_path`].
//! - The fleet's description: [`profile`] (the roster, validated, and the
//!   installed roster), [`envfile`]; Mosaic's own tree, only ever read:
//!   [`mosaic`] (its markers and the files it keeps).
//! - What gets installed: [`bundle`] (the embedded templates), [`render`].
//! - How it gets written: [`transaction`] (the journaled executor),
//!   [`receipt`], [`generation`].
//! - The programs the fleet runs on: [`tmux`] (a named server),
//!   [`transport`] (reaching agents' sessions), [`systemd`] (the user
//!   manager), [`clock`] (time, real or a test's). Only these spawn `tmux`
//!   or `systemctl`.
//! - [`output`]: reports to a stdout that may be full or closed;
//!   [`command`]: the global flags and one error and exit-code story for
//!   both command lines.

pub(crate) mod bundle;
pub(crate) mod clock;
pub(crate) mod command;
pub(crate) mod confine;
pub(crate) mod envfile;
pub(crate) mod generation;
pub(crate) mod host;
pub(crate) mod layout;
pub(crate) mod lock;
pub(crate) mod mosaic;
pub(crate) mod output;
pub(crate) mod profile;
pub(crate) mod receipt;
pub(crate) mod render;
pub(crate) mod runtime_path;
pub(crate) mod statedir;
pub(crate) mod systemd;
pub(crate) mod tmux;
pub(crate) mod transaction;
pub(crate) mod transport;
