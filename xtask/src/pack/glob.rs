//! The glob patterns of `.npmignore`, `package.json` `files` and npm's own
//! rules, matched as npm matches them: a port of the part of minimatch 10
//! that npm-packlist uses (`!` negation, `{a,b}` braces, `**`, `*`, `?`,
//! `[...]` classes, `\` escapes, `matchBase`, `nocase`, `dot`, and the
//! `partial` mode that decides whether a directory may hold a match).
//!
//! Syntax npm would accept but this port does not (extglobs such as `+(a|b)`,
//! POSIX classes such as `[[:alpha:]]`, brace sequences such as `{1..3}`) is
//! an error, never a silent mismatch with npm.

use super::segment::Segment;

/// How a pattern compares paths (minimatch's options of the same names;
/// `dot` is always on, as in every caller npm has here).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatchOptions {
    /// A pattern without `/` is compared with the path's last segment only.
    pub(crate) match_base: bool,
    /// Letters compare case-insensitively.
    pub(crate) nocase: bool,
}

/// npm's ignore-file options (ignore-walk: `matchBase`, `dot`, `nocase`).
pub(crate) const IGNORE_RULES: MatchOptions = MatchOptions {
    match_base: true,
    nocase: true,
};

/// Plain path globs (the pack manifest's allow-list).
pub(crate) const PATH_GLOBS: MatchOptions = MatchOptions {
    match_base: false,
    nocase: false,
};

#[derive(Debug, thiserror::Error)]
#[error("pattern `{pattern}`: {what} is not supported by xtask pack")]
pub(crate) struct UnsupportedPattern {
    pattern: String,
    what: &'static str,
}

/// One compiled pattern (one line of an ignore file).
#[derive(Debug)]
pub(crate) struct Pattern {
    negate: bool,
    options: MatchOptions,
    /// One segment list per brace alternative, as minimatch's `set`.
    set: Vec<Vec<Segment>>,
    /// The same alternatives as strings, as minimatch's `globParts`.
    glob_parts: Vec<Vec<String>>,
}

impl Pattern {
    pub(crate) fn new(source: &str, options: MatchOptions) -> Result<Pattern, UnsupportedPattern> {
        let unsupported = |what| UnsupportedPattern {
            pattern: source.to_owned(),
            what,
        };
        let bangs = source.chars().take_while(|&c| c == '!').count();
        let body = &source[bangs..];
        let mut glob_parts = Vec::new();
        for alternative in super::brace::expand(body).map_err(unsupported)? {
            let parts = optimize(collapse_split(&alternative));
            if !glob_parts.contains(&parts) {
                glob_parts.push(parts);
            }
        }
        let set = glob_parts
            .iter()
            .map(|parts| parts.iter().map(|part| Segment::parse(part)).collect())
            .collect::<Result<_, _>>()
            .map_err(unsupported)?;
        Ok(Pattern {
            negate: bangs % 2 == 1,
            options,
            set,
            glob_parts,
        })
    }

    /// Whether the pattern started with (an odd number of) `!`.
    pub(crate) fn negate(&self) -> bool {
        self.negate
    }

    /// ignore-walk's test for a rule that may match a bare basename: one
    /// segment, or one segment and a trailing `/`.
    pub(crate) fn is_relative(&self) -> bool {
        self.glob_parts.iter().any(|part| match part.last() {
            Some(last) if !last.is_empty() => part.len() <= 1,
            _ => part.len() <= 2,
        })
    }

    /// minimatch's `match(path, partial)` with `flipNegate`: whether the
    /// pattern (without its `!`) matches. With `partial`, a path that is a
    /// prefix of a possible match also matches.
    pub(crate) fn matches(&self, path: &str, partial: bool) -> bool {
        if path == "/" && partial {
            return true;
        }
        let segments: Vec<&str> = collapse_split(path);
        let basename = segments
            .iter()
            .rev()
            .find(|s| !s.is_empty())
            .copied()
            .unwrap_or("");
        self.set.iter().any(|pattern| {
            let base = [basename];
            let file: &[&str] = if self.options.match_base && pattern.len() == 1 {
                &base
            } else {
                &segments
            };
            let matcher = Matcher {
                nocase: self.options.nocase,
                partial,
            };
            if pattern.iter().any(Segment::is_globstar) {
                matcher.globstar(file, pattern)
            } else {
                matcher.plain(file, pattern, 0, 0)
            }
        })
    }
}

