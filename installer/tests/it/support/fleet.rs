//! The fleet tests' fixture: a `TmuxWorld` whose default server carries a
//! planted operator session (which must end exactly as it was), a temp home
//! with the test roster installed by `mosaic-install`, and agent sessions
//! started directly on the roster's named socket (a recorder of submitted
//! lines, or a sink that never accepts Enter): no systemd needed.
//! `mosaic-fleet` runs with `HOME` set to the temp home and an empty
//! `XDG_RUNTIME_DIR`, so `systemctl --user` reaches no real manager.

pub(crate) use super::tricky_message;
use crate::support::mosaic_install;
pub(crate) use mosaic_tests::short_hostname as short_host;
pub(crate) use mosaic_tests::{assert_ok, json, stderr, stdout, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mosaic_tests::{
    fixtures_dir, require_tool, PlantedDefault, TempHome, TmuxWorld, NO_TMUX_CONFIG,
};

/// The roster fixture's socket.
pub(crate) const SOCKET: &str = "fleet-verbs";

pub(crate) struct FleetWorld {
    pub(crate) world: TmuxWorld,
    pub(crate) home: TempHome,
    default_server: PlantedDefault,
}

/// `tests/fixtures/<rel>`.
pub(crate) fn fixture(rel: &str) -> PathBuf {
    fixtures_dir().join(rel)
}

/// A roster fixture with `@SCRIPTS@` (`tests/fixtures/scripts/`),
/// `@STAND_INS@` (the bundle's, [`mosaic_tests::stand_ins_dir`]), `@HOME@` and `@BIN@` (where the
/// workspace's binaries, `stand-in-tui` among them, are built) filled in.
pub(crate) fn fixture_roster_text(rel: &str, home: &Path) -> String {
    let text = std::fs::read_to_string(fixture(rel)).expect("read roster fixture");
    let bin = mosaic_tests::stand_in_tui();
    text.replace("@SCRIPTS@", &fixture("scripts").display().to_string())
        .replace(
            "@STAND_INS@",
            &mosaic_tests::stand_ins_dir().display().to_string(),
        )
        .replace("@HOME@", &home.display().to_string())
        .replace("@BIN@", &bin.parent().unwrap().display().to_string())
}

impl FleetWorld {
    /// A world with the test roster installed; None (after a visible
    /// "skipped") without tmux.
    pub(crate) fn new() -> Option<FleetWorld> {
        FleetWorld::with_roster("fleet/roster.yaml")
    }

    /// A world with the roster fixture `tests/fixtures/<rel>` installed.
    pub(crate) fn with_roster(rel: &str) -> Option<FleetWorld> {
        let fleet = FleetWorld::bare()?;
        let roster = fleet.home().join("roster-fixture.yaml");
        std::fs::write(&roster, fixture_roster_text(rel, fleet.home())).expect("write roster");
        let out = mosaic_install(fleet.home(), &fleet.world)
            .args(["--no-systemctl", "--profile"])
            .arg(&roster)
            .output()
            .expect("run mosaic-install");
        assert_ok(&out, "mosaic-install");
        Some(fleet)
    }

    /// A world with an empty home (nothing installed).
    pub(crate) fn bare() -> Option<FleetWorld> {
        if !require_tool("tmux", "the fleet verbs drive a real tmux server") {
            return None;
        }
        let world = TmuxWorld::new();
        let default_server = world.plant_operator();
        Some(FleetWorld {
            world,
            home: TempHome::new(),
            default_server,
        })
    }

    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn config(&self, rel: &str) -> PathBuf {
        self.home().join(".config").join(rel)
    }

    pub(crate) fn roster_path(&self) -> PathBuf {
        self.config("mosaic/fleet/roster.yaml")
    }

    /// `mosaic-fleet` kept away from the machine: this home, this world's
    /// tmux, no reachable systemd manager, a fixed user for the preamble.
    pub(crate) fn fleet(&self) -> Command {
        let runtime = self.world.tmpdir().join("xdg-runtime");
        std::fs::create_dir_all(&runtime).expect("create XDG_RUNTIME_DIR");
        let mut cmd = self.world.command(crate::support::PRODUCT.fleet);
        cmd.env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", runtime)
            .env("USER", "tester")
            .env_remove("TMUX_PANE")
            .env_remove("MOSAIC_AGENT_NAME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("MOSAIC_HOME")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.fleet().args(args).output().expect("run mosaic-fleet")
    }

    /// tmux on the fleet's socket.
    pub(crate) fn tmux(&self, args: &[&str]) -> Output {
        self.world.run(SOCKET, args)
    }

    /// The holder's server, as mosaic-tmux-holder.service starts it.
    pub(crate) fn start_holder(&self) {
        let mut args = NO_TMUX_CONFIG.to_vec();
        args.extend(["new-session", "-d", "-s", "_holder", "sleep 3600"]);
        assert_ok(&self.tmux(&args), "start the holder");
    }

    /// The agent's session running its roster command, as the unit would.
    pub(crate) fn start_agent(&self, agent: &str) {
        let command = match agent {
            "sink" => format!(
                "bash {}",
                mosaic_tests::stand_ins_dir().join("sink.sh").display()
            ),
            _ => format!(
                "bash {} {}",
                mosaic_tests::stand_ins_dir().join("recorder.sh").display(),
                self.record_path(agent).display()
            ),
        };
        let mut args = NO_TMUX_CONFIG.to_vec();
        args.extend(["new-session", "-d", "-s", agent, "-x", "120", "-y", "30"]);
        args.push(&command);
        assert_ok(&self.tmux(&args), "start an agent session");
        let prompt = if agent == "sink" { "sink>" } else { "ready>" };
        self.wait_for_pane(agent, prompt);
    }

    /// The agent's session running the command the install rendered for it
    /// (`MOSAIC_AGENT_COMMAND` of its env file, read as the unit's script
    /// reads it), not waiting for anything.
    pub(crate) fn start_roster_agent(&self, agent: &str) {
        let env = self.config(&format!("mosaic/fleet/agents/{agent}.env"));
        let command = mosaic_tests::env_file_values(&env)
            .remove("MOSAIC_AGENT_COMMAND")
            .unwrap_or_else(|| panic!("no MOSAIC_AGENT_COMMAND in {}", env.display()));
        let mut args = NO_TMUX_CONFIG.to_vec();
        args.extend(["new-session", "-d", "-s", agent, "-x", "120", "-y", "30"]);
        args.push(&command);
        assert_ok(&self.tmux(&args), "start an agent session");
    }

    /// What a stand-in TUI logged (`<agent>.log`, one JSON object per
    /// submission): the submitted texts, in order.
    pub(crate) fn submissions(&self, agent: &str) -> Vec<String> {
        let path = self.home().join(format!("{agent}.log"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{agent}.log: not JSON ({e}): {line}"));
                value["text"].as_str().expect("a text").to_owned()
            })
            .collect()
    }

    /// Lines a plain line reader logged (`<agent>.log`), empty ones included.
    pub(crate) fn lines_read(&self, agent: &str) -> Vec<String> {
        let path = self.home().join(format!("{agent}.log"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Holder and every agent of the test roster running.
    pub(crate) fn start_fleet(&self) {
        self.start_holder();
        for agent in ["agent-1", "agent-10", "sink"] {
            self.start_agent(agent);
        }
    }

    pub(crate) fn kill_session(&self, agent: &str) {
        let target = format!("={agent}");
        assert_ok(
            &self.tmux(&["kill-session", "-t", &target]),
            "kill a session",
        );
    }

    pub(crate) fn record_path(&self, agent: &str) -> PathBuf {
        self.home().join(format!("{agent}.rec"))
    }

    /// Lines the agent's recorder has recorded so far.
    pub(crate) fn record(&self, agent: &str) -> Vec<String> {
        std::fs::read_to_string(self.record_path(agent))
            .unwrap_or_default()
            .lines()
            .map(|line| line.replace("\x1b[200~", "").replace("\x1b[201~", ""))
            .collect()
    }

    pub(crate) fn pane_text(&self, agent: &str) -> String {
        let target = format!("={agent}:");
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", &target]).stdout)
            .into_owned()
    }

    pub(crate) fn wait_for_pane(&self, agent: &str, text: &str) {
        wait_until(&format!("`{text}` in {agent}'s pane"), || {
            self.pane_text(agent).contains(text)
        });
    }

    /// Sends an end marker with mosaic-fleet and returns the record up to
    /// it: every earlier submission is in it, and nothing else is.
    pub(crate) fn record_settled(&self, agent: &str) -> Vec<String> {
        let out = self.run(&["agent", "send", agent, "--from", "end", "-m", "end-of-test"]);
        assert_ok(&out, "send the end marker");
        let marker = format!("[end -> {}:{agent}] end-of-test", short_host());
        wait_until("the end marker in the record", || {
            self.record(agent).last() == Some(&marker)
        });
        let mut lines = self.record(agent);
        lines.pop();
        lines
    }

    pub(crate) fn assert_default_server_untouched(&self) {
        self.world.assert_default_untouched(&self.default_server);
    }
}
