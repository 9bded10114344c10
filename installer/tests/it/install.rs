//! Fresh installs into temp homes, as an operator sees them: the exact file
//! set and modes, the receipt, an idempotent second run, `--dry-run`,
//! `--json`, `profiles` and `render --out`. Where files go without `--home`
//! is `install_locations.rs`.

use crate::support::mosaic_install;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mosaic_tests::{templates_dir, tree_listing, TempHome, TmuxWorld};
use serde_json::Value;

const USC_AGENTS: [&str; 7] = [
    "usc-orchestrator",
    "usc-reviewer-1",
    "usc-reviewer-2",
    "usc-worker-1",
    "usc-worker-10",
    "usc-worker-11",
    "usc-worker-2",
];

/// Every file a `usc` install writes, config-relative, with its mode.
fn expected_usc_files() -> BTreeMap<String, u32> {
    let mut files: BTreeMap<String, u32> = [
        ("systemd/user/mosaic-tmux-holder.service", 0o644),
        ("systemd/user/mosaic-agent@.service", 0o644),
        ("mosaic/systemd/user/README.md", 0o644),
        ("mosaic/systemd/user/test-fleet-units.sh", 0o755),
        ("mosaic/tools/tmux/README.md", 0o644),
        ("mosaic/tools/tmux/send-message.sh", 0o755),
        ("mosaic/tools/tmux/agent-send.sh", 0o755),
        ("mosaic/tools/tmux/test-send-message-socket.sh", 0o755),
        ("mosaic/tools/fleet/README.md", 0o644),
        ("mosaic/tools/fleet/start-agent-session.sh", 0o755),
        ("mosaic/tools/fleet/test-start-agent-session.sh", 0o755),
        ("mosaic/tools/selftest/lib.sh", 0o755),
        ("mosaic/tools/selftest/recorder.sh", 0o755),
        ("mosaic/tools/selftest/slow-recorder.sh", 0o755),
        ("mosaic/tools/selftest/line-reader.sh", 0o755),
        ("mosaic/tools/selftest/sink.sh", 0o755),
        ("mosaic/tools/selftest/ssh.sh", 0o755),
        ("mosaic/tools/selftest/mosaic.sh", 0o755),
        ("mosaic/fleet/roster.schema.json", 0o644),
        ("mosaic/fleet/roster.yaml", 0o644),
        ("mosaic/fleet/examples/minimal.yaml", 0o644),
        ("mosaic/fleet/examples/local-canary.yaml", 0o644),
        ("mosaic/fleet/examples/usc.yaml", 0o644),
    ]
    .into_iter()
    .map(|(path, mode)| (path.to_owned(), mode))
    .collect();
    for agent in USC_AGENTS {
        files.insert(format!("mosaic/fleet/agents/{agent}.env"), 0o600);
    }
    files
}

struct Sandbox {
    home: TempHome,
    world: TmuxWorld,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            home: TempHome::new(),
            world: TmuxWorld::new(),
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn config(&self) -> PathBuf {
        self.home().join(".config")
    }

    fn state(&self) -> PathBuf {
        self.home().join(".local/state/mosaic-install")
    }

    fn command(&self) -> Command {
        mosaic_install(self.home(), &self.world)
    }

    /// `mosaic-install --home HOME ARGS`, asserting success.
    fn run(&self, args: &[&str]) -> Output {
        let out = self
            .command()
            .arg("--home")
            .arg(self.home())
            .args(args)
            .output()
            .expect("run mosaic-install");
        assert!(
            out.status.success(),
            "mosaic-install {args:?} failed: {out:?}"
        );
        out
    }
}

/// Whether `out` has a plan line "<action> <path>".
fn says(out: &str, action: &str, path: &str) -> bool {
    out.lines()
        .any(|line| line.trim_start().starts_with(action) && line.ends_with(path))
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

/// Regular files under `root` (relative path → mode, sha256), from `tree_listing`.
fn files(root: &Path) -> BTreeMap<String, (u32, String)> {
    tree_listing(root)
        .iter()
        .filter_map(|line| {
            let mut fields = line.rsplitn(3, ' ');
            let (sha, mode, path) = (fields.next()?, fields.next()?, fields.next()?);
            let mode = u32::from_str_radix(mode, 8).ok()?;
            (sha.len() == 64).then(|| (path.to_owned(), (mode, sha.to_owned())))
        })
        .collect()
}

/// Regular files under `root` with their modes.
fn modes(root: &Path) -> BTreeMap<String, u32> {
    files(root)
        .into_iter()
        .map(|(path, (mode, _))| (path, mode))
        .collect()
}

/// Inode and mtime of every entry under `root`: a rewrite changes one of them.
fn identities(root: &Path) -> BTreeMap<PathBuf, (u64, i64, i64)> {
    let mut ids = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            ids.insert(entry.path(), (meta.ino(), meta.mtime(), meta.mtime_nsec()));
        }
    }
    ids
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read JSON")).expect("valid JSON")
}

