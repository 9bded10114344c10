//! Command-line interface of `mosaic-fleet`: argument parsing (clap derive)
//! and dispatch to [`crate::verbs`]. The verbs and flags are the ones the
//! Mosaic CLI teaches (`fleet …`, `agent …`); output lives in
//! [`print`], and this module only wires flags to verbs and reports to exit
//! codes: 0 done or healthy, 1 a check failed or a message stayed a draft
//! (or its submit is unconfirmed), 2 bad input, 3 the agent is down, 5 the
//! agent's program is not ready, 6 the agent is busy with other senders.

mod args;
mod print;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

pub use args::{
    AddArgs, AgentVerb, Command, FleetVerb, ReadyArgs, ReadyUnitArgs, SendArgs, UnitArgs, WaitArgs,
};

use crate::cli::GlobalArgs;
use crate::layout::Layout;
use crate::systemd::SystemctlUser;
use crate::transport::tmux::TmuxTransport;
use crate::verbs::agent::{self, UnitAction, Waits};
use crate::verbs::roster_edit::NewAgent;
use crate::verbs::send::{self, Recipients, SendOptions, SendRequest};
use crate::verbs::units::{DetachedServices, FleetServices};
use crate::verbs::{fleet, membership, Fleet, FleetError, InstalledRoster};

#[derive(Parser, Debug)]
#[command(
    name = "mosaic-fleet",
    version,
    about = "Operate Mosaic's agent fleet: the fleet and agent verbs over the installed roster (tmux -L <socket>, systemd user units)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Parse the process arguments and run; the binary's whole `main`.
pub fn main() -> ExitCode {
    // SAFETY: called before any thread starts; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("mosaic-fleet: error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn layout(global: &GlobalArgs) -> Result<Layout, FleetError> {
    Ok(match &global.home {
        Some(home) => Layout::for_home(home)?,
        None => Layout::from_env()?,
    })
}

/// `systemctl --user`, unless `--home` names a home that is not `$HOME`:
/// the user manager only reads units from `$HOME`, so it is not asked.
fn services(global: &GlobalArgs) -> Box<dyn FleetServices> {
    let foreign = global.home.as_ref().is_some_and(|given| {
        let real = std::env::var_os("HOME").map(PathBuf::from);
        real.and_then(|r| r.canonicalize().ok()) != given.canonicalize().ok()
    });
    if foreign {
        return Box::new(DetachedServices {
            reason: "--home is not $HOME, and the user manager only reads units from $HOME".into(),
        });
    }
    Box::new(SystemctlUser)
}

fn transport(roster: &InstalledRoster) -> TmuxTransport {
    let settings = &roster.profile.roster;
    roster.agents.iter().fold(
        TmuxTransport::new(settings.socket(), settings.holder_session()),
        |transport, agent| transport.with_agent_socket(&agent.name, &agent.socket),
    )
}

pub fn run(cli: Cli) -> Result<u8, FleetError> {
    let global = cli.global;
    let layout = layout(&global)?;
    if let Command::Fleet(FleetVerb::Init { profile, force }) = &cli.command {
        let report = membership::init(&layout, profile, *force)?;
        print::membership("init", &report, global.json);
        return Ok(0);
    }
    let roster = InstalledRoster::load(&layout)?;
    let transport = transport(&roster);
    let services = services(&global);
    let fleet = Fleet {
        layout,
        roster,
        transport: &transport,
        services: services.as_ref(),
    };
    match cli.command {
        Command::Fleet(verb) => run_fleet(&fleet, verb, global.json),
        Command::Agent(verb) => run_agent(&fleet, verb, global.json),
    }
}

fn run_fleet(fleet: &Fleet<'_>, verb: FleetVerb, json: bool) -> Result<u8, FleetError> {
    match verb {
        FleetVerb::Init { .. } => unreachable!("handled before the roster is loaded"),
        FleetVerb::Start { canary, wave, wait } => {
            let timeout = Duration::from_secs(wait.timeout);
            let report = fleet::start(fleet, canary, wave as usize, timeout)?;
            print::rollout(&report, json);
            Ok(if report.ok { 0 } else { 1 })
        }
        FleetVerb::Stop => {
            let report = fleet::stop(fleet)?;
            print::stop(&report, json);
            Ok(if report.sessions_left.is_empty() {
                0
            } else {
                1
            })
        }
        FleetVerb::Verify => {
            let report = fleet::verify(fleet)?;
            print::verify(&report, json);
            Ok(if report.ok { 0 } else { 1 })
        }
        FleetVerb::Status { watch: false } => {
            let report = fleet::status(fleet, None)?;
            print::status(&report, json);
            Ok(if report.healthy() { 0 } else { 1 })
        }
        FleetVerb::Status { watch: true } => loop {
            let report = fleet::status(fleet, None)?;
            print::status_frame(&report, json);
            std::thread::sleep(Duration::from_secs(2));
        },
    }
}

