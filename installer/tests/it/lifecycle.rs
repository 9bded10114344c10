//! The life of an install (the real binary, temp homes): `status`,
//! `uninstall` and `rollback` round trips, symlink traps that must be refused
//! without touching anything, and concurrent runs against one lock.

use crate::support::mosaic_install;
use mosaic_tests::{json, text};
use std::path::Path;
use std::process::{Command, Output};

use mosaic_tests::{append, assert_same_tree, bundle_copy, tree_listing, TempHome, TmuxWorld};

const AGENT_SEND: &str = ".config/mosaic/tools/tmux/agent-send.sh";
const HOLDER_UNIT: &str = ".config/systemd/user/mosaic-tmux-holder.service";
const STATE: &str = ".local/state/mosaic-install";

fn cmd(world: &TmuxWorld, home: &Path, args: &[&str]) -> Command {
    let mut cmd = mosaic_install(home, world);
    cmd.arg("--home").arg(home).args(args);
    cmd
}

fn run(world: &TmuxWorld, home: &Path, args: &[&str]) -> Output {
    cmd(world, home, args).output().expect("run mosaic-install")
}

fn assert_ok(out: &Output) {
    mosaic_tests::assert_ok(out, "mosaic-install");
}

/// A rerun that changes nothing records nothing, whether it names the
/// installed profile again or reads the installed roster: only where the
/// roster was read from differs, and that is no state to roll back to.
#[test]
fn reruns_with_or_without_the_profile_record_no_generation() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    let first = json(&run(
        &world,
        h,
        &["--json", "--profile", "minimal", "--no-systemctl"],
    ));
    assert_eq!(first["generation"], 1, "{first:#}");

    for args in [
        &["--json", "--no-systemctl"][..],
        &["--json", "--profile", "minimal", "--no-systemctl"],
        &["--json", "--no-systemctl"],
    ] {
        let again = json(&run(&world, h, args));
        assert!(
            again["generation"].is_null(),
            "{args:?} recorded one: {again:#}"
        );
    }
    let generations: Vec<_> = std::fs::read_dir(h.join(STATE).join("generations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(generations, ["1"]);
}

#[test]
fn edit_status_uninstall_reinstall_rollback_round_trip() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&run(&world, h, &["--profile", "minimal"]));

    // Edit a managed file: status reports it and exits 1.
    let mine = append(&h.join(AGENT_SEND), "# operator: my tweak\n");
    let out = run(&world, h, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let edited_line = format!("modified by you           {}", h.join(AGENT_SEND).display());
    assert!(
        text(&out.stdout).contains(&edited_line),
        "{}",
        text(&out.stdout)
    );

    // Uninstall --purge keeps (and lists) the edit, removes everything else.
    let out = run(&world, h, &["uninstall", "--purge"]);
    assert_ok(&out);
    let kept = format!(
        "kept         {} (changed by you)",
        h.join(AGENT_SEND).display()
    );
    assert!(text(&out.stdout).contains(&kept), "{}", text(&out.stdout));
    let files: Vec<String> = tree_listing(h)
        .into_iter()
        .filter(|line| !line.split(' ').next().unwrap().ends_with('/'))
        .collect();
    assert_eq!(files.len(), 1, "only the edited file is left: {files:#?}");
    assert!(files[0].starts_with(&format!("{AGENT_SEND} ")), "{files:?}");
    assert_eq!(std::fs::read(h.join(AGENT_SEND)).unwrap(), mine);
    for gone in [".config/systemd/user", ".config/mosaic/fleet", STATE] {
        assert!(!h.join(gone).exists(), "{gone} was left behind");
    }

    // Reinstall (the edit is kept again, ours waits beside it), then note
    // the tree and receipt of that generation.
    let out = run(&world, h, &["--json", "--profile", "minimal"]);
    assert_ok(&out);
    let first = json(&out)["generation"].as_u64().expect("generation");
    assert_eq!(std::fs::read(h.join(AGENT_SEND)).unwrap(), mine);
    assert!(h.join(format!("{AGENT_SEND}.mosaic-new")).is_file());
    let first_listing = tree_listing(h);
    let first_receipt = std::fs::read(h.join(STATE).join("receipt.json")).unwrap();

    // Another profile from the next bundle: a second generation.
    let next = bundle_copy("0.2.0");
    append(
        &next
            .path()
            .join("framework/tools/fleet/start-agent-session.sh"),
        "# changed in 0.2.0\n",
    );
    std::fs::remove_file(next.path().join("framework/fleet/examples/usc.yaml")).unwrap();
    let bundle = next.path().display().to_string();
    let out = run(
        &world,
        h,
        &["--json", "--profile", "local-canary", "--bundle", &bundle],
    );
    assert_ok(&out);
    let second = json(&out)["generation"].as_u64().expect("generation");
    assert!(second > first);
    assert!(!h.join(".config/mosaic/fleet/examples/usc.yaml").exists());

    // Rollback restores the first generation exactly. Excluded:
    // backups/<second>/ (the undone
    // generation's journal and backups, and the rollback's own backups of
    // what it replaced, kept for inspection).
    let out = run(&world, h, &["rollback"]);
    assert_ok(&out);
    assert!(
        text(&out.stdout).contains(&format!(
            "rolled back generation {second} to generation {first}"
        )),
        "{}",
        text(&out.stdout)
    );
    let excluded = |line: &String| {
        let path = line.split(' ').next().unwrap();
        path.starts_with(&format!("{STATE}/backups/{second}/"))
    };
    let keep = |listing: Vec<String>| -> Vec<String> {
        listing.into_iter().filter(|l| !excluded(l)).collect()
    };
    assert_same_tree(
        &keep(first_listing),
        &keep(tree_listing(h)),
        "rollback did not restore the first generation's tree",
    );
    assert_eq!(
        std::fs::read(h.join(STATE).join("receipt.json")).unwrap(),
        first_receipt,
        "rollback did not restore the first generation's receipt"
    );

    // Nothing before the first generation: a clear refusal.
    let out = run(&world, h, &["rollback"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nothing to roll back to"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn status_json_has_one_entry_per_installed_file() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&run(&world, h, &["--profile", "minimal"]));

    let out = run(&world, h, &["--json", "status"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "clean install: {}",
        text(&out.stdout)
    );
    let status = json(&out);
    let keys: Vec<&String> = status.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        [
            "agents",
            "files",
            "generation",
            "profile",
            "systemd",
            "version"
        ]
    );
    assert_eq!(
        status["agents"],
        serde_json::json!([{"name": "canary", "in_roster": true, "installed": true}])
    );
    assert!(
        status["systemd"]
            .as_str()
            .unwrap()
            .starts_with("no user manager answered"),
        "{status:#}"
    );
    assert_eq!(status["generation"], 1);
    assert_eq!(status["profile"], "minimal");
    assert!(status["version"].is_string());
    let files = status["files"].as_array().expect("files array");
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.join(STATE).join("receipt.json")).unwrap())
            .unwrap();
    assert_eq!(files.len(), receipt["files"].as_array().unwrap().len());
    for file in files {
        let path = Path::new(file["path"].as_str().expect("path"));
        assert!(path.starts_with(h.join(".config")), "{path:?}");
        assert!(["managed", "config"].contains(&file["ownership"].as_str().unwrap()));
        assert_eq!(file["state"], "ok");
        assert!(file.get("waiting").is_none(), "{file}");
    }

    // An edit with our version waiting beside it, and a deleted file.
    append(&h.join(HOLDER_UNIT), "# operator: my tweak\n");
    assert_ok(&run(&world, h, &["--profile", "minimal"]));
    std::fs::remove_file(h.join(".config/mosaic/fleet/examples/usc.yaml")).unwrap();
    let out = run(&world, h, &["--json", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let status = json(&out);
    let entry = |rel: &str| {
        let path = h.join(rel).display().to_string();
        let files = status["files"].as_array().unwrap();
        files
            .iter()
            .find(|f| f["path"] == path.as_str())
            .cloned()
            .expect(rel)
    };
    let unit = entry(HOLDER_UNIT);
    assert_eq!(unit["state"], "modified");
    assert_eq!(
        unit["waiting"],
        h.join(format!("{HOLDER_UNIT}.mosaic-new"))
            .display()
            .to_string()
    );
    assert_eq!(
        entry(".config/mosaic/fleet/examples/usc.yaml")["state"],
        "missing"
    );
}

#[test]
fn uninstall_dry_run_changes_nothing_and_predicts_the_real_run() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&run(&world, h, &["--profile", "minimal"]));
    append(&h.join(AGENT_SEND), "# operator: my tweak\n");
    let before = tree_listing(h);

    let out = run(&world, h, &["--json", "uninstall", "--dry-run"]);
    assert_ok(&out);
    assert_same_tree(
        &before,
        &tree_listing(h),
        "uninstall --dry-run changed the home",
    );
    let planned = json(&out);
    assert_eq!(planned["dry_run"], true);
    let kept = planned["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{planned:#}");
    assert_eq!(kept[0][0], h.join(AGENT_SEND).display().to_string());

    let out = run(&world, h, &["--json", "uninstall"]);
    assert_ok(&out);
    let done = json(&out);
    for key in ["removed", "removed_dirs", "kept"] {
        let sorted = |v: &serde_json::Value| {
            let mut items: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.to_string())
                .collect();
            items.sort();
            items
        };
        assert_eq!(
            sorted(&planned[key]),
            sorted(&done[key]),
            "uninstall --dry-run announced other `{key}` than the real run did"
        );
    }
}

