//! `mosaic-fleet agent send` against real tmux and stand-ins for the programs
//! agents run (`tests/fixtures/send/roster.yaml`): a bracketed-paste TUI
//! (`stand-in-tui`, which logs every submission as JSON, empty ones too) in
//! its slow, flushing, busy and summarising variants, a plain line reader,
//! a program that never shows what it reads and one that never reads keys.
//! Each test checks what the program received (exactly once, whole, as one
//! submission, no empty submission) against the outcome `agent send`
//! printed and its exit code.

use crate::support::fleet as harness;

use harness::{assert_ok, json, short_host, stderr, stdout, wait_until, FleetWorld};

const ROSTER: &str = "send/roster.yaml";

fn world() -> Option<FleetWorld> {
    let fx = FleetWorld::with_roster(ROSTER)?;
    fx.start_holder();
    Some(fx)
}

/// Start `agent` and wait for its input line.
fn started(fx: &FleetWorld, agent: &str) {
    fx.start_roster_agent(agent);
    fx.wait_for_pane(agent, "stand-in TUI ready");
}

fn preamble(agent: &str) -> String {
    format!("[{host}:operator -> {host}:{agent}] ", host = short_host())
}

/// Send an end marker, wait for it, and return every submission before it.
fn settled(fx: &FleetWorld, agent: &str) -> Vec<String> {
    let out = fx.run(&["agent", "send", agent, "--verify", "-m", "end-of-test"]);
    assert_eq!(
        stdout(&out),
        format!("{agent}: ACCEPTED\n"),
        "{}",
        stderr(&out)
    );
    let marker = format!("{}end-of-test", preamble(agent));
    let read = |fx: &FleetWorld| {
        if agent == "q" {
            fx.lines_read(agent)
        } else {
            fx.submissions(agent)
        }
    };
    wait_until("the end marker", || read(fx).last() == Some(&marker));
    let mut all = read(fx);
    all.pop();
    all
}

#[test]
fn a_line_reader_gets_each_line_once_and_never_an_empty_one() {
    let Some(fx) = world() else { return };
    fx.start_roster_agent("q");

    let one = fx.run(&["agent", "send", "q", "--verify", "-m", "hello"]);
    let lines = fx.run(&[
        "agent",
        "send",
        "q",
        "--verify",
        "--lines",
        "-m",
        "one\r\ntwo\r\n\r\nthree\rfour",
    ]);

    assert_eq!(stdout(&one), "q: ACCEPTED\n", "{}", stderr(&one));
    assert_eq!(stdout(&lines), "q: ACCEPTED\n", "{}", stderr(&lines));
    assert_eq!(
        settled(&fx, "q"),
        [
            format!("{}hello", preamble("q")),
            format!("{}one", preamble("q")),
            "two".into(),
            "three".into(),
            "four".into(),
        ]
    );
}

#[test]
fn a_line_reader_is_never_sent_what_its_terminal_would_cut_or_split() {
    let Some(fx) = world() else { return };
    fx.start_roster_agent("q");
    let long = "x".repeat(10 * 1024);

    let split = fx.run(&["agent", "send", "q", "-m", "first\nsecond"]);
    let cut = fx.run(&["agent", "send", "q", "-m", &long]);

    assert_eq!(split.status.code(), Some(2));
    assert!(
        stderr(&split).contains("the message has 2 lines, but agent q's runtime reads one line per submission (input: lines)")
            && stderr(&split).contains("pass --lines"),
        "{}",
        stderr(&split)
    );
    assert_eq!(cut.status.code(), Some(2));
    assert!(
        stderr(&cut).contains(&format!(
            "line 1 of the message to q is {} bytes with the preamble",
            long.len() + preamble("q").len()
        )) && stderr(&cut).contains("at most 4095 bytes per line"),
        "{}",
        stderr(&cut)
    );
    assert_eq!(settled(&fx, "q"), Vec::<String>::new());
}

#[test]
fn a_tui_that_keeps_the_text_a_while_after_enter_gets_one_enter() {
    let Some(fx) = world() else { return };
    started(&fx, "busy");

    let out = fx.run(&["--json", "agent", "send", "busy", "-m", "take your time"]);

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let delivery = &json(&out)["results"][0]["delivery"];
    assert_eq!(delivery["outcome"], "ACCEPTED");
    assert_eq!(delivery["enters"], 1, "{delivery}");
    assert_eq!(
        settled(&fx, "busy"),
        [format!("{}take your time", preamble("busy"))]
    );
}

#[test]
fn a_long_paste_shown_as_a_summary_is_submitted_once_whole() {
    let Some(fx) = world() else { return };
    started(&fx, "summary");
    let text: String = (1..=40)
        .map(|n| format!("line {n} of a long paste ✓\n"))
        .collect();

    let out = fx.run(&["agent", "send", "summary", "--verify", "-m", &text]);

    assert_eq!(stdout(&out), "summary: ACCEPTED\n", "{}", stderr(&out));
    assert_eq!(
        settled(&fx, "summary"),
        [format!("{}{}", preamble("summary"), text.trim_end())]
    );
}

