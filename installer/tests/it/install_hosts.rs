//! `mosaic-install --host`: one roster for many machines, each install
//! taking the agents whose `host:` names it (and those without a host); a
//! roster whose agents are all elsewhere is refused with the hosts it names
//! and nothing written; an upgrade without `--host` keeps the host of the
//! last install; and `--json` says `changed` as an orchestrator needs it.

use crate::support::mosaic_install;
use std::path::Path;
use std::process::Output;

use mosaic_tests::{describe, tree_listing, TempHome, TmuxWorld};
use serde_json::Value;

const ROSTER: &str = "\
# Two machines and an agent for every host.
version: 1
transport: tmux
agents:
  - {name: web-1, runtime: claude, host: box1.example.com, ssh: ops@box1}
  - {name: web-2, runtime: codex, host: box2}
  - {name: web-3, runtime: claude, host: BOX1}
  - {name: everywhere, runtime: pi}
";

struct Home {
    home: TempHome,
    world: TmuxWorld,
}

impl Home {
    fn new() -> Home {
        Home {
            home: TempHome::new(),
            world: TmuxWorld::new(),
        }
    }

    fn roster(&self, text: &str) -> String {
        let path = self.home.path().join("fleet.yaml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn install(&self, args: &[&str]) -> Output {
        mosaic_install(self.home.path(), &self.world)
            .args(["--no-systemctl"])
            .args(args)
            .output()
            .expect("run mosaic-install")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.install(&[args, &["--json"]].concat());
        assert!(out.status.success(), "{}", describe(&out));
        serde_json::from_slice(&out.stdout).expect("JSON report")
    }

    fn agents(&self) -> Vec<String> {
        let dir = self.home.path().join(".config/mosaic/fleet/agents");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

#[test]
fn host_picks_that_hosts_agents_and_is_kept_for_upgrades() {
    let fx = Home::new();
    let roster = fx.roster(ROSTER);

    let report = fx.json(&["--host", "box1", "--profile", &roster]);
    assert_eq!(report["host"], "box1");
    assert_eq!(report["changed"], true);
    assert_eq!(
        report["agents"],
        serde_json::json!(["web-1", "web-3", "everywhere"])
    );
    assert_eq!(fx.agents(), ["everywhere.env", "web-1.env", "web-3.env"]);

    // Without --host the upgrade stays with box1, and has nothing to do.
    let again = fx.json(&["--profile", &roster]);
    assert_eq!(again["host"], "box1");
    assert_eq!(again["changed"], false, "{again:#}");
    assert_eq!(again["generation"], Value::Null);

    // A dry run of another host says what would change, and writes nothing.
    let before = tree_listing(fx.home.path());
    let dry = fx.json(&["--host", "box2.example.com", "--dry-run"]);
    assert_eq!(dry["changed"], true);
    assert_eq!(dry["agents"], serde_json::json!(["web-2", "everywhere"]));
    assert_eq!(tree_listing(fx.home.path()), before);
}

#[test]
fn a_roster_with_no_agent_for_this_host_is_refused_naming_its_hosts() {
    let fx = Home::new();
    let only_remote = ROSTER.replace("  - {name: everywhere, runtime: pi}\n", "");
    let roster = fx.roster(&only_remote);
    let before = tree_listing(fx.home.path());

    let out = fx.install(&["--host", "box3", "--profile", &roster]);

    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no agent runs on host `box3`: the roster puts its agents on box1.example.com, box2, BOX1"),
        "{err}"
    );
    assert!(err.contains("pass --host"), "{err}");
    assert!(err.contains(&roster), "the error names the file: {err}");
    assert_eq!(tree_listing(fx.home.path()), before, "nothing is written");
    assert!(!Path::new(&fx.home.path().join(".local/state/mosaic-install")).exists());

    let json = fx.install(&["--host", "box3", "--profile", &roster, "--json"]);
    let report: Value = serde_json::from_slice(&json.stdout).expect("a JSON error");
    assert_eq!(report["exit_code"], 2);
    assert!(report["error"]
        .as_str()
        .unwrap()
        .contains("no agent runs on host `box3`"));

    let bad = fx.install(&["--host", "a b", "--profile", &roster]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}
