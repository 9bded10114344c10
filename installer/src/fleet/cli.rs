//! Command-line interface of `mosaic-fleet`: argument parsing (clap derive)
//! and dispatch to [`crate::verbs`]. The verbs and flags are the ones the
//! Mosaic CLI teaches (`fleet …`, `agent …`); output lives in
//! [`print`], and this module only wires flags to verbs and reports to exit
//! codes: 0 done or healthy, 1 a check failed or a message stayed a draft
//! (or its submit is unconfirmed), 2 bad input, 3 the agent is down, 5 the
//! agent's program is not ready, 6 the agent is busy with other senders.

mod args;
mod print;

use std::io::{self, Read, Write};
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
use crate::output;
use crate::remote::{self, RemoteSend, Sent};
use crate::rollout::SystemClock;
use crate::systemd::SystemctlUser;
use crate::transport::tmux::TmuxTransport;
use crate::verbs::agent::{self, UnitAction, Waits};
use crate::verbs::roster_edit::NewAgent;
use crate::verbs::send::{self, Recipients, SendOptions, SendRequest};
use crate::verbs::units::{DetachedServices, FleetServices};
use crate::verbs::{fleet, fleet_host, membership, AgentView, Fleet, FleetError, InstalledRoster};

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
    /// The host this run acts for: roster agents whose `host:` names it are local, the others are reached over ssh. Default: the host of the last install here, else this machine's hostname.
    #[arg(long, global = true, value_name = "HOST")]
    pub host: Option<String>,
}

/// Parse the process arguments and run; the binary's whole `main`.
/// SIGPIPE stays ignored, as in `mosaic-install` (see [`crate::output`]).
pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            output::to_stderr(format_args!("mosaic-fleet: error: {err}"));
            ExitCode::from(err.exit_code())
        }
    }
}

