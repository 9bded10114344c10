//! What `pack` tells the user: the object `npm pack --dry-run --json` prints
//! (same fields, same order, same `files` order), and the human summary
//! modelled on npm's notice block.

use super::archive::{Archive, Entry};
use super::collate::listing_order;
use super::package::Package;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PackReport {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) version: String,
    /// Bytes of the `.tgz`.
    pub(crate) size: u64,
    pub(crate) unpacked_size: u64,
    pub(crate) shasum: String,
    pub(crate) integrity: String,
    pub(crate) filename: String,
    pub(crate) files: Vec<FileReport>,
    pub(crate) entry_count: usize,
    pub(crate) bundled: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct FileReport {
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) mode: u32,
}

impl PackReport {
    pub(crate) fn new(package: &Package, archive: &Archive) -> PackReport {
        let mut files: Vec<FileReport> = archive.entries.iter().map(FileReport::from).collect();
        files.sort_by(|a, b| listing_order(&a.path, &b.path));
        PackReport {
            id: package.id(),
            name: package.name.clone(),
            version: package.version.clone(),
            size: archive.tgz.len() as u64,
            unpacked_size: archive.unpacked_size(),
            shasum: archive.shasum(),
            integrity: archive.integrity(),
            filename: package.filename(),
            entry_count: files.len(),
            files,
            bundled: bundled_names(&archive.entries),
        }
    }

    /// npm's `--json` output: an array holding this one report.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(&[self]).expect("a pack report serializes")
    }

    /// The human summary, line for line npm's notice block.
    pub(crate) fn to_table(&self) -> String {
        let mut lines = vec![
            format!("package: {}", self.id),
            "Tarball Contents".to_owned(),
        ];
        lines.extend(
            self.files
                .iter()
                .filter(|f| !f.path.starts_with("node_modules/"))
                .map(|f| format!("{} {}", format_bytes(f.size, false), f.path)),
        );
        if !self.bundled.is_empty() {
            lines.push("Bundled Dependencies".to_owned());
            lines.extend(self.bundled.iter().cloned());
        }
        lines.push("Tarball Details".to_owned());
        let integrity = &self.integrity;
        let short_integrity = format!(
            "{}[...]{}",
            integrity.get(..20).unwrap_or(integrity),
            integrity.get(80..).unwrap_or_default()
        );
        let mut details = vec![
            ("name", self.name.clone()),
            ("version", self.version.clone()),
            ("filename", self.filename.clone()),
            ("package size", format_bytes(self.size, true)),
            ("unpacked size", format_bytes(self.unpacked_size, true)),
            ("shasum", self.shasum.clone()),
            ("integrity", short_integrity),
        ];
        if !self.bundled.is_empty() {
            // npm counts bundled files as entries less listed files, and
            // lists every entry: 0, and all files its own.
            details.push(("bundled deps", self.bundled.len().to_string()));
            let own = self.files.len();
            details.push(("bundled files", (self.entry_count - own).to_string()));
            details.push(("own files", own.to_string()));
        }
        details.push(("total files", self.entry_count.to_string()));
        for (key, value) in details {
            lines.push(format!("{key}: {value}"));
        }
        lines.join("\n")
    }
}

/// npm's `bundled`: the package names under `node_modules/` (`@scope/name`
/// or `name`), in the order the archive first holds each.
fn bundled_names(entries: &[Entry]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let Some(rest) = entry.path.strip_prefix("node_modules/") else {
            continue;
        };
        let mut parts = rest.splitn(3, '/');
        let name = match (parts.next(), parts.next()) {
            (Some(scope), Some(name)) if scope.starts_with('@') => format!("{scope}/{name}"),
            (Some(name), _) => name.to_owned(),
            _ => continue,
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

impl From<&Entry> for FileReport {
    fn from(entry: &Entry) -> FileReport {
        FileReport {
            path: entry.path.clone(),
            size: entry.size,
            mode: entry.mode,
        }
    }
}

/// npm's `formatBytes`: B under 1000, then kB, MB, GB with one decimal
/// (JavaScript's `toFixed(1)`, which rounds exact halves up).
fn format_bytes(bytes: u64, space: bool) -> String {
    let spacer = if space { " " } else { "" };
    let (divisor, unit) = match bytes {
        0..=999 => return format!("{bytes}{spacer}B"),
        1_000..=999_949 => (1e3, "kB"),
        999_950..=999_949_999 => (1e6, "MB"),
        _ => (1e9, "GB"),
    };
    let value = bytes as f64 / divisor;
    // `{:.1}` rounds an exact tie (x.25, x.75) to even; toFixed rounds it up.
    let exact_tie = (value * 4.0).fract() == 0.0 && (value * 2.0).fract() != 0.0;
    let value = if exact_tie {
        (value * 10.0).ceil() / 10.0
    } else {
        value
    };
    format!("{value:.1}{spacer}{unit}")
}

#[cfg(test)]
mod tests {
    use super::format_bytes;

    #[test]
    fn sizes_print_like_npm() {
        assert_eq!(format_bytes(697, false), "697B");
        assert_eq!(format_bytes(1091, false), "1.1kB");
        assert_eq!(format_bytes(3990, true), "4.0 kB");
        assert_eq!(format_bytes(1250, true), "1.3 kB");
        assert_eq!(format_bytes(1150, true), "1.1 kB");
        assert_eq!(format_bytes(1450, true), "1.4 kB");
        assert_eq!(format_bytes(2_500_000, true), "2.5 MB");
    }
}
