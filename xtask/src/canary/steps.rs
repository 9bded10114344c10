//! The canary's steps, in order (issue 5): a default-server session first;
//! install `usc`; point its agents at a fake REPL (the operator's own edit of
//! each env file's `MOSAIC_AGENT_COMMAND`); `mosaic-install --start`
//! (daemon-reload, enable, holder, canary, verify, waves, verify); check the
//! fleet; exact-match stop; kill a session and see it restarted; stop the
//! holder and see every agent stop; start again (`--start`); upgrade in place (sessions
//! survive, units reloaded); upgrade with `--restart-changed`; `uninstall`;
//! and the default-server session is still there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use super::report::Report;
use super::upgrade;
use mosaic_tests::live::{agent_unit, time_until, LiveFleet, Session, HOLDER};

/// The agent stopped by the exact-match step, and its numeric-suffix siblings.
const STOPPED: &str = "usc-worker-1";
const SIBLINGS: [&str; 2] = ["usc-worker-10", "usc-worker-11"];
/// The agent whose session the canary kills.
const KILLED: &str = "usc-worker-10";
/// The bound for systemd to bring a vanished session back.
const RESTART_BOUND: Duration = Duration::from_secs(10);
pub(super) const UP_TIMEOUT: Duration = Duration::from_secs(30);
const PROBE: &str = "canary-probe";

pub(crate) struct Target {
    /// `--profile`: `usc`, or (live) a roster derived from it.
    pub(crate) profile: String,
    /// Create a probe session on the default server first (sandbox only;
    /// live runs only compare the operator's default server before and after).
    pub(crate) create_probe: bool,
    pub(crate) templates: PathBuf,
    pub(crate) fake_agent: PathBuf,
}

pub(crate) fn run(fleet: &mut LiveFleet, target: &Target) -> Report {
    let mut report = Report::default();
    let mut default_before = BTreeMap::new();
    report.step("default tmux session before the run", || {
        if target.create_probe {
            fleet.create_default_probe(PROBE)?;
        }
        default_before = fleet.default_sessions();
        Ok(format!(
            "default server sessions: {}",
            names(&default_before)
        ))
    });
    report.step("install profile usc", || install(fleet, target));
    report.step("point agents at the fake REPL", || {
        point_agents(fleet, target)
    });
    rollout(fleet, target, &mut report);
    report.step("verify the fleet", || verify_fleet(fleet, target));
    report.step("exact-match stop", || exact_stop(fleet));
    report.step("kill a session, systemd restarts it", || {
        kill_session(fleet)
    });
    report.step("stop the holder", || stop_holder(fleet));
    report.step("start again", || start_again(fleet, target));
    report.step("upgrade in place", || upgrade::in_place(fleet, target));
    report.step("upgrade --restart-changed", || {
        upgrade::restart_changed(fleet, target)
    });
    report.step("uninstall", || uninstall(fleet));
    report.step("default tmux session after the run", || {
        let after = fleet.default_sessions();
        ensure!(
            after == default_before,
            "the default tmux server changed: before {default_before:?}, after {after:?}"
        );
        Ok(format!("unchanged: {}", names(&after)))
    });
    report
}

fn install(fleet: &mut LiveFleet, target: &Target) -> Result<String> {
    let (output, json) = fleet.install(&["--profile", &target.profile, "--no-systemctl"])?;
    let ok = output.status.success();
    ensure!(ok, "mosaic-install failed: {json}");
    fleet.agents = strings(&json["agents"]);
    ensure!(
        fleet.agents.iter().any(|a| a == STOPPED),
        "the roster has no {STOPPED}"
    );
    Ok(format!(
        "{} files for agents {}",
        json["files"].as_array().map_or(0, Vec::len),
        fleet.agents.join(", ")
    ))
}

fn point_agents(fleet: &LiveFleet, target: &Target) -> Result<String> {
    let agents_dir = fleet.home.join(".config/mosaic/fleet/agents");
    let line = format!("MOSAIC_AGENT_COMMAND=\"{}\"\n", target.fake_agent.display());
    for agent in &fleet.agents {
        let file = agents_dir.join(format!("{agent}.env"));
        let mut text =
            std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        text.push_str(&line);
        std::fs::write(&file, text).with_context(|| format!("edit {}", file.display()))?;
    }
    Ok(format!(
        "appended {} to {} env files",
        line.trim_end(),
        fleet.agents.len()
    ))
}

