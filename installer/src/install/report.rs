//! Output: what the commands print for operators (text) and for tools
//! (`--json`). Nothing here decides anything; it only shows a report.
//! Every printer writes to the `Write` it is given and returns its error
//! (see [`crate::shared::output`] for why that is never a panic).

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use similar::TextDiff;

use crate::install::pipeline::InstallReport;
use crate::install::plan::Action;
use crate::shared::layout::Layout;
use crate::shared::render::RenderedTree;

pub(crate) fn print_json<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

pub(crate) fn print_profiles(
    out: &mut dyn Write,
    rows: &[(String, String)],
    default: &str,
    json: bool,
) -> io::Result<()> {
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, description)| {
                serde_json::json!({"name": name, "description": description, "default": name == default})
            })
            .collect();
        return print_json(out, &list);
    }
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, description) in rows {
        let mark = if name == default { " (default)" } else { "" };
        writeln!(out, "{name:<width$}  {description}{mark}")?;
    }
    Ok(())
}

/// Write a rendered tree under `out`, with the modes it would be installed with.
pub(crate) fn write_rendered(tree: &RenderedTree, out: &Path) -> io::Result<()> {
    for file in &tree.files {
        let path = out.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.contents)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))?;
    }
    Ok(())
}

fn label(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Chmod => "chmod",
        Action::Unchanged => "unchanged",
        Action::Conflict => "conflict",
        Action::Overwrite => "overwrite",
        Action::Remove => "remove",
        Action::KeepModified => "keep",
    }
}

/// `install --json`: the report, and `changed` — whether this run changed
/// (or, dry, would change) a file, the receipt or a unit, the one answer an
/// orchestrator needs to report a host as changed or ok.
pub(crate) fn print_install_json(out: &mut dyn Write, report: &InstallReport) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct Json<'a> {
        changed: bool,
        #[serde(flatten)]
        report: &'a InstallReport,
    }
    let files = if report.dry_run {
        report.changed()
    } else {
        report.generation.is_some()
    };
    let units = report
        .systemd
        .as_ref()
        .is_some_and(crate::install::activate::ActivationReport::changed);
    print_json(
        out,
        &Json {
            changed: files || units,
            report,
        },
    )
}

pub(crate) fn print_install(
    out: &mut dyn Write,
    report: &InstallReport,
    layout: &Layout,
) -> io::Result<()> {
    let verb = if report.dry_run {
        "would install"
    } else {
        "installing"
    };
    writeln!(
        out,
        "mosaic-install {}: {verb} profile {} ({}) into {}",
        env!("CARGO_PKG_VERSION"),
        report.profile.name,
        report.profile.origin,
        layout.config.display()
    )?;
    if let Some(legacy) = &report.legacy {
        writeln!(
            out,
            "found an existing Mosaic tree at {} ({}, {} files): every existing file is kept as yours unless it is a known pristine shipped copy",
            legacy.mosaic_dir.display(),
            legacy.version_label(),
            legacy.files
        )?;
        if legacy.default_sessions.is_empty() {
            writeln!(out, "no sessions on the default tmux server")?;
        } else {
            writeln!(
                out,
                "sessions on the default tmux server (left alone): {}",
                legacy.default_sessions.join(", ")
            )?;
        }
    }
    print_runtime_path(out, &report.runtime_path)?;
    for (dir, _) in &report.plan.dirs {
        writeln!(out, "  {:<10} {}/", "mkdir", layout.target(dir).display())?;
    }
    for (file, planned) in report.files.iter().zip(&report.plan.files) {
        if file.action == Action::Unchanged {
            continue;
        }
        let mut line = format!("  {:<10} {}", label(file.action), file.path.display());
        if let Some(reason) = &file.reason {
            line.push_str(&format!(" ({reason})"));
        }
        if let Some(new) = &file.new_version {
            line.push_str(&format!("\n             our version: {}", new.display()));
        }
        writeln!(out, "{line}")?;
        if report.dry_run {
            print_diff(out, planned, &file.path)?;
        }
    }
    for agent in &report.removed_agents {
        writeln!(
            out,
            "  agent {agent} is no longer in the roster: its unit goes (see units); {agent}.local.env, if you made one, stays"
        )?;
    }
    let count = |a| report.plan.count(a);
    writeln!(
        out,
        "summary: {} created, {} updated, {} unchanged, {} conflict(s), {} kept, {} removed",
        count(Action::Create),
        count(Action::Update) + count(Action::Chmod) + count(Action::Overwrite),
        count(Action::Unchanged),
        count(Action::Conflict),
        count(Action::KeepModified),
        count(Action::Remove),
    )?;
    if report.dry_run {
        print_next_steps(out, report)?;
        writeln!(out, "dry run: nothing was written")?;
        return Ok(());
    }
    match report.generation {
        Some(n) => writeln!(
            out,
            "generation {n} recorded in {}",
            layout.receipt().display()
        ),
        None => writeln!(out, "nothing to do: everything is already up to date"),
    }?;
    if report.conflicts().next().is_some() {
        writeln!(out, "review each conflict: diff your file with its .mosaic-new, merge, then delete the .mosaic-new")?;
    }
    print_next_steps(out, report)
}

