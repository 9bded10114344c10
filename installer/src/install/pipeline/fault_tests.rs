//! Fault injection: the apply step fails after its k-th filesystem
//! operation, for every k from 1 to the number of operations a clean run
//! performs, and the whole home afterwards (config tree and installer state)
//! equals the home before, byte for byte and mode for mode.
//!
//! The installer runs in-process (a unit test: `Transaction::fail_after`
//! exists only under `cfg(test)`), the starting installs too. Each crash
//! point starts from a freshly built home: the same steps as the reference
//! run, in a new dir. (A real kill at every syscall is `cargo xtask crash`.)

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::install::pipeline::{install, InstallError, InstallOptions, InstallReport};
use crate::install::plan::Action;
use crate::shared::layout::Layout;
use crate::shared::transaction::ApplyError;
use mosaic_tests::{
    append, assert_same_tree, bundle_copy, copy_tree, fixtures_dir, tree_listing, TempHome,
};

/// Legacy detection lists the default tmux server's sessions: keep that
/// lookup inside a TMUX_TMPDIR of our own, set once for the whole process
/// before any test does anything else (no server is ever started there).
fn isolate_tmux() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mosaic-faults-tmux-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create TMUX_TMPDIR");
        std::env::set_var("TMUX_TMPDIR", &dir);
        std::env::remove_var("TMUX");
    });
}

fn options(home: &Path, profile: Option<&str>, bundle: Option<&Path>) -> InstallOptions {
    let mut opts =
        InstallOptions::new(Layout::for_home(home).expect("absolute home")).with_profile(profile);
    opts.bundle_dir = bundle.map(Path::to_path_buf);
    opts
}

/// A starting home and the install run against it.
struct Scenario {
    name: &'static str,
    setup: Box<dyn Fn(&Path)>,
    opts: Box<dyn Fn(&Path) -> InstallOptions>,
}

/// Run the scenario once cleanly to learn N, then crash it at 1..=N;
/// returns the clean run's report.
fn crash_points(scenario: &Scenario) -> InstallReport {
    let reference = TempHome::new();
    (scenario.setup)(reference.path());
    let report = install(&(scenario.opts)(reference.path()))
        .unwrap_or_else(|err| panic!("{}: the run without a fault failed: {err}", scenario.name));
    let total = report.operations;

    for k in 1..=total {
        let home = TempHome::new();
        (scenario.setup)(home.path());
        let before = tree_listing(home.path());
        let mut opts = (scenario.opts)(home.path());
        opts.fail_after = Some(k);
        let err = install(&opts)
            .err()
            .unwrap_or_else(|| panic!("{}: crash point {k}/{total} did not fail", scenario.name));
        assert!(
            matches!(&err, InstallError::Apply(tx) if matches!(*tx.failure, ApplyError::Injected(_))),
            "{}: crash point {k}/{total} failed for another reason: {err}",
            scenario.name
        );
        assert!(
            err.to_string().contains("nothing was changed"),
            "{}: crash point {k}: {err}",
            scenario.name
        );
        let what = format!(
            "{}: crash point {k}/{total} left the home changed",
            scenario.name
        );
        assert_same_tree(&before, &tree_listing(home.path()), &what);
    }

    // One past the last operation never fires: N is the whole run.
    let home = TempHome::new();
    (scenario.setup)(home.path());
    let mut opts = (scenario.opts)(home.path());
    opts.fail_after = Some(total + 1);
    let again = install(&opts).expect("a fault after the last operation never fires");
    assert_eq!(
        again.operations, total,
        "{}: runs are not repeatable",
        scenario.name
    );

    eprintln!(
        "{}: {total} crash points covered, the home restored byte for byte at each",
        scenario.name
    );
    report
}

/// The clean run took each of `actions` at least once, so its crash points
/// include undoing that kind of step.
fn assert_covers(report: &InstallReport, actions: &[Action]) {
    for action in actions {
        assert!(
            report.plan.count(*action) > 0,
            "no {action:?} in the scenario"
        );
    }
}

fn legacy_tree(layers: &'static [&'static str]) -> Box<dyn Fn(&Path)> {
    Box::new(move |home: &Path| {
        let mosaic = home.join(".config/mosaic");
        for layer in layers {
            copy_tree(&fixtures_dir().join("legacy-0.0.31").join(layer), &mosaic);
        }
        set_mode(&mosaic.join("private"), 0o700);
        set_mode(&mosaic.join("private/journal.md"), 0o600);
    })
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn fresh_install_is_undone_at_every_crash_point() {
    isolate_tmux();
    let report = crash_points(&Scenario {
        name: "fresh install (local-canary)",
        setup: Box::new(|_| {}),
        opts: Box::new(|home| options(home, Some("local-canary"), None)),
    });
    assert!(
        report.operations > 10,
        "only {} crash points",
        report.operations
    );
    assert_covers(&report, &[Action::Create]);
}

#[test]
fn legacy_upgrade_is_undone_at_every_crash_point() {
    isolate_tmux();
    // Pristine 0.0.31 script (replaced after a backup) and an adopted roster.
    let report = crash_points(&Scenario {
        name: "legacy 0.0.31 upgrade (pristine script, adopted roster)",
        setup: legacy_tree(&["base", "marker", "shipped", "adopted"]),
        opts: Box::new(|home| options(home, None, None)),
    });
    assert!(
        report.operations > 10,
        "only {} crash points",
        report.operations
    );
    assert_covers(&report, &[Action::Create, Action::Update]);
    // Edited script: kept, our version written beside it.
    let report = crash_points(&Scenario {
        name: "legacy 0.0.31 upgrade (edited script)",
        setup: legacy_tree(&["base", "marker", "edited"]),
        opts: Box::new(|home| options(home, Some("minimal"), None)),
    });
    assert!(
        report.operations > 10,
        "only {} crash points",
        report.operations
    );
    assert_covers(&report, &[Action::Create, Action::Conflict]);
}

#[test]
fn upgrade_of_an_install_is_undone_at_every_crash_point() {
    isolate_tmux();
    // The next bundle: new version (units change), a changed script, an
    // example no longer shipped; a new profile adds agents.
    let next = bundle_copy("0.2.0");
    let script = next
        .path()
        .join("framework/tools/fleet/start-agent-session.sh");
    append(&script, "# next generation\n");
    std::fs::remove_file(next.path().join("framework/fleet/examples/usc.yaml"))
        .expect("remove usc.yaml from the bundle copy");
    let bundle: PathBuf = next.path().to_path_buf();

    let report = crash_points(&Scenario {
        name: "upgrade of an install (new bundle and profile, one edited file)",
        setup: Box::new(|home| {
            install(&options(home, Some("minimal"), None)).expect("starting install");
            append(
                &home.join(".config/mosaic/tools/tmux/agent-send.sh"),
                "# the operator's edit\n",
            );
        }),
        opts: Box::new(move |home| options(home, Some("local-canary"), Some(&bundle))),
    });
    assert!(
        report.operations > 10,
        "only {} crash points",
        report.operations
    );
    assert_covers(
        &report,
        &[
            Action::Create,
            Action::Update,
            Action::Remove,
            Action::Conflict,
        ],
    );
}
