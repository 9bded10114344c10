//! One sender at a time per agent, across processes and tools: a queue of
//! lock files that `mosaic-fleet` and the shipped `send-message.sh` (with
//! `flock(1)`) take the same way, so two messages never mix on one input
//! line.
//!
//! The queue of an agent on socket S lives in the tmux socket directory
//! (`${TMUX_TMPDIR:-/tmp}/tmux-<uid>/`, private to the user; every process
//! that addresses `tmux -L S` computes the same one) as
//! `mosaic-send.S/<agent>/`. A sender, holding `.guard` (flock) for a
//! moment, creates `w.<seq>` with `seq` one above the highest present
//! (20 digits, so names sort as numbers), flocks it for as long as it lives
//! and writes `<pid> <tool>` into it. It then waits on the flock of the
//! waiter just ahead of it (the highest `seq` below its own) until there is
//! none: arrival order. A finished sender removes its file, then closes it.
//! A file whose flock is free but which still exists belongs to a sender
//! that died; whoever finds it removes it. A sender that gives up (the
//! `--wait` timeout) removes its own file and leaves.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::shared::transport::TransportError;

/// How often a waiter tries the lock of the sender ahead of it.
const POLL: Duration = Duration::from_millis(10);

/// This sender's turn: the agent is its own until dropped.
#[derive(Debug)]
pub(super) struct AgentLock {
    path: PathBuf,
    _file: File,
}

impl Drop for AgentLock {
    fn drop(&mut self) {
        // Remove first, then close (which frees the flock): a waiter that
        // gets the flock and still finds the file knows its owner died.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How taking the lock ended.
#[derive(Debug)]
pub(super) enum LockWait {
    Acquired(AgentLock),
    /// The wait ran out; `holder` is what the sender at the head wrote.
    TimedOut {
        ahead: usize,
        holder: String,
    },
}

/// The tmux socket directory: `${TMUX_TMPDIR:-/tmp}/tmux-<uid>`.
pub(super) fn socket_dir() -> PathBuf {
    let base = std::env::var_os("TMUX_TMPDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    // SAFETY: getuid cannot fail and has no preconditions.
    let uid = unsafe { libc::getuid() };
    base.join(format!("tmux-{uid}"))
}

/// The queue directory of `agent` on `socket`.
pub(super) fn queue_dir(socket: &str, agent: &str) -> PathBuf {
    socket_dir()
        .join(format!("mosaic-send.{socket}"))
        .join(agent)
}

/// Take the send lock whose queue is `dir` ([`queue_dir`]), waiting behind
/// earlier senders for at most `wait`.
pub(super) fn acquire(dir: &Path, wait: Duration) -> Result<LockWait, TransportError> {
    let deadline = Instant::now() + wait;
    let io = |what: &str, path: &Path, cause: std::io::Error| TransportError::Lock {
        what: what.to_owned(),
        path: path.to_owned(),
        cause,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("create", dir, e))?;
    let (seq, mine) = enqueue(dir, deadline).map_err(|e| io("join the queue in", dir, e))?;
    loop {
        let ahead = waiters_before(dir, seq).map_err(|e| io("read", dir, e))?;
        let Some((_, next)) = ahead.last() else {
            return Ok(LockWait::Acquired(mine));
        };
        let Ok(file) = File::open(next) else {
            continue; // it left between the listing and the open
        };
        if !flock_until(&file, deadline) {
            let holder = ahead
                .first()
                .and_then(|(_, head)| std::fs::read_to_string(head).ok())
                .unwrap_or_default();
            return Ok(LockWait::TimedOut {
                ahead: ahead.len(),
                holder: holder.trim().to_owned(),
            });
        }
        // Its flock is free: it finished (and removed its file) or died
        // (and left it behind, which is removed here).
        let _ = std::fs::remove_file(next);
    }
}

/// Join the queue: create this sender's file, flocked, one above the highest
/// present, while holding the guard.
fn enqueue(dir: &Path, deadline: Instant) -> std::io::Result<(u64, AgentLock)> {
    let guard = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(".guard"))?;
    // The guard is held for a moment by each sender; still, bounded.
    if !flock_until(
        &guard,
        deadline.max(Instant::now() + Duration::from_secs(10)),
    ) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the queue's .guard stayed locked",
        ));
    }
    let seq = waiters(dir)?.last().map_or(0, |(seq, _)| seq + 1);
    let path = dir.join(format!("w.{seq:020}"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    if !try_flock(&file) {
        return Err(std::io::Error::other("a new queue file was locked already"));
    }
    writeln!(file, "{} mosaic-fleet", std::process::id())?;
    drop(guard);
    Ok((seq, AgentLock { path, _file: file }))
}

/// The queue's files, in arrival order.
fn waiters(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_prefix("w."))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((seq, entry.path()));
    }
    found.sort();
    Ok(found)
}