#[test]
fn a_tui_that_draws_its_input_line_away_from_the_cursor_gets_each_message_once() {
    let Some(fx) = world() else { return };
    started(&fx, "parked");
    let long: String = (1..=30).map(|n| format!("line {n} ✓\n")).collect();

    let short = fx.run(&["agent", "send", "parked", "--verify", "-m", "hi"]);
    let many = fx.run(&["agent", "send", "parked", "--verify", "-m", &long]);

    assert_eq!(stdout(&short), "parked: ACCEPTED\n", "{}", stderr(&short));
    assert_eq!(stdout(&many), "parked: ACCEPTED\n", "{}", stderr(&many));
    assert_eq!(
        settled(&fx, "parked"),
        [
            format!("{}hi", preamble("parked")),
            format!("{}{}", preamble("parked"), long.trim_end()),
        ]
    );
}

#[test]
fn a_tui_that_never_takes_enter_is_a_draft_even_with_its_cursor_elsewhere() {
    let Some(fx) = world() else { return };
    started(&fx, "stuck");

    let out = fx.run(&[
        "agent",
        "send",
        "stuck",
        "--verify",
        "-r",
        "2",
        "-m",
        "stays put",
    ]);

    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "stuck: DRAFT\n");
    assert!(
        fx.pane_text("stuck").contains("stays put"),
        "{}",
        fx.pane_text("stuck")
    );
    assert!(
        fx.submissions("stuck").is_empty(),
        "{:?}",
        fx.submissions("stuck")
    );
}

