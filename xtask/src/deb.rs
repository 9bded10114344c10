//! The Debian package `mosaic-install_<version>-1_<arch>.deb`, built by
//! `dist` with the real `dpkg-deb`: both binaries (stripped, as dh_strip
//! does) in `/usr/bin`, one gzipped man page per command and subcommand in
//! `/usr/share/man/man1`, bash, zsh and fish completions where those shells
//! look for packaged ones, and `copyright` (machine-readable, Expat) and
//! `changelog.Debian.gz` in `/usr/share/doc/mosaic-install`.
//!
//! `Depends:` is what `dpkg-shlibdeps` finds the binaries link against,
//! plus `tmux` and `systemd`, which every install and every fleet verb
//! drives. No command of the package runs npm: only the agents' default
//! launch command (`mosaic yolo …`, Mosaic's own CLI, an npm package) needs
//! it, so npm is `Suggests:`.
//!
//! Reproducible: every mtime is `SOURCE_DATE_EPOCH` (the environment's, else
//! the last commit's time), owners are root, modes are set explicitly, the
//! gzip members carry no name or time, and `dpkg-deb` gets the same epoch;
//! the same inputs give the same bytes.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::dist::{Build, CargoMetadata};

pub(crate) const PACKAGE: &str = "mosaic-install";
/// The Debian revision of every build: the package is built from the
/// upstream tree as it is, never patched.
const REVISION: &str = "1";
const MAINTAINER: &str = "The Mosaic fleet installer authors <fleet-installer@example.org>";
const DOC_DIR: &str = "usr/share/doc/mosaic-install";

/// `cargo xtask deb`: the package alone, as `dist` builds it.
pub(crate) fn run(args: Build) -> Result<()> {
    let root = crate::project_root();
    let (out_dir, sh, metadata) = args.start()?;
    let (installer, fleet) = crate::dist::binaries(&sh, &metadata, args.binary.clone())?;
    let share = tempfile::tempdir().context("create a directory for completions")?;
    let share_files = crate::completions::generate(share.path())?;
    let inputs = Inputs {
        metadata: &metadata,
        binaries: [&installer, &fleet],
        share: share.path(),
        share_files: &share_files,
        license: &root.join("LICENSE"),
    };
    println!("{}", build(&sh, &inputs, &out_dir)?.display());
    Ok(())
}

/// What goes into the package.
pub(crate) struct Inputs<'a> {
    /// Version (`0.1.0`) and repository (the Homepage).
    pub(crate) metadata: &'a CargoMetadata,
    /// The `mosaic-install` and `mosaic-fleet` binaries.
    pub(crate) binaries: [&'a Path; 2],
    /// The `share/` tree `completions::generate` wrote, and its files.
    pub(crate) share: &'a Path,
    pub(crate) share_files: &'a [PathBuf],
    pub(crate) license: &'a Path,
}