/// `p.split(/\/+/)`: runs of slashes count as one.
fn collapse_split(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    loop {
        match rest.find('/') {
            Some(i) => {
                out.push(&rest[..i]);
                rest = rest[i..].trim_start_matches('/');
            }
            None => {
                out.push(rest);
                return out;
            }
        }
    }
}

/// minimatch's level-one optimisation: adjacent `**` collapse and `x/..` cancels.
fn optimize(parts: Vec<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in parts {
        let prev = out.last().map(String::as_str);
        if part == "**" && prev == Some("**") {
            continue;
        }
        if part == ".." && matches!(prev, Some(p) if p != ".." && p != "." && p != "**") {
            out.pop();
            continue;
        }
        out.push(part.to_owned());
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

struct Matcher {
    nocase: bool,
    partial: bool,
}

/// The fixed inputs of one `**` body walk.
struct BodyWalk<'a> {
    file: &'a [&'a str],
    sections: &'a [&'a [Segment]],
    latest: &'a [isize],
}

fn is_dots(segment: &str) -> bool {
    segment == "." || segment == ".."
}

impl Matcher {
    /// minimatch's `#matchOne` (no `**` in `pattern[pi..]`).
    fn plain(&self, file: &[&str], pattern: &[Segment], fi: usize, pi: usize) -> bool {
        let (mut fi, mut pi) = (fi, pi);
        while fi < file.len() && pi < pattern.len() {
            if !pattern[pi].matches(file[fi], self.nocase) {
                return false;
            }
            fi += 1;
            pi += 1;
        }
        if fi == file.len() && pi == pattern.len() {
            true
        } else if fi == file.len() {
            self.partial
        } else {
            // `a/*` matches `a/b/`: only a trailing empty segment may be left.
            fi == file.len() - 1 && file[fi].is_empty()
        }
    }

    /// minimatch's `#matchGlobstar`: head, `**`-separated body sections, tail.
    fn globstar(&self, file: &[&str], pattern: &[Segment]) -> bool {
        let is_gs = Segment::is_globstar;
        let first = pattern.iter().position(is_gs).expect("pattern has **");
        let last = pattern.iter().rposition(is_gs).expect("pattern has **");
        let head = &pattern[..first];
        let (body, tail) = if self.partial {
            (&pattern[first + 1..], &pattern[..0])
        } else {
            // One `**` leaves an empty body (JavaScript's slice(first + 1, last)).
            (
                pattern.get(first + 1..last).unwrap_or_default(),
                &pattern[last + 1..],
            )
        };
        let mut fi = 0;
        if !head.is_empty() {
            if !self.plain(&file[..head.len().min(file.len())], head, 0, 0) {
                return false;
            }
            fi = head.len();
        }
        let mut tail_match = 0;
        if !tail.is_empty() {
            if tail.len() + fi > file.len() {
                return false;
            }
            let tail_start = file.len() - tail.len();
            if self.plain(file, tail, tail_start, 0) {
                tail_match = tail.len();
            } else {
                // `a/**/*` matches `a/b/`: retry without the trailing ``.
                if !file[file.len() - 1].is_empty() || fi + tail.len() == file.len() {
                    return false;
                }
                if !self.plain(file, tail, tail_start - 1, 0) {
                    return false;
                }
                tail_match = tail.len() + 1;
            }
        }
        if body.is_empty() {
            let rest = file.get(fi..file.len() - tail_match).unwrap_or_default();
            if rest.iter().any(|f| is_dots(f)) {
                return false;
            }
            return self.partial || tail_match > 0 || !rest.is_empty();
        }
        // minimatch's bookkeeping, kept as is: for each section, the last
        // file index at which it is tried.
        let sections: Vec<&[Segment]> = body.split(is_gs).collect();
        let mut sums = vec![0];
        for section in &sections[..sections.len() - 1] {
            sums.push(sums.last().copied().unwrap_or(0) + section.len());
        }
        let file_len = (file.len() - tail_match) as isize;
        let latest: Vec<isize> = sections
            .iter()
            .enumerate()
            .map(|(j, section)| file_len - (sums[sections.len() - 1 - j] + section.len()) as isize)
            .collect();
        let walk = BodyWalk {
            file,
            sections: &sections,
            latest: &latest,
        };
        self.body_sections(&walk, fi, 0, 0, tail_match > 0) == Some(true)
    }

