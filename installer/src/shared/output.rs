//! How reports reach the terminal without ever panicking.
//!
//! `println!` panics when stdout is full (`> /dev/full`) or closed
//! (`| head -c0`, with SIGPIPE ignored as Rust programs have it), which
//! turned an install that had already committed into exit 101 and a
//! backtrace. Printers write to the `Write` they are given and return its
//! error; [`to_stdout`] hands them a buffered stdout, and the binaries say
//! on stderr that the report was lost while the command's own result still
//! decides the exit status. A full or closed stderr is ignored.

use std::fmt;
use std::io::{self, Write};

/// Run a printer against stdout (buffered, flushed at the end).
pub(crate) fn to_stdout(print: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    print(&mut out)?;
    out.flush()
}

/// One line on stderr; if stderr cannot take it either, there is nowhere
/// left to say so, and that is no reason to panic.
pub(crate) fn to_stderr(line: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(line).and_then(|()| err.write_all(b"\n"));
}

/// Say on stderr that stdout could not take the report of `tool`.
pub(crate) fn report_lost(tool: &str, cause: &io::Error) {
    to_stderr(format_args!(
        "{tool}: the report could not be written to stdout ({cause}); the exit status is still the command's own result"
    ));
}
