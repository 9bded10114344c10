//! Which files go into the archive: a port of npm-packlist 10 on
//! ignore-walk 8 (as npm 11 runs them), rule for rule, so that the
//! selection is npm's.
//!
//! Every directory is a walker with rule sets applied in a fixed order:
//! npm's defaults (junk such as `.git`, `*.orig`, `.DS_Store`), the
//! `package.json` `files` list (a package's top only; everything else is
//! excluded first), the directory's `.npmignore` (or else its `.gitignore`),
//! and the strict rules. At a package's top the strict rules always keep
//! `package.json`, `README*`, `LICENSE*`/`LICENCE*`, `COPYING*`, every file
//! named in `files`, `main`, `browser` and each `bin` target, and always drop
//! `.git`, `node_modules`, `.npmrc` and lock files. A later rule overrides an
//! earlier one, and a directory asks its parent first. Only regular files
//! are packed; symlinks and empty directories are not.
//!
//! In a workspace project (a root whose `workspaces` exist), npm-packlist
//! gives every subdirectory the root's list of ignore files, so a
//! subdirectory's own `package.json` is read as an ignore file (its lines as
//! patterns), and its presence turns off that directory's `.npmignore` and
//! `.gitignore`.
//!
//! Bundled dependencies (see `bundle`) are walked as packages of their own:
//! their `files`, `main`, `browser` and `bin` count, but not their top-level
//! `.npmignore`/`.gitignore` nor npm's defaults there (unless the dependency
//! is a symlink, which obeys everything).

use super::bundle::{self, Bundled};
use super::collate::archive_order;
use super::glob::{Pattern, IGNORE_RULES};
use super::node_path;
use super::package::{Manifest, Package};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// npm-packlist's defaults, applied in every directory that obeys them.
const DEFAULTS: &[&str] = &[
    ".npmignore",
    ".gitignore",
    "**/.git",
    "**/.svn",
    "**/.hg",
    "**/CVS",
    "**/.git/**",
    "**/.svn/**",
    "**/.hg/**",
    "**/CVS/**",
    "/.lock-wscript",
    "/.wafpickle-*",
    "/build/config.gypi",
    "npm-debug.log",
    "**/.npmrc",
    ".*.swp",
    ".DS_Store",
    "**/.DS_Store/**",
    "._*",
    "**/._*/**",
    "*.orig",
    "/archived-packages/**",
];

static DEFAULT_RULES: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    compile(DEFAULTS.iter().copied(), "npm's default ignores")
        .expect("npm's default ignores compile")
});

/// A package top's strict rules (after any `!file` for a file named in
/// `files`, before `!/<main>`, `!/<browser>` and `!/<bin>`).
const PACKAGE_STRICT: &[&str] = &[
    "/.git",
    "!/package.json",
    "!/readme{,.*[^~$]}",
    "!/copying{,.*[^~$]}",
    "!/license{,.*[^~$]}",
    "!/licence{,.*[^~$]}",
    "/.git",
    "/node_modules",
    ".npmrc",
    "/package-lock.json",
    "/yarn.lock",
    "/pnpm-lock.yaml",
    "/bun.lockb",
];

/// Where a rule set comes from, in the order the sets apply.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Defaults,
    PackageJson,
    NpmIgnore,
    GitIgnore,
    Strict,
}

/// The packed package itself, and a bundled dependency that is a symlink.
const PACKAGE_SOURCES: &[Source] = &[
    Source::Defaults,
    Source::PackageJson,
    Source::NpmIgnore,
    Source::GitIgnore,
    Source::Strict,
];
/// A bundled dependency that is a real directory.
const BUNDLED_SOURCES: &[Source] = &[Source::PackageJson, Source::Strict];
/// Every subdirectory.
const CHILD_SOURCES: &[Source] = &[
    Source::Defaults,
    Source::NpmIgnore,
    Source::GitIgnore,
    Source::Strict,
];
/// Every subdirectory of a workspace project, where `package.json` is an
/// ignore file like the others.
const WORKSPACE_CHILD_SOURCES: &[Source] = PACKAGE_SOURCES;

