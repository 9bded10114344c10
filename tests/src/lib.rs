//! Shared harness for the workspace integration tests: locating the built
//! binaries, temp homes, throwaway tmux servers and the rule for missing tools.
//!
//! Everything here keeps tests away from the real machine: homes are temp
//! dirs, and tmux always runs with its own `TMUX_TMPDIR` and a named socket.

// Test support drives the real programs (tmux, sshd, systemd, dpkg) as a user would.
#![allow(clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod debian;
pub mod hosts;
pub mod live;
pub mod sandbox;

/// The workspace root (parent of this package).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `templates/` in the source tree.
pub fn templates_dir() -> PathBuf {
    workspace_root().join("templates")
}

/// `tests/fixtures/` in the source tree.
pub fn fixtures_dir() -> PathBuf {
    workspace_root().join("tests").join("fixtures")
}

/// The stand-in programs the bundle's self-tests drive (a recorder REPL, a
/// sink, a line reader, ssh, mosaic, ...), shipped in
/// `templates/framework/tools/selftest/`: the tests here drive the same ones.
pub fn stand_ins_dir() -> PathBuf {
    templates_dir().join("framework/tools/selftest")
}

/// Whether a test that needs `tool` may run. A missing tool fails the test
/// under `CI=true`, and prints a visible "skipped" line otherwise.
pub fn require_tool(tool: &str, why: &str) -> bool {
    if which(tool).is_some() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("`{tool}` is required under CI=true ({why}); .ci/run must install it");
    }
    eprintln!("skipped: `{tool}` is not installed ({why})");
    false
}

/// Look a program up on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// The workspace's target directory (`$CARGO_TARGET_DIR`, else `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A Python command-line tool (`ansible-playbook`, `ansible-lint`): from the
/// pinned venv `cargo xtask ci` installs (`target/python-tools`), else from
/// PATH. Missing, it fails the test under `CI=true` and is a visible
/// "skipped" otherwise.
pub fn python_tool(tool: &str, why: &str) -> Option<PathBuf> {
    let venv = target_dir().join("python-tools/bin").join(tool);
    if venv.is_file() {
        return Some(venv);
    }
    if let Some(found) = which(tool) {
        return Some(found);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("`{tool}` is required under CI=true ({why}); `cargo xtask ci` installs it into target/python-tools");
    }
    eprintln!("skipped: `{tool}` is not installed ({why}); `cargo xtask ci` installs it");
    None
}

/// The product's two binaries, as the integration-test binary knows them
/// (`env!("CARGO_BIN_EXE_mosaic-install")`, ...): what the helpers here that
/// run or copy them are given.
#[derive(Debug, Clone, Copy)]
pub struct Product {
    pub install: &'static str,
    pub fleet: &'static str,
}

impl Product {
    /// Both binaries, by the name they are installed under.
    pub fn binaries(&self) -> [(&'static str, &'static Path); 2] {
        [
            ("mosaic-install", Path::new(self.install)),
            ("mosaic-fleet", Path::new(self.fleet)),
        ]
    }
}

/// `cargo xtask`'s binary, built once per test process.
pub fn xtask() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    program(&BUILD, "xtask", "xtask")
}

/// The stand-in TUI of the delivery tests (`src/bin/stand-in-tui.rs`),
/// built once per test process.
pub fn stand_in_tui() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    program(&BUILD, "mosaic-tests", "stand-in-tui")
}

/// A program of this workspace that is not one of the product's binaries
/// (those come from `CARGO_BIN_EXE_*`): `cargo build -p PACKAGE --bin NAME`
/// once, except inside the systemd sandbox, where `HOME` is not the user's
/// and the outer run has built it already.
fn program(once: &std::sync::Once, package: &str, name: &str) -> PathBuf {
    let bin = target_dir().join("debug").join(name);
    if std::env::var("MOSAIC_SANDBOX").as_deref() != Ok("1") {
        once.call_once(|| {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", package, "--bin", name])
                .current_dir(workspace_root())
                .status()
                .expect("run cargo build");
            assert!(
                status.success(),
                "cargo build -p {package} --bin {name} failed"
            );
        });
    }
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// Upper bound for anything a test waits for; reached only when something
/// is broken.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `done` every 25 ms until it holds; panics naming `what` after
/// [`PATIENCE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// Asserts that a command exited 0, showing its output when it did not.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", describe(out));
}

/// A command's stdout as text (lossy).
pub fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

/// A command's stderr as text (lossy).
pub fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// A command's stdout parsed as JSON (`--json`), or a panic showing it.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", describe(out)))
}

/// The default server's state right after [`TmuxWorld::plant_operator`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedDefault(String);

/// The calls per syscall of an `strace -c` summary, whose rows read
/// `% time  seconds  usecs/call  calls  [errors]  syscall` (the header, the
/// rules and anything else without a count are left out; `total` is kept).
pub fn strace_call_counts(summary: &str) -> std::collections::BTreeMap<String, usize> {
    summary
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let calls = fields.get(3)?.parse().ok()?;
            Some(((*fields.last()?).to_owned(), calls))
        })
        .collect()
}

