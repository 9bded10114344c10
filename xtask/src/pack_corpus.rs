//! `cargo xtask pack-corpus`: `xtask pack` against `npm pack` on real
//! packages. Each package of `xtask/pack-corpus.txt` (pinned as
//! `name@version` and the registry's `integrity`) is fetched once into a
//! cache with npm, checked against its pinned integrity, unpacked, and packed
//! again from that tree by both tools: the JSON reports must be identical
//! apart from `size`, `shasum` and `integrity` (the gzip layer), and the
//! uncompressed tars identical byte for byte. Any difference fails the run.

use crate::pack::{self, Packed};
use anyhow::{bail, ensure, Context, Result};
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Only the packages with this name (repeatable), e.g. to rerun a failure.
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
    /// The pinned list [default: xtask/pack-corpus.txt].
    #[arg(long, value_name = "FILE")]
    list: Option<PathBuf>,
    /// Where tarballs are cached and trees unpacked [default: target/pack-corpus/].
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Fetch `name@version`, print the line that pins it, and compare nothing.
    #[arg(long, value_name = "SPEC", conflicts_with = "only")]
    pin: Option<String>,
}

/// One line of the list: a package pinned by version and integrity.
#[derive(Debug)]
struct Pinned {
    spec: String,
    name: String,
    integrity: String,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let root = crate::project_root();
    let cache = args
        .cache
        .unwrap_or_else(|| root.join("target").join("pack-corpus"));
    if let Err(why) = pack::npm_reference() {
        bail!(
            "pack-corpus compares with npm {}, and {why}; install it with `npm install -g npm@{}` \
             (cargo xtask ci does that on a CI machine)",
            pack::pinned_npm(),
            pack::pinned_npm()
        );
    }
    let store = Store::new(&cache)?;
    if let Some(spec) = args.pin {
        let tarball = store.fetch(&spec)?;
        let bytes =
            std::fs::read(&tarball).with_context(|| format!("read {}", tarball.display()))?;
        println!("{spec} {}", pack::integrity_of(&bytes));
        return Ok(());
    }
    let list = args
        .list
        .unwrap_or_else(|| root.join("xtask").join("pack-corpus.txt"));
    let mut pinned = read_list(&list)?;
    if !args.only.is_empty() {
        pinned.retain(|p| args.only.contains(&p.name));
        ensure!(
            !pinned.is_empty(),
            "none of {:?} is in {}",
            args.only,
            list.display()
        );
    }
    let mut failures = Vec::new();
    for package in &pinned {
        let started = Instant::now();
        match store.compare(package) {
            Ok(summary) => println!(
                "pack-corpus: identical  {} ({summary}, {:.1}s)",
                package.spec,
                started.elapsed().as_secs_f64()
            ),
            Err(error) => {
                println!("pack-corpus: DIFFERENT  {}: {error:#}", package.spec);
                failures.push(package.spec.clone());
            }
        }
    }
    println!(
        "pack-corpus: {} packages, {} identical to npm {}",
        pinned.len(),
        pinned.len() - failures.len(),
        pack::pinned_npm()
    );
    if !failures.is_empty() {
        bail!(
            "xtask pack differs from npm pack on {}; rerun one with `cargo xtask pack-corpus --only <name>` \
             and compare the trees under {}",
            failures.join(", "),
            cache.join("trees").display()
        );
    }
    Ok(())
}

/// `name@version sha512-...` per line; `#` starts a comment.
fn read_list(path: &Path) -> Result<Vec<Pinned>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), index + 1);
        let mut words = line.split_whitespace();
        let (Some(spec), Some(integrity), None) = (words.next(), words.next(), words.next()) else {
            bail!("{}: expected `name@version sha512-...`", at());
        };
        let Some((name, version)) = spec.rsplit_once('@').filter(|(n, _)| !n.is_empty()) else {
            bail!("{}: `{spec}` is not `name@version`", at());
        };
        ensure!(
            !version.is_empty() && integrity.starts_with("sha512-"),
            "{}: expected `name@version sha512-...`, found `{line}`",
            at()
        );
        ensure!(
            !out.iter().any(|p: &Pinned| p.name == name),
            "{}: {name} is listed twice",
            at()
        );
        out.push(Pinned {
            spec: spec.to_owned(),
            name: name.to_owned(),
            integrity: integrity.to_owned(),
        });
    }
    Ok(out)
}

/// The cache: `tarballs/` as fetched, `trees/` unpacked, `out/` packed again.
struct Store {
    dir: PathBuf,
}