/// The package's files (its own and its bundled dependencies'), relative to
/// its directory with `/` separators, in npm's archive order.
pub(crate) fn select(package: &Package) -> Result<Vec<String>> {
    let mut found = BTreeSet::new();
    let mut root = Walker::package(&package.dir, &package.manifest, PACKAGE_SOURCES)?;
    if package.has_workspaces {
        root.child_sources = WORKSPACE_CHILD_SOURCES;
    }
    root.walk("", &mut found)?;
    for Bundled {
        location,
        dir,
        manifest,
        is_link,
    } in bundle::bundled(package)?
    {
        let sources = match is_link {
            true => PACKAGE_SOURCES,
            false => BUNDLED_SOURCES,
        };
        let prefix = format!("{location}/");
        Walker::package(&dir, &manifest, sources)?.walk(&prefix, &mut found)?;
    }
    // ignore-walk sorts `@scope/...` as `./@scope/...`; the archive drops the `./`.
    let mut files: Vec<String> = found.into_iter().collect();
    let key = |p: &str| match p.starts_with('@') {
        true => format!("./{p}"),
        false => p.to_owned(),
    };
    files.sort_by(|a, b| archive_order(&key(a), &key(b)));
    Ok(files)
}

struct Walker<'a> {
    dir: PathBuf,
    /// Path from the walked package's top (`""` for the top itself).
    rel: String,
    basename: String,
    parent: Option<&'a Walker<'a>>,
    sources: &'static [Source],
    /// What this directory's subdirectories obey.
    child_sources: &'static [Source],
    rules: Vec<(Source, Vec<Pattern>)>,
    /// This directory itself matched a rule, so its own rules may bring back
    /// entries its parent excluded.
    exact: bool,
    /// Files named in `files` that sit in this directory (a package top
    /// holds them all; a child gets those directly inside it).
    required: Vec<String>,
    entries: Vec<String>,
}

