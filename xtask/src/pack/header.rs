//! node-tar 7's headers, byte for byte, as npm writes them in portable
//! mode: `Header.encode` (ustar, no owner fields, octal numbers padded as
//! `000644 \0`, names split between the 100-byte name and the 155-byte
//! prefix by `splitPrefix`) and, when a field does not fit, a PAX extended
//! header before it (`Pax.encode`): `path`, then `linkpath` for a hard link,
//! `mtime` and `size`, each record `"<len> <key>=<value>\n"`, under a ustar
//! header named `PaxHeader/<basename>`.
//!
//! A field needs PAX when it is not ASCII (node-tar compares the UTF-16
//! length with the UTF-8 one) or longer than its field, and a name needs it
//! when no split fits. The ustar fields then hold what node-tar writes
//! anyway: the truncated name (whole UTF-8 characters only, as
//! `Buffer.write` does), so even those bytes match.

use super::node_path::{basename, dirname, slice_utf16, utf16_len};

/// pacote's fixed timestamp: 1985-10-26T08:15:00Z.
pub(crate) const NPM_MTIME: u64 = 499_162_500;

/// The largest size a ustar size field holds (node-tar would switch to
/// base-256 and a PAX `size`; archives here are built in memory, far below).
pub(crate) const MAX_SIZE: u64 = 0o77777777777;

/// Appends the header (and any PAX header before it) of a file, or of a
/// hard link to `link`, with the mtime npm uses.
pub(crate) fn write(out: &mut Vec<u8>, path: &str, mode: u32, size: u64, link: Option<&str>) {
    let fields = Fields {
        path,
        mode,
        size,
        kind: if link.is_some() { b'1' } else { b'0' },
        linkpath: link,
    };
    let mut block = [0u8; 512];
    if encode(&mut block, &fields) {
        pax(out, path, link, size);
    }
    out.extend_from_slice(&block);
}

struct Fields<'a> {
    path: &'a str,
    mode: u32,
    size: u64,
    kind: u8,
    linkpath: Option<&'a str>,
}

/// `Header.encode`: fills `block`, returns whether PAX is needed.
fn encode(block: &mut [u8; 512], fields: &Fields) -> bool {
    let (name, prefix, split_needs_pax) = split_prefix(fields.path);
    let mut needs_pax = split_needs_pax;
    needs_pax |= put_str(&mut block[0..100], &name);
    put_octal(&mut block[100..108], fields.mode.into());
    put_octal(&mut block[124..136], fields.size);
    put_octal(&mut block[136..148], NPM_MTIME);
    block[156] = fields.kind;
    if let Some(linkpath) = fields.linkpath {
        needs_pax |= put_str(&mut block[157..257], linkpath);
    }
    block[257..265].copy_from_slice(b"ustar\x0000");
    put_octal(&mut block[329..337], 0);
    put_octal(&mut block[337..345], 0);
    needs_pax |= put_str(&mut block[345..500], &prefix);
    let checksum: u64 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|&b| u64::from(b))
        .sum::<u64>()
        + 8 * 0x20;
    put_octal(&mut block[148..156], checksum);
    needs_pax
}

/// `Pax.encode` for an entry: the records, then the ustar header that
/// carries them, padded to whole blocks.
fn pax(out: &mut Vec<u8>, path: &str, link: Option<&str>, size: u64) {
    let mut body = record("path", path);
    if let Some(link) = link {
        body.push_str(&record("linkpath", link));
    }
    body.push_str(&record("mtime", &NPM_MTIME.to_string()));
    body.push_str(&record("size", &size.to_string()));
    let header_path = slice_utf16(&format!("PaxHeader/{}", basename(path)), 99);
    let mut block = [0u8; 512];
    encode(
        &mut block,
        &Fields {
            path: &header_path,
            mode: 0o644,
            size: body.len() as u64,
            kind: b'x',
            linkpath: None,
        },
    );
    out.extend_from_slice(&block);
    out.extend_from_slice(body.as_bytes());
    let padded = body.len().div_ceil(512) * 512;
    out.resize(out.len() + padded - body.len(), 0);
}

