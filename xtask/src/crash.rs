//! `cargo xtask crash`: the kill-point harness. Each scenario (a home set up
//! by earlier installs, and one command run against it) is killed with a
//! real SIGKILL at the N-th call of each state-changing syscall, for every
//! N (`strace -f -e inject=<syscall>:signal=KILL:when=N`). After each kill,
//! `mosaic-install status` runs (it recovers the interrupted run), the whole
//! home — config tree, state directory, modes, link targets — is compared
//! with the home before the command and the home after a clean run, and
//! `status`'s own report with the one it gives for that reference; then the
//! command runs again and the home must equal the after-reference.
//!
//! A kill point is `old`, `new` or `mixed`; any mixed point (or a status
//! that lies, or a rerun that does not converge) fails the task. CI runs a
//! deterministic sample (`--sample K`: the first, the last and every K-th
//! call of each syscall); `--all` runs every point.
//!
//! Every run of a scenario uses the same home path (journals and receipts
//! record absolute paths), rebuilt from scratch before each kill point.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// The syscalls that change the disk (and `openat`, which creates files).
const SYSCALLS: &[&str] = &[
    "openat",
    "write",
    "fsync",
    "fdatasync",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "rmdir",
    "mkdir",
    "mkdirat",
    "chmod",
    "fchmod",
    "fchmodat",
    "ftruncate",
];

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Run every kill point (the full sweep; slow).
    #[arg(long, conflicts_with = "sample")]
    all: bool,
    /// Kill at the first, the last and every K-th call of each syscall.
    #[arg(long, value_name = "K", default_value_t = 7)]
    sample: usize,
    /// Only the scenarios whose names contain this.
    #[arg(long, value_name = "NAME")]
    only: Option<String>,
    /// Keep the scratch directory (its path is printed).
    #[arg(long)]
    keep: bool,
}

/// The programs under test, built in release mode.
struct Bins {
    install: PathBuf,
    fleet: PathBuf,
}

/// A home to start from and the command that is killed.
struct Scenario {
    name: &'static str,
    /// Runs before the command, in a fresh home.
    setup: fn(&Ctx) -> Result<()>,
    /// The command (program and arguments after `--home HOME`).
    command: fn(&Ctx) -> (PathBuf, Vec<String>),
}

/// One scenario's fixed paths.
struct Ctx<'a> {
    bins: &'a Bins,
    home: PathBuf,
    /// Beside the home (not compared): bundles and rosters the setup makes.
    aside: PathBuf,
}

impl Ctx<'_> {
    fn install(&self, args: &[&str]) -> Result<()> {
        let sh = Shell::new()?;
        let (bin, home) = (&self.bins.install, &self.home);
        cmd!(sh, "{bin} --home {home} --no-systemctl {args...}")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("setup: mosaic-install {}", args.join(" ")))?;
        Ok(())
    }

    fn append(&self, rel: &str, text: &str) -> Result<()> {
        use std::io::Write;
        let path = self.home.join(rel);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("setup: append to {}", path.display()))?;
        file.write_all(text.as_bytes())?;
        Ok(())
    }

    /// A copy of templates/ as the next release: version 0.2.0, with a
    /// changed script, unit and README, so an upgrade updates files.
    fn next_bundle(&self) -> Result<PathBuf> {
        let bundle = self.aside.join("bundle-0.2.0");
        if bundle.exists() {
            return Ok(bundle);
        }
        let mut options = fs_extra::dir::CopyOptions::new();
        options.copy_inside = true;
        fs_extra::dir::copy(crate::project_root().join("templates"), &bundle, &options)
            .context("copy templates/")?;
        let manifest = bundle.join("package.json");
        let text = std::fs::read_to_string(&manifest)?;
        let version = format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION"));
        std::fs::write(
            &manifest,
            text.replacen(&version, "\"version\": \"0.2.0\"", 1),
        )?;
        for rel in [
            "framework/tools/tmux/agent-send.sh",
            "framework/tools/fleet/start-agent-session.sh",
            "framework/tools/tmux/README.md",
        ] {
            let path = bundle.join(rel);
            let mut text = std::fs::read_to_string(&path)?;
            text.push_str("# changed in 0.2.0\n");
            std::fs::write(&path, text)?;
        }
        Ok(bundle)
    }
}

