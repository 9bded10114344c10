//! Env files: the per-agent settings format shared by systemd
//! (`EnvironmentFile=`) and bash (`source`). Writing double-quotes every
//! value and escapes exactly `\\`, `\"`, `\$` and `` \` `` — the escapes both
//! readers honour inside double quotes — so both read back the original.
//! Reading is the inverse, for tools that check what an agent will run.

use std::collections::BTreeMap;

/// Quote a value for an env file (control characters are rejected earlier,
/// by profile validation).
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parse `KEY=value` lines as systemd does for the subset we write:
/// comments, blank lines, bare values, double- and single-quoted values.
pub(crate) fn parse(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        vars.insert(key.trim().to_owned(), unquote(raw.trim()));
    }
    vars
}

fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, chars.peek()) {
                ('\\', Some(&next)) if matches!(next, '\\' | '"' | '$' | '`') => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push(c),
            }
        }
        return out;
    }
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.to_owned();
    }
    raw.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_only_shell_specials() {
        assert_eq!(
            quote(r#"a "b" $c `d` \e 100%"#),
            r#""a \"b\" \$c \`d\` \\e 100%""#
        );
        assert_eq!(quote("it's"), "\"it's\"");
    }

    #[test]
    fn parse_inverts_quote() {
        let tricky = r#"echo "a b" '$HOME' \\ `x` 100% \n"#;
        let text = format!("# c\n\nA={}\nB=plain\nC='single $x'\n", quote(tricky));
        let vars = parse(&text);
        assert_eq!(vars["A"], tricky);
        assert_eq!(vars["B"], "plain");
        assert_eq!(vars["C"], "single $x");
    }

    /// The sandbox test hands `tests/fixtures/systemd_sandbox/tricky.env` to
    /// systemd and bash; it must hold each value as `quote` writes it.
    #[test]
    fn the_tricky_fixture_is_written_as_quote_writes_it() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/systemd_sandbox"
        );
        let expected: std::collections::BTreeMap<String, String> = serde_json::from_str(
            &std::fs::read_to_string(format!("{dir}/expected-values.json")).unwrap(),
        )
        .unwrap();
        let env_file = std::fs::read_to_string(format!("{dir}/tricky.env")).unwrap();
        for (key, value) in &expected {
            let line = format!("{key}={}\n", quote(value));
            assert!(
                env_file.contains(&line),
                "tricky.env must hold {key} as {line}"
            );
        }
    }
}
