//! Measuring whole processes, shared by every `cargo xtask bench` task: run
//! a command N times after one warm-up run, take the median wall-clock time
//! (spawned directly, so no wrapper process skews it), then the peak
//! resident set size of one more run under GNU time, and print two tools
//! side by side with their ratios.
//!
//! Why GNU time for memory: Linux keeps, in a process's `ru_maxrss`, the
//! high-water mark of the address space it replaced at exec, so a child
//! spawned by this (large) bench process reports at least the bench's own
//! peak; a command spawned by the small `time` process reports its own.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Timing and memory of one command over several runs.
#[derive(Clone)]
pub(crate) struct Measurement {
    pub(crate) runs: usize,
    pub(crate) median: Duration,
    /// Peak RSS of one run under GNU time, in KiB.
    pub(crate) peak_rss_kib: u64,
}

/// One task done by both tools.
pub(crate) struct Comparison {
    pub(crate) task: String,
    pub(crate) ours: Measurement,
    pub(crate) theirs: Measurement,
}

impl Comparison {
    /// How many times faster ours is (median against median).
    pub(crate) fn speedup(&self) -> f64 {
        self.theirs.median.as_secs_f64() / self.ours.median.as_secs_f64()
    }

    /// How many times less memory ours peaks at.
    pub(crate) fn memory_ratio(&self) -> f64 {
        self.theirs.peak_rss_kib as f64 / self.ours.peak_rss_kib.max(1) as f64
    }
}

/// Runs `make()`'s command once to warm caches, then `runs` more times.
/// Output is discarded; a failing run is an error that shows its stderr.
pub(crate) fn measure(runs: usize, mut make: impl FnMut() -> Command) -> Result<Measurement> {
    if runs == 0 {
        bail!("at least one run is needed");
    }
    run_once(make())?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        times.push(run_once(make())?);
    }
    Ok(Measurement {
        runs,
        median: median(times),
        peak_rss_kib: peak_rss(make())?,
    })
}

/// Two commands measured as [`measure`] does, their runs interleaved (and
/// which goes first alternating) so that both see the same load on a
/// shared machine: a fair ratio even when the load changes during the run.
pub(crate) fn measure_pair(
    runs: usize,
    mut ours: impl FnMut() -> Command,
    mut theirs: impl FnMut() -> Command,
) -> Result<(Measurement, Measurement)> {
    if runs == 0 {
        bail!("at least one run is needed");
    }
    run_once(ours())?;
    run_once(theirs())?;
    let (mut our_times, mut their_times) = (Vec::new(), Vec::new());
    for run in 0..runs {
        if run % 2 == 0 {
            our_times.push(run_once(ours())?);
            their_times.push(run_once(theirs())?);
        } else {
            their_times.push(run_once(theirs())?);
            our_times.push(run_once(ours())?);
        }
    }
    Ok((
        Measurement {
            runs,
            median: median(our_times),
            peak_rss_kib: peak_rss(ours())?,
        },
        Measurement {
            runs,
            median: median(their_times),
            peak_rss_kib: peak_rss(theirs())?,
        },
    ))
}

/// [`measure`] for several commands at once, in rounds: one warm-up round,
/// then `runs` rounds that each run every command once, in order, so that
/// load coming and going on the machine meanwhile weighs on each alike.
/// Each maker sets up its run (untimed) and returns the command to time.
pub(crate) fn measure_rounds(
    runs: usize,
    makers: &mut [&mut dyn FnMut() -> Result<Command>],
) -> Result<Vec<Measurement>> {
    if runs == 0 {
        bail!("at least one run is needed");
    }
    for make in makers.iter_mut() {
        run_once(make()?)?;
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); makers.len()];
    for _ in 0..runs {
        for (make, times) in makers.iter_mut().zip(&mut times) {
            times.push(run_once(make()?)?);
        }
    }
    makers
        .iter_mut()
        .zip(times)
        .map(|(make, times)| {
            Ok(Measurement {
                runs,
                median: median(times),
                peak_rss_kib: peak_rss(make()?)?,
            })
        })
        .collect()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    let runs = times.len();
    match runs % 2 {
        1 => times[runs / 2],
        _ => (times[runs / 2 - 1] + times[runs / 2]) / 2,
    }
}

