//! The `.tgz` itself, written the way npm writes it (node-tar 7 in portable
//! mode under pacote's options): entries under `package/` in the
//! selection's order, no directory entries, mtime 1985-10-26T08:15:00Z, no
//! owner fields, modes as node-tar fixes them (`(mode | 0o600) & !0o022`,
//! so 0775 becomes 0755 and 0444 becomes 0644; 0700 stays 0700), the
//! execute bits added first to the files pacote takes for `bin` targets, a
//! second name of a hard-linked file stored as a link, and node-tar's own
//! header encoding (see `header`), PAX records included. The uncompressed
//! tar is byte-for-byte what npm produces.
//!
//! The gzip layer is ours: libdeflate at [`LEVEL`], no mtime, OS "unknown".
//! libdeflate's output depends only on its version (pinned by Cargo.lock)
//! and the level, never on the machine, so the same tree gives the same
//! bytes everywhere; they differ from Node's zlib, whose level-9 output is
//! smaller by about a percent and several times slower to produce.

use super::header;
use anyhow::{bail, Context, Result};
use base64::Engine as _;
use sha1::Digest as _;
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// libdeflate's compression level: its default, the knee of its curve. On
/// typescript@5.9.3 (23.7 MB of tar) it gives 4.44 MB against Node's 4.38 MB
/// at level 9 (1.3% larger) in a quarter of the time; level 8 would be 0.5%
/// smaller than Node's but three times slower than 6, level 4 twice as fast
/// as 6 but 5% larger.
pub(crate) const LEVEL: i32 = 6;

/// One entry of the archive, as `npm pack --json` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Path inside the package (without `package/`).
    pub(crate) path: String,
    /// Bytes stored (0 for a hard link).
    pub(crate) size: u64,
    pub(crate) mode: u32,
    /// For a second name of a hard-linked file: the first name (`package/...`).
    pub(crate) link_to: Option<String>,
}

pub(crate) struct Archive {
    pub(crate) tgz: Vec<u8>,
    /// In archive order.
    pub(crate) entries: Vec<Entry>,
}

impl Archive {
    /// Builds the archive of `files` (relative to `dir`), in the order given;
    /// `bins` are the root package's normalized `bin` targets.
    pub(crate) fn build(dir: &Path, files: &[String], bins: &[String]) -> Result<Archive> {
        let tar = tar_of(dir, files, bins)?;
        Ok(Archive {
            tgz: gzip(&tar.bytes)?,
            entries: tar.entries,
        })
    }

    /// Sum of the entry sizes (npm's `unpackedSize`).
    pub(crate) fn unpacked_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// sha1 hex of the `.tgz` (npm's `shasum`).
    pub(crate) fn shasum(&self) -> String {
        hex(&sha1::Sha1::digest(&self.tgz))
    }

    /// `sha512-` and the base64 sha512 of the `.tgz` (npm's `integrity`).
    pub(crate) fn integrity(&self) -> String {
        integrity_of(&self.tgz)
    }
}

/// `sha512-` and the base64 sha512 of `bytes` (an SRI string as npm writes it).
pub(crate) fn integrity_of(bytes: &[u8]) -> String {
    let digest = sha2::Sha512::digest(bytes);
    format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// An uncompressed tar and what it holds.
pub(crate) struct Tar {
    pub(crate) bytes: Vec<u8>,
    pub(crate) entries: Vec<Entry>,
}

/// The uncompressed tar npm would write for `files`.
pub(crate) fn tar_of(dir: &Path, files: &[String], bins: &[String]) -> Result<Tar> {
    let mut bytes = Vec::new();
    let mut entries = Vec::with_capacity(files.len());
    let mut first_name_of_inode: HashMap<(u64, u64), String> = HashMap::new();
    for file in files {
        let source = dir.join(file);
        let meta = std::fs::symlink_metadata(&source)
            .with_context(|| format!("stat {}", source.display()))?;
        let mut mode = meta.mode();
        if is_package_bin(file, bins) {
            mode |= 0o111;
        }
        let mode = (mode & 0o7777 | 0o600) & !0o022;
        let name = format!("package/{file}");
        let inode = (meta.dev(), meta.ino());
        let link = match meta.nlink() > 1 {
            true => first_name_of_inode.get(&inode).cloned(),
            false => None,
        };
        let size = match &link {
            Some(_) => 0,
            None => meta.len(),
        };
        if size > header::MAX_SIZE {
            bail!(
                "{}: {size} bytes; xtask pack keeps the archive in memory and stops at {} bytes",
                source.display(),
                header::MAX_SIZE
            );
        }
        header::write(&mut bytes, &name, mode, size, link.as_deref());
        if link.is_none() {
            if meta.nlink() > 1 {
                first_name_of_inode.insert(inode, name.clone());
            }
            append_content(&mut bytes, &source, size)?;
        }
        entries.push(Entry {
            path: file.clone(),
            size,
            mode,
            link_to: link,
        });
    }
    bytes.resize(bytes.len() + 1024, 0);
    Ok(Tar { bytes, entries })
}

/// pacote's `isPackageBin`, on the path node-tar is handed (`./@x` for a
/// top-level `@x`): that path, less its first segment if it has more than
/// one, equals a `bin` target. So `"bin": "cli.js"` makes `cli.js`
/// executable, but `"bin": "bin/cli.js"` leaves `bin/cli.js` as it is on
/// disk (only a `x/bin/cli.js` would match); that is npm 11's behaviour.
fn is_package_bin(file: &str, bins: &[String]) -> bool {
    let handed = match file.starts_with('@') {
        true => format!("./{file}"),
        false => file.to_owned(),
    };
    let stripped = match handed.find(['/', '\\']) {
        Some(cut) => &handed[cut + 1..],
        None => &handed,
    };
    bins.iter().any(|bin| bin == stripped)
}

/// The file's `size` bytes, then zeros to the next 512-byte block.
fn append_content(bytes: &mut Vec<u8>, source: &Path, size: u64) -> Result<()> {
    let start = bytes.len();
    let file = std::fs::File::open(source).with_context(|| format!("open {}", source.display()))?;
    let read = file
        .take(size)
        .read_to_end(bytes)
        .with_context(|| format!("read {}", source.display()))?;
    if read as u64 != size {
        bail!(
            "{} changed while it was packed ({size} bytes when listed, {read} when read)",
            source.display()
        );
    }
    bytes.resize(start + (size as usize).div_ceil(512) * 512, 0);
    Ok(())
}

/// The gzip member of `tar`: libdeflate at [`LEVEL`].
pub(crate) fn gzip(tar: &[u8]) -> Result<Vec<u8>> {
    let level = libdeflater::CompressionLvl::new(LEVEL).expect("LEVEL is a libdeflate level");
    let mut compressor = libdeflater::Compressor::new(level);
    let mut out = vec![0; compressor.gzip_compress_bound(tar.len())];
    let written = compressor
        .gzip_compress(tar, &mut out)
        .context("gzip the archive")?;
    out.truncate(written);
    Ok(out)
}

/// An entry as read back from a `.tgz`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unpacked {
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) mode: u32,
    /// sha256 hex of the content; for a hard link, the link's target path.
    pub(crate) content: String,
}