fn waiters_before(dir: &Path, seq: u64) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut all = waiters(dir)?;
    all.retain(|(other, _)| *other < seq);
    Ok(all)
}

fn try_flock(file: &File) -> bool {
    // SAFETY: a valid descriptor, owned by `file` for the whole call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Try the flock until it is had or `deadline` passes.
fn flock_until(file: &File, deadline: Instant) -> bool {
    loop {
        if try_flock(file) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquired(wait: LockWait) -> AgentLock {
        match wait {
            LockWait::Acquired(lock) => lock,
            LockWait::TimedOut { .. } => panic!("timed out"),
        }
    }

    #[test]
    fn queue_dir_is_per_socket_and_agent_in_the_tmux_directory() {
        let dir = queue_dir("fleet", "agent-1");
        assert!(
            dir.ends_with("mosaic-send.fleet/agent-1"),
            "{}",
            dir.display()
        );
        assert!(dir.starts_with(socket_dir()));
    }

    #[test]
    fn second_sender_waits_and_times_out_naming_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a1");
        let first = acquired(acquire(&dir, Duration::ZERO).unwrap());
        assert_eq!(
            std::fs::read_to_string(&first.path).unwrap(),
            format!("{} mosaic-fleet\n", std::process::id())
        );
        let LockWait::TimedOut { ahead, holder } =
            acquire(&dir, Duration::from_millis(50)).unwrap()
        else {
            panic!("the second sender got the lock");
        };
        assert_eq!(ahead, 1);
        assert_eq!(holder, format!("{} mosaic-fleet", std::process::id()));
        // Another agent's queue is free.
        drop(acquired(
            acquire(&tmp.path().join("a2"), Duration::ZERO).unwrap(),
        ));
        drop(first);
        let after = acquired(acquire(&dir, Duration::ZERO).unwrap());
        // The waiter that timed out left no file behind.
        assert_eq!(waiters(&dir).unwrap().len(), 1);
        drop(after);
        assert!(waiters(&dir).unwrap().is_empty());
    }

    #[test]
    fn a_dead_senders_file_is_removed_by_the_next() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a1");
        std::fs::create_dir_all(&dir).unwrap();
        // A sender that died: its file is there, its flock is free.
        std::fs::write(dir.join(format!("w.{:020}", 7)), "1 gone\n").unwrap();
        let lock = acquired(acquire(&dir, Duration::from_secs(5)).unwrap());
        assert_eq!(lock.path, dir.join(format!("w.{:020}", 8)));
        assert_eq!(waiters(&dir).unwrap().len(), 1);
    }

    #[test]
    fn waiters_go_in_arrival_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a1");
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let first = acquired(acquire(&dir, Duration::ZERO).unwrap());
        let mut threads = Vec::new();
        for n in 0..5 {
            let (order, queue) = (order.clone(), dir.clone());
            threads.push(std::thread::spawn(move || {
                let lock = acquired(acquire(&queue, Duration::from_secs(60)).unwrap());
                order.lock().unwrap().push(n);
                drop(lock);
            }));
            // Thread n joins the queue before thread n + 1 starts.
            while waiters(&dir).unwrap().len() < n + 2 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(first);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    }
}
