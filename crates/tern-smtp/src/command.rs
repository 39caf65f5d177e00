//! SMTP command lines into [`Command`]s: RFC 5321 §4.1.1 with the ESMTP
//! parameters Tern offers — SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8
//! (RFC 6531), DSN's RET/ENVID/NOTIFY/ORCPT (RFC 3461), REQUIRETLS (RFC
//! 8689), AUTH= (RFC 4954)
//! and BDAT (RFC 3030).
//!
//! Pure functions over one line without its CRLF: nothing here touches the
//! network, so every malformed input is a unit test away.

use crate::path::{parse_path, Mailbox, PathError};
use tern_store::{DsnNotify, DsnReturn};

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo(String),
    Helo(String),
    Mail {
        from: Option<Mailbox>,
        params: MailParams,
    },
    Rcpt {
        to: Recipient,
        params: RcptParams,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
}

/// A RCPT TO path: a mailbox, or the bare `<Postmaster>` every server must
/// accept (RFC 5321 §4.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Mailbox(Mailbox),
    Postmaster,
}

/// MAIL FROM parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// SIZE=: the client's estimate of the message size.
    pub size: Option<u64>,
    /// BODY=8BITMIME (or 7BIT).
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub ret: Option<DsnReturn>,
    /// ENVID=, xtext-decoded.
    pub env_id: Option<String>,
    /// REQUIRETLS (RFC 8689 §4.1).
    pub require_tls: bool,
}

/// RCPT TO parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// NOTIFY=; `None` when absent (the DSN default applies).
    pub notify: Option<DsnNotify>,
    /// ORCPT=, xtext-decoded (`rfc822;user@example.com`).
    pub orcpt: Option<String>,
}

/// Why a line is not a command we can run, and so which reply it gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// 500 5.5.1
    #[error("command not recognized")]
    Unknown,
    /// 501 5.5.4 / 5.5.2
    #[error("syntax error: {0}")]
    Syntax(&'static str),
    /// 501 5.1.3 (address syntax) — RFC 3463 "bad destination mailbox address syntax".
    #[error("bad address syntax: {0}")]
    Path(#[from] PathError),
    /// 555 5.5.4 (RFC 1869 §6: parameter not recognized or not implemented)
    #[error("unsupported parameter {0}")]
    Parameter(String),
}

/// Parses one command line (CRLF already removed).
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let line = std::str::from_utf8(line)
        .map_err(|_| CommandError::Syntax("the command is not valid UTF-8"))?;
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line, ""),
    };
    let no_args = |cmd: Command| {
        if rest.is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::Syntax("this command takes no arguments"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" => domain_arg(rest).map(Command::Ehlo),
        "HELO" => domain_arg(rest).map(Command::Helo),
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" => no_args(Command::Data),
        "BDAT" => parse_bdat(rest),
        "RSET" => no_args(Command::Rset),
        // NOOP and HELP may carry a string that is ignored (RFC 5321 §4.1.1.9, §4.1.1.8).
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "QUIT" => no_args(Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" => Ok(Command::Expn),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => parse_auth(rest),
        _ => Err(CommandError::Unknown),
    }
}

fn domain_arg(rest: &str) -> Result<String, CommandError> {
    if rest.is_empty() || rest.contains(char::is_whitespace) || rest.chars().any(char::is_control) {
        return Err(CommandError::Syntax(
            "expected one domain or address literal",
        ));
    }
    Ok(rest.to_string())
}

/// Splits `FROM:<path> params` / `TO:<path> params` after the keyword.
fn split_path<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, &'a str), CommandError> {
    let head = rest.get(..keyword.len()).ok_or(CommandError::Syntax(
        "expected FROM:<address> or TO:<address>",
    ))?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(CommandError::Syntax(
            "expected FROM:<address> or TO:<address>",
        ));
    }
    // Tolerate a space after the colon: common, and harmless.
    let rest = rest[keyword.len()..].trim_start();
    if !rest.starts_with('<') {
        return Err(PathError::NoBrackets.into());
    }
    // The path ends at the first '>' outside a quoted string.
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '>' if !in_quotes => return Ok((&rest[..=i], rest[i + 1..].trim_start())),
            _ => {}
        }
    }
    Err(PathError::NoBrackets.into())
}

fn params(text: &str) -> impl Iterator<Item = (String, Option<&str>)> {
    text.split_ascii_whitespace()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v)),
            None => (p.to_ascii_uppercase(), None),
        })
}

