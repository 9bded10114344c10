//! Bad input to `mosaic-install`: every roster in `tests/fixtures/profiles/bad/`
//! (one per rule of issue 2, named for it, carrying its expectations in its
//! header comments), an unknown profile name and unreadable profile paths.
//!
//! Each must exit with status 2, name the file, the field, the line and the
//! fix on stderr, and leave the home byte-identical: both a fresh one and one
//! holding an existing install next to an unrelated file of the operator's.

use crate::support::mosaic_install;
use std::path::{Path, PathBuf};
use std::process::Output;

use mosaic_tests::{
    fixture_header, fixtures_dir, templates_dir, tree_listing, TempHome, TmuxWorld,
};

/// The rules of issue 2 ("Bad input"), one fixture each; a missing file fails.
/// `socket-dot-dot` is beyond the list: `tmux -L ..` names a directory.
/// The `socket-default`, `socket-empty` and `agent-socket-default` rules are
/// issue 9's: the fleet never addresses the operator's own tmux server; so
/// are `yaml-tag` and `field-over-4k`. The `ready-pattern-*` and `input-*`
/// rules are issue 11's roster additions.
const RULES: [&str; 36] = [
    "malformed-yaml",
    "not-utf8",
    "version-not-1",
    "transport-not-tmux",
    "unknown-key-top-level",
    "unknown-key-in-agent",
    "unknown-key-in-tmux",
    "missing-agents",
    "missing-transport",
    "missing-agent-runtime",
    "unknown-runtime",
    "empty-agent-list",
    "duplicate-agent-names",
    "name-with-dot",
    "name-with-colon",
    "name-with-slash",
    "name-with-space",
    "name-leading-dash",
    "name-empty",
    "name-65-chars",
    "name-non-ascii",
    "socket-with-slash",
    "socket-with-space",
    "socket-dot-dot",
    "socket-default",
    "socket-empty",
    "agent-socket-default",
    "yaml-tag",
    "field-over-4k",
    "workdir-relative",
    "newline-in-value",
    "nul-in-value",
    "control-char-in-command",
    "ready-pattern-invalid",
    "ready-pattern-matches-empty",
    "input-unknown",
];

fn bad_fixtures() -> Vec<PathBuf> {
    let dir = fixtures_dir().join("profiles/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read bad fixtures")
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// A home holding an existing `minimal` install and a file of the operator's.
fn installed_home(world: &TmuxWorld) -> TempHome {
    let home = TempHome::new();
    std::fs::write(home.path().join("notes.txt"), "the operator's own file\n").unwrap();
    let out = install(&home, world, &["--profile", "minimal"]);
    assert!(out.status.success(), "setup install failed: {out:?}");
    home
}

fn install(home: &TempHome, world: &TmuxWorld, args: &[&str]) -> Output {
    mosaic_install(home.path(), world)
        .arg("--home")
        .arg(home.path())
        .args(args)
        .output()
        .expect("run mosaic-install")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `args` against a fresh and an installed home; return stderr, or the
/// list of what went wrong.
fn refused_without_writing(world: &TmuxWorld, args: &[&str]) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut message = String::new();
    for home in [TempHome::new(), installed_home(world)] {
        let before = tree_listing(home.path());
        let out = install(&home, world, args);
        message = stderr(&out);
        if out.status.code() != Some(2) {
            problems.push(format!("exit status {:?}, not 2: {message}", out.status));
        }
        let after = tree_listing(home.path());
        if before != after {
            let gone: Vec<_> = before.iter().filter(|l| !after.contains(l)).collect();
            let new: Vec<_> = after.iter().filter(|l| !before.contains(l)).collect();
            problems.push(format!("home changed: gone {gone:#?}, new {new:#?}"));
        }
    }
    if problems.is_empty() {
        Ok(message)
    } else {
        Err(problems)
    }
}

fn fail_all(failures: Vec<String>) {
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn there_is_one_fixture_per_rule() {
    let mut found: Vec<String> = bad_fixtures().iter().map(|p| stem(p)).collect();
    let mut wanted: Vec<String> = RULES.iter().map(|r| r.to_string()).collect();
    found.sort();
    wanted.sort();
    assert_eq!(found, wanted);
    for path in bad_fixtures() {
        assert_eq!(
            fixture_header(&path, "Breaks").len(),
            1,
            "{path:?} says what it breaks"
        );
        assert_eq!(
            fixture_header(&path, "fix").len(),
            1,
            "{path:?} names the fix"
        );
        assert_eq!(
            fixture_header(&path, "schema").len(),
            1,
            "{path:?} has a schema verdict"
        );
    }
}

#[test]
fn every_bad_roster_exits_2_and_leaves_the_home_byte_identical() {
    let world = TmuxWorld::new();
    let mut failures = Vec::new();
    for path in bad_fixtures() {
        let profile = path.to_str().unwrap();
        if let Err(problems) = refused_without_writing(&world, &["--profile", profile]) {
            failures.push(format!("{}:\n  {}", stem(&path), problems.join("\n  ")));
        }
    }
    fail_all(failures);
}

#[test]
fn every_bad_roster_error_names_the_file_the_field_the_rule_and_the_fix() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let mut failures = Vec::new();
    for path in bad_fixtures() {
        let file = path.to_str().unwrap();
        let message = stderr(&install(&home, &world, &["--profile", file]));
        let mut wanted = vec![file.to_owned()];
        wanted.extend(fixture_header(&path, "field"));
        wanted.extend(fixture_header(&path, "says"));
        wanted.extend(fixture_header(&path, "fix"));
        for text in wanted {
            if !message.contains(&text) {
                failures.push(format!(
                    "{}: stderr lacks {text:?}:\n{message}",
                    stem(&path)
                ));
            }
        }
    }
    fail_all(failures);
}

/// The whole message and exit status of each bad roster, pinned: the
/// checks above ask for its parts, the snapshot shows how it reads.
#[test]
fn every_bad_roster_error_reads_as_pinned() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let dir = fixtures_dir().join("profiles/bad");
    crate::support::snapshots().bind(|| {
        insta::glob!(&dir, "*.yaml", |path| {
            let out = install(&home, &world, &["--profile", path.to_str().unwrap()]);
            let shown = format!("exit status: {:?}\n{}", out.status.code(), stderr(&out))
                .replace(&dir.display().to_string(), "[FIXTURES]");
            insta::assert_snapshot!("bad_input", shown);
        });
    });
}