/// Where agent panes will look for `mosaic` first (Mosaic #581).
fn print_runtime_path(
    out: &mut dyn Write,
    runtime: &crate::shared::runtime_path::RuntimePath,
) -> io::Result<()> {
    if runtime.dirs.is_empty() {
        return writeln!(
            out,
            "agents' runtime PATH: no directory found ({}, npm prefix/bin, ~/.npm-global/bin, ~/.local/bin); panes get the user manager's PATH",
            crate::shared::runtime_path::RUNTIME_BIN_VAR
        );
    }
    let dirs: Vec<String> = runtime
        .dirs
        .iter()
        .map(|d| format!("{} ({})", d.dir.display(), d.source))
        .collect();
    writeln!(out, "agents' runtime PATH, first: {}", dirs.join(", "))
}

fn print_diff(
    out: &mut dyn Write,
    planned: &crate::install::plan::PlannedFile,
    path: &Path,
) -> io::Result<()> {
    let old = planned
        .current
        .as_ref()
        .map(|c| String::from_utf8_lossy(&c.bytes).into_owned())
        .unwrap_or_default();
    let new = planned
        .desired
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default();
    let shown = match planned.action {
        Action::Conflict => format!("{}.mosaic-new", path.display()),
        _ => path.display().to_string(),
    };
    let from = if planned.current.is_some() {
        path.display().to_string()
    } else {
        "/dev/null".into()
    };
    let to = if planned.desired.is_some() {
        shown
    } else {
        "/dev/null".into()
    };
    let diff = TextDiff::from_lines(&old, &new);
    write!(
        out,
        "{}",
        diff.unified_diff().context_radius(3).header(&from, &to)
    )?;
    Ok(())
}

fn print_next_steps(out: &mut dyn Write, report: &InstallReport) -> io::Result<()> {
    use crate::install::activate::Outcome;
    let Some(systemd) = &report.systemd else {
        return Ok(());
    };
    let done = match systemd.outcome {
        Outcome::Done | Outcome::RolloutFailed => true,
        Outcome::Skipped | Outcome::Unreachable | Outcome::Preview => false,
    };
    print_unit_actions(out, &systemd.actions, report.agents.len(), done)?;
    match systemd.outcome {
        Outcome::Skipped | Outcome::Unreachable => {
            writeln!(
                out,
                "systemd: not run: {}",
                systemd.reason.as_deref().unwrap_or("")
            )?;
            writeln!(
                out,
                "the files are installed; to bring the units in line, run:"
            )?;
            for command in &systemd.commands {
                writeln!(out, "  {command}")?;
            }
        }
        Outcome::Preview => {}
        Outcome::Done | Outcome::RolloutFailed => {
            writeln!(
                out,
                "systemd: reloaded; enabled {}",
                systemd.enabled.join(" ")
            )?;
        }
    }
    if let Some(rollout) = &systemd.rollout {
        writeln!(out, "rollout:")?;
        for step in &rollout.steps {
            let result = if step.ok { "ok" } else { "FAILED" };
            writeln!(
                out,
                "  {:<14} {:<6} {:>6} ms  {}",
                step.step, result, step.millis, step.detail
            )?;
        }
        if !rollout.stopped.is_empty() {
            writeln!(
                out,
                "rollout failed: stopped what this run started: {}",
                rollout.stopped.join(" ")
            )?;
        }
    }
    if systemd.linger != Some(true) {
        writeln!(out, "  {}", crate::shared::systemd::LINGER_HINT)?;
    }
    Ok(())
}

