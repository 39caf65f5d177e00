//! Email addresses and domain names as the directory stores them.
//!
//! [`Address::parse`] accepts an RFC 5321 §4.1.2 `Mailbox` whose local part is a
//! `Dot-string` (RFC 5322 §3.2.3 dot-atom), extended by RFC 6531 §3.3 to allow
//! UTF-8 in the local part. It is used by the admin CLI and the directory, not
//! by the SMTP wire parser: it is deliberately stricter than the RFC in three
//! ways, each with a clear error:
//! - quoted local parts (`"john doe"@example.com`) are refused for now;
//! - address literals (`user@[192.0.2.1]`) are refused: we host domains, not IPs;
//! - the domain must be ASCII (an internationalised domain is written in its
//!   `xn--` A-label form, RFC 5890 §2.3.2.1), since we carry no IDNA tables.
//!
//! Domains are lowercased (DNS names are case-insensitive, RFC 4343); the local
//! part keeps its case for display, while [`Address::canonical`] lowercases the
//! whole address because that is what the directory keys on.
//!
//! Parsing never panics, whatever the input; error messages quote at most
//! [`MAX_QUOTED`] characters of the input so that hostile input cannot flood logs.

use std::fmt;
use std::str::FromStr;

/// RFC 5321 §4.5.3.1.1: the maximum length of a local part is 64 octets.
pub const MAX_LOCAL_LEN: usize = 64;
/// RFC 1035 §2.3.4 / RFC 5321 §4.5.3.1.2: a domain name is at most 255 octets on
/// the wire, which is 253 characters in dotted text form.
pub const MAX_DOMAIN_LEN: usize = 253;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub const MAX_LABEL_LEN: usize = 63;
/// RFC 5321 §4.5.3.1.3 limits a path (`<local@domain>`) to 256 octets, so the
/// address itself to 254 (RFC 3696 erratum 1690).
pub const MAX_ADDRESS_LEN: usize = 254;
/// How many characters of a rejected input an error message repeats.
pub const MAX_QUOTED: usize = 80;

/// What is wrong with an address or a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// An address failed to parse.
    #[error("parsing address {input:?}: {problem}")]
    Address {
        /// The input, truncated to [`MAX_QUOTED`] characters.
        input: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// A domain name failed to parse.
    #[error("parsing domain {input:?}: {problem}")]
    Domain {
        /// The input, truncated to [`MAX_QUOTED`] characters.
        input: String,
        /// What is wrong with it.
        problem: Problem,
    },
}

impl AddressError {
    /// What is wrong, without the input.
    pub fn problem(&self) -> &Problem {
        match self {
            AddressError::Address { problem, .. } | AddressError::Domain { problem, .. } => problem,
        }
    }
}

