//! Upgrades with `mosaic-install` (the real binary, temp homes): Mosaic 0.0.31
//! trees (`tests/fixtures/legacy-0.0.31/`, one variant per layer list), the
//! next generation of our own bundle (`--bundle` copy of `templates/`), the
//! config-file rules for rosters and agent env files, and `--force`.
//!
//! The promise checked everywhere: no byte or mode the operator wrote
//! changes, unless it is a provably pristine shipped copy or `--force` says so
//! (and then a backup holds it).

use crate::support::install_in as run;
use mosaic_tests::stdout;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use mosaic_tests::{
    append, bundle_copy, copy_tree, fixtures_dir, require_tool, templates_dir, tree_listing,
    TempHome, TmuxWorld,
};

const SEND_MESSAGE: &str = ".config/mosaic/tools/tmux/send-message.sh";
const AGENT_SEND: &str = ".config/mosaic/tools/tmux/agent-send.sh";
const HOLDER_UNIT: &str = ".config/systemd/user/mosaic-tmux-holder.service";
const STATE: &str = ".local/state/mosaic-install";

fn assert_ok(out: &Output) {
    mosaic_tests::assert_ok(out, "mosaic-install");
}

/// `--json` output of a run that must succeed.
fn json(out: &Output) -> serde_json::Value {
    assert_ok(out);
    mosaic_tests::json(out)
}

/// A home whose `~/.config/mosaic/` is the given fixture layers, with the
/// modes git cannot keep: a 0750 tree, a 0700 directory and 0600 files
/// (Mosaic's manifest among them).
fn legacy_home(layers: &[&str]) -> TempHome {
    let home = TempHome::new();
    let mosaic = home.path().join(".config/mosaic");
    for layer in layers {
        copy_tree(&fixtures_dir().join("legacy-0.0.31").join(layer), &mosaic);
    }
    set_mode(&mosaic, 0o750);
    set_mode(&mosaic.join("private"), 0o700);
    set_mode(&mosaic.join("private/journal.md"), 0o600);
    if layers.contains(&"marker") {
        set_mode(&mosaic.join(".install-manifest.json"), 0o600);
    }
    home
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Listing lines by path (`dir/` for directories).
fn by_path(listing: &[String]) -> BTreeMap<String, String> {
    listing
        .iter()
        .map(|line| (line.split(' ').next().unwrap().to_owned(), line.clone()))
        .collect()
}

/// Config-relative paths of the current receipt.
fn receipt_paths(home: &Path) -> Vec<String> {
    let bytes = std::fs::read(home.join(STATE).join("receipt.json")).expect("read receipt");
    let receipt: serde_json::Value = serde_json::from_slice(&bytes).expect("receipt is JSON");
    receipt["files"]
        .as_array()
        .expect("receipt files")
        .iter()
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect()
}

/// Every pre-existing path is byte- and mode-identical except `upgraded`;
/// every new path is an installed file (or its directory, or its
/// `.mosaic-new`) or installer state.
fn assert_operator_tree_kept(home: &Path, before: &[String], upgraded: &[&str]) {
    let after = tree_listing(home);
    let (old, new) = (by_path(before), by_path(&after));
    for (path, line) in &old {
        if upgraded.contains(&path.as_str()) {
            continue;
        }
        assert_eq!(new.get(path), Some(line), "operator path {path} changed");
    }
    let installed: Vec<String> = receipt_paths(home)
        .into_iter()
        .map(|p| format!(".config/{p}"))
        .collect();
    let allowed = |path: &str| {
        path.starts_with(STATE)
            || (path.ends_with('/') && STATE.starts_with(path))
            || installed.iter().any(|p| {
                path == p
                    || path.strip_suffix(".mosaic-new") == Some(p.as_str())
                    || (path.ends_with('/') && p.starts_with(path))
            })
    };
    let unexpected: Vec<&String> = new
        .keys()
        .filter(|p| !old.contains_key(*p) && !allowed(p))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected new paths: {unexpected:?}"
    );
    // New directories: 0755, the private fleet/agents/ 0700.
    for (path, line) in new.iter().filter(|(p, _)| !old.contains_key(*p)) {
        if path.ends_with('/') && path.starts_with(".config/") {
            let want = if path.ends_with("fleet/agents/") {
                "700"
            } else {
                "755"
            };
            assert!(line.ends_with(&format!(" {want}")), "new directory: {line}");
        }
    }
    for path in &installed {
        assert!(home.join(path).is_file(), "{path} was not installed");
    }
}

