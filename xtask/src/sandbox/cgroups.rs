//! The cgroup half of the sandbox: which hierarchies the recipe uses, the
//! fresh child cgroup it creates in each of them (and always removes), and
//! moving this process in and out of those children.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

/// Where the host mounts its cgroup hierarchies (and where the sandbox
/// mounts its own view of them).
pub(super) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One cgroup hierarchy the recipe needs: the hybrid layout systemd 252
/// expects (`name=systemd` plus the controllers it uses, cgroup2 at `unified`).
pub(super) struct Hierarchy {
    /// Directory under [`CGROUP_ROOT`].
    pub(crate) dir: &'static str,
    /// The controller list as `/proc/<pid>/cgroup` spells it (empty for cgroup2).
    key: &'static str,
    /// `-o` options for mounting it again inside; `None` for cgroup2.
    pub(crate) v1_options: Option<&'static str>,
}

pub(super) const HIERARCHIES: [Hierarchy; 6] = [
    Hierarchy {
        dir: "systemd",
        key: "name=systemd",
        v1_options: Some("none,name=systemd"),
    },
    Hierarchy {
        dir: "pids",
        key: "pids",
        v1_options: Some("pids"),
    },
    Hierarchy {
        dir: "memory",
        key: "memory",
        v1_options: Some("memory"),
    },
    Hierarchy {
        dir: "cpu",
        key: "cpu",
        v1_options: Some("cpu"),
    },
    Hierarchy {
        dir: "cpuacct",
        key: "cpuacct",
        v1_options: Some("cpuacct"),
    },
    Hierarchy {
        dir: "unified",
        key: "",
        v1_options: None,
    },
];

impl Hierarchy {
    pub(crate) fn mount_point(&self) -> PathBuf {
        Path::new(CGROUP_ROOT).join(self.dir)
    }

    fn fs_type(&self) -> &'static str {
        if self.v1_options.is_some() {
            "cgroup"
        } else {
            "cgroup2"
        }
    }

    /// Whether a mount's super options name exactly this hierarchy.
    fn matches_super_options(&self, super_options: &str) -> bool {
        let Some(options) = self.v1_options else {
            return true;
        };
        let wanted = options.split(',').filter(|o| *o != "none");
        let mut have: Vec<&str> = super_options.split(',').filter(|o| *o != "rw").collect();
        have.sort_unstable();
        let mut wanted: Vec<&str> = wanted.collect();
        wanted.sort_unstable();
        have == wanted
    }
}

/// One line of `/proc/<pid>/mountinfo`, the fields the sandbox checks.
pub(super) struct MountInfo {
    /// The mount's root inside its filesystem (for cgroups: relative to the
    /// reader's cgroup namespace).
    pub(crate) root: String,
    pub(crate) mount_point: String,
    /// Optional fields such as `shared:1` (propagation).
    pub(crate) optional: Vec<String>,
    pub(crate) fs_type: String,
    pub(crate) super_options: String,
}

pub(super) fn mountinfo(pid: &str) -> Result<Vec<MountInfo>> {
    let path = format!("/proc/{pid}/mountinfo");
    let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    text.lines()
        .map(|line| {
            let (left, right) = line
                .split_once(" - ")
                .with_context(|| format!("unexpected line in {path}: {line}"))?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            ensure!(
                left.len() >= 6 && right.len() >= 3,
                "unexpected line in {path}: {line}"
            );
            Ok(MountInfo {
                root: left[3].to_owned(),
                mount_point: left[4].to_owned(),
                optional: left[6..].iter().map(|s| (*s).to_owned()).collect(),
                fs_type: right[0].to_owned(),
                super_options: right[2].to_owned(),
            })
        })
        .collect()
}

/// The mount of `hierarchy` visible to `pid` at its usual place, if it is
/// the right kind of filesystem (the last one mounted there wins).
pub(super) fn hierarchy_mount<'m>(
    mounts: &'m [MountInfo],
    hierarchy: &Hierarchy,
) -> Option<&'m MountInfo> {
    let mount_point = hierarchy.mount_point();
    mounts
        .iter()
        .rev()
        .find(|m| Path::new(&m.mount_point) == mount_point)
        .filter(|m| m.fs_type == hierarchy.fs_type())
        .filter(|m| hierarchy.matches_super_options(&m.super_options))
}