fn run_agent(fleet: &Fleet<'_>, verb: AgentVerb, json: bool) -> Result<u8, FleetError> {
    let unit = |args: UnitArgs, ready: u64, action| {
        let waits = Waits {
            session: Duration::from_secs(args.wait.timeout),
            ready: Duration::from_secs(ready),
        };
        let report = agent::unit_action(fleet, &args.name, action, waits)?;
        print::unit_action(&report, json);
        Ok(if report.ok { 0 } else { 1 })
    };
    match verb {
        AgentVerb::Roster => {
            print::roster(agent::roster(fleet), json);
            Ok(0)
        }
        AgentVerb::Status { name } => {
            let report = fleet::status(fleet, name.as_deref())?;
            print::status(&report, json);
            Ok(if report.healthy() { 0 } else { 1 })
        }
        AgentVerb::Start(args) => unit(args.unit, args.ready.ready_timeout, UnitAction::Start),
        AgentVerb::Stop(args) => unit(args, 0, UnitAction::Stop),
        AgentVerb::Restart(args) => unit(args.unit, args.ready.ready_timeout, UnitAction::Restart),
        AgentVerb::Add(args) => {
            let new = NewAgent {
                name: args.name,
                runtime: args.runtime,
                class: args.class,
                model_hint: args.model,
                working_directory: args.working_directory,
                command: args.command,
            };
            let report = membership::add(fleet, &new)?;
            print::membership("add", &report, json);
            Ok(0)
        }
        AgentVerb::Remove { name, purge } => {
            let report = membership::remove(fleet, &name, purge)?;
            print::membership("remove", &report, json);
            Ok(0)
        }
        AgentVerb::Send(args) => run_send(fleet, args, json),
        AgentVerb::Reset {
            name,
            new,
            wait,
            ready,
        } => {
            let waits = Waits {
                session: Duration::from_secs(wait.timeout),
                ready: Duration::from_secs(ready.ready_timeout),
            };
            let report = agent::reset(fleet, &name, new, waits)?;
            print::reset(&report, json);
            Ok(report.delivery.exit_code())
        }
        AgentVerb::Tail { name, lines } => {
            let text = agent::tail(fleet, &name, lines)?;
            print::tail(&name, &text, json);
            Ok(0)
        }
        AgentVerb::Attach { name, read_only } => {
            let argv = agent::attach(fleet, &name, read_only)?;
            let err = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .env_remove("TMUX")
                .exec();
            Err(FleetError::Io {
                what: "run",
                path: PathBuf::from(&argv[0]),
                cause: err,
            })
        }
    }
}

fn run_send(fleet: &Fleet<'_>, args: SendArgs, json: bool) -> Result<u8, FleetError> {
    let body = match (args.message, &args.file) {
        (Some(text), _) => text,
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|cause| FleetError::Io {
            what: "read the message file",
            path: path.clone(),
            cause,
        })?,
        (None, None) => read_stdin()?,
    };
    let request = SendRequest {
        to: match args.name {
            Some(name) if !args.all => Recipients::One(name),
            _ => Recipients::All,
        },
        body,
        source: args.source,
        options: SendOptions {
            attempts: args.attempts,
            ready_timeout: Duration::from_secs(args.ready.ready_timeout),
            lock_wait: Duration::from_secs(args.wait),
            sanitize: args.sanitize,
            lines: args.lines,
        },
    };
    let report = send::send(fleet, &request)?;
    print::send(&report, args.verify, json);
    Ok(report.exit_code())
}

fn read_stdin() -> Result<String, FleetError> {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(0) } == 1 {
        return Err(FleetError::EmptyMessage);
    }
    let mut body = String::new();
    std::io::stdin()
        .read_to_string(&mut body)
        .map_err(|cause| FleetError::Io {
            what: "read the message from",
            path: PathBuf::from("stdin"),
            cause,
        })?;
    Ok(body)
}
