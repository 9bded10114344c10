//! Agents on other hosts, reached over a real ssh: three local users stand
//! for three hosts, each with its own sshd on 127.0.0.1 and the same roster
//! installed with `mosaic-install --host`. From host A, `mosaic-fleet agent
//! send|status|tail` to agents of B and C must behave as the same verb run
//! on B or C does — the message arrives exactly once in a real tmux pane
//! under B's user, `--verify` outcomes and exit codes are B's own — and
//! `fleet status --hosts` must show every host, and keep showing A and C
//! when B's sshd is stopped. Without `mosaic-fleet` on the remote PATH the
//! send ships `send-message.sh` instead, with the same outcome.

use std::process::Output;

use mosaic_tests::hosts::{Host, Machine};
use mosaic_tests::wait_until;
use mosaic_tests::{describe, text, NO_TMUX_CONFIG};

const SOCKET: &str = "mt-fleet";

struct Fleet {
    machine: Machine,
}

impl Fleet {
    fn host(&self, name: &str) -> &Host {
        self.machine.host(name)
    }

    /// `mosaic-fleet args` as `host`'s user.
    fn fleet(&self, host: &str, args: &[&str]) -> Output {
        let bin = self.machine.bin().join("mosaic-fleet");
        self.machine
            .run_as(self.host(host), bin.to_str().unwrap(), args)
    }

    fn tmux(&self, host: &str, args: &[&str]) -> Output {
        let mut all = vec!["-L", SOCKET];
        all.extend(args);
        self.machine.run_as(self.host(host), "tmux", &all)
    }

    fn record_path(&self, host: &str, agent: &str) -> std::path::PathBuf {
        self.host(host).home.join(format!("{agent}.log"))
    }

    /// The agent's pane on `host`, running the recorder (or the draft sink).
    fn start_agent(&self, host: &str, agent: &str, sink: bool) {
        let bin = self.machine.bin();
        let command = if sink {
            format!("bash {}", bin.join("sink.sh").display())
        } else {
            format!(
                "bash {} {}",
                bin.join("recorder.sh").display(),
                self.record_path(host, agent).display()
            )
        };
        let mut args = NO_TMUX_CONFIG.to_vec();
        args.extend(["new-session", "-d", "-s", agent, "-x", "120", "-y", "30"]);
        args.push(&command);
        let out = self.tmux(host, &args);
        assert!(
            out.status.success(),
            "start {agent} on {host}: {}",
            describe(&out)
        );
        let prompt = if sink { "sink>" } else { "ready>" };
        wait_until(&format!("{agent}'s prompt on {host}"), || {
            let pane = self.tmux(
                host,
                &["capture-pane", "-p", "-t", &format!("={agent}:0.0")],
            );
            text(&pane.stdout).contains(prompt)
        });
    }

