//! The two orders npm puts a package's files in, both built on ICU's `en`
//! collation (JavaScript's `localeCompare`):
//!
//! - the archive order (npm-packlist's sort, chosen for compressibility):
//!   extension, then basename, then the whole path;
//! - the `files` order of `npm pack --json` (npm's `getContents`): paths
//!   whose first character is not a lowercase letter first, each group
//!   sorted with numeric collation (`file2` before `file10`).
//!
//! Only ASCII names are collated exactly: punctuation sorts before digits,
//! digits before letters, letters compare case-insensitively first and then
//! lowercase before uppercase. Archive paths are ASCII (anything else would
//! need a PAX header, which `pack` refuses), so that is all npm's order needs.

use std::cmp::Ordering;

/// ICU root order of the printable ASCII characters that are not letters
/// or digits (what `localeCompare(_, 'en')` yields for them, one by one).
const PUNCTUATION: &str = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Punctuation,
    Digit,
    Letter,
    Other,
}

/// One collation element: its primary key and whether it is an uppercase letter.
#[derive(Clone, PartialEq, Eq)]
struct Element {
    group: Group,
    /// Order within the group: the punctuation rank, the lowercase letter,
    /// the digit, or (numeric collation) the number without leading zeros.
    key: String,
    upper: bool,
}

impl Element {
    fn primary_cmp(&self, other: &Self) -> Ordering {
        self.group.cmp(&other.group).then_with(|| {
            if self.group == Group::Digit {
                // Numbers: fewer digits is smaller, then digit by digit.
                self.key
                    .len()
                    .cmp(&other.key.len())
                    .then_with(|| self.key.cmp(&other.key))
            } else {
                self.key.cmp(&other.key)
            }
        })
    }
}

fn elements(s: &str, numeric: bool) -> Vec<Element> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let (group, key) = if c.is_ascii_digit() && numeric {
            let start = i - 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let trimmed = digits.trim_start_matches('0');
            (Group::Digit, trimmed.to_owned())
        } else if c.is_ascii_digit() {
            (Group::Digit, c.to_string())
        } else if c.is_ascii_alphabetic() {
            (Group::Letter, c.to_ascii_lowercase().to_string())
        } else if let Some(rank) = PUNCTUATION.find(c) {
            (
                Group::Punctuation,
                char::from(b'!' + rank as u8).to_string(),
            )
        } else if c.is_ascii_control() {
            // Control characters are ignorable in ICU collation.
            continue;
        } else {
            (Group::Other, c.to_string())
        };
        out.push(Element {
            group,
            key,
            upper: c.is_ascii_uppercase(),
        });
    }
    out
}

fn collate(a: &str, b: &str, numeric: bool) -> Ordering {
    let (ea, eb) = (elements(a, numeric), elements(b, numeric));
    let primary = ea
        .iter()
        .zip(&eb)
        .map(|(x, y)| x.primary_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| ea.len().cmp(&eb.len()));
    primary.then_with(|| {
        let case = |e: &[Element]| e.iter().map(|x| x.upper).collect::<Vec<_>>();
        case(&ea).cmp(&case(&eb))
    })
}

/// `a.localeCompare(b, 'en')`.
pub fn locale_compare(a: &str, b: &str) -> Ordering {
    collate(a, b, false)
}

/// npm-packlist's sort: extension, then basename (both lowercased), then path.
pub fn archive_order(a: &str, b: &str) -> Ordering {
    let lower = |s: &str| s.to_lowercase();
    locale_compare(&lower(extname(a)), &lower(extname(b)))
        .then_with(|| locale_compare(&lower(basename(a)), &lower(basename(b))))
        .then_with(|| locale_compare(a, b))
}

/// npm's `getContents` order for the `files` list of `npm pack --json`.
pub fn listing_order(a: &str, b: &str) -> Ordering {
    let lower_first = |s: &str| s.chars().next().is_some_and(|c| c.is_lowercase());
    lower_first(a)
        .cmp(&lower_first(b))
        .then_with(|| collate(a, b, true))
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Node's `path.extname`: from the last `.` of the basename, unless that
/// `.` only starts the name (`.npmrc` has none; `..foo` has `.foo`).
fn extname(path: &str) -> &str {
    let base = basename(path);
    match base.rfind('.') {
        None | Some(0) => "",
        Some(_) if base == ".." => "",
        Some(dot) => &base[dot..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut names: Vec<&str>, order: fn(&str, &str) -> Ordering) -> Vec<&str> {
        names.sort_by(|a, b| order(a, b));
        names
    }

    // Expected orders below are what node 20 (ICU) prints for the same input.
    #[test]
    fn locale_compare_matches_icu() {
        assert_eq!(
            sorted(
                vec!["b", "B", "aB", "Ab", "ab", "AB", "a", "A"],
                locale_compare
            ),
            ["a", "A", "ab", "aB", "Ab", "AB", "b", "B"]
        );
        let files = vec![
            "file10", "file2", "file1", "File2", "file02", "file-1", "file_1", "file.1",
        ];
        assert_eq!(
            sorted(files.clone(), locale_compare),
            ["file_1", "file-1", "file.1", "file02", "file1", "file10", "file2", "File2"]
        );
        assert_eq!(
            sorted(files, |a, b| collate(a, b, true)),
            ["file_1", "file-1", "file.1", "file1", "file2", "file02", "File2", "file10"]
        );
    }

    #[test]
    fn listing_puts_non_lowercase_first() {
        assert_eq!(
            sorted(
                vec![
                    "package.json",
                    "README.md",
                    "@scope/x",
                    "lib/a.js",
                    "LICENSE",
                    ".x"
                ],
                listing_order
            ),
            [
                ".x",
                "@scope/x",
                "LICENSE",
                "README.md",
                "lib/a.js",
                "package.json"
            ]
        );
    }

    #[test]
    fn extname_follows_node() {
        assert_eq!(extname("a/b.tar.gz"), ".gz");
        assert_eq!(extname(".npmrc"), "");
        assert_eq!(extname("..foo"), ".foo");
        assert_eq!(extname("x."), ".");
        assert_eq!(extname("..."), ".");
        assert_eq!(extname("dir.d/file"), "");
    }
}
