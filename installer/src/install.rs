//! `mosaic-install`: compute the target state, compare it with the disk and
//! the last receipt, apply it in one journaled transaction, then bring the
//! units in line.
//!
//! - [`pipeline`]: roster choice → rendered tree → [`plan`] (over a
//!   [`snapshot`] of the disk) → transaction → receipt; [`legacy`] finds an
//!   existing Mosaic tree.
//! - [`activate`] carries out what [`reconcile`] decides for the units, and
//!   the canary-first [`rollout`].
//! - Views of the receipt: [`status`], [`uninstall`], [`rollback`].
//! - [`cli`] parses arguments; [`report`] prints.

pub(crate) mod activate;
pub(crate) mod cli;
pub(crate) mod legacy;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub(crate) mod reconcile;
pub(crate) mod report;
pub(crate) mod rollback;
pub(crate) mod rollout;
pub(crate) mod snapshot;
pub(crate) mod status;
pub(crate) mod uninstall;
