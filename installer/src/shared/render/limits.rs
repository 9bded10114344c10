//! What keeps a template from exhausting memory or time.
//!
//! A `--bundle` is read from a directory the operator names, so its
//! templates are not ours; one that expanded to 100 GB ran the machine out
//! of memory. Fuel alone (minijinja's instruction budget) cannot prevent
//! that: `{% set s = s ~ s %}` doubles a string in one instruction, so
//! thirty of them reach gigabytes. Four limits together bound every render:
//!
//! - **The template language**: only constructs that cannot build a value
//!   larger than their inputs run: values, attributes and items, the
//!   bundle's filters, comparisons, `if`, `for`, `set x = …` and `with`.
//!   Concatenation (`~`), arithmetic, slices and map literals are refused
//!   from the template's tokens ([`refused_syntax`]) before it is compiled,
//!   since minijinja folds constant operands while compiling
//!   (`'x' * 99999999` is 100 MB before anything runs); captured blocks,
//!   macros, calls and include/import/extends from its compiled
//!   instructions ([`refused_construct`]). Both name the line.
//! - **Fuel**: all templates of one render together run at most
//!   [`TEMPLATE_FUEL`] instructions, which bounds loops over loops.
//! - **Output**: a rendered file may hold at most [`MAX_RENDERED_FILE`]
//!   bytes and all of them [`MAX_RENDERED_TOTAL`]; writing stops at the
//!   limit instead of growing a buffer.
//! - **Filters**: each takes at most [`MAX_RENDERED_FILE`] bytes, so a
//!   chain (`x|shell_quote|shell_quote|…`, each up to four times its
//!   input) stops within a few MiB, and together they may produce at most
//!   [`MAX_RENDERED_TOTAL`] bytes in one render (values kept in a list
//!   literal are never written out, so the output limits do not see them).
//!
//! The embedded templates live by the same rules, which proves them enough.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use minijinja::machinery::{
    get_compiled_template, tokenize, Instruction, Instructions, Token, WhitespaceConfig,
};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Error, ErrorKind, Template};

/// Largest rendered file (1 MiB).
pub(crate) const MAX_RENDERED_FILE: usize = 1 << 20;
/// Largest sum of all rendered files, and of all filter output (64 MiB).
pub(crate) const MAX_RENDERED_TOTAL: usize = 64 << 20;
/// Template instructions one render may run in all its templates.
pub(crate) const TEMPLATE_FUEL: u64 = 10_000_000;

/// The constructs a bundle template may use, for the refusal message.
const ALLOWED: &str = "values, attributes, the env_quote and shell_quote filters, comparisons, \
                       if, for, set and with";

fn refused(line: Option<usize>, what: &str) -> (Option<usize>, String) {
    (
        line,
        format!(
            "uses {what}, which a bundle template may not: it can build values larger than its \
             inputs (allowed: {ALLOWED})"
        ),
    )
}

/// Why `source` may not even be compiled, with the line of the first
/// operator the template language does not have. A source the tokenizer
/// rejects is left to the compiler, which reports the syntax error.
pub(crate) fn refused_syntax(source: &str) -> Option<(Option<usize>, String)> {
    let whitespace = WhitespaceConfig {
        keep_trailing_newline: true,
        ..WhitespaceConfig::default()
    };
    // A unit struct today; one with fields under minijinja's custom_syntax.
    #[allow(clippy::default_constructed_unit_structs)]
    let syntax = SyntaxConfig::default();
    for token in tokenize(source, false, syntax, whitespace) {
        let (token, span) = token.ok()?;
        let what = match token {
            Token::Tilde => "`~` (string concatenation)",
            Token::Plus | Token::Mul | Token::Div | Token::FloorDiv | Token::Pow | Token::Mod => {
                "arithmetic (+ * / // % **)"
            }
            Token::Colon | Token::BraceOpen => "a slice ([a:b]) or a map literal ({k: v})",
            _ => continue,
        };
        return Some(refused(Some(span.start_line as usize), what));
    }
    None
}

