//! Planning: desired tree × disk snapshot × last receipt → one decision per
//! file. Pure: it reads only the [`Snapshot`] it is given, so `--dry-run`,
//! `status` and the tests are "compute and print".
//!
//! Rules (the dpkg conffile model), the same for managed and config files:
//! a file is replaced only while it still holds what we wrote (or a known
//! pristine shipped version); an operator's edit is kept and our version
//! waits beside it as `<file>.mosaic-new`. Config files (the roster, the
//! agent env files generated from it) differ only in what `status` calls an
//! edit and in `uninstall` keeping them; the operator's own overrides live
//! in `<agent>.local.env`, which nothing here ever writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::legacy::KnownHashes;
use crate::receipt::{sha256_hex, Receipt};
use crate::render::{Ownership, RenderedFile, RenderedTree};

/// Suffix of our version of a file the operator changed.
pub const NEW_SUFFIX: &str = ".mosaic-new";

/// What is on disk at one config-relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFile {
    pub bytes: Vec<u8>,
    pub mode: u32,
}

impl DiskFile {
    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// The part of the disk the plan looks at, read up front.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub files: BTreeMap<PathBuf, DiskFile>,
    /// Config-relative directories that exist.
    pub dirs: BTreeSet<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Absent: write it.
    Create,
    /// Still what we shipped (or a known pristine version): replace it.
    Update,
    /// Same bytes, only the mode differs from what we set: chmod.
    Chmod,
    /// Already as desired: not rewritten.
    Unchanged,
    /// Changed by the operator: kept; ours is written as `<file>.mosaic-new`.
    Conflict,
    /// Changed by the operator, `--force`: backed up, then replaced.
    Overwrite,
    /// No longer shipped and unchanged: removed.
    Remove,
    /// No longer shipped but changed by the operator: kept.
    KeepModified,
}

/// One decision.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub action: Action,
    pub ownership: Ownership,
    /// Desired mode (for writes).
    pub mode: u32,
    /// Desired bytes; None for removals and kept leftovers.
    pub desired: Option<Vec<u8>>,
    /// What is on disk now, for diffs and backups.
    pub current: Option<DiskFile>,
    /// Why, in a few words, when it is not obvious.
    pub reason: Option<String>,
    /// For conflicts: whether `<file>.mosaic-new` must be (re)written.
    pub write_new_beside: bool,
    /// The file existed before mosaic-install first wrote it.
    pub preexisting: bool,
}

impl PlannedFile {
    pub fn new_beside(&self) -> PathBuf {
        beside(&self.path)
    }

    /// Does applying this decision write or remove anything? A conflict
    /// whose `.mosaic-new` already waits, as it would be written, does not.
    pub fn changes_disk(&self) -> bool {
        match self.action {
            Action::Create
            | Action::Update
            | Action::Chmod
            | Action::Overwrite
            | Action::Remove => true,
            Action::Conflict => self.write_new_beside,
            Action::Unchanged | Action::KeepModified => false,
        }
    }
}

/// `<path>.mosaic-new`.
pub fn beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(NEW_SUFFIX);
    PathBuf::from(name)
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub files: Vec<PlannedFile>,
    /// Directories to create, parents first, with their modes.
    pub dirs: Vec<(PathBuf, u32)>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.dirs.is_empty() && self.files.iter().all(|f| !f.changes_disk())
    }

    pub fn count(&self, action: Action) -> usize {
        self.files.iter().filter(|f| f.action == action).count()
    }
}

pub struct PlanInput<'a> {
    pub tree: &'a RenderedTree,
    pub receipt: Option<&'a Receipt>,
    pub known: &'a KnownHashes,
    pub force: bool,
    /// Paths replaced even when the operator changed them: a roster edit
    /// made by `mosaic-fleet` on the operator's own text.
    pub replace: &'a BTreeSet<PathBuf>,
}

/// Paths the planner needs to see on disk.
pub fn paths_to_read(tree: &RenderedTree, receipt: Option<&Receipt>) -> BTreeSet<PathBuf> {
    let mut paths = BTreeSet::new();
    for file in &tree.files {
        paths.insert(file.path.clone());
        paths.insert(beside(&file.path));
    }
    for record in receipt.iter().flat_map(|r| &r.files) {
        paths.insert(record.path.clone());
    }
    paths
}

/// Directories that must exist for `tree`, parents first.
pub fn dirs_needed(tree: &RenderedTree) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for file in &tree.files {
        let mut dir = file.path.parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.to_path_buf());
            dir = d.parent();
        }
    }
    dirs
}

/// Mode for a directory we create: agent env files are private.
pub fn dir_mode(dir: &Path) -> u32 {
    if dir == Path::new("mosaic/fleet/agents") {
        0o700
    } else {
        0o755
    }
}

