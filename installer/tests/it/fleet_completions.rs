//! `cargo xtask completions`: bash, zsh and fish completions and man pages
//! for both binaries. Bash completes real command lines (subcommands of a
//! hyphenated binary included, which clap_complete alone gets wrong), fish
//! completes them too and zsh parses its script, where those shells are
//! installed; every verb has a man page naming its flags.

use std::path::{Path, PathBuf};
use std::process::Command;

use mosaic_tests::require_tool;

fn generate() -> (tempfile::TempDir, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(mosaic_tests::xtask())
        .args(["completions", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let listed = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| {
            l.strip_prefix(&format!("{}/", out.path().display()))
                .unwrap()
                .to_owned()
        })
        .collect();
    (out, listed)
}

fn share(out: &Path, rel: &str) -> PathBuf {
    out.join("share").join(rel)
}

/// What bash completes for `line` (words split on spaces; a trailing space
/// starts a new, empty word).
fn bash_complete(out: &Path, line: &str) -> String {
    let script = r#"
        for f in "$1"/*; do source "$f"; done
        read -ra COMP_WORDS <<< "$2"
        [[ $2 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        fn=$(complete -p "${COMP_WORDS[0]}" | sed 's/.*-F \([^ ]*\) .*/\1/')
        "$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        echo "${COMPREPLY[*]}"
    "#;
    let run = Command::new("bash")
        .args(["-c", script, "bash"])
        .arg(share(out, "bash-completion/completions"))
        .arg(line)
        .output()
        .unwrap();
    String::from_utf8_lossy(&run.stdout).trim().to_owned()
}

#[test]
fn every_shell_and_every_verb_gets_its_file() {
    let (_out, listed) = generate();

    for bin in ["mosaic-install", "mosaic-fleet"] {
        for file in [
            format!("share/bash-completion/completions/{bin}"),
            format!("share/zsh/site-functions/_{bin}"),
            format!("share/fish/vendor_completions.d/{bin}.fish"),
            format!("share/man/man1/{bin}.1"),
        ] {
            assert!(listed.contains(&file), "no {file} in {listed:?}");
        }
    }
    for verb in [
        "fleet-init",
        "fleet-start",
        "fleet-stop",
        "fleet-verify",
        "fleet-status",
        "agent-roster",
        "agent-status",
        "agent-start",
        "agent-stop",
        "agent-restart",
        "agent-add",
        "agent-remove",
        "agent-send",
        "agent-reset",
        "agent-tail",
        "agent-attach",
    ] {
        let page = format!("share/man/man1/mosaic-fleet-{verb}.1");
        assert!(listed.contains(&page), "no {page}");
    }
    assert!(
        !listed.iter().any(|f| f.contains("-help")),
        "pages for `help`: {listed:?}"
    );
}

#[test]
fn man_pages_name_the_verbs_flags() {
    let (out, _) = generate();

    let page =
        std::fs::read_to_string(share(out.path(), "man/man1/mosaic-fleet-agent-send.1")).unwrap();

    assert!(
        page.starts_with(".ie \\n(.g .ds Aq"),
        "not roff: {}",
        &page[..40]
    );
    assert!(page.contains(".TH mosaic-fleet-agent-send 1"), "{page}");
    for flag in [
        "\\-\\-verify",
        "\\-\\-all",
        "\\-\\-message",
        "\\-\\-file",
        "\\-\\-from",
        "\\-\\-attempts",
    ] {
        assert!(page.contains(flag), "no {flag} in the agent send page");
    }
}

#[test]
fn bash_completes_subcommands_and_their_flags() {
    let (out, _) = generate();

    assert_eq!(bash_complete(out.path(), "mosaic-fleet a"), "agent");
    assert_eq!(
        bash_complete(out.path(), "mosaic-fleet agent s"),
        "status start stop send"
    );
    assert_eq!(
        bash_complete(out.path(), "mosaic-fleet agent send --v"),
        "--verify"
    );
    assert_eq!(
        bash_complete(out.path(), "mosaic-fleet fleet status --w"),
        "--watch"
    );
    assert_eq!(
        bash_complete(out.path(), "mosaic-install uninstall --d"),
        "--dry-run"
    );
}

#[test]
fn fish_completes_and_zsh_parses() {
    let (out, _) = generate();

    if require_tool("fish", "the fish completions are tried in fish") {
        let script = share(out.path(), "fish/vendor_completions.d/mosaic-fleet.fish");
        let run = Command::new("fish")
            .arg("-c")
            .arg(format!(
                "source {}; complete -C 'mosaic-fleet agent send --ver'",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&run.stdout).starts_with("--verify\t"));
    }
    if require_tool("zsh", "the zsh completions are parsed by zsh") {
        for bin in ["mosaic-install", "mosaic-fleet"] {
            let script = share(out.path(), &format!("zsh/site-functions/_{bin}"));
            let run = Command::new("zsh").arg("-n").arg(&script).output().unwrap();
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
}
