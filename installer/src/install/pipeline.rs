//! The install (and upgrade) command: compute the target state, compare it
//! with the disk and the last receipt, then either print the plan
//! (`--dry-run`) or apply it in one transaction and write the receipt last.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::install::legacy::{self, KnownHashes, LegacyInstall};
use crate::install::plan::{self, Action, Plan, PlanInput, Snapshot};
use crate::shared::bundle::{Bundle, BundleError};
use crate::shared::command::ExitStatus;
use crate::shared::confine::ConfineError;
use crate::shared::generation::{Generations, KEEP};
use crate::shared::layout::Layout;
use crate::shared::lock::InstallLock;
use crate::shared::profile::ROSTER_PATH;
use crate::shared::profile::{Profile, ProfileError, ProfileLabel};
use crate::shared::receipt::{
    mode_string, sha256_hex, FileRecord, ProfileRecord, Receipt, ReceiptError, TOOL,
};
use crate::shared::render::{self, Host, RenderError, RenderedTree};
use crate::shared::runtime_path::RuntimePath;
use crate::shared::statedir::{self, RecoverError, Recovery};
use crate::shared::transaction::{ApplyError, Transaction, TxError, TxSpec};

/// Profile used when none is given and no roster is installed yet.
pub(crate) const DEFAULT_PROFILE: &str = "minimal";

/// Where the roster this run installs comes from. The installed roster is
/// the single source of truth for env files, units and sessions.
#[derive(Clone, Default)]
pub(crate) enum RosterSource {
    /// No `--profile`: the installed roster, else [`DEFAULT_PROFILE`].
    #[default]
    Installed,
    /// `--profile X`: X replaces a roster the operator has not edited (after
    /// a backup); an edited one stays in effect and X waits beside it.
    Profile(String),
    /// A roster edit by `mosaic-fleet` (`agent add|remove`, `fleet init`):
    /// the new text, made from the installed roster under the lock.
    Edit(RosterEdit),
}

/// A roster edit: what the operator ran, and how the new text is made from
/// the installed roster (None when none is installed).
/// Makes the edited roster text from the installed roster.
pub(crate) type EditFn = dyn Fn(Option<&Profile>) -> Result<String, EditRefused> + Send + Sync;

#[derive(Clone)]
pub(crate) struct RosterEdit {
    pub(crate) command: String,
    /// Further config-relative paths the edit replaces or removes even where
    /// the operator changed them (`agent remove --purge`: the env file).
    pub(crate) also_replace: Vec<PathBuf>,
    pub(crate) edit: std::sync::Arc<EditFn>,
}

impl std::fmt::Debug for RosterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RosterSource::Installed => f.write_str("Installed"),
            RosterSource::Profile(spec) => write!(f, "Profile({spec:?})"),
            RosterSource::Edit(edit) => write!(f, "Edit({:?})", edit.command),
        }
    }
}

/// A roster edit that cannot be made (an input problem: exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct EditRefused(pub(crate) String);

#[derive(Debug, Clone)]
pub(crate) struct InstallOptions {
    pub(crate) layout: Layout,
    pub(crate) roster: RosterSource,
    /// `--bundle DIR` instead of the embedded templates.
    pub(crate) bundle_dir: Option<PathBuf>,
    /// `--host`: whose agents to install; None means the host of the last
    /// install here, else this machine's hostname.
    pub(crate) host: Option<String>,
    pub(crate) dry_run: bool,
    pub(crate) force: bool,
    /// Generations to keep.
    pub(crate) keep: u64,
    /// Fault injection: fail after this many filesystem operations.
    #[cfg(test)]
    pub(crate) fail_after: Option<usize>,
}

impl InstallOptions {
    pub(crate) fn new(layout: Layout) -> Self {
        InstallOptions {
            layout,
            roster: RosterSource::Installed,
            bundle_dir: None,
            host: None,
            dry_run: false,
            force: false,
            keep: KEEP,
            #[cfg(test)]
            fail_after: None,
        }
    }

    /// `--profile spec` (None: the installed roster).
    pub(crate) fn with_profile(mut self, spec: Option<&str>) -> Self {
        self.roster = match spec {
            Some(spec) => RosterSource::Profile(spec.to_owned()),
            None => RosterSource::Installed,
        };
        self
    }

