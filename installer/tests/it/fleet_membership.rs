//! The roster-writing verbs through the real binary: `fleet init` (refuses
//! to replace a roster without `--force`, backs it up with it, never
//! overwrites an env file the operator edited), `agent add` (profile rules,
//! the operator's text kept, env file 0600, the command to enable printed
//! when no manager answers) and `agent remove` (an env file the operator
//! edited is kept unless `--purge`). Bad input changes nothing on disk, and
//! a run that cannot write changes nothing either.

use crate::support::fleet as harness;

use std::os::unix::fs::PermissionsExt;

use harness::{assert_ok, json, stderr, stdout, FleetWorld};
use mosaic_tests::{append, assert_same_tree, env_file_values, templates_dir, tree_listing};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn init_writes_the_profile_and_refuses_to_replace_it_without_force() {
    let Some(fx) = FleetWorld::bare() else { return };

    let first = fx.run(&["fleet", "init", "--profile", "minimal"]);
    let before = tree_listing(fx.home());
    let again = fx.run(&["fleet", "init", "--profile", "usc"]);

    assert_ok(&first, "fleet init");
    assert_eq!(
        std::fs::read_to_string(fx.roster_path()).unwrap(),
        std::fs::read_to_string(templates_dir().join("framework/fleet/examples/minimal.yaml"))
            .unwrap()
    );
    let env = fx.config("mosaic/fleet/agents/canary.env");
    assert_eq!(mode(&env), 0o600);
    assert_eq!(mode(env.parent().unwrap()), 0o700);
    assert_eq!(env_file_values(&env)["MOSAIC_AGENT_RUNTIME"], "claude");
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("a roster already exists at"),
        "{}",
        stderr(&again)
    );
    assert!(stderr(&again).contains("pass --force to replace it"));
    assert_same_tree(
        &before,
        &tree_listing(fx.home()),
        "a refused init changed files",
    );
}

#[test]
fn init_with_force_backs_up_the_roster_and_keeps_existing_env_files() {
    let Some(fx) = FleetWorld::bare() else { return };
    assert_ok(
        &fx.run(&["fleet", "init", "--profile", "minimal"]),
        "first init",
    );
    let env = fx.config("mosaic/fleet/agents/canary.env");
    let edited = append(&env, "MOSAIC_AGENT_MODEL=\"mine\"\n");
    let old_roster = std::fs::read(fx.roster_path()).unwrap();

    let out = fx.run(&[
        "--json",
        "fleet",
        "init",
        "--profile",
        "local-canary",
        "--force",
    ]);

    assert_ok(&out, "fleet init --force");
    let report = json(&out);
    let backup = std::path::PathBuf::from(report["backup"].as_str().unwrap());
    let backed_up = std::fs::read_dir(&backup)
        .unwrap()
        .flatten()
        .any(|e| std::fs::read(e.path()).unwrap() == old_roster);
    assert!(
        backed_up,
        "no backup in {} holds the old roster",
        backup.display()
    );
    assert!(std::fs::read_to_string(fx.roster_path())
        .unwrap()
        .contains("name: reviewer-1"));
    assert_eq!(
        std::fs::read(&env).unwrap(),
        edited,
        "an existing env file was rewritten"
    );
    assert_eq!(report["env_kept"][0], env.display().to_string());
    assert!(fx.config("mosaic/fleet/agents/worker-1.env").is_file());
}