/// What a run did (or, when `done` is false, would do) to the units: one
/// line per action with its reason, or a line saying there was nothing to
/// do — never silence.
pub(crate) fn print_unit_actions(
    out: &mut dyn Write,
    actions: &crate::install::reconcile::Actions,
    agents: usize,
    done: bool,
) -> io::Result<()> {
    use crate::shared::systemd::agent_unit;
    let verb = |did: &'static str, would: &'static str| if done { did } else { would };
    if actions.is_empty() {
        let how = if done {
            "nothing to change"
        } else {
            "nothing would change"
        };
        return writeln!(
            out,
            "units: {how}: the holder and {agents} agent unit(s) are enabled as the roster says"
        );
    }
    writeln!(out, "units:")?;
    for item in &actions.stop_disable {
        writeln!(
            out,
            "  {:<16} {} ({})",
            verb("stopped+disabled", "stop+disable"),
            agent_unit(&item.agent),
            item.reason
        )?;
    }
    for agent in &actions.enable {
        writeln!(
            out,
            "  {:<16} {}",
            verb("enabled", "enable"),
            agent_unit(agent)
        )?;
    }
    if let Some(reason) = &actions.restart_holder {
        writeln!(
            out,
            "  {:<16} {} ({reason}; its agents restart with it)",
            verb("restarted", "restart"),
            crate::shared::systemd::HOLDER_UNIT
        )?;
    }
    for item in &actions.restart {
        writeln!(
            out,
            "  {:<16} {} ({})",
            verb("restarted", "restart"),
            agent_unit(&item.agent),
            item.reason
        )?;
    }
    for agent in &actions.start {
        let why = if actions.start_fleet {
            "--start"
        } else {
            "new agent; the fleet is running"
        };
        writeln!(
            out,
            "  {:<16} {} ({why})",
            verb("started", "start"),
            agent_unit(agent)
        )?;
    }
    for item in &actions.needs_restart {
        let unit = if item.agent.ends_with(".service") {
            item.agent.clone()
        } else {
            agent_unit(&item.agent)
        };
        writeln!(
            out,
            "  {:<16} {unit}: {}; rerun with --restart-changed, or restart it when convenient",
            "needs restart", item.reason
        )?;
    }
    Ok(())
}

/// What recovery did before a command, on stderr (also in `--json` mode,
/// whose object carries it as `recovered`).
pub(crate) fn print_recovered(recovered: &[crate::shared::statedir::Recovery]) {
    for recovery in recovered {
        crate::shared::output::to_stderr(format_args!("mosaic-install: {recovery}"));
    }
}

pub(crate) fn print_status(
    out: &mut dyn Write,
    report: &crate::install::status::StatusReport,
    json: bool,
) -> io::Result<()> {
    use crate::install::status::FileState;
    print_recovered(&report.recovered);
    if json {
        return print_json(out, report);
    }
    writeln!(
        out,
        "generation {} (profile {}, bundle {})",
        report.generation, report.profile, report.version
    )?;
    for file in &report.files {
        let (state, note) = match file.state {
            FileState::Ok => ("ok", String::new()),
            FileState::Edited => ("edited by you", " (config: yours to change)".to_owned()),
            FileState::Modified => ("modified by you", String::new()),
            FileState::ReplacedByMosaic => (
                "replaced by Mosaic's copy",
                format!(
                    " ({}; mosaic-install restores ours)",
                    file.replaced_by.as_deref().unwrap_or("a known release")
                ),
            ),
            FileState::Missing => ("removed", " (mosaic-install restores it)".to_owned()),
        };
        writeln!(out, "  {state:<25} {}{note}", file.path.display())?;
        if let Some(waiting) = &file.waiting {
            writeln!(out, "  {:<25} {}", "our version waiting", waiting.display())?;
        }
    }
    if let Some(error) = &report.roster_error {
        writeln!(out, "roster: {error}")?;
    }
    writeln!(out, "agents:")?;
    for agent in &report.agents {
        let unit = match &agent.unit {
            Some(unit) => format!("{} {}/{}", unit.unit, unit.enabled, unit.active),
            None => crate::shared::systemd::agent_unit(&agent.name),
        };
        match agent.problem() {
            Some(problem) => writeln!(out, "  {:<9} {unit}: {problem}", agent.name)?,
            None => writeln!(out, "  {:<9} {unit}", agent.name)?,
        }
    }
    if let Some(why) = &report.systemd {
        writeln!(out, "  (no unit states: {why})")?;
    }
    let waiting = report.files.iter().filter(|f| f.waiting.is_some()).count();
    let disagree = report
        .agents
        .iter()
        .filter(|a| a.problem().is_some())
        .count();
    writeln!(
        out,
        "{}: {} ok, {} edited by you (config), {} modified by you, {} replaced by Mosaic's copy, {} removed, {waiting} waiting; {} agent(s), {disagree} out of line with the roster",
        if report.drift() { "drift" } else { "clean" },
        report.count(FileState::Ok),
        report.count(FileState::Edited),
        report.count(FileState::Modified),
        report.count(FileState::ReplacedByMosaic),
        report.count(FileState::Missing),
        report.agents.len()
    )?;
    Ok(())
}

