//! Tests against a real systemd user manager: the test re-runs its own
//! binary inside `cargo xtask sandbox` (filtered to itself) and the body runs
//! there, next to an isolated manager, with a throwaway `HOME`, runtime dir
//! and `TMUX_TMPDIR`. The bodies drive [`fleet`], a [`LiveFleet`]: the built
//! `mosaic-install`, `systemctl --user`, and the fleet's named tmux server.
//!
//! ```no_run
//! use mosaic_tests::sandbox::{self, inside_systemd_sandbox};
//!
//! // #[test]
//! fn something() {
//!     if !inside_systemd_sandbox(module_path!(), "something") {
//!         return; // ran inside the sandbox (or was skipped with a reason)
//!     }
//!     # const PRODUCT: mosaic_tests::Product = mosaic_tests::Product { install: "", fleet: "" };
//!     let fleet = sandbox::fleet(PRODUCT);
//!     fleet.install_ok(&["--profile", "minimal", "--start"]);
//! }
//! # something();
//! ```

use std::path::Path;
use std::process::Command;

use crate::live::LiveFleet;
use crate::{fixtures_dir, require_tool, Product};

const SYSTEMD: &str = "/usr/lib/systemd/systemd";

/// True when the caller runs inside the sandbox: go on with the test body.
/// False when it ran the test `name` of `module` (the caller's
/// `module_path!()`) inside the sandbox (and asserted that it passed there),
/// or skipped it with a visible reason (failing under `CI=true`): return.
pub fn inside_systemd_sandbox(module: &str, name: &str) -> bool {
    if std::env::var("MOSAIC_SANDBOX").as_deref() == Ok("1") {
        return true;
    }
    if !systemd_sandbox_available() {
        return false;
    }
    let xtask = crate::xtask();
    // Inside, cargo must not run (HOME is not the user's): build what the
    // bodies may start now.
    crate::stand_in_tui();
    let test_binary = std::env::current_exe().expect("locate the test binary");
    // libtest names a test by its path inside the crate: no crate name.
    let name = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    };
    let output = Command::new(xtask)
        .args(["sandbox", "--"])
        .arg(test_binary)
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
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

/// The fleet of a sandbox test: the manager's `HOME` and `TMUX_TMPDIR`,
/// the `mosaic-fleet` socket, this build's `mosaic-install`. Also puts the
/// agent stand-ins of `tests/fixtures/canary/` into `~/bin` (`fake-agent`,
/// a REPL; `crashing-agent [SECS]`, exits at once or after SECS seconds),
/// where the canary rosters' `command: ~/bin/...` finds them.
pub fn fleet(product: Product) -> LiveFleet {
    let tmux_tmpdir = std::env::var("TMUX_TMPDIR").ok();
    let fleet = LiveFleet::new(
        Path::new(product.install),
        "mosaic-fleet",
        tmux_tmpdir.as_deref(),
    )
    .expect("the sandbox sets HOME");
    let bin = fleet.home.join("bin");
    std::fs::create_dir_all(&bin).expect("create ~/bin");
    for name in ["fake-agent", "crashing-agent"] {
        let from = fixtures_dir().join("canary").join(format!("{name}.sh"));
        std::fs::copy(&from, bin.join(name)).expect("copy an agent stand-in");
    }
    fleet
}

/// A roster of `tests/fixtures/canary/`.
pub fn canary_roster(name: &str) -> String {
    fixtures_dir()
        .join("canary")
        .join(name)
        .display()
        .to_string()
}
