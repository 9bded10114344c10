//! Real-tmux tests of the bundle's shell scripts: the shipped `test-*.sh`
//! self-tests must pass, and `send-message.sh`, `agent-send.sh` and
//! `start-agent-session.sh` are driven directly against panes running the
//! stand-ins the self-tests use too (`tools/selftest/`: a recorder of submitted lines, a
//! sink that never accepts Enter, an ssh stand-in).
//!
//! Every test runs in its own `TmuxWorld` and first plants a session on that
//! world's *default* tmux server; at the end that server must be exactly as it
//! was, which shows the scripts only ever talk to their named socket.

use crate::support::scripts as harness;

use harness::{short_host, tricky_message, wait_until, Fixture, SOCKET};
use mosaic_tests::{require_tool, templates_dir};

/// Runs a shipped self-test and checks it passed with `checks` ok lines.
fn assert_self_test_passes(script: &str, checks: usize) {
    let Some(fx) = Fixture::new() else { return };
    let out = fx.script(script).output().expect("run self-test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oks = stdout.lines().filter(|l| l.starts_with("ok - ")).count();
    assert_eq!(oks, checks, "{script} printed:\n{stdout}");
    assert!(!stdout.contains("not ok"), "{stdout}");
    fx.assert_default_server_untouched();
}

#[test]
fn shipped_send_message_self_test_passes() {
    assert_self_test_passes("framework/tools/tmux/test-send-message-socket.sh", 15);
}

#[test]
fn shipped_start_agent_session_self_test_passes() {
    assert_self_test_passes("framework/tools/fleet/test-start-agent-session.sh", 11);
}

#[test]
fn shipped_fleet_units_self_test_passes_on_rendered_units() {
    let Some(fx) = Fixture::new() else { return };
    fx.install_rendered_tree();
    let out = fx.run_fleet_units_test();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "test-fleet-units.sh failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in [
        "ok - agent unit requires, follows and is part of the holder",
        "ok - agent unit starts through start-agent-session.sh and stops =%i exactly",
        "ok - ExecStop of agent-1 leaves agent-10 running",
    ] {
        assert!(stdout.contains(check), "no `{check}` in:\n{stdout}");
    }
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok - ")).count(), 8);
    fx.assert_default_server_untouched();
}