    fn record(&self, host: &str, agent: &str) -> Vec<String> {
        std::fs::read_to_string(self.record_path(host, agent))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Everything the agent has received so far: a last message sent on its
    /// own host is waited for, so nothing sent before it is still on its way.
    fn record_settled(&self, host: &str, agent: &str) -> Vec<String> {
        let out = self.fleet(
            host,
            &["agent", "send", agent, "--from", "end", "-m", "end"],
        );
        assert!(out.status.success(), "end marker: {}", describe(&out));
        let marker = format!("[end -> {host}:{agent}] end");
        wait_until(&format!("the end marker in {agent}'s record"), || {
            self.record(host, agent).last() == Some(&marker)
        });
        let mut lines = self.record(host, agent);
        lines.pop();
        lines
    }
}

fn roster(machine: &Machine) -> String {
    let agent = |name: &str, host: &Host| {
        format!(
            "  - name: {name}\n    runtime: claude\n    host: {}\n    ssh: {}\n",
            host.name,
            host.ssh()
        )
    };
    let (a, b, c) = (
        machine.host("host-a"),
        machine.host("host-b"),
        machine.host("host-c"),
    );
    format!(
        "# Agents on three hosts.\nversion: 1\ntransport: tmux\ntmux:\n  socket_name: {SOCKET}\nagents:\n{}{}{}{}{}",
        agent("alpha", a),
        agent("bravo", b),
        agent("delta", b),
        agent("charlie", c),
        agent("echo", c),
    )
}

/// Three hosts with the roster installed and the agents' panes up: alpha on
/// A, bravo (recorder) and delta (draft sink) on B, charlie on C; echo on C
/// has no session.
fn fleet() -> Option<Fleet> {
    let machine = Machine::new(&["host-a", "host-b", "host-c"], crate::support::PRODUCT)?;
    let roster_file = machine.root().join("roster.yaml");
    std::fs::write(&roster_file, roster(&machine)).expect("write the roster");
    let install = machine.bin().join("mosaic-install");
    for host in &machine.hosts {
        let out = machine.run_as(
            host,
            install.to_str().unwrap(),
            &[
                "--host",
                &host.name,
                "--no-systemctl",
                "--profile",
                roster_file.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "install on {}: {}",
            host.name,
            describe(&out)
        );
    }
    let fleet = Fleet { machine };
    fleet.start_agent("host-a", "alpha", false);
    fleet.start_agent("host-b", "bravo", false);
    fleet.start_agent("host-b", "delta", true);
    fleet.start_agent("host-c", "charlie", false);
    Some(fleet)
}

#[test]
fn remote_agents_are_reached_over_ssh_with_their_hosts_outcomes() {
    let Some(mut fx) = fleet() else { return };

    // Each host installed exactly its own agents.
    for (host, agents) in [
        ("host-a", vec!["alpha.env"]),
        ("host-b", vec!["bravo.env", "delta.env"]),
        ("host-c", vec!["charlie.env", "echo.env"]),
    ] {
        let dir = fx.host(host).home.join(".config/mosaic/fleet/agents");
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, agents, "env files on {host}");
    }

    // A message from A arrives exactly once in B's pane, with B's name.
    let sent = fx.fleet(
        "host-a",
        &[
            "agent",
            "send",
            "bravo",
            "--from",
            "ops:desk",
            "-m",
            "hello bravo",
        ],
    );
    assert!(sent.status.success(), "send to bravo: {}", describe(&sent));
    assert!(
        text(&sent.stdout).starts_with("delivered to bravo ("),
        "{}",
        describe(&sent)
    );
    assert_eq!(
        fx.record_settled("host-b", "bravo"),
        ["[ops:desk -> host-b:bravo] hello bravo"]
    );

    // --verify and the default sender label (this host's name) on C.
    let verified = fx.fleet(
        "host-a",
        &["agent", "send", "charlie", "--verify", "-m", "hi c"],
    );
    assert_eq!(
        text(&verified.stdout),
        "charlie: ACCEPTED\n",
        "{}",
        describe(&verified)
    );
    assert_eq!(verified.status.code(), Some(0));
    let got = fx.record_settled("host-c", "charlie");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("[host-a:") && got[0].ends_with(" -> host-c:charlie] hi c"),
        "{got:?}"
    );

    // DRAFT and DOWN: the same words and exit codes as a send on that host.
    for (agent, host, word, code) in [
        ("delta", "host-b", "DRAFT", 1),
        ("echo", "host-c", "DOWN", 3),
    ] {
        let args = ["agent", "send", agent, "--verify", "-r", "1", "-m", "x"];
        let remote = fx.fleet("host-a", &args);
        let local = fx.fleet(host, &args);
        assert_eq!(
            text(&remote.stdout),
            format!("{agent}: {word}\n"),
            "{}",
            describe(&remote)
        );
        assert_eq!(remote.status.code(), Some(code), "{}", describe(&remote));
        assert_eq!(
            (text(&remote.stdout), remote.status.code()),
            (text(&local.stdout), local.status.code()),
            "remote and local sends to {agent} differ"
        );
    }