/// Build the package into `out_dir`; returns its path.
pub(crate) fn build(sh: &Shell, inputs: &Inputs<'_>, out_dir: &Path) -> Result<PathBuf> {
    for tool in ["dpkg-deb", "dpkg-shlibdeps", "strip", "md5sum"] {
        if cmd!(sh, "sh -c 'command -v \"$1\"' sh {tool}")
            .quiet()
            .ignore_stdout()
            .run()
            .is_err()
        {
            bail!("`{tool}` is not installed: building the .deb needs dpkg-dev and binutils (apt-get install dpkg-dev), or pass --no-deb");
        }
    }
    let epoch = source_date_epoch(sh)?;
    let arch = cmd!(sh, "dpkg --print-architecture")
        .quiet()
        .read()
        .context("run dpkg --print-architecture")?;
    let upstream = &inputs.metadata.installer_version;
    let homepage = &inputs.metadata.repository;
    let version = format!("{upstream}-{REVISION}");
    let staging = tempfile::tempdir().context("create a staging directory")?;
    let root = staging.path().join("root");

    for binary in inputs.binaries {
        let name = binary.file_name().context("a binary has a file name")?;
        let dest = root.join("usr/bin").join(name);
        mkdir(dest.parent().expect("has parent"))?;
        cmd!(
            sh,
            "strip --remove-section=.comment --remove-section=.note -o {dest} {binary}"
        )
        .quiet()
        .run()
        .with_context(|| format!("strip {}", binary.display()))?;
        set_mode(&dest, 0o755)?;
    }
    for rel in inputs.share_files {
        let Some(target) = package_path(rel) else {
            bail!("{} has no place in the Debian package", rel.display());
        };
        let bytes = std::fs::read(inputs.share.join(rel))
            .with_context(|| format!("read {}", rel.display()))?;
        let bytes = if target.extension().is_some_and(|e| e == "gz") {
            gzip(&bytes)?
        } else {
            bytes
        };
        write(&root.join(target), &bytes, 0o644)?;
    }
    let doc = root.join(DOC_DIR);
    let license = std::fs::read_to_string(inputs.license)
        .with_context(|| format!("read {}", inputs.license.display()))?;
    write(
        &doc.join("copyright"),
        copyright(&license, homepage)?.as_bytes(),
        0o644,
    )?;
    let at = format!("@{epoch}");
    let date = cmd!(sh, "date -u -R -d {at}")
        .quiet()
        .read()
        .context("format the changelog date with date -R")?;
    write(
        &doc.join("changelog.Debian.gz"),
        &gzip(changelog(&version, upstream, &date).as_bytes())?,
        0o644,
    )?;
    let overrides = root.join("usr/share/lintian/overrides").join(PACKAGE);
    write(&overrides, LINTIAN_OVERRIDES.as_bytes(), 0o644)?;

    let depends = shared_library_depends(sh, staging.path(), &root, inputs.binaries)?;
    let control_dir = root.join("DEBIAN");
    mkdir(&control_dir)?;
    let files = files_under(&root)?;
    write(
        &control_dir.join("md5sums"),
        md5sums(sh, &root, &files)?.as_bytes(),
        0o644,
    )?;
    let control = format!(
        "Package: {PACKAGE}\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: {MAINTAINER}\n\
         Installed-Size: {size}\n\
         Depends: {depends}, tmux, systemd\n\
         Suggests: npm\n\
         Section: admin\n\
         Priority: optional\n\
         Homepage: {homepage}\n\
         Description: installer and operator CLI for a durable tmux agent fleet\n \
         mosaic-install installs and upgrades Mosaic's fleet of coding agents on\n \
         one host: systemd user units that keep each agent's tmux session on a\n \
         named server alive, the tmux messaging and fleet scripts, the roster and\n \
         per-agent settings. It never touches the operator's default tmux server\n \
         and never overwrites a file the operator changed.\n \
         .\n \
         mosaic-fleet operates the running fleet (start, stop, status, verify,\n \
         send, tail), reaching agents on other hosts over ssh.\n",
        size = installed_size(&root)?,
    );
    write(&control_dir.join("control"), control.as_bytes(), 0o644)?;
    normalize(&root, epoch)?;

    std::fs::create_dir_all(out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let deb = out_dir.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    cmd!(sh, "dpkg-deb --root-owner-group -Zxz --build {root} {deb}")
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .quiet()
        .ignore_stdout()
        .run()
        .context("dpkg-deb --build")?;
    Ok(deb)
}

/// What lintian still reports, and why each is right for this package.
/// Shipped as the package's lintian overrides, so the comment travels with
/// the tag.
const LINTIAN_OVERRIDES: &str = "\
# The package is built from the upstream tree by `cargo xtask dist`, not
# uploaded to Debian: there is no ITP bug for the first changelog entry to close.
mosaic-install: initial-upload-closes-no-bugs
# The roster parser (serde_yaml_ng) uses unsafe-libyaml, a Rust translation
# of libyaml compiled into each binary as Rust links every crate; lintian
# recognises libyaml's strings. No C libyaml is copied in or linked, so there
# is no shared library to use instead: a libyaml fix reaches us as a new
# unsafe-libyaml release and a rebuild.
mosaic-install: embedded-library libyaml [usr/bin/mosaic-fleet]
mosaic-install: embedded-library libyaml [usr/bin/mosaic-install]
";

/// `SOURCE_DATE_EPOCH` from the environment, else the last commit's time.
fn source_date_epoch(sh: &Shell) -> Result<u64> {
    let text = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value,
        Err(_) => cmd!(sh, "git log -1 --format=%ct")
            .quiet()
            .read()
            .context("no SOURCE_DATE_EPOCH and no git commit to take the build time from: set SOURCE_DATE_EPOCH (seconds since 1970)")?,
    };
    text.trim()
        .parse()
        .with_context(|| format!("SOURCE_DATE_EPOCH `{text}` is not a number of seconds"))
}

/// Where a file of the `completions` share tree goes in the package.
fn package_path(rel: &Path) -> Option<PathBuf> {
    let text = rel.to_str()?;
    let (dir, name) = text.rsplit_once('/')?;
    let path = match dir {
        "share/man/man1" => format!("usr/share/man/man1/{name}.gz"),
        "share/bash-completion/completions" => format!("usr/{dir}/{name}"),
        // Debian's zsh reads packaged functions from vendor-completions.
        "share/zsh/site-functions" => format!("usr/share/zsh/vendor-completions/{name}"),
        "share/fish/vendor_completions.d" => format!("usr/{dir}/{name}"),
        _ => return None,
    };
    Some(path.into())
}

/// gzip -9n: best compression, no file name, no time stamp.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).context("gzip")?;
    gz.finish().context("gzip")
}