/// Reads every entry of a `.tgz` produced by npm or by [`Archive::build`].
pub(crate) fn unpack(tgz: &[u8]) -> Result<Vec<Unpacked>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut out = Vec::new();
    for entry in archive.entries().context("read the archive")? {
        let mut entry = entry.context("read an archive entry")?;
        let raw_path = entry.path().context("entry path")?.display().to_string();
        let Some(path) = raw_path.strip_prefix("package/") else {
            bail!("archive entry `{raw_path}` is outside `package/`");
        };
        let path = path.to_owned();
        let mode = entry.header().mode().context("entry mode")?;
        let size = entry.size();
        let content = match entry.header().entry_type() {
            tar::EntryType::Regular => {
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("read {path} from the archive"))?;
                hex(&sha2::Sha256::digest(&bytes))
            }
            tar::EntryType::Link => {
                let target = entry.link_name().context("link target")?;
                let target = target.map(|t| t.display().to_string()).unwrap_or_default();
                format!("link to {target}")
            }
            other => bail!("archive entry `{path}` has unexpected type {other:?}"),
        };
        out.push(Unpacked {
            path,
            size,
            mode,
            content,
        });
    }
    Ok(out)
}

/// Writes the `.tgz` into `dir` (created if needed) as `filename` and
/// returns its path. The bytes go to a temporary file beside it that is
/// renamed into place only once complete: a failed write leaves no
/// `.tgz`, and an older one of the same name untouched. Like npm, it does
/// not fsync: the archive is a build output, made again at will, and an
/// fsync would cost more than the rest of packing a small package.
pub(crate) fn write(dir: &Path, filename: &str, tgz: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join(filename);
    let mut partial = tempfile::Builder::new()
        .prefix(&format!(".{filename}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    partial.write_all(tgz).with_context(|| {
        format!(
            "write {} ({} bytes); nothing was left in {}",
            path.display(),
            tgz.len(),
            dir.display()
        )
    })?;
    partial
        .persist(&path)
        .with_context(|| format!("rename the finished archive to {}", path.display()))?;
    Ok(path)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_that_pacote_matches_become_executable() {
        let top = ["cli.js".to_owned()];
        assert!(is_package_bin("cli.js", &top));
        assert!(is_package_bin("x/cli.js", &top));
        assert!(!is_package_bin("@scope/cli.js", &top));
        let nested = ["bin/cli.js".to_owned()];
        assert!(!is_package_bin("bin/cli.js", &nested));
        assert!(is_package_bin("x/bin/cli.js", &nested));
        assert!(is_package_bin(
            "@scope/cli.js",
            &["@scope/cli.js".to_owned()]
        ));
    }

    #[test]
    fn libdeflate_output_is_pinned() {
        // A change of libdeflate or of LEVEL changes every archive's bytes
        // (and its integrity): make it a decision, not an accident.
        let input: Vec<u8> = (0..200_000u32)
            .map(|i| (i * 7 % 251) as u8 ^ (i / 1000) as u8)
            .collect();
        let tgz = gzip(&input).unwrap();
        assert_eq!(&tgz[..10], b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(tgz.as_slice())
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == input);
        assert_eq!(
            hex(&sha2::Sha256::digest(&tgz)),
            "9ddfff8779a3fde3a8f6ca4d04b8da63a328cd0125afffdccefa4fef45248980"
        );
    }
}
