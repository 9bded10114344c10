//! The fleet and agent verbs of `mosaic-fleet`, over the installed roster.
//!
//! Every verb works on a [`Fleet`]: the installed roster (with each agent's
//! env file, which the operator may have edited), a [`Transport`] that
//! reaches the agents' sessions and a [`FleetServices`] that runs their
//! units. The verbs depend only on those traits, never on tmux or systemctl,
//! so the in-memory fleet tests their logic and a Matrix transport could
//! replace tmux without changing them. Each verb returns a report (for text
//! or `--json`); printing is the CLI's.
//!
//! One module per verb group: [`fleet_wide`] (init, start, stop, verify, status),
//! [`agent`] (roster, status, start/stop/restart, tail, attach, reset),
//! [`send`] (send with the addressing preamble) over the hygiene rules of
//! [`message`], [`membership`] (add,
//! remove) over the text edits of [`roster_edit`]; unit states come in one
//! query from [`crate::shared::systemd::units`].

pub(crate) mod agent;
pub(crate) mod fleet_wide;
pub(crate) mod membership;
pub(crate) mod message;
pub(crate) mod roster_edit;
pub(crate) mod send;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::install::rollout::UnknownCanary;
use crate::shared::command::ExitStatus;
use crate::shared::envfile;
use crate::shared::layout::{Layout, LayoutError};
use crate::shared::lock::LockError;
use crate::shared::profile::ROSTER_PATH;
use crate::shared::profile::{Profile, ProfileError};
use crate::shared::render::{agent_env_path, shell_quote, AgentSettings, RenderError};
use crate::shared::systemd::units::FleetServices;
use crate::shared::systemd::SystemdError;
use crate::shared::transport::{Transport, TransportError};

/// One agent as the fleet runs it: the roster's entry with the settings of
/// its env file (the operator's edits win, as they do for the unit).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentView {
    pub(crate) name: String,
    pub(crate) runtime: String,
    pub(crate) class: Option<String>,
    pub(crate) model: Option<String>,
    /// None for an agent on another host.
    pub(crate) workdir: Option<String>,
    pub(crate) socket: String,
    /// The command its pane runs.
    pub(crate) command: String,
    /// The runtime directories its env file puts first on the pane's PATH;
    /// None without an env file (another host, or not installed).
    pub(crate) runtime_path: Option<String>,
    /// None (or localhost) for this machine.
    pub(crate) host: Option<String>,
    /// The roster's ssh destination (user@host) for an agent elsewhere.
    pub(crate) ssh: Option<String>,
    /// Whether it runs on the host this roster is viewed from.
    pub(crate) local: bool,
}

impl AgentView {
    pub(crate) fn is_local(&self) -> bool {
        self.local
    }
}

/// The roster at `~/.config/mosaic/fleet/roster.yaml`, validated.
#[derive(Debug, Clone)]
pub(crate) struct InstalledRoster {
    pub(crate) path: PathBuf,
    pub(crate) profile: Profile,
    pub(crate) agents: Vec<AgentView>,
    /// The host this roster is viewed from: its agents are local, the rest
    /// are reached over ssh.
    pub(crate) host: String,
}

/// The host a `mosaic-fleet` run acts for: `--host`, else the host the last
/// install in this home was for (its receipt), else this machine's hostname.
pub(crate) fn fleet_host(layout: &Layout, flag: Option<&str>) -> Result<String, FleetError> {
    if let Some(host) = flag {
        if let Some(problem) = crate::shared::host::name_problem(host) {
            return Err(ProfileError::BadHost {
                host: host.to_owned(),
                problem,
            }
            .into());
        }
        return Ok(host.to_owned());
    }
    let installed = crate::shared::receipt::Receipt::load(&layout.receipt())
        .ok()
        .flatten()
        .and_then(|receipt| receipt.host);
    Ok(installed.unwrap_or_else(crate::shared::host::machine))
}

impl InstalledRoster {
    /// The installed roster as seen from `host`.
    pub(crate) fn load_for(layout: &Layout, host: &str) -> Result<InstalledRoster, FleetError> {
        let path = layout.target(Path::new(ROSTER_PATH));
        let profile = Profile::installed(layout, host)?
            .ok_or_else(|| FleetError::NoRoster { path: path.clone() })?;
        let settings = AgentSettings::of(&profile);
        let agents = profile
            .roster
            .agents
            .iter()
            .map(|agent| {
                let local = settings.iter().find(|s| s.name == agent.name);
                let env = layout.target(&agent_env_path(&agent.name));
                view(agent, local, &env, profile.roster.socket())
            })
            .collect();
        Ok(InstalledRoster {
            path,
            profile,
            agents,
            host: host.to_owned(),
        })
    }
}