/// Print a report to stdout and return `code`, the command's own result,
/// whether or not stdout took the report (a lost one is said on stderr).
fn show(code: u8, print: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> u8 {
    if let Err(cause) = output::to_stdout(print) {
        output::report_lost("mosaic-fleet", &cause);
    }
    code
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
    // An interrupted install or roster edit is finished or undone before
    // any verb reads the roster.
    crate::report::print_recovered(&crate::statedir::recover_if_pending(&layout)?);
    let host = fleet_host(&layout, cli.host.as_deref())?;
    if let Command::Fleet(FleetVerb::Init { profile, force }) = &cli.command {
        let services = services(&global);
        let report = membership::init(&layout, services.as_ref(), profile, *force, &host)?;
        return Ok(show(report.exit_code(), |out| {
            print::membership(out, "init", &report, global.json)
        }));
    }
    let roster = InstalledRoster::load_for(&layout, &host)?;
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
        FleetVerb::Start {
            canary,
            wave,
            settle,
            wait,
        } => {
            let options = fleet::StartOptions {
                canary,
                wave: wave as usize,
                timeout: Duration::from_secs(wait.timeout),
                settle: Duration::from_secs(settle),
            };
            let report = fleet::start(fleet, &options, &SystemClock)?;
            let code = if report.ok { 0 } else { 1 };
            Ok(show(code, |out| print::rollout(out, &report, json)))
        }
        FleetVerb::Stop => {
            let report = fleet::stop(fleet)?;
            let code = if report.sessions_left.is_empty() {
                0
            } else {
                1
            };
            Ok(show(code, |out| print::stop(out, &report, json)))
        }
        FleetVerb::Verify => {
            let report = fleet::verify(fleet)?;
            let code = if report.ok { 0 } else { 1 };
            Ok(show(code, |out| print::verify(out, &report, json)))
        }
        FleetVerb::Status { hosts: true, .. } => {
            let report = remote::hosts_status(fleet)?;
            let code = if report.healthy() { 0 } else { 1 };
            Ok(show(code, |out| print::hosts_status(out, &report, json)))
        }
        FleetVerb::Status { watch: false, .. } => {
            let report = fleet::status(fleet, None)?;
            let code = if report.healthy() { 0 } else { 1 };
            Ok(show(code, |out| print::status(out, &report, json)))
        }
        FleetVerb::Status { watch: true, .. } => loop {
            let report = fleet::status(fleet, None)?;
            // Nobody is watching once stdout is gone: stop with the last state.
            if let Err(cause) = output::to_stdout(|out| print::status_frame(out, &report, json)) {
                output::report_lost("mosaic-fleet", &cause);
                return Ok(if report.healthy() { 0 } else { 1 });
            }
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
        let code = if report.ok { 0 } else { 1 };
        Ok(show(code, |out| print::unit_action(out, &report, json)))
    };
    match verb {
        AgentVerb::Roster => Ok(show(0, |out| {
            print::roster(out, agent::roster(fleet), json)
        })),
        AgentVerb::Status { name: Some(name) } if remote_agent(fleet, &name).is_some() => {
            let agent = remote_agent(fleet, &name).expect("checked");
            let verb = ["agent".to_owned(), "status".to_owned(), name];
            Ok(print::verbatim(&remote::relay(agent, &verb, json)?))
        }
        AgentVerb::Status { name } => {
            let report = fleet::status(fleet, name.as_deref())?;
            let code = if report.healthy() { 0 } else { 1 };
            Ok(show(code, |out| print::status(out, &report, json)))
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
            Ok(show(report.exit_code(), |out| {
                print::membership(out, "add", &report, json)
            }))
        }
        AgentVerb::Remove { name, purge } => {
            let report = membership::remove(fleet, &name, purge)?;
            Ok(show(report.exit_code(), |out| {
                print::membership(out, "remove", &report, json)
            }))
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
            let code = report.delivery.exit_code();
            Ok(show(code, |out| print::reset(out, &report, json)))
        }
        AgentVerb::Tail { name, lines } if remote_agent(fleet, &name).is_some() => {
            let agent = remote_agent(fleet, &name).expect("checked");
            let verb = ["agent", "tail", &name, "-n", &lines.to_string()].map(str::to_owned);
            Ok(print::verbatim(&remote::relay(agent, &verb, json)?))
        }
        AgentVerb::Tail { name, lines } => {
            let text = agent::tail(fleet, &name, lines)?;
            Ok(show(0, |out| print::tail(out, &name, &text, json)))
        }
        AgentVerb::Attach {
            name,
            read_only: true,
        }
        | AgentVerb::Watch { name } => {
            let watched = agent::watch(fleet, &name)?;
            if watched.session_ended {
                output::to_stderr(format_args!(
                    "mosaic-fleet: the session of agent {name} ended; the viewer was closed"
                ));
            }
            Ok(u8::try_from(watched.exit_code).unwrap_or(1))
        }
        AgentVerb::Attach { name, .. } => {
            let argv = agent::attach(fleet, &name)?;
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

/// The roster agent called `name` when it runs on another host.
fn remote_agent<'a>(fleet: &'a Fleet<'_>, name: &str) -> Option<&'a AgentView> {
    fleet.agent(name).ok().filter(|agent| !agent.is_local())
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
    if let Some(agent) = args.name.as_deref().and_then(|n| remote_agent(fleet, n)) {
        let body = send::prepare_body(&body, args.sanitize)?;
        let host = crate::host::short(&fleet.roster.host).to_owned();
        let request = RemoteSend {
            body: &body,
            source: args
                .source
                .unwrap_or_else(|| send::source_label(fleet, &host)),
            attempts: args.attempts,
            verify: args.verify,
            json,
            ready_timeout: args.ready.ready_timeout,
            lock_wait: args.wait,
            sanitize: args.sanitize,
            lines: args.lines,
        };
        return Ok(match remote::send(agent, &request)? {
            Sent::Verbatim(relayed) => print::verbatim(&relayed),
            Sent::Report(report) => show(report.exit_code(), |out| {
                print::send(out, &report, args.verify, json)
            }),
        });
    }
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
    let code = report.exit_code();
    Ok(show(code, |out| {
        print::send(out, &report, args.verify, json)
    }))
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