fn install_cmd(ctx: &Ctx, args: &[&str]) -> (PathBuf, Vec<String>) {
    let mut all = vec!["--no-systemctl".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    (ctx.bins.install.clone(), all)
}

fn fleet_cmd(ctx: &Ctx, args: &[&str]) -> (PathBuf, Vec<String>) {
    (
        ctx.bins.fleet.clone(),
        args.iter().map(|a| (*a).to_owned()).collect(),
    )
}

const MANAGED_EDIT: &str = ".config/mosaic/tools/tmux/agent-send.sh";
const MANAGED_EDIT_2: &str = ".config/mosaic/tools/fleet/start-agent-session.sh";

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "fresh install",
            setup: |_| Ok(()),
            command: |ctx| install_cmd(ctx, &["--profile", "usc"]),
        },
        Scenario {
            name: "upgrade with an edit and a conflict",
            setup: |ctx| {
                ctx.install(&["--profile", "minimal"])?;
                ctx.append(MANAGED_EDIT, "# operator: my tweak\n")?;
                ctx.next_bundle().map(drop)
            },
            command: |ctx| {
                let bundle = ctx.aside.join("bundle-0.2.0").display().to_string();
                install_cmd(ctx, &["--profile", "usc", "--bundle", &bundle])
            },
        },
        Scenario {
            name: "--force over two edits",
            setup: |ctx| {
                ctx.install(&["--profile", "minimal"])?;
                ctx.append(MANAGED_EDIT, "# operator: my tweak\n")?;
                ctx.append(MANAGED_EDIT_2, "# operator: another tweak\n")
            },
            command: |ctx| install_cmd(ctx, &["--profile", "usc", "--force"]),
        },
        Scenario {
            name: "uninstall",
            setup: |ctx| ctx.install(&["--profile", "usc"]),
            command: |ctx| install_cmd(ctx, &["uninstall"]),
        },
        Scenario {
            name: "rollback",
            setup: |ctx| {
                ctx.install(&["--profile", "minimal"])?;
                ctx.install(&["--profile", "usc"])
            },
            command: |ctx| install_cmd(ctx, &["rollback"]),
        },
        Scenario {
            name: "agent add",
            setup: |ctx| ctx.install(&["--profile", "minimal"]),
            command: |ctx| fleet_cmd(ctx, &["agent", "add", "extra", "--runtime", "pi"]),
        },
        Scenario {
            name: "agent remove",
            setup: |ctx| ctx.install(&["--profile", "local-canary"]),
            command: |ctx| fleet_cmd(ctx, &["agent", "remove", "worker-1"]),
        },
    ]
}

/// How one kill point ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Old,
    New,
    /// The process finished before the N-th call (the count varies).
    NotReached,
}

/// The references a kill point is compared with.
struct References {
    before: Vec<String>,
    after: Vec<String>,
    status_before: String,
    status_after: String,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(crate::project_root());
    if crate::deps::which("strace").is_none() {
        bail!("the kill-point harness needs strace: `sudo apt-get install -y strace`");
    }
    cmd!(sh, "cargo build --quiet --release -p mosaic-install --bins")
        .run()
        .context("building the release binaries")?;
    let release = crate::project_root().join("target/release");
    let bins = Bins {
        install: release.join("mosaic-install"),
        fleet: release.join("mosaic-fleet"),
    };
    let scratch = tempfile::Builder::new()
        .prefix("mosaic-crash-")
        .tempdir()
        .context("create a scratch directory")?;
    let scratch = if args.keep {
        let path = scratch.keep();
        println!("crash: scratch directory {}", path.display());
        path
    } else {
        scratch.path().to_path_buf()
    };

