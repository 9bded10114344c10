//! Where an install goes when `--home` is absent: `$HOME`, then
//! `$XDG_CONFIG_HOME` and `$XDG_STATE_HOME`, and Mosaic's `$MOSAIC_HOME` for
//! the Mosaic tree; and `--home` winning over all of them. Each case is compared with a reference `--home` install (whose
//! exact file set `install.rs` checks).

use crate::support::mosaic_install;
use std::path::Path;
use std::process::Command;

use mosaic_tests::{tree_listing, TempHome, TmuxWorld};

/// Regular files under `root` with their modes (contents differ when units
/// spell a moved config dir out).
fn files_and_modes(root: &Path) -> Vec<String> {
    tree_listing(root)
        .into_iter()
        .filter(|line| !line.contains("/ "))
        .map(|line| line.rsplit_once(' ').expect("path mode sha").0.to_owned())
        .collect()
}

/// The `.config` tree of a plain `--home` install of usc.
fn reference_install(world: &TmuxWorld) -> TempHome {
    let home = TempHome::new();
    succeed(
        mosaic_install(home.path(), world)
            .arg("--home")
            .arg(home.path())
            .args(["--profile", "usc"]),
    );
    home
}

fn succeed(cmd: &mut Command) {
    let out = cmd.output().expect("run mosaic-install");
    assert!(out.status.success(), "mosaic-install failed: {out:?}");
}

#[test]
fn home_is_honoured_when_home_flag_is_absent() {
    let world = TmuxWorld::new();
    let reference = reference_install(&world);
    let home = TempHome::new();
    succeed(mosaic_install(home.path(), &world).args(["--profile", "usc"]));
    assert_eq!(
        tree_listing(&home.path().join(".config")),
        tree_listing(&reference.path().join(".config"))
    );
    let receipt = ".local/state/mosaic-install/receipt.json";
    assert!(home.path().join(receipt).is_file());
}

#[test]
fn xdg_config_and_state_homes_are_honoured_when_home_flag_is_absent() {
    let world = TmuxWorld::new();
    let reference = reference_install(&world);
    let home = TempHome::new();
    let config = home.path().join("xdg-config");
    let state = home.path().join("xdg-state");
    succeed(
        mosaic_install(home.path(), &world)
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_STATE_HOME", &state)
            .args(["--profile", "usc"]),
    );
    assert_eq!(
        files_and_modes(&config),
        files_and_modes(&reference.path().join(".config"))
    );
    assert!(state.join("mosaic-install/receipt.json").is_file());
    assert!(
        !home.path().join(".config").exists(),
        "nothing in ~/.config"
    );
    assert!(!home.path().join(".local").exists(), "nothing in ~/.local");
    let unit = std::fs::read_to_string(config.join("systemd/user/mosaic-agent@.service")).unwrap();
    let script = config.join("mosaic/tools/fleet/start-agent-session.sh");
    assert!(
        unit.contains(&format!("ExecStart={} ", script.display())),
        "the unit names the moved Mosaic tree:\n{unit}"
    );
}

#[test]
fn home_flag_wins_over_home_and_xdg_variables() {
    let world = TmuxWorld::new();
    let reference = reference_install(&world);
    let home = TempHome::new();
    let elsewhere = TempHome::new();
    succeed(
        mosaic_install(home.path(), &world)
            .env("XDG_CONFIG_HOME", home.path().join("xdg-config"))
            .env("XDG_STATE_HOME", home.path().join("xdg-state"))
            .env("MOSAIC_HOME", home.path().join("mosaic-home"))
            .arg("--home")
            .arg(elsewhere.path())
            .args(["--profile", "usc"]),
    );
    assert!(
        tree_listing(home.path()).is_empty(),
        "$HOME, XDG and MOSAIC_HOME untouched"
    );
    assert_eq!(
        tree_listing(&elsewhere.path().join(".config")),
        tree_listing(&reference.path().join(".config"))
    );
}

#[test]
fn mosaic_home_moves_the_mosaic_tree_and_the_units_follow() {
    let world = TmuxWorld::new();
    let reference = reference_install(&world);
    let home = TempHome::new();
    let tree = home.path().join("srv/mosaic");
    let with_mosaic_home = |args: &[&str]| {
        let mut cmd = mosaic_install(home.path(), &world);
        cmd.env("MOSAIC_HOME", &tree).args(args);
        cmd.output().expect("run mosaic-install")
    };
    let out = with_mosaic_home(&["--profile", "usc"]);
    assert!(out.status.success(), "{out:?}");

    assert_eq!(
        files_and_modes(&tree),
        files_and_modes(&reference.path().join(".config/mosaic"))
    );
    let config = home.path().join(".config");
    assert!(
        !config.join("mosaic").exists(),
        "nothing in ~/.config/mosaic"
    );
    let unit = std::fs::read_to_string(config.join("systemd/user/mosaic-agent@.service")).unwrap();
    for line in [
        format!("Environment=MOSAIC_HOME={}", tree.display()),
        format!("EnvironmentFile=-{}/fleet/agents/%i.env", tree.display()),
        format!(
            "ExecStart={}/tools/fleet/start-agent-session.sh --supervise --pidfile %t/mosaic-agent-%i.pid %i",
            tree.display()
        ),
    ] {
        assert!(unit.lines().any(|l| l == line), "no `{line}` in:\n{unit}");
    }

    // status and uninstall find the files where MOSAIC_HOME put them.
    let status = with_mosaic_home(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    let out = with_mosaic_home(&["uninstall", "--purge", "--no-systemctl"]);
    assert!(out.status.success(), "{out:?}");
    assert!(!tree.exists(), "the tree it created is gone again");
    assert!(tree_listing(&config).iter().all(|l| l.ends_with("/ 755")));
}

#[test]
fn a_relative_mosaic_home_is_refused_and_nothing_is_written() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let out = mosaic_install(home.path(), &world)
        .env("MOSAIC_HOME", "mosaic")
        .args(["--profile", "minimal"])
        .output()
        .expect("run mosaic-install");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MOSAIC_HOME=mosaic is not an absolute path"),
        "{stderr}"
    );
    assert!(tree_listing(home.path()).is_empty());
}
