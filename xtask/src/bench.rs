//! `cargo xtask bench <task>`: whole-process benchmarks against the tools
//! they replace. One module per benchmarked task; `measure` holds the shared
//! running, timing, memory and table code. To add one: a module here, a
//! variant in `Task`, an arm in `run`.

mod fleet;
mod install;
mod measure;
mod pack;
mod send;
mod upgrade;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(clap::Subcommand)]
enum Task {
    /// `xtask pack --dry-run --json` and a full pack against npm pack.
    Pack(pack::Args),
    /// mosaic-install (fresh, no-op, 10/100/1000 agents) against a shell cp baseline.
    Install(install::Args),
    /// Upgrading a Mosaic 0.0.31 tree, a no-op upgrade and status, against a fresh install.
    Upgrade(upgrade::Args),
    /// agent send --verify to a TUI (p50/p99, 8-sender throughput) against send-message.sh; fleet status of 100 agents against 10 tmux calls.
    Send(send::Args),
    /// 50 agents: fleet start from stopped and on a healthy fleet, systemctl start, a raw tmux loop (systemd sandbox).
    Fleet(fleet::Args),
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.task {
        Task::Pack(args) => pack::run(args),
        Task::Install(args) => install::run(args),
        Task::Fleet(args) => fleet::run(args),
        Task::Upgrade(args) => upgrade::run(args),
        Task::Send(args) => send::run(args),
    }
}
