//! Finding YAML tags (`!include`, `!!binary`, `!<tag:…>`) in a roster.
//!
//! serde_yaml_ng drops most tags while deserializing into a struct, so a
//! roster saying `command: !include cmd.txt` would quietly install the
//! command `cmd.txt`. A roster is plain data and has no use for tags; every
//! tag is refused at its position. The scan reads the event stream of
//! libyaml (`unsafe-libyaml`), the very parser serde_yaml_ng runs, so it
//! sees exactly the nodes the loader sees; text libyaml cannot parse is left
//! to the loader, which reports the syntax error.

use std::ffi::CStr;
use std::mem::MaybeUninit;

/// A tag written in the roster, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundTag {
    /// The tag as libyaml resolved it (`!include`, `tag:yaml.org,2002:binary`).
    pub(crate) tag: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// The libyaml parser, initialised on the heap (it must not move while it
/// reads `input`) and deleted on drop.
struct Parser<'input> {
    parser: Box<MaybeUninit<unsafe_libyaml::yaml_parser_t>>,
    _input: &'input [u8],
}

impl<'input> Parser<'input> {
    fn new(input: &'input [u8]) -> Option<Parser<'input>> {
        let mut parser = Box::new(MaybeUninit::<unsafe_libyaml::yaml_parser_t>::uninit());
        // SAFETY: the pointer is to writable, heap-allocated parser storage;
        // initialisation either succeeds or leaves nothing to free.
        let ready = unsafe { unsafe_libyaml::yaml_parser_initialize(parser.as_mut_ptr()).ok };
        if !ready {
            return None;
        }
        // SAFETY: the parser is initialised; `input` outlives it (the
        // lifetime ties them) and is not written while it is read.
        unsafe {
            unsafe_libyaml::yaml_parser_set_encoding(
                parser.as_mut_ptr(),
                unsafe_libyaml::YAML_UTF8_ENCODING,
            );
            unsafe_libyaml::yaml_parser_set_input_string(
                parser.as_mut_ptr(),
                input.as_ptr(),
                input.len() as u64,
            );
        }
        Some(Parser {
            parser,
            _input: input,
        })
    }

    /// The next event's tag (if it has one) and whether the stream ended;
    /// None when libyaml cannot parse on.
    fn next(&mut self) -> Option<(Option<FoundTag>, bool)> {
        let mut event = MaybeUninit::<unsafe_libyaml::yaml_event_t>::uninit();
        // SAFETY: the parser is initialised; on success libyaml has filled
        // `event`, which is read and then deleted exactly once.
        unsafe {
            if !unsafe_libyaml::yaml_parser_parse(self.parser.as_mut_ptr(), event.as_mut_ptr()).ok {
                return None;
            }
            let event = event.as_mut_ptr();
            let tag = match (*event).type_ {
                unsafe_libyaml::YAML_SCALAR_EVENT => (*event).data.scalar.tag,
                unsafe_libyaml::YAML_SEQUENCE_START_EVENT => (*event).data.sequence_start.tag,
                unsafe_libyaml::YAML_MAPPING_START_EVENT => (*event).data.mapping_start.tag,
                _ => std::ptr::null_mut(),
            };
            let found = (!tag.is_null()).then(|| FoundTag {
                tag: CStr::from_ptr(tag.cast()).to_string_lossy().into_owned(),
                line: (*event).start_mark.line as usize + 1,
                column: (*event).start_mark.column as usize + 1,
            });
            let end = (*event).type_ == unsafe_libyaml::YAML_STREAM_END_EVENT;
            unsafe_libyaml::yaml_event_delete(event);
            Some((found, end))
        }
    }
}

impl Drop for Parser<'_> {
    fn drop(&mut self) {
        // SAFETY: the parser was initialised in `new` and is deleted once.
        unsafe { unsafe_libyaml::yaml_parser_delete(self.parser.as_mut_ptr()) }
    }
}

/// A resolved tag the way a roster spells it: `!!binary` for the YAML
/// namespace, `!name` for local tags, `!<uri>` for any other.
pub(crate) fn as_written(tag: &str) -> String {
    if let Some(core) = tag.strip_prefix("tag:yaml.org,2002:") {
        format!("!!{core}")
    } else if tag.starts_with('!') {
        tag.to_owned()
    } else {
        format!("!<{tag}>")
    }
}

/// The first tag in `text`, if any.
pub(crate) fn first_tag(text: &str) -> Option<FoundTag> {
    let mut parser = Parser::new(text.as_bytes())?;
    loop {
        match parser.next()? {
            (Some(found), _) => return Some(found),
            (None, true) => return None,
            (None, false) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_global_tags_are_found_where_they_are() {
        let text = "version: 1\nagents:\n  - name: a\n    command: !include cmd.txt\n";
        assert_eq!(
            first_tag(text),
            Some(FoundTag {
                tag: "!include".into(),
                line: 4,
                column: 14
            })
        );
        let binary = first_tag("a: !!binary aGk=\n").unwrap();
        assert_eq!(binary.tag, "tag:yaml.org,2002:binary");
        let on_mapping = first_tag("tmux: !env\n  socket_name: x\n").unwrap();
        assert_eq!((on_mapping.tag.as_str(), on_mapping.line), ("!env", 1));
        let flow = first_tag("agents: [{name: a, runtime: !<x> claude}]\n").unwrap();
        assert_eq!(flow.tag, "x");
    }

    #[test]
    fn bangs_that_are_not_tags_are_not_tags() {
        for text in [
            "command: echo hi!\n",
            "command: \"!include\"\n",
            "command: '!x'\n",
            "# !include in a comment\na: 1\n",
            "command: |\n  !not a tag\n",
        ] {
            assert_eq!(first_tag(text), None, "{text:?}");
        }
    }

    #[test]
    fn unparsable_text_is_left_to_the_loader() {
        assert_eq!(first_tag("agents: [\n"), None);
    }
}
