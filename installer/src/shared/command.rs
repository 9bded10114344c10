//! What both command lines share: the global flags and the home they act
//! on, whether the user manager may be asked, and one story for how a
//! command ends.
//!
//! A report goes to stdout (a full or closed stdout is said on stderr, and
//! the command's own result still decides the exit code). An error goes to
//! stderr as `<tool>: error: …` and, with `--json`, also to stdout as
//! `{"error": …, "exit_code": N}`, for orchestrators that read only stdout.
//! Exit codes: 0 done; 1 a failure or a failed check; 2 bad input, the
//! operator's to fix; 3 and up, a verb's own outcomes (`agent send`'s).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::shared::layout::{Layout, LayoutError};
use crate::shared::output;

/// The options every subcommand takes, listed under their own heading.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// Act as if $HOME were DIR (every installed path moves with it; XDG variables are ignored).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text (errors too: an object with "error" and "exit_code").
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

impl GlobalArgs {
    /// The home this run acts on: `--home`, else `$HOME` (and the XDG
    /// variables).
    pub(crate) fn layout(&self) -> Result<Layout, LayoutError> {
        match &self.home {
            Some(home) => Layout::for_home(home),
            None => Layout::from_env(),
        }
    }

    /// Why systemctl must not run: a `--home` that is not `$HOME` (the user
    /// manager only reads units from the real `$HOME`). None when it may.
    pub(crate) fn foreign_home(&self) -> Option<String> {
        let given = self.home.as_ref()?;
        let real = std::env::var_os("HOME").map(PathBuf::from);
        let same = real
            .as_ref()
            .is_some_and(|real| given.canonicalize().ok() == real.canonicalize().ok());
        (!same).then(|| {
            format!(
                "--home {} is not $HOME, and the user manager only reads units from $HOME/.config/systemd/user; run these as the owner of that home",
                given.display()
            )
        })
    }
}

/// An error that knows its exit code (2 for input the operator must fix).
pub(crate) trait ExitStatus {
    fn exit_code(&self) -> u8;
}

/// Reads the exit code off one error of a chain, if it is of a type that
/// knows one: [`code_of`] for each error type a binary's commands return.
pub(crate) type Classify = fn(&(dyn std::error::Error + 'static)) -> Option<u8>;

/// [`Classify`] for the error type `E`.
pub(crate) fn code_of<E: ExitStatus + std::error::Error + 'static>(
    cause: &(dyn std::error::Error + 'static),
) -> Option<u8> {
    cause.downcast_ref::<E>().map(ExitStatus::exit_code)
}

/// The error types of this module's own layer, known to both binaries.
const SHARED: [Classify; 2] = [
    code_of::<crate::shared::profile::ProfileError>,
    code_of::<LayoutError>,
];

/// The exit code of a command that failed with `err`: that of the first
/// error in its chain that knows one (by `known`, then the shared types),
/// else 1.
fn exit_code(err: &anyhow::Error, known: &[Classify]) -> u8 {
    err.chain()
        .find_map(|cause| known.iter().chain(&SHARED).find_map(|code| code(cause)))
        .unwrap_or(1)
}

/// The end of `tool`'s `main`: its exit code, or its error told on stderr
/// (and on stdout as a JSON object with `--json`) with the code it calls for;
/// `known` are the binary's own error types.
pub(crate) fn finish(
    tool: &str,
    json: bool,
    result: anyhow::Result<u8>,
    known: &[Classify],
) -> ExitCode {
    let err = match result {
        Ok(code) => return ExitCode::from(code),
        Err(err) => err,
    };
    let code = exit_code(&err, known);
    output::to_stderr(format_args!("{tool}: error: {err:#}"));
    if json {
        let failure = serde_json::json!({
            "error": format!("{err:#}"),
            "exit_code": code,
        });
        // On stderr already, should stdout not take it.
        let _ = output::to_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, &failure)?;
            writeln!(out)
        });
    }
    ExitCode::from(code)
}

/// Print a report to stdout and return `code`, the command's own result,
/// whether or not stdout took the report (a lost one is said on stderr).
pub(crate) fn show(
    tool: &str,
    code: u8,
    print: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> u8 {
    if let Err(cause) = output::to_stdout(print) {
        output::report_lost(tool, &cause);
    }
    code
}
