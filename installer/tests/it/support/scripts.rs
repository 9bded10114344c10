//! The scripts tests' fixture: a `TmuxWorld` with a planted session on its
//! default server, a scratch directory standing in for `$HOME`, and helpers to
//! run the shipped scripts hermetically, start recorder panes and wait
//! (bounded) for what the panes show or record.

pub(crate) use super::tricky_message;
pub(crate) use mosaic_tests::short_hostname as short_host;
pub(crate) use mosaic_tests::wait_until;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use mosaic_tests::{require_tool, templates_dir, PlantedDefault, TmuxWorld, NO_TMUX_CONFIG};

/// The named socket the scripts are aimed at in every world.
pub(crate) const SOCKET: &str = "fleet-test";
/// Sent last to a recorder: once it is recorded, every earlier line is too,
/// so a stray extra Enter would show up as an empty line before it.
const END_MARKER: &str = "end-of-test";

/// Settings of the caller's environment that must not leak into the scripts.
const CALLER_SETTINGS: [&str; 12] = [
    "MOSAIC_TMUX_SOCKET",
    "MOSAIC_AGENT_NAME",
    "MOSAIC_AGENT_RUNTIME",
    "MOSAIC_AGENT_CLASS",
    "MOSAIC_AGENT_MODEL",
    "MOSAIC_AGENT_WORKDIR",
    "MOSAIC_AGENT_COMMAND",
    "MOSAIC_RUNTIME_PATH",
    "MOSAIC_RUNTIME_BIN",
    "MOSAIC_HOME",
    "XDG_CONFIG_HOME",
    "TMUX_PANE",
];

pub(crate) struct Fixture {
    pub(crate) world: TmuxWorld,
    scratch: tempfile::TempDir,
    default_server: PlantedDefault,
}

impl Fixture {
    /// None (after a visible "skipped") when tmux is not installed.
    pub(crate) fn new() -> Option<Fixture> {
        if !require_tool("tmux", "the scripts drive a real tmux server") {
            return None;
        }
        let world = TmuxWorld::new();
        let default_server = world.plant_operator();
        let scratch = tempfile::Builder::new()
            .prefix("mosaic-scripts-")
            .tempdir()
            .expect("create scratch dir");
        Some(Fixture {
            world,
            scratch,
            default_server,
        })
    }

    pub(crate) fn assert_default_server_untouched(&self) {
        self.world.assert_default_untouched(&self.default_server);
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    pub(crate) fn home(&self) -> PathBuf {
        let home = self.path("home");
        std::fs::create_dir_all(&home).expect("create scratch home");
        home
    }

    /// A shipped script (path under `templates/`) with this world's
    /// TMUX_TMPDIR, the scratch home and none of the caller's settings.
    pub(crate) fn script(&self, rel: &str) -> Command {
        let mut cmd = self.world.command(templates_dir().join(rel));
        for var in CALLER_SETTINGS {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.home());
        cmd
    }

    /// tmux on the scripts' named socket.
    pub(crate) fn tmux(&self, args: &[&str]) -> Output {
        self.world.run(SOCKET, args)
    }

    pub(crate) fn send(&self, args: &[&str]) -> Output {
        self.script("framework/tools/tmux/send-message.sh")
            .args(["-L", SOCKET])
            .args(args)
            .output()
            .expect("run send-message.sh")
    }

    pub(crate) fn start_agent_command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = self.script("framework/tools/fleet/start-agent-session.sh");
        cmd.env("MOSAIC_TMUX_SOCKET", SOCKET).args(args);
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd
    }

    pub(crate) fn start_agent(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.start_agent_command(args, env)
            .output()
            .expect("run start-agent-session.sh")
    }

    /// The holder's server, as mosaic-tmux-holder.service starts it.
    pub(crate) fn start_holder(&self) {
        let mut args = NO_TMUX_CONFIG.to_vec();
        args.extend(["new-session", "-d", "-s", "_holder", "sleep 3600"]);
        let out = self.tmux(&args);
        mosaic_tests::assert_ok(&out, "start the holder session");
    }

    pub(crate) fn new_session(&self, session: &str, program: &[&str]) {
        let mut args = NO_TMUX_CONFIG.to_vec();
        args.extend(["new-session", "-d", "-s", session, "-x", "120", "-y", "30"]);
        args.extend_from_slice(program);
        mosaic_tests::assert_ok(&self.tmux(&args), "new-session");
    }

