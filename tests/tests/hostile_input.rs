//! Input crafted to break out of where it is written (issue 9): a roster
//! file name that would become unit directives, the same label planted in
//! an older receipt, and a roster with a byte-order mark, which is no attack
//! and must simply install.

use std::path::Path;
use std::process::Output;

use mosaic_tests::{mosaic_install, templates_dir, tree_listing, TempHome, TmuxWorld};
use serde_json::Value;

/// The tester's file name: each line after the first would be read by
/// systemd as a directive if the label were written unescaped.
const HOSTILE_STEM: &str = "fleet\n[Service]\nExecStartPre=touch PWNED\n#";
const UNITS: [&str; 2] = [
    ".config/systemd/user/mosaic-tmux-holder.service",
    ".config/systemd/user/mosaic-agent@.service",
];
const RECEIPT: &str = ".local/state/mosaic-install/receipt.json";

fn install(home: &TempHome, world: &TmuxWorld, args: &[&str]) -> Output {
    mosaic_install(home.path(), world)
        .arg("--home")
        .arg(home.path())
        .args(args)
        .output()
        .expect("run mosaic-install")
}

fn minimal_roster() -> String {
    std::fs::read_to_string(templates_dir().join("framework/fleet/examples/minimal.yaml")).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every line of every unit that mentions `PWNED`, unless it is a comment.
fn directives_from_the_label(home: &Path) -> Vec<String> {
    UNITS
        .iter()
        .flat_map(|unit| {
            let text = std::fs::read_to_string(home.join(unit)).unwrap();
            text.lines()
                .filter(|line| line.contains("PWNED") && !line.starts_with('#'))
                .map(|line| format!("{unit}: {line}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_roster_file_name_with_a_newline_is_refused_and_writes_nothing() {
    let world = TmuxWorld::new();
    let scratch = TempHome::new();
    let roster = scratch.path().join(format!("{HOSTILE_STEM}.yaml"));
    std::fs::write(&roster, minimal_roster()).unwrap();
    let home = TempHome::new();
    let out = install(&home, &world, &["--profile", roster.to_str().unwrap()]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains(
            r#"the profile name "fleet\n[Service]\nExecStartPre=touch PWNED\n#" contains a newline"#
        ),
        "the refusal does not name the label with its newline shown:\n{message}"
    );
    assert!(message.contains("fix: rename the file"), "{message}");
    assert!(
        !message.lines().any(|line| line.starts_with("ExecStartPre")),
        "the message itself breaks lines where the name does:\n{message}"
    );
    assert_eq!(tree_listing(home.path()), Vec::<String>::new());
}

#[test]
fn a_hostile_label_in_an_older_receipt_is_cleaned_not_carried_into_the_upgrade() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let out = install(&home, &world, &["--profile", "minimal"]);
    assert!(
        out.status.success(),
        "setup install failed: {}",
        stderr(&out)
    );
    // An older receipt carrying the label the file name would have given.
    let receipt_path = home.path().join(RECEIPT);
    let mut receipt: Value =
        serde_json::from_slice(&std::fs::read(&receipt_path).unwrap()).unwrap();
    receipt["profile"]["name"] = Value::from(HOSTILE_STEM);
    std::fs::write(&receipt_path, serde_json::to_vec_pretty(&receipt).unwrap()).unwrap();

    let out = install(&home, &world, &[]);
    assert!(out.status.success(), "upgrade failed: {}", stderr(&out));
    assert_eq!(directives_from_the_label(home.path()), Vec::<String>::new());
    let cleaned = "fleet?[Service]?ExecStartPre=touch PWNED?#";
    for unit in UNITS {
        let text = std::fs::read_to_string(home.path().join(unit)).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                "# Managed by mosaic-install {} (profile {cleaned}); edits are kept,",
                env!("CARGO_PKG_VERSION")
            ),
            "{unit}"
        );
    }
    let receipt: Value = serde_json::from_slice(&std::fs::read(&receipt_path).unwrap()).unwrap();
    assert_eq!(
        receipt["profile"]["name"], cleaned,
        "the new receipt carries the label on"
    );

    let status = mosaic_install(home.path(), &world)
        .arg("--home")
        .arg(home.path())
        .arg("status")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.starts_with(&format!("generation 2 (profile {cleaned}, ")),
        "{shown}"
    );
}

#[test]
fn a_roster_with_a_byte_order_mark_installs_and_keeps_its_bytes() {
    let world = TmuxWorld::new();
    let scratch = TempHome::new();
    let roster = scratch.path().join("bom.yaml");
    let bytes = format!("\u{feff}{}", minimal_roster());
    std::fs::write(&roster, &bytes).unwrap();
    let home = TempHome::new();
    let out = install(&home, &world, &["--profile", roster.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let installed = std::fs::read(home.path().join(".config/mosaic/fleet/roster.yaml")).unwrap();
    assert_eq!(installed, bytes.as_bytes());
    assert!(home
        .path()
        .join(".config/mosaic/fleet/agents/canary.env")
        .is_file());
    // And the installed roster, BOM and all, is read back by the next run.
    let again = install(&home, &world, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    let summary = String::from_utf8_lossy(&again.stdout);
    assert!(
        summary.contains("summary: 0 created, 0 updated,"),
        "the rerun changed files:\n{summary}"
    );
}
