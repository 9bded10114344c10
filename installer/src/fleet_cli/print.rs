//! Output of `mosaic-fleet`: tables and lines for people, one JSON document
//! per command for tools (`--json`). Nothing here decides anything.

use std::io::Write;

use crate::report::print_json;
use crate::rollout::RolloutReport;
use crate::transport::{Delivery, Readiness};
use crate::verbs::agent::{ResetMethod, ResetReport, UnitActionReport};
use crate::verbs::fleet::{AgentStatus, StatusReport, StopReport, VerifyReport};
use crate::verbs::membership::MembershipReport;
use crate::verbs::send::SendReport;
use crate::verbs::units::UnitState;
use crate::verbs::AgentView;

/// Columns padded to their widest cell, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        let padded: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

fn unit_cell(unit: Option<&UnitState>) -> String {
    match unit {
        Some(u) => format!("{} ({})", u.active, u.sub),
        None => "unknown".into(),
    }
}

/// `42s`, `3m05s`, `2h07m`, `3d04h`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86400, secs % 86400 / 3600),
    }
}

fn agent_row(agent: &AgentStatus) -> Vec<String> {
    let session = &agent.session;
    vec![
        agent.name.clone(),
        unit_cell(agent.unit.as_ref()),
        if session.alive { "alive" } else { "down" }.into(),
        or_dash(session.command.as_deref().filter(|_| session.alive)),
        session
            .idle_secs
            .filter(|_| session.alive)
            .map_or("-".into(), duration),
        agent
            .unit
            .as_ref()
            .and_then(|u| u.restarts)
            .map_or("-".into(), |n| n.to_string()),
    ]
}

pub fn status(report: &StatusReport, json: bool) {
    if json {
        return print_json(report);
    }
    println!(
        "holder: {} {}; {} session {} {}",
        crate::systemd::HOLDER_UNIT,
        unit_cell(report.holder_unit.as_ref()),
        report.transport,
        report.holder_session,
        if report.holder_up { "up" } else { "down" }
    );
    let rows: Vec<Vec<String>> = report.agents.iter().map(agent_row).collect();
    table(
        &["AGENT", "UNIT", "SESSION", "COMMAND", "IDLE", "RESTARTS"],
        &rows,
    );
    if let Some(why) = &report.systemd_error {
        println!("unit states unknown: no systemd user manager answered ({why})");
    }
}

/// One redraw of `status --watch`: the screen cleared, or one JSON line.
pub fn status_frame(report: &StatusReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serializes")
        );
    } else {
        print!("\x1b[H\x1b[2J");
        println!("mosaic-fleet fleet status --watch (every 2s; Ctrl-C to stop)\n");
        status(report, false);
    }
    let _ = std::io::stdout().flush();
}

pub fn verify(report: &VerifyReport, json: bool) {
    if json {
        return print_json(report);
    }
    for check in &report.checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        println!("{mark}  {}: {}", check.check, check.detail);
    }
    let failed = report.failures().count();
    if failed == 0 {
        println!("fleet verify: all {} checks passed", report.checks.len());
    } else {
        println!(
            "fleet verify: {failed} of {} checks failed:",
            report.checks.len()
        );
        for check in report.failures() {
            println!("  - {}: {}", check.check, check.detail);
        }
    }
}

pub fn rollout(report: &RolloutReport, json: bool) {
    if json {
        return print_json(report);
    }
    for step in &report.steps {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        println!(
            "{mark}  {} ({} ms): {}",
            step.step, step.millis, step.detail
        );
    }
    if !report.stopped.is_empty() {
        println!("stopped again: {}", report.stopped.join(" "));
    }
    println!(
        "fleet start: {}",
        if report.ok {
            "every step verified"
        } else {
            "failed"
        }
    );
}

pub fn stop(report: &StopReport, json: bool) {
    if json {
        return print_json(report);
    }
    println!("stopped {}", report.stopped.join(" "));
    if !report.sessions_left.is_empty() {
        println!("still alive: {}", report.sessions_left.join(", "));
    }
}

