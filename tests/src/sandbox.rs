//! Tests against a real systemd user manager: the test re-runs its own
//! binary inside `cargo xtask sandbox` (filtered to itself) and the body runs
//! there, next to an isolated manager, with a throwaway `HOME`, runtime dir
//! and `TMUX_TMPDIR`. [`SandboxFleet`] is what the bodies drive: the built
//! `mosaic-install`, `systemctl --user`, and the fleet's named tmux server.
//!
//! ```ignore
//! #[test]
//! fn something() {
//!     if !inside_systemd_sandbox("something") {
//!         return; // ran inside the sandbox (or was skipped with a reason)
//!     }
//!     let fleet = SandboxFleet::new();
//!     // ...
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::{fixtures_dir, require_tool, workspace_bin, workspace_root};

const SYSTEMD: &str = "/usr/lib/systemd/systemd";

/// True when the caller runs inside the sandbox: go on with the test body.
/// False when it ran the test `name` inside the sandbox (and asserted that
/// it passed there), or skipped it with a visible reason (failing under
/// `CI=true`): return.
pub fn inside_systemd_sandbox(name: &str) -> bool {
    if std::env::var("MOSAIC_SANDBOX").as_deref() == Ok("1") {
        return true;
    }
    if !systemd_sandbox_available() {
        return false;
    }
    let xtask = workspace_bin("xtask");
    let test_binary = std::env::current_exe().expect("locate the test binary");
    let output = Command::new(xtask)
        .args(["sandbox", "--"])
        .arg(test_binary)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .output()
        .expect("run xtask sandbox");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} failed inside the systemd sandbox ({}):\n{stdout}\n{stderr}",
        output.status
    );
    false
}

/// Whether `cargo xtask sandbox` can run here: root, a systemd, and the
/// tools it drives. Prints "skipped: why" when not; fails under `CI=true`.
pub fn systemd_sandbox_available() -> bool {
    let reason = if !is_root() {
        Some("not root (the systemd sandbox needs namespaces, mounts and cgroups)")
    } else if !Path::new(SYSTEMD).is_file() {
        Some("no /usr/lib/systemd/systemd to run as the user manager")
    } else {
        None
    };
    if let Some(reason) = reason {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the systemd sandbox must run under CI=true: {reason}"
        );
        eprintln!("skipped: {reason}");
        return false;
    }
    ["unshare", "systemctl", "tmux"]
        .into_iter()
        .all(|tool| require_tool(tool, "the systemd sandbox tests drive it"))
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// A session of the fleet's server: a recreated one has a new pane process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub created: String,
    pub pane_pid: String,
}

/// The fleet inside the sandbox (HOME and TMUX_TMPDIR are the sandbox's).
pub struct SandboxFleet {
    pub home: PathBuf,
    pub socket: String,
}

impl SandboxFleet {
    /// Also puts the agent stand-ins of `tests/fixtures/canary/` into
    /// `~/bin` (`fake-agent`, a REPL; `crashing-agent [SECS]`, exits at once
    /// or after SECS seconds), where the canary rosters' `command: ~/bin/...`
    /// finds them.
    pub fn new() -> SandboxFleet {
        let home = PathBuf::from(std::env::var("HOME").expect("HOME"));
        let bin = home.join("bin");
        std::fs::create_dir_all(&bin).expect("create ~/bin");
        for name in ["fake-agent", "crashing-agent"] {
            let from = fixtures_dir().join("canary").join(format!("{name}.sh"));
            std::fs::copy(&from, bin.join(name)).expect("copy an agent stand-in");
        }
        SandboxFleet {
            home,
            socket: "mosaic-fleet".to_owned(),
        }
    }

    /// A roster of `tests/fixtures/canary/`.
    pub fn roster(&self, name: &str) -> String {
        let path = fixtures_dir().join("canary").join(name);
        path.display().to_string()
    }

    /// `mosaic-install --json ARGS` (the binary the outer run built).
    pub fn install(&self, args: &[&str]) -> (Output, serde_json::Value) {
        let output = Command::new(built_bin("mosaic-install"))
            .arg("--json")
            .args(args)
            .output()
            .expect("run mosaic-install");
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!(
                "mosaic-install {args:?} printed no JSON ({err}): {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output, report)
    }

    /// `mosaic-install --json ARGS`, asserting that it exits 0.
    pub fn install_ok(&self, args: &[&str]) -> serde_json::Value {
        let (output, report) = self.install(args);
        assert!(
            output.status.success(),
            "mosaic-install {args:?} failed: {report:#}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        report
    }

    /// `systemctl --user ARGS`, whatever its exit status.
    pub fn systemctl_output(&self, args: &[&str]) -> Output {
        Command::new("systemctl")
            .arg("--user")
            .args(args)
            .output()
            .expect("run systemctl")
    }

    /// `systemctl --user ARGS`, asserting success; its stdout.
    pub fn systemctl(&self, args: &[&str]) -> String {
        let output = self.systemctl_output(args);
        assert!(
            output.status.success(),
            "systemctl --user {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn property(&self, unit: &str, name: &str) -> String {
        self.systemctl(&["show", "--value", "-p", name, unit])
            .trim()
            .to_owned()
    }

    pub fn state(&self, unit: &str) -> String {
        self.property(unit, "ActiveState")
    }

    /// `tmux -L <socket> ARGS` (the sandbox's TMUX_TMPDIR).
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .env_remove("TMUX")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// The sessions on the fleet's server (empty when it is down).
    pub fn sessions(&self) -> BTreeMap<String, Session> {
        let format = "#{session_name}\t#{session_created}\t#{pane_pid}";
        let output = self.tmux(&["list-panes", "-a", "-F", format]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let name = fields.next()?.to_owned();
                let session = Session {
                    created: fields.next()?.to_owned(),
                    pane_pid: fields.next()?.to_owned(),
                };
                Some((name, session))
            })
            .collect()
    }

    pub fn session(&self, name: &str) -> Option<Session> {
        self.sessions().remove(name)
    }
}

impl Default for SandboxFleet {
    fn default() -> Self {
        Self::new()
    }
}

pub fn agent_unit(agent: &str) -> String {
    format!("mosaic-agent@{agent}.service")
}

pub const HOLDER: &str = "mosaic-tmux-holder.service";

/// Polls `check` every 100 ms until it holds (true) or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A binary the outer run built (inside the sandbox `HOME` is not the
/// user's, so cargo must not run there).
pub fn built_bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("debug").join(name);
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}