/// The home and `outside` both unchanged after a refused install, and the
/// error names the link.
fn assert_refused(world: &TmuxWorld, home: &Path, link: &Path, outside: &Path) {
    let before = (tree_listing(home), tree_listing(outside));
    let out = run(world, home, &["--profile", "minimal"]);
    assert!(!out.status.success(), "install through {link:?} succeeded");
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&link.display().to_string()), "{stderr}");
    assert!(stderr.contains("leads outside"), "{stderr}");
    assert_same_tree(&before.0, &tree_listing(home), "the home changed");
    assert_same_tree(
        &before.1,
        &tree_listing(outside),
        "the outside target changed",
    );
}

#[test]
fn tools_directory_symlinked_out_of_the_home_is_refused() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("someone-elses-tool.sh"), "#!/bin/sh\n").unwrap();
    let mosaic = home.path().join(".config/mosaic");
    std::fs::create_dir_all(&mosaic).unwrap();
    let link = mosaic.join("tools");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    assert_refused(&world, home.path(), &link, outside.path());
}

#[test]
fn unit_symlinked_to_a_file_out_of_the_home_is_refused() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let etc = tempfile::tempdir().unwrap();
    let target = etc.path().join("mosaic-tmux-holder.service");
    std::fs::write(&target, "[Unit]\nDescription=not yours\n").unwrap();
    let link = home.path().join(HOLDER_UNIT);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_refused(&world, home.path(), &link, etc.path());
}