/// `debian/copyright` in the machine-readable format, from LICENSE.
fn copyright(license: &str, homepage: &str) -> Result<String> {
    let holder = license
        .lines()
        .find_map(|line| line.trim().strip_prefix("Copyright (c) "))
        .context("LICENSE has no `Copyright (c) <year> <holder>` line")?;
    let mut body: Vec<String> = license
        .lines()
        .skip_while(|line| !line.starts_with("Permission is hereby granted"))
        .map(|line| match line.trim_end() {
            "" => " .".to_owned(),
            text => format!(" {text}"),
        })
        .collect();
    while body.last().is_some_and(|line| line == " .") {
        body.pop();
    }
    if body.is_empty() {
        bail!("LICENSE is not the MIT (Expat) text this package declares");
    }
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: {PACKAGE}\n\
         Source: {homepage}\n\
         \n\
         Files: *\n\
         Copyright: {holder}\n\
         License: Expat\n{}\n",
        body.join("\n")
    ))
}

fn changelog(version: &str, upstream: &str, date: &str) -> String {
    format!(
        "{PACKAGE} ({version}) unstable; urgency=medium\n\n  \
         * mosaic-install {upstream}, packaged by cargo xtask dist.\n\n \
         -- {MAINTAINER}  {date}\n"
    )
}

/// `shlibs:Depends` of the binaries, as `dpkg-shlibdeps` computes it (it
/// wants a source tree around it: a minimal `debian/control` in `scratch`).
fn shared_library_depends(
    sh: &Shell,
    scratch: &Path,
    root: &Path,
    binaries: [&Path; 2],
) -> Result<String> {
    let source = scratch.join("source");
    let control = source.join("debian/control");
    mkdir(control.parent().expect("has parent"))?;
    std::fs::write(
        &control,
        format!(
            "Source: {PACKAGE}\nMaintainer: {MAINTAINER}\n\nPackage: {PACKAGE}\nArchitecture: any\n"
        ),
    )
    .context("write the scratch debian/control")?;
    let staged: Vec<String> = binaries
        .iter()
        .map(|b| {
            let name = b.file_name().expect("a binary has a file name");
            format!("-e{}", root.join("usr/bin").join(name).display())
        })
        .collect();
    let _dir = sh.push_dir(&source);
    let out = cmd!(sh, "dpkg-shlibdeps -O {staged...}")
        .quiet()
        .ignore_stderr()
        .read()
        .context("dpkg-shlibdeps")?;
    out.lines()
        .find_map(|line| line.strip_prefix("shlibs:Depends="))
        .map(str::to_owned)
        .context("dpkg-shlibdeps printed no shlibs:Depends")
}

/// Every regular file under `root`, relative and sorted (`DEBIAN/` aside).
fn files_under(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if path != root.join("DEBIAN") {
                    stack.push(path);
                }
            } else {
                out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn md5sums(sh: &Shell, root: &Path, files: &[PathBuf]) -> Result<String> {
    let _dir = sh.push_dir(root);
    let sums = cmd!(sh, "md5sum -- {files...}")
        .quiet()
        .read()
        .context("md5sum")?;
    Ok(sums + "\n")
}

/// Installed-Size as dpkg-gencontrol computes it: KiB per file, rounded
/// up, and one per directory.
fn installed_size(root: &Path) -> Result<u64> {
    let mut kib = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if entry.path() == root.join("DEBIAN") {
                continue;
            }
            if meta.is_dir() {
                kib += 1;
                stack.push(entry.path());
            } else {
                kib += meta.len().div_ceil(1024);
            }
        }
    }
    Ok(kib)
}

/// Directories 0755 and every mtime the epoch, whatever the umask and
/// clock of the build.
fn normalize(root: &Path, epoch: u64) -> Result<()> {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
    let mut stack = vec![root.to_path_buf()];
    let mut dirs = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(time))
                    .with_context(|| format!("set the mtime of {}", path.display()))?;
            }
        }
        dirs.push(dir);
    }
    for dir in dirs {
        set_mode(&dir, 0o755)?;
        File::open(&dir)
            .and_then(|f| f.set_modified(time))
            .with_context(|| format!("set the mtime of {}", dir.display()))?;
    }
    Ok(())
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    mkdir(path.parent().expect("has parent"))?;
    std::fs::write(path, bytes).with_context(|| format!("write {}", path.display()))?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_tree_maps_to_debian_paths() {
        let map = |p: &str| package_path(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(
            map("share/man/man1/mosaic-fleet.1").as_deref(),
            Some("usr/share/man/man1/mosaic-fleet.1.gz")
        );
        assert_eq!(
            map("share/zsh/site-functions/_mosaic-install").as_deref(),
            Some("usr/share/zsh/vendor-completions/_mosaic-install")
        );
        assert_eq!(
            map("share/bash-completion/completions/mosaic-fleet").as_deref(),
            Some("usr/share/bash-completion/completions/mosaic-fleet")
        );
        assert_eq!(map("share/elvish/x"), None);
    }

    #[test]
    fn copyright_carries_the_license() {
        let license = std::fs::read_to_string(crate::project_root().join("LICENSE")).unwrap();
        let text = copyright(&license, "https://example.invalid/x").unwrap();
        assert!(text.contains("License: Expat\n Permission is hereby granted"));
        assert!(text.contains("\n .\n THE SOFTWARE IS PROVIDED"), "{text}");
        assert!(text.ends_with("SOFTWARE.\n"), "{text}");
    }
}