fn view(
    agent: &crate::shared::profile::Agent,
    local: Option<&AgentSettings>,
    env_file: &Path,
    default_socket: &str,
) -> AgentView {
    let mut out = AgentView {
        name: agent.name.clone(),
        runtime: agent.runtime.clone(),
        class: agent.class.clone(),
        model: agent.model_hint.clone(),
        workdir: None,
        socket: agent
            .socket
            .clone()
            .unwrap_or_else(|| default_socket.to_owned()),
        command: String::new(),
        runtime_path: None,
        host: agent.host.clone(),
        ssh: agent.ssh.clone(),
        local: local.is_some(),
    };
    let Some(settings) = local else {
        return out;
    };
    out.workdir = Some(settings.workdir.clone());
    out.command = settings.command.clone().unwrap_or_else(|| {
        let mut command = format!("mosaic yolo {}", settings.runtime);
        if let Some(model) = &settings.model {
            command.push_str(&format!(" --model {}", shell_quote(model)));
        }
        command
    });
    // The env file is what the unit runs with (start-agent-session.sh
    // sources it alone), so when it exists its values are the truth.
    if let Ok(text) = std::fs::read_to_string(env_file) {
        let vars = envfile::parse(&text);
        let expect = crate::install::rollout::AgentExpectation::from_env_file(
            env_file,
            &agent.name,
            default_socket,
        );
        out.socket = expect.socket;
        out.command = expect.command;
        out.runtime = vars
            .get("MOSAIC_AGENT_RUNTIME")
            .cloned()
            .unwrap_or(out.runtime);
        out.model = vars.get("MOSAIC_AGENT_MODEL").cloned();
        out.class = vars.get("MOSAIC_AGENT_CLASS").cloned();
        out.runtime_path = Some(crate::install::rollout::runtime_dirs(&vars));
        out.workdir = Some(
            vars.get("MOSAIC_AGENT_WORKDIR")
                .cloned()
                .unwrap_or_else(|| crate::shared::profile::DEFAULT_WORKDIR.to_owned()),
        );
    }
    out
}

/// What every verb works on.
pub(crate) struct Fleet<'a> {
    pub(crate) layout: Layout,
    pub(crate) roster: InstalledRoster,
    pub(crate) transport: &'a dyn Transport,
    pub(crate) services: &'a dyn FleetServices,
}

