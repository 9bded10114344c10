//! The workspace's integration tests, as one test binary (one link, one
//! process start per `cargo test`): the real `mosaic-install` and
//! `mosaic-fleet` in temp homes, driving real tmux, systemd, npm, dpkg, sshd
//! and Ansible. One module per area; `support` holds the fixtures several
//! areas share. Tests that need a systemd user manager re-run themselves
//! inside `cargo xtask sandbox` (see `mosaic_tests::sandbox`).

// These tests drive the real programs (tmux, systemctl, sshd, npm) as a user would.
#![allow(clippy::disallowed_types)]

mod support;

mod ansible_fleet;
mod bad_input;
mod canary;
mod deb;
mod fleet_completions;
mod fleet_membership;
mod fleet_send;
mod fleet_systemd;
mod fleet_verbs;
mod fleet_watch;
mod full_outputs;
mod help;
mod hostile_input;
mod install;
mod install_hosts;
mod install_locations;
mod lifecycle;
mod mosaic_coexist;
mod operator_text;
mod pack;
mod recovery;
mod remote_agents;
mod roster_truth;
mod runtime_path_systemd;
mod scripts;
mod send_chaos;
mod send_delivery;
mod send_systemd;
mod systemd_sandbox;
mod systemd_units;
mod systemd_verify;
mod tidy;
mod upgrade;