/// `mosaic-install --start`, and the installer's own steps as sub-rows.
fn rollout(fleet: &LiveFleet, target: &Target, report: &mut Report) {
    let mut json = Value::Null;
    report.step("mosaic-install --start", || {
        let (output, report) = fleet.install(&["--profile", &target.profile, "--start"])?;
        let ok = output.status.success();
        json = report;
        ensure!(ok, "exited non-zero; see the steps below");
        Ok("exit 0".to_owned())
    });
    let systemd = &json["systemd"];
    if systemd.is_null() {
        return;
    }
    let enabled = strings(&systemd["enabled"]);
    report.push(
        "  daemon-reload, enable",
        systemd["outcome"] == "done" || systemd["outcome"] == "rollout-failed",
        None,
        format!(
            "outcome {}; enabled {}",
            systemd["outcome"],
            enabled.join(" ")
        ),
    );
    for step in systemd["rollout"]["steps"].as_array().into_iter().flatten() {
        report.push(
            &format!("  {}", step["step"].as_str().unwrap_or("?")),
            step["ok"] == true,
            step["millis"].as_u64().map(Duration::from_millis),
            step["detail"].as_str().unwrap_or_default().to_owned(),
        );
    }
}

fn verify_fleet(fleet: &LiveFleet, target: &Target) -> Result<String> {
    ensure!(fleet.active(HOLDER), "{HOLDER} is not active");
    let sessions = fleet.sessions();
    for agent in &fleet.agents {
        let unit = agent_unit(agent);
        ensure!(fleet.active(&unit), "{unit} is not active");
        ensure!(
            sessions.contains_key(agent),
            "no session ={agent} on tmux -L {}",
            fleet.socket
        );
    }
    Ok(format!(
        "{HOLDER} and {} agent units active; sessions {} on tmux -L {}, each running {}",
        fleet.agents.len(),
        names(&sessions),
        fleet.socket,
        target.fake_agent.display()
    ))
}

fn exact_stop(fleet: &LiveFleet) -> Result<String> {
    let before = fleet.sessions();
    fleet.systemctl(&["stop", &agent_unit(STOPPED)])?;
    let after = fleet.sessions();
    ensure!(
        !after.contains_key(STOPPED),
        "session ={STOPPED} survived its unit's stop"
    );
    for sibling in SIBLINGS {
        ensure!(
            after.contains_key(sibling) && after.get(sibling) == before.get(sibling),
            "stopping {STOPPED} touched ={sibling}: before {:?}, after {:?}",
            before.get(sibling),
            after.get(sibling)
        );
        ensure!(
            fleet.active(&agent_unit(sibling)),
            "{} is no longer active",
            agent_unit(sibling)
        );
    }
    Ok(format!(
        "={STOPPED} gone; {} still running the same panes",
        SIBLINGS.join(" and ")
    ))
}

fn kill_session(fleet: &LiveFleet) -> Result<String> {
    let unit = agent_unit(KILLED);
    let old = fleet
        .session(KILLED)
        .with_context(|| format!("no session ={KILLED} to kill"))?;
    fleet.kill_session(KILLED)?;
    let took = time_until(RESTART_BOUND, || {
        fleet.active(&unit)
            && fleet
                .session(KILLED)
                .is_some_and(|s| s.pane_pid != old.pane_pid)
    });
    let took = took.with_context(|| {
        format!(
            "={KILLED} was not back within {} s ({unit} is {})",
            RESTART_BOUND.as_secs(),
            fleet.property(&unit, "ActiveState")
        )
    })?;
    Ok(format!(
        "tmux kill-session -t ={KILLED}; back after {:.1} s (NRestarts={})",
        took.as_secs_f64(),
        fleet.property(&unit, "NRestarts")
    ))
}