pub fn roster(agents: &[AgentView], json: bool) {
    if json {
        return print_json(&agents);
    }
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.runtime.clone(),
                or_dash(a.class.as_deref()),
                or_dash(a.model.as_deref()),
                or_dash(a.host.as_deref()),
                a.socket.clone(),
                or_dash(a.workdir.as_deref()),
                or_dash(Some(&a.command)),
            ]
        })
        .collect();
    table(
        &[
            "AGENT", "RUNTIME", "CLASS", "MODEL", "HOST", "SOCKET", "WORKDIR", "COMMAND",
        ],
        &rows,
    );
}

pub fn unit_action(report: &UnitActionReport, json: bool) {
    if json {
        return print_json(report);
    }
    let session = if report.session_alive {
        "alive"
    } else {
        "gone"
    };
    let verdict = if report.ok { "" } else { " (not as expected)" };
    let ready = match &report.readiness {
        None => String::new(),
        Some(Readiness::Ready { waited_ms }) => {
            format!(
                ", ready for input after {:.1} s",
                *waited_ms as f64 / 1000.0
            )
        }
        Some(Readiness::NotReady { why } | Readiness::Down { why }) => {
            format!(", NOT-READY: {why}")
        }
    };
    println!(
        "{} {}: session {} {session}{ready}{verdict}",
        report.action.verb(),
        report.unit,
        report.agent
    );
}

pub fn membership(verb: &str, report: &MembershipReport, json: bool) {
    if json {
        return print_json(report);
    }
    println!("{verb}: wrote {}", report.roster.display());
    println!("agents: {}", report.agents.join(", "));
    for path in &report.env_written {
        println!("  wrote env file {}", path.display());
    }
    for path in &report.env_kept {
        println!("  kept env file {} (yours)", path.display());
    }
    for path in &report.env_removed {
        println!("  removed env file {}", path.display());
    }
    if let Some(backup) = &report.backup {
        println!("  previous files backed up in {}", backup.display());
    }
    let done = if verb == "remove" {
        "stopped and disabled"
    } else {
        "enabled"
    };
    for unit in &report.units {
        println!("  {done} {unit}");
    }
    if !report.commands.is_empty() {
        println!("no systemd user manager answered; run:");
        for command in &report.commands {
            println!("  {command}");
        }
    }
}

pub fn send(report: &SendReport, verify: bool, json: bool) {
    if json {
        return print_json(report);
    }
    for result in &report.results {
        match (&result.delivery, verify) {
            (_, true) => println!("{}: {}", result.agent, result.outcome),
            (
                Delivery::Accepted {
                    enters,
                    submissions,
                },
                false,
            ) => {
                let parts = if *submissions > 1 {
                    format!("{submissions} submissions, ")
                } else {
                    String::new()
                };
                println!("delivered to {} ({parts}{enters} Enter)", result.agent)
            }
            (other, false) => eprintln!(
                "mosaic-fleet: {}: {}: {}",
                result.agent,
                result.outcome,
                other.why().unwrap_or_default()
            ),
        }
        if verify {
            if let Some(why) = result.delivery.why() {
                eprintln!("mosaic-fleet: {}: {}: {why}", result.agent, result.outcome);
            }
        }
    }
}

pub fn reset(report: &ResetReport, json: bool) {
    if json {
        return print_json(report);
    }
    match &report.method {
        ResetMethod::ResetCommand { command } => {
            println!(
                "reset {}: sent `{command}`: {}",
                report.agent, report.outcome
            )
        }
        ResetMethod::Restart { .. } => println!(
            "reset {}: restarted its unit, kick-start message {}",
            report.agent, report.outcome
        ),
    }
    if let Some(why) = report.delivery.why() {
        eprintln!("mosaic-fleet: {}: {}: {why}", report.agent, report.outcome);
    }
}

pub fn tail(agent: &str, text: &str, json: bool) {
    if json {
        return print_json(&serde_json::json!({ "agent": agent, "output": text }));
    }
    print!("{text}");
}