pub fn plan(input: &PlanInput, disk: &Snapshot) -> Plan {
    let mut files = Vec::new();
    let desired_paths: BTreeSet<&Path> =
        input.tree.files.iter().map(|f| f.path.as_path()).collect();

    for file in &input.tree.files {
        let current = disk.files.get(&file.path).cloned();
        let record = input.receipt.and_then(|r| r.file(&file.path));
        let preexisting = match record {
            Some(record) => record.preexisting,
            None => current.is_some(),
        };
        let mut planned = PlannedFile {
            path: file.path.clone(),
            action: Action::Unchanged,
            ownership: file.ownership,
            mode: file.mode,
            desired: Some(file.contents.clone()),
            current: current.clone(),
            reason: None,
            write_new_beside: false,
            preexisting,
        };
        let Some(current) = current else {
            planned.action = Action::Create;
            if record.is_some() {
                planned.reason = Some("removed since mosaic-install wrote it; restored".into());
            }
            files.push(planned);
            continue;
        };
        let same_bytes = current.bytes == file.contents;
        if same_bytes {
            let ours_mode = record.is_some_and(|r| r.mode_bits() == current.mode & 0o7777);
            planned.action = if current.mode & 0o7777 != file.mode && ours_mode {
                Action::Chmod
            } else {
                Action::Unchanged
            };
            files.push(planned);
            continue;
        }
        let hash = current.sha256();
        let ours = record.is_some_and(|r| r.sha256 == hash);
        let pristine = input.known.is_pristine(&file.path, &hash);
        if ours {
            planned.action = Action::Update;
        } else if let Some(version) = pristine {
            planned.action = Action::Update;
            planned.reason = Some(match record {
                Some(_) => format!("replaced by Mosaic's copy ({version}); ours restored"),
                None => format!("pristine copy of the {version} version"),
            });
        } else if input.replace.contains(&file.path) {
            planned.action = Action::Overwrite;
            planned.reason = Some("your edit, made through mosaic-fleet (backed up)".into());
        } else if input.force {
            planned.action = Action::Overwrite;
            planned.reason = Some("changed by the operator; --force (backed up)".into());
        } else {
            planned.action = Action::Conflict;
            planned.reason = Some(conflict_reason(file, record.is_some()));
            let beside_now = disk.files.get(&beside(&file.path));
            planned.write_new_beside =
                beside_now.is_none_or(|b| b.bytes != file.contents || b.mode != file.mode);
        }
        files.push(planned);
    }

    // What the last install wrote that is no longer wanted.
    for record in input.receipt.iter().flat_map(|r| &r.files) {
        if desired_paths.contains(record.path.as_path()) {
            continue;
        }
        let Some(current) = disk.files.get(&record.path).cloned() else {
            continue;
        };
        let unchanged = current.sha256() == record.sha256;
        let replace = input.replace.contains(&record.path);
        let action = if (unchanged || replace) && !record.preexisting {
            Action::Remove
        } else {
            Action::KeepModified
        };
        let reason = match action {
            Action::KeepModified if record.preexisting => "no longer shipped; existed before, kept",
            Action::KeepModified => "no longer shipped but changed; kept",
            _ => "no longer shipped",
        };
        files.push(PlannedFile {
            path: record.path.clone(),
            action,
            ownership: record.ownership,
            mode: record.mode_bits(),
            desired: None,
            current: Some(current),
            reason: Some(reason.into()),
            write_new_beside: false,
            preexisting: record.preexisting,
        });
    }

    let dirs = dirs_needed(input.tree)
        .into_iter()
        .filter(|d| !disk.dirs.contains(d))
        .map(|d| {
            let mode = dir_mode(&d);
            (d, mode)
        })
        .collect();
    Plan { files, dirs }
}

/// Why a changed file is kept, in the operator's terms.
fn conflict_reason(file: &RenderedFile, recorded: bool) -> String {
    let env = file.path.starts_with("mosaic/fleet/agents");
    match (file.ownership, env, recorded) {
        (Ownership::Config, true, _) => format!(
            "differs from what the roster generates; kept. Move your own settings into {}, delete this file and run again",
            local_env_name(&file.path)
        ),
        (Ownership::Config, false, _) => {
            "your roster stays in effect; the profile's roster waits beside it".into()
        }
        (Ownership::Managed, _, true) => "changed since mosaic-install wrote it; kept".into(),
        (Ownership::Managed, _, false) => {
            "existing file is not a known shipped version; kept".into()
        }
    }
}

/// `<agent>.local.env` beside `<agent>.env`: the operator's overrides.
pub fn local_env_name(env: &Path) -> String {
    let stem = env
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{stem}.local.env")
}