/// One PAX record: its length in bytes (counting the digits themselves),
/// a space, `key=value` and a newline.
fn record(key: &str, value: &str) -> String {
    let rest = format!(" {key}={value}\n");
    let mut digits = rest.len().to_string().len();
    if rest.len() + digits >= 10usize.pow(digits as u32) {
        digits += 1;
    }
    format!("{}{rest}", rest.len() + digits)
}

/// node-tar's `splitPrefix(path, 155)`: (name, prefix, needs PAX). Names
/// under 100 bytes stay whole; longer ones move leading directories into
/// the prefix until both fit; a name over 100 bytes is cut to 99 UTF-16
/// units. (node-tar's last resort, the whole path cut to 99 units with no
/// prefix, is kept for completeness: `package/` always fits the prefix.)
fn split_prefix(path: &str) -> (String, String, bool) {
    const NAME: usize = 100;
    const PREFIX: usize = 155;
    if path.len() < NAME {
        return (path.to_owned(), String::new(), false);
    }
    let mut prefix = dirname(path).to_owned();
    let mut name = basename(path).to_owned();
    // node-tar's loop stops when the prefix reaches the root (`.` here).
    while prefix != "." {
        if name.len() <= NAME && prefix.len() <= PREFIX {
            return (name, prefix, false);
        }
        if name.len() > NAME && prefix.len() <= PREFIX {
            return (slice_utf16(&name, NAME - 1), prefix, true);
        }
        name = format!("{}/{name}", basename(&prefix));
        prefix = dirname(&prefix).to_owned();
    }
    (slice_utf16(path, NAME - 1), String::new(), true)
}

/// node-tar's `encString`: as many whole UTF-8 characters as fit, the rest
/// of the field left as it is (zero); true when the string needs PAX.
fn put_str(field: &mut [u8], value: &str) -> bool {
    let mut end = 0;
    for (at, c) in value.char_indices() {
        if at + c.len_utf8() > field.len() {
            break;
        }
        end = at + c.len_utf8();
    }
    field[..end].copy_from_slice(&value.as_bytes()[..end]);
    utf16_len(value) != value.len() || utf16_len(value) > field.len()
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
    fn pax_records_count_their_own_length() {
        assert_eq!(record("size", "0"), "9 size=0\n");
        assert_eq!(record("mtime", "499162500"), "19 mtime=499162500\n");
        // 98 bytes of record plus 2 digits is 100: three digits then.
        let value = "x".repeat(91);
        assert_eq!(record("path", &value).len(), 101);
        assert!(record("path", &value).starts_with("101 path="));
    }

    #[test]
    fn long_names_split_as_node_tar_splits_them() {
        let long = format!("package/{}/file.txt", "d".repeat(120));
        let (name, prefix, pax) = split_prefix(&long);
        assert_eq!((name.as_str(), prefix.len(), pax), ("file.txt", 128, false));
        // A basename over 100 bytes keeps its directory as the prefix.
        let (name, prefix, pax) = split_prefix(&format!("package/{}", "x".repeat(120)));
        assert_eq!((name.len(), prefix.as_str(), pax), (99, "package", true));
        // A directory over 155 bytes moves into the name, which is then cut.
        let deep = format!("package/{}/{}", "a".repeat(160), "b".repeat(90));
        let (name, prefix, pax) = split_prefix(&deep);
        assert_eq!(
            (name, prefix.as_str(), pax),
            ("a".repeat(99), "package", true)
        );
    }

    #[test]
    fn non_ascii_fields_are_cut_at_whole_characters() {
        let mut field = [0u8; 4];
        assert!(put_str(&mut field, "aé€"));
        assert_eq!(&field, b"a\xc3\xa9\0");
        assert!(!put_str(&mut [0u8; 100], "plain"));
    }
}
