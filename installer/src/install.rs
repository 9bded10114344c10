//! The install (and upgrade) command: compute the target state, compare it
//! with the disk and the last receipt, then either print the plan
//! (`--dry-run`) or apply it in one transaction and write the receipt last.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::apply::{atomic_write, ApplyError, Transaction};
use crate::bundle::{Bundle, BundleError};
use crate::confine::ConfineError;
use crate::generation::{Generations, KEEP};
use crate::layout::Layout;
use crate::legacy::{self, KnownHashes, LegacyInstall};
use crate::lock::{InstallLock, LockError};
use crate::plan::{self, Action, Plan, PlanInput, Snapshot};
use crate::profile::{Profile, ProfileError};
use crate::receipt::{
    mode_string, sha256_hex, FileRecord, ProfileRecord, Receipt, ReceiptError, TOOL,
};
use crate::render::{self, RenderError, RenderedTree};

/// Profile used when none is given and no roster is installed yet.
pub const DEFAULT_PROFILE: &str = "minimal";
/// Where the installed roster lives, config-relative.
pub const ROSTER_PATH: &str = "mosaic/fleet/roster.yaml";

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub layout: Layout,
    /// `--profile`; None means the installed roster, else [`DEFAULT_PROFILE`].
    pub profile: Option<String>,
    /// `--bundle DIR` instead of the embedded templates.
    pub bundle_dir: Option<PathBuf>,
    /// `--host`: whose agents to install; None means the host of the last
    /// install here, else this machine's hostname.
    pub host: Option<String>,
    pub dry_run: bool,
    pub force: bool,
    /// Generations to keep.
    pub keep: u64,
    /// Fault injection: fail after this many filesystem operations.
    #[cfg(feature = "fault-injection")]
    pub fail_after: Option<usize>,
}

impl InstallOptions {
    pub fn new(layout: Layout) -> Self {
        InstallOptions {
            layout,
            profile: None,
            bundle_dir: None,
            host: None,
            dry_run: false,
            force: false,
            keep: KEEP,
            #[cfg(feature = "fault-injection")]
            fail_after: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error(
        "{failure}\nnothing was changed: every step already taken was undone{}",
        undo_problems(problems)
    )]
    Apply {
        failure: Box<ApplyError>,
        problems: Vec<String>,
        /// Filesystem operations performed before the failure.
        ops: usize,
    },
}

impl InstallError {
    /// Exit status: 2 for bad input the operator must fix, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            InstallError::Profile(_) | InstallError::Layout(_) => 2,
            _ => 1,
        }
    }
}

fn undo_problems(problems: &[String]) -> String {
    if problems.is_empty() {
        String::new()
    } else {
        format!(
            ", except:\n  {}\nrestore those by hand from the backups named",
            problems.join("\n  ")
        )
    }
}

/// Everything the command decided and did, for humans and `--json`.
#[derive(Debug, Serialize)]
pub struct InstallReport {
    pub dry_run: bool,
    pub profile: ProfileRecord,
    /// The host whose agents were installed.
    pub host: String,
    pub bundle_version: String,
    pub config_dir: PathBuf,
    /// The generation written; None for dry runs and no-ops.
    pub generation: Option<u64>,
    pub legacy: Option<LegacyInstall>,
    pub files: Vec<FileReport>,
    pub created_dirs: Vec<PathBuf>,
    pub agents: Vec<String>,
    /// Agents the previous install had that this profile no longer has.
    pub removed_agents: Vec<String>,
    pub socket: String,
    pub holder_session: String,
    /// Filesystem operations performed (0 for dry runs and no-ops).
    pub operations: usize,
    /// What the systemd step did; filled in after the files are installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub systemd: Option<crate::activate::ActivationReport>,
    #[serde(skip)]
    pub plan: Plan,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub action: Action,
    pub ownership: render::Ownership,
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where our version waits, for conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_version: Option<PathBuf>,
}

impl InstallReport {
    pub fn changed(&self) -> bool {
        !self.plan.is_noop()
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| f.action == Action::Conflict)
    }
}

