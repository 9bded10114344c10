//! The observing verbs of `mosaic-fleet` against real tmux, without
//! systemd: `fleet status` (rows, JSON, `--watch`, exit codes), `fleet
//! verify` (failing checks listed, exit 1), `agent roster`, `agent status`,
//! `agent tail`, `agent attach` of a gone session (watching has its own
//! tests, `fleet_watch.rs`), and what the unit verbs say when no service
//! manager answers. Agent sessions are started directly on the roster's
//! socket; the default server must end as it began.

use crate::support::fleet as harness;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use harness::{assert_ok, json, stderr, stdout, FleetWorld};

#[test]
fn status_lists_every_agent_and_exits_0_when_all_are_up() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();

    let text = fx.run(&["fleet", "status"]);
    let report = json(&fx.run(&["--json", "fleet", "status"]));

    assert_eq!(text.status.code(), Some(0), "{}", stdout(&text));
    let printed = stdout(&text);
    let lines: Vec<&str> = printed.lines().map(str::trim_end).collect();
    assert!(
        lines[0].contains("tmux -L fleet-verbs session _holder up"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("AGENT"), "{}", lines[1]);
    for (line, agent) in lines[2..5].iter().zip(["agent-1", "agent-10", "sink"]) {
        assert!(line.starts_with(agent), "{line}");
        assert!(
            line.contains(" unknown ") && line.contains(" alive ") && line.contains(" bash "),
            "{line}"
        );
    }
    assert!(lines[5].starts_with("unit states unknown: no systemd user manager answered"));
    assert_eq!(report["holder_up"], true);
    assert_eq!(report["transport"], "tmux -L fleet-verbs");
    let agents = report["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    assert!(agents.iter().all(|a| a["session"]["alive"] == true));
    assert!(agents.iter().all(|a| a["session"]["idle_secs"].is_u64()));
    fx.assert_default_server_untouched();
}

#[test]
fn status_and_verify_exit_1_when_an_agent_is_down_and_name_it() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    fx.kill_session("agent-1");

    let status = fx.run(&["--json", "fleet", "status"]);
    let one = fx.run(&["agent", "status", "agent-10"]);
    let verify = fx.run(&["fleet", "verify"]);

    assert_eq!(status.status.code(), Some(1));
    let agents = json(&status)["agents"].clone();
    assert_eq!(agents[0]["name"], "agent-1");
    assert_eq!(agents[0]["session"]["alive"], false);
    assert_eq!(
        agents[1]["session"]["alive"], true,
        "agent-10 went with agent-1"
    );
    assert_eq!(one.status.code(), Some(0), "{}", stdout(&one));
    assert_eq!(stdout(&one).lines().count(), 4, "{}", stdout(&one));
    assert_eq!(verify.status.code(), Some(1));
    let text = stdout(&verify);
    assert!(
        text.contains("FAIL  agent agent-1 session alive: no live session"),
        "{text}"
    );
    assert!(
        text.contains("ok    agent agent-10 session alive: running bash"),
        "{text}"
    );
    assert!(
        text.contains("ok    default tmux server untouched"),
        "{text}"
    );
    // No manager answers: the PATH checked is systemd's default, and the
    // env files name no runtime directory (none exists in this home).
    let program = "ok    agent agent-10 finds `bash` on its PATH: ";
    let path = "bash (PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)";
    assert!(
        text.lines()
            .any(|line| line.starts_with(program) && line.ends_with(path)),
        "{text}"
    );
    assert!(
        text.contains("fleet verify: 2 of 9 checks failed:"),
        "{text}"
    );
    assert!(text.contains("  - systemd user manager: "), "{text}");
    fx.assert_default_server_untouched();
}

#[test]
fn verify_fails_when_the_holder_is_down() {
    let Some(fx) = FleetWorld::new() else { return };

    let out = fx.run(&["--json", "fleet", "verify"]);

    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["ok"], false);
    let failed: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["check"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        failed.contains(&"holder session _holder on tmux -L fleet-verbs".to_owned()),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"agent sink session alive".to_owned()),
        "{failed:?}"
    );
}