fn template(rel: &str) -> Vec<u8> {
    std::fs::read(templates_dir().join(rel)).expect("read template")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn legacy_pristine_script_is_upgraded_and_everything_else_kept() {
    let world = TmuxWorld::new();
    let home = legacy_home(&["base", "marker", "shipped"]);
    // Mosaic's CLI where `npm i -g` with a user prefix puts it.
    let prefix = fixtures_dir().join("legacy-0.0.31/npm-prefix");
    copy_tree(&prefix, &home.path().join(".npm-global"));
    // A session of the operator's on the (test world's) default server.
    let session = require_tool("tmux", "lists the operator's default tmux server")
        && world
            .tmux("default")
            .args(["new-session", "-d", "-s", "operator", "sh"])
            .status()
            .expect("run tmux")
            .success();
    let before = tree_listing(home.path());

    let out = run(&world, home.path(), &["--profile", "minimal"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("(Mosaic 0.0.31 (CLI 0.0.31, framework schema 2), "),
        "{text}"
    );
    assert!(
        text.contains("pristine copy of the Mosaic 0.0.31 version"),
        "{text}"
    );
    assert_operator_tree_kept(home.path(), &before, &[SEND_MESSAGE]);
    let script = home.path().join(SEND_MESSAGE);
    assert_eq!(
        std::fs::read(&script).unwrap(),
        template("framework/tools/tmux/send-message.sh")
    );
    assert_eq!(mode(&script), 0o755);
    assert!(!home
        .path()
        .join(format!("{SEND_MESSAGE}.mosaic-new"))
        .exists());
    if session {
        assert!(text.contains("(left alone): operator"), "{text}");
        assert_eq!(world.sessions("default"), ["operator"]);
    }
}

#[test]
fn legacy_edited_script_is_kept_and_reported_as_a_conflict() {
    let world = TmuxWorld::new();
    let home = legacy_home(&["base", "marker", "edited"]);
    let before = tree_listing(home.path());

    let report = json(&run(
        &world,
        home.path(),
        &["--json", "--profile", "minimal"],
    ));
    assert_eq!(report["legacy"]["version"], "0.0.31");
    let script = home.path().join(SEND_MESSAGE);
    let conflicts: Vec<&serde_json::Value> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "conflict")
        .collect();
    assert_eq!(conflicts.len(), 1, "{report:#}");
    assert_eq!(conflicts[0]["path"], script.display().to_string());
    let beside = home.path().join(format!("{SEND_MESSAGE}.mosaic-new"));
    assert_eq!(conflicts[0]["new_version"], beside.display().to_string());

    assert_operator_tree_kept(home.path(), &before, &[]);
    assert_eq!(
        std::fs::read(&beside).unwrap(),
        template("framework/tools/tmux/send-message.sh")
    );
}

#[test]
fn legacy_roster_and_env_files_are_adopted() {
    let world = TmuxWorld::new();
    let home = legacy_home(&["base", "marker", "adopted"]);
    let before = tree_listing(home.path());

    // No --profile: the installed roster is the profile. The adopted env
    // file differs from what the roster generates: kept, with how to move
    // its settings into the operator's own .local.env.
    let out = run(&world, home.path(), &[]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("Move your own settings into canary.local.env"),
        "{}",
        stdout(&out)
    );
    assert_operator_tree_kept(home.path(), &before, &[]);
    // The roster's other agent gets its env file, from the roster's socket.
    let backend = home.path().join(".config/mosaic/fleet/agents/backend.env");
    let env = std::fs::read_to_string(&backend).expect("backend.env written");
    assert!(env.contains("MOSAIC_TMUX_SOCKET=\"dana-fleet\""), "{env}");
    assert_eq!(mode(&backend), 0o600);
}

#[test]
fn legacy_tree_without_marker_is_an_unknown_version() {
    let world = TmuxWorld::new();
    let home = legacy_home(&["base"]);
    let before = tree_listing(home.path());
    let out = run(&world, home.path(), &["--profile", "minimal"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("unknown version"), "{}", stdout(&out));
    assert_operator_tree_kept(home.path(), &before, &[]);
}

#[test]
fn next_bundle_updates_unchanged_files_and_keeps_edited_ones() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    assert_ok(&run(&world, home.path(), &["--profile", "minimal"]));
    let h = home.path();
    let edited_unit = append(&h.join(HOLDER_UNIT), "# operator: my tweak\n");
    let edited_script = append(&h.join(AGENT_SEND), "# operator: my tweak\n");

    let next = bundle_copy("0.2.0");
    let b = next.path();
    let new_script = append(
        &b.join("framework/tools/fleet/start-agent-session.sh"),
        "# changed in 0.2.0\n",
    );
    append(
        &b.join("systemd/user/mosaic-agent@.service.j2"),
        "# changed in 0.2.0\n",
    );
    std::fs::remove_file(b.join("framework/fleet/examples/usc.yaml")).unwrap();
    std::fs::remove_file(b.join("framework/tools/tmux/agent-send.sh")).unwrap();

    let bundle = b.display().to_string();
    let report = json(&run(
        &world,
        h,
        &["--json", "--profile", "minimal", "--bundle", &bundle],
    ));
    assert_eq!(report["bundle_version"], "0.2.0");
    let action = |rel: &str| {
        let path = h.join(rel).display().to_string();
        let files = report["files"].as_array().unwrap();
        let file = files.iter().find(|f| f["path"] == path.as_str());
        file.map(|f| f["action"].as_str().unwrap().to_owned())
    };
    // Unchanged since install: updated.
    let script = h.join(".config/mosaic/tools/fleet/start-agent-session.sh");
    assert_eq!(std::fs::read(&script).unwrap(), new_script);
    assert_eq!(mode(&script), 0o755);
    let unit = std::fs::read_to_string(h.join(".config/systemd/user/mosaic-agent@.service"));
    let unit = unit.unwrap();
    assert!(unit.contains("mosaic-install 0.2.0") && unit.contains("# changed in 0.2.0"));
    // Edited: kept, ours beside it, a conflict.
    assert_eq!(action(HOLDER_UNIT).as_deref(), Some("conflict"));
    assert_eq!(std::fs::read(h.join(HOLDER_UNIT)).unwrap(), edited_unit);
    let beside = std::fs::read_to_string(h.join(format!("{HOLDER_UNIT}.mosaic-new"))).unwrap();
    assert!(beside.contains("mosaic-install 0.2.0"), "{beside}");
    // No longer shipped: removed when unchanged, kept when edited.
    let usc = ".config/mosaic/fleet/examples/usc.yaml";
    assert_eq!(action(usc).as_deref(), Some("remove"));
    assert!(!h.join(usc).exists());
    assert_eq!(action(AGENT_SEND).as_deref(), Some("keep-modified"));
    assert_eq!(std::fs::read(h.join(AGENT_SEND)).unwrap(), edited_script);

    // status: the edited unit and its waiting .mosaic-new are drift.
    let out = run(&world, h, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("waiting"), "{}", stdout(&out));
}

/// `--profile B` over an install of A whose roster the operator never
/// edited: B becomes the roster (A's backed up), env files follow B (new
/// agents get theirs, removed agents' unchanged ones go), an edited env file
/// is kept with ours beside it, and the roster, the receipt and the env
/// files all name the same agents.
#[test]
fn a_new_profile_replaces_an_unedited_roster_and_env_files_follow_it() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    let agents = h.join(".config/mosaic/fleet/agents");
    let roster = h.join(".config/mosaic/fleet/roster.yaml");
    assert_ok(&run(&world, h, &["--profile", "local-canary"]));
    let old_roster = std::fs::read(&roster).unwrap();
    let worker = append(
        &agents.join("worker-1.env"),
        "MOSAIC_AGENT_MODEL=\"opus\"\n",
    );

    let report = json(&run(&world, h, &["--json", "--profile", "minimal"]));

    assert_eq!(
        std::fs::read(&roster).unwrap(),
        template("framework/fleet/examples/minimal.yaml")
    );
    assert_eq!(report["agents"], serde_json::json!(["canary"]));
    assert_eq!(
        report["removed_agents"],
        serde_json::json!(["worker-1", "reviewer-1"])
    );
    let generation = report["generation"].as_u64().unwrap();
    let backups = h.join(STATE).join("backups").join(generation.to_string());
    assert!(
        files_under(&backups)
            .iter()
            .any(|f| std::fs::read(f).unwrap() == old_roster),
        "the replaced roster is backed up"
    );
    // The unchanged env file of a removed agent goes; the edited one stays
    // (it is the operator's), reported.
    assert!(!agents.join("reviewer-1.env").exists());
    assert_eq!(std::fs::read(agents.join("worker-1.env")).unwrap(), worker);
    let action = |name: &str| {
        let path = agents.join(name).display().to_string();
        report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path.as_str())
            .map(|f| f["action"].as_str().unwrap().to_owned())
    };
    assert_eq!(action("reviewer-1.env").as_deref(), Some("remove"));
    assert_eq!(action("worker-1.env").as_deref(), Some("keep-modified"));
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.join(STATE).join("receipt.json")).unwrap())
            .unwrap();
    assert_eq!(receipt["agents"], serde_json::json!(["canary"]));
}

