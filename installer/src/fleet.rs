//! `mosaic-fleet`: the operator's verbs over a running fleet.
//!
//! - [`verbs`]: `fleet …` and `agent …`, over the transport and
//!   service-manager traits only; roster edits go through
//!   [`crate::install::pipeline`].
//! - [`remote`]: agents on other hosts, over ssh.
//! - [`cli`] parses arguments and prints.

pub(crate) mod cli;
pub(crate) mod remote;
pub(crate) mod verbs;
