//! Living beside a real Mosaic install (the real `mosaic-install` binary,
//! temp homes, `tests/fixtures/legacy-0.0.31/`): its markers are read, not
//! written; its preserved set (`SOUL.md`, `USER.md`, `TOOLS.md`, `*.local`,
//! `credentials`) and markers stay byte- and mode-identical through install,
//! upgrade, rollback and uninstall; a bundle that would write one of them is
//! refused; and after a simulated `mosaic update` (a real `rsync --delete`
//! in Mosaic's "keep" mode) `status` names each file Mosaic replaced or
//! removed, and the next install restores ours without a conflict.

use crate::support::install_in as run;
use mosaic_tests::stdout;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mosaic_tests::{
    append, bundle_copy, copy_tree, fixtures_dir, require_tool, templates_dir, tree_listing,
    TempHome, TmuxWorld,
};

const FLEET_SCRIPT: &str = ".config/mosaic/tools/fleet/start-agent-session.sh";
const SEND_MESSAGE: &str = ".config/mosaic/tools/tmux/send-message.sh";
const AGENT_SEND: &str = ".config/mosaic/tools/tmux/agent-send.sh";
const TMUX_README: &str = ".config/mosaic/tools/tmux/README.md";
const HOLDER_UNIT: &str = ".config/systemd/user/mosaic-tmux-holder.service";

/// Mosaic's own files in the fixture tree: never ours to touch.
const MOSAICS: [&str; 8] = [
    "SOUL.md",
    "USER.md",
    "TOOLS.md",
    "guides/house-rules.local",
    "credentials/",
    "credentials/gitea.token",
    ".framework-version",
    ".install-manifest.json",
];

fn fixture(rel: &str) -> PathBuf {
    fixtures_dir().join("legacy-0.0.31").join(rel)
}