fn parse_mail(rest: &str) -> Result<Command, CommandError> {
    let (path, rest) = split_path(rest, "FROM:")?;
    let mut p = MailParams::default();
    for (key, value) in params(rest) {
        match (key.as_str(), value) {
            ("SIZE", Some(v)) => {
                p.size = Some(
                    v.parse()
                        .map_err(|_| CommandError::Syntax("SIZE needs a number"))?,
                )
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => p.eight_bit = true,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => p.eight_bit = false,
            ("SMTPUTF8", None) => p.smtputf8 = true,
            ("REQUIRETLS", None) => p.require_tls = true,
            ("RET", Some(v)) if v.eq_ignore_ascii_case("FULL") => p.ret = Some(DsnReturn::Full),
            ("RET", Some(v)) if v.eq_ignore_ascii_case("HDRS") => p.ret = Some(DsnReturn::Headers),
            ("ENVID", Some(v)) => p.env_id = Some(xtext_decode(v)?),
            // AUTH= (RFC 4954 §5) is informational; we trust our own AUTH only.
            ("AUTH", Some(_)) => {}
            _ => return Err(CommandError::Parameter(key)),
        }
    }
    let from = parse_path(path, p.smtputf8)?;
    Ok(Command::Mail { from, params: p })
}

fn parse_rcpt(rest: &str) -> Result<Command, CommandError> {
    let (path, rest) = split_path(rest, "TO:")?;
    let mut p = RcptParams::default();
    for (key, value) in params(rest) {
        match (key.as_str(), value) {
            ("NOTIFY", Some(v)) => p.notify = Some(parse_notify(v)?),
            ("ORCPT", Some(v)) => p.orcpt = Some(xtext_decode(v)?),
            _ => return Err(CommandError::Parameter(key)),
        }
    }
    if path.eq_ignore_ascii_case("<postmaster>") {
        return Ok(Command::Rcpt {
            to: Recipient::Postmaster,
            params: p,
        });
    }
    // UTF-8 is checked against MAIL FROM's SMTPUTF8 by the session.
    let to =
        parse_path(path, true)?.ok_or(CommandError::Syntax("the null path is not a recipient"))?;
    Ok(Command::Rcpt {
        to: Recipient::Mailbox(to),
        params: p,
    })
}

/// NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1).
fn parse_notify(v: &str) -> Result<DsnNotify, CommandError> {
    if v.eq_ignore_ascii_case("NEVER") {
        return Ok(DsnNotify {
            success: false,
            failure: false,
            delay: false,
        });
    }
    let mut n = DsnNotify {
        success: false,
        failure: false,
        delay: false,
    };
    for item in v.split(',') {
        match item.to_ascii_uppercase().as_str() {
            "SUCCESS" => n.success = true,
            "FAILURE" => n.failure = true,
            "DELAY" => n.delay = true,
            _ => {
                return Err(CommandError::Syntax(
                    "NOTIFY takes NEVER or SUCCESS,FAILURE,DELAY",
                ))
            }
        }
    }
    Ok(n)
}

/// RFC 3461 §4 xtext: `+XX` is the byte XX in hex.
fn xtext_decode(v: &str) -> Result<String, CommandError> {
    let bad = CommandError::Syntax("malformed xtext");
    let mut out = Vec::with_capacity(v.len());
    let mut bytes = v.bytes();
    while let Some(b) = bytes.next() {
        if b == b'+' {
            let hex = [
                bytes.next().ok_or(bad.clone())?,
                bytes.next().ok_or(bad.clone())?,
            ];
            let hex = std::str::from_utf8(&hex).map_err(|_| bad.clone())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad.clone())?);
        } else if (33..=126).contains(&b) && b != b'=' {
            out.push(b);
        } else {
            return Err(bad);
        }
    }
    String::from_utf8(out).map_err(|_| bad)
}

fn parse_bdat(rest: &str) -> Result<Command, CommandError> {
    let mut words = rest.split_ascii_whitespace();
    let size = words
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(CommandError::Syntax("BDAT needs a chunk size"))?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => {
            return Err(CommandError::Syntax(
                "BDAT takes a size and optionally LAST",
            ))
        }
    };
    if words.next().is_some() {
        return Err(CommandError::Syntax(
            "BDAT takes a size and optionally LAST",
        ));
    }
    Ok(Command::Bdat { size, last })
}

