//! The verbs and flags of `mosaic-fleet` (clap derive): `fleet …` and
//! `agent …`, as the Mosaic CLI names them. Their doc comments are the help
//! text, the man pages and the completions' descriptions.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// The whole fleet: init, start, stop, verify, status.
    #[command(subcommand)]
    Fleet(FleetVerb),
    /// One agent: roster, status, start, stop, restart, add, remove, send, reset, tail, attach, watch.
    #[command(subcommand)]
    Agent(AgentVerb),
}

#[derive(Subcommand, Debug)]
pub(crate) enum FleetVerb {
    /// Write the roster from a shipped profile (or a roster file) and env files for its agents.
    Init {
        /// Embedded profile name (minimal, local-canary, usc) or path of a roster file.
        #[arg(long, value_name = "NAME|PATH")]
        profile: String,
        /// Replace an existing roster (it is backed up first).
        #[arg(long)]
        force: bool,
    },
    /// Start canary-first: the holder, the canary (verified), then the rest in verified waves.
    Start {
        /// Agent to start first (default: the roster's first).
        #[arg(long, value_name = "NAME")]
        canary: Option<String>,
        /// Agents per wave after the canary.
        #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
        wave: u64,
        /// Seconds each agent this run starts must then keep running (same session, no unit restart) before the next wave.
        #[arg(long, value_name = "SECS", default_value_t = crate::install::rollout::SETTLE.as_secs())]
        settle: u64,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop every agent, then the holder.
    Stop,
    /// Check the holder, every enabled agent (unit active, session alive) and the default tmux server; exit 1 listing what failed.
    Verify,
    /// One row per agent: unit state, session, command, idle time, restarts; exit 1 when something is down.
    Status {
        /// Redraw every 2 seconds until interrupted.
        #[arg(long, conflicts_with = "hosts")]
        watch: bool,
        /// Every host of the roster, asked in parallel (the others over ssh); a host that does not answer is shown as unreachable.
        #[arg(long)]
        hosts: bool,
    },
}

#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct WaitArgs {
    /// Seconds to wait for a unit and its session.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub(crate) timeout: u64,
}

/// The wait for an agent's program to take input (start, restart, reset).
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct ReadyArgs {
    /// Seconds to wait for the agent's program to be ready for input (its runtime's ready_pattern, else a still screen); past it the agent is NOT-READY and nothing is typed.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(crate) ready_timeout: u64,
}

#[derive(Subcommand, Debug)]
pub(crate) enum AgentVerb {
    /// The roster as a table.
    Roster,
    /// Status of one agent (or all); exit 1 when it is down.
    Status {
        /// The agent, by its roster name (default: every agent).
        name: Option<String>,
    },
    /// Start the agent's unit and wait for its session and for its program to be ready for input.
    Start(ReadyUnitArgs),
    /// Stop the agent's unit (its session only, matched exactly).
    Stop(UnitArgs),
    /// Restart the agent's unit and wait for its session and for its program to be ready for input.
    Restart(ReadyUnitArgs),
    /// Add an agent: validate, append it to the roster, write its env file, enable its unit.
    Add(AddArgs),
    /// Remove an agent: stop and disable its unit, take it out of the roster and remove its env file (one you edited is kept unless --purge).
    Remove {
        /// The agent, by its roster name.
        name: String,
        /// Also remove the agent's env file when you edited it (its backup is kept; see `mosaic-install rollback`).
        #[arg(long)]
        purge: bool,
    },
    /// Send a message with the addressing preamble: once the agent is free and ready, one paste and a verified Enter.
    #[command(after_help = SEND_OUTCOMES)]
    Send(SendArgs),
    /// Clear the agent's conversation with its runtime's reset_command, else restart it and send a kick-start message.
    Reset {
        /// The agent, by its roster name.
        name: String,
        /// Restart the process even when the runtime has a reset command.
        #[arg(long)]
        new: bool,
        #[command(flatten)]
        wait: WaitArgs,
        #[command(flatten)]
        ready: ReadyArgs,
    },
    /// Print the agent pane's recent output (a full-screen program: its visible screen).
    Tail {
        /// The agent, by its roster name.
        name: String,
        /// Lines to print.
        #[arg(short = 'n', long, value_name = "N", default_value_t = 50)]
        lines: usize,
    },
    /// Attach this terminal to the agent's session (tmux -L SOCKET attach -t =NAME).
    Attach {
        /// The agent, by its roster name.
        name: String,
        /// Watch without side effects: the same as `agent watch`.
        #[arg(long)]
        read_only: bool,
    },
    /// Watch the agent read-only through a throwaway viewer session: its window size never changes, and the viewer is gone once you detach.
    Watch {
        /// The agent, by its roster name.
        name: String,
    },
}