#[test]
fn verify_catches_an_agent_session_on_the_default_server() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let leaked = fx
        .world
        .command("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            "agent-1",
            "-e",
            "MOSAIC_AGENT_NAME=agent-1",
            "sleep 60",
        ])
        .output()
        .unwrap();
    assert_ok(&leaked, "plant a leaked agent session");

    let out = fx.run(&["fleet", "verify"]);

    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(
            "FAIL  default tmux server untouched: agent agent-1 runs on the default tmux server"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn status_watch_redraws_until_interrupted() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let mut child = fx
        .fleet()
        .args(["--json", "fleet", "status", "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let frames: Vec<serde_json::Value> = (0..2)
        .map(|_| serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap())
        .collect();

    child.kill().unwrap();
    child.wait().unwrap();
    for frame in frames {
        assert_eq!(frame["agents"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn roster_shows_every_agent_with_its_effective_settings() {
    let Some(fx) = FleetWorld::new() else { return };
    let env = fx.config("mosaic/fleet/agents/agent-10.env");
    let edited = std::fs::read_to_string(&env).unwrap() + "MOSAIC_AGENT_MODEL=\"o4 mini\"\n";
    std::fs::write(&env, edited).unwrap();

    let text = fx.run(&["agent", "roster"]);
    let report = json(&fx.run(&["--json", "agent", "roster"]));

    assert_ok(&text, "agent roster");
    let lines: Vec<String> = stdout(&text).lines().map(str::to_owned).collect();
    let cells = |line: &str| {
        line.split_whitespace()
            .take(6)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(cells(&lines[0]), "AGENT RUNTIME CLASS MODEL HOST SOCKET");
    assert_eq!(cells(&lines[1]), "agent-1 claude worker - - fleet-verbs");
    assert_eq!(
        lines[2].find("codex"),
        lines[0].find("RUNTIME"),
        "columns align"
    );
    assert_eq!(report[1]["name"], "agent-10");
    assert_eq!(report[1]["model"], "o4 mini", "the env file's edit wins");
    assert_eq!(report[1]["workdir"], "~/work");
    assert_eq!(report[1]["socket"], "fleet-verbs");
}

#[test]
fn tail_prints_the_panes_recent_output() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    for n in 1..=3 {
        let out = fx.run(&[
            "agent",
            "send",
            "agent-1",
            "--from",
            "t",
            "-m",
            &format!("line {n}"),
        ]);
        assert_ok(&out, "send");
    }

    let out = fx.run(&["agent", "tail", "agent-1", "-n", "3"]);

    assert_ok(&out, "agent tail");
    let host = harness::short_host();
    assert_eq!(
        stdout(&out),
        format!(
            "ready> [t -> {host}:agent-1] line 2\nready> [t -> {host}:agent-1] line 3\nready>\n"
        )
    );
}

#[test]
fn attach_to_a_gone_session_says_so() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_holder();

    let out = fx.run(&["agent", "attach", "agent-1"]);

    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "agent agent-1 has no live session (no session =agent-1 on tmux -L fleet-verbs)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unit_verbs_without_a_service_manager_print_the_command_to_run() {
    let Some(fx) = FleetWorld::new() else { return };

    for (args, command) in [
        (vec!["agent", "start", "agent-1"], "systemctl --user start mosaic-agent@agent-1.service"),
        (vec!["agent", "stop", "agent-1"], "systemctl --user stop mosaic-agent@agent-1.service"),
        (vec!["fleet", "stop"], "systemctl --user stop mosaic-agent@agent-1.service mosaic-agent@agent-10.service mosaic-agent@sink.service mosaic-tmux-holder.service"),
    ] {
        let out = fx.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("no systemd user manager is reachable"), "{err}");
        assert!(err.contains(command), "{args:?}: {err}");
    }
}

#[test]
fn no_roster_says_how_to_get_one() {
    let Some(fx) = FleetWorld::bare() else { return };

    let out = fx.run(&["fleet", "status"]);

    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no roster at"), "{}", stderr(&out));
    assert!(stderr(&out).contains("mosaic-fleet fleet init --profile minimal"));
}
