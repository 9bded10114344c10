//! Output of `mosaic-fleet`: tables and lines for people, one JSON document
//! per command for tools (`--json`). Nothing here decides anything. Every
//! printer writes to the `Write` it is given and returns its error (see
//! [`crate::shared::output`]).

use std::io::{self, Write};

use crate::fleet::remote::HostsReport;
use crate::fleet::verbs::agent::{ResetMethod, ResetReport, UnitActionReport};
use crate::fleet::verbs::fleet_wide::{AgentStatus, StatusReport, StopReport, VerifyReport};
use crate::fleet::verbs::membership::MembershipReport;
use crate::fleet::verbs::send::SendReport;
use crate::fleet::verbs::AgentView;
use crate::install::report::print_json;
use crate::install::rollout::RolloutReport;
use crate::shared::systemd::units::UnitState;
use crate::shared::transport::{Delivery, Readiness};

/// Columns padded to their widest cell, two spaces apart.
fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: Vec<String>| {
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
        writeln!(out, "{}", padded.join("  ").trim_end())
    };
    line(header.iter().map(|h| (*h).to_owned()).collect())?;
    for row in rows {
        line(row.clone())?;
    }
    Ok(())
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
pub(crate) fn duration(secs: u64) -> String {
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

pub(crate) fn status(out: &mut dyn Write, report: &StatusReport, json: bool) -> io::Result<()> {
    if json {
        return print_json(out, report);
    }
    writeln!(
        out,
        "holder: {} {}; {} session {} {}",
        crate::shared::systemd::HOLDER_UNIT,
        unit_cell(report.holder_unit.as_ref()),
        report.transport,
        report.holder_session,
        if report.holder_up { "up" } else { "down" }
    )?;
    let rows: Vec<Vec<String>> = report.agents.iter().map(agent_row).collect();
    table(
        out,
        &["AGENT", "UNIT", "SESSION", "COMMAND", "IDLE", "RESTARTS"],
        &rows,
    )?;
    if let Some(why) = &report.systemd_error {
        writeln!(
            out,
            "unit states unknown: no systemd user manager answered ({why})"
        )?;
    }
    Ok(())
}

/// One redraw of `status --watch`: the screen cleared, or one JSON line.
pub(crate) fn status_frame(
    out: &mut dyn Write,
    report: &StatusReport,
    json: bool,
) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, report)?;
        writeln!(out)
    } else {
        write!(out, "\x1b[H\x1b[2J")?;
        writeln!(
            out,
            "mosaic-fleet fleet status --watch (every 2s; Ctrl-C to stop)\n"
        )?;
        status(out, report, false)
    }
}

pub(crate) fn verify(out: &mut dyn Write, report: &VerifyReport, json: bool) -> io::Result<()> {
    if json {
        return print_json(out, report);
    }
    for check in &report.checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        writeln!(out, "{mark}  {}: {}", check.check, check.detail)?;
    }
    let failed = report.failures().count();
    if failed == 0 {
        writeln!(
            out,
            "fleet verify: all {} checks passed",
            report.checks.len()
        )?;
    } else {
        writeln!(
            out,
            "fleet verify: {failed} of {} checks failed:",
            report.checks.len()
        )?;
        for check in report.failures() {
            writeln!(out, "  - {}: {}", check.check, check.detail)?;
        }
    }
    Ok(())
}

pub(crate) fn rollout(out: &mut dyn Write, report: &RolloutReport, json: bool) -> io::Result<()> {
    if json {
        return print_json(out, report);
    }
    for step in &report.steps {
        let mark = if step.ok { "ok  " } else { "FAIL" };
        writeln!(
            out,
            "{mark}  {} ({} ms): {}",
            step.step, step.millis, step.detail
        )?;
    }
    if !report.stopped.is_empty() {
        writeln!(out, "stopped again: {}", report.stopped.join(" "))?;
    }
    writeln!(
        out,
        "fleet start: {}",
        if report.ok {
            "every step verified"
        } else {
            "failed"
        }
    )?;
    Ok(())
}

pub(crate) fn stop(out: &mut dyn Write, report: &StopReport, json: bool) -> io::Result<()> {
    if json {
        return print_json(out, report);
    }
    writeln!(out, "stopped {}", report.stopped.join(" "))?;
    if !report.sessions_left.is_empty() {
        writeln!(out, "still alive: {}", report.sessions_left.join(", "))?;
    }
    Ok(())
}

pub(crate) fn roster(out: &mut dyn Write, agents: &[AgentView], json: bool) -> io::Result<()> {
    if json {
        return print_json(out, &agents);
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
        out,
        &[
            "AGENT", "RUNTIME", "CLASS", "MODEL", "HOST", "SOCKET", "WORKDIR", "COMMAND",
        ],
        &rows,
    )
}

