//! @mentions. A line names a member by key, not by name: the sender's app
//! writes `<@` + the member's fingerprint (64 hex digits) + `>` into the
//! text, inside the sealed message, where the member was picked from the
//! room's list. Readers show it as `@` and the name the admin's signed
//! roster gives that key now, and a line whose tokens name our own key
//! mentions us. So a name changed since, or a look-alike name, cannot
//! redirect a mention; a member who is not in the room shows by the short
//! form of its key. An app that does not know mentions shows the token as
//! written. At most [`MAX_MENTIONS`] keys of a line count.

use crate::Fingerprint;

/// The most mentions one line carries (more tokens show as text).
pub const MAX_MENTIONS: usize = 32;

const OPEN: &str = "<@";
const CLOSE: char = '>';
/// Hex digits of a fingerprint.
const HEX: usize = 64;

/// The token that mentions `fp`.
pub fn token(fp: &Fingerprint) -> String {
    format!("{OPEN}{fp}{CLOSE}")
}

/// The text split at its tokens: plain pieces and mentioned keys, in order
/// (after [`MAX_MENTIONS`] tokens, the rest is plain).
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut found = 0;
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let key = after
            .get(..HEX)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|_| after[HEX..].starts_with(CLOSE))
            .and_then(|h| h.to_ascii_lowercase().parse::<Fingerprint>().ok());
        match key {
            Some(fp) if found < MAX_MENTIONS => {
                out.push(Piece::Plain(&rest[..at]));
                out.push(Piece::Key(fp));
                found += 1;
                rest = &after[HEX + CLOSE.len_utf8()..];
            }
            _ => {
                out.push(Piece::Plain(&rest[..at + OPEN.len()]));
                rest = after;
            }
        }
    }
    out.push(Piece::Plain(rest));
    out
}

enum Piece<'a> {
    Plain(&'a str),
    Key(Fingerprint),
}

