//! Nowhere to write (issue 9): a full stdout (`> /dev/full`), a closed one
//! (the read end of the pipe gone, as with `| head -c0`), and a full stderr
//! too. Neither binary may panic; the command's own result decides the exit
//! status, the work is done (or refused) exactly as with a terminal, and the
//! lost report is said on stderr. Text and `--json` alike. And a full disk,
//! whose error names the file being written, not its temp file.

use crate::support::fleet as harness;
use crate::support::mosaic_install;

use std::fs::File;
use std::process::{Command, Output, Stdio};

use harness::FleetWorld;
use mosaic_tests::{require_tool, TempHome, TmuxWorld};

/// Where the command's stdout (and maybe stderr) goes.
#[derive(Clone, Copy, Debug)]
enum Sink {
    /// `> /dev/full`: every write fails with ENOSPC.
    Full,
    /// A pipe whose read end is closed before the command starts: every
    /// write fails with EPIPE (SIGPIPE is not what ends the command).
    Closed,
}

impl Sink {
    fn stdio(self) -> Stdio {
        match self {
            Sink::Full => Stdio::from(File::options().write(true).open("/dev/full").unwrap()),
            Sink::Closed => {
                let (reader, writer) = std::io::pipe().unwrap();
                drop(reader);
                Stdio::from(writer)
            }
        }
    }
}

const LOST: &str = "the report could not be written to stdout";

fn run_into(mut cmd: Command, sink: Sink) -> Output {
    cmd.stdout(sink.stdio())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit `code`, no panic, and the lost report named on stderr.
fn assert_result_kept(out: &Output, code: i32, what: &str) {
    let message = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: {message}");
    assert!(!message.contains("panicked"), "{what} panicked:\n{message}");
    assert!(
        message.contains(LOST),
        "{what}: stderr does not say the report was lost:\n{message}"
    );
}

fn installer(home: &TempHome, world: &TmuxWorld, args: &[&str]) -> Command {
    let mut cmd = mosaic_install(home.path(), world);
    cmd.arg("--home").arg(home.path()).args(args);
    cmd
}

fn receipt_exists(home: &TempHome) -> bool {
    home.path()
        .join(".local/state/mosaic-install/receipt.json")
        .is_file()
}

#[test]
fn an_install_into_a_full_or_closed_stdout_installs_and_exits_0() {
    let world = TmuxWorld::new();
    for sink in [Sink::Full, Sink::Closed] {
        for json in [false, true] {
            let what = format!("install {sink:?} json={json}");
            let home = TempHome::new();
            let mut args = vec!["--profile", "usc"];
            if json {
                args.push("--json");
            }
            let out = run_into(installer(&home, &world, &args), sink);
            assert_result_kept(&out, 0, &what);
            assert!(receipt_exists(&home), "{what}: nothing was installed");
            // status, into the same sink, reports its own verdict: clean.
            let status = run_into(installer(&home, &world, &["status"]), sink);
            assert_result_kept(&status, 0, &format!("status {sink:?}"));
        }
    }
}

#[test]
fn a_refusal_into_a_full_stdout_still_exits_2_with_the_error_on_stderr() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    for args in [
        &["--profile", "no-such-fleet"][..],
        &["--profile", "no-such-fleet", "--json"][..],
    ] {
        let out = run_into(installer(&home, &world, args), Sink::Full);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{message}");
        assert!(
            message.contains("unknown profile `no-such-fleet`"),
            "{message}"
        );
    }
    assert!(!receipt_exists(&home));
}

#[test]
fn with_stderr_full_too_the_exit_status_is_the_installs_own() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let full = || Stdio::from(File::options().write(true).open("/dev/full").unwrap());
    let status = installer(&home, &world, &["--profile", "minimal"])
        .stdout(full())
        .stderr(full())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(receipt_exists(&home));
    let refused = installer(&home, &world, &["--profile", "no-such-fleet"])
        .stdout(full())
        .stderr(full())
        .status()
        .unwrap();
    assert_eq!(refused.code(), Some(2));
}

#[test]
fn mosaic_fleet_into_a_full_or_closed_stdout_does_its_work_and_exits_0() {
    let Some(fx) = FleetWorld::bare() else { return };
    harness::assert_ok(
        &fx.run(&["fleet", "init", "--profile", "minimal"]),
        "fleet init",
    );
    let mut added = Vec::new();
    for (index, sink) in [Sink::Full, Sink::Closed].into_iter().enumerate() {
        for json in [false, true] {
            let what = format!("{sink:?} json={json}");
            let name = format!("helper-{index}-{json}");
            let mut add = fx.fleet();
            add.args(["agent", "add", &name, "--runtime", "codex"]);
            let mut roster = fx.fleet();
            roster.args(["agent", "roster"]);
            if json {
                add.arg("--json");
                roster.arg("--json");
            }
            assert_result_kept(&run_into(add, sink), 0, &format!("agent add {what}"));
            assert_result_kept(&run_into(roster, sink), 0, &format!("agent roster {what}"));
            added.push(name);
        }
    }
    let roster = std::fs::read_to_string(fx.roster_path()).unwrap();
    for name in &added {
        assert!(
            roster.contains(&format!("name: {name}")),
            "{name} was not added:\n{roster}"
        );
        assert!(fx
            .config(&format!("mosaic/fleet/agents/{name}.env"))
            .is_file());
    }
    fx.assert_default_server_untouched();
}

/// The home is a 64 KiB tmpfs in a private mount namespace (it vanishes
/// with the namespace, so nothing is left mounted even if the test fails);
/// a `usc` install needs more, so a write fails with ENOSPC.
#[test]
fn a_full_disk_names_the_file_being_written_not_its_temp_file() {
    if !require_tool("unshare", "a private mount namespace for a tiny tmpfs") {
        return;
    }
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let script = r#"mount -t tmpfs -o size=64k,mode=0755 tmpfs "$1" || exit 90
"$2" --home "$1" --profile usc --no-systemctl >/dev/null
code=$?
echo "temp files left:"
find "$1" -name '.mosaic-install-*'
exit $code"#;
    let out = world
        .command("unshare")
        .env("HOME", home.path())
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(home.path())
        .arg(crate::support::PRODUCT.install)
        .output()
        .unwrap();
    let message = stderr(&out);
    if out.status.code() == Some(90) || message.contains("unshare failed") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "a private tmpfs is required under CI=true: {message}"
        );
        eprintln!("skipped: cannot mount a private tmpfs here (needs root): {message}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(message.contains("No space left on device"), "{message}");
    assert!(
        !message.contains(".mosaic-install-"),
        "the error names a temp file:\n{message}"
    );
    let target = format!("the new version of {}/.config/", home.path().display());
    assert!(
        message.contains(&target),
        "the error does not name the target:\n{message}"
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listing.trim(), "temp files left:", "{listing}");
}