/// Peak RSS (KiB) of one run of `command`, spawned by GNU time.
fn peak_rss(command: Command) -> Result<u64> {
    let time = std::path::Path::new("/usr/bin/time");
    if !time.is_file() {
        bail!("memory is measured with GNU time: install it with `apt-get install time`");
    }
    let report = tempfile::NamedTempFile::new().context("create a file for time's report")?;
    let mut timed = Command::new(time);
    timed
        .args(["-f", "%M", "-o"])
        .arg(report.path())
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    run_once(timed)?;
    let text = std::fs::read_to_string(report.path()).context("read time's report")?;
    text.lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .with_context(|| format!("GNU time reported {text:?}, not a size in KiB"))
}

/// Wall-clock time of one run.
fn run_once(mut command: Command) -> Result<Duration> {
    let described = format!("{command:?}");
    let stderr = tempfile::tempfile().context("create a file for stderr")?;
    let stderr_copy = stderr.try_clone().context("clone the stderr file")?;
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_copy)
        .spawn()
        .with_context(|| format!("start {described}"))?;
    let status = wait_for(&child).with_context(|| format!("wait for {described}"))?;
    let elapsed = start.elapsed();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut stderr = stderr;
        let mut text = String::new();
        use std::io::{Read as _, Seek as _};
        stderr.rewind().context("rewind stderr")?;
        stderr.read_to_string(&mut text).context("read stderr")?;
        bail!("{described} failed (wait status {status}):\n{text}");
    }
    Ok(elapsed)
}

/// Reaps `child` with `wait4` and returns its wait status.
fn wait_for(child: &std::process::Child) -> Result<i32> {
    let pid = libc::pid_t::try_from(child.id()).context("child pid")?;
    let mut status = 0;
    loop {
        // SAFETY: the pointer is to a live local; the pid is our own unreaped
        // child; a null rusage is allowed.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, std::ptr::null_mut()) };
        if reaped == pid {
            return Ok(status);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("wait4");
        }
    }
}

/// Prints the comparisons as a table: medians, peak RSS and both ratios.
pub(crate) fn print_table(ours: &str, theirs: &str, rows: &[Comparison]) {
    let task_width = rows.iter().map(|r| r.task.len()).max().unwrap_or(4).max(4);
    let headers = [
        format!("{ours} median"),
        format!("{theirs} median"),
        "speed-up".to_owned(),
        format!("{ours} peak RSS"),
        format!("{theirs} peak RSS"),
        "memory".to_owned(),
    ];
    let widths: Vec<usize> = headers.iter().map(|h| h.len().max(10)).collect();
    let line = |task: &str, cells: &[String]| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:>width$}"))
            .collect();
        println!("{task:<task_width$}  {}", cells.join("  "));
    };
    line("task", &headers);
    for row in rows {
        line(
            &row.task,
            &[
                millis(row.ours.median),
                millis(row.theirs.median),
                format!("{:.1}x", row.speedup()),
                mebibytes(row.ours.peak_rss_kib),
                mebibytes(row.theirs.peak_rss_kib),
                format!("{:.1}x", row.memory_ratio()),
            ],
        );
    }
    if let Some(row) = rows.first() {
        println!(
            "({} timed runs per command after one warm-up; median wall-clock; peak RSS of one more run under GNU time)",
            row.ours.runs
        );
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn mebibytes(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Build the release `mosaic-install` (benchmarks measure what operators
/// run) and return its path.
pub(crate) fn release_installer(sh: &xshell::Shell) -> Result<PathBuf> {
    let root = crate::project_root();
    let _dir = sh.push_dir(&root);
    xshell::cmd!(sh, "cargo build --quiet --release -p mosaic-install")
        .quiet()
        .run()
        .context("building the release mosaic-install")?;
    Ok(root.join("target/release/mosaic-install"))
}