#[test]
fn fresh_usc_install_writes_exactly_the_expected_files_and_modes() {
    let sandbox = Sandbox::new();
    sandbox.run(&["--profile", "usc"]);
    assert_eq!(modes(&sandbox.config()), expected_usc_files());

    let mut top: Vec<String> = std::fs::read_dir(sandbox.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, [".config", ".local"], "nothing else in the home");

    let listing = tree_listing(&sandbox.config());
    let has = |line: &str| listing.iter().any(|l| l == line);
    assert!(has("mosaic/fleet/agents/ 700"), "agent env dir is private");
    for dir in [
        "mosaic",
        "mosaic/fleet",
        "mosaic/tools/tmux",
        "systemd/user",
    ] {
        assert!(has(&format!("{dir}/ 755")), "{dir} is 0755");
    }
    let roster = std::fs::read(sandbox.config().join("mosaic/fleet/roster.yaml")).unwrap();
    let usc = std::fs::read(templates_dir().join("framework/fleet/examples/usc.yaml")).unwrap();
    assert_eq!(
        roster, usc,
        "the installed roster is the profile's own text"
    );
}

#[test]
fn receipt_records_tool_version_profile_and_every_file_as_on_disk() {
    let sandbox = Sandbox::new();
    sandbox.run(&["--profile", "usc"]);
    let receipt = read_json(&sandbox.state().join("receipt.json"));

    let version = stdout(&sandbox.command().arg("--version").output().unwrap());
    assert_eq!(receipt["tool"], "mosaic-install");
    assert_eq!(
        version.trim(),
        format!("mosaic-install {}", receipt["version"].as_str().unwrap())
    );
    let on_disk = files(&sandbox.config());
    let usc = std::fs::read(templates_dir().join("framework/fleet/examples/usc.yaml")).unwrap();
    let roster = std::fs::read(sandbox.config().join("mosaic/fleet/roster.yaml")).unwrap();
    assert_eq!(roster, usc);
    assert_eq!(receipt["profile"]["name"], "usc");
    assert_eq!(
        receipt["profile"]["sha256"],
        on_disk["mosaic/fleet/roster.yaml"].1.as_str()
    );

    let recorded: BTreeMap<String, (u32, String)> = receipt["files"]
        .as_array()
        .expect("files is a list")
        .iter()
        .map(|file| {
            let mode = u32::from_str_radix(file["mode"].as_str().unwrap(), 8).unwrap();
            let sha = file["sha256"].as_str().unwrap().to_owned();
            (file["path"].as_str().unwrap().to_owned(), (mode, sha))
        })
        .collect();
    assert_eq!(
        recorded, on_disk,
        "the receipt lists every file as it is on disk"
    );
    assert_eq!(modes(&sandbox.config()), expected_usc_files());
}

#[test]
fn second_identical_run_changes_nothing_and_says_so() {
    let sandbox = Sandbox::new();
    sandbox.run(&["--profile", "usc"]);
    // The lock file holds the pid of the last run: it is the installer's
    // mutex, not something it installs, so it is left out of the comparison.
    let lock = sandbox.state().join("lock");
    let snapshot = || {
        let mut ids = identities(sandbox.home());
        ids.remove(&lock);
        let listing: Vec<String> = tree_listing(sandbox.home())
            .into_iter()
            .filter(|line| !line.starts_with(".local/state/mosaic-install/lock "))
            .collect();
        (ids, listing)
    };
    let receipt = std::fs::read(sandbox.state().join("receipt.json")).unwrap();
    let before = snapshot();

    let out = stdout(&sandbox.run(&["--profile", "usc"]));
    assert!(out.contains("nothing to do"), "{out}");
    assert!(out.contains("0 created, 0 updated"), "{out}");
    assert_eq!(
        snapshot(),
        before,
        "no file was rewritten, created or removed"
    );
    assert_eq!(
        std::fs::read(sandbox.state().join("receipt.json")).unwrap(),
        receipt
    );
}

