//! Text from other members made safe to show: display names cleaned and
//! compared as people see them, and lines stripped of what could make one
//! look like another on a terminal or in a window.

use super::MAX_NAME;

/// A display name as shown: control characters removed, length bounded.
pub fn clean_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .filter(|c| !c.is_control() && !is_format_char(*c))
        .collect();
    if out.len() > MAX_NAME {
        let mut end = MAX_NAME;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    let out = out.trim().to_string();
    if out.is_empty() {
        "(no name)".into()
    } else {
        out
    }
}

/// What two display names are compared by: NFKC, lower case, then the
/// UTS #39 confusable skeleton, so that names that look alike compare equal
/// (`"bob"`, `"Bob"`, `"bоb"` with a Cyrillic `о`, `"ｂｏｂ"` in full width).
pub fn name_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = name.nfkc().collect::<String>().to_lowercase();
    let skeleton: String = unicode_security::skeleton(&folded).collect();
    // Confusable prototypes can be upper case ("l" and "I" look alike).
    skeleton.to_lowercase()
}

/// Invisible formatting characters (bidirectional overrides, zero-width
/// characters, line and paragraph separators, tag characters, blank
/// fillers) that could make one name or line look like another.
pub fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E007F}')
}

/// A remote string made safe to print on a terminal: control and
/// formatting characters become spaces.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (c.is_control() && c != '\t') || is_format_char(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}