/// The specific rule an address or domain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// No `@` at all.
    #[error("missing `@` between local part and domain")]
    MissingAt,
    /// More than one `@` (only possible in a quoted local part, which we refuse).
    #[error("more than one `@`")]
    MultipleAt,
    /// Nothing before the `@`.
    #[error("empty local part before `@`")]
    EmptyLocal,
    /// `"..."@domain`.
    #[error("quoted local parts (\"...\"@domain) are not supported")]
    QuotedLocal,
    /// A character outside RFC 5322 `atext` (or UTF-8 per RFC 6531) in the local part.
    #[error("character {0:?} is not allowed in the local part")]
    LocalChar(char),
    /// Leading, trailing or consecutive dots in the local part.
    #[error("the local part has a leading, trailing or doubled dot")]
    LocalDots,
    /// Local part over [`MAX_LOCAL_LEN`] octets.
    #[error("the local part is {0} octets long; at most {MAX_LOCAL_LEN} are allowed (RFC 5321 §4.5.3.1.1)")]
    LocalTooLong(usize),
    /// Whole address over [`MAX_ADDRESS_LEN`] octets.
    #[error("the address is {0} octets long; at most {MAX_ADDRESS_LEN} are allowed (RFC 5321 §4.5.3.1.3)")]
    AddressTooLong(usize),
    /// Nothing after the `@`, or an empty domain.
    #[error("empty domain")]
    EmptyDomain,
    /// `[192.0.2.1]` and the like.
    #[error("address literals such as [192.0.2.1] are not accepted; use a domain name")]
    AddressLiteral,
    /// Domain over [`MAX_DOMAIN_LEN`] characters.
    #[error(
        "the domain is {0} characters long; at most {MAX_DOMAIN_LEN} are allowed (RFC 1035 §2.3.4)"
    )]
    DomainTooLong(usize),
    /// `a..b`, `.a`, `a.`.
    #[error("the domain has an empty label (a leading, trailing or doubled dot)")]
    EmptyLabel,
    /// A label over [`MAX_LABEL_LEN`] characters.
    #[error("the domain label {0:?} is longer than {MAX_LABEL_LEN} characters (RFC 1035 §2.3.4)")]
    LabelTooLong(String),
    /// A label starting or ending with `-`.
    #[error("the domain label {0:?} starts or ends with a hyphen")]
    LabelHyphen(String),
    /// An ASCII character other than a letter, digit, hyphen or dot in the domain.
    #[error("character {0:?} is not allowed in a domain name")]
    DomainChar(char),
    /// A non-ASCII character in the domain (we carry no IDNA tables).
    #[error("non-ASCII character {0:?} in the domain; write an internationalised domain in its xn-- form")]
    NonAsciiDomain(char),
    /// An all-numeric last label, i.e. something that looks like an IP address.
    #[error("the last label is all digits, which is an IP address, not a domain name")]
    NumericTld,
}

/// A validated mailbox address, `local@domain`.
///
/// The domain is stored lowercased; the local part keeps its case, and so
/// does equality (`John@x` != `john@x`): compare [`Address::canonical`] to ask
/// whether two addresses reach the same mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: String,
}

impl Address {
    /// Parses `local@domain` (see the module documentation for what is accepted).
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let fail = |problem| AddressError::Address {
            input: quoted(input),
            problem,
        };
        if input.len() > MAX_ADDRESS_LEN {
            return Err(fail(Problem::AddressTooLong(input.len())));
        }
        if input.starts_with('"') {
            return Err(fail(Problem::QuotedLocal));
        }
        // Without quoted local parts an `@` can only be the separator, so
        // exactly one must be present.
        let mut parts = input.split('@');
        let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) => (local, domain),
            (_, None, _) => return Err(fail(Problem::MissingAt)),
            _ => return Err(fail(Problem::MultipleAt)),
        };
        check_local(local).map_err(fail)?;
        let domain = check_domain(domain).map_err(fail)?;
        Ok(Address {
            local: local.to_owned(),
            domain,
        })
    }

    /// The local part, case preserved.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain, lowercase.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The whole address lowercased: the key the directory looks addresses up by.
    ///
    /// RFC 5321 §2.4 lets a host treat local parts case-sensitively; like nearly
    /// every mail system we do not, so `John@x` and `john@x` reach one mailbox.
    pub fn canonical(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }

    /// The local part before the first `separator` (plus-addressing, RFC 5233
    /// "subaddress"): `john+lists` gives `john`. A local part without the
    /// separator, or one that starts with it, is returned whole.
    pub fn base_local(&self, separator: char) -> &str {
        match self.local.find(separator) {
            Some(at) if at > 0 => &self.local[..at],
            _ => &self.local,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Address, AddressError> {
        Address::parse(s)
    }
}

/// Validates a domain name and returns it lowercased.
///
/// Accepts single-label names (`localhost`, `mail`) for test setups; refuses
/// empty labels, labels over 63 characters or with a leading or trailing
/// hyphen, names over 253 characters, address literals, non-ASCII characters
/// and an all-numeric last label.
pub fn parse_domain(input: &str) -> Result<String, AddressError> {
    check_domain(input).map_err(|problem| AddressError::Domain {
        input: quoted(input),
        problem,
    })
}

fn check_local(local: &str) -> Result<(), Problem> {
    if local.is_empty() {
        return Err(Problem::EmptyLocal);
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err(Problem::LocalTooLong(local.len()));
    }
    if let Some(c) = local.chars().find(|&c| !is_local_char(c)) {
        return Err(Problem::LocalChar(c));
    }
    // RFC 5322 §3.2.3: dot-atom-text = 1*atext *("." 1*atext)
    if local.split('.').any(str::is_empty) {
        return Err(Problem::LocalDots);
    }
    Ok(())
}

/// RFC 5322 §3.2.3 `atext`, the dot, and RFC 6531 §3.3 `UTF8-non-ascii`
/// (minus control and space characters, which no sane address contains).
fn is_local_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '.' || "!#$%&'*+-/=?^_`{|}~".contains(c)
    } else {
        !c.is_control() && !c.is_whitespace()
    }
}

