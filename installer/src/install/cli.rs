//! Command-line interface of `mosaic-install`: argument parsing (clap
//! derive) and dispatch to the library. Output formatting lives in
//! [`crate::install::report`]; this module only wires flags to options.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use std::time::Duration;

use crate::install::activate::{self, ActivateOptions, ActivationReport, Changeset};
use crate::install::pipeline::{self, InstallOptions};
use crate::install::report;
use crate::shared::bundle::Bundle;
use crate::shared::command::{self, GlobalArgs};
use crate::shared::layout::Layout;
use crate::shared::profile::{self, Profile};
use crate::shared::render;
use crate::shared::runtime_path::RuntimePath;
use crate::shared::systemd::units::FleetServices;
use crate::shared::systemd::{ServiceManager, SystemctlUser};

#[derive(Parser, Debug)]
#[command(
    name = "mosaic-install",
    version,
    about = "Install or upgrade Mosaic's durable tmux agent fleet (systemd user units, tmux and fleet scripts, roster and per-agent settings)"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) install: InstallArgs,
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Install or upgrade (the default command).
    Install(InstallArgs),
    /// Compare the installed files with the receipt (ok, edited, modified, replaced by Mosaic's copy, removed) and the agents with the roster and their units; exit 1 on drift.
    Status,
    /// Remove every installed file you did not change; keep and list the rest.
    Uninstall(UninstallArgs),
    /// Undo the newest generation, restoring the previous one exactly (files and receipt), then bring the units in line.
    Rollback(RollbackArgs),
    /// List the embedded profiles.
    Profiles,
    /// Render the files for a profile into a directory, for review or packaging.
    Render(RenderArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub(crate) struct InstallArgs {
    /// Embedded profile name (see `profiles`) or path of a roster file. Default: the installed roster, else `minimal`.
    #[arg(long, value_name = "NAME|PATH")]
    pub(crate) profile: Option<String>,
    /// Install from an unpacked templates package instead of the embedded bundle.
    #[arg(long, value_name = "DIR")]
    pub(crate) bundle: Option<PathBuf>,
    /// Install the agents whose roster `host:` names HOST (and those without one). Default: the host of the last install here, else this machine's hostname.
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// Print the plan and a unified diff per changed file; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Overwrite managed files the operator changed (after backing them up).
    #[arg(long)]
    pub(crate) force: bool,
    /// Generations (receipts and backups) to keep for rollback.
    #[arg(long, value_name = "N", default_value_t = crate::shared::generation::KEEP)]
    pub(crate) keep: u64,
    /// Do not run systemctl; print the commands to run instead.
    #[arg(long)]
    pub(crate) no_systemctl: bool,
    /// Start the fleet canary-first: holder, canary, verify, then waves, verifying each.
    #[arg(long)]
    pub(crate) start: bool,
    /// Agent to start first with --start (default: the roster's first agent).
    #[arg(long, value_name = "NAME", requires = "start")]
    pub(crate) canary: Option<String>,
    /// Agents per wave after the canary, with --start.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "start", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) wave: u64,
    /// Restart running units whose unit files this upgrade changed (default: reload only, sessions keep running).
    #[arg(long)]
    pub(crate) restart_changed: bool,
    /// Seconds one rollout verification may wait for a unit and its session.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub(crate) verify_timeout: u64,
    /// Seconds each agent this run starts (--start, or a new agent on a running fleet) must then keep running (same session, no unit restart) before the next wave.
    #[arg(long, value_name = "SECS", default_value_t = crate::install::rollout::SETTLE.as_secs())]
    pub(crate) settle: u64,
}

#[derive(Args, Debug)]
pub(crate) struct UninstallArgs {
    /// Show what would be removed and kept; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Also remove the fleet's configuration (roster, generated env files)
    /// and the installer's state; your `.local.env` files and edited files stay.
    #[arg(long)]
    pub(crate) purge: bool,
    /// Do not stop and disable the units first; print the commands instead.
    #[arg(long)]
    pub(crate) no_systemctl: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RollbackArgs {
    /// Do not run systemctl; print the commands instead.
    #[arg(long)]
    pub(crate) no_systemctl: bool,
    /// Restart running agents whose settings the rollback changed.
    #[arg(long)]
    pub(crate) restart_changed: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RenderArgs {
    /// Embedded profile name or roster file path.
    #[arg(long, value_name = "NAME|PATH", default_value = pipeline::DEFAULT_PROFILE)]
    pub(crate) profile: String,
    /// Directory to write the rendered tree into (paths relative to ~/.config).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Render from an unpacked templates package instead of the embedded bundle.
    #[arg(long, value_name = "DIR")]
    pub(crate) bundle: Option<PathBuf>,
}

/// Parse the process arguments and run; the binary's whole `main`.
///
/// SIGPIPE stays ignored (Rust's default): a closed stdout is a write error
/// the printers return, so an install that already committed still exits
/// with its own result instead of dying of the signal.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let known: [command::Classify; 1] =
        [command::code_of::<crate::install::pipeline::InstallError>];
    command::finish(TOOL, json, run(cli), &known)
}

const TOOL: &str = "mosaic-install";

fn show(code: u8, print: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> u8 {
    command::show(TOOL, code, print)
}

fn layout(global: &GlobalArgs) -> anyhow::Result<Layout> {
    Ok(global.layout()?)
}

fn bundle(dir: Option<&PathBuf>) -> anyhow::Result<Bundle> {
    match dir {
        Some(dir) => {
            Bundle::from_dir(dir).with_context(|| format!("loading --bundle {}", dir.display()))
        }
        None => Ok(Bundle::embedded()),
    }
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<u8> {
    let global = cli.global;
    let install_flags = cli.install.profile.is_some()
        || cli.install.bundle.is_some()
        || cli.install.host.is_some()
        || cli.install.dry_run
        || cli.install.force;
    if install_flags && cli.command.is_some() {
        anyhow::bail!(
            "--profile, --bundle, --host, --dry-run and --force given before a subcommand belong to install; put them after the subcommand (for example `mosaic-install uninstall --dry-run`)"
        );
    }
    match cli.command {
        None => run_install(&global, cli.install),
        Some(Command::Install(args)) => run_install(&global, args),
        Some(Command::Status) => {
            let services = global
                .foreign_home()
                .is_none()
                .then_some(&SystemctlUser as &dyn FleetServices);
            let report = crate::install::status::status(&layout(&global)?, services)?;
            let code = if report.drift() { 1 } else { 0 };
            Ok(show(code, |out| {
                report::print_status(out, &report, global.json)
            }))
        }
        Some(Command::Uninstall(args)) => run_uninstall(&global, &args),
        Some(Command::Rollback(args)) => {
            let layout = layout(&global)?;
            let mut report = crate::install::rollback::rollback(&layout)?;
            let changes = report.changes();
            report.systemd = Some(match rollback_skip(&global, &args) {
                Some(why) => ActivationReport::skipped(&changes, why),
                None => activate::activate(
                    &SystemctlUser,
                    &layout,
                    &changes,
                    &ActivateOptions {
                        start: false,
                        canary: None,
                        wave: 4,
                        restart_changed: args.restart_changed,
                        timeout: Duration::from_secs(20),
                        settle: crate::install::rollout::SETTLE,
                    },
                )
                .context("the files are rolled back, but the systemd step failed")?,
            });
            Ok(show(0, |out| {
                report::print_rollback(out, &report, global.json)
            }))
        }
        Some(Command::Profiles) => {
            let bundle = Bundle::embedded();
            let rows: Vec<(String, String)> = bundle
                .profile_names()
                .into_iter()
                .map(|name| {
                    let text = bundle.profile_text(&name).unwrap_or_default();
                    let description = profile::description(text).to_owned();
                    (name, description)
                })
                .collect();
            Ok(show(0, |out| {
                report::print_profiles(out, &rows, pipeline::DEFAULT_PROFILE, global.json)
            }))
        }
        Some(Command::Render(args)) => {
            let bundle = bundle(args.bundle.as_ref())?;
            let profile = Profile::resolve(&args.profile, &bundle)?;
            let layout = layout(&global)?;
            let runtime_path = RuntimePath::resolve(&layout.home).joined();
            let host = render::Host {
                mosaic_dir: &layout.unit_mosaic_dir()?,
                runtime_path: &runtime_path,
            };
            let tree = render::render(&bundle, &profile, &host)?;
            report::write_rendered(&tree, &args.out).with_context(|| {
                format!("writing the rendered tree into {}", args.out.display())
            })?;
            if global.json {
                return Ok(0);
            }
            Ok(show(0, |out| {
                writeln!(
                    out,
                    "rendered {} files for profile {} into {}",
                    tree.files.len(),
                    profile.name,
                    args.out.display()
                )
            }))
        }
    }
}

fn run_install(global: &GlobalArgs, args: InstallArgs) -> anyhow::Result<u8> {
    let mut opts = InstallOptions::new(layout(global)?).with_profile(args.profile.as_deref());
    opts.bundle_dir = args.bundle;
    opts.host = args.host;
    opts.dry_run = args.dry_run;
    opts.force = args.force;
    opts.keep = args.keep;
    let mut report = pipeline::install(&opts)?;
    let activate_opts = ActivateOptions {
        start: args.start,
        canary: args.canary,
        wave: args.wave as usize,
        restart_changed: args.restart_changed,
        timeout: Duration::from_secs(args.verify_timeout),
        settle: Duration::from_secs(args.settle),
    };
    let skip = if args.no_systemctl {
        Some("--no-systemctl".to_owned())
    } else {
        global.foreign_home()
    };
    let changes = Changeset::of_install(&report);
    let activation = match (opts.dry_run, skip) {
        (true, skip) => {
            let mgr = skip
                .is_none()
                .then_some(&SystemctlUser as &dyn FleetServices);
            activate::preview(mgr, &opts.layout, &changes, &activate_opts)
                .context("asking systemd for the units' state")?
        }
        (false, Some(why)) => ActivationReport::skipped(&changes, why),
        (false, None) => activate::activate(&SystemctlUser, &opts.layout, &changes, &activate_opts)
            .context("the files are installed, but the systemd step failed")?,
    };
    report.systemd = Some(activation);
    report::print_recovered(&report.recovered);
    if let Some(unfinished) = &report.unfinished {
        crate::shared::output::to_stderr(format_args!(
            "mosaic-install: warning: the install is committed, but {unfinished}; the next command finishes it"
        ));
    }
    let failed = report
        .systemd
        .as_ref()
        .is_some_and(|s| s.outcome == activate::Outcome::RolloutFailed);
    let code = if failed { 1 } else { 0 };
    Ok(show(code, |out| {
        if global.json {
            report::print_install_json(out, &report)
        } else {
            report::print_install(out, &report, &opts.layout)
        }
    }))
}

/// Stop and disable the fleet's units while their files still exist
/// (systemd cannot disable a unit whose file is gone), remove the files,
/// then reload so the manager forgets the units.
fn run_uninstall(global: &GlobalArgs, args: &UninstallArgs) -> anyhow::Result<u8> {
    let layout = layout(global)?;
    // Nothing installed: say so before any systemctl call touches a unit.
    crate::shared::statedir::recover_if_pending(&layout)?;
    let agents = crate::install::status::installed_receipt(&layout)?.agents;
    let skip = if args.no_systemctl {
        Some("--no-systemctl".to_owned())
    } else {
        global.foreign_home()
    };
    // A dry run previews what the real run would do: run systemctl, or
    // (skipped) print the commands for the operator.
    let down = match (&skip, args.dry_run) {
        (None, true) => activate::deactivation_not_run(
            Some(&SystemctlUser),
            &layout,
            &agents,
            activate::Outcome::Preview,
            "dry run".into(),
        ),
        (Some(why), _) => activate::deactivation_not_run(
            None,
            &layout,
            &agents,
            activate::Outcome::Skipped,
            why.clone(),
        ),
        (None, false) => activate::deactivate(&SystemctlUser, &layout, &agents)
            .context("stopping the fleet before uninstalling; nothing was removed")?,
    };
    let mut report = crate::install::uninstall::uninstall(&layout, args.dry_run, args.purge)?;
    let mut down = down;
    if down.outcome == activate::Outcome::Done {
        SystemctlUser
            .daemon_reload()
            .context("the files are removed, but systemctl --user daemon-reload failed")?;
        down.commands.push("systemctl --user daemon-reload".into());
    }
    report.systemd = Some(down);
    Ok(show(0, |out| {
        report::print_uninstall(out, &report, global.json)
    }))
}

fn rollback_skip(global: &GlobalArgs, args: &RollbackArgs) -> Option<String> {
    if args.no_systemctl {
        Some("--no-systemctl".to_owned())
    } else {
        global.foreign_home()
    }
}
