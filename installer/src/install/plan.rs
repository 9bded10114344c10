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

use crate::install::legacy::KnownHashes;
use crate::shared::receipt::{sha256_hex, Receipt};
use crate::shared::render::{Ownership, RenderedFile, RenderedTree};

/// Suffix of our version of a file the operator changed.
pub(crate) const NEW_SUFFIX: &str = ".mosaic-new";

/// What is on disk at one config-relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiskFile {
    pub(crate) bytes: Vec<u8>,
    pub(crate) mode: u32,
}

impl DiskFile {
    pub(crate) fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

/// The part of the disk the plan looks at, read up front.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) files: BTreeMap<PathBuf, DiskFile>,
    /// Config-relative directories that exist.
    pub(crate) dirs: BTreeSet<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Action {
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
pub(crate) struct PlannedFile {
    pub(crate) path: PathBuf,
    pub(crate) action: Action,
    pub(crate) ownership: Ownership,
    /// Desired mode (for writes).
    pub(crate) mode: u32,
    /// Desired bytes; None for removals and kept leftovers.
    pub(crate) desired: Option<Vec<u8>>,
    /// What is on disk now, for diffs and backups.
    pub(crate) current: Option<DiskFile>,
    /// Why, in a few words, when it is not obvious.
    pub(crate) reason: Option<String>,
    /// For conflicts: whether `<file>.mosaic-new` must be (re)written.
    pub(crate) write_new_beside: bool,
    /// The file existed before mosaic-install first wrote it.
    pub(crate) preexisting: bool,
}

impl PlannedFile {
    pub(crate) fn new_beside(&self) -> PathBuf {
        beside(&self.path)
    }

    /// Does applying this decision write or remove anything? A conflict
    /// whose `.mosaic-new` already waits, as it would be written, does not.
    pub(crate) fn changes_disk(&self) -> bool {
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
pub(crate) fn beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(NEW_SUFFIX);
    PathBuf::from(name)
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) files: Vec<PlannedFile>,
    /// Directories to create, parents first, with their modes.
    pub(crate) dirs: Vec<(PathBuf, u32)>,
}

impl Plan {
    pub(crate) fn is_noop(&self) -> bool {
        self.dirs.is_empty() && self.files.iter().all(|f| !f.changes_disk())
    }

    pub(crate) fn count(&self, action: Action) -> usize {
        self.files.iter().filter(|f| f.action == action).count()
    }
}

pub(crate) struct PlanInput<'a> {
    pub(crate) tree: &'a RenderedTree,
    pub(crate) receipt: Option<&'a Receipt>,
    pub(crate) known: &'a KnownHashes,
    pub(crate) force: bool,
    /// Paths replaced even when the operator changed them: a roster edit
    /// made by `mosaic-fleet` on the operator's own text.
    pub(crate) replace: &'a BTreeSet<PathBuf>,
}

/// Paths the planner needs to see on disk.
pub(crate) fn paths_to_read(tree: &RenderedTree, receipt: Option<&Receipt>) -> BTreeSet<PathBuf> {
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
pub(crate) fn dirs_needed(tree: &RenderedTree) -> BTreeSet<PathBuf> {
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
pub(crate) fn dir_mode(dir: &Path) -> u32 {
    if dir == Path::new("mosaic/fleet/agents") {
        0o700
    } else {
        0o755
    }
}

pub(crate) fn plan(input: &PlanInput, disk: &Snapshot) -> Plan {
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
pub(crate) fn local_env_name(env: &Path) -> String {
    let stem = env
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{stem}.local.env")
}

/// The planner as a decision table: one row per situation a file can be in
/// (on disk, in the last receipt, in the desired tree, with `--force` or a
/// mosaic-fleet edit), and the one decision each gets.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::receipt::{mode_string, FileRecord, ProfileRecord};

    const PATH: &str = "mosaic/tools/x.sh";
    const ENV: &str = "mosaic/fleet/agents/a.env";
    const ROSTER: &str = "mosaic/fleet/roster.yaml";
    /// What the last install wrote, and what this one ships.
    const OLD: &[u8] = b"old\n";
    const NEW: &[u8] = b"new\n";
    const EDITED: &[u8] = b"the operator's\n";
    /// A copy Mosaic 0.0.31 shipped before this installer existed.
    const PRISTINE: &[u8] = b"pristine 0.0.31\n";

    /// One situation of one file.
    struct Row {
        what: &'static str,
        path: &'static str,
        /// On disk now (bytes, mode).
        disk: Option<(&'static [u8], u32)>,
        /// `<path>.mosaic-new` on disk now.
        beside: Option<&'static [u8]>,
        /// The last receipt's record (bytes it vouches for, mode, preexisting).
        record: Option<(&'static [u8], u32, bool)>,
        /// Shipped by this install, at 0644 (config files as config).
        desired: bool,
        force: bool,
        /// Edited through mosaic-fleet.
        replace: bool,
        /// The decision, its reason (a part of it), and whether
        /// `.mosaic-new` is written.
        action: Option<Action>,
        reason: Option<&'static str>,
        writes_beside: bool,
    }

    const BASE: Row = Row {
        what: "",
        path: PATH,
        disk: None,
        beside: None,
        record: None,
        desired: true,
        force: false,
        replace: false,
        action: None,
        reason: None,
        writes_beside: false,
    };

    fn rows() -> Vec<Row> {
        vec![
            Row {
                what: "absent, never installed",
                action: Some(Action::Create),
                ..BASE
            },
            Row {
                what: "absent, but installed before",
                record: Some((OLD, 0o644, false)),
                action: Some(Action::Create),
                reason: Some("removed since mosaic-install wrote it; restored"),
                ..BASE
            },
            Row {
                what: "already as desired",
                disk: Some((NEW, 0o644)),
                record: Some((NEW, 0o644, false)),
                action: Some(Action::Unchanged),
                ..BASE
            },
            Row {
                what: "as desired, our old mode",
                disk: Some((NEW, 0o755)),
                record: Some((NEW, 0o755, false)),
                action: Some(Action::Chmod),
                ..BASE
            },
            Row {
                what: "as desired, a mode the operator chose",
                disk: Some((NEW, 0o600)),
                record: Some((NEW, 0o644 | 0o111, false)),
                action: Some(Action::Unchanged),
                ..BASE
            },
            Row {
                what: "what we wrote last time",
                disk: Some((OLD, 0o644)),
                record: Some((OLD, 0o644, false)),
                action: Some(Action::Update),
                ..BASE
            },
            Row {
                what: "a pristine 0.0.31 copy, no receipt",
                disk: Some((PRISTINE, 0o644)),
                action: Some(Action::Update),
                reason: Some("pristine copy of the 0.0.31 version"),
                ..BASE
            },
            Row {
                what: "put back by Mosaic's updater over ours",
                disk: Some((PRISTINE, 0o644)),
                record: Some((OLD, 0o644, false)),
                action: Some(Action::Update),
                reason: Some("replaced by Mosaic's copy (0.0.31); ours restored"),
                ..BASE
            },
            Row {
                what: "edited since we wrote it",
                disk: Some((EDITED, 0o644)),
                record: Some((OLD, 0o644, false)),
                action: Some(Action::Conflict),
                reason: Some("changed since mosaic-install wrote it; kept"),
                writes_beside: true,
                ..BASE
            },
            Row {
                what: "edited, ours already waiting beside it",
                disk: Some((EDITED, 0o644)),
                beside: Some(NEW),
                record: Some((OLD, 0o644, false)),
                action: Some(Action::Conflict),
                reason: Some("changed since mosaic-install wrote it; kept"),
                ..BASE
            },
            Row {
                what: "edited, an older version of ours beside it",
                disk: Some((EDITED, 0o644)),
                beside: Some(OLD),
                record: Some((OLD, 0o644, false)),
                action: Some(Action::Conflict),
                writes_beside: true,
                ..BASE
            },
            Row {
                what: "someone else's file where ours goes",
                disk: Some((EDITED, 0o644)),
                action: Some(Action::Conflict),
                reason: Some("existing file is not a known shipped version; kept"),
                writes_beside: true,
                ..BASE
            },
            Row {
                what: "edited, --force",
                disk: Some((EDITED, 0o644)),
                record: Some((OLD, 0o644, false)),
                force: true,
                action: Some(Action::Overwrite),
                reason: Some("--force (backed up)"),
                ..BASE
            },
            Row {
                what: "the roster, edited through mosaic-fleet",
                path: ROSTER,
                disk: Some((EDITED, 0o644)),
                record: Some((OLD, 0o644, false)),
                replace: true,
                action: Some(Action::Overwrite),
                reason: Some("made through mosaic-fleet (backed up)"),
                ..BASE
            },
            Row {
                what: "the roster, edited by hand",
                path: ROSTER,
                disk: Some((EDITED, 0o644)),
                record: Some((OLD, 0o644, false)),
                action: Some(Action::Conflict),
                reason: Some("your roster stays in effect"),
                writes_beside: true,
                ..BASE
            },
            Row {
                what: "an env file, edited by hand",
                path: ENV,
                disk: Some((EDITED, 0o600)),
                record: Some((OLD, 0o600, false)),
                action: Some(Action::Conflict),
                reason: Some("Move your own settings into a.local.env"),
                writes_beside: true,
                ..BASE
            },
            Row {
                what: "no longer shipped, as we wrote it",
                disk: Some((OLD, 0o644)),
                record: Some((OLD, 0o644, false)),
                desired: false,
                action: Some(Action::Remove),
                reason: Some("no longer shipped"),
                ..BASE
            },
            Row {
                what: "no longer shipped, edited",
                disk: Some((EDITED, 0o644)),
                record: Some((OLD, 0o644, false)),
                desired: false,
                action: Some(Action::KeepModified),
                reason: Some("no longer shipped but changed; kept"),
                ..BASE
            },
            Row {
                what: "no longer shipped, there before we were",
                disk: Some((OLD, 0o644)),
                record: Some((OLD, 0o644, true)),
                desired: false,
                action: Some(Action::KeepModified),
                reason: Some("existed before, kept"),
                ..BASE
            },
            Row {
                what: "no longer shipped, edited through mosaic-fleet",
                path: ENV,
                disk: Some((EDITED, 0o600)),
                record: Some((OLD, 0o600, false)),
                desired: false,
                replace: true,
                action: Some(Action::Remove),
                ..BASE
            },
            Row {
                what: "no longer shipped and already gone",
                record: Some((OLD, 0o644, false)),
                desired: false,
                action: None,
                ..BASE
            },
        ]
    }

    fn decide(row: &Row) -> Option<PlannedFile> {
        let path = PathBuf::from(row.path);
        let ownership = if row.path.starts_with("mosaic/fleet/") {
            Ownership::Config
        } else {
            Ownership::Managed
        };
        let tree = RenderedTree {
            files: row
                .desired
                .then(|| RenderedFile {
                    path: path.clone(),
                    contents: NEW.to_vec(),
                    mode: 0o644,
                    ownership,
                })
                .into_iter()
                .collect(),
        };
        let receipt = row.record.map(|(bytes, mode, preexisting)| Receipt {
            tool: "mosaic-install".into(),
            version: "0.1.0".into(),
            bundle_version: "0.1.0".into(),
            generation: 1,
            profile: ProfileRecord {
                name: "minimal".into(),
                origin: "embedded".into(),
                sha256: sha256_hex(b"roster"),
            },
            config_dir: "/h/.config".into(),
            files: vec![FileRecord {
                path: path.clone(),
                mode: mode_string(mode),
                sha256: sha256_hex(bytes),
                ownership,
                preexisting,
                conflict_since: None,
            }],
            created_dirs: Vec::new(),
            agents: vec!["a".into()],
            socket: "mosaic-fleet".into(),
            created_state_dirs: Vec::new(),
            host: None,
        });
        let mut disk = Snapshot::default();
        if let Some((bytes, mode)) = row.disk {
            disk.files.insert(
                path.clone(),
                DiskFile {
                    bytes: bytes.to_vec(),
                    mode,
                },
            );
        }
        if let Some(bytes) = row.beside {
            disk.files.insert(
                beside(&path),
                DiskFile {
                    bytes: bytes.to_vec(),
                    mode: 0o644,
                },
            );
        }
        let known =
            KnownHashes::parse(&format!("{}\t{}\t0.0.31\n", row.path, sha256_hex(PRISTINE)));
        let replace: BTreeSet<PathBuf> = row.replace.then(|| path.clone()).into_iter().collect();
        let input = PlanInput {
            tree: &tree,
            receipt: receipt.as_ref(),
            known: &known,
            force: row.force,
            replace: &replace,
        };
        plan(&input, &disk)
            .files
            .into_iter()
            .find(|f| f.path == path)
    }

    #[test]
    fn every_situation_gets_its_one_decision() {
        let mut wrong = Vec::new();
        for row in rows() {
            let got = decide(&row);
            let action = got.as_ref().map(|f| f.action);
            let reason = got
                .as_ref()
                .and_then(|f| f.reason.clone())
                .unwrap_or_default();
            let beside = got.as_ref().is_some_and(|f| f.write_new_beside);
            let reason_ok = match row.reason {
                Some(part) => reason.contains(part),
                None => row.action != Some(Action::Create) || reason.is_empty(),
            };
            if action != row.action || !reason_ok || beside != row.writes_beside {
                wrong.push(format!(
                    "{}: got {action:?} ({reason:?}, writes .mosaic-new: {beside}), want {:?} ({:?}, {})",
                    row.what, row.action, row.reason, row.writes_beside
                ));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }

    /// What changes the disk and what does not, by decision: a plan of
    /// only the second kind is a no-op (no generation is recorded).
    #[test]
    fn only_writes_and_removals_change_the_disk() {
        let changes = |row: &Row| decide(row).is_some_and(|f| f.changes_disk());
        for row in rows() {
            let want = match row.action {
                Some(Action::Unchanged | Action::KeepModified) | None => false,
                Some(Action::Conflict) => row.writes_beside,
                Some(_) => true,
            };
            assert_eq!(changes(&row), want, "{}", row.what);
        }
    }
}