fn check_domain(domain: &str) -> Result<String, Problem> {
    if domain.is_empty() {
        return Err(Problem::EmptyDomain);
    }
    if domain.starts_with('[') {
        return Err(Problem::AddressLiteral);
    }
    if let Some(c) = domain
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(if c.is_ascii() {
            Problem::DomainChar(c)
        } else {
            Problem::NonAsciiDomain(c)
        });
    }
    // Only ASCII from here on, so bytes are characters.
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(Problem::DomainTooLong(domain.len()));
    }
    let domain = domain.to_ascii_lowercase();
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(Problem::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(Problem::LabelTooLong(quoted(label)));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Problem::LabelHyphen(label.to_owned()));
        }
        last = label;
    }
    // RFC 3696 §2: a top-level domain is never all-numeric; this also keeps
    // dotted-quad IP addresses out.
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::NumericTld);
    }
    Ok(domain)
}

/// At most [`MAX_QUOTED`] characters of `s`, for error messages.
pub(crate) fn quoted(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(input: &str) -> Problem {
        match Address::parse(input) {
            Ok(a) => panic!("{input:?} parsed as {a}"),
            Err(e) => e.problem().clone(),
        }
    }

    #[test]
    fn parses_good_addresses() {
        for (input, local, domain) in [
            ("john@example.com", "john", "example.com"),
            ("John.Smith@Example.COM", "John.Smith", "example.com"),
            ("john+lists@example.com", "john+lists", "example.com"),
            (
                "a!#$%&'*+-/=?^_`{|}~z@x.org",
                "a!#$%&'*+-/=?^_`{|}~z",
                "x.org",
            ),
            ("postmaster@localhost", "postmaster", "localhost"),
            ("jörg@example.de", "jörg", "example.de"),
            ("用户@xn--fiqs8s.example", "用户", "xn--fiqs8s.example"),
            ("x@a-b.c-d.e", "x", "a-b.c-d.e"),
            ("x@1.example", "x", "1.example"),
        ] {
            let a = Address::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(a.local(), local, "{input}");
            assert_eq!(a.domain(), domain, "{input}");
        }
    }

    #[test]
    fn display_canonical_and_base_local() {
        let a: Address = "John.Smith+News@Example.COM".parse().unwrap();
        assert_eq!(a.to_string(), "John.Smith+News@example.com");
        assert_eq!(a.canonical(), "john.smith+news@example.com");
        assert_eq!(a.base_local('+'), "John.Smith");
        assert_eq!(a.base_local('-'), "John.Smith+News");
        let b = Address::parse("+only@example.com").unwrap();
        assert_eq!(b.base_local('+'), "+only");
        let c = Address::parse("a+b+c@example.com").unwrap();
        assert_eq!(c.base_local('+'), "a");
        let d = Address::parse("ÄNNE@example.com").unwrap();
        assert_eq!(d.canonical(), "änne@example.com");
    }

    #[test]
    fn rejects_bad_addresses() {
        assert_eq!(problem("john.example.com"), Problem::MissingAt);
        assert_eq!(problem(""), Problem::MissingAt);
        assert_eq!(problem("a@b@example.com"), Problem::MultipleAt);
        assert_eq!(problem("@example.com"), Problem::EmptyLocal);
        assert_eq!(problem("john@"), Problem::EmptyDomain);
        assert_eq!(problem("\"john doe\"@example.com"), Problem::QuotedLocal);
        assert_eq!(problem("john doe@example.com"), Problem::LocalChar(' '));
        assert_eq!(problem("john@exa mple.com"), Problem::DomainChar(' '));
        assert_eq!(problem(" john@example.com"), Problem::LocalChar(' '));
        assert_eq!(problem("jo\u{0}hn@example.com"), Problem::LocalChar('\0'));
        assert_eq!(problem("jo(h)n@example.com"), Problem::LocalChar('('));
        assert_eq!(problem("john..doe@example.com"), Problem::LocalDots);
        assert_eq!(problem(".john@example.com"), Problem::LocalDots);
        assert_eq!(problem("john.@example.com"), Problem::LocalDots);
        assert_eq!(problem("john@example..com"), Problem::EmptyLabel);
        assert_eq!(problem("john@.example.com"), Problem::EmptyLabel);
        assert_eq!(problem("john@example.com."), Problem::EmptyLabel);
        assert_eq!(problem("john@[192.0.2.1]"), Problem::AddressLiteral);
        assert_eq!(problem("john@192.0.2.1"), Problem::NumericTld);
        assert_eq!(
            problem("john@-example.com"),
            Problem::LabelHyphen("-example".into())
        );
        assert_eq!(
            problem("john@example-.com"),
            Problem::LabelHyphen("example-".into())
        );
        assert_eq!(problem("john@exämple.com"), Problem::NonAsciiDomain('ä'));
        assert_eq!(problem("john@ex_ample.com"), Problem::DomainChar('_'));
    }

    #[test]
    fn rejects_overlong_parts() {
        let local = "a".repeat(MAX_LOCAL_LEN);
        assert!(Address::parse(&format!("{local}@example.com")).is_ok());
        assert_eq!(
            problem(&format!("{local}b@example.com")),
            Problem::LocalTooLong(65)
        );
        let label = "l".repeat(MAX_LABEL_LEN);
        assert!(parse_domain(&format!("{label}.com")).is_ok());
        assert!(matches!(
            problem(&format!("x@{label}l.com")),
            Problem::LabelTooLong(_)
        ));
        let long = format!("x@{}", ["a"; 130].join("."));
        assert!(matches!(problem(&long), Problem::AddressTooLong(_)));
        // Huge input: refused quickly and the error message stays short.
        let huge = "x".repeat(1 << 20);
        let err = Address::parse(&huge).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn parse_domain_checks() {
        assert_eq!(
            parse_domain("Mail.Example.COM").unwrap(),
            "mail.example.com"
        );
        assert_eq!(parse_domain("localhost").unwrap(), "localhost");
        assert_eq!(
            parse_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        let domain = ["abcdefghi"; 25].join("."); // 249 characters
        assert!(parse_domain(&domain).is_ok());
        let err = parse_domain(&format!("{domain}.abcd")).unwrap_err();
        assert_eq!(err.problem(), &Problem::DomainTooLong(254));
        for bad in [
            "", ".", "a..b", "a.b.", "[::1]", "10.0.0.1", "a b", "a@b", "-a", "a-",
        ] {
            assert!(parse_domain(bad).is_err(), "{bad:?} accepted");
        }
        let err = parse_domain("a..b").unwrap_err().to_string();
        assert_eq!(
            err,
            "parsing domain \"a..b\": the domain has an empty label (a leading, trailing or doubled dot)"
        );
    }

    #[test]
    fn error_messages_name_the_input() {
        let err = Address::parse("john@@x").unwrap_err().to_string();
        assert_eq!(err, "parsing address \"john@@x\": more than one `@`");
        let err = Address::parse("\"a b\"@x").unwrap_err().to_string();
        assert!(err.contains("quoted local parts"), "{err}");
    }
}