/// A real 0.0.31 host: the operator's tree with Mosaic's markers (the
/// manifest 0600, as `install.sh` leaves it) and the CLI in `~/.npm-global`.
fn mosaic_home() -> TempHome {
    let home = TempHome::new();
    let mosaic = home.path().join(".config/mosaic");
    for layer in ["base", "marker"] {
        copy_tree(&fixture(layer), &mosaic);
    }
    set_mode(&mosaic.join(".install-manifest.json"), 0o600);
    set_mode(&mosaic.join("credentials"), 0o700);
    set_mode(&mosaic.join("credentials/gitea.token"), 0o600);
    copy_tree(&fixture("npm-prefix"), &home.path().join(".npm-global"));
    home
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The listing lines (path, mode, sha256) of Mosaic's own files.
fn mosaics_files(home: &Path) -> Vec<String> {
    let listing = tree_listing(&home.join(".config/mosaic"));
    let lines: Vec<String> = listing
        .into_iter()
        .filter(|line| MOSAICS.iter().any(|m| line.starts_with(&format!("{m} "))))
        .collect();
    assert_eq!(lines.len(), MOSAICS.len(), "fixture incomplete: {lines:#?}");
    lines
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "mosaic-install failed ({}):\n{}\n{}",
        out.status,
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

fn template(rel: &str) -> Vec<u8> {
    std::fs::read(templates_dir().join(rel)).expect("read template")
}

#[test]
fn a_real_0031_install_is_recognised_by_its_markers() {
    let world = TmuxWorld::new();
    let home = mosaic_home();
    let h = home.path();

    let report: serde_json::Value =
        serde_json::from_str(&ok(run(&world, h, &["--json", "--dry-run"]))).unwrap();
    let legacy = &report["legacy"];
    assert_eq!(legacy["version"], "0.0.31");
    assert_eq!(legacy["markers"]["framework_schema"], "2");
    assert_eq!(legacy["markers"]["manifest"]["cli_version"], "0.0.31");
    assert_eq!(
        legacy["markers"]["manifest"]["installed_at"],
        "2026-05-14T09:12:44.318Z"
    );
    assert_eq!(legacy["markers"]["manifest"]["mutations"], 2);
    assert_eq!(legacy["markers"]["agents_md"], true);
    assert_eq!(legacy["markers"]["cli"]["version"], "0.0.31");
    // The CLI's bin directory comes first on every agent pane's PATH.
    let npm_bin = h.join(".npm-global/bin").display().to_string();
    assert_eq!(report["runtime_path"]["dirs"][0]["dir"], npm_bin.as_str());

    let text = ok(run(&world, h, &["--dry-run"]));
    assert!(
        text.contains("Mosaic 0.0.31 (CLI 0.0.31, framework schema 2)"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "agents' runtime PATH, first: {npm_bin} (~/.npm-global/bin)"
        )),
        "{text}"
    );
}

#[test]
fn mosaics_files_survive_install_upgrade_rollback_and_uninstall() {
    let world = TmuxWorld::new();
    let home = mosaic_home();
    let h = home.path();
    let before = mosaics_files(h);
    let check = |step: &str| {
        assert_eq!(mosaics_files(h), before, "after {step}");
    };

    ok(run(&world, h, &["--profile", "minimal"]));
    check("install");
    let next = bundle_copy("0.2.0");
    append(
        &next
            .path()
            .join("framework/tools/fleet/start-agent-session.sh"),
        "# changed in 0.2.0\n",
    );
    let bundle = next.path().display().to_string();
    ok(run(
        &world,
        h,
        &["--profile", "local-canary", "--bundle", &bundle],
    ));
    check("upgrade");
    ok(run(&world, h, &["--profile", "usc", "--force"]));
    check("install --force");
    ok(run(&world, h, &["rollback"]));
    check("rollback");
    ok(run(&world, h, &["rollback"]));
    check("second rollback");
    ok(run(&world, h, &["uninstall", "--no-systemctl"]));
    check("uninstall");
    assert!(h.join(".config/mosaic/AGENTS.md").is_file());
}

#[test]
fn a_bundle_that_would_write_a_preserved_file_is_refused() {
    let world = TmuxWorld::new();
    let home = mosaic_home();
    let h = home.path();
    for (file, why) in [
        ("SOUL.md", "one of Mosaic's preserved files"),
        ("fleet/team.local", "a *.local file, which Mosaic preserves"),
        (".framework-version", "one of Mosaic's install markers"),
    ] {
        let bad = bundle_copy("0.2.0");
        let path = bad.path().join("framework").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "ours?\n").unwrap();
        let before = tree_listing(h);
        let bundle = bad.path().display().to_string();
        let out = run(&world, h, &["--bundle", &bundle]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = format!(
            "cannot render bundle file framework/{file}: it would be installed as mosaic/{file}, {why}"
        );
        assert!(stderr.contains(&message), "{stderr}");
        assert_eq!(tree_listing(h), before, "{file}: nothing may change");
    }
}

/// The framework tree `mosaic update` syncs from: the fixture, with
/// Mosaic's own (the 0.0.31) copy of `send-message.sh`.
fn mosaic_framework() -> tempfile::TempDir {
    let tree = tempfile::tempdir().expect("create the framework tree");
    copy_tree(&fixture("mosaic-framework"), tree.path());
    copy_tree(&fixture("shipped"), tree.path());
    tree
}

/// `mosaic update` in "keep" mode: the framework tree synced over the
/// Mosaic tree with `--delete`, sparing only what Mosaic preserves.
fn mosaic_update(home: &Path) {
    let framework = mosaic_framework();
    let mut rsync = Command::new("rsync");
    rsync.args(["-a", "--delete"]);
    for keep in [
        "/SOUL.md",
        "/USER.md",
        "/TOOLS.md",
        "*.local",
        "/credentials",
        "/fleet/*.yaml",
        "/fleet/agents",
        "/fleet/run",
        "/fleet/backlog",
        "/.install-manifest.json",
    ] {
        rsync.arg(format!("--exclude={keep}"));
    }
    let out = rsync
        .arg(format!("{}/", framework.path().display()))
        .arg(format!("{}/", home.join(".config/mosaic").display()))
        .output()
        .expect("run rsync");
    assert!(out.status.success(), "rsync failed: {out:?}");
}

#[test]
fn after_mosaic_update_status_names_each_file_and_install_restores_ours() {
    if !require_tool(
        "rsync",
        "simulates `mosaic update`, which is an rsync --delete",
    ) {
        return;
    }
    let world = TmuxWorld::new();
    let home = mosaic_home();
    let h = home.path();
    let mosaics = mosaics_files(h);
    ok(run(&world, h, &["--profile", "minimal"]));
    let roster = std::fs::read(h.join(".config/mosaic/fleet/roster.yaml")).unwrap();
    let unit_edit = append(&h.join(HOLDER_UNIT), "# operator: my tweak\n");

    mosaic_update(h);
    assert_eq!(
        std::fs::read(h.join(SEND_MESSAGE)).unwrap(),
        std::fs::read(fixture("shipped/tools/tmux/send-message.sh")).unwrap()
    );
    assert!(!h.join(FLEET_SCRIPT).exists());

    let out = run(&world, h, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    let line = |state: &str, rel: &str| format!("  {state:<25} {}", h.join(rel).display());
    for expected in [
        format!(
            "{} (Mosaic 0.0.31; mosaic-install restores ours)",
            line("replaced by Mosaic's copy", SEND_MESSAGE)
        ),
        format!(
            "{} (mosaic-install restores it)",
            line("removed", FLEET_SCRIPT)
        ),
        format!(
            "{} (mosaic-install restores it)",
            line("removed", AGENT_SEND)
        ),
        line("modified by you", TMUX_README),
        line("modified by you", HOLDER_UNIT),
        line("ok", ".config/mosaic/fleet/roster.yaml"),
        line("ok", ".config/mosaic/fleet/agents/canary.env"),
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "no line `{expected}` in:\n{text}"
        );
    }
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&run(&world, h, &["--json", "status"]))).unwrap();
    let entry = |rel: &str| {
        let path = h.join(rel).display().to_string();
        let files = status["files"].as_array().unwrap();
        files
            .iter()
            .find(|f| f["path"] == path.as_str())
            .cloned()
            .unwrap()
    };
    assert_eq!(entry(SEND_MESSAGE)["state"], "replaced");
    assert_eq!(entry(SEND_MESSAGE)["replaced_by"], "Mosaic 0.0.31");
    assert_eq!(entry(FLEET_SCRIPT)["state"], "missing");
    assert_eq!(entry(TMUX_README)["state"], "modified");

    // Reinstall: ours back where Mosaic replaced or removed it, no conflict
    // for those; what else changed stays as it is, ours waiting beside it.
    let report: serde_json::Value = serde_json::from_str(&ok(run(&world, h, &["--json"]))).unwrap();
    let action = |rel: &str| {
        let path = h.join(rel).display().to_string();
        let files = report["files"].as_array().unwrap();
        let file = files.iter().find(|f| f["path"] == path.as_str()).unwrap();
        (
            file["action"].as_str().unwrap().to_owned(),
            file["reason"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(
        action(SEND_MESSAGE),
        (
            "update".into(),
            "replaced by Mosaic's copy (Mosaic 0.0.31); ours restored".into()
        )
    );
    assert_eq!(
        action(FLEET_SCRIPT),
        (
            "create".into(),
            "removed since mosaic-install wrote it; restored".into()
        )
    );
    assert_eq!(action(TMUX_README).0, "conflict");
    assert_eq!(action(HOLDER_UNIT).0, "conflict");
    for (rel, source) in [
        (SEND_MESSAGE, "framework/tools/tmux/send-message.sh"),
        (AGENT_SEND, "framework/tools/tmux/agent-send.sh"),
        (FLEET_SCRIPT, "framework/tools/fleet/start-agent-session.sh"),
    ] {
        assert_eq!(
            std::fs::read(h.join(rel)).unwrap(),
            template(source),
            "{rel}"
        );
    }
    assert_eq!(
        std::fs::read(h.join(TMUX_README)).unwrap(),
        std::fs::read(fixture("mosaic-framework/tools/tmux/README.md")).unwrap()
    );
    assert_eq!(std::fs::read(h.join(HOLDER_UNIT)).unwrap(), unit_edit);
    assert_eq!(
        std::fs::read(h.join(".config/mosaic/fleet/roster.yaml")).unwrap(),
        roster
    );
    assert_eq!(mosaics_files(h), mosaics);

    let text = stdout(&run(&world, h, &["status"]));
    let not_ok: Vec<&str> = text
        .lines()
        .take_while(|l| *l != "agents:")
        .filter(|l| l.starts_with("  ") && !l.starts_with("  ok "))
        .collect();
    assert_eq!(
        not_ok.len(),
        4,
        "only the two edits and ours beside them:\n{text}"
    );
}

#[test]
fn known_hashes_adds_mosaics_copies_of_our_files_once() {
    let table_dir = tempfile::tempdir().unwrap();
    let table = table_dir.path().join("known-hashes.tsv");
    let shipped =
        mosaic_tests::workspace_root().join("installer/src/install/legacy/known-hashes.tsv");
    std::fs::copy(&shipped, &table).unwrap();
    let before = std::fs::read_to_string(&table).unwrap();
    let known_hashes = |dir: &Path| {
        Command::new(mosaic_tests::xtask())
            .arg("known-hashes")
            .arg(dir)
            .args(["--release", "0.0.31", "--table"])
            .arg(&table)
            .output()
            .expect("run xtask known-hashes")
    };
    let framework = mosaic_framework();

    let first = stdout(&known_hashes(framework.path()));
    assert!(
        first.contains("Mosaic 0.0.31 has 2 of our files: 1 new hash(es) added"),
        "{first}"
    );
    assert!(
        first.contains("1 already known, 0 identical to ours"),
        "{first}"
    );
    let readme = std::fs::read(fixture("mosaic-framework/tools/tmux/README.md")).unwrap();
    let row = format!(
        "mosaic/tools/tmux/README.md\t{}\tMosaic 0.0.31\n",
        mosaic_tests::sha256_hex(&readme)
    );
    assert_eq!(std::fs::read_to_string(&table).unwrap(), before + &row);

    let again = stdout(&known_hashes(framework.path()));
    assert!(again.contains("0 new hash(es) added"), "{again}");
    assert!(again.contains("2 already known"), "{again}");

    let wrong = known_hashes(&fixture("base/guides"));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("holds none of the files we install"));
}