#[test]
fn fleet_units_self_test_rejects_a_prefix_matching_stop() {
    let Some(fx) = Fixture::new() else { return };
    fx.install_rendered_tree();
    let unit = fx.home().join(".config/systemd/user/mosaic-agent@.service");
    let text = std::fs::read_to_string(&unit).expect("read agent unit");
    assert!(
        text.contains(r#"-t "=%i""#),
        "unexpected ExecStop in:\n{text}"
    );
    std::fs::write(&unit, text.replace(r#"-t "=%i""#, "-t %i")).expect("edit unit");
    let out = fx.run_fleet_units_test();
    assert!(!out.status.success(), "a stop without `=` passed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not ok - agent unit starts through start-agent-session.sh"),
        "{stdout}"
    );
    fx.assert_default_server_untouched();
}

#[test]
fn send_message_submits_tricky_4k_text_exactly_once() {
    let Some(fx) = Fixture::new() else { return };
    let message = tricky_message();
    assert!(message.len() >= 4096);
    let record = fx.start_recorder("rec");
    mosaic_tests::assert_ok(&fx.send(&["-t", "=rec", &message]), "send-message");
    fx.expect_record("rec", &record, &[&message]);
    fx.assert_default_server_untouched();
}

#[test]
fn send_message_base64_input_delivers_the_same_bytes() {
    let Some(fx) = Fixture::new() else { return };
    let message = tricky_message();
    let encoded = harness::base64(&message);
    let record = fx.start_recorder("rec");
    mosaic_tests::assert_ok(&fx.send(&["-t", "=rec", "-b", &encoded]), "send-message -b");
    fx.expect_record("rec", &record, &[&message]);
    fx.assert_default_server_untouched();
}

#[test]
fn session_target_is_normalized_to_its_first_pane() {
    let Some(fx) = Fixture::new() else { return };
    let first = fx.start_recorder("rec");
    let second = fx.path("second.rec");
    // split-window makes the new pane =rec:0.1 the active one: a bare `=rec`
    // target would mean it.
    let recorder = harness::stand_in("recorder.sh");
    let split = fx.tmux(&[
        "split-window",
        "-t",
        "=rec:0.0",
        recorder.to_str().unwrap(),
        second.to_str().unwrap(),
    ]);
    mosaic_tests::assert_ok(&split, "split-window");
    fx.wait_for_pane("=rec:0.1", "ready>");
    mosaic_tests::assert_ok(&fx.send(&["-v", "-t", "=rec", "to pane 0"]), "send-message");
    fx.expect_record("rec", &first, &["to pane 0"]);
    assert_eq!(harness::lines(&second), Vec::<String>::new());
    fx.assert_default_server_untouched();
}

#[test]
fn draft_left_on_the_input_line_is_reported() {
    let Some(fx) = Fixture::new() else { return };
    let sink = harness::stand_in("sink.sh");
    fx.new_session("sink", &[sink.to_str().unwrap()]);
    fx.wait_for_pane("=sink:0.0", "sink>");
    let out = fx.send(&["-r", "2", "-t", "=sink", "this never gets submitted"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("still an unsubmitted draft"), "{stderr}");
    assert!(fx
        .pane_text("=sink:0.0")
        .contains("this never gets submitted"));
    fx.assert_default_server_untouched();
}

#[test]
fn aiming_at_agent_1_never_touches_agent_10() {
    let Some(fx) = Fixture::new() else { return };
    fx.start_holder();
    let record_10 = fx.start_recorder("agent-10");

    let missing = fx.send(&["-t", "=agent-1", "for agent-1"]);
    assert_eq!(missing.status.code(), Some(3), "{missing:?}");

    let record_1 = fx.path("agent-1.rec");
    let command = format!(
        "{} {}",
        harness::stand_in("recorder.sh").display(),
        record_1.display()
    );
    let started = fx.start_agent(&["agent-1"], &[("MOSAIC_AGENT_COMMAND", &command)]);
    mosaic_tests::assert_ok(&started, "start agent-1");
    assert!(String::from_utf8_lossy(&started.stdout).starts_with("started"));
    fx.wait_for_pane("=agent-1:0.0", "ready>");
    mosaic_tests::assert_ok(
        &fx.send(&["-t", "=agent-1", "for agent-1"]),
        "send to agent-1",
    );
    wait_until("agent-1 to record its message", || {
        harness::lines(&record_1) == ["for agent-1"]
    });

    // The agent unit's ExecStop, with the unit's exact-match target.
    mosaic_tests::assert_ok(
        &fx.tmux(&["kill-session", "-t", "=agent-1"]),
        "ExecStop agent-1",
    );
    assert_eq!(fx.world.sessions(SOCKET), ["_holder", "agent-10"]);
    fx.expect_record("agent-10", &record_10, &[]);
    fx.assert_default_server_untouched();
}

#[test]
fn start_agent_session_starts_then_reuses() {
    let Some(fx) = Fixture::new() else { return };
    fx.start_holder();
    let env_dir = fx.home().join(".config/mosaic/fleet/agents");
    std::fs::create_dir_all(&env_dir).expect("create agents dir");
    // The installer's quoting: double quotes with \\ \" \$ \` escaped.
    std::fs::write(
        env_dir.join("agent-1.env"),
        "MOSAIC_AGENT_RUNTIME=\"claude\"\nMOSAIC_AGENT_WORKDIR=\"~/work\"\n\
         MOSAIC_AGENT_COMMAND=\"sleep 3600 # \\\"quoted\\\" \\$HOME\"\n",
    )
    .expect("write env file");

    let first = fx.start_agent(&["agent-1"], &[]);
    mosaic_tests::assert_ok(&first, "first start");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.starts_with("started session agent-1"), "{stdout}");
    let second = fx.start_agent(&["agent-1"], &[]);
    mosaic_tests::assert_ok(&second, "second start");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.starts_with("reusing session agent-1"), "{stdout}");

    assert_eq!(fx.world.sessions(SOCKET), ["_holder", "agent-1"]);
    let cwd = fx.tmux(&[
        "display-message",
        "-p",
        "-t",
        "=agent-1:0.0",
        "#{pane_current_path}",
    ]);
    let workdir = fx.home().join("work");
    assert_eq!(
        String::from_utf8_lossy(&cwd.stdout).trim(),
        workdir.to_str().unwrap()
    );
    fx.assert_default_server_untouched();
}

#[test]
fn start_agent_session_rejects_unsafe_names_and_needs_the_holder() {
    let Some(fx) = Fixture::new() else { return };
    for (name, why) in [
        ("a.b", "renames a session called 'a.b' to 'a_b'"),
        ("a:b", "session:window separator"),
        ("-x", "starts with '-'"),
        ("", "is empty"),
    ] {
        let out = fx.start_agent(&["--", name], &[("MOSAIC_AGENT_RUNTIME", "claude")]);
        assert_eq!(out.status.code(), Some(2), "{name:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("invalid agent name '{name}'")),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{name:?}: {stderr}");
    }
    let out = fx.start_agent(&["agent-1"], &[("MOSAIC_AGENT_RUNTIME", "claude")]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("systemctl --user start mosaic-tmux-holder.service"),
        "{stderr}"
    );
    assert_eq!(fx.world.sessions(SOCKET), Vec::<String>::new());
    fx.assert_default_server_untouched();
}

#[test]
fn supervise_exits_non_zero_once_the_session_is_killed() {
    let Some(fx) = Fixture::new() else { return };
    fx.start_holder();
    let mut supervisor = fx
        .start_agent_command(
            &["--supervise", "agent-1"],
            &[("MOSAIC_AGENT_COMMAND", "sleep 3600")],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn start-agent-session.sh --supervise");
    wait_until("agent-1 to start", || {
        fx.world.sessions(SOCKET).contains(&"agent-1".into())
    });
    mosaic_tests::assert_ok(
        &fx.tmux(&["kill-session", "-t", "=agent-1"]),
        "kill agent-1",
    );
    let status = harness::wait_for_exit(&mut supervisor);
    assert_eq!(status.code(), Some(1));
    let stderr = std::io::read_to_string(supervisor.stderr.take().unwrap()).unwrap();
    assert!(
        stderr.contains("session agent-1 on tmux socket"),
        "{stderr}"
    );
    fx.assert_default_server_untouched();
}

#[test]
fn agent_send_prepends_the_addressing_preamble() {
    let Some(fx) = Fixture::new() else { return };
    let record = fx.start_recorder("rec");
    let agent_send = templates_dir().join("framework/tools/tmux/agent-send.sh");
    // From inside tmux: the source is the sender's own session.
    fx.new_session(
        "sender",
        &[
            agent_send.to_str().unwrap(),
            "-L",
            SOCKET,
            "-s",
            "rec",
            "-n",
            "far",
            "-m",
            "hi",
        ],
    );
    wait_until("the sender's message", || {
        harness::lines(&record).len() == 1
    });
    let out = fx
        .script("framework/tools/tmux/agent-send.sh")
        .args([
            "-L",
            SOCKET,
            "-s",
            "rec",
            "-S",
            "ops:console",
            "-m",
            "from ops",
        ])
        .output()
        .expect("run agent-send.sh");
    mosaic_tests::assert_ok(&out, "agent-send -S");
    let host = short_host();
    fx.expect_record(
        "rec",
        &record,
        &[
            &format!("[{host}:sender -> far:rec] hi"),
            &format!("[ops:console -> {host}:rec] from ops"),
        ],
    );
    fx.assert_default_server_untouched();
}

#[test]
fn agent_send_remote_ships_send_message_over_ssh() {
    if !require_tool("base64", "decodes what agent-send ships") {
        return;
    }
    let Some(fx) = Fixture::new() else { return };
    let record = fx.start_recorder("rec");
    let message = tricky_message();
    let log = fx.path("ssh.log");
    let out = fx.remote_agent_send(&log, &message);
    mosaic_tests::assert_ok(&out, "agent-send -H");
    fx.expect_record(
        "rec",
        &record,
        &[&format!("[me:here -> remote.example:rec] {message}")],
    );

    let args = harness::lines(&log);
    assert!(args.contains(&"bob@remote.example".into()), "{args:?}");
    assert!(args.contains(&"BatchMode=yes".into()), "{args:?}");
    let remote = args.last().expect("a remote command");
    let shipped = remote
        .strip_prefix("bash -c \"$(printf %s '")
        .and_then(|rest| rest.split_once("' | base64 -d)\" send-message.sh "))
        .map(|(script, _)| script)
        .unwrap_or_else(|| panic!("unexpected remote command: {remote}"));
    let original = std::fs::read(templates_dir().join("framework/tools/tmux/send-message.sh"))
        .expect("read send-message.sh");
    assert_eq!(harness::base64_decode(shipped), original);
    fx.assert_default_server_untouched();
}
