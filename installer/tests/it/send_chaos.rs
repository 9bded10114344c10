//! The chaos test of issue 11: 8 concurrent senders × 25 messages each
//! (one line, multi-line, 10 KB, unicode, a leading `-`, CRLF) to 3 agents
//! (`tests/fixtures/send/chaos-roster.yaml`: stand-in TUIs, plain, busy
//! after Enter, summarising long pastes), half through `mosaic-fleet agent
//! send --verify`, half through the shipped `agent-send.sh` (two of those
//! with the roster's ready pattern, two waiting for a still screen).
//!
//! Checked against what each agent logged: every message exactly once,
//! whole, as one submission; each sender's messages to an agent in the
//! order sent; zero empty submissions; every outcome (`--verify`'s word, the
//! script's exit code) matches the log. Repeated `MOSAIC_CHAOS_RUNS` times
//! (default 3); each run starts fresh programs.

use crate::support::fleet as harness;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::Command;
use std::time::Instant;

use harness::{short_host, stderr, stdout, wait_until, FleetWorld, SOCKET};
use mosaic_tests::templates_dir;

const AGENTS: [&str; 3] = ["c1", "c2", "c3"];
const SENDERS: usize = 8;
const MESSAGES: usize = 25;

/// One message as sent, and what its agent must log for it.
struct Sent {
    sender: usize,
    index: usize,
    agent: &'static str,
    expected: String,
    accepted: bool,
    outcome: String,
}

/// Message `index` of `sender`: the six kinds in turn, tagged so that every
/// one is unique and its end is recognisable.
fn body(sender: usize, index: usize) -> String {
    let tag = format!("s{sender}m{index}");
    match index % 6 {
        0 => format!("{tag} one line, plain"),
        1 => format!("{tag} first line\nsecond line\n\nfourth line, end of {tag}"),
        2 => {
            let filler: String = (0..250)
                .map(|n| format!("{n:03} ten kilobytes of text, to be delivered whole. "))
                .collect();
            format!("{tag} {}end of {tag}", &filler[..10 * 1024])
        }
        3 => format!("{tag} ünïcødé ✓ 日本語 — «quotes» 🚀 $HOME `date` \\n end of {tag}"),
        4 => format!("- {tag} fix the test\n- then the other one"),
        _ => format!("{tag} with CRLF\r\nsecond line\r\nend of {tag}\r\n"),
    }
}

/// What the agent receives: CRLF and CR made LF, trailing newlines dropped.
fn normalized(body: &str) -> String {
    body.replace("\r\n", "\n")
        .replace('\r', "\n")
        .trim_end_matches('\n')
        .to_owned()
}

/// A command as the world builds it (program and environment), in a form
/// that sender threads can share.
#[derive(Clone)]
struct Recipe {
    program: OsString,
    env: Vec<(OsString, Option<OsString>)>,
}