    /// minimatch's `#matchGlobStarBodySections`: `Some(false)` is "no",
    /// `None` is "no, and stop trying".
    fn body_sections(
        &self,
        walk: &BodyWalk,
        mut fi: usize,
        index: usize,
        depth: usize,
        saw_tail: bool,
    ) -> Option<bool> {
        const MAX_GLOBSTAR_RECURSION: usize = 200;
        let file = walk.file;
        let Some(body) = walk.sections.get(index) else {
            let rest = file.get(fi..).unwrap_or_default();
            if rest.iter().any(|f| is_dots(f)) {
                return Some(false);
            }
            return Some(saw_tail || !rest.is_empty());
        };
        while fi as isize <= walk.latest[index] {
            let end = (fi + body.len()).min(file.len());
            if self.plain(&file[..end], body, fi, 0) && depth < MAX_GLOBSTAR_RECURSION {
                let sub = self.body_sections(walk, fi + body.len(), index + 1, depth + 1, saw_tail);
                if sub != Some(false) {
                    return sub;
                }
            }
            if file.get(fi).is_some_and(|f| is_dots(f)) {
                return Some(false);
            }
            fi += 1;
        }
        if self.partial {
            Some(true)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern, IGNORE_RULES)
            .unwrap()
            .matches(path, false)
    }

    fn partial(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern, IGNORE_RULES)
            .unwrap()
            .matches(path, true)
    }

    #[test]
    fn match_base_compares_the_last_segment() {
        assert!(hit("*.orig", "lib/deep/x.orig"));
        assert!(hit(".DS_Store", "/a/.DS_Store"));
        assert!(!hit("/build/config.gypi", "/lib/build/config.gypi"));
        assert!(hit("/build/config.gypi", "/build/config.gypi"));
    }

    #[test]
    fn readme_rule_with_braces_and_classes() {
        let readme = "/readme{,.*[^~$]}";
        assert!(hit(readme, "/README"));
        assert!(hit(readme, "/Readme.md"));
        assert!(!hit(readme, "/README.md~"));
        assert!(!hit(readme, "/docs/README.md"));
    }

    #[test]
    fn globstar_and_partial_directory_matches() {
        assert!(hit("docs/**/*.md", "docs/a/b/c.md"));
        assert!(hit("docs/**/*.md", "docs/c.md"));
        assert!(!hit("docs/**/*.md", "docs/c.txt"));
        assert!(partial("docs/**/*.md", "docs/a"));
        assert!(!partial("docs/**/*.md", "lib"));
        assert!(hit("lib/**", "lib/x/y"));
        assert!(!hit("lib/**", "lib"));
        assert!(hit("lib/**", "lib/"));
    }

    #[test]
    fn a_lone_star_needs_a_character() {
        assert!(hit("*", "x"));
        assert!(!Pattern::new("a/*", PATH_GLOBS)
            .unwrap()
            .matches("a/", false));
        assert!(Pattern::new("a/*", PATH_GLOBS)
            .unwrap()
            .matches("a/b/", false));
    }

    #[test]
    fn negation_and_relative_rules() {
        let rule = Pattern::new("!!keep", IGNORE_RULES).unwrap();
        assert!(!rule.negate());
        assert!(Pattern::new("!fixtures/", IGNORE_RULES).unwrap().negate());
        assert!(Pattern::new("fixtures/", IGNORE_RULES)
            .unwrap()
            .is_relative());
        assert!(!Pattern::new("a/b", IGNORE_RULES).unwrap().is_relative());
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        assert!(Pattern::new("+(a|b)", IGNORE_RULES).is_err());
        assert!(Pattern::new("[[:alpha:]]", IGNORE_RULES).is_err());
        assert!(Pattern::new("{1..3}", IGNORE_RULES).is_err());
    }
}
