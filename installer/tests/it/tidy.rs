//! Repository-wide conventions as ordinary tests (the rust-analyzer "tidy"
//! pattern): every Rust file says what it owns, nothing is left as a stub,
//! only the modules that own a program start it, the library's layers
//! depend one way, and no shipped script runs tmux without naming its server.

use std::path::{Path, PathBuf};

use mosaic_tests::{templates_dir, workspace_root};

fn files_under(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != "snapshots" && name != "fixtures" {
                files_under(&path, extension, out);
            }
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
}

fn rust_files() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut files = Vec::new();
    for crate_dir in ["installer", "xtask", "tests"] {
        files_under(&root.join(crate_dir), "rs", &mut files);
    }
    assert!(files.len() > 20, "found only {} Rust files", files.len());
    files
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let missing: Vec<_> = rust_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(missing.is_empty(), "files without a //! doc: {missing:#?}");
}

/// Where the installer starts a program, by file and first argument of
/// `Command::new`: tmux only from `shared/tmux.rs`, systemctl only from
/// `shared/systemd.rs`, ssh only from `fleet/remote/ssh.rs`; `agent attach`
/// execs the argv `shared::tmux` built; one unit test runs `sh`. A new spawn
/// site has to be added here on purpose (clippy's `disallowed_types` stops
/// the rest at compile time).
#[test]
fn only_the_owning_modules_start_programs() {
    let src = workspace_root().join("installer/src");
    let mut files = Vec::new();
    files_under(&src, "rs", &mut files);
    let mut sites = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for (at, _) in text.match_indices("Command::new(") {
            let rest = &text[at + "Command::new(".len()..];
            let program = &rest[..rest.find(')').unwrap()];
            let file = path.strip_prefix(&src).unwrap().display().to_string();
            sites.push(format!("{file}: {program}"));
        }
    }
    sites.sort();
    assert_eq!(
        sites,
        [
            "fleet/cli.rs: &argv[0]",
            "fleet/remote.rs: \"sh\"",
            "fleet/remote/ssh.rs: \"ssh\"",
            "shared/systemd.rs: \"systemctl\"",
            "shared/tmux.rs: \"tmux\"",
        ],
        "a program is started outside the module that owns it"
    );
}

