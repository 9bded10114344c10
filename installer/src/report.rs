//! Output: what the commands print for operators (text) and for tools
//! (`--json`). Nothing here decides anything; it only shows a report.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use similar::TextDiff;

use crate::install::InstallReport;
use crate::layout::Layout;
use crate::plan::Action;
use crate::render::RenderedTree;

pub fn print_json<T: serde::Serialize>(value: &T) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

pub fn print_profiles(rows: &[(String, String)], default: &str, json: bool) {
    if json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, description)| {
                serde_json::json!({"name": name, "description": description, "default": name == default})
            })
            .collect();
        print_json(&list);
        return;
    }
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, description) in rows {
        let mark = if name == default { " (default)" } else { "" };
        println!("{name:<width$}  {description}{mark}");
    }
}

/// Write a rendered tree under `out`, with the modes it would be installed with.
pub fn write_rendered(tree: &RenderedTree, out: &Path) -> std::io::Result<()> {
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
        Action::KeepConfig => "keep",
        Action::Remove => "remove",
        Action::KeepModified => "keep",
        Action::KeepOrphan => "keep",
    }
}

/// `install --json`: the report, and `changed` — whether this run changed
/// (or, dry, would change) a file, the receipt or a unit, the one answer an
/// orchestrator needs to report a host as changed or ok.
pub fn print_install_json(report: &InstallReport) {
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
        .is_some_and(crate::activate::ActivationReport::changed);
    print_json(&Json {
        changed: files || units,
        report,
    });
}

pub fn print_install(report: &InstallReport, layout: &Layout) {
    let verb = if report.dry_run {
        "would install"
    } else {
        "installing"
    };
    println!(
        "mosaic-install {}: {verb} profile {} ({}) into {}",
        env!("CARGO_PKG_VERSION"),
        report.profile.name,
        report.profile.origin,
        layout.config.display()
    );
    if let Some(legacy) = &report.legacy {
        println!(
            "found an existing Mosaic tree at {} ({}, {} files): every existing file is kept as yours unless it is a known pristine shipped copy",
            legacy.mosaic_dir.display(),
            legacy.version_label(),
            legacy.files
        );
        if legacy.default_sessions.is_empty() {
            println!("no sessions on the default tmux server");
        } else {
            println!(
                "sessions on the default tmux server (left alone): {}",
                legacy.default_sessions.join(", ")
            );
        }
    }
    for (dir, _) in &report.plan.dirs {
        println!("  {:<10} {}/", "mkdir", layout.target(dir).display());
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
        println!("{line}");
        if report.dry_run {
            print_diff(planned, &file.path);
        }
    }
    for agent in &report.removed_agents {
        println!("  agent {agent} is no longer in the profile: its env file is kept");
    }
    let count = |a| report.plan.count(a);
    println!(
        "summary: {} created, {} updated, {} unchanged, {} conflict(s), {} kept, {} removed",
        count(Action::Create),
        count(Action::Update) + count(Action::Chmod) + count(Action::Overwrite),
        count(Action::Unchanged),
        count(Action::Conflict),
        count(Action::KeepConfig) + count(Action::KeepModified) + count(Action::KeepOrphan),
        count(Action::Remove),
    );
    if report.dry_run {
        println!("dry run: nothing was written");
        return;
    }
    match report.generation {
        Some(n) => println!("generation {n} recorded in {}", layout.receipt().display()),
        None => println!("nothing to do: everything is already up to date"),
    }
    if report.conflicts().next().is_some() {
        println!("review each conflict: diff your file with its .mosaic-new, merge, then delete the .mosaic-new");
    }
    print_next_steps(report);
}

fn print_diff(planned: &crate::plan::PlannedFile, path: &Path) {
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
    print!(
        "{}",
        diff.unified_diff().context_radius(3).header(&from, &to)
    );
}

fn print_next_steps(report: &InstallReport) {
    use crate::activate::Outcome;
    let Some(systemd) = &report.systemd else {
        return;
    };
    match systemd.outcome {
        Outcome::Skipped | Outcome::Unreachable => {
            println!(
                "systemd: not run: {}",
                systemd.reason.as_deref().unwrap_or("")
            );
            println!("the files are installed; to enable the fleet, run:");
            for command in &systemd.commands {
                println!("  {command}");
            }
        }
        Outcome::Done | Outcome::RolloutFailed => {
            println!("systemd: reloaded; enabled {}", systemd.enabled.join(" "));
            if !systemd.disabled.is_empty() {
                println!("systemd: disabled {}", systemd.disabled.join(" "));
            }
            if !systemd.restarted.is_empty() {
                println!("systemd: restarted {}", systemd.restarted.join(" "));
            }
        }
    }
    if let Some(rollout) = &systemd.rollout {
        println!("rollout:");
        for step in &rollout.steps {
            let result = if step.ok { "ok" } else { "FAILED" };
            println!(
                "  {:<14} {:<6} {:>6} ms  {}",
                step.step, result, step.millis, step.detail
            );
        }
        if !rollout.stopped.is_empty() {
            println!(
                "rollout failed: stopped what this run started: {}",
                rollout.stopped.join(" ")
            );
        }
    }
    if systemd.linger != Some(true) {
        println!("  {}", crate::systemd::LINGER_HINT);
    }
}

pub fn print_status(report: &crate::status::StatusReport, json: bool) {
    use crate::status::FileState;
    if json {
        print_json(report);
        return;
    }
    println!(
        "generation {} (profile {}, bundle {})",
        report.generation, report.profile, report.version
    );
    for file in &report.files {
        let state = match file.state {
            FileState::Ok => "ok",
            FileState::Modified => "modified",
            FileState::Missing => "missing",
        };
        println!("  {state:<9} {}", file.path.display());
        if let Some(waiting) = &file.waiting {
            println!("  {:<9} {}", "waiting", waiting.display());
        }
    }
    if report.drift() {
        println!("drift: see the files above marked modified, missing or waiting");
    } else {
        println!("clean: every installed file is as mosaic-install left it");
    }
}

pub fn print_uninstall(report: &crate::uninstall::UninstallReport, json: bool) {
    if json {
        print_json(report);
        return;
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for path in &report.removed {
        println!("  {verb:<12} {}", path.display());
    }
    for dir in &report.removed_dirs {
        println!("  {verb:<12} {}/", dir.display());
    }
    for (path, why) in &report.kept {
        println!("  {:<12} {} ({why})", "kept", path.display());
    }
    println!(
        "{}: {} files {verb}, {} kept",
        if report.dry_run {
            "dry run"
        } else {
            "uninstalled"
        },
        report.removed.len(),
        report.kept.len()
    );
}

pub fn print_rollback(report: &crate::rollback::RollbackReport, json: bool) {
    if json {
        print_json(report);
        return;
    }
    for path in &report.restored {
        println!("  restored  {}", path.display());
    }
    for path in &report.removed {
        println!("  removed   {}", path.display());
    }
    for path in &report.edited {
        println!(
            "  your edit of {} was replaced; its bytes are backed up under {}",
            path.display(),
            report.backup_dir.display()
        );
    }
    match report.to_generation {
        Some(n) => println!(
            "rolled back generation {} to generation {n}",
            report.from_generation
        ),
        None => println!("rolled back generation {}", report.from_generation),
    }
}
