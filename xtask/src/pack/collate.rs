//! The two orders npm puts a package's files in, both JavaScript's
//! `localeCompare` with the `en` locale (ICU's root collation; here ICU4X's
//! `icu_collator`, which orders names as Node's ICU does):
//!
//! - the archive order (npm-packlist's sort, chosen for compressibility):
//!   lowercased extension, then lowercased basename, then the whole path,
//!   each with the default (tertiary) strength;
//! - the `files` order of `npm pack --json` (npm's `getContents`): paths
//!   whose first character `toUpperCase` leaves unchanged first (upper case,
//!   digits, punctuation), then the rest, each group sorted with
//!   `sensitivity: 'case'` (accents ignored) and numeric collation
//!   (`file2` before `file10`); a stable sort keeps ties in archive order.

use icu_collator::options::{CaseLevel, CollatorOptions, Strength};
use icu_collator::preferences::CollationNumericOrdering;
use icu_collator::{Collator, CollatorBorrowed, CollatorPreferences};
use std::cmp::Ordering;
use std::sync::LazyLock;

/// `a.localeCompare(b, 'en')`.
static LOCALE: LazyLock<CollatorBorrowed<'static>> = LazyLock::new(|| {
    Collator::try_new(CollatorPreferences::default(), CollatorOptions::default())
        .expect("the root collation is compiled in")
});

/// `new Intl.Collator('en', { sensitivity: 'case', numeric: true })`.
static LISTING: LazyLock<CollatorBorrowed<'static>> = LazyLock::new(|| {
    let mut options = CollatorOptions::default();
    options.strength = Some(Strength::Primary);
    options.case_level = Some(CaseLevel::On);
    let mut preferences = CollatorPreferences::default();
    preferences.numeric_ordering = Some(CollationNumericOrdering::True);
    Collator::try_new(preferences, options).expect("the root collation is compiled in")
});

/// `a.localeCompare(b, 'en')`.
pub(crate) fn locale_compare(a: &str, b: &str) -> Ordering {
    LOCALE.compare(a, b)
}

/// npm-packlist's sort: extension, then basename (both lowercased), then path.
pub(crate) fn archive_order(a: &str, b: &str) -> Ordering {
    let lower = |s: &str| s.to_lowercase();
    locale_compare(&lower(extname(a)), &lower(extname(b)))
        .then_with(|| locale_compare(&lower(basename(a)), &lower(basename(b))))
        .then_with(|| locale_compare(a, b))
}

/// npm's `getContents` order for the `files` list of `npm pack --json`.
pub(crate) fn listing_order(a: &str, b: &str) -> Ordering {
    starts_lower(a)
        .cmp(&starts_lower(b))
        .then_with(|| LISTING.compare(a, b))
}

/// Whether `str.charAt(0).toUpperCase()` differs from `str.charAt(0)`. A
/// character outside the BMP is half a surrogate pair to `charAt`, which
/// `toUpperCase` leaves alone.
fn starts_lower(path: &str) -> bool {
    match path.chars().next() {
        Some(c) if c.len_utf16() == 1 => !c.to_uppercase().eq(std::iter::once(c)),
        _ => false,
    }
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

    // Expected orders below are what node 20 (ICU 78) prints for the same input.
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
            sorted(files, |a, b| LISTING.compare(a, b)),
            ["file_1", "file-1", "file.1", "file1", "file2", "file02", "File2", "file10"]
        );
    }

    #[test]
    fn accents_and_scripts_collate_like_node() {
        let names = vec![
            "zurich",
            "Zürich",
            "café.txt",
            "cafe.txt",
            "Café.txt",
            "résumé.md",
            "resume.md",
            "日本語.txt",
            "кириллица",
            "ελληνικά",
            "straße",
            "strasse",
            "emoji😀.txt",
            "emoji.txt",
        ];
        assert_eq!(
            sorted(names.clone(), locale_compare),
            [
                "cafe.txt",
                "café.txt",
                "Café.txt",
                "emoji.txt",
                "emoji😀.txt",
                "resume.md",
                "résumé.md",
                "strasse",
                "straße",
                "zurich",
                "Zürich",
                "ελληνικά",
                "кириллица",
                "日本語.txt"
            ]
        );
        // `sensitivity: 'case'` ignores accents: equal names keep their order.
        assert_eq!(
            sorted(vec!["résumé.md", "resume.md"], |a, b| LISTING
                .compare(a, b)),
            ["résumé.md", "resume.md"]
        );
    }

    #[test]
    fn listing_puts_names_that_do_not_start_lowercase_first() {
        assert_eq!(
            sorted(
                vec![
                    "package.json",
                    "README.md",
                    "@scope/x",
                    "lib/a.js",
                    "LICENSE",
                    ".x",
                    "école.txt",
                    "Éa.txt",
                    "😀.txt",
                ],
                listing_order
            ),
            [
                ".x",
                "@scope/x",
                "😀.txt",
                "Éa.txt",
                "LICENSE",
                "README.md",
                "école.txt",
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
