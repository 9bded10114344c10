//! Command-line interface of `mosaic-fleet`: argument parsing (clap derive)
//! and dispatch to [`crate::fleet::verbs`]. The verbs and flags are the ones the
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

pub(crate) use args::{AgentVerb, Command, FleetVerb, SendArgs, UnitArgs};

use crate::fleet::remote::{self, RemoteSend, Sent};
use crate::fleet::verbs::agent::{self, UnitAction, Waits};
use crate::fleet::verbs::roster_edit::NewAgent;
use crate::fleet::verbs::send::{self, Recipients, SendOptions, SendRequest};
use crate::fleet::verbs::{
    fleet_host, fleet_wide, membership, AgentView, Fleet, FleetError, InstalledRoster,
};
use crate::shared::clock::SystemClock;
use crate::shared::command::{self, GlobalArgs};
use crate::shared::output;
use crate::shared::systemd::units::{DetachedServices, FleetServices};
use crate::shared::systemd::SystemctlUser;
use crate::shared::transport::tmux::TmuxTransport;

#[derive(Parser, Debug)]
#[command(
    name = "mosaic-fleet",
    version,
    about = "Operate Mosaic's agent fleet: the fleet and agent verbs over the installed roster (tmux -L <socket>, systemd user units)"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The host this run acts for: roster agents whose `host:` names it are local, the others are reached over ssh. Default: the host of the last install here, else this machine's hostname.
    #[arg(
        long,
        global = true,
        value_name = "HOST",
        help_heading = "Global options"
    )]
    pub(crate) host: Option<String>,
}

/// Parse the process arguments and run; the binary's whole `main`.
/// SIGPIPE stays ignored, as in `mosaic-install` (see [`crate::shared::output`]).
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let known: [command::Classify; 2] = [
        command::code_of::<FleetError>,
        command::code_of::<crate::install::pipeline::InstallError>,
    ];
    command::finish(TOOL, json, run(cli).map_err(anyhow::Error::new), &known)
}

const TOOL: &str = "mosaic-fleet";

fn show(code: u8, print: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> u8 {
    command::show(TOOL, code, print)
}

/// `systemctl --user`, unless `--home` names a home that is not `$HOME`:
/// the user manager only reads units from `$HOME`, so it is not asked.
fn services(global: &GlobalArgs) -> Box<dyn FleetServices> {
    match global.foreign_home() {
        Some(reason) => Box::new(DetachedServices { reason }),
        None => Box::new(SystemctlUser),
    }
}

fn transport(roster: &InstalledRoster) -> TmuxTransport {
    let settings = &roster.profile.roster;
    roster.agents.iter().fold(
        TmuxTransport::new(settings.socket(), settings.holder_session()),
        |transport, agent| transport.with_agent_socket(&agent.name, &agent.socket),
    )
}

pub(crate) fn run(cli: Cli) -> Result<u8, FleetError> {
    let global = cli.global;
    let layout = global.layout()?;
    // An interrupted install or roster edit is finished or undone before
    // any verb reads the roster.
    crate::install::report::print_recovered(&crate::shared::statedir::recover_if_pending(&layout)?);
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
            let options = fleet_wide::StartOptions {
                canary,
                wave: wave as usize,
                timeout: Duration::from_secs(wait.timeout),
                settle: Duration::from_secs(settle),
            };
            let report = fleet_wide::start(fleet, &options, &SystemClock)?;
            let code = if report.ok { 0 } else { 1 };
            Ok(show(code, |out| print::rollout(out, &report, json)))
        }
        FleetVerb::Stop => {
            let report = fleet_wide::stop(fleet)?;
            let code = if report.sessions_left.is_empty() {
                0
            } else {
                1
            };
            Ok(show(code, |out| print::stop(out, &report, json)))
        }
        FleetVerb::Verify => {
            let report = fleet_wide::verify(fleet)?;
            let code = if report.ok { 0 } else { 1 };
            Ok(show(code, |out| print::verify(out, &report, json)))
        }
        FleetVerb::Status { hosts: true, .. } => {
            let report = remote::hosts_status(fleet)?;
            let code = if report.healthy() { 0 } else { 1 };
            Ok(show(code, |out| print::hosts_status(out, &report, json)))
        }
        FleetVerb::Status { watch: false, .. } => {
            let report = fleet_wide::status(fleet, None)?;
            let code = if report.healthy() { 0 } else { 1 };
            Ok(show(code, |out| print::status(out, &report, json)))
        }
        FleetVerb::Status { watch: true, .. } => loop {
            let report = fleet_wide::status(fleet, None)?;
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
            let report = fleet_wide::status(fleet, name.as_deref())?;
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
            // The transport's own attach command (tmux's, built by
            // shared::tmux), run in place of this process.
            #[allow(clippy::disallowed_types)]
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
        let host = crate::shared::host::short(&fleet.roster.host).to_owned();
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