/// Fails unless the host mounts every hierarchy the recipe needs, each at
/// its root (the sandbox builds its child paths from that).
pub(super) fn check_host_layout() -> Result<()> {
    let mounts = mountinfo("self")?;
    let missing: Vec<String> = HIERARCHIES
        .iter()
        .filter(|h| hierarchy_mount(&mounts, h).is_none_or(|m| m.root != "/"))
        .map(|h| format!("{} at {}", h.fs_type(), h.mount_point().display()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "unsupported cgroup layout: the sandbox needs the hybrid layout (cgroup v1 \
             name=systemd, pids, memory, cpu, cpuacct and cgroup2 at {CGROUP_ROOT}/unified, \
             each mounted at its root); missing: {}",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The cgroup path of `pid` in each of [`HIERARCHIES`], in that order, as
/// `/proc/<pid>/cgroup` shows it (relative to the reader's cgroup namespace).
pub(super) fn cgroup_paths(pid: &str) -> Result<Vec<String>> {
    let path = format!("/proc/{pid}/cgroup");
    let text = fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    HIERARCHIES
        .iter()
        .map(|h| {
            text.lines()
                .filter_map(|line| {
                    let mut fields = line.splitn(3, ':');
                    let (_, keys, path) = (fields.next()?, fields.next()?, fields.next()?);
                    let found = if h.key.is_empty() {
                        keys.is_empty()
                    } else {
                        keys.split(',').any(|k| k == h.key)
                    };
                    found.then(|| path.to_owned())
                })
                .next()
                .with_context(|| format!("{path} has no line for the {} hierarchy", h.dir))
        })
        .collect()
}

/// The fresh child cgroups of one sandbox run, one per hierarchy, created
/// under the cgroups this process is in. Dropping it moves this process back
/// and removes them (with everything systemd created below them).
pub(super) struct ChildCgroups {
    /// The cgroups this process was in, as host directories.
    parents: Vec<PathBuf>,
    /// The children created so far, as host directories.
    children: Vec<PathBuf>,
    removed: bool,
}

impl ChildCgroups {
    pub(crate) fn create(name: &str) -> Result<Self> {
        let mut cgroups = Self {
            parents: Vec::new(),
            children: Vec::new(),
            removed: false,
        };
        for (hierarchy, path) in HIERARCHIES.iter().zip(cgroup_paths("self")?) {
            let parent = hierarchy.mount_point().join(path.trim_start_matches('/'));
            let child = parent.join(name);
            fs::create_dir(&child)
                .with_context(|| format!("create child cgroup {}", child.display()))?;
            eprintln!("sandbox: created cgroup {}", child.display());
            cgroups.parents.push(parent);
            cgroups.children.push(child);
        }
        Ok(cgroups)
    }

    /// Moves this process into the children (every thread of it).
    pub(crate) fn enter(&self) -> Result<()> {
        move_self(&self.children)
    }

    /// Moves this process back to where it was.
    pub(crate) fn leave(&self) -> Result<()> {
        move_self(&self.parents)
    }

    /// Fails unless `pid` sits exactly in the children.
    pub(crate) fn check_inside(&self, pid: &str) -> Result<()> {
        check_in(pid, &self.children)
    }

    /// Moves this process back, then removes the children bottom-up. Waits
    /// (bounded) for the sandbox's last processes to finish exiting.
    pub(crate) fn remove(&mut self) -> Result<()> {
        self.removed = true;
        let left = self.leave();
        let mut leftovers = Vec::new();
        for child in &self.children {
            if let Err(err) = remove_tree_patiently(child) {
                leftovers.push(format!("{}: {err:#}", child.display()));
            }
        }
        left.context("move this process back to its own cgroups")?;
        ensure!(
            leftovers.is_empty(),
            "could not remove child cgroups: {}",
            leftovers.join("; ")
        );
        eprintln!("sandbox: removed {} child cgroups", self.children.len());
        Ok(())
    }
}

impl Drop for ChildCgroups {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(err) = self.remove() {
                eprintln!("sandbox: warning: {err:#}");
            }
        }
    }
}

/// Writes this process's pid into `cgroup.procs` of each directory, then
/// checks that `/proc/self/cgroup` agrees.
fn move_self(dirs: &[PathBuf]) -> Result<()> {
    let pid = std::process::id().to_string();
    for dir in dirs {
        let procs = dir.join("cgroup.procs");
        fs::write(&procs, &pid).with_context(|| format!("write {}", procs.display()))?;
    }
    check_in("self", dirs)
}

fn check_in(pid: &str, dirs: &[PathBuf]) -> Result<()> {
    let actual = cgroup_paths(pid)?;
    for ((hierarchy, dir), path) in HIERARCHIES.iter().zip(dirs).zip(&actual) {
        let expected = dir
            .strip_prefix(hierarchy.mount_point())
            .expect("cgroup dirs live under their hierarchy");
        ensure!(
            Path::new(path) == Path::new("/").join(expected),
            "process {pid} is in {path} of the {} hierarchy, expected /{}",
            hierarchy.dir,
            expected.display()
        );
    }
    Ok(())
}

/// Removes a cgroup directory and every cgroup below it, retrying while the
/// kernel still counts exiting processes in them (EBUSY), for at most 10 s.
fn remove_tree_patiently(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match remove_tree(dir) {
            Ok(()) => return Ok(()),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(err) => return Err(err),
        }
    }
}

fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("list {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        if entry.file_type()?.is_dir() {
            remove_tree(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("rmdir {}", dir.display()))
        }
        _ => Ok(()),
    }
}