#[test]
fn dry_run_on_an_empty_home_writes_nothing_and_prints_each_action_with_a_diff() {
    let sandbox = Sandbox::new();
    let out = stdout(&sandbox.run(&["--profile", "usc", "--dry-run"]));
    assert!(
        tree_listing(sandbox.home()).is_empty(),
        "the home stays empty"
    );
    assert!(
        !sandbox.home().join(".local").exists(),
        "no state directory"
    );

    for rel in expected_usc_files().keys() {
        let path = sandbox.config().join(rel);
        let path = path.display();
        assert!(
            says(&out, "create", &path.to_string()),
            "no action for {path}:\n{out}"
        );
        assert!(
            out.contains(&format!("--- /dev/null\n+++ {path}\n")),
            "no diff for {path}"
        );
    }
    assert!(out.contains("+ExecStop=-tmux -L ${MOSAIC_TMUX_SOCKET} kill-session -t \"=%i\""));
    assert!(out.contains("dry run: nothing was written"), "{out}");
}

#[test]
fn dry_run_of_an_upgrade_shows_unified_diffs_and_writes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.run(&["--profile", "minimal"]);
    let before = tree_listing(sandbox.home());

    let out = stdout(&sandbox.run(&["--profile", "usc", "--dry-run"]));
    assert_eq!(
        tree_listing(sandbox.home()),
        before,
        "dry run wrote something"
    );
    let unit = sandbox
        .config()
        .join("systemd/user/mosaic-tmux-holder.service");
    let unit = unit.display();
    assert!(says(&out, "update", &unit.to_string()), "{out}");
    assert!(out.contains(&format!("--- {unit}\n+++ {unit}\n")), "{out}");
    assert!(out.contains("-# Managed by mosaic-install"), "{out}");
    assert!(out.contains("(profile minimal)"), "{out}");
    assert!(out.contains("+# Managed by mosaic-install"), "{out}");
    assert!(out.contains("(profile usc)"), "{out}");
    let env = sandbox
        .config()
        .join("mosaic/fleet/agents/usc-worker-1.env");
    assert!(
        out.contains(&format!("--- /dev/null\n+++ {}\n", env.display())),
        "{out}"
    );
}

#[test]
fn json_output_parses_and_lists_every_file_with_its_action() {
    let sandbox = Sandbox::new();
    let actions = |args: &[&str]| -> BTreeMap<String, String> {
        let out = sandbox.run(args);
        let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
        report["files"]
            .as_array()
            .expect("files is a list")
            .iter()
            .map(|f| {
                let path = Path::new(f["path"].as_str().unwrap());
                let rel = path.strip_prefix(sandbox.config()).unwrap();
                (
                    rel.display().to_string(),
                    f["action"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let expect = |action: &str| -> BTreeMap<String, String> {
        expected_usc_files()
            .into_keys()
            .map(|path| (path, action.to_owned()))
            .collect()
    };
    assert_eq!(
        actions(&["--profile", "usc", "--json", "--dry-run"]),
        expect("create")
    );
    assert_eq!(actions(&["--profile", "usc", "--json"]), expect("create"));
    assert_eq!(
        actions(&["--profile", "usc", "--json"]),
        expect("unchanged")
    );
}

#[test]
fn profiles_lists_the_three_with_descriptions_and_marks_minimal_default() {
    let sandbox = Sandbox::new();
    let out = stdout(&sandbox.run(&["profiles"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (line, name) in lines.iter().zip(["local-canary", "minimal", "usc"]) {
        assert!(line.starts_with(name), "{line}");
        let description = line[name.len()..].trim();
        assert!(description.len() > 20, "{name} has a description: {line}");
        assert_eq!(line.ends_with("(default)"), name == "minimal", "{line}");
    }

    let json: Value = serde_json::from_slice(&sandbox.run(&["profiles", "--json"]).stdout).unwrap();
    let listed: Vec<(&str, bool)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["default"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [("local-canary", false), ("minimal", true), ("usc", false)]
    );
}

#[test]
fn render_out_writes_the_same_bytes_and_modes_as_the_install() {
    let sandbox = Sandbox::new();
    sandbox.run(&["--profile", "usc"]);
    let rendered = TempHome::new();
    let out = rendered.path().join("tree");
    let out_arg = out.to_str().unwrap();
    sandbox.run(&["render", "--profile", "usc", "--out", out_arg]);
    let files_only = |root: &Path| -> Vec<String> {
        tree_listing(root)
            .into_iter()
            .filter(|line| !line.contains("/ "))
            .collect()
    };
    assert_eq!(files_only(&out), files_only(&sandbox.config()));
}