#[test]
fn unit_symlinked_to_etc_hostname_is_refused() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let hostname = Path::new("/etc/hostname");
    if !hostname.is_file() {
        eprintln!("skipped: /etc/hostname does not exist here");
        return;
    }
    let link = home.path().join(HOLDER_UNIT);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(hostname, &link).unwrap();
    let before = std::fs::read(hostname).unwrap();
    let mode = std::fs::metadata(hostname).unwrap().permissions();
    // The machine's own file is at stake: a dry run must refuse first.
    let out = run(&world, home.path(), &["--dry-run", "--profile", "minimal"]);
    assert!(
        !out.status.success(),
        "a dry run did not refuse the link to /etc/hostname; not running the real install"
    );
    let listing = tree_listing(home.path());
    let out = run(&world, home.path(), &["--profile", "minimal"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&link.display().to_string()),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(hostname).unwrap(), before);
    assert_eq!(std::fs::metadata(hostname).unwrap().permissions(), mode);
    assert_same_tree(&listing, &tree_listing(home.path()), "the home changed");
}

/// Hold the install lock like a running install would: an flock on the
/// home directory, which names our pid in /proc/locks.
fn hold_lock(home: &Path) -> std::fs::File {
    let dir = std::fs::File::open(home).unwrap();
    dir.try_lock().expect("take the lock");
    dir
}

