//! The IMAP ENVELOPE (RFC 9051 §7.5.2) built from raw header fields.
//!
//! IMAP returns envelope strings verbatim, so nothing here decodes
//! encoded-words: display names keep `=?utf-8?q?...?=` as written. That is
//! why addresses are parsed by the small RFC 5322 §3.4 parser below rather
//! than taken from mail-parser, whose names are already decoded.

use super::header::{last_value, RawField};
use super::{Envelope, EnvelopeAddress};

/// Host placed in an address that has no `@domain` (e.g. `To:
/// undisclosed-recipients`). It must not be NIL: RFC 9051 §7.5.2 reserves a
/// NIL host for group markers. This is the placeholder c-client (UW-IMAP)
/// uses, which IMAP clients have long been shown.
pub(super) const MISSING_HOST: &str = ".MISSING-HOST-NAME.";

/// Mailbox placed in an address that has a display name but an empty
/// address (`"Name" <>`), for the same reason: mailbox and host both NIL
/// would read as the end of a group.
pub(super) const MISSING_MAILBOX: &str = "MISSING_MAILBOX";

/// Builds the envelope from one header block's fields.
pub(super) fn build_envelope(fields: &[RawField<'_>]) -> Envelope {
    let addresses = |name: &str| {
        last_value(fields, name)
            .map(|v| parse_address_list(&v))
            .unwrap_or_default()
    };
    let from = addresses("from");
    let mut sender = addresses("sender");
    let mut reply_to = addresses("reply-to");
    // RFC 9051 §7.5.2: "If the Sender or Reply-To header fields are absent
    // in the [RFC5322] header, or are present but empty, the server sets
    // the corresponding member of the envelope to be the same value as the
    // from member." Done here, once, so every reader gets it right.
    if sender.is_empty() {
        sender = from.clone();
    }
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    Envelope {
        date: last_value(fields, "date"),
        subject: last_value(fields, "subject"),
        from,
        sender,
        reply_to,
        to: addresses("to"),
        cc: addresses("cc"),
        bcc: addresses("bcc"),
        in_reply_to: last_value(fields, "in-reply-to"),
        message_id: last_value(fields, "message-id"),
    }
}

/// A lexical token of an address list (RFC 5322 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An atom, dot-atom or domain literal, as written.
    Atom(String),
    /// A quoted string: `raw` with quotes and escapes (for addr-specs),
    /// `text` with them removed (for display names).
    Quoted { raw: String, text: String },
    /// The text of a comment, without its parentheses.
    Comment(String),
    /// One of `< > @ , : ;`.
    Special(char),
}

/// A token and whether whitespace preceded it (display names keep single
/// spaces where the writer put them; `a.b` and `a . b` stay distinct).
type Spaced = (Token, bool);

fn tokenize(value: &str) -> Vec<Spaced> {
    let mut tokens = Vec::new();
    let mut chars = value.char_indices().peekable();
    let mut space = false;
    while let Some((start, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                space = true;
                continue;
            }
            '<' | '>' | '@' | ',' | ':' | ';' => tokens.push((Token::Special(c), space)),
            '"' => {
                let mut text = String::new();
                let mut end = value.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                text.push(escaped);
                            }
                        }
                        c => text.push(c),
                    }
                }
                let raw = value.get(start..end).unwrap_or_default().to_string();
                tokens.push((Token::Quoted { raw, text }, space));
            }
            '(' => {
                // Comments nest (RFC 5322 §3.2.2).
                let mut depth = 1usize;
                let mut text = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                text.push(escaped);
                            }
                            continue;
                        }
                        _ => {}
                    }
                    text.push(c);
                }
                tokens.push((Token::Comment(text.trim().to_string()), space));
            }
            '[' => {
                // Domain literal: kept whole, brackets included.
                let mut end = value.len();
                for (i, c) in chars.by_ref() {
                    if c == ']' {
                        end = i + 1;
                        break;
                    }
                }
                let literal = value.get(start..end).unwrap_or_default();
                tokens.push((Token::Atom(literal.to_string()), space));
            }
            _ => {
                let mut end = value.len();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || "<>@,:;\"([".contains(c) {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                let atom = value.get(start..end).unwrap_or_default();
                tokens.push((Token::Atom(atom.to_string()), space));
            }
        }
        space = false;
    }
    tokens
}

