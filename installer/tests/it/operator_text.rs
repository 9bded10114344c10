//! What an operator reads through the life of an install, pinned as text:
//! a fresh install, an identical rerun, a roster edit previewed and
//! applied, `status` after a hand edit, a rollback that leaves the
//! operator's roster alone, an uninstall preview, and `mosaic-fleet` asked
//! about a fleet whose user manager and tmux server are not there. Real
//! binaries in a temp home, `--no-systemctl` (no user manager answers in a
//! test), the home path shown as `[HOME]`.

use crate::support::mosaic_install;
use mosaic_tests::{append, text, TempHome, TmuxWorld};

/// One command as a transcript: the command line, stdout, stderr, exit.
fn transcript(tool: &str, args: &[&str], out: &std::process::Output) -> String {
    let mut shown = format!("$ {tool} {}\n", args.join(" "));
    shown.push_str(&text(&out.stdout));
    if !out.stderr.is_empty() {
        shown.push_str("[stderr]\n");
        shown.push_str(&text(&out.stderr));
    }
    shown.push_str(&format!("[exit {}]\n", out.status.code().unwrap_or(-1)));
    shown
}

struct Scene {
    world: TmuxWorld,
    home: TempHome,
}

impl Scene {
    fn install(&self, args: &[&str]) -> String {
        let out = mosaic_install(self.home.path(), &self.world)
            .args(args)
            .output()
            .expect("run mosaic-install");
        transcript("mosaic-install", args, &out)
    }

    fn fleet(&self, args: &[&str]) -> String {
        let runtime = self.world.tmpdir().join("xdg-runtime");
        let out = self
            .world
            .command(crate::support::PRODUCT.fleet)
            .env("HOME", self.home.path())
            .env("XDG_RUNTIME_DIR", runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .args(args)
            .output()
            .expect("run mosaic-fleet");
        transcript("mosaic-fleet", args, &out)
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.home.path().join(rel)
    }

    /// Pins `text` as `operator__<name>`, with what differs per run and
    /// per machine masked: the temp home, and the runtime directories
    /// found on this machine.
    fn pin(&self, name: &str, text: &str) {
        let home = self.home.path().display().to_string();
        let masked: Vec<String> = text
            .replace(&home, "[HOME]")
            .lines()
            .map(|line| {
                if line.starts_with("agents' runtime PATH: ") {
                    "agents' runtime PATH: [as found here]".to_owned()
                } else if let Some(at) = line.find("MOSAIC_RUNTIME_PATH=\"") {
                    format!("{}MOSAIC_RUNTIME_PATH=\"[as found here]\"", &line[..at])
                } else {
                    line.to_owned()
                }
            })
            .collect();
        let name = format!("operator__{name}");
        crate::support::snapshots().bind(|| insta::assert_snapshot!(name, masked.join("\n")));
    }
}

#[test]
fn the_life_of_an_install_reads_as_pinned() {
    let scene = Scene {
        world: TmuxWorld::new(),
        home: TempHome::new(),
    };
    let no_systemctl = "--no-systemctl";

    scene.pin(
        "1_fresh_install",
        &scene.install(&["--profile", "minimal", no_systemctl]),
    );
    scene.pin("2_identical_rerun", &scene.install(&[no_systemctl]));

    append(
        &scene.path(".config/mosaic/fleet/roster.yaml"),
        "  - name: helper\n    runtime: codex\n",
    );
    scene.pin(
        "3_roster_edit_dry_run",
        &scene.install(&["--dry-run", no_systemctl]),
    );
    scene.pin("4_roster_edit_applied", &scene.install(&[no_systemctl]));

    append(
        &scene.path(".config/systemd/user/mosaic-agent@.service"),
        "# mine\n",
    );
    scene.pin("5_status_after_edits", &scene.install(&["status"]));
    scene.pin("6_rollback", &scene.install(&["rollback", no_systemctl]));
    scene.pin(
        "7_uninstall_dry_run",
        &scene.install(&["uninstall", "--dry-run", no_systemctl]),
    );

    let mut fleet = scene.fleet(&["fleet", "status"]);
    fleet.push_str(&scene.fleet(&["agent", "roster"]));
    fleet.push_str(&scene.fleet(&["agent", "send", "canary", "-m", "hello"]));
    fleet.push_str(&scene.fleet(&["agent", "send", "nobody", "-m", "hello"]));
    scene.pin("8_fleet_without_manager_or_server", &fleet);
}
