//! Node's `path.posix` and the few JavaScript string rules npm's packing
//! code leans on, reproduced exactly: `normalize`, `join`, `basename`,
//! `dirname`, the UTF-16 `slice` that node-tar truncates names with, and
//! npm's `secureAndUnixifyPath` for `bin` entries. Paths here are strings
//! as npm sees them, never resolved against the disk.

/// `path.posix.normalize`.
pub(crate) fn normalize(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let absolute = path.starts_with('/');
    let trailing = path.ends_with('/');
    let mut out = normalize_segments(path, !absolute);
    if out.is_empty() {
        if absolute {
            return "/".to_owned();
        }
        return if trailing { "./" } else { "." }.to_owned();
    }
    if trailing {
        out.push('/');
    }
    if absolute {
        out.insert(0, '/');
    }
    out
}

/// Node's `normalizeString`: resolves `.` and `..` segments and runs of `/`;
/// `..` that climbs above the start is kept only when `above_root`.
fn normalize_segments(path: &str, above_root: bool) -> String {
    let mut out = String::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                let last = out.rsplit('/').next().unwrap_or_default();
                if !out.is_empty() && last != ".." {
                    let cut = out.rfind('/').unwrap_or(0);
                    out.truncate(cut);
                } else if above_root {
                    if !out.is_empty() {
                        out.push('/');
                    }
                    out.push_str("..");
                }
            }
            name => {
                if !out.is_empty() {
                    out.push('/');
                }
                out.push_str(name);
            }
        }
    }
    out
}

/// `path.posix.join`: the non-empty parts joined with `/`, normalized.
pub(crate) fn join(parts: &[&str]) -> String {
    let joined: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if joined.is_empty() {
        return ".".to_owned();
    }
    normalize(&joined.join("/"))
}

/// `path.posix.basename` (trailing slashes ignored).
pub(crate) fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "";
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// `path.posix.dirname` for the relative, slash-free-at-the-end paths of a
/// package (`a/b` is `a`, `a` is `.`).
pub(crate) fn dirname(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/",
        Some(cut) => &trimmed[..cut],
        None if path.starts_with('/') => "/",
        None => ".",
    }
}

/// JavaScript's `s.slice(0, units)` on UTF-16 code units, as the bytes
/// `Buffer.from` would encode: a surrogate pair cut in half leaves a lone
/// surrogate, which UTF-8 encoding turns into U+FFFD.
pub(crate) fn slice_utf16(s: &str, units: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let width = c.len_utf16();
        if used + width > units {
            if used < units {
                out.push(char::REPLACEMENT_CHARACTER);
            }
            break;
        }
        out.push(c);
        used += width;
    }
    out
}

/// JavaScript's `s.length`: UTF-16 code units.
pub(crate) fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// npm's `secureAndUnixifyPath`: `\` and `:` become `/`, the path is
/// confined under `/` and made relative; `""` when nothing is left.
pub(crate) fn secure_and_unixify(reference: &str) -> String {
    let unixify = |s: &str| s.replace(['\\', ':'], "/");
    let secured = unixify(&join(&[".", &join(&["/", &unixify(reference)])]));
    match secured.starts_with("./") {
        true => String::new(),
        false => secured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are what node 20 prints for the same calls.
    #[test]
    fn normalize_and_join_follow_node() {
        assert_eq!(normalize("a//b/./c/../d/"), "a/b/d/");
        assert_eq!(normalize("../a/.."), "..");
        assert_eq!(normalize("/../a"), "/a");
        assert_eq!(normalize("./"), "./");
        assert_eq!(normalize("a/.."), ".");
        assert_eq!(normalize("..."), "...");
        assert_eq!(join(&[".", "/bin/"]), "bin/");
        assert_eq!(join(&["/", ""]), "/");
        assert_eq!(
            join(&["node_modules/a", "../b/x.js"]),
            "node_modules/b/x.js"
        );
    }

    #[test]
    fn bin_paths_are_secured_like_npm() {
        assert_eq!(secure_and_unixify("./bin/cli.js"), "bin/cli.js");
        assert_eq!(secure_and_unixify("../../etc/passwd"), "etc/passwd");
        assert_eq!(secure_and_unixify("bin\\win.js"), "bin/win.js");
        assert_eq!(secure_and_unixify("c:x"), "c/x");
        assert_eq!(secure_and_unixify("bin/"), "bin/");
        assert_eq!(secure_and_unixify(""), "");
        assert_eq!(secure_and_unixify("."), "");
    }

    #[test]
    fn basename_dirname_and_utf16_slices() {
        assert_eq!(basename("@scope/tool"), "tool");
        assert_eq!(basename("a/b/"), "b");
        assert_eq!(dirname("package/a/b"), "package/a");
        assert_eq!(dirname("package"), ".");
        assert_eq!(slice_utf16("ab😀c", 3), "ab\u{fffd}");
        assert_eq!(slice_utf16("ab😀c", 4), "ab😀");
        assert_eq!(utf16_len("é😀"), 3);
    }
}
