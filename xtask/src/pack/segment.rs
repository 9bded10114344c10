//! One `/`-separated segment of a glob pattern, as minimatch compiles it:
//! `**` (only when it is the whole segment), a literal, or a glob of `*`,
//! `?`, `[...]` classes and `\` escapes; and how a segment matches one
//! path segment (`*` alone needs a character; `.` and `..` only match
//! themselves; with `nocase`, letters match either case).

/// One `/`-separated part of a pattern.
#[derive(Debug)]
pub(crate) struct Segment(Kind);

#[derive(Debug)]
enum Kind {
    Literal(String),
    Glob(Vec<Token>),
    GlobStar,
}

#[derive(Debug)]
enum Token {
    Char(char),
    AnyChar,
    Star,
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
    },
    /// An empty class: matches nothing, and poisons the rest of the segment.
    Never,
}

impl Segment {
    /// Parses one segment, or names the syntax that is not supported.
    pub(crate) fn parse(glob: &str) -> Result<Segment, &'static str> {
        parse_segment(glob).map(Segment)
    }

    pub(crate) fn is_globstar(&self) -> bool {
        matches!(self.0, Kind::GlobStar)
    }

    /// Whether one path segment matches (minimatch's per-segment regex).
    pub(crate) fn matches(&self, file: &str, nocase: bool) -> bool {
        match &self.0 {
            Kind::GlobStar => false,
            Kind::Literal(literal) if nocase => eq_nocase(file, literal),
            Kind::Literal(literal) => file == literal,
            // `*`, `?` and classes never match `.` or `..` as a whole segment.
            Kind::Glob(_) if file == "." || file == ".." => false,
            Kind::Glob(tokens) => {
                let only_stars = tokens.iter().all(|t| matches!(t, Token::Star));
                let chars: Vec<char> = file.chars().collect();
                (!only_stars || !chars.is_empty()) && match_tokens(&chars, tokens, nocase)
            }
        }
    }
}

fn parse_segment(glob: &str) -> Result<Kind, &'static str> {
    if glob == "**" {
        return Ok(Kind::GlobStar);
    }
    let chars: Vec<char> = glob.chars().collect();
    let mut tokens = Vec::new();
    let mut magic = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if "!?+*@".contains(c) && chars.get(i + 1) == Some(&'(') {
            return Err("an extglob");
        }
        match c {
            '*' => {
                magic = true;
                if !matches!(tokens.last(), Some(Token::Star)) {
                    tokens.push(Token::Star);
                }
            }
            '?' => {
                magic = true;
                tokens.push(Token::AnyChar);
            }
            '\\' if i + 1 < chars.len() => {
                i += 1;
                tokens.push(Token::Char(chars[i]));
            }
            '[' => match parse_class(&chars, i)? {
                Some((token, consumed)) => {
                    magic |= !matches!(token, Token::Char(_));
                    tokens.push(token);
                    i += consumed;
                    continue;
                }
                None => tokens.push(Token::Char('[')),
            },
            _ => tokens.push(Token::Char(c)),
        }
        i += 1;
    }
    if magic {
        Ok(Kind::Glob(tokens))
    } else {
        let literal = tokens
            .iter()
            .map(|t| match t {
                Token::Char(c) => *c,
                _ => unreachable!("a segment without magic holds only characters"),
            })
            .collect();
        Ok(Kind::Literal(literal))
    }
}

/// minimatch's `parseClass` at `chars[start] == '['`: the token and the
/// characters it used, or `None` when the class never closes (then `[` is
/// an ordinary character).
fn parse_class(chars: &[char], start: usize) -> Result<Option<(Token, usize)>, &'static str> {
    let mut i = start + 1;
    let mut negate = false;
    let mut saw_start = false;
    let mut escaping = false;
    let mut range_start: Option<char> = None;
    let mut ranges = Vec::new();
    let mut end = None;
    while i < chars.len() {
        let c = chars[i];
        if (c == '!' || c == '^') && i == start + 1 {
            negate = true;
            i += 1;
            continue;
        }
        if c == ']' && saw_start && !escaping {
            end = Some(i + 1);
            break;
        }
        saw_start = true;
        if c == '\\' && !escaping {
            escaping = true;
            i += 1;
            continue;
        }
        if c == '[' && !escaping && chars.get(i + 1) == Some(&':') {
            return Err("a POSIX character class");
        }
        escaping = false;
        if let Some(low) = range_start.take() {
            if c >= low {
                ranges.push((low, c));
            }
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2) == Some(&']') {
            ranges.push((c, c));
            ranges.push(('-', '-'));
            i += 2;
            continue;
        }
        if chars.get(i + 1) == Some(&'-') {
            range_start = Some(c);
            i += 2;
            continue;
        }
        ranges.push((c, c));
        i += 1;
    }
    let Some(end) = end else {
        return Ok(None);
    };
    if ranges.is_empty() {
        return Ok(Some((Token::Never, chars.len() - start)));
    }
    if !negate && ranges.len() == 1 && ranges[0].0 == ranges[0].1 {
        return Ok(Some((Token::Char(ranges[0].0), end - start)));
    }
    Ok(Some((Token::Class { negate, ranges }, end - start)))
}

/// Wildcard matching with backtracking to the last `*`.
fn match_tokens(chars: &[char], tokens: &[Token], nocase: bool) -> bool {
    let (mut ci, mut ti) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while ci < chars.len() {
        match tokens.get(ti) {
            Some(Token::Star) => {
                resume = Some((ti, ci));
                ti += 1;
                continue;
            }
            Some(token) if match_token(chars[ci], token, nocase) => {
                ci += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match resume {
            Some((star, from)) => {
                resume = Some((star, from + 1));
                ti = star + 1;
                ci = from + 1;
            }
            None => return false,
        }
    }
    tokens[ti..].iter().all(|t| matches!(t, Token::Star))
}

fn match_token(c: char, token: &Token, nocase: bool) -> bool {
    match token {
        Token::Char(expected) if nocase => eq_nocase_char(c, *expected),
        Token::Char(expected) => c == *expected,
        Token::AnyChar => true,
        Token::Class { negate, ranges } => {
            let hit = |c: char| ranges.iter().any(|&(low, high)| low <= c && c <= high);
            let found = if nocase {
                hit(c) || c.to_lowercase().any(hit) || c.to_uppercase().any(hit)
            } else {
                hit(c)
            };
            found != *negate
        }
        Token::Star | Token::Never => false,
    }
}

fn eq_nocase(a: &str, b: &str) -> bool {
    a.chars().count() == b.chars().count()
        && a.chars().zip(b.chars()).all(|(x, y)| eq_nocase_char(x, y))
}

fn eq_nocase_char(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}