fn parse_auth(rest: &str) -> Result<Command, CommandError> {
    let mut words = rest.split_ascii_whitespace();
    let mechanism = words
        .next()
        .ok_or(CommandError::Syntax("AUTH needs a mechanism"))?
        .to_ascii_uppercase();
    let initial = words.next().map(str::to_string);
    if words.next().is_some() {
        return Err(CommandError::Syntax(
            "AUTH takes a mechanism and an initial response",
        ));
    }
    Ok(Command::Auth { mechanism, initial })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::Domain;

    fn p(line: &str) -> Result<Command, CommandError> {
        parse(line.as_bytes())
    }

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            p("ehlo client.example"),
            Ok(Command::Ehlo("client.example".into()))
        );
        assert_eq!(p("QuIt"), Ok(Command::Quit));
        assert_eq!(p("noop anything"), Ok(Command::Noop));
        assert_eq!(p("STARTTLS"), Ok(Command::StartTls));
        assert_eq!(p("FROB"), Err(CommandError::Unknown));
        assert_eq!(p(""), Err(CommandError::Unknown));
        assert!(matches!(p("DATA now"), Err(CommandError::Syntax(_))));
        assert!(matches!(p("EHLO"), Err(CommandError::Syntax(_))));
        assert!(matches!(parse(b"EHLO \xff"), Err(CommandError::Syntax(_))));
    }

    #[test]
    fn mail_from_with_parameters() {
        let Ok(Command::Mail { from, params }) = p(
            "MAIL FROM:<a@example.com> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ314159+2B1 AUTH=<>",
        ) else {
            panic!()
        };
        assert_eq!(from.unwrap().domain, Domain::Name("example.com".into()));
        assert_eq!(params.size, Some(1000));
        assert!(params.eight_bit);
        assert_eq!(params.ret, Some(DsnReturn::Headers));
        assert_eq!(params.env_id.as_deref(), Some("QQ314159+1"));
        assert!(matches!(
            p("MAIL FROM:<>"),
            Ok(Command::Mail { from: None, .. })
        ));
        assert!(matches!(p("mail from: <a@b.c>"), Ok(Command::Mail { .. })));
        assert_eq!(
            p("MAIL FROM:<a@b.c> FOO=1"),
            Err(CommandError::Parameter("FOO".into()))
        );
        assert!(matches!(
            p("MAIL FROM:<a@b.c> SIZE=x"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(p("MAIL TO:<a@b.c>"), Err(CommandError::Syntax(_))));
        assert!(matches!(p("MAIL FROM:a@b.c"), Err(CommandError::Path(_))));
        assert!(matches!(
            p("MAIL FROM:<jö@b.c>"),
            Err(CommandError::Path(PathError::NeedsUtf8))
        ));
        assert!(matches!(
            p("MAIL FROM:<jö@b.c> SMTPUTF8"),
            Ok(Command::Mail { .. })
        ));
    }

    #[test]
    fn rcpt_to_with_dsn() {
        let Ok(Command::Rcpt { to, params }) =
            p("RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.com")
        else {
            panic!()
        };
        assert!(matches!(to, Recipient::Mailbox(_)));
        assert_eq!(
            params.notify,
            Some(DsnNotify {
                success: true,
                failure: true,
                delay: false
            })
        );
        assert_eq!(params.orcpt.as_deref(), Some("rfc822;b@example.com"));
        assert_eq!(
            p("RCPT TO:<Postmaster>").unwrap(),
            Command::Rcpt {
                to: Recipient::Postmaster,
                params: RcptParams::default()
            }
        );
        assert!(matches!(p("RCPT TO:<>"), Err(CommandError::Syntax(_))));
        assert!(matches!(
            p("RCPT TO:<a@b.c> NOTIFY=SOMETIMES"),
            Err(CommandError::Syntax(_))
        ));
        // A quoted '>' does not end the path.
        let Ok(Command::Rcpt {
            to: Recipient::Mailbox(m),
            ..
        }) = p("RCPT TO:<\"a>b\"@c.d>")
        else {
            panic!()
        };
        assert_eq!(m.local, "a>b");
    }

    #[test]
    fn bdat_and_auth() {
        assert_eq!(
            p("BDAT 100 LAST"),
            Ok(Command::Bdat {
                size: 100,
                last: true
            })
        );
        assert_eq!(
            p("bdat 0"),
            Ok(Command::Bdat {
                size: 0,
                last: false
            })
        );
        assert!(p("BDAT").is_err() && p("BDAT -1").is_err() && p("BDAT 5 NOW").is_err());
        assert_eq!(
            p("AUTH plain AGEAYg=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGEAYg==".into())
            })
        );
        assert_eq!(
            p("AUTH LOGIN"),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            })
        );
        assert!(p("AUTH").is_err());
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    /// A small deterministic generator: the same inputs on every run.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn no_input_makes_the_parser_panic() {
        let seeds: [&[u8]; 6] = [
            b"MAIL FROM:<a@b.c> SIZE=10 BODY=8BITMIME",
            b"RCPT TO:<\"q\\\"x\"@[IPv6:::1]> NOTIFY=SUCCESS ORCPT=rfc822;a+2Bb",
            b"RCPT TO:<@a,@b:c@d>",
            b"AUTH PLAIN =",
            b"BDAT 18446744073709551615 LAST",
            b"EHLO \xf0\x9f\x92\xa9",
        ];
        let alphabet = b"<>@:\"\\[]., =+%!-;0123456789abcdefghijklmnopqrstuvwxyzMAILRCPTFROMTO\xc3\xa9\xff\x00";
        let mut seed = 7u64;
        for base in seeds {
            for _ in 0..20_000 {
                let mut line = base.to_vec();
                for _ in 0..(lcg(&mut seed) % 6) {
                    let pos = (lcg(&mut seed) as usize) % (line.len() + 1);
                    match lcg(&mut seed) % 3 {
                        0 if pos < line.len() => {
                            line.remove(pos);
                        }
                        1 if pos < line.len() => {
                            line[pos] = alphabet[lcg(&mut seed) as usize % alphabet.len()]
                        }
                        _ => line.insert(pos, alphabet[lcg(&mut seed) as usize % alphabet.len()]),
                    }
                }
                let _ = parse(&line);
            }
        }
    }
}
