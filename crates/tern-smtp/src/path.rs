//! Reverse- and forward-paths of MAIL FROM and RCPT TO (RFC 5321 §4.1.2),
//! with SMTPUTF8 (RFC 6531 §3.3) local parts and domains.
//!
//! The parser is strict and exact because relay decisions rest on it: the
//! domain it returns is the one that decides local or remote, and nothing
//! in the local part (a `%`, a `!`, a quoted `@`) ever changes where mail
//! goes. A source route (`<@relay:user@domain>`) is accepted and ignored,
//! as RFC 5321 §4.1.1.3 asks, so it cannot route either.

use std::fmt;

/// A mailbox from a path: the local part as the client meant it (quotes
/// removed) and the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub local: String,
    pub domain: Domain,
}

/// The domain of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    /// A host name, lowercased, without a trailing dot.
    Name(String),
    /// An address literal (`[192.0.2.1]`, `[IPv6:...]`), as written. Tern
    /// never treats a literal as local.
    Literal(String),
}

impl Mailbox {
    /// `local@domain`; a local part that needs quoting is quoted again.
    pub fn address(&self) -> String {
        let domain = match &self.domain {
            Domain::Name(n) => n.clone(),
            Domain::Literal(l) => l.clone(),
        };
        if is_dot_string(&self.local) {
            format!("{}@{domain}", self.local)
        } else {
            let escaped = self.local.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"@{domain}")
        }
    }

    /// The domain name, or `None` for an address literal.
    pub fn domain_name(&self) -> Option<&str> {
        match &self.domain {
            Domain::Name(n) => Some(n),
            Domain::Literal(_) => None,
        }
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// Why a path was refused; the text goes into a 501/553 reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the address must be enclosed in <>")]
    NoBrackets,
    #[error("the address has no domain")]
    NoDomain,
    #[error("the local part is empty or malformed")]
    BadLocal,
    #[error("the domain is malformed")]
    BadDomain,
    #[error("the address is too long")]
    TooLong,
    #[error("non-ASCII addresses need SMTPUTF8 on MAIL FROM")]
    NeedsUtf8,
}

/// RFC 5321 §4.5.3.1.1–3: local part 64, domain 255, path 256 octets.
/// Longer addresses are refused rather than truncated.
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;
const MAX_PATH: usize = 256;

/// Parses `<...>` (the brackets included). `Ok(None)` is the null path `<>`.
pub fn parse_path(text: &str, utf8: bool) -> Result<Option<Mailbox>, PathError> {
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .ok_or(PathError::NoBrackets)?;
    if inner.is_empty() {
        return Ok(None);
    }
    if inner.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    if !utf8 && !inner.is_ascii() {
        return Err(PathError::NeedsUtf8);
    }
    let mailbox = strip_source_route(inner)?;
    parse_mailbox(mailbox).map(Some)
}

/// `@a,@b:user@domain` → `user@domain` (RFC 5321 §4.1.2 A-d-l).
fn strip_source_route(path: &str) -> Result<&str, PathError> {
    if !path.starts_with('@') {
        return Ok(path);
    }
    let (route, rest) = path.split_once(':').ok_or(PathError::BadDomain)?;
    for hop in route.split(',') {
        let hop = hop.strip_prefix('@').ok_or(PathError::BadDomain)?;
        parse_domain(hop)?;
    }
    Ok(rest)
}

/// `local@domain` where local is a dot-string or a quoted string.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, PathError> {
    let (local, rest) = if let Some(quoted) = text.strip_prefix('"') {
        let mut local = String::new();
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, c)) if !c.is_control() => local.push(c),
                    _ => return Err(PathError::BadLocal),
                },
                c if c.is_control() => return Err(PathError::BadLocal),
                c => local.push(c),
            }
        }
        let end = end.ok_or(PathError::BadLocal)?;
        (local, &quoted[end..])
    } else {
        let at = text.rfind('@').ok_or(PathError::NoDomain)?;
        let local = &text[..at];
        if !is_dot_string(local) {
            return Err(PathError::BadLocal);
        }
        (local.to_string(), &text[at..])
    };
    let domain = rest.strip_prefix('@').ok_or(PathError::NoDomain)?;
    if local.is_empty() || local.len() > MAX_LOCAL {
        return Err(if local.is_empty() {
            PathError::BadLocal
        } else {
            PathError::TooLong
        });
    }
    Ok(Mailbox {
        local,
        domain: parse_domain(domain)?,
    })
}