impl<'a> Walker<'a> {
    /// The top of a package: npm-packlist's `processPackage` when it has a
    /// `package.json`, then its ignore files.
    fn package(
        dir: &Path,
        manifest: &Manifest,
        sources: &'static [Source],
    ) -> Result<Walker<'static>> {
        let mut walker = Walker::open(dir.to_path_buf(), String::new(), None, sources)?;
        if walker.entries.iter().any(|e| e == "package.json") {
            walker.process_package(manifest)?;
        }
        walker.read_ignore_files()?;
        Ok(walker)
    }

    fn process_package(&mut self, manifest: &Manifest) -> Result<()> {
        let mut strict: Vec<String> = PACKAGE_STRICT.iter().map(|r| r.to_string()).collect();
        if let Some(files) = &manifest.files {
            let top = self
                .dir
                .to_str()
                .with_context(|| format!("{}: the path is not UTF-8", self.dir.display()))?
                .to_owned();
            let mut include = vec!["*".to_owned()];
            for entry in files {
                let mut rule = match entry.strip_prefix("./") {
                    Some(rest) => format!("/{rest}"),
                    None => entry.clone(),
                };
                if rule.ends_with("/*") {
                    rule.push('*');
                }
                // npm stats the entry to tell a file (strictly required), a
                // directory (all of it) and anything else (a glob).
                let on_disk = node_path::join(&[&top, rule.trim_start_matches('!')]);
                match std::fs::symlink_metadata(&on_disk) {
                    Ok(meta) if meta.is_file() => {
                        strict.insert(0, format!("!{rule}"));
                        let required = rule.strip_prefix('/').unwrap_or(&rule);
                        self.required.push(required.to_owned());
                    }
                    Ok(meta) if meta.is_dir() => {
                        include.push(format!("!{rule}"));
                        include.push(format!("!{rule}/**"));
                    }
                    Ok(_) => {}
                    Err(_) => include.push(format!("!{rule}")),
                }
            }
            let rules = compile(include.iter().map(String::as_str), "package.json `files`")?;
            self.rules.push((Source::PackageJson, rules));
        }
        let added = [&manifest.browser, &manifest.main];
        strict.extend(added.into_iter().flatten().map(|path| format!("!/{path}")));
        strict.extend(manifest.bin.iter().map(|(_, path)| format!("!/{path}")));
        let origin = "npm's strict rules (package.json, README, LICENSE, main, browser, bin)";
        let rules = compile(strict.iter().map(String::as_str), origin)?;
        self.rules.push((Source::Strict, rules));
        Ok(())
    }

    fn child(&'a self, name: &str, exact: bool) -> Result<Walker<'a>> {
        let rel = join(&self.rel, name);
        let sources = self.child_sources;
        let mut walker = Walker::open(self.dir.join(name), rel, Some(self), sources)?;
        walker.child_sources = sources;
        walker.exact = exact;
        // npm-packlist keeps the required files for which
        // `path.relative(file, entry)` is `..`: those directly inside.
        walker.required = self
            .required
            .iter()
            .filter_map(|file| {
                let file = node_path::normalize(file);
                let (dir, base) = file.rsplit_once('/')?;
                (dir == node_path::normalize(name) && !base.is_empty()).then(|| base.to_owned())
            })
            .collect();
        let strict = std::iter::once("/.git".to_owned())
            .chain(walker.required.iter().map(|file| format!("!{file}")))
            .collect::<Vec<_>>();
        let rules = compile(strict.iter().map(String::as_str), "npm's strict rules")?;
        walker.rules.push((Source::Strict, rules));
        walker.read_ignore_files()?;
        Ok(walker)
    }

    fn open(
        dir: PathBuf,
        rel: String,
        parent: Option<&'a Walker<'a>>,
        sources: &'static [Source],
    ) -> Result<Walker<'a>> {
        let mut entries = Vec::new();
        let listing = std::fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))?;
        for entry in listing {
            let entry = entry.with_context(|| format!("list {}", dir.display()))?;
            match entry.file_name().into_string() {
                Ok(name) => entries.push(name),
                Err(name) => bail!("{}: file name {name:?} is not UTF-8", dir.display()),
            }
        }
        Ok(Walker {
            basename: rel.rsplit('/').next().unwrap_or_default().to_owned(),
            dir,
            rel,
            parent,
            sources,
            child_sources: CHILD_SOURCES,
            rules: Vec::new(),
            exact: false,
            required: Vec::new(),
            entries,
        })
    }

    /// The rules of `source`, if this directory obeys and has them.
    fn rules_of(&self, source: Source) -> Option<&[Pattern]> {
        if source == Source::Defaults {
            return Some(&DEFAULT_RULES);
        }
        self.rules
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, rules)| rules.as_slice())
    }

    /// The directory's `.npmignore`, or else its `.gitignore`; neither at a
    /// package top whose `package.json` has a `files` list, nor where this
    /// directory does not obey them. In a workspace project's subdirectory,
    /// a `package.json` is read first as an ignore file, and then neither.
    fn read_ignore_files(&mut self) -> Result<()> {
        let has = |walker: &Self, name: &str| walker.entries.iter().any(|e| e == name);
        if self.parent.is_some()
            && self.sources.contains(&Source::PackageJson)
            && has(self, "package.json")
        {
            self.read_ignore_file(Source::PackageJson, "package.json")?;
        }
        let present = |name: &str| has(self, name);
        let obeys = |source| self.sources.contains(&source);
        if self.rules.iter().any(|(s, _)| *s == Source::PackageJson) {
            return Ok(());
        }
        let (source, name) = if obeys(Source::NpmIgnore) && present(".npmignore") {
            (Source::NpmIgnore, ".npmignore")
        } else if obeys(Source::GitIgnore) && present(".gitignore") {
            (Source::GitIgnore, ".gitignore")
        } else {
            return Ok(());
        };
        self.read_ignore_file(source, name)
    }

    fn read_ignore_file(&mut self, source: Source, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let rules = compile(text.lines(), &path.display().to_string())?;
        self.rules.push((source, rules));
        Ok(())
    }

    /// Adds the kept files under this directory to `found`, each prefixed.
    fn walk(&self, prefix: &str, found: &mut BTreeSet<String>) -> Result<()> {
        for entry in &self.entries {
            let as_file = self.filter_entry(entry, false, None);
            let as_dir = self.filter_entry(entry, true, None);
            // npm refuses names with `*` (they are invalid on Windows).
            if !(as_file || as_dir) || entry.contains('*') {
                continue;
            }
            let path = self.dir.join(entry);
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("stat {}", path.display()))?;
            if meta.is_file() && as_file {
                found.insert(format!("{prefix}{}", join(&self.rel, entry)));
            } else if meta.is_dir() && as_dir {
                let exact = as_file || self.filter_entry(&format!("{entry}/"), false, None);
                self.child(entry, exact)?.walk(prefix, found)?;
            }
        }
        Ok(())
    }

    /// ignore-walk's `filterEntry`: whether `entry` (relative to this
    /// directory) is kept. `partial` asks "may something inside it be kept?"
    /// for an entry that may be a directory.
    fn filter_entry(&self, entry: &str, partial: bool, basename: Option<&str>) -> bool {
        let mut included = true;
        if let Some(parent) = self.parent {
            let parent_entry = format!("{}/{entry}", self.basename);
            included = parent.filter_entry(&parent_entry, partial, Some(basename.unwrap_or(entry)));
            if !included && !self.exact {
                return false;
            }
        }
        let forms = EntryForms::new(entry, basename);
        for source in self.sources {
            let Some(rules) = self.rules_of(*source) else {
                continue;
            };
            for rule in rules {
                if rule.negate() != included && forms.hit_by(rule, partial) {
                    included = rule.negate();
                }
            }
        }
        included
    }
}