impl Recipe {
    fn of(command: &Command) -> Recipe {
        Recipe {
            program: command.get_program().to_owned(),
            env: command
                .get_envs()
                .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
                .collect(),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command
    }
}

/// Send every message of `sender` in order; the outcome of each.
fn run_sender(fleet: &Recipe, agent_send: &Recipe, sender: usize) -> Vec<Sent> {
    let host = short_host();
    let label = format!("chaos:s{sender}");
    (0..MESSAGES)
        .map(|index| {
            let agent = AGENTS[(sender + index) % AGENTS.len()];
            let text = body(sender, index);
            let (accepted, outcome) = if sender < SENDERS / 2 {
                let out = fleet
                    .command()
                    .args(["agent", "send", agent, "--verify", "--from", &label])
                    .args(["--wait", "900", "--ready-timeout", "300", "-m", &text])
                    .output()
                    .expect("run mosaic-fleet");
                let word = stdout(&out);
                (
                    word == format!("{agent}: ACCEPTED\n") && out.status.success(),
                    format!("{}{}", word.trim(), stderr(&out)),
                )
            } else {
                let mut command = agent_send.command();
                command
                    .args(["-L", SOCKET, "-s", agent, "-S", &label])
                    .args(["-w", "900", "-R", "300"]);
                if sender.is_multiple_of(2) {
                    command.args(["-P", "^> "]);
                }
                let out = command
                    .args(["-m", &text])
                    .output()
                    .expect("run agent-send.sh");
                (
                    out.status.success(),
                    format!("exit {:?} {}", out.status.code(), stderr(&out)),
                )
            };
            Sent {
                sender,
                index,
                agent,
                expected: format!("[{label} -> {host}:{agent}] {}", normalized(&text)),
                accepted,
                outcome,
            }
        })
        .collect()
}

/// Fresh programs for every agent, each with an empty log.
fn start_agents(fx: &FleetWorld) {
    for agent in AGENTS {
        let _ = fx.tmux(&["kill-session", "-t", &format!("={agent}")]);
        let _ = std::fs::remove_file(fx.home().join(format!("{agent}.log")));
        fx.start_roster_agent(agent);
        fx.wait_for_pane(agent, "stand-in TUI ready");
    }
}

/// Every problem one run shows, checked against the agents' logs.
fn check_run(fx: &FleetWorld, sent: &[Sent]) -> Vec<String> {
    let mut problems = Vec::new();
    for agent in AGENTS {
        // An end marker, once everything else is in: nothing arrives after.
        let marker = fx.run(&["agent", "send", agent, "--from", "end", "-m", "end-of-run"]);
        assert!(marker.status.success(), "end marker: {}", stderr(&marker));
        let end = format!("[end -> {}:{agent}] end-of-run", short_host());
        wait_until("the end marker", || {
            fx.submissions(agent).last() == Some(&end)
        });
        let mut log = fx.submissions(agent);
        log.pop();
        let mut seen: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (at, text) in log.iter().enumerate() {
            if text.trim().is_empty() {
                problems.push(format!("{agent}: empty submission #{}", at + 1));
                continue;
            }
            match sent
                .iter()
                .find(|s| s.agent == agent && s.expected == *text)
            {
                Some(s) => seen.entry(s.expected.as_str()).or_default().push(at),
                None => problems.push(format!(
                    "{agent}: submission #{} is no message as sent (merged, split or cut): {:.200}",
                    at + 1,
                    text
                )),
            }
        }
        for s in sent.iter().filter(|s| s.agent == agent) {
            let times = seen.get(s.expected.as_str()).map_or(0, Vec::len);
            match (s.accepted, times) {
                (true, 1) => {}
                (true, n) => problems.push(format!(
                    "s{}m{} to {agent}: ACCEPTED but logged {n} times",
                    s.sender, s.index
                )),
                (false, 0) => problems.push(format!(
                    "s{}m{} to {agent}: not accepted ({}), and not logged",
                    s.sender, s.index, s.outcome
                )),
                (false, n) => problems.push(format!(
                    "s{}m{} to {agent}: reported {} but logged {n} times",
                    s.sender, s.index, s.outcome
                )),
            }
        }
        for sender in 0..SENDERS {
            let order: Vec<usize> = sent
                .iter()
                .filter(|s| s.agent == agent && s.sender == sender)
                .filter_map(|s| seen.get(s.expected.as_str())?.first().copied())
                .collect();
            if order.windows(2).any(|w| w[0] > w[1]) {
                problems.push(format!("{agent}: sender {sender}'s messages out of order"));
            }
        }
    }
    problems
}

#[test]
fn eight_senders_through_both_tools_deliver_every_message_once_whole_in_order() {
    let Some(fx) = FleetWorld::with_roster("send/chaos-roster.yaml") else {
        return;
    };
    if !mosaic_tests::require_tool(
        "flock",
        "agent-send.sh takes the agent's send queue with it",
    ) {
        return;
    }
    fx.start_holder();
    let runs: usize = std::env::var("MOSAIC_CHAOS_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let mut failures = Vec::new();
    for run in 1..=runs {
        start_agents(&fx);
        let started = Instant::now();
        let fleet = Recipe::of(&fx.fleet());
        let mut script = fx
            .world
            .command(templates_dir().join("framework/tools/tmux/agent-send.sh"));
        script.env("HOME", fx.home());
        let agent_send = Recipe::of(&script);
        let sent: Vec<Sent> = std::thread::scope(|scope| {
            let senders: Vec<_> = (0..SENDERS)
                .map(|sender| {
                    let (fleet, agent_send) = (&fleet, &agent_send);
                    scope.spawn(move || run_sender(fleet, agent_send, sender))
                })
                .collect();
            senders
                .into_iter()
                .flat_map(|s| s.join().expect("a sender thread panicked"))
                .collect()
        });
        let problems = check_run(&fx, &sent);
        let accepted = sent.iter().filter(|s| s.accepted).count();
        eprintln!(
            "chaos run {run}/{runs}: {} messages, {accepted} accepted, {} problems, {:.1} s",
            sent.len(),
            problems.len(),
            started.elapsed().as_secs_f64()
        );
        failures.extend(problems.into_iter().map(|p| format!("run {run}: {p}")));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    fx.assert_default_server_untouched();
}
