//! Measuring whole processes, shared by every `cargo xtask bench` task: run
//! a command N times after one warm-up run, take the median wall-clock time
//! and the peak resident set size (the child's own `ru_maxrss`, read with
//! `wait4`, so no wrapper process skews either number), and print two
//! tools side by side with their ratios.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Timing and memory of one command over several runs.
#[derive(Clone)]
pub struct Measurement {
    pub runs: usize,
    pub median: Duration,
    /// Largest peak RSS of any run, in KiB.
    pub peak_rss_kib: u64,
}

/// One task done by both tools.
pub struct Comparison {
    pub task: String,
    pub ours: Measurement,
    pub theirs: Measurement,
}

impl Comparison {
    /// How many times faster ours is (median against median).
    pub fn speedup(&self) -> f64 {
        self.theirs.median.as_secs_f64() / self.ours.median.as_secs_f64()
    }

    /// How many times less memory ours peaks at.
    pub fn memory_ratio(&self) -> f64 {
        self.theirs.peak_rss_kib as f64 / self.ours.peak_rss_kib.max(1) as f64
    }
}

/// Runs `make()`'s command once to warm caches, then `runs` more times.
/// Output is discarded; a failing run is an error that shows its stderr.
pub fn measure(runs: usize, mut make: impl FnMut() -> Command) -> Result<Measurement> {
    let mut make = || Ok(make());
    Ok(measure_rounds(runs, &mut [&mut make])?.remove(0))
}

/// [`measure`] for several commands at once, in rounds: one warm-up round,
/// then `runs` rounds that each run every command once, in order, so that
/// load coming and going on the machine meanwhile weighs on each alike.
/// Each maker sets up its run (untimed) and returns the command to time.
pub fn measure_rounds(
    runs: usize,
    makers: &mut [&mut dyn FnMut() -> Result<Command>],
) -> Result<Vec<Measurement>> {
    if runs == 0 {
        bail!("at least one run is needed");
    }
    for make in makers.iter_mut() {
        run_once(make()?)?;
    }
    let mut samples: Vec<Vec<(Duration, u64)>> = vec![Vec::with_capacity(runs); makers.len()];
    for _ in 0..runs {
        for (make, samples) in makers.iter_mut().zip(&mut samples) {
            samples.push(run_once(make()?)?);
        }
    }
    Ok(samples.iter().map(|s| Measurement::of(s)).collect())
}

impl Measurement {
    /// Median time and largest peak RSS of `samples` (not empty).
    fn of(samples: &[(Duration, u64)]) -> Measurement {
        let mut times: Vec<Duration> = samples.iter().map(|(time, _)| *time).collect();
        times.sort();
        let runs = times.len();
        let median = match runs % 2 {
            1 => times[runs / 2],
            _ => (times[runs / 2 - 1] + times[runs / 2]) / 2,
        };
        Measurement {
            runs,
            median,
            peak_rss_kib: samples.iter().map(|(_, rss)| *rss).max().unwrap_or(0),
        }
    }
}

/// Wall-clock time and peak RSS (KiB) of one run.
fn run_once(mut command: Command) -> Result<(Duration, u64)> {
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
    let (status, usage) =
        wait_with_usage(&child).with_context(|| format!("wait for {described}"))?;
    let elapsed = start.elapsed();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut stderr = stderr;
        let mut text = String::new();
        use std::io::{Read as _, Seek as _};
        stderr.rewind().context("rewind stderr")?;
        stderr.read_to_string(&mut text).context("read stderr")?;
        bail!("{described} failed (wait status {status}):\n{text}");
    }
    Ok((elapsed, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}

/// Reaps `child` with `wait4`, which also returns the child's resource usage.
fn wait_with_usage(child: &std::process::Child) -> Result<(i32, libc::rusage)> {
    let pid = libc::pid_t::try_from(child.id()).context("child pid")?;
    let mut status = 0;
    // SAFETY: rusage is plain old data, for which all-zero bytes are valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals; the pid is our own unreaped child.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            return Ok((status, usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("wait4");
        }
    }
}

/// Prints the comparisons as a table: medians, peak RSS and both ratios.
pub fn print_table(ours: &str, theirs: &str, rows: &[Comparison]) {
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
            "({} timed runs per command after one warm-up; median wall-clock; peak RSS is the largest ru_maxrss)",
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
pub fn release_installer(sh: &xshell::Shell) -> Result<PathBuf> {
    let root = crate::project_root();
    let _dir = sh.push_dir(&root);
    xshell::cmd!(sh, "cargo build --quiet --release -p mosaic-install")
        .quiet()
        .run()
        .context("building the release mosaic-install")?;
    Ok(root.join("target/release/mosaic-install"))
}
