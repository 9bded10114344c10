//! `cargo xtask`: the project's tasks as a plain binary, one module per task
//! (the rust-analyzer pattern). Shell work goes through `xshell`'s `cmd!`.

// Tasks run tools through xshell's cmd!; the few std Commands (timing a child process exactly, the sandbox's pid 1) need what cmd! does not give.
#![allow(clippy::disallowed_types)]

use clap::{Parser, Subcommand};

mod bench;
mod canary;
mod ci;
mod completions;
mod crash;
mod deb;
mod deps;
mod dist;
mod known_hashes;
mod lint;
mod pack;
mod pack_corpus;
mod sandbox;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Project tasks for the Mosaic fleet installer"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// bash -n and shellcheck on every script, systemd-analyze verify on every rendered unit.
    Lint(lint::Args),
    /// Everything CI runs: fmt, clippy, tests, lint, packaging check, pack-corpus.
    Ci(ci::Args),
    /// Run a command next to a real, isolated systemd user manager (root only).
    Sandbox(sandbox::Args),
    /// The inside of `sandbox`: pid 1 of its namespaces (started by `sandbox` only).
    #[command(hide = true)]
    SandboxInside(sandbox::InsideArgs),
    /// Build dist/<name>-<version>.tgz from templates/ as npm pack would; --check is the CI packaging check.
    Pack(pack::Args),
    /// xtask pack against npm pack on the pinned real packages of xtask/pack-corpus.txt.
    PackCorpus(pack_corpus::Args),
    /// Release artifacts in dist/: the npm-style .tgz, the binary archive, the .deb, SHA256SUMS.
    Dist(dist::Args),
    /// The Debian package alone (mosaic-install_<version>-1_<arch>.deb), as dist builds it.
    Deb(dist::Build),
    /// The canary rollout end to end against a real systemd user manager (sandboxed; --live: yours).
    Canary(canary::Args),
    /// Shell completions (bash, zsh, fish) and man pages for mosaic-install and mosaic-fleet.
    Completions(completions::Args),
    /// Whole-process benchmarks against the tools we replace (`bench pack`).
    Bench(bench::Args),
    /// Kill the installer at every state-changing syscall (strace) and prove the next command recovers to old or new, never a mix.
    Crash(crash::Args),
    /// Add the hashes of Mosaic's copies of our files, from a Mosaic framework tree, to the known-hash table.
    KnownHashes(known_hashes::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Lint(args) => lint::run(args),
        Task::Ci(args) => ci::run(args),
        Task::Sandbox(args) => sandbox::run(args),
        Task::SandboxInside(args) => sandbox::inside(args),
        Task::Pack(args) => pack::run(args),
        Task::PackCorpus(args) => pack_corpus::run(args),
        Task::Dist(args) => dist::run(args),
        Task::Deb(args) => deb::run(args),
        Task::Bench(args) => bench::run(args),
        Task::Completions(args) => completions::run(args),
        Task::Canary(args) => canary::run(args),
        Task::Crash(args) => crash::run(args),
        Task::KnownHashes(args) => known_hashes::run(args),
    }
}

/// The workspace root, from this crate's manifest directory.
pub(crate) fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits in the workspace root")
        .to_path_buf()
}
