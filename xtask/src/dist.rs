//! `cargo xtask dist`: the release artifacts in `dist/` — the npm-style
//! package of `templates/` (as `cargo xtask pack` builds it), the release
//! binary archive `mosaic-install-<version>-<target>.tar.gz` (the
//! `mosaic-install` and `mosaic-fleet` binaries, README,
//! LICENSE and the `share/` tree of shell completions and man pages from
//! `completions`, under one top directory; fixed mtimes, owner 0, so it is
//! reproducible for a given binary), the Debian package
//! `mosaic-install_<version>-1_<arch>.deb` ([`crate::deb`]), and
//! `SHA256SUMS` in `sha256sum -c` format.

use crate::pack::{self, Packed};
use anyhow::{bail, Context, Result};
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use xshell::{cmd, Shell};

/// Where artifacts go and which binaries they carry (`dist` and `deb`).
#[derive(clap::Args)]
pub(crate) struct Build {
    /// Where the artifacts go [default: dist/].
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Package this already-built `mosaic-install` (and the `mosaic-fleet`
    /// beside it) instead of running `cargo build --release -p mosaic-install`.
    #[arg(long, value_name = "FILE")]
    pub(crate) binary: Option<PathBuf>,
}

impl Build {
    /// The output directory, a shell in the workspace root and its metadata.
    pub(crate) fn start(&self) -> Result<(PathBuf, Shell, CargoMetadata)> {
        let root = crate::project_root();
        let out_dir = self.out_dir.clone().unwrap_or_else(|| root.join("dist"));
        let sh = Shell::new().context("create a shell")?;
        sh.change_dir(&root);
        let metadata = CargoMetadata::read(&sh)?;
        Ok((out_dir, sh, metadata))
    }
}

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    build: Build,
    /// Skip the Debian package (for machines without dpkg-dev).
    #[arg(long)]
    no_deb: bool,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let root = crate::project_root();
    let (out_dir, sh, metadata) = args.build.start()?;

    let packed = Packed::new(&root.join("templates"))?;
    let package = packed.write(&out_dir)?;

    let (binary, fleet) = binaries(&sh, &metadata, args.build.binary)?;
    let target = host_triple(&sh)?;
    let name = format!("mosaic-install-{}-{target}", metadata.installer_version);
    let release = out_dir.join(format!("{name}.tar.gz"));
    let share = tempfile::tempdir().context("create a directory for completions")?;
    let generated: Vec<(PathBuf, String)> = crate::completions::generate(share.path())?
        .into_iter()
        .map(|rel| (share.path().join(&rel), rel.display().to_string()))
        .collect();
    let (readme, license) = (root.join("README.md"), root.join("LICENSE"));
    let mut files = vec![
        (binary.as_path(), "mosaic-install", 0o755),
        (fleet.as_path(), "mosaic-fleet", 0o755),
        (readme.as_path(), "README.md", 0o644),
        (license.as_path(), "LICENSE", 0o644),
    ];
    files.extend(
        generated
            .iter()
            .map(|(path, rel)| (path.as_path(), rel.as_str(), 0o644)),
    );
    write_release_archive(&release, &name, &files)?;
    let mut artifacts = vec![package, release];
    if !args.no_deb {
        let share_files: Vec<PathBuf> = generated
            .iter()
            .map(|(_, rel)| PathBuf::from(rel))
            .collect();
        let inputs = crate::deb::Inputs {
            metadata: &metadata,
            binaries: [binary.as_path(), fleet.as_path()],
            share: share.path(),
            share_files: &share_files,
            license: &license,
        };
        artifacts.push(crate::deb::build(&sh, &inputs, &out_dir).context("build the .deb")?);
    }

    let listed: Vec<&Path> = artifacts.iter().map(PathBuf::as_path).collect();
    let sums = write_sha256sums(&out_dir, &listed)?;
    for artifact in artifacts.iter().chain([&sums]) {
        println!("{}", artifact.display());
    }
    Ok(())
}

