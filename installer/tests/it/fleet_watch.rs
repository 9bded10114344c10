//! Watching agents without side effects, against real tmux: `agent watch`
//! and `agent attach --read-only` run in a terminal of another size (tmux in
//! tmux: an outer server whose pane is the operator's terminal), and the
//! agent's window keeps its size, gets no client of its own, and no viewer
//! session is left once the viewer detaches, when the attach fails, or when
//! the agent's session ends meanwhile. `agent tail` shows the visible screen
//! of a full-screen program.

use crate::support::fleet as harness;

use harness::{assert_ok, fixture, stderr, stdout, wait_until, FleetWorld, SOCKET};

/// The operator's terminal: an outer server on its own socket.
const OUTER: &str = "outer-terminal";

fn window(fx: &FleetWorld) -> String {
    let out = fx.tmux(&[
        "display-message",
        "-p",
        "-t",
        "=agent-1:",
        "#{window_width}x#{window_height} [#{window-size}]",
    ]);
    stdout(&out).trim().to_owned()
}

/// Sessions on the fleet's server whose name marks them as viewers.
fn viewers(fx: &FleetWorld) -> Vec<String> {
    fx.world
        .sessions(SOCKET)
        .into_iter()
        .filter(|s| s.contains("@view-"))
        .collect()
}

/// Clients of the fleet's server: `session read-only width`.
fn clients(fx: &FleetWorld) -> Vec<String> {
    let format = "#{client_session} #{client_readonly} #{client_width}";
    let out = fx.tmux(&["list-clients", "-F", format]);
    stdout(&out).lines().map(str::to_owned).collect()
}

/// `mosaic-fleet ARGS` in a 100x20 terminal (the agents' windows are 120x30).
fn in_terminal(fx: &FleetWorld, args: &str) {
    let command = format!(
        "{} --home {} {args}",
        crate::support::PRODUCT.fleet,
        fx.home().display()
    );
    let started = fx.world.run(
        OUTER,
        &[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "20",
            &command,
        ],
    );
    assert_ok(&started, "start the terminal");
}

#[test]
fn watching_keeps_the_agents_size_and_leaves_no_viewer() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let before = window(&fx);
    assert_eq!(before, "120x30 [latest]");

    for args in ["agent watch agent-1", "agent attach agent-1 --read-only"] {
        in_terminal(&fx, args);
        wait_until("the viewer's client", || clients(&fx).len() == 1);
        let client = clients(&fx).remove(0);
        let viewer = viewers(&fx);
        assert_eq!(viewer.len(), 1, "{args}: {viewer:?}");
        assert!(viewer[0].starts_with("agent-1@view-"), "{viewer:?}");
        assert_eq!(client, format!("{} 1 100", viewer[0]), "{args}");
        assert_eq!(window(&fx), "120x30 [manual]", "{args}: while watched");
        let agent_clients = fx.tmux(&["list-clients", "-t", "=agent-1"]);
        assert_eq!(
            stdout(&agent_clients),
            "",
            "{args}: no client on the agent's own session"
        );

        // The operator detaches (the read-only client's one allowed key).
        let tty = stdout(&fx.tmux(&["list-clients", "-F", "#{client_name}"]));
        assert_ok(&fx.tmux(&["detach-client", "-t", tty.trim()]), "detach");
        wait_until("the terminal to close", || {
            fx.world.sessions(OUTER).is_empty()
        });
        assert_eq!(
            viewers(&fx),
            Vec::<String>::new(),
            "{args}: viewer left behind"
        );
        assert_eq!(window(&fx), before, "{args}: after");
    }
    fx.assert_default_server_untouched();
}

#[test]
fn a_failed_attach_leaves_no_viewer() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let before = window(&fx);

    // Not a terminal: tmux refuses to attach.
    let out = fx.run(&["agent", "watch", "agent-1"]);

    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a terminal"), "{}", stderr(&out));
    assert_eq!(viewers(&fx), Vec::<String>::new());
    assert_eq!(window(&fx), before);
    let gone = fx.run(&["agent", "watch", "nobody"]);
    assert_eq!(gone.status.code(), Some(2), "{}", stderr(&gone));
    assert_eq!(
        fx.world.sessions(SOCKET).len(),
        4,
        "holder and three agents"
    );
}

#[test]
fn a_viewer_does_not_outlive_the_agents_session() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    in_terminal(&fx, "agent watch agent-1");
    wait_until("the viewer's client", || clients(&fx).len() == 1);
    let pane_pid = stdout(&fx.tmux(&["display-message", "-p", "-t", "=agent-1:", "#{pane_pid}"]));

    // What the unit's ExecStop does.
    fx.kill_session("agent-1");

    wait_until("the viewer to go", || viewers(&fx).is_empty());
    wait_until("the terminal to close", || {
        fx.world.sessions(OUTER).is_empty()
    });
    let panes = fx.tmux(&["list-panes", "-a", "-F", "#{pane_pid}"]);
    assert!(
        !stdout(&panes).lines().any(|pid| pid == pane_pid.trim()),
        "agent-1's program lives on in a viewer's window"
    );
    assert_eq!(
        fx.world.sessions(SOCKET),
        ["_holder", "agent-10", "sink"],
        "only agent-1 went"
    );
}

#[test]
fn tail_shows_the_visible_screen_of_a_full_screen_program() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_holder();
    let tui = format!("bash {}", fixture("scripts/fake-tui.sh").display());
    let started = fx.tmux(&[
        "new-session",
        "-d",
        "-s",
        "agent-1",
        "-x",
        "80",
        "-y",
        "12",
        &tui,
    ]);
    assert_ok(&started, "start the full-screen program");
    fx.wait_for_pane("agent-1", "> prompt");

    let out = fx.run(&["agent", "tail", "agent-1", "-n", "5"]);

    assert_ok(&out, "agent tail");
    let screen = stdout(&out);
    let rows: Vec<&str> = screen.lines().collect();
    assert_eq!(rows.len(), 12, "the whole 12-row screen:\n{screen}");
    assert_eq!(rows[1], "  FAKE-TUI header");
    assert_eq!(rows[5], "    status: thinking");
    assert_eq!(rows[11], "> prompt");
    assert!(!screen.contains("before the program started"), "{screen}");
}

/// A viewer left by a `mosaic-fleet` that was killed (its pid, in the
/// viewer's name, is gone) is removed by the next watch.
#[test]
fn the_next_watch_removes_a_killed_watchers_viewer() {
    let Some(fx) = FleetWorld::new() else { return };
    fx.start_fleet();
    let orphan = "agent-1@view-4194303";
    assert_ok(
        &fx.tmux(&["new-session", "-d", "-s", orphan, "-t", "=agent-1"]),
        "plant an orphaned viewer",
    );
    assert_eq!(viewers(&fx), [orphan]);

    in_terminal(&fx, "agent watch agent-1");
    wait_until("the viewer's client", || clients(&fx).len() == 1);
    let watching = viewers(&fx);
    assert_eq!(watching.len(), 1, "{watching:?}");
    assert_ne!(watching[0], orphan, "the orphan is still there");
    let tty = stdout(&fx.tmux(&["list-clients", "-F", "#{client_name}"]));
    assert_ok(&fx.tmux(&["detach-client", "-t", tty.trim()]), "detach");
    wait_until("the terminal to close", || {
        fx.world.sessions(OUTER).is_empty()
    });
    assert_eq!(viewers(&fx), Vec::<String>::new());
}
