//! Signals during a sandbox run. The outer process must outlive the sandbox
//! to remove its child cgroups, so while the sandbox runs it blocks SIGINT,
//! SIGTERM, SIGHUP and SIGCHLD and reads them from a signalfd instead: a
//! child exit wakes it up, Ctrl-C is left to the command inside (the
//! terminal sends it there too), SIGTERM and SIGHUP tear the sandbox down.
//! Spawned processes inherit the mask (`unshare` keeps it, so only the outer
//! process decides when it dies); the inside clears it for what it starts.

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub(super) enum Event {
    /// SIGCHLD: some child changed state.
    Child,
    /// SIGINT: the command inside decides what Ctrl-C means.
    Interrupt,
    /// SIGTERM or SIGHUP: stop the sandbox now.
    Terminate(Signal),
}

/// Blocks the signals above for this thread until dropped.
pub(super) struct SignalWatch {
    fd: SignalFd,
    previous_mask: SigSet,
}

impl SignalWatch {
    /// Must run on the thread that waits for the sandbox, before it spawns.
    pub(crate) fn start() -> Result<Self> {
        let mut mask = SigSet::empty();
        for signal in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGCHLD,
        ] {
            mask.add(signal);
        }
        let previous_mask = mask
            .thread_swap_mask(SigmaskHow::SIG_BLOCK)
            .context("block SIGINT, SIGTERM, SIGHUP and SIGCHLD")?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).context("create signalfd")?;
        Ok(Self { fd, previous_mask })
    }

    /// Waits for the next watched signal.
    pub(crate) fn next(&self) -> Result<Event> {
        loop {
            let Some(info) = self.fd.read_signal().context("read signalfd")? else {
                continue;
            };
            let signal = i32::try_from(info.ssi_signo)
                .ok()
                .and_then(|number| Signal::try_from(number).ok());
            return Ok(match signal {
                Some(Signal::SIGINT) => Event::Interrupt,
                Some(signal @ (Signal::SIGTERM | Signal::SIGHUP)) => Event::Terminate(signal),
                _ => Event::Child,
            });
        }
    }
}

impl Drop for SignalWatch {
    fn drop(&mut self) {
        if let Err(err) = self.previous_mask.thread_set_mask() {
            eprintln!("sandbox: warning: could not restore the signal mask: {err}");
        }
    }
}