pub(crate) fn print_uninstall(
    out: &mut dyn Write,
    report: &crate::install::uninstall::UninstallReport,
    json: bool,
) -> io::Result<()> {
    use crate::install::activate::Outcome;
    print_recovered(&report.recovered);
    if json {
        return print_json(out, report);
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if let Some(systemd) = &report.systemd {
        let (stop, disable) = match systemd.outcome {
            Outcome::Done => ("stopped", "disabled"),
            _ => ("to stop", "to disable"),
        };
        if !systemd.stopped.is_empty() {
            writeln!(out, "units {stop}: {}", systemd.stopped.join(" "))?;
        }
        writeln!(out, "units {disable}: {}", systemd.units.join(" "))?;
        match systemd.outcome {
            Outcome::Done => writeln!(out, "systemctl commands run:")?,
            Outcome::Preview => writeln!(out, "systemctl commands it would run:")?,
            Outcome::Skipped | Outcome::Unreachable | Outcome::RolloutFailed => writeln!(
                out,
                "systemd: not run ({}); until you run these, running agents keep running from the removed unit files and their enable links stay:",
                systemd.reason.as_deref().unwrap_or("")
            )?,
        }
        for command in &systemd.commands {
            writeln!(out, "  {command}")?;
        }
    }
    for path in &report.removed {
        writeln!(out, "  {verb:<12} {}", path.display())?;
    }
    for dir in &report.removed_dirs {
        writeln!(out, "  {verb:<12} {}/", dir.display())?;
    }
    for (path, why) in &report.kept {
        writeln!(out, "  {:<12} {} ({why})", "kept", path.display())?;
    }
    if !report.left_behind.is_empty() {
        writeln!(out, "left behind:")?;
        for item in &report.left_behind {
            writeln!(out, "  {} ({})", item.path.display(), item.why)?;
            writeln!(out, "      to remove: {}", item.remove)?;
        }
    }
    writeln!(
        out,
        "{}: {} file(s) {}, {} kept, {} left behind",
        if report.dry_run {
            "dry run"
        } else {
            "uninstalled"
        },
        report.removed.len(),
        if report.dry_run {
            "to remove"
        } else {
            "removed"
        },
        report.kept.len(),
        report.left_behind.len()
    )?;
    Ok(())
}

pub(crate) fn print_rollback(
    out: &mut dyn Write,
    report: &crate::install::rollback::RollbackReport,
    json: bool,
) -> io::Result<()> {
    print_recovered(&report.recovered);
    if json {
        return print_json(out, report);
    }
    for path in &report.restored {
        writeln!(out, "  restored  {}", path.display())?;
    }
    for path in &report.removed {
        writeln!(out, "  removed   {}", path.display())?;
    }
    for path in &report.edited {
        writeln!(
            out,
            "  your edit of {} was replaced; its bytes are backed up under {}",
            path.display(),
            report.backup_dir.display()
        )?;
    }
    for path in &report.kept_config {
        writeln!(
            out,
            "  kept      {} (you changed it after the undone generation wrote it)",
            path.display()
        )?;
    }
    if !report.roster_still_lists.is_empty() {
        let them = if report.roster_still_lists.len() == 1 {
            "it"
        } else {
            "them"
        };
        writeln!(
            out,
            "  your roster still lists {}, which the undone generation installed: the next mosaic-install installs {them} again; take {them} out of the roster to keep {them} gone",
            report.roster_still_lists.join(", "),
        )?;
    }
    if let Some(systemd) = &report.systemd {
        use crate::install::activate::Outcome;
        let done = matches!(systemd.outcome, Outcome::Done | Outcome::RolloutFailed);
        print_unit_actions(out, &systemd.actions, report.agents.len(), done)?;
        if !systemd.commands.is_empty() {
            writeln!(
                out,
                "systemd: not run ({}); run:",
                systemd.reason.as_deref().unwrap_or("")
            )?;
            for command in &systemd.commands {
                writeln!(out, "  {command}")?;
            }
        }
    }
    match report.to_generation {
        Some(n) => writeln!(
            out,
            "rolled back generation {} to generation {n}",
            report.from_generation
        ),
        None => writeln!(out, "rolled back generation {}", report.from_generation),
    }
}