/// The address being collected between separators.
#[derive(Default)]
struct Pending {
    /// Words before `<` (the display name) or, without `<`, the addr-spec.
    words: Vec<Spaced>,
    /// The tokens inside `<...>`, if there was one.
    angle: Option<Vec<Spaced>>,
    /// The last comment seen: a name of last resort (`a@b (Name)`).
    comment: Option<String>,
}

/// Parses an address-list (RFC 5322 §3.4) into IMAP address structures,
/// groups as RFC 9051 §7.5.2 marks them. Forgiving: whatever cannot be
/// understood is dropped rather than failing the whole list.
pub(super) fn parse_address_list(value: &str) -> Vec<EnvelopeAddress> {
    let mut out = Vec::new();
    let mut pending = Pending::default();
    let mut in_group = false;
    let mut tokens = tokenize(value).into_iter();

    while let Some((token, space)) = tokens.next() {
        match token {
            Token::Comment(text) => {
                if !text.is_empty() {
                    pending.comment = Some(text);
                }
            }
            Token::Special('<') => {
                let mut inner = Vec::new();
                for (t, s) in tokens.by_ref() {
                    if t == Token::Special('>') {
                        break;
                    }
                    inner.push((t, s));
                }
                pending.angle = Some(inner);
            }
            Token::Special(':') if !in_group && pending.angle.is_none() => {
                // "display-name :" opens a group (RFC 5322 §3.4).
                let name = phrase(&pending.words);
                out.push(EnvelopeAddress {
                    name: None,
                    adl: None,
                    mailbox: Some(name),
                    host: None,
                });
                in_group = true;
                pending = Pending::default();
            }
            Token::Special(';') => {
                flush(&mut pending, &mut out);
                if in_group {
                    out.push(EnvelopeAddress::default());
                    in_group = false;
                }
            }
            Token::Special(',') => flush(&mut pending, &mut out),
            Token::Special('>') => {}
            other => pending.words.push((other, space)),
        }
    }
    flush(&mut pending, &mut out);
    if in_group {
        // An unterminated group still needs its end marker, or a client
        // would read every following address as a member.
        out.push(EnvelopeAddress::default());
    }
    out
}

/// Turns the pending tokens into an address, if they make one.
fn flush(pending: &mut Pending, out: &mut Vec<EnvelopeAddress>) {
    let Pending {
        words,
        angle,
        comment,
    } = std::mem::take(pending);
    let had_angle = angle.is_some();
    let (name, spec) = match angle {
        Some(inner) => {
            let name = Some(phrase(&words)).filter(|n| !n.is_empty());
            (name, inner)
        }
        None => (None, words),
    };
    // A comment alone is not an address (`group: (nobody) ;` is an empty
    // group, RFC 5322 §3.4); beside an address it is a name of last resort.
    if spec.is_empty() && !had_angle {
        return;
    }
    let name = name.or(comment);
    if spec.is_empty() && name.is_none() {
        return;
    }
    let (adl, spec) = split_route(&spec);
    let (mailbox, host) = split_addr_spec(spec);
    out.push(EnvelopeAddress {
        name,
        adl,
        mailbox: Some(mailbox.unwrap_or_else(|| MISSING_MAILBOX.to_string())),
        host: Some(host.unwrap_or_else(|| MISSING_HOST.to_string())),
    });
}

/// A display name: words joined by single spaces where the writer put
/// space, quoted strings unquoted, encoded-words left as they are.
fn phrase(words: &[Spaced]) -> String {
    let mut out = String::new();
    for (token, space) in words {
        let text = match token {
            Token::Atom(a) => a.as_str(),
            Token::Quoted { text, .. } => text.as_str(),
            Token::Special(c) => {
                // A stray '@' or the like inside a name: keep it visible.
                out.push(*c);
                continue;
            }
            Token::Comment(_) => continue,
        };
        if *space && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(text);
    }
    out
}

/// Splits an obsolete source route (`@a,@b:user@host`, RFC 5322 §4.4) off
/// an angle-addr; IMAP calls it the "at-domain-list" (adl).
fn split_route(spec: &[Spaced]) -> (Option<String>, &[Spaced]) {
    let starts_with_at = matches!(spec.first(), Some((Token::Special('@'), _)));
    match spec.iter().position(|(t, _)| *t == Token::Special(':')) {
        Some(colon) if starts_with_at => {
            let route: String = spec[..colon].iter().map(|(t, _)| token_text(t)).collect();
            (Some(route), &spec[colon + 1..])
        }
        _ => (None, spec),
    }
}