#[test]
fn every_bad_roster_error_points_at_the_offending_line() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let mut failures = Vec::new();
    for path in bad_fixtures() {
        let file = path.to_str().unwrap();
        let message = stderr(&install(&home, &world, &["--profile", file]));
        for line in fixture_header(&path, "line") {
            // Violations say "line N: field"; YAML errors say "file:N:column:".
            let pointed = message.contains(&format!("line {line}:"))
                || message.contains(&format!("{file}:{line}:"));
            if !pointed {
                failures.push(format!(
                    "{}: stderr does not point at line {line}:\n{message}",
                    stem(&path)
                ));
            }
        }
    }
    fail_all(failures);
}

#[test]
fn bad_roster_given_to_render_creates_no_output() {
    let world = TmuxWorld::new();
    let home = TempHome::new();
    let roster = fixtures_dir().join("profiles/bad/name-with-dot.yaml");
    let out_dir = home.path().join("rendered");
    let out = mosaic_install(home.path(), &world)
        .args(["render", "--profile"])
        .arg(&roster)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("agents[1].name"), "{}", stderr(&out));
    assert!(
        tree_listing(home.path()).is_empty(),
        "render wrote something"
    );
}

#[test]
fn unknown_profile_name_lists_the_known_ones() {
    let world = TmuxWorld::new();
    let message = refused_without_writing(&world, &["--profile", "no-such-fleet"])
        .unwrap_or_else(|problems| panic!("{}", problems.join("\n")));
    for wanted in [
        "`no-such-fleet`",
        "local-canary",
        "minimal",
        "usc",
        "--profile ./roster.yaml",
    ] {
        assert!(
            message.contains(wanted),
            "stderr lacks {wanted:?}:\n{message}"
        );
    }
}

#[test]
fn unreadable_profile_files_are_named_with_the_reason_once() {
    let world = TmuxWorld::new();
    let scratch = TempHome::new();
    let directory = scratch.path().join("roster-dir.yaml");
    std::fs::create_dir(&directory).unwrap();
    let missing = scratch.path().join("missing/roster.yaml");
    let cases = [
        (missing, "No such file or directory"),
        (directory, "Is a directory"),
    ];
    for (path, reason) in cases {
        let path = path.to_str().unwrap();
        let message = refused_without_writing(&world, &["--profile", path])
            .unwrap_or_else(|problems| panic!("{path}: {}", problems.join("\n")));
        assert!(
            message.contains(path),
            "stderr does not name {path}:\n{message}"
        );
        assert!(message.contains("check the path"), "no fix in:\n{message}");
        assert_eq!(
            message.matches(reason).count(),
            1,
            "the reason should be said once:\n{message}"
        );
    }
}

/// Orchestrators drive `--json` and read stdout: a refusal is a JSON object
/// there too, with the same message and exit code as on stderr.
#[test]
fn json_mode_reports_the_refusal_on_stdout() {
    let world = TmuxWorld::new();
    let home = installed_home(&world);
    let out = install(&home, &world, &["--json", "--profile", "no-such-profile"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exit_code"], 2);
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("unknown profile `no-such-profile`"),
        "{error}"
    );
    assert!(error.contains("local-canary, minimal, usc"), "{error}");
}

/// Issue 9: a 50 MB roster was read whole and parsed. A roster over 1 MiB is
/// refused from its size alone, naming the file, its size and the limit.
#[test]
fn a_roster_over_1_mib_is_refused_naming_its_size_and_the_limit() {
    let world = TmuxWorld::new();
    let scratch = TempHome::new();
    let path = scratch.path().join("huge.yaml");
    let minimal =
        std::fs::read_to_string(templates_dir().join("framework/fleet/examples/minimal.yaml"))
            .unwrap();
    let padding = format!("# {}\n", "x".repeat(1000)).repeat(50 * 1024);
    std::fs::write(&path, format!("{minimal}{padding}")).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    let file = path.to_str().unwrap();
    let message = refused_without_writing(&world, &["--profile", file])
        .unwrap_or_else(|problems| panic!("{}", problems.join("\n")));
    let wanted = format!("{file} is {size} bytes; a roster may be at most 1048576 bytes (1 MiB)");
    assert!(
        message.contains(&wanted),
        "stderr lacks {wanted:?}:\n{message}"
    );
    assert!(message.contains("fix: "), "no fix in:\n{message}");
}