/// Why `template` may not run, with the line of the first construct the
/// bundle's template language does not have.
pub(crate) fn refused_construct(template: &Template<'_, '_>) -> Option<(Option<usize>, String)> {
    let compiled = get_compiled_template(template);
    std::iter::once(&compiled.instructions)
        .chain(compiled.blocks.values())
        .find_map(first_refused)
}

fn first_refused(instructions: &Instructions<'_>) -> Option<(Option<usize>, String)> {
    (0..instructions.len() as u32).find_map(|index| {
        let what = refusal(instructions.get(index)?)?;
        Some(refused(instructions.get_line(index), what))
    })
}

/// What an instruction does that the template language refuses, if it does.
fn refusal(instruction: &Instruction<'_>) -> Option<&'static str> {
    use Instruction::*;
    match instruction {
        EmitRaw(_)
        | Emit
        | StoreLocal(_)
        | Lookup(_)
        | GetAttr(_)
        | GetItem
        | LoadConst(_)
        | BuildMap(_)
        | BuildKwargs(_)
        | MergeKwargs(_)
        | BuildList(_)
        | UnpackList(_)
        | UnpackLists(_)
        | Neg
        | Not
        | Eq
        | Ne
        | Gt
        | Gte
        | Lt
        | Lte
        | In
        | CompareAndPreserve(_)
        | ApplyFilter(..)
        | PerformTest(..)
        | PushLoop(_)
        | Iterate(_)
        | PushDidNotIterate
        | PushWith
        | PopFrame
        | PopLoopFrame
        | Jump(_)
        | JumpIfFalse(_)
        | JumpIfFalseOrPop(_)
        | JumpIfTrueOrPop(_)
        | PushAutoEscape
        | PopAutoEscape
        | DupTop
        | DiscardTop
        | Swap => None,
        StringConcat => Some("`~` (string concatenation)"),
        Add | Sub | Mul | Div | IntDiv | Rem | Pow => Some("arithmetic (+ - * / // % **)"),
        Slice => Some("a slice ([a:b])"),
        BeginCapture(_) | EndCapture => {
            Some("a captured block ({% set %}…{% endset %}, {% filter %})")
        }
        BuildMacro(..) | Return | IsUndefined | Enclose(_) | GetClosure => Some("a macro"),
        CallFunction(..) | CallMethod(..) | CallObject(_) | FastRecurse => Some("a call"),
        _ => Some("include, import, extends or blocks"),
    }
}

/// Output that holds at most `limit` bytes; a write past it fails, and
/// `overflowed` says that was the reason.
pub(crate) struct CappedOutput {
    pub(crate) bytes: Vec<u8>,
    limit: usize,
    pub(crate) overflowed: bool,
}

impl CappedOutput {
    pub(crate) fn new(limit: usize) -> CappedOutput {
        CappedOutput {
            bytes: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("rendered-size limit reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the filters of one render may still produce, shared by them all.
#[derive(Clone)]
pub(crate) struct FilterBudget(Arc<AtomicUsize>);

impl FilterBudget {
    pub(crate) fn new() -> FilterBudget {
        FilterBudget(Arc::new(AtomicUsize::new(MAX_RENDERED_TOTAL)))
    }

    /// `filter` applied to `input`, if the input is small enough and the
    /// budget still holds the output.
    pub(crate) fn apply(
        &self,
        input: &str,
        filter: impl Fn(&str) -> String,
    ) -> Result<String, Error> {
        if input.len() > MAX_RENDERED_FILE {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "a filter was given {} bytes; a filtered value may be at most \
                     {MAX_RENDERED_FILE} bytes (1 MiB)",
                    input.len()
                ),
            ));
        }
        let output = filter(input);
        let taken = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(output.len())
            });
        match taken {
            Ok(_) => Ok(output),
            Err(_) => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "the filters produced more than {MAX_RENDERED_TOTAL} bytes (64 MiB), the \
                     limit for one render"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    fn check(source: &str) -> Option<(Option<usize>, String)> {
        refused_syntax(source).or_else(|| {
            let mut env = Environment::empty();
            env.add_filter("shell_quote", |v: String| v);
            let template = env.template_from_str(source).unwrap();
            refused_construct(&template)
        })
    }

    #[test]
    fn plain_templates_pass() {
        for source in [
            "x={{ a }} {{ a.b }} {{ a[0] }} {{ a | shell_quote }}\n",
            "{% if a and not b or c == 1 and d in e %}y{% elif f < 2 %}z{% endif %}",
            "{% for x in xs %}{{ loop.index }}{{ x }}{% else %}none{% endfor %}",
            "{% set x = a %}{% with y = x %}{{ y }}{% endwith %}{{ -1 }}",
            "{%- if a -%}{{ [1, 2] }}{{ a[0] }}{{ 'a:b ~ c' }}{%- endif %}",
        ] {
            assert_eq!(check(source), None, "{source}");
        }
    }

    #[test]
    fn growing_constructs_are_refused_with_their_line() {
        let cases = [
            ("{% set s = 'x' %}\n{% set s = s ~ s %}", "`~`"),
            ("{{ 'x' * 100000000 }}", "arithmetic"),
            ("{{ a + a }}", "arithmetic"),
            ("{{ a[1:] }}", "a slice"),
            ("{{ {'k': a} }}", "a map literal"),
            ("{{ 'a' ~ 'b' }}", "`~`"),
            ("{% set s %}{{ a }}{{ a }}{% endset %}", "a captured block"),
            (
                "{% filter shell_quote %}{{ a }}{% endfilter %}",
                "a captured block",
            ),
            ("{% macro m(x) %}{{ x }}{% endmacro %}{{ m(a) }}", "a macro"),
            ("{{ range(10) }}", "a call"),
            ("{{ a.replace('x', 'yy') }}", "a call"),
            ("{% include 'other' %}", "include"),
            ("{% block b %}{{ a }}{% endblock %}", "include"),
        ];
        for (source, what) in cases {
            let Some((_, why)) = check(source) else {
                panic!("{source} was allowed");
            };
            assert!(why.contains(what), "{source}: {why}");
        }
        assert_eq!(check("ok\n\n{{ a ~ a }}").unwrap().0, Some(3));
        let captured = "ok\n{% set s %}\n{{ a }}{% endset %}";
        assert_eq!(check(captured).unwrap().0, Some(2));
    }

    #[test]
    fn capped_output_stops_at_its_limit() {
        use std::io::Write;
        let mut out = CappedOutput::new(4);
        assert!(out.write_all(b"abc").is_ok());
        assert!(out.write_all(b"de").is_err());
        assert!(out.overflowed);
        assert_eq!(out.bytes, b"abc");
    }

    #[test]
    fn the_filter_budget_is_shared_and_runs_out() {
        let budget = FilterBudget::new();
        let other = budget.clone();
        let megabyte = "x".repeat(MAX_RENDERED_FILE);
        for _ in 0..MAX_RENDERED_TOTAL / MAX_RENDERED_FILE - 1 {
            assert!(budget.apply(&megabyte, str::to_owned).is_ok());
        }
        assert!(other.apply(&megabyte[1..], str::to_owned).is_ok());
        assert!(other.apply("y", str::to_owned).is_ok());
        let err = budget.apply("z", str::to_owned).unwrap_err();
        assert!(
            err.to_string().contains("more than 67108864 bytes"),
            "{err}"
        );
        let err = other
            .apply(&format!("{megabyte}x"), str::to_owned)
            .unwrap_err();
        assert!(
            err.to_string().contains("a filter was given 1048577 bytes"),
            "{err}"
        );
    }
}