    /// What the journal calls this run.
    fn command(&self) -> String {
        match &self.roster {
            RosterSource::Edit(edit) => edit.command.clone(),
            RosterSource::Installed | RosterSource::Profile(_) => "install".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum InstallError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Layout(#[from] crate::shared::layout::LayoutError),
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error(transparent)]
    Confine(#[from] ConfineError),
    #[error(transparent)]
    State(#[from] RecoverError),
    #[error(transparent)]
    Edit(#[from] EditRefused),
    #[error("your roster {} is in effect (you edited it, so the profile's roster waits beside it), but it does not validate:\n{cause}\nfix it, or pass --force to replace it with the profile's (it is backed up first)", path.display())]
    EditedRosterInvalid { path: PathBuf, cause: ProfileError },
    #[error(transparent)]
    Apply(Box<TxError>),
}

impl ExitStatus for InstallError {
    /// 2 for bad input the operator must fix, 1 otherwise.
    fn exit_code(&self) -> u8 {
        match self {
            InstallError::Profile(_)
            | InstallError::Layout(_)
            | InstallError::Edit(_)
            | InstallError::EditedRosterInvalid { .. } => 2,
            _ => 1,
        }
    }
}

/// Everything the command decided and did, for humans and `--json`.
#[derive(Debug, Serialize)]
pub(crate) struct InstallReport {
    pub(crate) dry_run: bool,
    pub(crate) profile: ProfileRecord,
    /// The host whose agents were installed.
    pub(crate) host: String,
    pub(crate) bundle_version: String,
    pub(crate) config_dir: PathBuf,
    /// The generation written; None for dry runs and no-ops.
    pub(crate) generation: Option<u64>,
    pub(crate) legacy: Option<LegacyInstall>,
    pub(crate) files: Vec<FileReport>,
    pub(crate) created_dirs: Vec<PathBuf>,
    pub(crate) agents: Vec<String>,
    /// Agents the previous install had that this profile no longer has.
    pub(crate) removed_agents: Vec<String>,
    /// The agents the previous install had (empty on a first install).
    pub(crate) previous_agents: Vec<String>,
    pub(crate) socket: String,
    pub(crate) holder_session: String,
    /// The directories put first on every agent pane's PATH.
    pub(crate) runtime_path: RuntimePath,
    /// Filesystem operations performed (0 for dry runs and no-ops).
    pub(crate) operations: usize,
    /// Interrupted runs this run finished or undid first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) recovered: Vec<Recovery>,
    /// A finishing step after the commit point that failed (the next run
    /// completes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unfinished: Option<String>,
    /// What the systemd step did; filled in after the files are installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) systemd: Option<crate::install::activate::ActivationReport>,
    #[serde(skip)]
    pub(crate) plan: Plan,
}

#[derive(Debug, Serialize)]
pub(crate) struct FileReport {
    pub(crate) path: PathBuf,
    pub(crate) action: Action,
    pub(crate) ownership: render::Ownership,
    pub(crate) mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Where our version waits, for conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) new_version: Option<PathBuf>,
}

impl InstallReport {
    pub(crate) fn changed(&self) -> bool {
        !self.plan.is_noop()
    }

    pub(crate) fn conflicts(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| f.action == Action::Conflict)
    }
}

/// Run an install or upgrade.
pub(crate) fn install(opts: &InstallOptions) -> Result<InstallReport, InstallError> {
    let layout = &opts.layout;
    let bundle = match &opts.bundle_dir {
        Some(dir) => Bundle::from_dir(dir)?,
        None => Bundle::embedded(),
    };
    // A bad profile must stop us before any lock or write.
    let given = match &opts.roster {
        RosterSource::Profile(spec) => Some(Profile::resolve(spec, &bundle)?),
        RosterSource::Installed | RosterSource::Edit(_) => None,
    };
    // The lock, and any interrupted run finished or undone, before the
    // receipt and the installed roster are read.
    let (locked, recovered) = if opts.dry_run {
        (None, statedir::recover_if_pending(layout)?)
    } else {
        let locked = statedir::lock(layout)?;
        let recovered = locked.recovered.clone();
        (Some(locked), recovered)
    };
    let receipt = Receipt::load(&layout.receipt())?;
    let choice = choose_roster(opts, &bundle, given, receipt.as_ref())?;
    let runtime_path = RuntimePath::resolve(&layout.home);
    let host = Host {
        mosaic_dir: &layout.unit_mosaic_dir()?,
        runtime_path: &runtime_path.joined(),
    };
    let mut tree = render::render(&bundle, &choice.effective, &host)?;
    if let Some(roster) = tree
        .files
        .iter_mut()
        .find(|f| f.path == Path::new(ROSTER_PATH))
    {
        roster.contents = choice.offered.clone().into_bytes();
    }
    let mut report = plan_and_apply(
        opts,
        locked.as_ref().map(|l| &l.lock),
        &bundle,
        &choice,
        &tree,
        runtime_path,
        receipt.as_ref(),
    )?;
    report.recovered = recovered;
    Ok(report)
}

/// The roster decision: which roster is in effect (env files, units and
/// sessions follow it), which text is offered for `roster.yaml`, and how
/// the receipt records it.
struct RosterChoice {
    effective: Profile,
    /// The text planned for `roster.yaml`: the effective one, or the
    /// profile's when an edited roster keeps it waiting beside.
    offered: String,
    /// Paths replaced (or removed) even where the operator changed them.
    replace: BTreeSet<PathBuf>,
    /// Keep the receipt's record of the roster as it was (the roster was
    /// read, not written): what we last wrote stays what we last wrote.
    carry_record: bool,
}

fn choose_roster(
    opts: &InstallOptions,
    bundle: &Bundle,
    given: Option<Profile>,
    receipt: Option<&Receipt>,
) -> Result<RosterChoice, InstallError> {
    let path = opts.layout.target(Path::new(ROSTER_PATH));
    let text = read_roster(&path)?;
    let origin = path.display().to_string();
    // An older receipt may hold a label no fresh name could: cleaned.
    let label = |fallback: &str| {
        receipt.map_or(fallback.to_owned(), |r| {
            ProfileLabel::cleaned(&r.profile.name).to_string()
        })
    };
    let installed_name = label("installed");
    // Whose agents this run installs: --host, else the host of the last
    // install here, else this machine.
    let host = opts
        .host
        .clone()
        .or_else(|| receipt.and_then(|r| r.host.clone()))
        .unwrap_or_else(crate::shared::host::machine);
    let parse_installed =
        |text: &str| Profile::parse(&installed_name, &origin, text)?.on_host(&host);
    match &opts.roster {
        RosterSource::Installed => {
            let effective = match &text {
                Some(text) => parse_installed(text)?,
                None => Profile::resolve(DEFAULT_PROFILE, bundle)?.on_host(&host)?,
            };
            Ok(RosterChoice {
                offered: effective.text.clone(),
                effective,
                replace: BTreeSet::new(),
                carry_record: text.is_some(),
            })
        }
        RosterSource::Profile(_) => {
            let profile = given.expect("resolved before the lock").on_host(&host)?;
            let ours = receipt
                .and_then(|r| r.file(Path::new(ROSTER_PATH)))
                .zip(text.as_ref())
                .is_some_and(|(record, text)| record.sha256 == sha256_hex(text.as_bytes()));
            let kept = match &text {
                Some(text) if *text != profile.text && !ours && !opts.force => Some(text),
                _ => None,
            };
            let Some(kept) = kept else {
                return Ok(RosterChoice {
                    offered: profile.text.clone(),
                    effective: profile,
                    replace: BTreeSet::new(),
                    carry_record: false,
                });
            };
            let effective = parse_installed(kept)
                .map_err(|cause| InstallError::EditedRosterInvalid { path, cause })?;
            Ok(RosterChoice {
                effective,
                offered: profile.text,
                replace: BTreeSet::new(),
                carry_record: false,
            })
        }
        RosterSource::Edit(edit) => {
            let installed = text.as_deref().map(parse_installed).transpose()?;
            let edited = (edit.edit)(installed.as_ref())?;
            let effective = Profile::parse(&label("edited"), &origin, &edited)?.on_host(&host)?;
            let mut replace: BTreeSet<PathBuf> = edit.also_replace.iter().cloned().collect();
            replace.insert(PathBuf::from(ROSTER_PATH));
            Ok(RosterChoice {
                offered: edited,
                effective,
                replace,
                carry_record: false,
            })
        }
    }
}

/// The installed roster's text, None when there is none.
fn read_roster(path: &Path) -> Result<Option<String>, ProfileError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ProfileError::NotUtf8 {
                path: path.to_path_buf(),
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(ProfileError::Read {
            path: path.to_path_buf(),
            cause,
        }),
    }
}

fn plan_and_apply(
    opts: &InstallOptions,
    lock: Option<&InstallLock>,
    bundle: &Bundle,
    choice: &RosterChoice,
    tree: &RenderedTree,
    runtime_path: RuntimePath,
    receipt: Option<&Receipt>,
) -> Result<InstallReport, InstallError> {
    let layout = &opts.layout;
    let profile = &choice.effective;
    let legacy = match receipt {
        None => legacy::detect(&layout.mosaic, &runtime_path.npm_prefixes(&layout.home)),
        Some(_) => None,
    };
    let known = KnownHashes::shipped();
    let wanted = plan::paths_to_read(tree, receipt);
    let dirs = plan::dirs_needed(tree);
    let snapshot = Snapshot::read(&layout.confiner()?, &wanted, &dirs)?;
    let plan = plan::plan(
        &PlanInput {
            tree,
            receipt,
            known: &known,
            force: opts.force,
            replace: &choice.replace,
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
        name: profile.name.to_string(),
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
        previous_agents: receipt.map(|r| r.agents.clone()).unwrap_or_default(),
        socket: profile.roster.socket().to_owned(),
        holder_session: profile.roster.holder_session().to_owned(),
        runtime_path,
        operations: 0,
        recovered: Vec::new(),
        unfinished: None,
        systemd: None,
        plan,
    };

    let generations = Generations::new(layout);
    let number = generations.next_number(receipt.map(|r| r.generation));
    let mut new_receipt = build_receipt(&report, receipt, number);
    if choice.carry_record {
        carry_roster_record(&mut new_receipt, receipt);
    }
    // Where the roster was read from (`--profile minimal` or the installed
    // copy of the same text) is description, not state: a rerun that
    // changes only that records no generation.
    let receipt_unchanged = receipt.is_some_and(|old| {
        let mut old = old.clone();
        old.generation = number;
        old.profile.origin.clone_from(&new_receipt.profile.origin);
        old == new_receipt
    });
    let Some(lock) = lock.filter(|_| !opts.dry_run) else {
        return Ok(report);
    };
    if report.plan.is_noop() && receipt_unchanged {
        return Ok(report);
    }

    let protect_from = new_receipt
        .files
        .iter()
        .filter_map(|f| f.conflict_since)
        .min();
    let spec = TxSpec {
        command: opts.command(),
        generation: Some(number),
        backup_dir: generations.backup_dir(number),
        finish: generations.finish(number, opts.keep, protect_from),
    };
    let roots = layout.write_roots();
    let committed = Transaction::run(lock, &layout.state, roots, spec, |tx| {
        #[cfg(test)]
        tx.fail_after(opts.fail_after);
        apply_plan(tx, layout, &report.plan)?;
        // Every file durable before the receipt that vouches for them.
        tx.sync_dirs()?;
        let mut new_receipt = new_receipt.clone();
        if new_receipt.created_state_dirs.is_empty() {
            new_receipt.created_state_dirs = tx.created_state_dirs().to_vec();
        }
        let bytes = new_receipt.to_bytes();
        let gen_receipt = generations.receipt_path(number);
        tx.create_dir_all(gen_receipt.parent().expect("has parent"), 0o700)?;
        tx.write(&gen_receipt, &bytes, 0o600)?;
        tx.write(&layout.receipt(), &bytes, 0o600)
    })
    .map_err(|err| InstallError::Apply(Box::new(err)))?;
    report.operations = committed.ops;
    report.unfinished = committed.unfinished;
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
            Action::Conflict | Action::Unchanged | Action::KeepModified => {}
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
            let (sha256, mode) = (sha256_hex(desired), mode_string(f.mode));
            let conflict_since = (f.action == Action::Conflict).then(|| {
                previous
                    .and_then(|r| r.conflict_since)
                    .unwrap_or(generation)
            });
            Some(FileRecord {
                path: f.path.clone(),
                mode,
                sha256,
                ownership: f.ownership,
                preexisting: f.preexisting,
                conflict_since,
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
        created_state_dirs: old
            .map(|r| r.created_state_dirs.clone())
            .unwrap_or_default(),
        host: Some(report.host.clone()),
    }
}

/// The roster was read, not written: its record stays what it was (what we
/// last wrote there), or, for a roster we never wrote, no version of ours
/// (an empty hash), so it stays the operator's.
fn carry_roster_record(receipt: &mut Receipt, old: Option<&Receipt>) {
    let path = Path::new(ROSTER_PATH);
    let previous = old.and_then(|r| r.file(path)).cloned();
    if let Some(record) = receipt.files.iter_mut().find(|f| f.path == path) {
        match previous {
            Some(previous) => *record = previous,
            None => {
                record.sha256 = String::new();
                record.preexisting = true;
            }
        }
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

#[cfg(test)]
mod fault_tests;