pub(crate) fn unit_action(
    out: &mut dyn Write,
    report: &UnitActionReport,
    json: bool,
) -> io::Result<()> {
    if json {
        return print_json(out, report);
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
    writeln!(
        out,
        "{} {}: session {} {session}{ready}{verdict}",
        report.action.verb(),
        report.unit,
        report.agent
    )?;
    Ok(())
}

pub(crate) fn membership(
    out: &mut dyn Write,
    verb: &str,
    report: &MembershipReport,
    json: bool,
) -> io::Result<()> {
    if json {
        return print_json(out, report);
    }
    writeln!(out, "{verb}: wrote {}", report.roster.display())?;
    writeln!(out, "agents: {}", report.agents.join(", "))?;
    for path in &report.env_written {
        writeln!(out, "  wrote env file {}", path.display())?;
    }
    for path in &report.env_kept {
        writeln!(out, "  kept env file {} (yours)", path.display())?;
    }
    for path in &report.env_removed {
        writeln!(out, "  removed env file {}", path.display())?;
    }
    if let Some(backup) = &report.backup {
        writeln!(out, "  previous files backed up in {}", backup.display())?;
    }
    if let Some(systemd) = &report.systemd {
        let done = systemd.outcome == crate::install::activate::Outcome::Done
            || systemd.outcome == crate::install::activate::Outcome::RolloutFailed;
        crate::install::report::print_unit_actions(
            out,
            &systemd.actions,
            report.agents.len(),
            done,
        )?;
        if let Some(rollout) = systemd.rollout.as_ref().filter(|r| !r.ok) {
            writeln!(
                out,
                "the new agent's start failed verification; stopped again: {}",
                rollout.stopped.join(" ")
            )?;
        }
    }
    if !report.commands.is_empty() {
        writeln!(out, "no systemd user manager answered; run:")?;
        for command in &report.commands {
            writeln!(out, "  {command}")?;
        }
    }
    Ok(())
}

pub(crate) fn send(
    out: &mut dyn Write,
    report: &SendReport,
    verify: bool,
    json: bool,
) -> io::Result<()> {
    if json {
        return print_json(out, report);
    }
    for result in &report.results {
        match (&result.delivery, verify) {
            (_, true) => writeln!(out, "{}: {}", result.agent, result.outcome)?,
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
                writeln!(out, "delivered to {} ({parts}{enters} Enter)", result.agent)?
            }
            (other, false) => crate::shared::output::to_stderr(format_args!(
                "mosaic-fleet: {}: {}: {}",
                result.agent,
                result.outcome,
                other.why().unwrap_or_default()
            )),
        }
        if verify {
            if let Some(why) = result.delivery.why() {
                crate::shared::output::to_stderr(format_args!(
                    "mosaic-fleet: {}: {}: {why}",
                    result.agent, result.outcome
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn reset(out: &mut dyn Write, report: &ResetReport, json: bool) -> io::Result<()> {
    if json {
        return print_json(out, report);
    }
    match &report.method {
        ResetMethod::ResetCommand { command } => writeln!(
            out,
            "reset {}: sent `{command}`: {}",
            report.agent, report.outcome
        )?,
        ResetMethod::Restart { .. } => writeln!(
            out,
            "reset {}: restarted its unit, kick-start message {}",
            report.agent, report.outcome
        )?,
    }
    if let Some(why) = report.delivery.why() {
        crate::shared::output::to_stderr(format_args!(
            "mosaic-fleet: {}: {}: {why}",
            report.agent, report.outcome
        ));
    }
    Ok(())
}

/// A remote `mosaic-fleet`'s output, byte for byte; returns its exit code.
pub(crate) fn verbatim(relayed: &crate::fleet::remote::Verbatim) -> u8 {
    let _ = std::io::stdout().write_all(&relayed.stdout);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(&relayed.stderr);
    relayed.code
}

/// `fleet status --hosts`: one table over every host; a host without a
/// status gets one row saying why, below the table in full.
pub(crate) fn hosts_status(
    out: &mut dyn Write,
    report: &HostsReport,
    json: bool,
) -> io::Result<()> {
    if json {
        return print_json(out, report);
    }
    let mut rows = Vec::new();
    for host in &report.hosts {
        match &host.status {
            Some(status) => {
                let holder = if status.holder_up { "up" } else { "down" };
                rows.push(vec![
                    host.host.clone(),
                    format!("({})", status.holder_session),
                    unit_cell(status.holder_unit.as_ref()),
                    holder.into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                for agent in &status.agents {
                    let mut row = vec![host.host.clone()];
                    row.extend(agent_row(agent));
                    rows.push(row);
                }
            }
            None => {
                let state = if host.unreachable {
                    "unreachable"
                } else {
                    "no answer"
                };
                let mut row = vec![host.host.clone(), "-".into(), "-".into(), state.into()];
                row.extend(["-".into(), "-".into(), "-".into()]);
                rows.push(row);
            }
        }
    }
    table(
        out,
        &[
            "HOST", "AGENT", "UNIT", "SESSION", "COMMAND", "IDLE", "RESTARTS",
        ],
        &rows,
    )?;
    for host in &report.hosts {
        if let Some(why) = &host.error {
            let state = if host.unreachable {
                "unreachable"
            } else {
                "no answer"
            };
            let via = host.ssh.as_deref().unwrap_or("-");
            writeln!(out, "{}: {state} (ssh {via}): {why}", host.host)?;
        }
        if let Some(why) = host.status.as_ref().and_then(|s| s.systemd_error.as_ref()) {
            writeln!(
                out,
                "{}: unit states unknown: no systemd user manager answered ({why})",
                host.host
            )?;
        }
    }
    Ok(())
}

pub(crate) fn tail(out: &mut dyn Write, agent: &str, text: &str, json: bool) -> io::Result<()> {
    if json {
        return print_json(out, &serde_json::json!({ "agent": agent, "output": text }));
    }
    write!(out, "{text}")?;
    Ok(())
}