/// The layers of the library, one way: `fleet` may use `install` (a roster
/// edit is an install) and both use `shared`; `shared` uses neither, and
/// `install` never uses `fleet`. Code lines only (docs may point upward).
#[test]
fn the_layers_depend_one_way() {
    let src = workspace_root().join("installer/src");
    let rules: [(&str, &[&str]); 2] = [
        ("shared", &["crate::install", "crate::fleet"]),
        ("install", &["crate::fleet"]),
    ];
    let mut wrong = Vec::new();
    for (layer, forbidden) in rules {
        let mut files = vec![src.join(format!("{layer}.rs"))];
        files_under(&src.join(layer), "rs", &mut files);
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                for name in forbidden {
                    if code.contains(name) {
                        let file = path.strip_prefix(&src).unwrap().display();
                        wrong.push(format!("{file}:{}: {}", n + 1, code));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a lower layer uses a higher one:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_stubs_left_behind() {
    // Spelled in pieces so that this file does not match itself.
    let markers = [
        concat!("tod", "o!("),
        concat!("unimpl", "emented!("),
        concat!("TO", "DO"),
        concat!("FIX", "ME"),
    ];
    let mut hits = Vec::new();
    for path in rust_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            if markers.iter().any(|m| line.contains(m)) {
                hits.push(format!("{}:{}: {line}", path.display(), number + 1));
            }
        }
    }
    assert!(hits.is_empty(), "stubs:\n{}", hits.join("\n"));
}

/// tmux subcommands: a `tmux` followed by one of these (or by an option
/// other than `-L`/`-S`) is a command line that did not name its server.
const TMUX_SUBCOMMANDS: &[&str] = &[
    "attach",
    "attach-session",
    "capture-pane",
    "delete-buffer",
    "display",
    "display-message",
    "has-session",
    "kill-server",
    "kill-session",
    "list-panes",
    "list-sessions",
    "load-buffer",
    "ls",
    "new",
    "new-session",
    "paste-buffer",
    "respawn-pane",
    "run-shell",
    "send-keys",
    "set",
    "set-option",
    "show-options",
    "split-window",
    "start-server",
    "wait-for",
];

/// The words following each command-position `tmux` on a line.
fn tmux_invocations(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("tmux") {
        let before = rest[..at].chars().last();
        let after = &rest[at + 4..];
        let command_position = before.is_none_or(|c| c.is_whitespace() || "(|;&'\"`{".contains(c));
        if command_position && after.starts_with(' ') {
            let next = after.split_whitespace().next().unwrap_or("");
            found.push(next);
        }
        rest = after;
    }
    found
}

/// Every tmux command line in a shipped script names its server with `-L`
/// (or, for the one read-only query of the caller's own server, `-S` from
/// `$TMUX`): nothing may ever reach the operator's default server by accident.
#[test]
fn shipped_scripts_never_run_tmux_without_a_server() {
    let mut scripts = Vec::new();
    files_under(&templates_dir(), "sh", &mut scripts);
    assert!(scripts.len() >= 6, "found only {} scripts", scripts.len());
    let mut hits = Vec::new();
    let mut checked = 0;
    for path in &scripts {
        let text = std::fs::read_to_string(path).unwrap();
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            for next in tmux_invocations(line) {
                let unnamed = TMUX_SUBCOMMANDS.contains(&next)
                    || (next.starts_with('-') && next != "-L" && next != "-S");
                if next == "-L" || next == "-S" {
                    checked += 1;
                }
                if unnamed {
                    hits.push(format!("{}:{}: {line}", path.display(), number + 1));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} tmux command lines found: is the scan broken?"
    );
    assert!(
        hits.is_empty(),
        "tmux without -L in shipped scripts:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_scan_sees_unnamed_tmux_commands() {
    assert_eq!(tmux_invocations("x=$(tmux -L s ls)"), ["-L"]);
    assert_eq!(tmux_invocations("  tmux kill-server"), ["kill-server"]);
    assert_eq!(
        tmux_invocations("echo 'no tmux server on socket'"),
        ["server"]
    );
    assert_eq!(tmux_invocations("trap 'tmux -L \"$s\" x' EXIT"), ["-L"]);
}

/// The README opens with the main job and the test command; keep them true:
/// the main job's arguments work on the built binary (into a temp home),
/// `cargo run -p mosaic-install` can pick its binary, and the test command is
/// the one `.ci/run` runs.
#[test]
fn readme_commands_are_true() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README starts with a sh code block");
    let commands: Vec<&str> = block
        .lines()
        .map(|line| line.split(" #").next().unwrap_or(line).trim())
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(commands.len(), 2, "two commands: {commands:?}");

    let main_job = commands[0];
    let args = main_job
        .strip_prefix("cargo run --release -p mosaic-install -- ")
        .expect("the main job runs mosaic-install through cargo");
    let manifest = std::fs::read_to_string(root.join("installer/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("default-run = \"mosaic-install\""),
        "cargo run -p mosaic-install needs default-run with two binaries"
    );
    let home = mosaic_tests::TempHome::new();
    let world = mosaic_tests::TmuxWorld::new();
    let mut words: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    let at = words.iter().position(|w| w == "--home").expect("--home");
    words[at + 1] = home.path().display().to_string();
    let out = crate::support::mosaic_install(home.path(), &world)
        .args(&words)
        .output()
        .unwrap();
    assert!(out.status.success(), "{main_job}: {out:?}");
    assert!(home
        .path()
        .join(".config/systemd/user/mosaic-agent@.service")
        .is_file());

    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.lines()
            .any(|line| line.contains(commands[1]) && !line.trim().starts_with('#')),
        ".ci/run must run the README's test command `{}`",
        commands[1]
    );
}