fn stop_holder(fleet: &LiveFleet) -> Result<String> {
    fleet.systemctl(&["stop", HOLDER])?;
    let still: Vec<String> = fleet
        .agents
        .iter()
        .map(|a| agent_unit(a))
        .filter(|u| fleet.property(u, "ActiveState") != "inactive")
        .collect();
    ensure!(still.is_empty(), "still not inactive: {}", still.join(" "));
    ensure!(
        !fleet.server_running(),
        "tmux -L {} is still running",
        fleet.socket
    );
    Ok(format!(
        "all {} agent units inactive; tmux -L {} gone",
        fleet.agents.len(),
        fleet.socket
    ))
}

fn start_again(fleet: &LiveFleet, target: &Target) -> Result<String> {
    let (output, json) = fleet.install(&["--profile", &target.profile, "--start"])?;
    let ok = output.status.success();
    let steps: Vec<String> = json["systemd"]["rollout"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} {} ms", s["step"].as_str().unwrap_or("?"), s["millis"]))
        .collect();
    ensure!(
        ok,
        "mosaic-install --start failed: {}",
        json["systemd"]["rollout"]
    );
    verify_fleet(fleet, target)?;
    Ok(format!(
        "mosaic-install --start: {}; all {} agents back (with the stopped {STOPPED})",
        steps.join(", "),
        fleet.agents.len()
    ))
}

fn uninstall(fleet: &LiveFleet) -> Result<String> {
    let (output, json) = fleet.install(&["uninstall", "--purge"])?;
    let ok = output.status.success();
    ensure!(ok, "mosaic-install uninstall --purge failed: {json}");
    let loaded = fleet.loaded_units();
    ensure!(
        loaded.is_empty(),
        "units still loaded after uninstall ({HOLDER} is {}): {}",
        fleet.property(HOLDER, "ActiveState"),
        loaded.join(" ")
    );
    let files = fleet.unit_files();
    ensure!(
        files.is_empty(),
        "unit files still installed after uninstall: {}",
        files.join(" ")
    );
    ensure!(
        !fleet.server_running(),
        "tmux -L {} still runs after uninstall",
        fleet.socket
    );
    let kept: Vec<PathBuf> = json["kept"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry[0].as_str())
        .map(PathBuf::from)
        .collect();
    let not_env: Vec<&PathBuf> = kept
        .iter()
        .filter(|k| k.extension().is_none_or(|e| e != "env"))
        .collect();
    ensure!(
        not_env.is_empty(),
        "kept more than the edited env files: {not_env:?}"
    );
    let home = fleet.home.clone();
    let left: Vec<PathBuf> = [".config/mosaic", ".config/systemd/user"]
        .iter()
        .flat_map(|dir| files_under(&home.join(dir)))
        .filter(|file| !kept.contains(file))
        .collect();
    ensure!(left.is_empty(), "files left behind: {left:?}");
    ensure!(
        !home.join(".local/state/mosaic-install").exists(),
        "--purge left the installer's state"
    );
    Ok(format!(
        "--purge removed {} files and the state; kept only the {} env files edited above; no mosaic unit loaded or installed; tmux -L {} gone",
        json["removed"].as_array().map_or(0, Vec::len),
        kept.len(),
        fleet.socket
    ))
}

/// Every file below `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            match path.is_dir() {
                true => files_under(&path),
                false => vec![path],
            }
        })
        .collect()
}

pub(super) fn all_up(fleet: &LiveFleet) -> bool {
    let sessions = fleet.sessions();
    fleet
        .agents
        .iter()
        .all(|a| sessions.contains_key(a) && fleet.active(&agent_unit(a)))
}

pub(super) fn agent_sessions(fleet: &LiveFleet) -> BTreeMap<String, Session> {
    let mut sessions = fleet.sessions();
    sessions.retain(|name, _| fleet.agents.contains(name));
    sessions
}

pub(super) fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn names(sessions: &BTreeMap<String, Session>) -> String {
    if sessions.is_empty() {
        return "(none)".to_owned();
    }
    sessions.keys().cloned().collect::<Vec<_>>().join(" ")
}