/// The outcomes of `agent send` and their exit codes, for its --help.
const SEND_OUTCOMES: &str = "\
Outcomes (printed with --verify; the exit code is the same without it):
  ACCEPTED     0  the text left the input line and the pane changed
  DRAFT        1  the text is still on the input line after every Enter attempt
  UNCONFIRMED  1  the paste never showed (Enter was not pressed), or the pane went blank
  DOWN         3  no session, or its program exited
  NOT-READY    5  the program was not ready within --ready-timeout; nothing typed
  BUSY         6  other senders held the agent longer than --wait; nothing typed
Refused before anything is typed, exit 2: an empty message, one over 64 KiB, control
characters (unless --sanitize), and for `input: lines` runtimes a line over 4095 bytes
or several lines without --lines.";

#[derive(Args, Debug)]
pub(crate) struct UnitArgs {
    /// The agent, by its roster name.
    pub(crate) name: String,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ReadyUnitArgs {
    #[command(flatten)]
    pub(crate) unit: UnitArgs,
    #[command(flatten)]
    pub(crate) ready: ReadyArgs,
}

#[derive(Args, Debug)]
pub(crate) struct AddArgs {
    /// The new agent's name: ASCII letters, digits, `_` and `-` (at most 64), not starting with `-`.
    pub(crate) name: String,
    /// claude, codex, opencode or pi.
    #[arg(long, value_name = "RUNTIME")]
    pub(crate) runtime: String,
    /// Working directory (absolute or ~/...; default: the roster's default).
    #[arg(long, value_name = "DIR")]
    pub(crate) working_directory: Option<String>,
    /// Model passed as --model (the roster's model_hint).
    #[arg(long, value_name = "MODEL")]
    pub(crate) model: Option<String>,
    /// Command to run instead of `mosaic yolo <runtime> [--model M]`.
    #[arg(long, value_name = "COMMAND")]
    pub(crate) command: Option<String>,
    /// The agent's class (worker, reviewer, ...).
    #[arg(long, value_name = "CLASS")]
    pub(crate) class: Option<String>,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("to").required(true).args(["name", "all"])))]
pub(crate) struct SendArgs {
    /// The agent to send to (or --all).
    pub(crate) name: Option<String>,
    /// Send to every agent of the roster on this machine; report per agent.
    #[arg(long, conflicts_with = "name")]
    pub(crate) all: bool,
    /// The message (else --file, else stdin); it may start with `-`.
    #[arg(
        short = 'm',
        long,
        value_name = "TEXT",
        conflicts_with = "file",
        allow_hyphen_values = true
    )]
    pub(crate) message: Option<String>,
    /// Read the message from a file.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Print ACCEPTED, DRAFT, DOWN, UNCONFIRMED, NOT-READY or BUSY per agent.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Source label replacing `<host>:<sender>` in the preamble (the sender is the agent you run in, else `operator`).
    #[arg(long = "from", value_name = "LABEL", allow_hyphen_values = true)]
    pub(crate) source: Option<String>,
    /// Enter presses before giving up on a draft.
    #[arg(short = 'r', long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=999))]
    pub(crate) attempts: u32,
    /// Seconds to wait for other senders to the same agent (one at a time, in arrival order); past it the agent is BUSY and nothing is typed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub(crate) wait: u64,
    #[command(flatten)]
    pub(crate) ready: ReadyArgs,
    /// Strip control characters (ESC, NUL, ...) from the message instead of refusing it.
    #[arg(long)]
    pub(crate) sanitize: bool,
    /// Send each non-blank line as its own submission (needed for a multi-line message to an `input: lines` runtime).
    #[arg(long)]
    pub(crate) lines: bool,
}
