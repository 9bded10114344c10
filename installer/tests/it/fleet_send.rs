//! `mosaic-fleet agent send` against real tmux: panes run a recorder of
//! submitted lines (or a sink that never accepts Enter) on the roster's
//! named socket in a throwaway world. What an agent receives is checked
//! byte for byte; `--verify` outcomes, `--all`, the 64 KiB limit and the
//! exact-match targets are checked by what the panes and records show, and
//! the world's default tmux server must end exactly as it began.

use crate::support::fleet as harness;

use harness::{assert_ok, json, short_host, stderr, stdout, tricky_message, FleetWorld};

#[test]
fn send_delivers_the_exact_bytes_once_with_the_preamble() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let message = tricky_message();

    let out = fx.run(&["agent", "send", "agent-1", "--message", &message]);

    assert_ok(&out, "agent send");
    let preamble = format!("[{host}:operator -> {host}:agent-1] ", host = short_host());
    assert_eq!(
        fx.record_settled("agent-1"),
        vec![format!("{preamble}{message}")]
    );
    assert!(
        fx.record_settled("agent-10").is_empty(),
        "agent-10 got agent-1's message"
    );
    fx.assert_default_server_untouched();
}

#[test]
fn send_reads_the_message_from_a_file_and_from_stdin() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let file = fx.home().join("message.txt");
    std::fs::write(&file, "from a `file` with $dollars\n\n").unwrap();

    let from_file = fx.run(
        &["agent", "send", "agent-1", "--from", "ops:desk", "--file"]
            .into_iter()
            .chain([file.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    let mut child = fx
        .fleet()
        .args(["agent", "send", "agent-1", "--from", "ops:desk"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all("piped ✓ 'text'\n".as_bytes())
        .unwrap();
    let from_stdin = child.wait_with_output().unwrap();

    assert_ok(&from_file, "send --file");
    assert_ok(&from_stdin, "send from stdin");
    let to = format!("{}:agent-1", short_host());
    assert_eq!(
        fx.record_settled("agent-1"),
        vec![
            format!("[ops:desk -> {to}] from a `file` with $dollars"),
            format!("[ops:desk -> {to}] piped ✓ 'text'"),
        ]
    );
}

#[test]
fn verify_reports_accepted_for_a_pane_that_submits() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();

    let out = fx.run(&["agent", "send", "agent-10", "--verify", "-m", "take this"]);

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "agent-10: ACCEPTED\n");
    assert_eq!(fx.record_settled("agent-10").len(), 1);
}

#[test]
fn verify_reports_draft_for_a_pane_that_holds_the_text() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();

    let out = fx.run(&[
        "agent",
        "send",
        "sink",
        "--verify",
        "-r",
        "2",
        "-m",
        "stuck here",
    ]);

    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "sink: DRAFT\n");
    assert!(
        fx.pane_text("sink").contains("stuck here"),
        "{}",
        fx.pane_text("sink")
    );
}

#[test]
fn sending_to_an_agent_whose_session_is_gone_reports_down() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    fx.kill_session("agent-10");

    let plain = fx.run(&["agent", "send", "agent-10", "-m", "anyone?"]);
    let verified = fx.run(&[
        "--json", "agent", "send", "agent-10", "--verify", "-m", "anyone?",
    ]);

    assert_eq!(plain.status.code(), Some(3));
    assert!(
        stderr(&plain).contains("agent-10: DOWN: no session =agent-10 on tmux -L fleet-verbs"),
        "{}",
        stderr(&plain)
    );
    assert_eq!(verified.status.code(), Some(3));
    assert_eq!(json(&verified)["results"][0]["outcome"], "DOWN");
    assert!(
        fx.record_settled("agent-1").is_empty(),
        "agent-1 got agent-10's message"
    );
}

#[test]
fn broadcast_reports_the_down_agent_and_delivers_to_the_rest() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_holder();
    fx.start_agent("agent-1");
    fx.start_agent("agent-10");

    let out = fx.run(&[
        "agent",
        "send",
        "--all",
        "--verify",
        "--from",
        "ops:desk",
        "-m",
        "all hands",
    ]);

    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "agent-1: ACCEPTED\nagent-10: ACCEPTED\nsink: DOWN\n"
    );
    for agent in ["agent-1", "agent-10"] {
        let to = format!("{}:{agent}", short_host());
        assert_eq!(
            fx.record_settled(agent),
            vec![format!("[ops:desk -> {to}] all hands")]
        );
    }
}

#[test]
fn a_message_of_exactly_64_kib_arrives_whole() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let message: String = "0123456789abcdef".repeat(64 * 1024 / 16);

    let out = fx.run(&[
        "agent", "send", "agent-1", "--verify", "--from", "x:y", "-m", &message,
    ]);

    assert_eq!(stdout(&out), "agent-1: ACCEPTED\n", "{}", stderr(&out));
    let record = fx.record_settled("agent-1");
    assert_eq!(record.len(), 1);
    assert_eq!(
        record[0].len(),
        message.len() + format!("[x:y -> {}:agent-1] ", short_host()).len()
    );
    assert!(record[0].ends_with(&message));
}

#[test]
fn a_message_over_64_kib_is_refused_and_nothing_is_sent() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let message = "x".repeat(64 * 1024 + 1);

    let out = fx.run(&["agent", "send", "agent-1", "-m", &message]);

    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("the message is 65537 bytes; one submission is at most 65536 bytes (64 KiB)"),
        "{}",
        stderr(&out)
    );
    assert!(fx.record_settled("agent-1").is_empty());
    let buffers = fx.tmux(&["list-buffers", "-F", "#{buffer_name}"]);
    assert_eq!(stdout(&buffers), "", "a tmux buffer was left behind");
}

#[test]
fn unknown_agent_lists_the_known_ones() {
    let Some(fx) = FleetWorld::new() else { return };

    let out = fx.run(&["agent", "send", "agent-2", "-m", "hi"]);

    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "mosaic-fleet: error: unknown agent `agent-2`; the roster's agents are: agent-1, agent-10, sink\n"
    );
}

#[test]
fn an_empty_message_is_refused() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();

    let out = fx.run(&["agent", "send", "agent-1", "-m", " \n "]);

    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the message is empty"),
        "{}",
        stderr(&out)
    );
}