/// Run an install or upgrade.
pub fn install(opts: &InstallOptions) -> Result<InstallReport, InstallError> {
    let layout = &opts.layout;
    let bundle = match &opts.bundle_dir {
        Some(dir) => Bundle::from_dir(dir)?,
        None => Bundle::embedded(),
    };
    // Read-only steps first: a bad profile must stop us before any lock or write.
    let receipt = Receipt::load(&layout.receipt())?;
    let profile = resolve_profile(opts, &bundle, receipt.as_ref())?;
    let tree = render::render(&bundle, &profile, &layout.unit_mosaic_dir()?)?;

    let lock = if opts.dry_run {
        None
    } else {
        Some(InstallLock::acquire(&layout.lock())?)
    };
    // Re-read under the lock: another run may have finished meanwhile.
    let receipt = match lock {
        Some(_) => Receipt::load(&layout.receipt())?,
        None => receipt,
    };
    let result = plan_and_apply(opts, &bundle, &profile, &tree, receipt.as_ref());
    if let (Err(_), Some(lock)) = (&result, lock) {
        // Leave no lock file or state directory behind that this run created.
        lock.abandon();
    }
    result
}

fn resolve_profile(
    opts: &InstallOptions,
    bundle: &Bundle,
    receipt: Option<&Receipt>,
) -> Result<Profile, ProfileError> {
    let host = opts
        .host
        .clone()
        .or_else(|| receipt.and_then(|r| r.host.clone()))
        .unwrap_or_else(crate::host::machine);
    profile_spec(opts, bundle, receipt)?.on_host(&host)
}

fn profile_spec(
    opts: &InstallOptions,
    bundle: &Bundle,
    receipt: Option<&Receipt>,
) -> Result<Profile, ProfileError> {
    if let Some(spec) = &opts.profile {
        return Profile::resolve(spec, bundle);
    }
    let installed = opts.layout.target(Path::new(ROSTER_PATH));
    if installed.is_file() {
        let mut profile = Profile::resolve(&installed.display().to_string(), bundle)?;
        if let Some(receipt) = receipt {
            profile.name = receipt.profile.name.clone();
        }
        return Ok(profile);
    }
    Profile::resolve(DEFAULT_PROFILE, bundle)
}

