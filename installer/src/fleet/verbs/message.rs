//! What may be typed into an agent's terminal. A message is text, never
//! keystrokes: CRLF and lone CR become LF, and every other control
//! character (C0 but LF and TAB, DEL, C1) is refused, naming the byte
//! offset of the first, unless the sender asks to strip them. ESC matters
//! most: `ESC [ 2 0 1 ~` would end the bracketed paste early and turn the
//! rest of the message into keystrokes (a CR then submits it).

/// A control character found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ControlCharacter {
    /// `ESC (0x1b)`, `U+009B (CSI)`.
    pub(crate) name: String,
    /// Byte offset of the first one in the text as given.
    pub(crate) offset: usize,
    /// How many there are in all.
    pub(crate) count: usize,
}

/// `text` with CRLF and lone CR turned into LF; its first control character
/// (other than LF and TAB) is an error, unless `strip`, which drops them all.
pub(crate) fn clean(text: &str, strip: bool) -> Result<String, ControlCharacter> {
    let mut out = String::with_capacity(text.len());
    let mut first: Option<(usize, char)> = None;
    let mut count = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((offset, c)) = chars.next() {
        match c {
            '\r' => {
                if chars.peek().is_some_and(|(_, next)| *next == '\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {
                count += 1;
                first.get_or_insert((offset, c));
            }
            c => out.push(c),
        }
    }
    match first {
        Some((offset, c)) if !strip => Err(ControlCharacter {
            name: control_name(c),
            offset,
            count,
        }),
        _ => Ok(out),
    }
}

/// The standard name of a control character, with its code.
pub(crate) fn control_name(c: char) -> String {
    const C0: [&str; 32] = [
        "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
        "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB",
        "ESC", "FS", "GS", "RS", "US",
    ];
    const C1: [&str; 32] = [
        "PAD", "HOP", "BPH", "NBH", "IND", "NEL", "SSA", "ESA", "HTS", "HTJ", "VTS", "PLD", "PLU",
        "RI", "SS2", "SS3", "DCS", "PU1", "PU2", "STS", "CCH", "MW", "SPA", "EPA", "SOS", "SGCI",
        "SCI", "CSI", "ST", "OSC", "PM", "APC",
    ];
    let code = u32::from(c);
    match code {
        0..=0x1f => format!("{} (0x{code:02x})", C0[code as usize]),
        0x7f => "DEL (0x7f)".to_owned(),
        0x80..=0x9f => format!("U+{code:04X} ({})", C1[(code - 0x80) as usize]),
        _ => format!("U+{code:04X}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_become_lf() {
        assert_eq!(clean("a\r\nb\rc\n\td", false).unwrap(), "a\nb\nc\n\td");
        assert_eq!(clean("a\r\r\nb", false).unwrap(), "a\n\nb");
    }

    #[test]
    fn every_control_character_is_refused_at_its_byte_offset() {
        for code in (0u32..0x20).chain([0x7f]).chain(0x80..0xa0) {
            let c = char::from_u32(code).unwrap();
            if matches!(c, '\n' | '\t' | '\r') {
                continue;
            }
            let text = format!("é-{c}x{c}");
            let err = clean(&text, false).unwrap_err();
            assert_eq!((err.offset, err.count), (3, 2), "{code:#x}");
            assert_eq!(clean(&text, true).unwrap(), "é-x");
        }
    }

    #[test]
    fn the_paste_end_sequence_is_refused_first_of_all() {
        let err = clean("ok\x1b[201~\rrm -rf ~\r", false).unwrap_err();
        assert_eq!(err.name, "ESC (0x1b)");
        assert_eq!(err.offset, 2);
        assert_eq!(
            clean("ok\x1b[201~\rrm -rf ~\r", true).unwrap(),
            "ok[201~\nrm -rf ~\n"
        );
    }

    #[test]
    fn names() {
        assert_eq!(control_name('\0'), "NUL (0x00)");
        assert_eq!(control_name('\x7f'), "DEL (0x7f)");
        assert_eq!(control_name('\u{9b}'), "U+009B (CSI)");
    }
}
