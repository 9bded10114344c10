//! Which files go into the archive: a port of npm-packlist 10 on
//! ignore-walk 8, rule for rule, so that the selection is npm's.
//!
//! Every directory is a walker with rule sets applied in a fixed order:
//! npm's defaults (junk such as `.git`, `*.orig`, `.DS_Store`), the
//! `package.json` `files` list (root only; everything else is excluded
//! first), the directory's `.npmignore` (or else its `.gitignore`), and the
//! strict rules (always `package.json`, `README*`, `LICENSE*`/`LICENCE*`,
//! `COPYING*`; never `.git`, `node_modules`, `.npmrc`, lock files). A later
//! rule overrides an earlier one, and a directory asks its parent first.
//! Only regular files are packed; symlinks and empty directories are not.

use super::collate::archive_order;
use super::glob::{Pattern, IGNORE_RULES};
use super::package::Package;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// npm-packlist's defaults, applied in every directory.
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

/// The root's strict rules (after any `!file` for a file named in `files`).
const ROOT_STRICT: &[&str] = &[
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

const ROOT_SOURCES: &[Source] = &[
    Source::Defaults,
    Source::PackageJson,
    Source::NpmIgnore,
    Source::GitIgnore,
    Source::Strict,
];
const CHILD_SOURCES: &[Source] = &[
    Source::Defaults,
    Source::NpmIgnore,
    Source::GitIgnore,
    Source::Strict,
];

/// The package's files, relative to its directory with `/` separators, in
/// npm's archive order.
pub fn select(package: &Package) -> Result<Vec<String>> {
    let root = Walker::root(package)?;
    let mut found = Vec::new();
    root.walk(&mut found)?;
    // ignore-walk sorts `@scope/...` as `./@scope/...`; the archive drops the `./`.
    let key = |p: &str| match p.starts_with('@') {
        true => format!("./{p}"),
        false => p.to_owned(),
    };
    found.sort_by(|a, b| archive_order(&key(a), &key(b)));
    Ok(found)
}

struct Walker<'a> {
    dir: PathBuf,
    /// Path from the package root (`""` for the root itself).
    rel: String,
    basename: String,
    parent: Option<&'a Walker<'a>>,
    sources: &'static [Source],
    rules: Vec<(Source, Vec<Pattern>)>,
    /// This directory itself matched a rule, so its own rules may bring back
    /// entries its parent excluded.
    exact: bool,
    /// Files named in `files` that sit in this directory (the root's list
    /// holds them all; a child gets those directly inside it).
    required: Vec<String>,
    entries: Vec<String>,
}

impl<'a> Walker<'a> {
    fn root(package: &Package) -> Result<Walker<'static>> {
        let mut walker = Walker::open(package.dir.clone(), String::new(), None, ROOT_SOURCES)?;
        let mut strict: Vec<String> = ROOT_STRICT.iter().map(|r| r.to_string()).collect();
        if let Some(files) = &package.files {
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
                let on_disk = format!(
                    "{}/{}",
                    package.dir.display(),
                    rule.trim_start_matches('!').trim_start_matches('/')
                );
                match std::fs::symlink_metadata(&on_disk) {
                    Ok(meta) if meta.is_file() => {
                        strict.insert(0, format!("!{rule}"));
                        let required = rule.strip_prefix('/').unwrap_or(&rule);
                        walker.required.push(required.to_owned());
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
            walker.rules.push((Source::PackageJson, rules));
        }
        let rules = compile(strict.iter().map(String::as_str), "npm's strict rules")?;
        walker.rules.push((Source::Strict, rules));
        walker.read_ignore_files()?;
        Ok(walker)
    }

    fn child(&'a self, name: &str, exact: bool) -> Result<Walker<'a>> {
        let rel = join(&self.rel, name);
        let mut walker = Walker::open(self.dir.join(name), rel, Some(self), CHILD_SOURCES)?;
        walker.exact = exact;
        walker.required = self
            .required
            .iter()
            .filter_map(|file| file.strip_prefix(name)?.strip_prefix('/'))
            .filter(|inside| !inside.is_empty() && !inside.contains('/'))
            .map(str::to_owned)
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
        let defaults = compile(DEFAULTS.iter().copied(), "npm's default ignores")?;
        Ok(Walker {
            basename: rel.rsplit('/').next().unwrap_or_default().to_owned(),
            dir,
            rel,
            parent,
            sources,
            rules: vec![(Source::Defaults, defaults)],
            exact: false,
            required: Vec::new(),
            entries,
        })
    }

    /// The directory's `.npmignore`, or else its `.gitignore`; neither at a
    /// root whose `package.json` has a `files` list.
    fn read_ignore_files(&mut self) -> Result<()> {
        if self.rules.iter().any(|(s, _)| *s == Source::PackageJson) {
            return Ok(());
        }
        let present = |name: &str| self.entries.iter().any(|e| e == name);
        let (source, name) = if present(".npmignore") {
            (Source::NpmIgnore, ".npmignore")
        } else if present(".gitignore") {
            (Source::GitIgnore, ".gitignore")
        } else {
            return Ok(());
        };
        let path = self.dir.join(name);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let rules = compile(text.lines(), &path.display().to_string())?;
        self.rules.push((source, rules));
        Ok(())
    }

    fn walk(&self, found: &mut Vec<String>) -> Result<()> {
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
                found.push(join(&self.rel, entry));
            } else if meta.is_dir() && as_dir {
                let exact = as_file || self.filter_entry(&format!("{entry}/"), false, None);
                self.child(entry, exact)?.walk(found)?;
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
            let Some((_, rules)) = self.rules.iter().find(|(s, _)| s == source) else {
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
