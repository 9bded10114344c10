//! The profile's label: the name a profile goes by in the units' header
//! comment, the receipt, `status` and reports.
//!
//! It comes from an embedded profile's name, from the file name of an
//! operator's roster, or from an older receipt, so it is not ours to trust:
//! a file named `fleet\n[Service]\nExecStartPre=…\n#.yaml` would otherwise
//! turn the comment into directives. A label never holds a control
//! character, whitespace other than a space, or a backslash (unit-file
//! syntax continues a directive line that ends in one; today's systemd does
//! not continue comments, but the label need not rely on it). Fresh names
//! breaking that are refused ([`ProfileLabel::checked`]); a label read back
//! from an older receipt is cleaned ([`ProfileLabel::cleaned`]) so that the
//! next upgrade heals it instead of carrying it on.

use std::fmt;

use serde::Serialize;

/// A label safe to write into any line of any file we render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct ProfileLabel(String);

/// What replaces each character a label may not hold.
const REPLACEMENT: char = '?';

fn unsafe_in_label(c: char) -> bool {
    c.is_control() || c == '\\' || (c.is_whitespace() && c != ' ')
}

impl ProfileLabel {
    /// `raw` as a label, or why it cannot be one.
    pub(crate) fn checked(raw: &str) -> Result<ProfileLabel, String> {
        match raw.chars().find(|&c| unsafe_in_label(c)) {
            None => Ok(ProfileLabel(raw.to_owned())),
            Some(c) => Err(match c {
                '\n' => "a newline".to_owned(),
                '\\' => "a backslash".to_owned(),
                other => format!("the character {other:?}"),
            }),
        }
    }

    /// `raw` with every character a label may not hold replaced by `?`.
    pub(crate) fn cleaned(raw: &str) -> ProfileLabel {
        ProfileLabel(
            raw.chars()
                .map(|c| if unsafe_in_label(c) { REPLACEMENT } else { c })
                .collect(),
        )
    }
}

impl fmt::Display for ProfileLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "fleet\n[Service]\nExecStartPre=touch PWNED\n#";

    #[test]
    fn ordinary_names_pass_unchanged() {
        for name in ["usc", "my fleet", "équipe-2", "fleet.prod"] {
            assert_eq!(ProfileLabel::checked(name).unwrap().to_string(), name);
            assert_eq!(ProfileLabel::cleaned(name).to_string(), name);
        }
    }

    #[test]
    fn line_breaking_names_are_refused_or_cleaned() {
        assert_eq!(ProfileLabel::checked(HOSTILE).unwrap_err(), "a newline");
        assert_eq!(
            ProfileLabel::cleaned(HOSTILE).to_string(),
            "fleet?[Service]?ExecStartPre=touch PWNED?#"
        );
        for raw in [
            "a\rb",
            "a\tb",
            "a\u{1b}[2Jb",
            "a\\",
            "a\u{2028}b",
            "a\u{85}b",
        ] {
            assert!(ProfileLabel::checked(raw).is_err(), "{raw:?} passed");
            let cleaned = ProfileLabel::cleaned(raw);
            assert!(
                ProfileLabel::checked(&cleaned.to_string()).is_ok(),
                "{cleaned}"
            );
        }
    }
}
