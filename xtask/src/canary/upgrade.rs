//! The canary's upgrade steps: a changed bundle installed in place keeps
//! every session and the manager runs the new unit files; the next one with
//! `--restart-changed` restarts every agent unit, each with a new session.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use super::bundle;
use super::steps::{agent_sessions, all_up, strings, Target, UP_TIMEOUT};
use mosaic_tests::live::{agent_unit, time_until, LiveFleet};

pub(super) fn in_place(fleet: &LiveFleet, target: &Target) -> Result<String> {
    let next = bundle::changed(&target.templates, 1)?;
    let sessions = agent_sessions(fleet);
    let units_before = invocations(fleet);
    let bundle = next.dir.path().display().to_string();
    let (output, json) =
        fleet.install(&["--bundle", &bundle, "--profile", &target.profile, "--start"])?;
    let ok = output.status.success();
    ensure!(ok, "mosaic-install failed: {json}");
    agent_unit_updated(&json)?;
    reloaded(fleet, &next.marker)?;
    ensure!(
        agent_sessions(fleet) == sessions,
        "sessions changed: before {sessions:?}, after {:?}",
        agent_sessions(fleet)
    );
    ensure!(
        invocations(fleet) == units_before,
        "units were restarted by a plain upgrade"
    );
    Ok(format!(
        "bundle {}: agent unit updated, reloaded (Description ends {}), {} sessions kept (same session_created and pane pid), no unit restarted",
        next.version,
        next.marker,
        sessions.len()
    ))
}

pub(super) fn restart_changed(fleet: &LiveFleet, target: &Target) -> Result<String> {
    let next = bundle::changed(&target.templates, 2)?;
    let sessions = agent_sessions(fleet);
    let units_before = invocations(fleet);
    let bundle = next.dir.path().display().to_string();
    let args = [
        "--bundle",
        &bundle,
        "--profile",
        &target.profile,
        "--restart-changed",
    ];
    let (output, json) = fleet.install(&args)?;
    let ok = output.status.success();
    ensure!(ok, "mosaic-install failed: {json}");
    agent_unit_updated(&json)?;
    reloaded(fleet, &next.marker)?;
    let mut restarted = strings(&json["systemd"]["restarted"]);
    restarted.sort();
    let mut expected: Vec<String> = fleet.agents.iter().map(|a| agent_unit(a)).collect();
    expected.sort();
    ensure!(
        restarted == expected,
        "restarted {restarted:?}, expected {expected:?}"
    );
    time_until(UP_TIMEOUT, || all_up(fleet)).context("not every agent came back")?;
    let now = agent_sessions(fleet);
    let now_invocations = invocations(fleet);
    for agent in &fleet.agents {
        ensure!(
            now[agent].pane_pid != sessions[agent].pane_pid,
            "={agent} kept its pane process"
        );
        let unit = agent_unit(agent);
        ensure!(
            now_invocations[&unit] != units_before[&unit],
            "{unit} was not restarted"
        );
    }
    Ok(format!(
        "bundle {}: {} agent units restarted, each with a new session",
        next.version,
        restarted.len()
    ))
}

fn invocations(fleet: &LiveFleet) -> BTreeMap<String, String> {
    fleet
        .agents
        .iter()
        .map(|a| agent_unit(a))
        .map(|unit| {
            let id = fleet.property(&unit, "InvocationID");
            (unit, id)
        })
        .collect()
}

fn agent_unit_updated(json: &Value) -> Result<()> {
    let updated = json["files"].as_array().into_iter().flatten().any(|f| {
        f["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("systemd/user/mosaic-agent@.service"))
            && f["action"] == "update"
    });
    ensure!(updated, "the agent unit file was not updated");
    Ok(())
}

/// The manager runs the new unit files: no reload pending, new Description.
fn reloaded(fleet: &LiveFleet, marker: &str) -> Result<()> {
    for agent in &fleet.agents {
        let unit = agent_unit(agent);
        ensure!(
            fleet.property(&unit, "NeedDaemonReload") == "no",
            "{unit} waits for a daemon-reload"
        );
        let description = fleet.property(&unit, "Description");
        ensure!(
            description.ends_with(marker),
            "{unit} still has the old Description: {description}"
        );
    }
    Ok(())
}