/// A domain name or an address literal.
fn parse_domain(text: &str) -> Result<Domain, PathError> {
    if text.len() > MAX_DOMAIN {
        return Err(PathError::TooLong);
    }
    if let Some(literal) = text.strip_prefix('[') {
        let inner = literal.strip_suffix(']').ok_or(PathError::BadDomain)?;
        let valid = match inner.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                inner[5..].parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => inner.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        return if valid {
            Ok(Domain::Literal(text.to_string()))
        } else {
            Err(PathError::BadDomain)
        };
    }
    // One trailing dot is the root: `example.com.` is `example.com`.
    let name = text.strip_suffix('.').unwrap_or(text);
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(PathError::BadDomain);
    }
    Ok(Domain::Name(name.to_lowercase()))
}

/// RFC 5321 Dot-string of atext (RFC 5322 §3.2.3), UTF-8 allowed (RFC 6531).
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|atom| {
            !atom.is_empty()
                && atom.chars().all(|c| {
                    c.is_alphanumeric()
                        || "!#$%&'*+-/=?^_`{|}~".contains(c)
                        || (!c.is_ascii() && !c.is_control())
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(text: &str) -> Mailbox {
        parse_path(text, true).unwrap().unwrap()
    }

    #[test]
    fn plain_paths() {
        let m = mb("<User.Name+tag@Example.COM>");
        assert_eq!(m.local, "User.Name+tag");
        assert_eq!(m.domain, Domain::Name("example.com".into()));
        assert_eq!(parse_path("<>", false), Ok(None));
        assert_eq!(
            mb("<a@example.com.>").domain,
            Domain::Name("example.com".into())
        );
    }

    #[test]
    fn relay_tricks_keep_the_real_domain() {
        // %-hack and bang paths are just odd local parts at the given domain.
        let m = mb("<victim%remote.test@local.test>");
        assert_eq!(
            (m.local.as_str(), m.domain_name()),
            ("victim%remote.test", Some("local.test"))
        );
        let m = mb("<remote.test!victim@local.test>");
        assert_eq!(m.domain_name(), Some("local.test"));
        // A source route is ignored: the mailbox decides.
        let m = mb("<@local.test:victim@remote.test>");
        assert_eq!(m.domain_name(), Some("remote.test"));
        let m = mb("<@a.test,@b.test:victim@remote.test>");
        assert_eq!(m.domain_name(), Some("remote.test"));
        // A quoted @ stays in the local part.
        let m = mb("<\"victim@remote.test\"@local.test>");
        assert_eq!(
            (m.local.as_str(), m.domain_name()),
            ("victim@remote.test", Some("local.test"))
        );
        assert_eq!(m.address(), "\"victim@remote.test\"@local.test");
        // Address literals are never names.
        assert_eq!(mb("<u@[192.0.2.1]>").domain_name(), None);
        assert_eq!(mb("<u@[IPv6:2001:db8::1]>").domain_name(), None);
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [
            "user@example.com",
            "<user>",
            "<@example.com>",
            "<a@>",
            "<a@b..c>",
            "<a@-b.c>",
            "<a..b@c.d>",
            "<.a@c.d>",
            "<a b@c.d>",
            "<\"unterminated@c.d>",
            "<a@[999.1.1.1]>",
            "<a@[1.2.3.4>",
            "<@relay.test>",
            "<@bad..relay:a@b.c>",
        ] {
            assert!(parse_path(bad, true).is_err(), "{bad} accepted");
        }
        assert_eq!(
            parse_path("<jörg@example.com>", false),
            Err(PathError::NeedsUtf8)
        );
        assert!(parse_path("<jörg@exämple.com>", true).is_ok());
        let long = format!("<{}@example.com>", "a".repeat(65));
        assert_eq!(parse_path(&long, true), Err(PathError::TooLong));
    }
}