impl Fleet<'_> {
    /// The agent called exactly `name`, or an error listing the known ones.
    pub(crate) fn agent(&self, name: &str) -> Result<&AgentView, FleetError> {
        self.roster
            .agents
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| FleetError::UnknownAgent {
                name: name.to_owned(),
                known: self.known(),
            })
    }

    /// The agent called `name` when it runs on this machine.
    pub(crate) fn local_agent(&self, name: &str) -> Result<&AgentView, FleetError> {
        let agent = self.agent(name)?;
        if !agent.is_local() {
            return Err(FleetError::RemoteAgent {
                name: name.to_owned(),
                host: agent.host.clone().unwrap_or_default(),
            });
        }
        Ok(agent)
    }

    /// Names of the agents on this machine, in roster order.
    pub(crate) fn local_names(&self) -> Vec<String> {
        self.roster
            .agents
            .iter()
            .filter(|a| a.is_local())
            .map(|a| a.name.clone())
            .collect()
    }

    fn known(&self) -> String {
        let names: Vec<&str> = self.roster.agents.iter().map(|a| a.name.as_str()).collect();
        names.join(", ")
    }

    /// Fail with the commands to run later when no manager answers.
    fn require_manager(&self, commands: Vec<String>) -> Result<(), FleetError> {
        self.services
            .reachable()
            .map_err(|why| FleetError::Unreachable { why, commands })
    }

    /// Poll the transport until the agent's session is (or is not) alive.
    fn wait_session(&self, agent: &str, alive: bool, timeout: Duration) -> bool {
        let names = [agent.to_owned()];
        let deadline = Instant::now() + timeout;
        loop {
            let now_alive = self
                .transport
                .sessions(&names)
                .ok()
                .and_then(|view| view.agents.get(agent).map(|s| s.alive))
                .unwrap_or(false);
            if now_alive == alive {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FleetError {
    #[error("no roster at {}: install the fleet first (mosaic-install) or write one with `mosaic-fleet fleet init --profile minimal`", path.display())]
    NoRoster { path: PathBuf },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("unknown agent `{name}`; the roster's agents are: {known}")]
    UnknownAgent { name: String, known: String },
    #[error("agent `{name}` runs on host {host}: `agent send`, `agent status` and `agent tail` reach it over ssh; for this verb run mosaic-fleet on {host}")]
    RemoteAgent { name: String, host: String },
    #[error("invalid agent name `{name}`: it {problem}")]
    BadName { name: String, problem: String },
    #[error("agent `{name}` is already in the roster {}", path.display())]
    AgentExists { name: String, path: PathBuf },
    #[error(
        "cannot remove `{name}`: it is the roster's only agent, and a fleet needs at least one"
    )]
    LastAgent { name: String },
    #[error("a roster already exists at {}; pass --force to replace it (it is backed up first)", path.display())]
    RosterExists { path: PathBuf },
    #[error("cannot edit {}: {why}", path.display())]
    RosterEdit { path: PathBuf, why: String },
    #[error("the message is {bytes} bytes; one submission is at most {limit} bytes (64 KiB): write the text to a file the agent can read and send its path instead")]
    MessageTooLarge { bytes: usize, limit: usize },
    #[error("the message is empty: give it with --message TEXT, --file FILE or on stdin")]
    EmptyMessage,
    #[error("{what} contains {} at byte {}{}: control characters act as keystrokes in the agent's terminal (ESC can end the paste early and type the rest as commands), so nothing was sent; remove them, or pass --sanitize to strip them", found.name, found.offset, more_controls(found.count))]
    ControlCharacter {
        what: String,
        found: message::ControlCharacter,
    },
    #[error("the message has {lines} lines, but agent {agent}'s runtime reads one line per submission (input: lines), so each line would reach it as a separate turn; nothing was sent: pass --lines to send it one submission per line, or make it one line")]
    MultiLineToLineReader { agent: String, lines: usize },
    #[error("line {line} of the message to {agent} is {bytes} bytes with the preamble, but agent {agent}'s runtime reads lines (input: lines) and its terminal passes at most {limit} bytes per line, dropping the rest; nothing was sent: shorten the line, or write the text to a file the agent can read and send its path")]
    LineTooLong {
        agent: String,
        line: usize,
        bytes: usize,
        limit: usize,
    },
    #[error("cannot {what} {}: {cause}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Remote(#[from] crate::fleet::remote::RemoteError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error("no systemd user manager is reachable ({why}); run later:\n  {}", commands.join("\n  "))]
    Unreachable { why: String, commands: Vec<String> },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Canary(#[from] UnknownCanary),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Activate(Box<crate::install::activate::ActivateError>),
    #[error(transparent)]
    Install(Box<crate::install::pipeline::InstallError>),
    #[error(transparent)]
    State(#[from] crate::shared::statedir::RecoverError),
    #[error("{cause}\nnothing was changed: the roster and env files were restored{}", if problems.is_empty() { String::new() } else { format!(", except:\n  {}", problems.join("\n  ")) })]
    Undone {
        cause: Box<FleetError>,
        problems: Vec<String>,
    },
}

impl ExitStatus for FleetError {
    /// 2 for input the operator must fix, 1 otherwise.
    fn exit_code(&self) -> u8 {
        match self {
            FleetError::Profile(_)
            | FleetError::Layout(_)
            | FleetError::UnknownAgent { .. }
            | FleetError::RemoteAgent { .. }
            | FleetError::BadName { .. }
            | FleetError::AgentExists { .. }
            | FleetError::LastAgent { .. }
            | FleetError::RosterExists { .. }
            | FleetError::MessageTooLarge { .. }
            | FleetError::EmptyMessage
            | FleetError::Refused(_)
            | FleetError::ControlCharacter { .. }
            | FleetError::MultiLineToLineReader { .. }
            | FleetError::LineTooLong { .. }
            | FleetError::Canary(_) => 2,
            FleetError::Install(err) => err.exit_code(),
            FleetError::Remote(err) => err.exit_code(),
            _ => 1,
        }
    }
}

/// ` (and 3 more)` after the first control character, when there are more.
fn more_controls(count: usize) -> String {
    match count {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    }
}

#[cfg(test)]
mod memory_tests;
