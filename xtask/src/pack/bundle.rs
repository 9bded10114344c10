//! Bundled dependencies: which installed packages under `node_modules/` go
//! into the archive, found the way npm 11 finds them (arborist's view of
//! the installed tree, then npm-packlist's `gatherBundles`).
//!
//! The root bundles each name in its `bundleDependencies` that it depends
//! on (`dependencies` or `optionalDependencies`; a name that is also a
//! `devDependencies` entry, only a peer, or not a dependency at all is
//! skipped), and every bundled package in turn bundles all of its own
//! `dependencies` and `optionalDependencies`. A name resolves as Node
//! resolves it: `node_modules/<name>` next to the package that depends on
//! it, then in each enclosing package up to the root; one that is not
//! installed is skipped. Each package is bundled once, however many
//! packages depend on it and even in a cycle.

use super::package::{Manifest, Package};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One bundled package.
pub(crate) struct Bundled {
    /// Where it sits, relative to the package root (`node_modules/a/node_modules/b`).
    pub(crate) location: String,
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Manifest,
    /// A symlink in `node_modules` (from `npm link` or a workspace): npm
    /// walks it with every ignore rule, a real directory with fewer.
    pub(crate) is_link: bool,
}

/// Every package the root bundles, each location once.
pub(crate) fn bundled(package: &Package) -> Result<Vec<Bundled>> {
    let root = &package.manifest;
    let is_dependency = |name: &String| {
        (root.dependencies.contains(name) || root.optional_dependencies.contains(name))
            && !root.dev_dependencies.contains(name)
    };
    let mut pending: Vec<(String, String)> = root
        .bundle_dependencies
        .iter()
        .filter(|name| is_dependency(name))
        .map(|name| (String::new(), name.clone()))
        .collect();
    let mut found: Vec<Bundled> = Vec::new();
    // npm walks every location a dependency resolves to, but gathers each
    // package's own bundle once (by where it really is).
    let mut gathered: Vec<PathBuf> = Vec::new();
    while let Some((from, name)) = pending.pop() {
        let Some(location) = resolve(&package.dir, &from, &name) else {
            continue;
        };
        let dir = package.dir.join(&location);
        let real = dir
            .canonicalize()
            .with_context(|| format!("resolve {}", dir.display()))?;
        let is_link = std::fs::symlink_metadata(&dir)
            .with_context(|| format!("stat {}", dir.display()))?
            .file_type()
            .is_symlink();
        let manifest = Manifest::read_bundled(&dir)?;
        if !gathered.contains(&real) {
            gathered.push(real.clone());
            // A link's own dependencies resolve from where it really is.
            let from_here = match is_link {
                true => link_location(&package.dir, &real, &location)?,
                false => location.clone(),
            };
            pending.extend(
                manifest
                    .dependencies
                    .iter()
                    .chain(&manifest.optional_dependencies)
                    .map(|dep| (from_here.clone(), dep.clone())),
            );
        }
        if !found.iter().any(|b| b.location == location) {
            found.push(Bundled {
                location,
                dir,
                manifest,
                is_link,
            });
        }
    }
    Ok(found)
}

/// The location (relative to `root`) of the package `name` as seen from the
/// package at `from`: `<from>/node_modules/<name>`, then the same next to
/// each enclosing package up to the root.
fn resolve(root: &Path, from: &str, name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name.split('/').all(|part| !part.is_empty() && part != "..")
        && (name.starts_with('@') && name.matches('/').count() == 1 || !name.contains('/'));
    if !valid {
        return None;
    }
    let mut at = Some(from.to_owned());
    while let Some(here) = at {
        let candidate = match here.is_empty() {
            true => format!("node_modules/{name}"),
            false => format!("{here}/node_modules/{name}"),
        };
        if std::fs::metadata(root.join(&candidate)).is_ok_and(|meta| meta.is_dir()) {
            return Some(candidate);
        }
        at = enclosing(&here);
    }
    None
}

/// The package (or, for a link target, the directory) that encloses the
/// one at `location`: `a/node_modules/@s/b` is in `a`, `vendor/x` in `vendor`.
fn enclosing(location: &str) -> Option<String> {
    if location.is_empty() {
        return None;
    }
    let nested = location
        .match_indices("node_modules/")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || location.as_bytes()[i - 1] == b'/')
        .last();
    Some(match nested {
        Some(i) => location[..i].trim_end_matches('/').to_owned(),
        None => location
            .rsplit_once('/')
            .map(|(dir, _)| dir.to_owned())
            .unwrap_or_default(),
    })
}

/// Where a symlinked dependency really lives, relative to the root; npm
/// resolves its dependencies from there. A link out of the package is
/// refused: what npm would bundle then depends on directories outside it.
fn link_location(root: &Path, real: &Path, location: &str) -> Result<String> {
    let root = root
        .canonicalize()
        .with_context(|| format!("resolve {}", root.display()))?;
    match real.strip_prefix(&root) {
        Ok(inside) => inside
            .to_str()
            .map(str::to_owned)
            .with_context(|| format!("{}: the path is not UTF-8", real.display())),
        Err(_) => bail!(
            "{location} is a bundled dependency linked to {}, outside the package: \
             npm would resolve its dependencies outside the package too, which xtask pack \
             does not do; install it into node_modules instead of linking it",
            real.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::enclosing;

    #[test]
    fn packages_enclose_their_node_modules() {
        assert_eq!(enclosing("node_modules/a").as_deref(), Some(""));
        assert_eq!(
            enclosing("node_modules/a/node_modules/@s/b").as_deref(),
            Some("node_modules/a")
        );
        assert_eq!(enclosing("vendor/x").as_deref(), Some("vendor"));
        assert_eq!(enclosing("vendor").as_deref(), Some(""));
        assert_eq!(enclosing(""), None);
    }
}
