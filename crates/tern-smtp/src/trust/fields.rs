//! The header fields sender authentication reads and removes, found by
//! `tern_mail::fields`' walk of the raw header section.
//!
//! - RFC 8601 §5: an `Authentication-Results` field claiming our
//!   authserv-id that arrives from outside is a forgery and is removed
//!   before ours is added;
//! - signatures are counted before anything is verified, so a message with
//!   hundreds of them costs nothing ([`super::MAX_SIGNATURES`]).

use tern_mail::fields::{header_fields, trim_start, without_fields};

/// How many DKIM and ARC message signatures the header carries.
pub fn count_signatures(raw: &[u8]) -> usize {
    header_fields(raw)
        .iter()
        .filter(|(_, name)| {
            name.eq_ignore_ascii_case(b"DKIM-Signature")
                || name.eq_ignore_ascii_case(b"ARC-Message-Signature")
        })
        .count()
}

/// `raw` without the `Authentication-Results` fields whose authserv-id is
/// `authserv_id` (RFC 8601 §5); `None` when there are none.
pub fn strip_our_results(raw: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    without_fields(raw, |name, field| {
        name.eq_ignore_ascii_case(b"Authentication-Results")
            && authserv_id_of(&field[name.len()..])
                .is_some_and(|id| id.eq_ignore_ascii_case(authserv_id.as_bytes()))
    })
}

/// The authserv-id of an `Authentication-Results` value (RFC 8601 §2.2:
/// `[CFWS] authserv-id [CFWS authres-version]`), from `: ...` on.
fn authserv_id_of(value: &[u8]) -> Option<&[u8]> {
    let mut rest = value.strip_prefix(b":").unwrap_or(value);
    loop {
        rest = trim_start(rest);
        match rest.first() {
            Some(b'(') => rest = skip_comment(rest)?,
            Some(_) => break,
            None => return None,
        }
    }
    let end = rest
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'('))
        .unwrap_or(rest.len());
    let id = &rest[..end];
    // A quoted authserv-id is a quoted-string; ours never is.
    (!id.is_empty()).then_some(id)
}

/// `text` after the comment it starts with (comments nest, RFC 5322 §3.2.2).
fn skip_comment(text: &[u8]) -> Option<&[u8]> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, &b) in text.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(&text[i + 1..]);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] =
        b"Authentication-Results: mx.tern.test;\r\n\tspf=pass smtp.mailfrom=a@b.test\r\n\
Subject: hi\r\n\
Authentication-Results: (forged) MX.Tern.Test 1; dkim=pass\r\n\
Authentication-Results: other.example; dkim=fail\r\n\
DKIM-Signature: v=1; d=b.test\r\n\
\r\n\
Authentication-Results: mx.tern.test; in the body\r\n";

    #[test]
    fn fields_claiming_our_name_are_removed_others_kept() {
        let kept = strip_our_results(MESSAGE, "mx.tern.test").expect("forged fields");
        let text = String::from_utf8(kept).unwrap();
        assert_eq!(
            text,
            "Subject: hi\r\nAuthentication-Results: other.example; dkim=fail\r\n\
DKIM-Signature: v=1; d=b.test\r\n\r\nAuthentication-Results: mx.tern.test; in the body\r\n"
        );
        assert_eq!(strip_our_results(MESSAGE, "nobody.test"), None);
    }

    #[test]
    fn signatures_are_counted_in_the_header_only() {
        assert_eq!(count_signatures(MESSAGE), 1);
        assert_eq!(
            count_signatures(b"DKIM-Signature: a\nARC-Message-Signature: b\n"),
            2
        );
    }

    #[test]
    fn odd_headers_do_not_panic() {
        for raw in [
            &b""[..],
            b"\r\n",
            b" leading continuation\r\n",
            b"Authentication-Results:",
            b"Authentication-Results: (unclosed comment",
            b"Authentication-Results: ())) x",
            b"no colon at all\r\n\r\n",
        ] {
            let _ = strip_our_results(raw, "x");
            let _ = count_signatures(raw);
        }
        assert_eq!(
            authserv_id_of(b": (c (nested)) id.test;"),
            Some(&b"id.test"[..])
        );
    }
}