/// Output bytes as text (lossy), for assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's status, stdout and stderr, for a failing assertion.
pub fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}stderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// The values of the `# key: value` comment lines that head a fixture file
/// (fixtures carry their own expectations, so adding a file adds a case).
pub fn fixture_header(path: &Path, key: &str) -> Vec<String> {
    let bytes = std::fs::read(path).expect("read fixture");
    let prefix = format!("# {key}:");
    String::from_utf8_lossy(&bytes)
        .lines()
        .take_while(|line| line.starts_with('#'))
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.trim().to_owned())
        .collect()
}

/// A temp directory standing in for `$HOME`.
pub struct TempHome {
    dir: tempfile::TempDir,
}

impl TempHome {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("mosaic-home-")
                .tempdir()
                .expect("create temp home"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TempHome {
    fn default() -> Self {
        Self::new()
    }
}

/// For whichever tmux command starts a server in a test: no ~/.tmux.conf
/// or /etc/tmux.conf (a base-index 1 there would move the panes under test).
pub const NO_TMUX_CONFIG: [&str; 2] = ["-f", "/dev/null"];

/// A throwaway tmux world: its own `TMUX_TMPDIR`, so neither the named
/// sockets nor the "default" server it uses are the machine's. Dropping it
/// kills only the servers it started, each by its own socket.
pub struct TmuxWorld {
    tmpdir: tempfile::TempDir,
    sockets: std::cell::RefCell<Vec<String>>,
}

impl TmuxWorld {
    pub fn new() -> Self {
        // Short prefix: tmux socket paths must fit in sun_path (108 bytes).
        let tmpdir = tempfile::Builder::new()
            .prefix("mt-")
            .tempdir_in("/tmp")
            .expect("create TMUX_TMPDIR");
        Self {
            tmpdir,
            sockets: Default::default(),
        }
    }

    /// The `TMUX_TMPDIR` every tmux command of this world must get.
    pub fn tmpdir(&self) -> &Path {
        self.tmpdir.path()
    }

    /// A `tmux` command on `socket` inside this world.
    pub fn tmux(&self, socket: &str) -> Command {
        self.remember(socket);
        let mut cmd = Command::new("tmux");
        cmd.env("TMUX_TMPDIR", self.tmpdir())
            .env_remove("TMUX")
            .args(["-L", socket]);
        cmd
    }

    /// Any command with this world's `TMUX_TMPDIR` (for the shipped scripts).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("TMUX_TMPDIR", self.tmpdir()).env_remove("TMUX");
        cmd
    }

    /// Run tmux on `socket` and return its output (not asserting success).
    pub fn run(&self, socket: &str, args: &[&str]) -> Output {
        self.tmux(socket).args(args).output().expect("run tmux")
    }

    /// Session names on `socket` (empty when no server runs there).
    pub fn sessions(&self, socket: &str) -> Vec<String> {
        let out = self.run(socket, &["list-sessions", "-F", "#{session_name}"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Start session `name` on this world's default server (`tmux` without
    /// `-L`, inside this world's `TMUX_TMPDIR` only): the operator's own
    /// session that everything under test must leave alone.
    fn plant_default_session(&self, name: &str) {
        self.remember("default");
        let planted = self
            .command("tmux")
            .args(NO_TMUX_CONFIG)
            .args(["new-session", "-d", "-s", name, "sleep 3600"])
            .output()
            .expect("run tmux");
        assert!(
            planted.status.success(),
            "plant a session on the default server: {planted:?}"
        );
    }

    /// Sessions, panes, processes, screen and buffers of this world's
    /// default server (`tmux` without `-L`, inside this world's
    /// `TMUX_TMPDIR` only), for "left untouched" comparisons; `operator` is
    /// the session whose screen is captured.
    fn default_server_state(&self, operator: &str) -> String {
        let tmux = |args: &[&str]| {
            let out = self.command("tmux").args(args).output().expect("run tmux");
            assert!(out.status.success(), "default server query failed: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let panes = "#{session_name} #{session_created} #{pane_id} #{pane_pid} #{pane_dead}";
        [
            tmux(&["list-panes", "-a", "-F", panes]),
            tmux(&["capture-pane", "-p", "-t", &format!("={operator}:0.0")]),
            tmux(&["list-buffers", "-F", "#{buffer_name}"]),
        ]
        .join("--\n")
    }

    /// Plants the session `operator` on this world's default server and
    /// returns that server's state: what [`TmuxWorld::assert_default_untouched`]
    /// later compares with.
    pub fn plant_operator(&self) -> PlantedDefault {
        self.plant_default_session("operator");
        PlantedDefault(self.default_server_state("operator"))
    }

    /// The default server is exactly as [`TmuxWorld::plant_operator`] left it.
    pub fn assert_default_untouched(&self, planted: &PlantedDefault) {
        assert_eq!(
            self.default_server_state("operator"),
            planted.0,
            "the world's default tmux server changed"
        );
    }

    /// Register a socket started by something else (a script under test) so
    /// that it is cleaned up with this world.
    pub fn remember(&self, socket: &str) {
        let mut sockets = self.sockets.borrow_mut();
        if !sockets.iter().any(|s| s == socket) {
            sockets.push(socket.to_owned());
        }
    }
}

impl Default for TmuxWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TmuxWorld {
    fn drop(&mut self) {
        for socket in self.sockets.borrow().iter() {
            let _ = Command::new("tmux")
                .env("TMUX_TMPDIR", self.tmpdir.path())
                .args(["-L", socket, "kill-server"])
                .output();
        }
    }
}

/// sha256 hex of every regular file and symlink under `root`, with modes:
/// one sorted line per entry, for "nothing changed" comparisons.
pub fn tree_listing(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut lines = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("readlink");
                lines.push(format!("{rel} link {}", target.display()));
            } else if meta.is_dir() {
                lines.push(format!("{rel}/ {mode:o}"));
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                lines.push(format!("{rel} {mode:o} {}", sha256_hex(&bytes)));
            }
        }
    }
    lines.sort();
    lines
}

/// Lowercase hex SHA-256, as receipts record file contents.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Copy the tree under `src` into `dst` (created as needed), keeping file
/// modes and symlinks as they are; for fixtures and "fresh copy" setups.
pub fn copy_tree(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dst).expect("create copy destination");
    for entry in std::fs::read_dir(src).expect("read copy source").flatten() {
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&from).expect("stat");
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&from).expect("readlink");
            std::os::unix::fs::symlink(target, &to).expect("copy symlink");
        } else if meta.is_dir() {
            copy_tree(&from, &to);
            std::fs::set_permissions(&to, meta.permissions()).expect("copy dir mode");
        } else {
            std::fs::copy(&from, &to).expect("copy file");
            let mode = meta.permissions().mode() & 0o7777;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
                .expect("copy file mode");
        }
    }
}

