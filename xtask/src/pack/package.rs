//! The package being packed and the bundled packages inside it: the
//! `package.json` fields that decide the archive, read and normalized as
//! npm 11 reads them (`@npmcli/package-json`'s `normalize`, which both the
//! file walk and the archive writer see):
//!
//! - `files`, `main` and `browser` as written (`"main": ""` adds nothing;
//!   `"./lib/x.js"` is a rule npm never matches, so it adds nothing either);
//! - `bin` as an object: a string becomes `{ <name>: <path> }`, keys are
//!   basenames, paths are confined to the package (`secureAndUnixifyPath`),
//!   and without `bin`, `directories.bin` lists every file and folder under
//!   that directory (glob `**`, no dot names);
//! - `bundleDependencies` (or the misspelt `bundledDependencies`): `true` is
//!   every dependency, an object its keys, `false` none;
//! - `man` is not read at all: npm 11 neither adds man pages to the archive
//!   nor marks them, so neither does this.
//!
//! A root whose `workspaces` exist (a directory with a `package.json`
//! matches one of the patterns) is a workspace project, which npm walks
//! differently (see `select`).

use super::node_path;
use anyhow::{bail, Context, Result};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A package directory and its normalized manifest.
pub(crate) struct Package {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) manifest: Manifest,
    /// The root of a workspace project whose workspaces exist.
    pub(crate) has_workspaces: bool,
}

/// The fields of one `package.json` that packing reads.
#[derive(Default)]
pub(crate) struct Manifest {
    /// The `files` list, when there is one (without it npm takes everything
    /// not ignored).
    pub(crate) files: Option<Vec<String>>,
    /// `main`, as JavaScript would turn it into a string, when truthy.
    pub(crate) main: Option<String>,
    /// `browser`, likewise (an object becomes `[object Object]`, as in npm).
    pub(crate) browser: Option<String>,
    /// `bin` after normalization: (command, path).
    pub(crate) bin: Vec<(String, String)>,
    pub(crate) bundle_dependencies: Vec<String>,
    pub(crate) dependencies: Vec<String>,
    pub(crate) optional_dependencies: Vec<String>,
    pub(crate) dev_dependencies: Vec<String>,
}

impl Package {
    /// The package to pack: its manifest must parse and name the package.
    pub(crate) fn load(dir: &Path) -> Result<Package> {
        let manifest_path = dir.join("package.json");
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("read {}", manifest_path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("parse {}", manifest_path.display()))?;
        let field = |name: &str| -> Result<String> {
            match json.get(name) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => bail!(
                    "{}: `{name}` must be a non-empty string (npm: \"Invalid package, must have name and version\")",
                    manifest_path.display()
                ),
            }
        };
        let (name, version) = (field("name")?, field("version")?);
        let manifest = Manifest::parse(dir, &text, &json, &manifest_path)?;
        let has_workspaces = workspaces_exist(dir, &json, &manifest_path)?;
        Ok(Package {
            dir: dir.to_path_buf(),
            name,
            version,
            manifest,
            has_workspaces,
        })
    }

    /// npm's `<name>@<version>`.
    pub(crate) fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The root's `bin` targets, which pacote makes executable (see `archive`).
    pub(crate) fn bin_targets(&self) -> Vec<String> {
        self.manifest
            .bin
            .iter()
            .map(|(_, path)| path.clone())
            .collect()
    }

    /// The `filename` npm reports: the first `@` dropped, the first `/` a `-`.
    pub(crate) fn filename(&self) -> String {
        let name = self.name.replacen('@', "", 1).replacen('/', "-", 1);
        format!("{name}-{}.tgz", self.version)
    }

    /// The name npm writes the archive under: a leading `@` dropped, every
    /// `/` and `\` a `-` (the same as [`Package::filename`] for valid names).
    pub(crate) fn tarball_file_name(&self) -> String {
        let raw = format!("{}-{}.tgz", self.name, self.version);
        raw.strip_prefix('@')
            .unwrap_or(&raw)
            .replace(['/', '\\'], "-")
    }
}

impl Manifest {
    /// The manifest of a bundled package as arborist loads it: one that is
    /// missing or does not parse is an empty manifest, as npm treats it.
    pub(crate) fn read_bundled(dir: &Path) -> Result<Manifest> {
        let path = dir.join("package.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(Manifest::default());
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(json) => Manifest::parse(dir, &text, &json, &path),
            Err(_) => Ok(Manifest::default()),
        }
    }