/// Splits `local@domain` at the last `@`. Whitespace and comments between
/// tokens are dropped (CFWS is allowed around the dots and the `@`).
fn split_addr_spec(spec: &[Spaced]) -> (Option<String>, Option<String>) {
    let text = |tokens: &[Spaced]| -> Option<String> {
        let s: String = tokens.iter().map(|(t, _)| token_text(t)).collect();
        Some(s).filter(|s| !s.is_empty())
    };
    match spec.iter().rposition(|(t, _)| *t == Token::Special('@')) {
        Some(at) => (text(&spec[..at]), text(&spec[at + 1..])),
        None => (text(spec), None),
    }
}

fn token_text(token: &Token) -> String {
    match token {
        Token::Atom(a) => a.clone(),
        Token::Quoted { raw, .. } => raw.clone(),
        Token::Special(c) => c.to_string(),
        Token::Comment(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(name: Option<&str>, mailbox: &str, host: &str) -> EnvelopeAddress {
        EnvelopeAddress {
            name: name.map(str::to_string),
            adl: None,
            mailbox: Some(mailbox.to_string()),
            host: Some(host.to_string()),
        }
    }

    #[test]
    fn plain_named_and_quoted_addresses() {
        let list = parse_address_list(
            r#"a@example.com, John  Q. Public <jqp@example.com>, "Doe, \"J\"" <j@x.org>"#,
        );
        assert_eq!(
            list,
            vec![
                addr(None, "a", "example.com"),
                addr(Some("John Q. Public"), "jqp", "example.com"),
                addr(Some(r#"Doe, "J""#), "j", "x.org"),
            ]
        );
    }

    #[test]
    fn encoded_words_stay_encoded_and_comments_name_bare_addresses() {
        let list = parse_address_list("=?utf-8?q?J=C3=B6rg?= <j@x.de>, k@y.de (Kai (K) Z)");
        assert_eq!(
            list,
            vec![
                addr(Some("=?utf-8?q?J=C3=B6rg?="), "j", "x.de"),
                addr(Some("Kai (K) Z"), "k", "y.de"),
            ]
        );
    }

    #[test]
    fn a_comment_alone_in_a_group_is_no_address() {
        let list = parse_address_list(
            "group:;, group2: (foo) ;, Eve <eve (home) @ (comment) example.com>",
        );
        assert_eq!(list.len(), 5, "{list:?}");
        assert_eq!(list[2].mailbox.as_deref(), Some("group2"));
        assert_eq!(list[3], EnvelopeAddress::default());
        assert_eq!(list[4].mailbox.as_deref(), Some("eve"));
        assert_eq!(list[4].host.as_deref(), Some("example.com"));
    }

    #[test]
    fn groups_are_marked_as_rfc_9051_says() {
        let list = parse_address_list("Team: a@x, B <b@y>;, c@z, undisclosed-recipients:;");
        let start = |name: &str| EnvelopeAddress {
            mailbox: Some(name.to_string()),
            ..EnvelopeAddress::default()
        };
        assert_eq!(
            list,
            vec![
                start("Team"),
                addr(None, "a", "x"),
                addr(Some("B"), "b", "y"),
                EnvelopeAddress::default(),
                addr(None, "c", "z"),
                start("undisclosed-recipients"),
                EnvelopeAddress::default(),
            ]
        );
        // An unterminated group is still closed.
        let list = parse_address_list("G: a@x");
        assert_eq!(list.last(), Some(&EnvelopeAddress::default()));
    }

    #[test]
    fn routes_missing_parts_and_junk() {
        let list = parse_address_list("<@relay.example,@r2:u@h>, nodomain, \"N\" <>, ,,");
        assert_eq!(
            list,
            vec![
                EnvelopeAddress {
                    name: None,
                    adl: Some("@relay.example,@r2".into()),
                    mailbox: Some("u".into()),
                    host: Some("h".into()),
                },
                addr(None, "nodomain", MISSING_HOST),
                addr(Some("N"), MISSING_MAILBOX, MISSING_HOST),
            ]
        );
        assert!(parse_address_list("").is_empty());
        // Unbalanced quotes, comments and brackets must not panic.
        for junk in ["\"abc", "(abc", "<abc", "[abc", "a@[1.2.3.4", "\\", "é@ü"] {
            let _ = parse_address_list(junk);
        }
    }
}