/// The lines only in `before` ("- ...") and only in `after` ("+ ...") of two
/// [`tree_listing`]s: a readable message when two trees should be equal.
pub fn listing_diff(before: &[String], after: &[String]) -> Vec<String> {
    let gone = before.iter().filter(|l| !after.contains(l));
    let new = after.iter().filter(|l| !before.contains(l));
    gone.map(|l| format!("- {l}"))
        .chain(new.map(|l| format!("+ {l}")))
        .collect()
}

/// Assert that two [`tree_listing`]s are equal, showing only what differs.
pub fn assert_same_tree(before: &[String], after: &[String], what: &str) {
    assert!(
        before == after,
        "{what}:\n{}",
        listing_diff(before, after).join("\n")
    );
}

/// Append `text` to the file at `path` (an operator's edit); returns the
/// file's new bytes.
pub fn append(path: &Path, text: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("read the file to edit");
    bytes.extend_from_slice(text.as_bytes());
    std::fs::write(path, &bytes).expect("edit the file");
    bytes
}

/// A copy of `templates/` in a temp dir with its package.json version set to
/// `version`: the next generation of the bundle, for `--bundle` upgrades.
pub fn bundle_copy(version: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("mosaic-bundle-")
        .tempdir()
        .expect("create bundle dir");
    copy_tree(&templates_dir(), dir.path());
    let manifest = dir.path().join("package.json");
    let text = std::fs::read_to_string(&manifest).expect("read package.json");
    let mut bumped = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.split_once("\"version\":") {
            Some((indent, rest)) if !bumped && indent.trim().is_empty() => {
                bumped = true;
                let comma = if rest.trim_end().ends_with(',') {
                    ","
                } else {
                    ""
                };
                format!("{indent}\"version\": \"{version}\"{comma}")
            }
            _ => line.to_owned(),
        })
        .collect();
    assert!(
        bumped,
        "templates/package.json has no top-level version line"
    );
    std::fs::write(&manifest, lines.join("\n") + "\n").expect("write package.json");
    dir
}

/// This machine's short host name (up to the first dot), read from the
/// kernel as `hostname -s` would: what mosaic-fleet and the scripts print.
pub fn short_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("read the host name");
    let name = name.trim();
    name.split('.').next().unwrap_or(name).to_owned()
}

/// The values an env file holds, as bash reads them (`set -a; source`), the
/// way the agent session script sources it: an oracle independent of the
/// installer's own quoting.
pub fn env_file_values(path: &Path) -> std::collections::BTreeMap<String, String> {
    let output = Command::new("env")
        .args(["-i", "bash", "-c", r#"set -a; source "$1"; env -0"#, "bash"])
        .arg(path)
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "bash could not source {}: {}",
        path.display(),
        describe(&output)
    );
    output
        .stdout
        .split(|byte| *byte == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (key, value) = entry.split_once('=')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::strace_call_counts;

    #[test]
    fn strace_summary_rows_are_read_with_and_without_errors() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n------ ----------- ----------- --------- --------- ----------------\n 40.00    0.000400          10        40           write\n 30.00    0.000300           5        60         3 openat\n100.00    0.001000           9       100         3 total\n";
        let counts = strace_call_counts(text);
        assert_eq!(counts.get("write"), Some(&40));
        assert_eq!(counts.get("openat"), Some(&60));
        assert_eq!(counts.get("total"), Some(&100));
        assert_eq!(counts.len(), 3);
    }
}