#[test]
fn every_control_character_is_refused_and_nothing_is_typed() {
    let Some(fx) = world() else { return };
    started(&fx, "tui");
    let controls = (0u32..0x20)
        .chain([0x7f])
        .chain(0x80..0xa0)
        .filter_map(char::from_u32)
        .filter(|c| !matches!(c, '\n' | '\t' | '\r'));

    let mut refused = 0;
    let file = fx.home().join("message.txt");
    for c in controls {
        // From a file: NUL cannot be a command-line argument.
        std::fs::write(&file, format!("abc-{c}xyz")).unwrap();
        let out = fx.run(&["agent", "send", "tui", "--file", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{c:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("at byte 4: control characters act as keystrokes")
                && stderr(&out).contains("--sanitize"),
            "{c:?}: {}",
            stderr(&out)
        );
        refused += 1;
    }
    let stripped = fx.run(&[
        "agent",
        "send",
        "tui",
        "--verify",
        "--sanitize",
        "-m",
        "one turn\x1b[201~\rrm -rf ~\r",
    ]);

    assert_eq!(refused, 29 + 1 + 32, "C0 but LF, TAB and CR; DEL; C1");
    assert!(
        !fx.pane_text("tui").contains("abc-"),
        "{}",
        fx.pane_text("tui")
    );
    assert_eq!(
        stdout(&stripped),
        "tui: ACCEPTED\n",
        "{}",
        stderr(&stripped)
    );
    assert_eq!(
        settled(&fx, "tui"),
        [format!("{}one turn[201~\nrm -rf ~", preamble("tui"))]
    );
}

#[test]
fn a_message_may_start_with_a_dash_and_a_missing_name_mentions_all() {
    let Some(fx) = world() else { return };
    started(&fx, "tui");

    let dash = fx.run(&["agent", "send", "tui", "--message", "- fix the test"]);
    let short = fx.run(&["agent", "send", "tui", "-m", "-x marks the spot"]);
    let nameless = fx.run(&["agent", "send", "--message", "x"]);

    assert_ok(&dash, "send --message '- fix the test'");
    assert_ok(&short, "send -m '-x marks the spot'");
    assert_eq!(nameless.status.code(), Some(2));
    assert!(
        stderr(&nameless).contains("<NAME|--all>"),
        "{}",
        stderr(&nameless)
    );
    assert_eq!(
        settled(&fx, "tui"),
        [
            format!("{}- fix the test", preamble("tui")),
            format!("{}-x marks the spot", preamble("tui")),
        ]
    );
}

#[test]
fn the_sender_is_the_agent_it_runs_in_and_otherwise_the_operator() {
    let Some(fx) = world() else { return };
    started(&fx, "tui");
    let fleet = crate::support::PRODUCT.fleet;
    let send = |from: &str| {
        format!(
            "env HOME={} XDG_RUNTIME_DIR= {} agent send tui -m 'hello from {from}'; sleep 60",
            fx.home().display(),
            fleet
        )
    };

    // A pane on the fleet's own socket: the agent (session) it runs in.
    let mut args = mosaic_tests::NO_TMUX_CONFIG.to_vec();
    let inside = send("inside");
    args.extend(["new-session", "-d", "-s", "orchestrator", &inside]);
    assert_ok(&fx.tmux(&args), "start a sender on the fleet socket");
    let host = short_host();
    wait_until("the message from inside", || {
        fx.submissions("tui").len() == 1
    });
    // A pane on another server: an operator, whatever its session is called.
    let outside = send("outside");
    let other = fx.world.run(
        "elsewhere",
        &[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "tui",
            &outside,
        ],
    );
    assert_ok(&other, "start a sender on another socket");
    wait_until("the message from outside", || {
        fx.submissions("tui").len() == 2
    });

    assert_eq!(
        settled(&fx, "tui"),
        [
            format!("[{host}:orchestrator -> {host}:tui] hello from inside"),
            format!("[{host}:operator -> {host}:tui] hello from outside"),
        ]
    );
}

#[test]
fn a_program_that_is_not_ready_is_typed_nothing() {
    let Some(fx) = world() else { return };
    fx.start_roster_agent("loading");

    let loading = fx.run(&[
        "agent",
        "send",
        "loading",
        "--verify",
        "--ready-timeout",
        "3",
        "-m",
        "never typed",
    ]);
    fx.start_roster_agent("slow");
    let slow = fx.run(&[
        "agent",
        "send",
        "slow",
        "--verify",
        "--ready-timeout",
        "1",
        "-m",
        "too early",
    ]);

    assert_eq!(
        loading.status.code(),
        Some(5),
        "{}{}",
        stdout(&loading),
        stderr(&loading)
    );
    assert_eq!(stdout(&loading), "loading: NOT-READY\n");
    assert!(
        stderr(&loading).contains("its terminal is still in line mode")
            && stderr(&loading).contains("nothing was typed"),
        "{}",
        stderr(&loading)
    );
    assert!(!fx.pane_text("loading").contains("never typed"));
    assert_eq!(slow.status.code(), Some(5), "{}", stderr(&slow));
    assert!(
        stderr(&slow).contains("the screen does not match the runtime's ready_pattern `(?m)^> `"),
        "{}",
        stderr(&slow)
    );
    fx.wait_for_pane("slow", "stand-in TUI ready");
    assert_eq!(settled(&fx, "slow"), Vec::<String>::new());
    assert!(!fx.pane_text("slow").contains("too early"));
}

#[test]
fn a_held_queue_makes_the_agent_busy_and_nothing_is_typed() {
    let Some(fx) = world() else { return };
    started(&fx, "tui");
    let queue = fx
        .world
        .tmpdir()
        .join(format!("tmux-{}", uid()))
        .join("mosaic-send.fleet-verbs/tui");
    std::fs::create_dir_all(&queue).unwrap();
    let head = queue.join(format!("w.{:020}", 0));
    // Another sender holding the agent: a process with the first file locked.
    let mut holder = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"exec {fd}>"$1"; flock -x "$fd"; echo "$BASHPID other-sender" >&"$fd"; exec sleep 60"#)
        .arg("holder")
        .arg(&head)
        .spawn()
        .unwrap();
    wait_until("the holder", || {
        std::fs::read_to_string(&head).is_ok_and(|t| t.contains("other-sender"))
    });

    let out = fx.run(&[
        "agent", "send", "tui", "--verify", "--wait", "1", "-m", "queued",
    ]);
    holder.kill().unwrap();
    holder.wait().unwrap();

    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert_eq!(stdout(&out), "tui: BUSY\n");
    assert!(
        stderr(&out).contains("1 sender(s) ahead after waiting 1 s")
            && stderr(&out).contains("other-sender"),
        "{}",
        stderr(&out)
    );
    // The dead holder's file is cleaned up by the next sender.
    assert_eq!(settled(&fx, "tui"), Vec::<String>::new());
    assert!(!head.exists());
}

#[test]
fn a_paste_that_never_shows_is_unconfirmed_and_gets_no_enter() {
    let Some(fx) = world() else { return };
    fx.start_roster_agent("mute");

    let out = fx.run(&["agent", "send", "mute", "--verify", "-m", "into the void"]);

    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "mute: UNCONFIRMED\n");
    assert!(
        stderr(&out).contains("did not show on the input line")
            && stderr(&out).contains("Enter was not pressed"),
        "{}",
        stderr(&out)
    );
    let got = std::fs::read_to_string(fx.home().join("mute.log")).unwrap();
    // Pasted (the program never asked for bracketed paste), never submitted.
    assert_eq!(got, format!("{}into the void", preamble("mute")));
}

#[test]
fn sending_right_after_start_waits_for_the_slow_and_the_flushing_tui() {
    let Some(fx) = world() else { return };
    let text = "first line\nsecond line\nthird line";

    let mut sends = Vec::new();
    for agent in ["slow", "flush"] {
        fx.start_roster_agent(agent);
        let child = fx
            .fleet()
            .args(["agent", "send", agent, "--verify", "-m", text])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        sends.push((agent, child));
    }

    for (agent, child) in sends {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            stdout(&out),
            format!("{agent}: ACCEPTED\n"),
            "{}",
            stderr(&out)
        );
        assert_eq!(
            settled(&fx, agent),
            [format!("{}{text}", preamble(agent))],
            "{agent}"
        );
    }
}

fn uid() -> u32 {
    // SAFETY: getuid cannot fail and has no preconditions.
    unsafe { libc::getuid() }
}