    // status and tail of a remote agent are its host's own.
    let status = fx.fleet("host-a", &["agent", "status", "bravo"]);
    let local_status = fx.fleet("host-b", &["agent", "status", "bravo"]);
    assert_eq!(status.status.code(), local_status.status.code());
    for out in [&status, &local_status] {
        assert!(
            text(&out.stdout)
                .lines()
                .any(|l| l.starts_with("bravo ") && l.contains("alive")),
            "{}",
            describe(out)
        );
    }
    let tail = fx.fleet("host-a", &["agent", "tail", "bravo", "-n", "5"]);
    assert!(tail.status.success(), "tail: {}", describe(&tail));
    assert!(
        text(&tail.stdout).contains("hello bravo"),
        "{}",
        describe(&tail)
    );

    // Every host in one table.
    let all = fx.fleet("host-a", &["fleet", "status", "--hosts"]);
    let table = text(&all.stdout);
    for (host, agent) in [
        ("host-a", "alpha"),
        ("host-b", "bravo"),
        ("host-b", "delta"),
        ("host-c", "charlie"),
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(host) && l.contains(agent) && l.contains("alive")),
            "no live {agent} row for {host}:\n{}",
            describe(&all)
        );
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("host-c") && l.contains("echo") && l.contains("down")),
        "{table}"
    );
    assert!(!table.contains("unreachable"), "{table}");
    let json = fx.fleet("host-a", &["--json", "fleet", "status", "--hosts"]);
    let report: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&json)));
    let hosts: Vec<&str> = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["host-a", "host-b", "host-c"]);

    // B's sshd stopped: B is unreachable, A and C still answer.
    fx.machine.host_mut("host-b").stop_sshd();
    let partial = fx.fleet("host-a", &["fleet", "status", "--hosts"]);
    let table = text(&partial.stdout);
    assert_eq!(partial.status.code(), Some(1), "{}", describe(&partial));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("host-b") && l.contains("unreachable")),
        "{table}"
    );
    assert!(table
        .lines()
        .any(|l| l.starts_with("host-a") && l.contains("alpha")));
    assert!(table
        .lines()
        .any(|l| l.starts_with("host-c") && l.contains("charlie")));
    assert!(!table.lines().any(|l| l.contains("bravo")), "{table}");
    let down = fx.fleet("host-a", &["agent", "send", "bravo", "-m", "lost"]);
    assert_eq!(down.status.code(), Some(3), "{}", describe(&down));
    assert!(
        text(&down.stderr).contains("bravo: DOWN: host host-b is unreachable over ssh"),
        "{}",
        describe(&down)
    );
    fx.machine.host_mut("host-b").restart_sshd();
    assert_eq!(
        fx.record_settled("host-b", "bravo"),
        [
            "[ops:desk -> host-b:bravo] hello bravo",
            "[end -> host-b:bravo] end"
        ],
        "a send to an unreachable host must deliver nothing"
    );

    // No mosaic-fleet on C: the shipped send-message.sh delivers, once.
    fx.machine.set_remote_path(fx.host("host-c"), false);
    let shipped = fx.fleet(
        "host-a",
        &[
            "agent",
            "send",
            "charlie",
            "--verify",
            "--from",
            "ops:desk",
            "-m",
            "via script",
        ],
    );
    assert_eq!(
        text(&shipped.stdout),
        "charlie: ACCEPTED\n",
        "{}",
        describe(&shipped)
    );
    assert_eq!(
        fx.record_settled("host-c", "charlie")
            .last()
            .map(String::as_str),
        Some("[ops:desk -> host-c:charlie] via script")
    );
    let no_status = fx.fleet("host-a", &["agent", "status", "charlie"]);
    assert_eq!(no_status.status.code(), Some(1));
    assert!(
        text(&no_status.stderr).contains("mosaic-fleet is not installed on host host-c"),
        "{}",
        describe(&no_status)
    );
}
