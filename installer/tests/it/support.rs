//! Fixtures shared by several areas of the integration tests, and the
//! product's binaries as cargo built them for this test binary.

use std::path::Path;
use std::process::Command;

use mosaic_tests::{Product, TmuxWorld};

pub(crate) mod fleet;
pub(crate) mod pack;
pub(crate) mod scripts;

/// `mosaic-install` and `mosaic-fleet`, built by cargo for this test binary.
pub(crate) const PRODUCT: Product = Product {
    install: env!("CARGO_BIN_EXE_mosaic-install"),
    fleet: env!("CARGO_BIN_EXE_mosaic-fleet"),
};

/// `mosaic-install` kept away from the machine's real state: `HOME` is
/// `home` (so even a run without `--home` stays inside it), the XDG base
/// directory variables, `MOSAIC_HOME` and `MOSAIC_RUNTIME_BIN` are unset,
/// `XDG_RUNTIME_DIR` is an empty directory of `world` and the session bus
/// is unset (so no `systemctl --user` reaches a real manager), and
/// `TMUX_TMPDIR` is `world`'s (so the read-only listing of the "default"
/// tmux server only ever sees that world).
pub(crate) fn mosaic_install(home: &Path, world: &TmuxWorld) -> Command {
    let runtime = world.tmpdir().join("xdg-runtime");
    std::fs::create_dir_all(&runtime).expect("create XDG_RUNTIME_DIR");
    let mut cmd = world.command(PRODUCT.install);
    cmd.env("HOME", home)
        .env("XDG_RUNTIME_DIR", runtime)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("MOSAIC_HOME")
        .env_remove("MOSAIC_RUNTIME_BIN")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    cmd
}

/// `mosaic-install --home HOME ARGS`, kept away from the machine as
/// [`mosaic_install`] is, run to its end.
pub(crate) fn install_in(world: &TmuxWorld, home: &Path, args: &[&str]) -> std::process::Output {
    mosaic_install(home, world)
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("run mosaic-install")
}

/// The fleet of a systemd sandbox test, driving this build's binaries.
pub(crate) fn sandbox_fleet() -> mosaic_tests::live::LiveFleet {
    mosaic_tests::sandbox::fleet(PRODUCT)
}

/// The line `mosaic-fleet agent reset` sends an agent after its restart, as
/// the agent reads it.
pub(crate) const KICK_START: &str = "You were restarted with a fresh conversation by `mosaic-fleet agent reset`. Wait for your next instruction.";

/// Insta settings for every snapshot of the workspace: one folder,
/// `tests/snapshots/`, names given in full by the assertion (`<area>__<what>`).
pub(crate) fn snapshots() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// Quotes, `$`, backticks, backslashes, unicode (wide too), over 4 KiB.
pub(crate) fn tricky_message() -> String {
    let piece = r#"it's "quoted" $HOME ${PATH} `date` $(id) \n \\ ünïcødé ✓ 日本語 100% "#;
    let mut text = String::new();
    while text.len() < 4096 {
        text.push_str(piece);
    }
    text.push_str("the end");
    text
}