/// `mosaic-install` and the `mosaic-fleet` beside it: `given`, else the
/// release build (built now).
pub(crate) fn binaries(
    sh: &Shell,
    metadata: &CargoMetadata,
    given: Option<PathBuf>,
) -> Result<(PathBuf, PathBuf)> {
    let binary = match given {
        Some(binary) => binary,
        None => {
            cmd!(sh, "cargo build --release -p mosaic-install")
                .run()
                .context("build the release binary")?;
            metadata
                .target_directory
                .join("release")
                .join("mosaic-install")
        }
    };
    let fleet = binary.with_file_name("mosaic-fleet");
    if !fleet.is_file() {
        bail!(
            "{} is missing: mosaic-fleet ships beside mosaic-install (build both with cargo build --release -p mosaic-install)",
            fleet.display()
        );
    }
    Ok((binary, fleet))
}

/// What `cargo metadata` says about the workspace.
pub(crate) struct CargoMetadata {
    pub(crate) installer_version: String,
    pub(crate) repository: String,
    target_directory: PathBuf,
}

impl CargoMetadata {
    pub(crate) fn read(sh: &Shell) -> Result<CargoMetadata> {
        let json = cmd!(sh, "cargo metadata --format-version 1 --no-deps")
            .quiet()
            .read()
            .context("run cargo metadata")?;
        let metadata: serde_json::Value =
            serde_json::from_str(&json).context("parse cargo metadata")?;
        let installer = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "mosaic-install")
            .context("cargo metadata lists no mosaic-install package")?;
        let installer_version = installer["version"]
            .as_str()
            .context("mosaic-install has no version")?
            .to_owned();
        let repository = installer["repository"]
            .as_str()
            .context("mosaic-install has no repository (the package's Homepage)")?
            .to_owned();
        let target_directory = metadata["target_directory"]
            .as_str()
            .context("cargo metadata has no target_directory")?
            .into();
        Ok(CargoMetadata {
            installer_version,
            repository,
            target_directory,
        })
    }
}

/// The host target triple, from `rustc -vV`.
fn host_triple(sh: &Shell) -> Result<String> {
    let version = cmd!(sh, "rustc -vV")
        .quiet()
        .read()
        .context("run rustc -vV")?;
    version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no `host:` line")
}

/// A gzip tar of `files` (source, name in the archive, mode) under `top/`.
fn write_release_archive(path: &Path, top: &str, files: &[(&Path, &str, u32)]) -> Result<()> {
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gzip);
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(pack::NPM_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header
    };
    let mut dir = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut dir, format!("{top}/"), std::io::empty())
        .context("archive the top directory")?;
    for (source, name, mode) in files {
        if !source.is_file() {
            bail!(
                "{} does not exist (needed for {name} in {top})",
                source.display()
            );
        }
        let content =
            std::fs::read(source).with_context(|| format!("read {}", source.display()))?;
        let mut entry = header(tar::EntryType::Regular, *mode, content.len() as u64);
        tar.append_data(&mut entry, format!("{top}/{name}"), content.as_slice())
            .with_context(|| format!("archive {}", source.display()))?;
    }
    let gzip = tar.into_inner().context("finish the tar stream")?;
    let bytes = gzip.finish().context("finish the gzip stream")?;
    std::fs::write(path, bytes).with_context(|| format!("write {}", path.display()))
}

/// `SHA256SUMS` beside the artifacts: `<sha256 hex>  <file name>` per line.
fn write_sha256sums(dir: &Path, artifacts: &[&Path]) -> Result<PathBuf> {
    let mut lines = Vec::new();
    for artifact in artifacts {
        let bytes =
            std::fs::read(artifact).with_context(|| format!("read {}", artifact.display()))?;
        let digest = sha2::Sha256::digest(&bytes);
        lines.push(format!(
            "{}  {}\n",
            pack::hex(&digest),
            file_name(artifact)?
        ));
    }
    lines.sort_by(|a, b| a[66..].cmp(&b[66..]));
    let path = dir.join("SHA256SUMS");
    std::fs::write(&path, lines.concat()).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no UTF-8 file name", path.display()))
}