    /// A session whose pane runs the recorder; returns its record file.
    pub(crate) fn start_recorder(&self, session: &str) -> PathBuf {
        let record = self.path(&format!("{session}.rec"));
        let recorder = stand_in("recorder.sh");
        self.new_session(
            session,
            &[recorder.to_str().unwrap(), record.to_str().unwrap()],
        );
        self.wait_for_pane(&format!("={session}:0.0"), "ready>");
        record
    }

    pub(crate) fn pane_text(&self, target: &str) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", target]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn wait_for_pane(&self, target: &str, text: &str) {
        wait_until(&format!("`{text}` in pane {target}"), || {
            self.pane_text(target).contains(text)
        });
    }

    /// Sends the end marker, waits for it, then compares the whole record.
    pub(crate) fn expect_record(&self, session: &str, record: &Path, expected: &[&str]) {
        let target = format!("={session}");
        mosaic_tests::assert_ok(
            &self.send(&["-t", &target, END_MARKER]),
            "send the end marker",
        );
        wait_until(&format!("the end marker in {session}'s record"), || {
            lines(record).last().map(String::as_str) == Some(END_MARKER)
        });
        let mut want: Vec<&str> = expected.to_vec();
        want.push(END_MARKER);
        assert_eq!(lines(record), want, "record of session {session}");
    }

    /// agent-send.sh -H through the ssh stand-in, which logs its arguments.
    pub(crate) fn remote_agent_send(&self, log: &Path, message: &str) -> Output {
        let shim = self.home().join("ssh-stand-in");
        std::fs::create_dir_all(&shim).expect("create the ssh stand-in's dir");
        let ssh = shim.join("ssh");
        if !ssh.exists() {
            std::os::unix::fs::symlink(mosaic_tests::stand_ins_dir().join("ssh.sh"), &ssh)
                .expect("put the ssh stand-in on PATH");
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![shim];
        dirs.extend(std::env::split_paths(&path));
        self.script("framework/tools/tmux/agent-send.sh")
            .env("PATH", std::env::join_paths(dirs).expect("join PATH"))
            .env("SSH_STAND_IN_LOG", log)
            .args(["-H", "bob@remote.example", "-L", SOCKET, "-s", "rec"])
            .args(["-S", "me:here", "-m", message])
            .output()
            .expect("run agent-send.sh")
    }

    /// Installs the `minimal` profile into the scratch home with the real
    /// `mosaic-install` (no systemctl), as an operator would.
    pub(crate) fn install_rendered_tree(&self) {
        let out = crate::support::mosaic_install(&self.home(), &self.world)
            .arg("--home")
            .arg(self.home())
            .args(["--profile", "minimal", "--no-systemctl"])
            .output()
            .expect("run mosaic-install");
        assert!(
            out.status.success(),
            "mosaic-install failed: {}",
            mosaic_tests::describe(&out)
        );
    }

    pub(crate) fn run_fleet_units_test(&self) -> Output {
        let units = self.home().join(".config/systemd/user");
        self.script("framework/systemd/user/test-fleet-units.sh")
            .arg(units)
            .output()
            .expect("run test-fleet-units.sh")
    }
}

/// Base64 through coreutils' `base64`, unwrapped.
pub(crate) fn base64(text: &str) -> String {
    let out = pipe("base64", &["-w0"], text.as_bytes());
    String::from_utf8(out).expect("base64 is ASCII")
}

pub(crate) fn base64_decode(encoded: &str) -> Vec<u8> {
    pipe("base64", &["-d"], encoded.as_bytes())
}

/// One of the bundle's stand-in programs ([`mosaic_tests::stand_ins_dir`]).
pub(crate) fn stand_in(name: &str) -> PathBuf {
    mosaic_tests::stand_ins_dir().join(name)
}

/// The lines of a record file (none while it does not exist).
pub(crate) fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub(crate) fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            return status;
        }
        if start.elapsed() > mosaic_tests::PATIENCE {
            let _ = child.kill();
            panic!("the process did not exit");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("run {program}: {err}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{program} failed");
    out.stdout
}