impl Store {
    fn new(dir: &Path) -> Result<Store> {
        for sub in ["tarballs", "trees", "out", "npm-cache"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("create {}", dir.join(sub).display()))?;
        }
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The registry tarball of `spec`, fetched by npm unless already cached.
    fn fetch(&self, spec: &str) -> Result<PathBuf> {
        let tarballs = self.dir.join("tarballs");
        let cached = tarballs.join(tarball_name(spec));
        if cached.is_file() {
            return Ok(cached);
        }
        // npm pack of a registry spec saves the published tarball as it is.
        let destination = [
            std::ffi::OsStr::new("--pack-destination"),
            tarballs.as_os_str(),
        ];
        let args: Vec<&std::ffi::OsStr> = std::iter::once(std::ffi::OsStr::new(spec))
            .chain(destination)
            .collect();
        let npm_cache = self.dir.join("npm-cache");
        let (report, _) = pack::npm_pack(&self.dir, &args, Some(&npm_cache))
            .with_context(|| format!("fetch {spec} from the registry"))?;
        let fetched = tarballs.join(&report.filename);
        ensure!(
            fetched == cached,
            "npm saved {spec} as {}, expected {}",
            fetched.display(),
            cached.display()
        );
        Ok(cached)
    }

    /// The package fetched, verified and unpacked afresh: its tree.
    fn tree(&self, package: &Pinned) -> Result<PathBuf> {
        let tarball = self.fetch(&package.spec)?;
        let bytes =
            std::fs::read(&tarball).with_context(|| format!("read {}", tarball.display()))?;
        let integrity = pack::integrity_of(&bytes);
        ensure!(
            integrity == package.integrity,
            "{} has integrity {integrity}, and the list pins {}: the registry served other \
             bytes, or the pin is wrong; delete the file to fetch it again",
            tarball.display(),
            package.integrity
        );
        let tree = self.dir.join("trees").join(slug(&package.spec));
        unpack_tree(&bytes, &tree)?;
        Ok(tree)
    }

    /// Fetches, verifies, unpacks and packs one package with both tools.
    fn compare(&self, package: &Pinned) -> Result<String> {
        let tree = self.tree(package)?;
        let slug = slug(&package.spec);
        let out = self.dir.join("out").join(&slug);
        if out.exists() {
            std::fs::remove_dir_all(&out).with_context(|| format!("remove {}", out.display()))?;
        }
        let (npm_out, ours_out) = (out.join("npm"), out.join("xtask"));
        std::fs::create_dir_all(&npm_out)
            .with_context(|| format!("create {}", npm_out.display()))?;

        let destination = [
            std::ffi::OsStr::new("--pack-destination"),
            npm_out.as_os_str(),
        ];
        let (npm_report, npm_json) =
            pack::npm_pack(&tree, &destination, Some(&self.dir.join("npm-cache")))?;
        let packed = Packed::new(&tree)?;
        let ours = packed.report();
        let ours_path = packed.write(&ours_out)?;

        let differences = pack::compare_with_npm(&ours, &npm_report).differences;
        ensure!(
            differences.is_empty(),
            "the reports differ:\n  {}",
            differences.join("\n  ")
        );
        // Every field, also any this code does not know, apart from the gzip ones.
        let content = |mut value: serde_json::Value| {
            if let Some(object) = value.as_object_mut() {
                for gzip_dependent in ["size", "shasum", "integrity"] {
                    object.remove(gzip_dependent);
                }
            }
            value
        };
        let ours_json = serde_json::to_value(&ours).context("serialize our report")?;
        ensure!(
            content(ours_json) == content(npm_json),
            "the JSON reports differ in a field outside files, sizes and modes"
        );
        let npm_path = npm_out.join(&npm_report.filename);
        let npm_tar = gunzip(&npm_path)?;
        let ours_tar = gunzip(&ours_path)?;
        if let Some(offset) = first_difference(&ours_tar, &npm_tar) {
            bail!(
                "the uncompressed tars differ from byte {offset} (block {}, {}): {} and {}",
                offset / 512,
                entry_at(&npm_tar, offset),
                ours_path.display(),
                npm_path.display()
            );
        }
        Ok(format!(
            "{} files, {} bundled, tar {} bytes",
            ours.entry_count,
            ours.bundled.len(),
            ours_tar.len()
        ))
    }
}

/// The tree of the registry package `spec` (`name@version`), fetched once
/// into the pack-corpus cache, verified against `integrity` and unpacked
/// afresh: a real package for benchmarks.
pub(crate) fn registry_tree(spec: &str, integrity: &str) -> Result<PathBuf> {
    let store = Store::new(&crate::project_root().join("target").join("pack-corpus"))?;
    let name = spec.rsplit_once('@').map(|(n, _)| n).unwrap_or(spec);
    store.tree(&Pinned {
        spec: spec.to_owned(),
        name: name.to_owned(),
        integrity: integrity.to_owned(),
    })
}

/// `name-version`, as the tarball is named without `.tgz`.
fn slug(spec: &str) -> String {
    tarball_name(spec).trim_end_matches(".tgz").to_owned()
}