/// A line as typed, with `@NAME` turned into members' tokens. `picked`
/// are the names chosen from the room's list, each with the key it was
/// chosen as: where one fits, its key is used (the longest such name).
/// Elsewhere a member's name (`members`: names as the roster shows them,
/// and keys) is used only when it is the only one that fits there, so a
/// member named `bob:` or `bob the` cannot take `@bob: …` or `@bob the …`
/// from bob. A name fits whole only (`@bob` is not `@bobby`), and `@`
/// counts only at the start or after a character that is not a letter, a
/// digit or `_` (not in an e-mail address). What fits nobody stays as
/// typed.
pub fn typed(
    text: &str,
    members: &[(String, Fingerprint)],
    picked: &[(String, Fingerprint)],
) -> String {
    let fits = |after: &str, name: &str| {
        !name.is_empty()
            && after.starts_with(name)
            && after[name.len()..]
                .chars()
                .next()
                .is_none_or(|c| !is_word(c))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut count = 0;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let starts = out.chars().next_back().is_none_or(|c| !is_word(c));
        let hit = if starts && count < MAX_MENTIONS {
            picked
                .iter()
                .filter(|(n, _)| fits(after, n))
                .max_by_key(|(n, _)| n.len())
                .or_else(|| {
                    let mut any = members.iter().filter(|(n, _)| fits(after, n));
                    match (any.next(), any.next()) {
                        (Some(one), None) => Some(one),
                        _ => None,
                    }
                })
        } else {
            None
        };
        match hit {
            Some((name, fp)) => {
                out.push_str(&token(fp));
                count += 1;
                rest = &after[name.len()..];
            }
            None => {
                out.push('@');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A letter, digit or `_`.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The keys `text` mentions, in order, each once.
pub fn mentioned(text: &str) -> Vec<Fingerprint> {
    let mut keys: Vec<Fingerprint> = Vec::new();
    for p in pieces(text) {
        if let Piece::Key(fp) = p {
            if !keys.contains(&fp) {
                keys.push(fp);
            }
        }
    }
    keys
}

/// `text` as shown: each token becomes `@` and the name `name_of` gives
/// its key (the roster's), or `@` and the key's short form.
pub fn shown(text: &str, name_of: impl Fn(&Fingerprint) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for p in pieces(text) {
        match p {
            Piece::Plain(s) => out.push_str(s),
            Piece::Key(fp) => {
                out.push('@');
                match name_of(&fp) {
                    Some(n) => out.push_str(&n),
                    None => out.push_str(&fp.short()),
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys;

    #[test]
    fn a_mention_names_a_key_and_shows_the_rosters_name_for_it() {
        let bob = test_keys::key(2).public().fingerprint();
        let carol = test_keys::key(3).public().fingerprint();
        let text = format!(
            "{} and {}: the build is green {}",
            token(&bob),
            token(&carol),
            token(&bob)
        );
        assert_eq!(mentioned(&text), vec![bob, carol]);
        let names = |fp: &Fingerprint| (*fp == bob).then(|| "bob".to_string());
        assert_eq!(
            shown(&text, names),
            format!("@bob and @{}: the build is green @bob", carol.short())
        );
    }

    #[test]
    fn what_is_not_a_whole_token_is_plain_text() {
        let bob = test_keys::key(2).public().fingerprint();
        let hex = bob.to_string();
        for text in [
            format!("<@{}", hex),          // unclosed
            format!("<@{}>", &hex[..63]),  // short
            format!("<@{}x>", &hex[..63]), // not hex
            format!("<@ {}>", hex),        // space
            "<@<@<@".to_string(),
            "<@é".to_string(),
            String::new(),
        ] {
            assert!(mentioned(&text).is_empty(), "{text}");
            assert_eq!(shown(&text, |_| None), text);
        }
        // Upper-case hex names the same key.
        let upper = format!("<@{}>", hex.to_uppercase());
        assert_eq!(mentioned(&upper), vec![bob]);
    }

    #[test]
    fn a_typed_name_becomes_its_members_key_only_when_whole() {
        let bob = test_keys::key(2).public().fingerprint();
        let bobby = test_keys::key(3).public().fingerprint();
        let example = test_keys::key(4).public().fingerprint();
        let members = vec![
            ("bob".to_string(), bob),
            ("bobby".to_string(), bobby),
            ("example".to_string(), example),
        ];
        let t = typed(
            "@bob, @bobby and @bobcat; mail bob@example.org @",
            &members,
            &[],
        );
        assert_eq!(
            t,
            format!(
                "{}, {} and @bobcat; mail bob{} @",
                token(&bob),
                token(&bobby),
                "@example.org"
            )
        );
        assert_eq!(mentioned(&t), vec![bob, bobby]);
        // A look-alike name typed by hand names nobody.
        assert_eq!(typed("@bоb", &members, &[]), "@bоb");
        // Shown back by name.
        let names = |fp: &Fingerprint| {
            members
                .iter()
                .find(|(_, f)| f == fp)
                .map(|(n, _)| n.clone())
        };
        assert_eq!(shown(&typed("hi @bob!", &members, &[]), names), "hi @bob!");
    }

    #[test]
    fn a_name_that_extends_another_cannot_take_its_mentions() {
        let bob = test_keys::key(2).public().fingerprint();
        let mallory = test_keys::key(3).public().fingerprint();
        // mallory joined as "bob:" (and could as "bob the").
        let members = vec![("bob".to_string(), bob), ("bob:".to_string(), mallory)];
        // Typed by hand where both fit: nobody is mentioned.
        assert!(mentioned(&typed("@bob: can you look", &members, &[])).is_empty());
        // bob picked from the list: bob, whatever follows.
        let picked = vec![("bob".to_string(), bob)];
        assert_eq!(
            mentioned(&typed("@bob: can you look", &members, &picked)),
            vec![bob]
        );
        // Where only one fits, that one.
        assert_eq!(
            mentioned(&typed("@bob can you look", &members, &[])),
            vec![bob]
        );
    }

    #[test]
    fn at_most_the_limit_of_mentions_counts() {
        let bob = test_keys::key(2).public().fingerprint();
        let me = test_keys::key(1).public().fingerprint();
        let mut text = token(&bob).repeat(MAX_MENTIONS);
        text.push_str(&token(&me));
        assert!(!mentioned(&text).contains(&me), "the 33rd is text");
        assert!(shown(&text, |_| Some("x".into())).ends_with(&token(&me)));
    }
}