#[test]
fn second_install_fails_fast_naming_the_lock_holder() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&run(&world, h, &["--profile", "minimal"]));
    let lock = hold_lock(h);
    let before = tree_listing(h);

    for args in [
        &["--profile", "local-canary"][..],
        &["uninstall"],
        &["rollback"],
    ] {
        let out = run(&world, h, args);
        assert!(!out.status.success(), "{args:?} ran under a held lock");
        let stderr = text(&out.stderr);
        let holder = format!(
            "another mosaic-install or mosaic-fleet is running (pid {})",
            std::process::id()
        );
        assert!(stderr.contains(&holder), "{args:?}: {stderr}");
        assert_same_tree(
            &before,
            &tree_listing(h),
            "a locked-out run changed the home",
        );
    }
    drop(lock);
    assert_ok(&run(&world, h, &["--profile", "local-canary"]));
}

/// Two installs started at once, on fresh homes (both create the state
/// directory) and on existing installs, with different profiles: each run
/// either wins the lock or fails with the lock message, and the result is
/// one consistent install.
#[test]
fn racing_installs_leave_one_consistent_install() {
    const ROUNDS: usize = 24;
    let world = TmuxWorld::new();
    let mut locked_out = 0;
    for round in 0..ROUNDS {
        let home = TempHome::new();
        let h = home.path();
        if round % 2 == 1 {
            assert_ok(&run(&world, h, &["--profile", "minimal"]));
        }
        let children: Vec<_> = ["usc", "local-canary"]
            .iter()
            .map(|profile| {
                cmd(&world, h, &["--profile", profile])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn mosaic-install")
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect();
        assert!(
            outputs.iter().any(|o| o.status.success()),
            "round {round}: neither install succeeded"
        );
        for out in outputs.iter().filter(|o| !o.status.success()) {
            locked_out += 1;
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains("another mosaic-install or mosaic-fleet is running (pid "),
                "round {round}: the losing run failed with another error: {stderr}"
            );
        }
        let out = run(&world, h, &["status"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            text(&out.stdout)
        );
    }
    eprintln!(
        "racing installs: {locked_out} of {ROUNDS} rounds had a run locked out; in the others both ran, one after the other"
    );
}

/// `status`, `uninstall` and `rollback` on a home where nothing was
/// installed: each says so, exits 1, and leaves the home exactly as it was
/// (no lock file or state directory created, no unit stopped).
#[test]
fn lifecycle_commands_refuse_an_uninstalled_home_without_writing() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    std::fs::create_dir_all(home.path().join(".config/mosaic")).unwrap();
    std::fs::write(home.path().join(".config/mosaic/SOUL.md"), "mine\n").unwrap();
    let before = tree_listing(home.path());
    for args in [
        &["status"][..],
        &["uninstall"],
        &["uninstall", "--dry-run"],
        &["rollback"],
    ] {
        let out = run(&world, home.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("nothing is installed here: no receipt at")
                && stderr.contains("run mosaic-install to install"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            tree_listing(home.path()),
            before,
            "{args:?} changed the home"
        );
    }
}

/// `uninstall --no-systemctl` tells the whole story: the units it would
/// stop and disable and the commands to run (the agents keep running from
/// the removed unit files until then), what it removed and kept, and every
/// path left behind with how to remove it. The text is pinned.
#[test]
fn uninstall_without_systemctl_tells_the_whole_story() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&run(&world, h, &["--profile", "local-canary"]));
    append(&h.join(AGENT_SEND), "# operator: my tweak\n");
    std::fs::write(
        h.join(".config/mosaic/fleet/agents/worker-1.local.env"),
        "ANTHROPIC_API_KEY=\"sk-mine\"\n",
    )
    .unwrap();

    let out = run(&world, h, &["uninstall", "--no-systemctl"]);
    assert_ok(&out);
    let text = text(&out.stdout).replace(&h.display().to_string(), "[HOME]");
    crate::support::snapshots()
        .bind(|| insta::assert_snapshot!("lifecycle__uninstall_no_systemctl", text));
    assert!(h.join(".config/mosaic/fleet/roster.yaml").is_file());
    assert!(h.join(STATE).join("generations").is_dir());
    assert!(!h.join(STATE).join("receipt.json").exists());
}