    fn parse(dir: &Path, text: &str, json: &Value, path: &Path) -> Result<Manifest> {
        let at = || path.display().to_string();
        let files = match json.get("files") {
            None => None,
            Some(value) if !truthy(value) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_owned).with_context(|| {
                            format!(
                                "{}: every `files` entry must be a string, found {item} \
                                 (npm fails with \"file.startsWith is not a function\")",
                                at()
                            )
                        })
                    })
                    .collect::<Result<_>>()?,
            ),
            Some(Value::String(s)) => bail!(
                "{}: `files` is the string {s:?}, not an array: npm would take each of its \
                 characters as a pattern and silently pack little more than package.json; \
                 write `\"files\": [{s:?}]`",
                at()
            ),
            Some(other) => bail!(
                "{}: `files` must be an array of strings, found {other} \
                 (npm fails with \"files is not iterable\")",
                at()
            ),
        };
        let name = json.get("name").and_then(Value::as_str).unwrap_or_default();
        let bin = normalize_bin(dir, name, text, json)?;
        Ok(Manifest {
            files,
            main: json.get("main").filter(|v| truthy(v)).map(js_string),
            browser: json.get("browser").filter(|v| truthy(v)).map(js_string),
            bin,
            bundle_dependencies: bundle_dependencies(json),
            dependencies: object_keys(json.get("dependencies")),
            optional_dependencies: object_keys(json.get("optionalDependencies")),
            dev_dependencies: object_keys(json.get("devDependencies")),
        })
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JavaScript's `String(value)` (what a template string makes of it).
fn js_string(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                other => js_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// `Object.keys` of a field that should be an object (anything else: none).
fn object_keys(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// npm's `bundleDependencies` after the `bundledDependencies` and
/// `bundleDependencies` steps of normalization.
fn bundle_dependencies(json: &Value) -> Vec<String> {
    let declared = match (
        json.get("bundleDependencies"),
        json.get("bundledDependencies"),
    ) {
        (Some(value), _) => value,
        (None, Some(value)) => value,
        (None, None) => return Vec::new(),
    };
    match declared {
        Value::Bool(true) => object_keys(json.get("dependencies")),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Value::Object(map) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A JSON object's entries in JavaScript order: integer-like keys first,
/// ascending, then the others as written; a repeated key keeps its first
/// place and its last value (`JSON.parse`).
struct JsObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for JsObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = JsObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsObject, A::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(entry) => entry.1 = value,
                        None => entries.push((key, value)),
                    }
                }
                js_key_order(&mut entries);
                Ok(JsObject(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// JavaScript's own-key order: array-index keys first, ascending, then the
/// others in insertion order.
fn js_key_order(entries: &mut [(String, Value)]) {
    let index = |key: &str| {
        key.parse::<u32>()
            .ok()
            .filter(|n| *n != u32::MAX && n.to_string() == key)
    };
    entries.sort_by_key(|(key, _)| match index(key) {
        Some(n) => (0, n),
        None => (1, 0),
    });
}

/// Reads `bin` again from the manifest text, in JavaScript key order.
fn bin_in_order(text: &str) -> Result<Option<JsObject>> {
    #[derive(Deserialize)]
    struct BinField {
        bin: Option<Value>,
    }
    #[derive(Deserialize)]
    struct BinObject {
        bin: JsObject,
    }
    let field: BinField = serde_json::from_str(text).context("read `bin`")?;
    match field.bin {
        Some(Value::Object(_)) => {
            let object: BinObject = serde_json::from_str(text).context("read `bin`")?;
            Ok(Some(object.bin))
        }
        _ => Ok(None),
    }
}

/// `bin` as `@npmcli/package-json` normalizes it (its `bin` and `binDir` steps).
fn normalize_bin(
    dir: &Path,
    name: &str,
    text: &str,
    json: &Value,
) -> Result<Vec<(String, String)>> {
    let bin = json.get("bin");
    let bin_dir = json.pointer("/directories/bin");
    if bin_dir.is_some_and(truthy) && !bin.is_some_and(truthy) {
        return directory_bins(dir, bin_dir.map(js_string).unwrap_or_default());
    }
    let mut entries: Vec<(String, Value)> = match bin {
        Some(Value::String(path)) if !path.is_empty() && !name.is_empty() => {
            vec![(name.to_owned(), Value::String(path.clone()))]
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut entries: Vec<(String, Value)> = Vec::new();
            for item in items {
                let key = match item {
                    Value::String(s) => node_path::basename(s).to_owned(),
                    other => js_string(other),
                };
                match entries.iter_mut().find(|(k, _)| *k == key) {
                    Some(entry) => entry.1 = item.clone(),
                    None => entries.push((key, item.clone())),
                }
            }
            js_key_order(&mut entries);
            entries
        }
        Some(Value::Object(_)) => bin_in_order(text)?.map(|o| o.0).unwrap_or_default(),
        _ => return Ok(Vec::new()),
    };
    // The keys as a for-in loop sees them: deleted ones are skipped, added
    // ones are not visited.
    let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    for key in keys {
        let Some(position) = entries.iter().position(|(k, _)| *k == key) else {
            continue;
        };
        let Value::String(target) = entries[position].1.clone() else {
            entries.remove(position);
            continue;
        };
        let base = node_path::basename(&node_path::secure_and_unixify(&key)).to_owned();
        let target = node_path::secure_and_unixify(&target);
        if base.is_empty() || target.is_empty() {
            entries.remove(position);
            continue;
        }
        if base != key {
            entries.remove(position);
        }
        match entries.iter_mut().find(|(k, _)| *k == base) {
            Some(entry) => entry.1 = Value::String(target),
            None => entries.push((base, Value::String(target))),
        }
    }
    Ok(entries
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
        .collect())
}

/// `directories.bin` expanded: every path under it that glob `**` yields
/// (files, folders and symlinks; no name starting with `.`; symlinked
/// folders not entered), as `<dir>/<path>`, keyed by basename. Sorted,
/// where glob's order would follow the file system's.
fn directory_bins(dir: &Path, bin_dir: String) -> Result<Vec<(String, String)>> {
    let bin_path = node_path::secure_and_unixify(&bin_dir);
    let mut found = Vec::new();
    let base = dir.join(if bin_path.is_empty() { "." } else { &bin_path });
    collect_glob_all(&base, "", &mut found)?;
    found.sort();
    let mut bins: Vec<(String, String)> = Vec::new();
    for path in found {
        let command = node_path::basename(&path).to_owned();
        let target = format!("{bin_path}/{}", node_path::secure_and_unixify(&path));
        match bins.iter_mut().find(|(k, _)| *k == command) {
            Some(entry) => entry.1 = target,
            None => bins.push((command, target)),
        }
    }
    Ok(bins)
}

fn collect_glob_all(dir: &Path, rel: &str, found: &mut Vec<String>) -> Result<()> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in listing {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = match rel.is_empty() {
            true => name.clone(),
            false => format!("{rel}/{name}"),
        };
        let kind = entry.file_type().with_context(|| format!("stat {path}"))?;
        if kind.is_dir() {
            collect_glob_all(&entry.path(), &path, found)?;
        }
        found.push(path);
    }
    Ok(())
}

/// Whether a directory with a `package.json` matches `workspaces` (as
/// arborist's map-workspaces finds them: the patterns of the array or of
/// `workspaces.packages`, no `node_modules`, no dot directories, minus the
/// `!` patterns).
fn workspaces_exist(dir: &Path, json: &Value, path: &Path) -> Result<bool> {
    let patterns: Vec<&str> = match json.get("workspaces") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::Object(map)) => match map.get("packages") {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let compile = |pattern: &str| {
        let pattern = pattern.trim_start_matches('!').trim_start_matches("./");
        super::glob::Pattern::new(pattern.trim_end_matches('/'), super::glob::PATH_GLOBS)
            .with_context(|| format!("{}: `workspaces`", path.display()))
    };
    let (negated, positive): (Vec<&str>, Vec<&str>) = patterns
        .into_iter()
        .partition(|p| p.chars().take_while(|&c| c == '!').count() % 2 == 1);
    let negated = negated
        .into_iter()
        .map(compile)
        .collect::<Result<Vec<_>>>()?;
    for pattern in positive {
        if find_workspace(dir, "", &compile(pattern)?, &negated)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

fn find_workspace(
    dir: &Path,
    rel: &str,
    glob: &super::glob::Pattern,
    negated: &[super::glob::Pattern],
) -> Result<Option<String>> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    for entry in listing {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name == "node_modules" || name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let path = match rel.is_empty() {
            true => name,
            false => format!("{rel}/{name}"),
        };
        let excluded = negated.iter().any(|n| n.matches(&path, false));
        if glob.matches(&path, false) && !excluded && entry.path().join("package.json").is_file() {
            return Ok(Some(path));
        }
        if glob.matches(&path, true) {
            if let Some(found) = find_workspace(&entry.path(), &path, glob, negated)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bins(manifest: &str) -> Vec<(String, String)> {
        let json: Value = serde_json::from_str(manifest).unwrap();
        let name = json["name"].as_str().unwrap_or_default();
        normalize_bin(Path::new("/nonexistent"), name, manifest, &json).unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    // Expected values: what @npmcli/package-json 7 `normalize` leaves in `bin`.
    #[test]
    fn bin_strings_objects_and_arrays_normalize_like_npm() {
        assert_eq!(
            bins(r#"{"name":"@s/tool","bin":"./cli.js"}"#),
            pairs(&[("tool", "cli.js")])
        );
        assert_eq!(
            bins(r#"{"name":"x","bin":{"b":"./b.js","a":"../a.js","2":"two","z":1,"e":""}}"#),
            pairs(&[("2", "two"), ("b", "b.js"), ("a", "a.js")])
        );
        assert_eq!(
            bins(r#"{"name":"x","bin":{"@s/x":"one","x":"two"}}"#),
            pairs(&[("x", "one")])
        );
        assert_eq!(
            bins(r#"{"name":"x","bin":["bin/a.js","lib/a.js"]}"#),
            pairs(&[("a.js", "lib/a.js")])
        );
        assert!(bins(r#"{"bin":"cli.js"}"#).is_empty());
    }

    #[test]
    fn js_strings_of_main_and_browser() {
        assert_eq!(js_string(&serde_json::json!({"a": 1})), "[object Object]");
        assert_eq!(js_string(&serde_json::json!(["a", null, 2])), "a,,2");
        assert_eq!(js_string(&serde_json::json!(1.0)), "1");
        assert!(!truthy(&serde_json::json!("")));
        assert!(truthy(&serde_json::json!([])));
    }
}
