//! The `.tgz` itself, written the way npm writes it (node-tar in portable
//! mode under pacote's options): entries under `package/` in the selection's
//! order, no directory entries, mtime 1985-10-26T08:15:00Z, no owner fields,
//! modes as node-tar fixes them (`(mode | 0o600) & !0o022`, so 0775 becomes
//! 0755 and 0444 becomes 0644; 0700 stays 0700), a second name of a
//! hard-linked file stored as a link, and node-tar's own header encoding.
//! The uncompressed tar is byte-for-byte what npm produces; the gzip layer
//! (level 9, mtime 0, OS "unknown") is deterministic but comes from a
//! different deflate implementation than Node's, so its bytes differ.

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use sha1::Digest as _;
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// pacote's fixed timestamp: 1985-10-26T08:15:00Z.
pub const NPM_MTIME: u64 = 499_162_500;

/// One entry of the archive, as `npm pack --json` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the package (without `package/`).
    pub path: String,
    /// Bytes stored (0 for a hard link).
    pub size: u64,
    pub mode: u32,
    /// For a second name of a hard-linked file: the first name (`package/...`).
    pub link_to: Option<String>,
}

pub struct Archive {
    pub tgz: Vec<u8>,
    /// In archive order.
    pub entries: Vec<Entry>,
}

impl Archive {
    /// Builds the archive of `files` (relative to `dir`), in the order given.
    pub fn build(dir: &Path, files: &[String]) -> Result<Archive> {
        let gzip = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), flate2::Compression::best());
        let mut tar = tar::Builder::new(gzip);
        let mut entries = Vec::with_capacity(files.len());
        let mut first_name_of_inode: HashMap<(u64, u64), String> = HashMap::new();
        for file in files {
            let source = dir.join(file);
            let meta = std::fs::symlink_metadata(&source)
                .with_context(|| format!("stat {}", source.display()))?;
            let mode = (meta.mode() & 0o7777 | 0o600) & !0o022;
            let name = format!("package/{file}");
            let inode = (meta.dev(), meta.ino());
            let link = match meta.nlink() > 1 {
                true => first_name_of_inode.get(&inode).cloned(),
                false => None,
            };
            let (header, content) = match &link {
                Some(target) => (encode_header(&name, mode, 0, Some(target))?, Vec::new()),
                None => {
                    if meta.nlink() > 1 {
                        first_name_of_inode.insert(inode, name.clone());
                    }
                    let content = std::fs::read(&source)
                        .with_context(|| format!("read {}", source.display()))?;
                    let size = content.len() as u64;
                    (encode_header(&name, mode, size, None)?, content)
                }
            };
            let header = tar::Header::from_byte_slice(&header);
            tar.append(header, content.as_slice())
                .with_context(|| format!("archive {file}"))?;
            entries.push(Entry {
                path: file.clone(),
                size: content.len() as u64,
                mode,
                link_to: link,
            });
        }
        let gzip = tar.into_inner().context("finish the tar stream")?;
        let tgz = gzip.finish().context("finish the gzip stream")?;
        Ok(Archive { tgz, entries })
    }

    /// Sum of the entry sizes (npm's `unpackedSize`).
    pub fn unpacked_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// sha1 hex of the `.tgz` (npm's `shasum`).
    pub fn shasum(&self) -> String {
        hex(&sha1::Sha1::digest(&self.tgz))
    }

    /// `sha512-` and the base64 sha512 of the `.tgz` (npm's `integrity`).
    pub fn integrity(&self) -> String {
        let digest = sha2::Sha512::digest(&self.tgz);
        format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    }
}

/// An entry as read back from a `.tgz`.
#[derive(Debug, PartialEq, Eq)]
pub struct Unpacked {
    pub path: String,
    pub size: u64,
    pub mode: u32,
    /// sha256 hex of the content; for a hard link, the link's target path.
    pub content: String,
}

/// Reads every entry of a `.tgz` produced by npm or by [`Archive::build`].
pub fn unpack(tgz: &[u8]) -> Result<Vec<Unpacked>> {
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

/// Writes the `.tgz` into `dir`, creating it, and returns the file's path.
pub fn write(dir: &Path, filename: &str, tgz: &[u8]) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join(filename);
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    file.write_all(tgz)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// node-tar's ustar header for a file (or hard link) with no owner fields.
fn encode_header(name: &str, mode: u32, size: u64, link: Option<&str>) -> Result<[u8; 512]> {
    let (name_field, prefix) = split_prefix(name)?;
    let mut block = [0u8; 512];
    put_str(&mut block[0..100], name_field);
    put_octal(&mut block[100..108], mode.into());
    put_octal(&mut block[124..136], size);
    put_octal(&mut block[136..148], NPM_MTIME);
    block[156] = if link.is_some() { b'1' } else { b'0' };
    if let Some(target) = link {
        if target.len() > 100 || !target.is_ascii() {
            bail!("hard link target `{target}` would need a PAX header, which xtask pack does not write");
        }
        put_str(&mut block[157..257], target);
    }
    block[257..265].copy_from_slice(b"ustar\x0000");
    put_octal(&mut block[329..337], 0);
    put_octal(&mut block[337..345], 0);
    put_str(&mut block[345..500], prefix);
    let checksum: u64 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|&b| u64::from(b))
        .sum::<u64>()
        + 8 * 0x20;
    put_octal(&mut block[148..156], checksum);
    Ok(block)
}

/// node-tar's octal: zero-padded digits, a space, a NUL (`000644 \0`), or
/// just the digits and a NUL when they fill the field.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:o}");
    let text = if digits.len() == field.len() - 1 {
        format!("{digits}\0")
    } else {
        format!("{digits:0>width$} \0", width = field.len() - 2)
    };
    field.copy_from_slice(text.as_bytes());
}

fn put_str(field: &mut [u8], value: &str) {
    field[..value.len()].copy_from_slice(value.as_bytes());
}

/// node-tar's `splitPrefix`: names under 100 bytes stay whole; longer ones
/// move leading directories into the 155-byte prefix field.
fn split_prefix(name: &str) -> Result<(&str, &str)> {
    let needs_pax =
        || anyhow::anyhow!("`{name}` would need a PAX header, which xtask pack does not write");
    if !name.is_ascii() {
        return Err(needs_pax());
    }
    if name.len() < 100 {
        return Ok((name, ""));
    }
    // The longest prefix that fits, leaving the rest (at most 100) as the name.
    let mut split = name.rfind('/').ok_or_else(needs_pax)?;
    loop {
        let (prefix, rest) = (&name[..split], &name[split + 1..]);
        if prefix.len() <= 155 {
            return match rest.len() <= 100 {
                true => Ok((rest, prefix)),
                false => Err(needs_pax()),
            };
        }
        split = name[..split].rfind('/').ok_or_else(needs_pax)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_look_like_node_tar() {
        let mut field = [0u8; 8];
        put_octal(&mut field, 0o644);
        assert_eq!(&field, b"000644 \0");
        let mut field = [0u8; 12];
        put_octal(&mut field, NPM_MTIME);
        assert_eq!(&field, b"3560116604 \0");
    }

    #[test]
    fn long_names_split_at_the_last_fitting_slash() {
        let long = format!("package/{}/file.txt", "d".repeat(120));
        let (name, prefix) = split_prefix(&long).unwrap();
        assert_eq!(name, "file.txt");
        assert_eq!(prefix.len(), 128);
        assert!(split_prefix(&format!("package/{}", "x".repeat(120))).is_err());
    }
}
