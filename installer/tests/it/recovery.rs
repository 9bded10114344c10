//! Crash safety through the real binaries: a run killed with SIGKILL
//! (strace's syscall injection) is undone or completed by the next command,
//! which says which; an undo that cannot finish keeps every backup and names
//! each file still to restore; the state directory cannot be turned into a
//! way to write outside the home (planted links, another user's or a
//! world-writable directory), for every command; roster edits never lose
//! one another; identical reruns record no generation, and the generation
//! an unresolved conflict needs is never pruned; rollback keeps an env file
//! the operator changed since.

use crate::support::install_in as install;
use mosaic_tests::{assert_ok, json, text};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use mosaic_tests::{append, assert_same_tree, require_tool, tree_listing, TempHome, TmuxWorld};

const STATE: &str = ".local/state/mosaic-install";
const AGENT_SEND: &str = ".config/mosaic/tools/tmux/agent-send.sh";

fn fleet_cmd(world: &TmuxWorld, home: &Path, args: &[&str]) -> Command {
    let mut cmd = world.command(crate::support::PRODUCT.fleet);
    cmd.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", world.tmpdir())
        .arg("--home")
        .arg(home)
        .args(args);
    cmd
}

fn fleet(world: &TmuxWorld, home: &Path, args: &[&str]) -> Output {
    fleet_cmd(world, home, args)
        .output()
        .expect("run mosaic-fleet")
}

/// `mosaic-install --home HOME ARGS` under `strace -f -qq STRACE`.
fn under_strace(world: &TmuxWorld, home: &Path, strace: &[String], args: &[&str]) -> Output {
    Command::new("strace")
        .args(["-f", "-qq"])
        .args(strace)
        .arg(crate::support::PRODUCT.install)
        .arg("--home")
        .arg(home)
        .args(args)
        .env("TMUX_TMPDIR", world.tmpdir())
        .output()
        .expect("run strace")
}

/// Run `mosaic-install --home HOME ARGS` killed by SIGKILL at the `n`-th
/// call of `syscall`.
fn killed_install(world: &TmuxWorld, home: &Path, syscall: &str, n: usize, args: &[&str]) {
    let strace = [
        "-o".to_owned(),
        "/dev/null".into(),
        "-e".into(),
        format!("trace={syscall}"),
        "-e".into(),
        format!("inject={syscall}:signal=KILL:when={n}"),
    ];
    let out = under_strace(world, home, &strace, args);
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.signal() == Some(9) || out.status.code() == Some(137),
        "the run was not killed ({}): {}",
        out.status,
        text(&out.stderr)
    );
}

/// How often a clean `mosaic-install ARGS` calls `syscall`.
fn calls(world: &TmuxWorld, home: &Path, syscall: &str, args: &[&str]) -> usize {
    let summary = home.with_extension("strace");
    let strace = [
        "-c".to_owned(),
        "-o".into(),
        summary.display().to_string(),
        "-e".into(),
        format!("trace={syscall}"),
    ];
    assert_ok(&under_strace(world, home, &strace, args), "the counted run");
    let text = std::fs::read_to_string(&summary).unwrap();
    let _ = std::fs::remove_file(&summary);
    *mosaic_tests::strace_call_counts(&text)
        .get(syscall)
        .expect("the syscall in strace's summary")
}

