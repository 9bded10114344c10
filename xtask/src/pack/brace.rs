//! Brace expansion for glob patterns, as minimatch does it before matching
//! (the brace-expansion package): `a{b,c{d,e}}f` is `abf`, `acdf`, `acef`;
//! a group without a comma stays literal; `\{`, `\}` and `\,` are literal;
//! empty results at the top level are dropped. Sequences (`{1..3}`) are
//! refused rather than approximated.

/// The alternatives of `pattern`, or what it uses that is not supported.
pub(crate) fn expand(pattern: &str) -> Result<Vec<String>, &'static str> {
    if !has_group(pattern) {
        return Ok(vec![pattern.to_owned()]);
    }
    // A leading `{}` is literal (bash does it, so brace-expansion does).
    let chars: Vec<char> = match pattern.strip_prefix("{}") {
        Some(rest) => "\\{\\}".chars().chain(rest.chars()).collect(),
        None => pattern.chars().collect(),
    };
    let expanded = expand_chars(&chars)?;
    Ok(expanded
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| unescape_braces(&s))
        .collect())
}

/// minimatch only expands when some `{` is followed by a `}` with no `{` between.
fn has_group(pattern: &str) -> bool {
    pattern
        .split('{')
        .skip(1)
        .any(|after_open| after_open.contains('}'))
}

fn expand_chars(chars: &[char]) -> Result<Vec<String>, &'static str> {
    let Some((open, close)) = first_group(chars) else {
        return Ok(vec![chars.iter().collect()]);
    };
    let pre: String = chars[..open].iter().collect();
    let body = &chars[open + 1..close];
    let posts = expand_chars(&chars[close + 1..])?;
    let options = split_top_level_commas(body);
    let members = if options.len() > 1 {
        let mut members = Vec::new();
        for option in options {
            members.extend(expand_chars(option)?);
        }
        members
    } else if body.windows(2).any(|w| w == ['.', '.']) && is_sequence(body) {
        return Err("a brace sequence");
    } else {
        // No comma: the group is literal, but groups inside it still expand.
        expand_chars(body)?
            .into_iter()
            .map(|inner| format!("{{{inner}}}"))
            .collect()
    };
    let pre = pre.as_str();
    Ok(members
        .iter()
        .flat_map(|member| posts.iter().map(move |post| format!("{pre}{member}{post}")))
        .collect())
}

fn is_sequence(body: &[char]) -> bool {
    let body: String = body.iter().collect();
    let parts: Vec<&str> = body.split("..").collect();
    let number = |s: &str| s.strip_prefix('-').unwrap_or(s).parse::<u64>().is_ok();
    let letter = |s: &str| s.len() == 1 && s.chars().all(|c| c.is_ascii_alphabetic());
    (parts.len() == 2 || parts.len() == 3)
        && (parts[..2].iter().all(|p| number(p)) || parts[..2].iter().all(|p| letter(p)))
        && parts.get(2).is_none_or(|step| number(step))
}

/// The first `{` (not escaped) and its matching `}`.
fn first_group(chars: &[char]) -> Option<(usize, usize)> {
    let mut opens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '{' => opens.push(i),
            '}' => {
                if let Some(open) = opens.pop() {
                    if opens.is_empty() {
                        return Some((open, i));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn split_top_level_commas(body: &[char]) -> Vec<&[char]> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut i) = (0usize, 0, 0);
    while i < body.len() {
        match body[i] {
            '\\' => i += 1,
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&body[start..]);
    parts
}

/// brace-expansion removes the backslash from `\{`, `\}`, `\,` and `\.`,
/// and turns `\\` into `\`.
fn unescape_braces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&next)) if "{},.\\".contains(next) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn comma_groups_expand_and_nest() {
        assert_eq!(expand("a{b,c{d,e}}f").unwrap(), ["abf", "acdf", "acef"]);
        assert_eq!(expand("readme{,.*}").unwrap(), ["readme", "readme.*"]);
        assert_eq!(expand("{,x}").unwrap(), ["x"]);
    }

    #[test]
    fn groups_without_commas_stay_literal() {
        assert_eq!(expand("a{b}c").unwrap(), ["a{b}c"]);
        assert_eq!(expand("{}x").unwrap(), ["{}x"]);
        assert_eq!(expand("a\\{b,c}").unwrap(), ["a{b,c}"]);
    }

    #[test]
    fn sequences_are_refused() {
        assert!(expand("{1..3}").is_err());
        assert!(expand("{a..c}").is_err());
    }
}
