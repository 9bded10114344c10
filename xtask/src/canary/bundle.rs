//! The next generation of the bundle for the upgrade steps: a copy of
//! `templates/` with a bumped package.json version and a changed agent unit
//! (its `Description=` gains a marker), installed with `--bundle`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

const AGENT_TEMPLATE: &str = "systemd/user/mosaic-agent@.service.j2";

pub(crate) struct ChangedBundle {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) version: String,
    /// What every agent unit's Description now ends with.
    pub(crate) marker: String,
}

/// Generation `n` (1, 2, ...) after the bundle in `templates`.
pub(crate) fn changed(templates: &Path, n: u32) -> Result<ChangedBundle> {
    let dir = tempfile::Builder::new()
        .prefix("mosaic-canary-bundle-")
        .tempdir()
        .context("create a temp dir for the changed bundle")?;
    copy_tree(templates, dir.path())?;

    let manifest = dir.path().join("package.json");
    let text = fs::read_to_string(&manifest).context("read package.json")?;
    let json: serde_json::Value = serde_json::from_str(&text).context("parse package.json")?;
    let Some(current) = json["version"].as_str() else {
        bail!("templates/package.json has no version");
    };
    let version = format!("{current}-canary.{n}");
    let old = format!("\"version\": \"{current}\"");
    if !text.contains(&old) {
        bail!("templates/package.json does not spell its version as {old}");
    }
    fs::write(
        &manifest,
        text.replacen(&old, &format!("\"version\": \"{version}\""), 1),
    )
    .context("write package.json")?;

    let marker = format!("(canary upgrade {n})");
    let unit = dir.path().join(AGENT_TEMPLATE);
    let text = fs::read_to_string(&unit).with_context(|| format!("read {AGENT_TEMPLATE}"))?;
    let changed: Vec<String> = text
        .lines()
        .map(|line| match line.starts_with("Description=") {
            true => format!("{line} {marker}"),
            false => line.to_owned(),
        })
        .collect();
    if changed.join("\n") == text.trim_end() {
        bail!("{AGENT_TEMPLATE} has no Description= line to change");
    }
    fs::write(&unit, changed.join("\n") + "\n")
        .with_context(|| format!("write {AGENT_TEMPLATE}"))?;
    Ok(ChangedBundle {
        dir,
        version,
        marker,
    })
}

/// Copies files and directories with their modes.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let meta = entry.metadata()?;
        if meta.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            fs::copy(&source, &target)
                .with_context(|| format!("copy {} to {}", source.display(), target.display()))?;
        }
        fs::set_permissions(
            &target,
            fs::Permissions::from_mode(meta.permissions().mode()),
        )?;
    }
    Ok(())
}