fn plan_and_apply(
    opts: &InstallOptions,
    bundle: &Bundle,
    profile: &Profile,
    tree: &RenderedTree,
    receipt: Option<&Receipt>,
) -> Result<InstallReport, InstallError> {
    let layout = &opts.layout;
    let legacy = match receipt {
        None => legacy::detect(&layout.config),
        Some(_) => None,
    };
    let known = KnownHashes::shipped();
    let wanted = plan::paths_to_read(tree, receipt);
    let dirs = plan::dirs_needed(tree);
    let snapshot = Snapshot::read(&layout.config, &wanted, &dirs)?;
    let plan = plan::plan(
        &PlanInput {
            tree,
            receipt,
            known: &known,
            force: opts.force,
        },
        &snapshot,
    );

    let agents: Vec<String> = render::AgentSettings::of(profile)
        .into_iter()
        .map(|a| a.name)
        .collect();
    let removed_agents = receipt
        .map(|r| {
            r.agents
                .iter()
                .filter(|a| !agents.contains(a))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let profile_record = ProfileRecord {
        name: profile.name.clone(),
        origin: profile.origin.clone(),
        sha256: sha256_hex(profile.text.as_bytes()),
    };
    let mut report = InstallReport {
        dry_run: opts.dry_run,
        profile: profile_record.clone(),
        host: profile.host.clone(),
        bundle_version: bundle.version.clone(),
        config_dir: layout.config.clone(),
        generation: None,
        legacy,
        files: plan.files.iter().map(|f| file_report(layout, f)).collect(),
        created_dirs: plan.dirs.iter().map(|(d, _)| layout.target(d)).collect(),
        agents,
        removed_agents,
        socket: profile.roster.socket().to_owned(),
        holder_session: profile.roster.holder_session().to_owned(),
        operations: 0,
        systemd: None,
        plan,
    };

    let generations = Generations::new(layout);
    let number = generations.next_number(receipt.map(|r| r.generation));
    let new_receipt = build_receipt(&report, receipt, number);
    let receipt_unchanged = receipt.is_some_and(|old| {
        let mut old = old.clone();
        old.generation = number;
        old == new_receipt
    });
    if opts.dry_run || (report.plan.is_noop() && receipt_unchanged) {
        return Ok(report);
    }

    let mut tx = Transaction::begin(
        vec![layout.config.clone(), layout.state.clone()],
        generations.backup_dir(number).join("files"),
    );
    #[cfg(feature = "fault-injection")]
    tx.fail_after(opts.fail_after);
    let applied = apply_plan(&mut tx, layout, &report.plan).and_then(|()| {
        // Every file durable before the receipt that vouches for them.
        tx.sync_dirs()?;
        let bytes = new_receipt.to_bytes();
        let gen_receipt = generations.receipt_path(number);
        tx.create_dir_all(gen_receipt.parent().expect("has parent"), 0o755)?;
        tx.write(&gen_receipt, &bytes, 0o644)?;
        tx.write(&layout.receipt(), &bytes, 0o644)?;
        tx.sync_dirs()
    });
    let journal_written = applied.and_then(|()| {
        let journal = serde_json::to_vec_pretty(tx.journal()).expect("journal serializes");
        let path = generations.journal_path(number);
        tx.create_dir_all(path.parent().expect("has parent"), 0o755)?;
        atomic_write(&path, &journal, 0o644)
    });
    if let Err(source) = journal_written {
        let ops = tx.ops();
        let problems = tx.rollback();
        let _ = std::fs::remove_dir_all(generations.backup_dir(number));
        return Err(InstallError::Apply {
            failure: Box::new(source),
            problems,
            ops,
        });
    }
    report.operations = tx.ops();
    tx.commit();
    generations.prune(number, opts.keep);
    report.generation = Some(number);
    Ok(report)
}

fn apply_plan(tx: &mut Transaction, layout: &Layout, plan: &Plan) -> Result<(), ApplyError> {
    for (dir, mode) in &plan.dirs {
        tx.create_dir_all(&layout.target(dir), *mode)?;
    }
    let creates: Vec<(PathBuf, &[u8], u32)> = plan
        .files
        .iter()
        .filter(|f| f.action == Action::Create)
        .map(|f| {
            let bytes = f.desired.as_deref().expect("creates have contents");
            (layout.target(&f.path), bytes, f.mode)
        })
        .collect();
    tx.create_files(&creates)?;
    for file in &plan.files {
        let target = layout.target(&file.path);
        match file.action {
            Action::Create => {}
            Action::Update | Action::Overwrite => {
                let bytes = file.desired.as_deref().expect("writes have contents");
                tx.write(&target, bytes, file.mode)?;
            }
            Action::Chmod => tx.chmod(&target, file.mode)?,
            Action::Conflict if file.write_new_beside => {
                let bytes = file.desired.as_deref().expect("conflicts have contents");
                tx.write(&layout.target(&file.new_beside()), bytes, file.mode)?;
            }
            Action::Remove => tx.remove(&target)?,
            Action::Conflict
            | Action::Unchanged
            | Action::KeepConfig
            | Action::KeepModified
            | Action::KeepOrphan => {}
        }
    }
    Ok(())
}

fn build_receipt(report: &InstallReport, old: Option<&Receipt>, generation: u64) -> Receipt {
    let files = report
        .plan
        .files
        .iter()
        .filter_map(|f| {
            let desired = f.desired.as_deref()?;
            let previous = old.and_then(|r| r.file(&f.path));
            // A kept config file is recorded as what we last wrote there (so
            // an edit stays an edit), or as found when we never wrote it.
            let (sha256, mode) = match (f.action, previous, &f.current) {
                (Action::KeepConfig, Some(record), _) => {
                    (record.sha256.clone(), record.mode.clone())
                }
                (Action::KeepConfig, None, Some(disk)) => (disk.sha256(), mode_string(disk.mode)),
                _ => (sha256_hex(desired), mode_string(f.mode)),
            };
            Some(FileRecord {
                path: f.path.clone(),
                mode,
                sha256,
                ownership: f.ownership,
                preexisting: f.preexisting,
            })
        })
        .collect();
    let mut created_dirs: Vec<PathBuf> = old.map(|r| r.created_dirs.clone()).unwrap_or_default();
    for (dir, _) in &report.plan.dirs {
        if !created_dirs.contains(dir) {
            created_dirs.push(dir.clone());
        }
    }
    created_dirs.sort();
    Receipt {
        tool: TOOL.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        bundle_version: report.bundle_version.clone(),
        generation,
        profile: report.profile.clone(),
        config_dir: report.config_dir.clone(),
        files,
        created_dirs,
        agents: report.agents.clone(),
        socket: report.socket.clone(),
        host: Some(report.host.clone()),
    }
}

fn file_report(layout: &Layout, file: &plan::PlannedFile) -> FileReport {
    FileReport {
        path: layout.target(&file.path),
        action: file.action,
        ownership: file.ownership,
        mode: mode_string(file.mode),
        reason: file.reason.clone(),
        new_version: (file.action == Action::Conflict).then(|| layout.target(&file.new_beside())),
    }
}