#[test]
fn add_appends_the_agent_keeps_the_operators_text_and_writes_its_env_file() {
    let Some(fx) = FleetWorld::new() else { return };
    let before = std::fs::read_to_string(fx.roster_path()).unwrap();

    let out = fx.run(&[
        "agent",
        "add",
        "agent-2",
        "--runtime",
        "opencode",
        "--model",
        "big model",
        "--working-directory",
        "~/w2",
        "--command",
        r#"bash -c 'echo "$HOME"'"#,
    ]);

    assert_ok(&out, "agent add");
    let after = std::fs::read_to_string(fx.roster_path()).unwrap();
    assert!(
        after.starts_with(&before),
        "the operator's text changed:\n{after}"
    );
    assert_eq!(
        &after[before.len()..],
        "  - name: agent-2\n    runtime: opencode\n    model_hint: big model\n    working_directory: ~/w2\n    command: \"bash -c 'echo \\\"$HOME\\\"'\"\n"
    );
    let env = fx.config("mosaic/fleet/agents/agent-2.env");
    assert_eq!(mode(&env), 0o600);
    let vars = env_file_values(&env);
    assert_eq!(vars["MOSAIC_AGENT_COMMAND"], r#"bash -c 'echo "$HOME"'"#);
    assert_eq!(vars["MOSAIC_AGENT_MODEL"], "big model");
    assert_eq!(vars["MOSAIC_AGENT_WORKDIR"], "~/w2");
    assert_eq!(vars["MOSAIC_TMUX_SOCKET"], "fleet-verbs");
    let text = stdout(&out);
    assert!(
        text.contains("no systemd user manager answered; run:"),
        "{text}"
    );
    assert!(
        text.contains("  enable           mosaic-agent@agent-2.service\n"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("  systemctl --user enable ")
                && l.contains(" mosaic-agent@agent-2.service")),
        "{text}"
    );
    let roster = json(&fx.run(&["--json", "agent", "roster"]));
    assert_eq!(roster[3]["name"], "agent-2");
}

#[test]
fn add_refuses_bad_agents_with_the_profile_rules_and_changes_nothing() {
    let Some(fx) = FleetWorld::new() else { return };
    let before = tree_listing(fx.home());
    let cases: [(&[&str], &str); 7] = [
        (
            &["a.b", "--runtime", "claude"],
            "tmux silently renames a session called `a.b` to `a_b`",
        ),
        (&["a:b", "--runtime", "claude"], "session:window separator"),
        (&["--runtime", "claude", "--", "-x"], "starts with `-`"),
        (&["é", "--runtime", "claude"], "only ASCII letters, digits"),
        (
            &["agent-1", "--runtime", "claude"],
            "agent `agent-1` is already in the roster",
        ),
        (&["ok-name", "--runtime", "gpt"], "`gpt` is not a runtime"),
        (
            &[
                "ok-name",
                "--runtime",
                "pi",
                "--working-directory",
                "rel/dir",
            ],
            "neither absolute nor ~/-relative",
        ),
    ];
    for (args, message) in cases {
        let out = fx
            .fleet()
            .args(["agent", "add"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    assert_same_tree(
        &before,
        &tree_listing(fx.home()),
        "a refused add changed files",
    );
}

#[test]
fn add_that_cannot_write_changes_nothing() {
    let Some(fx) = FleetWorld::new() else { return };
    let agents = fx.config("mosaic/fleet/agents");
    std::fs::remove_dir_all(&agents).unwrap();
    std::fs::write(&agents, "not a directory").unwrap();
    let before = tree_listing(fx.home());

    let out = fx.run(&["agent", "add", "agent-2", "--runtime", "claude"]);

    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&agents.display().to_string()),
        "{}",
        stderr(&out)
    );
    assert_same_tree(
        &before,
        &tree_listing(fx.home()),
        "a failed add left changes",
    );
}

#[test]
fn remove_cuts_the_agent_and_keeps_its_edited_env_file_unless_purged() {
    let Some(fx) = FleetWorld::new() else { return };
    let env_10 = fx.config("mosaic/fleet/agents/agent-10.env");
    let env_sink = fx.config("mosaic/fleet/agents/sink.env");
    let mine_10 = append(&env_10, "MY_KEY=\"secret\"\n");
    append(&env_sink, "MY_KEY=\"secret\"\n");

    let kept = fx.run(&["agent", "remove", "agent-10"]);
    let purged = fx.run(&["--json", "agent", "remove", "sink", "--purge"]);
    let last = fx.run(&["agent", "remove", "agent-1"]);
    let unknown = fx.run(&["agent", "remove", "agent-1x"]);

    assert_ok(&kept, "remove agent-10");
    assert_ok(&purged, "remove sink --purge");
    let roster = std::fs::read_to_string(fx.roster_path()).unwrap();
    assert!(
        !roster.contains("- name: agent-10") && !roster.contains("sink.sh"),
        "{roster}"
    );
    assert!(roster.contains("- name: agent-1\n"), "{roster}");
    assert!(roster.contains("    reset_command: /clear   # what `agent reset` submits"));
    assert_eq!(
        std::fs::read(&env_10).unwrap(),
        mine_10,
        "the edited env file went without --purge"
    );
    assert!(stdout(&kept).contains("kept env file"), "{}", stdout(&kept));
    assert!(!env_sink.exists(), "--purge kept the env file");
    let report = json(&purged);
    assert_eq!(report["env_removed"][0], env_sink.display().to_string());
    assert!(
        report["commands"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "systemctl --user disable --now mosaic-agent@sink.service"),
        "{report:#}"
    );
    assert_eq!(last.status.code(), Some(2));
    assert!(
        stderr(&last).contains("it is the roster's only agent"),
        "{}",
        stderr(&last)
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("the roster's agents are: agent-1"),
        "{}",
        stderr(&unknown)
    );
}
