//! mosaic-install: installs Mosaic's durable tmux agent fleet (`mosaic-install`)
//! and operates it (`mosaic-fleet`). Two binaries over one library, in three
//! parts (see ARCHITECTURE.md at the repository root):
//!
//! - [`shared`]: what both binaries stand on — the layout of a home, the
//!   roster model, the bundle and its rendering, the journaled transaction,
//!   receipts and generations, tmux and systemd.
//! - [`install`]: `mosaic-install` — plan, apply, status, uninstall,
//!   rollback, the reconcile of the units and the rollout.
//! - [`fleet`]: `mosaic-fleet` — the verbs over the transport and
//!   service-manager traits, remote agents.
//!
//! Data flows one way: roster → rendered tree → plan → transaction →
//! receipt → activation.

mod fleet;
mod install;
mod shared;

/// `mosaic-install`'s whole `main`.
pub fn install_main() -> std::process::ExitCode {
    install::cli::main()
}

/// `mosaic-fleet`'s whole `main`.
pub fn fleet_main() -> std::process::ExitCode {
    fleet::cli::main()
}

/// `mosaic-install`'s command line (for completions and man pages).
pub fn install_command() -> clap::Command {
    <install::cli::Cli as clap::CommandFactory>::command()
}

/// `mosaic-fleet`'s command line (for completions and man pages).
pub fn fleet_command() -> clap::Command {
    <fleet::cli::Cli as clap::CommandFactory>::command()
}