/// The file name npm saves a registry tarball under.
fn tarball_name(spec: &str) -> String {
    let raw = format!(
        "{}.tgz",
        spec.replacen('@', "-", spec.matches('@').count().min(2))
    );
    // `@scope/name@1.0.0` -> `scope-name-1.0.0.tgz`, `name@1.0.0` -> `name-1.0.0.tgz`.
    raw.strip_prefix('-').unwrap_or(&raw).replace('/', "-")
}

/// Unpacks a registry tarball into `tree` (emptied first) without its top
/// directory, as npm unpacks a package: files and hard links with their
/// modes, nothing outside `tree`.
fn unpack_tree(tgz: &[u8], tree: &Path) -> Result<()> {
    if tree.exists() {
        std::fs::remove_dir_all(tree).with_context(|| format!("remove {}", tree.display()))?;
    }
    std::fs::create_dir_all(tree).with_context(|| format!("create {}", tree.display()))?;
    let inside = |path: &Path| -> Result<Option<PathBuf>> {
        let mut parts = path
            .components()
            .filter(|c| !matches!(c, Component::CurDir));
        parts.next();
        let mut out = tree.to_path_buf();
        let mut any = false;
        for part in parts {
            match part {
                Component::Normal(name) => {
                    out.push(name);
                    any = true;
                }
                _ => bail!("archive entry {} leaves the package", path.display()),
            }
        }
        Ok(any.then_some(out))
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for entry in archive.entries().context("read the tarball")? {
        let mut entry = entry.context("read a tarball entry")?;
        let path = entry.path().context("entry path")?.into_owned();
        let Some(target) = inside(&path)? else {
            continue;
        };
        let mode = entry.header().mode().context("entry mode")? & 0o7777;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&target)
                .with_context(|| format!("create {}", target.display()))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("read {}", path.display()))?;
                std::fs::write(&target, &bytes)
                    .with_context(|| format!("write {}", target.display()))?;
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .with_context(|| format!("chmod {}", target.display()))?;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .context("link target")?
                    .unwrap_or_default();
                let Some(existing) = inside(&link)? else {
                    bail!("hard link {} has no target", path.display());
                };
                std::fs::hard_link(&existing, &target)
                    .with_context(|| format!("link {}", target.display()))?;
            }
            // npm publishes nothing else; whatever else an old tarball holds,
            // npm would not unpack it either.
            _ => {}
        }
    }
    Ok(())
}

fn gunzip(path: &Path) -> Result<Vec<u8>> {
    let tgz = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(tgz.as_slice())
        .read_to_end(&mut tar)
        .with_context(|| format!("gunzip {}", path.display()))?;
    Ok(tar)
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(offset) => Some(offset),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

/// The name in the ustar header at or before `offset` in `tar` (to say
/// which entry a difference falls in).
fn entry_at(tar: &[u8], offset: usize) -> String {
    let mut at = 0;
    let mut last = "the start".to_owned();
    while at + 512 <= tar.len() && at <= offset {
        let block = &tar[at..at + 512];
        if block.iter().all(|&b| b == 0) {
            return format!("{last}, or the end of the archive");
        }
        let text = |range: std::ops::Range<usize>| {
            let field = &block[range];
            let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
            String::from_utf8_lossy(&field[..end]).into_owned()
        };
        let size = u64::from_str_radix(text(124..136).trim(), 8).unwrap_or(0) as usize;
        let prefix = text(345..500);
        last = match prefix.is_empty() {
            true => format!("entry {}", text(0..100)),
            false => format!("entry {prefix}/{}", text(0..100)),
        };
        at += 512 + size.div_ceil(512) * 512;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_its_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.txt");
        let read = |text: &str| {
            std::fs::write(&list, text).unwrap();
            read_list(&list).map_err(|e| e.to_string())
        };
        let ok = read("# comment\n\nis-odd@3.0.1 sha512-x  # why\n@s/p@1.0.0 sha512-y\n").unwrap();
        let names: Vec<&str> = ok.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["is-odd", "@s/p"]);
        assert!(read("is-odd sha512-x\n")
            .unwrap_err()
            .ends_with(":1: `is-odd` is not `name@version`"));
        assert!(read("a@1 sha1-x\n")
            .unwrap_err()
            .contains(":1: expected `name@version sha512-...`"));
        assert!(read("a@1 sha512-x\na@2 sha512-y\n")
            .unwrap_err()
            .ends_with(":2: a is listed twice"));
    }

    #[test]
    fn tarball_names_follow_npm() {
        assert_eq!(tarball_name("is-odd@3.0.1"), "is-odd-3.0.1.tgz");
        assert_eq!(tarball_name("@types/x@2.0.1"), "types-x-2.0.1.tgz");
    }
}