    let mut failures = Vec::new();
    let mut totals = (0, 0, 0, 0);
    for (index, scenario) in scenarios().iter().enumerate() {
        if args
            .only
            .as_deref()
            .is_some_and(|o| !scenario.name.contains(o))
        {
            continue;
        }
        let dir = scratch.join(format!("s{index}"));
        let ctx = Ctx {
            bins: &bins,
            home: dir.join("home"),
            aside: dir.join("aside"),
        };
        std::fs::create_dir_all(&ctx.aside)?;
        let started = Instant::now();
        let result = sweep(&ctx, scenario, &args)
            .with_context(|| format!("scenario `{}`", scenario.name))?;
        let (old, new, not_reached) = result.counts();
        println!(
            "crash: {}: {} kill points: {old} old, {new} new, {} mixed ({not_reached} not reached) in {:.1} s",
            scenario.name,
            old + new + result.mixed.len(),
            result.mixed.len(),
            started.elapsed().as_secs_f64()
        );
        totals.0 += old;
        totals.1 += new;
        totals.2 += result.mixed.len();
        totals.3 += not_reached;
        failures.extend(
            result
                .mixed
                .into_iter()
                .map(|m| format!("{}: {m}", scenario.name)),
        );
    }
    println!(
        "crash: all scenarios: {} kill points: {} old, {} new, {} mixed ({} not reached)",
        totals.0 + totals.1 + totals.2,
        totals.0,
        totals.1,
        totals.2,
        totals.3
    );
    if !failures.is_empty() {
        bail!(
            "{} kill points left a mix:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(())
}

#[derive(Default)]
struct Sweep {
    verdicts: Vec<Verdict>,
    mixed: Vec<String>,
}

impl Sweep {
    fn counts(&self) -> (usize, usize, usize) {
        let count = |v| self.verdicts.iter().filter(|x| **x == v).count();
        (
            count(Verdict::Old),
            count(Verdict::New),
            count(Verdict::NotReached),
        )
    }
}

fn sweep(ctx: &Ctx, scenario: &Scenario, args: &Args) -> Result<Sweep> {
    let refs = references(ctx, scenario)?;
    let counts = syscall_counts(ctx, scenario)?;
    let mut out = Sweep::default();
    for (syscall, calls) in &counts {
        for n in kill_points(*calls, args) {
            let point = format!("{syscall} #{n} of {calls}");
            match kill_point(ctx, scenario, &refs, syscall, n) {
                Ok(verdict) => out.verdicts.push(verdict),
                Err(why) => out.mixed.push(format!("{point}: {why:#}")),
            }
        }
    }
    Ok(out)
}

/// Which calls of a syscall made `calls` times are killed.
fn kill_points(calls: usize, args: &Args) -> Vec<usize> {
    if args.all || calls <= 2 {
        return (1..=calls).collect();
    }
    let step = args.sample.max(1);
    let mut points: Vec<usize> = (1..=calls).step_by(step).collect();
    if points.last() != Some(&calls) {
        points.push(calls);
    }
    points
}

/// Build the home before the command, from scratch, at the fixed path.
fn fresh_home(ctx: &Ctx, scenario: &Scenario) -> Result<()> {
    if ctx.home.exists() {
        std::fs::remove_dir_all(&ctx.home)?;
    }
    std::fs::create_dir_all(&ctx.home)?;
    (scenario.setup)(ctx)
}

fn references(ctx: &Ctx, scenario: &Scenario) -> Result<References> {
    fresh_home(ctx, scenario)?;
    let before = listing(&ctx.home);
    let status_before = status(ctx)?.0;
    let (bin, command) = (scenario.command)(ctx);
    let out = run_command(ctx, &bin, &command, None)?;
    if !out.status.success() {
        bail!(
            "the command without a kill failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = listing(&ctx.home);
    let status_after = status(ctx)?.0;
    if before == after {
        bail!("the command changed nothing: no kill point could tell old from new");
    }
    Ok(References {
        before,
        after,
        status_before,
        status_after,
    })
}

/// How often a clean run makes each syscall (`strace -c`).
fn syscall_counts(ctx: &Ctx, scenario: &Scenario) -> Result<BTreeMap<String, usize>> {
    fresh_home(ctx, scenario)?;
    let summary = ctx.aside.join("strace-summary.txt");
    let (bin, command) = (scenario.command)(ctx);
    let trace = SYSCALLS.join(",");
    let strace = [
        "-f".to_owned(),
        "-qq".into(),
        "-c".into(),
        "-o".into(),
        summary.display().to_string(),
        "-e".into(),
        format!("trace={trace}"),
    ];
    let out = run_command(ctx, &bin, &command, Some(&strace))?;
    if !out.status.success() {
        bail!(
            "the command under strace failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&summary)?;
    let mut counts = mosaic_tests::strace_call_counts(&text);
    counts.retain(|name, _| SYSCALLS.contains(&name.as_str()));
    Ok(counts)
}

/// Kill at the N-th call of `syscall`, recover, compare, rerun, compare.
fn kill_point(
    ctx: &Ctx,
    scenario: &Scenario,
    refs: &References,
    syscall: &str,
    n: usize,
) -> Result<Verdict> {
    fresh_home(ctx, scenario)?;
    let (bin, command) = (scenario.command)(ctx);
    let strace = [
        "-f".to_owned(),
        "-qq".into(),
        "-o".into(),
        "/dev/null".into(),
        "-e".into(),
        format!("trace={syscall}"),
        "-e".into(),
        format!("inject={syscall}:signal=KILL:when={n}"),
    ];
    let out = run_command(ctx, &bin, &command, Some(&strace))?;
    let killed = out.status.signal() == Some(libc::SIGKILL) || out.status.code() == Some(137);
    let (status_text, status_stderr) = status(ctx)?;
    let now = listing(&ctx.home);
    let verdict = if !killed {
        Verdict::NotReached
    } else if now == refs.before {
        Verdict::Old
    } else if now == refs.after {
        Verdict::New
    } else {
        let diff_old = mosaic_tests::listing_diff(&refs.before, &now);
        let diff_new = mosaic_tests::listing_diff(&refs.after, &now);
        bail!(
            "neither old nor new after recovery ({status_stderr})\n  vs old: {}\n  vs new: {}",
            diff_old.join("\n          "),
            diff_new.join("\n          ")
        );
    };
    let expected = match verdict {
        Verdict::Old => &refs.status_before,
        Verdict::New | Verdict::NotReached => &refs.status_after,
    };
    if status_text != *expected {
        bail!(
            "status after recovery does not tell the truth ({verdict:?}):\n{status_text}\nexpected:\n{expected}"
        );
    }
    let rerun = run_command(ctx, &bin, &command, None)?;
    let again = listing(&ctx.home);
    if again != refs.after {
        bail!(
            "rerunning after recovery did not converge (exit {:?}: {}):\n  {}",
            rerun.status.code(),
            String::from_utf8_lossy(&rerun.stderr).trim(),
            mosaic_tests::listing_diff(&refs.after, &again).join("\n  ")
        );
    }
    Ok(verdict)
}

/// `mosaic-install status --json` (which recovers first): its report
/// without the `recovered` field, and its stderr.
fn status(ctx: &Ctx) -> Result<(String, String)> {
    let sh = Shell::new()?;
    let (bin, home) = (&ctx.bins.install, &ctx.home);
    let out = cmd!(sh, "{bin} --home {home} --json status")
        .quiet()
        .ignore_status()
        .output()?;
    let mut report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("status --json prints JSON")?;
    if let Some(object) = report.as_object_mut() {
        object.remove("recovered");
    }
    let code = out.status.code().unwrap_or(-1);
    Ok((
        format!("exit {code}: {report}"),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    ))
}

fn run_command(
    ctx: &Ctx,
    bin: &Path,
    command: &[String],
    strace: Option<&[String]>,
) -> Result<std::process::Output> {
    let sh = Shell::new()?;
    let home = &ctx.home;
    let out = match strace {
        Some(strace) => cmd!(sh, "strace {strace...} {bin} --home {home} {command...}"),
        None => cmd!(sh, "{bin} --home {home} {command...}"),
    }
    .env("TMUX_TMPDIR", &ctx.aside)
    .quiet()
    .ignore_status()
    .output()?;
    Ok(out)
}

fn listing(home: &Path) -> Vec<String> {
    mosaic_tests::tree_listing(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_keep_the_first_and_the_last_call() {
        let args = Args {
            all: false,
            sample: 7,
            only: None,
            keep: false,
        };
        assert_eq!(kill_points(16, &args), vec![1, 8, 15, 16]);
        assert_eq!(kill_points(2, &args), vec![1, 2]);
    }
}