/// The spellings of an entry that ignore-walk tries a rule against, built
/// once per entry rather than once per rule.
struct EntryForms<'e> {
    entry: &'e str,
    rooted: String,
    rooted_dir: String,
    dir: String,
    /// For a rule that may match a bare basename: (`base`, `/base`, `/base/`, `base/`).
    base: Option<(&'e str, String, String, String)>,
}

impl<'e> EntryForms<'e> {
    fn new(entry: &'e str, basename: Option<&'e str>) -> EntryForms<'e> {
        EntryForms {
            entry,
            rooted: format!("/{entry}"),
            rooted_dir: format!("/{entry}/"),
            dir: format!("{entry}/"),
            base: basename.map(|b| (b, format!("/{b}"), format!("/{b}/"), format!("{b}/"))),
        }
    }

    /// ignore-walk's match test: the entry as a file, then (`partial`) as a
    /// directory that may hold a match, then by its basename.
    fn hit_by(&self, rule: &Pattern, partial: bool) -> bool {
        let m = |path: &str, partial: bool| rule.matches(path, partial);
        if m(&self.rooted, false) || m(self.entry, false) {
            return true;
        }
        if !partial {
            return false;
        }
        if m(&self.rooted_dir, false)
            || m(&self.dir, false)
            || rule.negate() && (m(&self.rooted, true) || m(self.entry, true))
        {
            return true;
        }
        match &self.base {
            Some((base, rooted, rooted_dir, dir)) if rule.is_relative() => {
                m(rooted_dir, false)
                    || m(dir, false)
                    || rule.negate() && (m(rooted, true) || m(base, true))
            }
            _ => false,
        }
    }
}

/// One rule per line; blank lines and `#` comments skipped.
fn compile<'l>(lines: impl Iterator<Item = &'l str>, origin: &str) -> Result<Vec<Pattern>> {
    lines
        .map(|line| line.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| Pattern::new(line, IGNORE_RULES).with_context(|| format!("in {origin}")))
        .collect()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}
