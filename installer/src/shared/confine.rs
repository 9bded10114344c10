//! Confinement: resolving install targets without letting a symlink lead a
//! write (or a read that decides a write) outside the install root.
//!
//! Every path the installer touches is config-relative and resolved here
//! component by component. A symlink whose target stays inside the root is
//! followed; one that leaves it is refused with the link and its target named.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfineError {
    #[error("refusing to touch {}: it goes through the symlink {} -> {}, which leads outside {}; replace the link with a real directory or file, or install into another --home", path.display(), link.display(), target.display(), root.display())]
    Escapes {
        path: PathBuf,
        link: PathBuf,
        target: PathBuf,
        root: PathBuf,
    },
    #[error("{} is not a plain relative path inside the install root", .0.display())]
    NotRelative(PathBuf),
    #[error("cannot inspect {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Resolves many paths under one root: the root is canonicalized once and
/// every directory already found safe is remembered, so installing a
/// thousand agents' files does not walk the same components a thousand times.
pub(crate) struct Confiner {
    root: PathBuf,
    real_root: PathBuf,
    dirs: RefCell<HashMap<PathBuf, PathBuf>>,
    /// Relative paths under this prefix resolve in a root of their own.
    subtree: Option<(PathBuf, Box<Confiner>)>,
}

impl Confiner {
    pub(crate) fn new(root: &Path) -> Result<Confiner, ConfineError> {
        Ok(Confiner {
            root: root.to_path_buf(),
            real_root: canonical_prefix(root)?,
            dirs: RefCell::default(),
            subtree: None,
        })
    }

    /// Resolve relative paths under `prefix` below `root` instead, confined
    /// to it (the Mosaic tree where `$MOSAIC_HOME` puts it).
    pub(crate) fn with_subtree(
        mut self,
        prefix: &Path,
        root: &Path,
    ) -> Result<Confiner, ConfineError> {
        self.subtree = Some((prefix.to_path_buf(), Box::new(Confiner::new(root)?)));
        Ok(self)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of `rel` (plain components only) under the root: a
    /// symlink on the way that stays inside the root is followed, one that
    /// leaves it is refused ([`ConfineError::Escapes`]).
    pub(crate) fn resolve(&self, rel: &Path) -> Result<PathBuf, ConfineError> {
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(ConfineError::NotRelative(rel.to_path_buf()));
        }
        if let Some((prefix, subtree)) = &self.subtree {
            if let Ok(inside) = rel.strip_prefix(prefix) {
                return subtree.resolve(inside);
            }
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        let cached = self.dirs.borrow().get(parent).cloned();
        let base = match cached {
            Some(real) => real,
            None => {
                let real = self.walk(self.real_root.clone(), parent, rel)?;
                if real.is_dir() {
                    self.dirs
                        .borrow_mut()
                        .insert(parent.to_path_buf(), real.clone());
                }
                real
            }
        };
        match rel.file_name() {
            Some(name) => self.walk(base, Path::new(name), rel),
            None => Ok(base),
        }
    }

    /// Walk `rest` from the real directory `start`, following symlinks
    /// only while they stay under the root. `whole` is for messages.
    fn walk(&self, start: PathBuf, rest: &Path, whole: &Path) -> Result<PathBuf, ConfineError> {
        let mut current = start;
        let mut hops = 0;
        let mut pending: Vec<&std::ffi::OsStr> = rest.iter().collect();
        pending.reverse();
        while let Some(part) = pending.pop() {
            let next = current.join(part);
            match std::fs::symlink_metadata(&next) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    hops += 1;
                    let target = std::fs::read_link(&next).map_err(|cause| ConfineError::Io {
                        path: next.clone(),
                        cause,
                    })?;
                    let absolute = if target.is_absolute() {
                        target.clone()
                    } else {
                        current.join(&target)
                    };
                    let real = canonical_prefix(&absolute)?;
                    if !real.starts_with(&self.real_root) || hops > 40 {
                        return Err(ConfineError::Escapes {
                            path: self.root.join(whole),
                            link: next,
                            target,
                            root: self.root.clone(),
                        });
                    }
                    current = real;
                }
                Ok(_) => current = next,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    current = next;
                    while let Some(rest) = pending.pop() {
                        current.push(rest);
                    }
                }
                Err(cause) => return Err(ConfineError::Io { path: next, cause }),
            }
        }
        Ok(current)
    }
}

/// Canonicalize the longest existing prefix of `path` (the kernel resolves
/// its symlinks and `..`) and append the rest lexically: a component that
/// does not exist cannot be a symlink, so `..` after it is plain `pop`.
fn canonical_prefix(path: &Path) -> Result<PathBuf, ConfineError> {
    let components: Vec<Component> = path.components().collect();
    for split in (0..=components.len()).rev() {
        let prefix: PathBuf = components[..split].iter().collect();
        if prefix.as_os_str().is_empty() {
            continue;
        }
        match prefix.canonicalize() {
            Ok(mut out) => {
                for component in &components[split..] {
                    match component {
                        Component::ParentDir => {
                            out.pop();
                        }
                        Component::CurDir => {}
                        other => out.push(other),
                    }
                }
                return Ok(out);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(cause) => {
                return Err(ConfineError::Io {
                    path: path.to_path_buf(),
                    cause,
                })
            }
        }
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(root: &Path, rel: &Path) -> Result<PathBuf, ConfineError> {
        Confiner::new(root)?.resolve(rel)
    }
    use std::os::unix::fs::symlink;

    #[test]
    fn plain_and_missing_paths_resolve_under_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("a")).unwrap();
        assert_eq!(
            resolve(&root, Path::new("a/b/c")).unwrap(),
            root.join("a/b/c")
        );
    }

    #[test]
    fn symlink_inside_root_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        symlink("real", root.join("link")).unwrap();
        assert_eq!(
            resolve(&root, Path::new("link/f")).unwrap(),
            root.join("real/f")
        );
    }

    #[test]
    fn symlink_out_of_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        symlink(outside.path(), root.join("tools")).unwrap();
        let err = resolve(&root, Path::new("tools/x.sh")).unwrap_err();
        assert!(matches!(err, ConfineError::Escapes { .. }), "{err}");
        assert!(err.to_string().contains("leads outside"), "{err}");
        symlink("/etc", root.join("unit")).unwrap();
        assert!(resolve(&root, Path::new("unit")).is_err());
        symlink("../../x", root.join("up")).unwrap();
        assert!(resolve(&root, Path::new("up")).is_err());
        symlink("missing/../../../etc", root.join("sneaky")).unwrap();
        assert!(resolve(&root, Path::new("sneaky/passwd")).is_err());
    }

    #[test]
    fn a_subtree_resolves_in_its_own_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let other = root.join("elsewhere");
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let confiner = Confiner::new(&root.join("config"))
            .unwrap()
            .with_subtree(Path::new("mosaic"), &other)
            .unwrap();
        assert_eq!(
            confiner.resolve(Path::new("mosaic/fleet/a")).unwrap(),
            other.join("fleet/a")
        );
        assert_eq!(confiner.resolve(Path::new("mosaic")).unwrap(), other);
        assert_eq!(
            confiner.resolve(Path::new("systemd/x")).unwrap(),
            root.join("config/systemd/x")
        );
        // Confined to the subtree: a link from it into the config root escapes.
        symlink(root.join("config"), other.join("up")).unwrap();
        assert!(confiner.resolve(Path::new("mosaic/up/x")).is_err());
    }

    #[test]
    fn dotdot_is_not_a_relative_path() {
        assert!(resolve(Path::new("/tmp"), Path::new("../etc")).is_err());
    }
}