#[test]
fn a_killed_upgrade_is_undone_or_completed_by_the_next_command_which_says_so() {
    if !require_tool("strace", "kill injection at a syscall") {
        return;
    }
    let world = TmuxWorld::new();
    let args = ["--no-systemctl", "--profile", "usc"];

    // The reference: the home before, and after a clean upgrade.
    let reference = TempHome::new();
    assert_ok(
        &install(&world, reference.path(), &["--profile", "minimal"]),
        "install",
    );
    let renames = calls(&world, reference.path(), "rename", &args);

    // Killed at the first rename (mid-transaction): undone.
    let home = TempHome::new();
    assert_ok(
        &install(&world, home.path(), &["--profile", "minimal"]),
        "install",
    );
    let before = tree_listing(home.path());
    killed_install(&world, home.path(), "rename", 2, &args);
    assert!(home.path().join(STATE).join("transaction.wal").is_file());
    let status = install(&world, home.path(), &["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stdout));
    assert!(
        text(&status.stderr).contains("an interrupted `install` (generation 2) was undone"),
        "{}",
        text(&status.stderr)
    );
    assert_same_tree(&before, &tree_listing(home.path()), "the undo left a mix");

    // Killed at the last rename (after the commit point): completed.
    killed_install(&world, home.path(), "rename", renames, &args);
    assert!(home.path().join(STATE).join("transaction.done").is_file());
    let rollback = install(&world, home.path(), &["rollback"]);
    assert_ok(&rollback, "rollback");
    assert!(
        text(&rollback.stderr)
            .contains("an interrupted `install` (generation 2) had committed and was completed"),
        "{}",
        text(&rollback.stderr)
    );
    assert!(
        text(&rollback.stdout).contains("rolled back generation 2 to generation 1"),
        "{}",
        text(&rollback.stdout)
    );
    assert_same_tree(
        &before
            .iter()
            .filter(|l| !l.starts_with(&format!("{STATE}/backups")))
            .cloned()
            .collect::<Vec<_>>(),
        &tree_listing(home.path())
            .into_iter()
            .filter(|l| !l.starts_with(&format!("{STATE}/backups")))
            .collect::<Vec<_>>(),
        "rolling back the completed upgrade did not give generation 1 back",
    );
}

/// An undo that cannot finish (the backup of a replaced file is gone):
/// the command fails, names the file and where its bytes were kept, keeps
/// the journal and every other backup, and the next command tries again.
#[test]
fn an_undo_that_cannot_finish_keeps_every_backup_and_names_what_is_left() {
    if !require_tool("strace", "kill injection at a syscall") {
        return;
    }
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&install(&world, h, &["--profile", "minimal"]), "install");
    append(&h.join(AGENT_SEND), "# my tweak\n");
    let args = ["--no-systemctl", "--profile", "usc", "--force"];
    let copy = copy_home(h);
    let renames = calls(&world, &copy, "rename", &args);
    std::fs::remove_dir_all(&copy).unwrap();
    killed_install(&world, h, "rename", renames - 2, &args);
    let journal = h.join(STATE).join("transaction.wal");
    assert!(journal.is_file(), "killed before the commit point");
    // Lose the backup of the operator's edit.
    let backups = h.join(STATE).join("backups/2/files");
    let edit_backup = std::fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-agent-send.sh"))
        .expect("the edit was backed up");
    std::fs::remove_file(&edit_backup).unwrap();
    let roster = h.join(".config/mosaic/fleet/roster.yaml");
    let roster_before =
        std::fs::read(mosaic_tests::templates_dir().join("framework/fleet/examples/minimal.yaml"))
            .unwrap();

    let out = install(&world, h, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("could not be undone"), "{stderr}");
    assert!(
        stderr.contains(&h.join(AGENT_SEND).display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains(&edit_backup.display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("every backup is kept"), "{stderr}");
    assert!(journal.is_file(), "the journal stays for a retry");
    assert!(stderr.contains("move the journal aside"), "{stderr}");
    // What could be undone was: the roster is back (its backup renamed
    // into place), and the backups of the run are still there.
    assert_eq!(std::fs::read(&roster).unwrap(), roster_before);
    assert!(backups.is_dir());
    // Still refused (nothing else runs over a half-undone run) until fixed.
    let again = install(&world, h, &["--profile", "minimal"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("could not be undone"));
}

fn copy_home(home: &Path) -> std::path::PathBuf {
    let copy = home.with_extension("copy");
    let status = Command::new("cp")
        .arg("-a")
        .arg(home)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    copy
}

/// Each way to use the state directory for a write outside the home is
/// refused by every command, naming the path and the fix, and nothing
/// changes (the victim least of all).
#[test]
fn state_directory_traps_are_refused_by_every_command() {
    let world = TmuxWorld::new();
    let victim_dir = TempHome::new();
    let victim = victim_dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();

    type Trap = (&'static str, fn(&Path, &Path), &'static str);
    let traps: [Trap; 4] = [
        (
            "a lock symlink",
            |home, victim| symlink(victim, home.join(STATE).join("lock")).unwrap(),
            "is a symlink, and the installer's state never holds links",
        ),
        (
            "a backups symlink",
            |home, victim| {
                let backups = home.join(STATE).join("backups");
                std::fs::remove_dir_all(&backups).ok();
                symlink(victim.parent().unwrap(), backups).unwrap()
            },
            "is a symlink, and the installer's state never holds links",
        ),
        (
            "a state directory leading outside the home",
            |home, victim| {
                let state = home.join(".local/state");
                let unique = home.file_name().unwrap().to_string_lossy().into_owned();
                let outside = victim.parent().unwrap().join(unique);
                std::fs::rename(&state, &outside).unwrap();
                symlink(&outside, &state).unwrap()
            },
            "which leads outside",
        ),
        (
            "a world-writable state directory",
            |home, _| {
                std::fs::set_permissions(home.join(STATE), std::fs::Permissions::from_mode(0o777))
                    .unwrap()
            },
            "is writable by other users",
        ),
    ];
    let commands: [&[&str]; 7] = [
        &["--profile", "local-canary"],
        &["status"],
        &["uninstall"],
        &["rollback"],
        &["agent", "add", "extra", "--runtime", "pi"],
        &["agent", "remove", "worker-1"],
        &["fleet", "init", "--profile", "usc", "--force"],
    ];
    for (name, plant, message) in traps {
        for args in commands {
            let home = TempHome::new();
            let h = home.path();
            assert_ok(&install(&world, h, &["--profile", "minimal"]), "install");
            assert_ok(
                &install(&world, h, &["--profile", "local-canary"]),
                "upgrade",
            );
            plant(h, &victim);
            let before = tree_listing(h);
            let victim_before = tree_listing(victim_dir.path());
            let out = if args[0] == "agent" || args[0] == "fleet" {
                fleet(&world, h, args)
            } else {
                install(&world, h, args)
            };
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "{name}: {args:?} ran: {stderr}");
            assert!(stderr.contains(message), "{name}: {args:?}: {stderr}");
            assert_same_tree(&before, &tree_listing(h), &format!("{name}: {args:?}"));
            assert_same_tree(
                &victim_before,
                &tree_listing(victim_dir.path()),
                &format!("{name}: {args:?} wrote outside the home"),
            );
        }
    }
}

#[test]
fn under_umask_000_the_state_directory_is_private() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" --home \"$1\" --no-systemctl --profile minimal")
        .arg(crate::support::PRODUCT.install)
        .arg(h)
        .env("TMUX_TMPDIR", world.tmpdir())
        .output()
        .unwrap();
    assert_ok(&out, "install under umask 000");
    for dir in [
        ".local",
        ".local/state",
        STATE,
        &format!("{STATE}/backups/1"),
    ] {
        let mode = std::fs::metadata(h.join(dir)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{dir}");
    }
    let receipt = std::fs::metadata(h.join(STATE).join("receipt.json")).unwrap();
    assert_eq!(receipt.permissions().mode() & 0o777, 0o600);
}

/// Overlapping `agent add`s: each either lands (roster, env file and
/// receipt agree) or fails naming the lock; none reports success and goes
/// missing.
#[test]
fn overlapping_agent_adds_never_lose_one() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&install(&world, h, &["--profile", "minimal"]), "install");
    let names: Vec<String> = (0..6).map(|i| format!("extra-{i}")).collect();
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            fleet_cmd(&world, h, &["agent", "add", name, "--runtime", "pi"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let roster = std::fs::read_to_string(h.join(".config/mosaic/fleet/roster.yaml")).unwrap();
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.join(STATE).join("receipt.json")).unwrap())
            .unwrap();
    let mut landed = 0;
    for (name, out) in names.iter().zip(&outputs) {
        let env = h.join(format!(".config/mosaic/fleet/agents/{name}.env"));
        let in_receipt = receipt["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == name.as_str());
        if out.status.success() {
            landed += 1;
            assert!(
                roster.contains(&format!("- name: {name}\n")),
                "{name} missing:\n{roster}"
            );
            assert!(
                env.is_file() && in_receipt,
                "{name}: env file or receipt missing"
            );
        } else {
            assert!(
                text(&out.stderr).contains("holds the install lock"),
                "{name}: {}",
                text(&out.stderr)
            );
            assert!(!roster.contains(&format!("- name: {name}\n")));
            assert!(!env.exists() && !in_receipt);
        }
    }
    assert!(landed >= 1);
    eprintln!(
        "overlapping adds: {landed} of {} landed, the rest were told the lock was held",
        names.len()
    );
}

/// With an unresolved conflict, identical reruns record nothing; many
/// changing runs later (with `--keep 2`), the upgrade that met the edit
/// can still be rolled back: its generation is protected from pruning.
#[test]
fn reruns_over_a_conflict_record_nothing_and_keep_the_upgrade_it_needs() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&install(&world, h, &["--profile", "minimal"]), "install");
    let pre_upgrade = std::fs::read(h.join(STATE).join("receipt.json")).unwrap();
    append(&h.join(".config/mosaic/fleet/roster.yaml"), "# mine\n");
    let first = json(&install(&world, h, &["--json", "--profile", "usc"]));
    let conflict = first["generation"].as_u64().unwrap();
    for _ in 0..7 {
        let again = json(&install(&world, h, &["--json", "--profile", "usc"]));
        assert!(
            again["generation"].is_null(),
            "an identical rerun recorded a generation: {again:#}"
        );
    }
    // Changing runs that leave the conflict unresolved: a shipped file
    // deleted by hand is written again, a new generation each time.
    let readme = h.join(".config/mosaic/tools/tmux/README.md");
    for _ in 0..7 {
        std::fs::remove_file(&readme).unwrap();
        let run = json(&install(
            &world,
            h,
            &["--json", "--keep", "2", "--profile", "usc"],
        ));
        assert!(run["generation"].as_u64().unwrap() > conflict);
    }
    let generations = h.join(STATE).join("generations");
    assert!(
        generations.join(conflict.to_string()).is_dir(),
        "the conflict's generation was pruned"
    );
    assert!(
        !generations.join("1").exists(),
        "older generations are still pruned"
    );
    let mut steps = 0;
    while std::fs::read(h.join(STATE).join("receipt.json")).unwrap() != pre_upgrade {
        assert_ok(&install(&world, h, &["rollback"]), "rollback");
        steps += 1;
        assert!(
            steps <= 8,
            "rollback never reached the pre-upgrade generation"
        );
    }
    assert_eq!(steps, 8);
}

/// rollback keeps an env file the operator changed after the generation
/// being undone (it may hold a key) and says so.
#[test]
fn rollback_keeps_an_env_file_changed_since_and_reports_it() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let h = home.path();
    assert_ok(&install(&world, h, &["--profile", "minimal"]), "install");
    assert_ok(
        &install(&world, h, &["--profile", "local-canary"]),
        "upgrade",
    );
    let env = h.join(".config/mosaic/fleet/agents/worker-1.env");
    let mine = append(&env, "ANTHROPIC_API_KEY=\"sk-mine\"\n");

    let out = install(&world, h, &["--json", "rollback"]);
    assert_ok(&out, "rollback");
    let report = json(&out);
    assert_eq!(std::fs::read(&env).unwrap(), mine);
    assert_eq!(
        report["kept_config"],
        serde_json::json!([env.display().to_string()])
    );
    let text_out = install(&world, h, &["status"]);
    assert!(!text(&text_out.stdout).is_empty());
}