/// The operator edited the roster: `--profile B` keeps theirs in effect
/// (env files keep following it) and writes B beside it as
/// `roster.yaml.mosaic-new`, never half of each; an edited env file is kept
/// with the generated one beside it and a hint about `.local.env`;
/// `--force` then takes B after a backup.
#[test]
fn an_edited_roster_stays_in_effect_and_the_profile_waits_beside_it() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    let agents = h.join(".config/mosaic/fleet/agents");
    let roster = h.join(".config/mosaic/fleet/roster.yaml");
    assert_ok(&run(&world, h, &["--profile", "minimal"]));
    let canary = append(&agents.join("canary.env"), "MOSAIC_AGENT_MODEL=\"opus\"\n");
    let my_roster = append(&roster, "# mine now\n");

    let out = run(&world, h, &["--json", "--profile", "local-canary"]);
    assert_ok(&out);
    let report = json(&out);
    assert_eq!(std::fs::read(&roster).unwrap(), my_roster);
    assert_eq!(
        std::fs::read(h.join(".config/mosaic/fleet/roster.yaml.mosaic-new")).unwrap(),
        template("framework/fleet/examples/local-canary.yaml")
    );
    assert_eq!(report["agents"], serde_json::json!(["canary"]));
    for agent in ["worker-1", "reviewer-1"] {
        assert!(
            !agents.join(format!("{agent}.env")).exists(),
            "{agent}: half of the new profile"
        );
    }
    assert_eq!(std::fs::read(agents.join("canary.env")).unwrap(), canary);
    assert!(agents.join("canary.env.mosaic-new").is_file());
    let reasons: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "conflict")
        .map(|f| f["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("canary.local.env")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("your roster stays in effect")),
        "{reasons:?}"
    );

    // An identical rerun changes nothing and records no generation.
    let again = json(&run(&world, h, &["--json", "--profile", "local-canary"]));
    assert!(again["generation"].is_null(), "{again:#}");

    let forced = json(&run(
        &world,
        h,
        &["--json", "--profile", "local-canary", "--force"],
    ));
    assert_eq!(
        std::fs::read(&roster).unwrap(),
        template("framework/fleet/examples/local-canary.yaml")
    );
    assert_eq!(
        forced["agents"],
        serde_json::json!(["canary", "worker-1", "reviewer-1"])
    );
    assert!(agents.join("worker-1.env").is_file());
}

#[test]
fn force_overwrites_an_edited_managed_file_after_a_backup() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&run(&world, h, &["--profile", "minimal"]));
    let mine = append(&h.join(AGENT_SEND), "# operator: my tweak\n");

    let report = json(&run(
        &world,
        h,
        &["--json", "--profile", "minimal", "--force"],
    ));
    let path = h.join(AGENT_SEND).display().to_string();
    let file = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path.as_str())
        .expect("agent-send.sh in the report");
    assert_eq!(file["action"], "overwrite");
    assert_eq!(
        std::fs::read(h.join(AGENT_SEND)).unwrap(),
        template("framework/tools/tmux/agent-send.sh")
    );
    assert!(!h.join(format!("{AGENT_SEND}.mosaic-new")).exists());

    let generation = report["generation"]
        .as_u64()
        .expect("a generation was written");
    let backups = h.join(STATE).join("backups").join(generation.to_string());
    let holds_mine = files_under(&backups)
        .iter()
        .any(|f| std::fs::read(f).unwrap() == mine);
    assert!(
        holds_mine,
        "no backup under {} holds the operator's bytes:\n{}",
        backups.display(),
        tree_listing(&backups).join("\n")
    );
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
