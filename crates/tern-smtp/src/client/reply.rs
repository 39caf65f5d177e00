//! Replies of a remote SMTP server (RFC 5321 §4.2): a three-digit code,
//! `-` on every line but the last, text; RFC 3463 enhanced status codes
//! where the server gives them. Parsing is defensive: the peer is any
//! server on the internet.

use std::fmt;

/// Longest reply line read (RFC 5321 §4.5.3.1.5 says 512; real servers
/// send longer EHLO lines, so some slack).
pub const MAX_REPLY_LINE: usize = 4096;
/// Most lines in one reply (an EHLO lists a few dozen at most).
pub const MAX_REPLY_LINES: usize = 128;

/// A whole reply from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReply {
    pub code: u16,
    /// Each line's text after the code and separator.
    pub lines: Vec<String>,
}

impl PeerReply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: do not try again.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The RFC 3463 status code of the first line (`5.1.1`), if it has one
    /// whose class agrees with the reply code.
    pub fn enhanced_status(&self) -> Option<&str> {
        let first = self.lines.first()?;
        let word = first.split_ascii_whitespace().next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        let digits = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
        };
        let agrees = class.as_bytes().first() == self.code.to_string().as_bytes().first();
        (parts.next().is_none()
            && matches!(class, "2" | "4" | "5")
            && agrees
            && digits(subject, 3)
            && digits(detail, 3))
        .then_some(word)
    }

    /// The text of every line joined by spaces, for logs and DSNs.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }
}

impl fmt::Display for PeerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text())
    }
}

/// Why a reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the server's reply line is not <3 digits>[ -]<text>: {0:?}")]
    Malformed(String),
    #[error("the server changed its reply code within one reply ({first} then {then})")]
    MixedCodes { first: u16, then: u16 },
    #[error("the server's reply is longer than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    #[error("a reply line from the server is longer than {MAX_REPLY_LINE} bytes")]
    LineTooLong,
}

/// One line of a reply, CRLF (or LF) removed: its code, whether more lines
/// follow, and its text.
pub fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    if line.len() > MAX_REPLY_LINE {
        return Err(ReplyError::LineTooLong);
    }
    let shown = || String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err(ReplyError::Malformed(shown()));
    }
    let code = u16::from(line[0] - b'0') * 100
        + u16::from(line[1] - b'0') * 10
        + u16::from(line[2] - b'0');
    if !(200..600).contains(&code) {
        return Err(ReplyError::Malformed(shown()));
    }
    let (more, text) = match line.get(3) {
        None => (false, &line[3..3]),
        Some(b' ') => (false, &line[4..]),
        Some(b'-') => (true, &line[4..]),
        Some(_) => return Err(ReplyError::Malformed(shown())),
    };
    Ok((code, more, String::from_utf8_lossy(text).into_owned()))
}

/// Collects lines into replies.
#[derive(Debug, Default)]
pub struct ReplyBuilder {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyBuilder {
    /// Adds one line; the whole reply once its last line came.
    pub fn push(&mut self, line: &[u8]) -> Result<Option<PeerReply>, ReplyError> {
        let (code, more, text) = parse_line(line)?;
        match self.code {
            Some(first) if first != code => {
                return Err(ReplyError::MixedCodes { first, then: code })
            }
            _ => self.code = Some(code),
        }
        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.lines.push(text);
        if more {
            return Ok(None);
        }
        let reply = PeerReply {
            code,
            lines: std::mem::take(&mut self.lines),
        };
        self.code = None;
        Ok(Some(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(lines: &[&[u8]]) -> Result<PeerReply, ReplyError> {
        let mut b = ReplyBuilder::default();
        for (i, l) in lines.iter().enumerate() {
            if let Some(r) = b.push(l)? {
                assert_eq!(i, lines.len() - 1, "the reply ended early");
                return Ok(r);
            }
        }
        panic!("no end")
    }

    #[test]
    fn single_multi_and_enhanced() {
        let r = reply(&[b"250-mx.example.net", b"250-PIPELINING", b"250 SIZE 1000"]).unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(r.lines, ["mx.example.net", "PIPELINING", "SIZE 1000"]);
        let r = reply(&[b"550 5.1.1 <nobody@example.net>: no such user"]).unwrap();
        assert!(r.is_permanent());
        assert_eq!(r.enhanced_status(), Some("5.1.1"));
        let r = reply(&[b"451 4.3.0 try later"]).unwrap();
        assert!(r.is_transient());
        assert_eq!(reply(&[b"250"]).unwrap().lines, [""]);
        // A status whose class disagrees with the code is not one.
        assert_eq!(reply(&[b"550 2.1.1 odd"]).unwrap().enhanced_status(), None);
        assert_eq!(reply(&[b"250 ok"]).unwrap().enhanced_status(), None);
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"25",
            b"abc hello",
            b"250x",
            b"099 low",
            b"999 high",
            b"\xff\xfe\xfd",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?}");
        }
        let mut b = ReplyBuilder::default();
        assert!(b.push(b"250-a").unwrap().is_none());
        assert!(matches!(
            b.push(b"550 b"),
            Err(ReplyError::MixedCodes { .. })
        ));
        assert!(matches!(
            parse_line(&[b'2'; MAX_REPLY_LINE + 1]),
            Err(ReplyError::LineTooLong)
        ));
        let mut b = ReplyBuilder::default();
        let mut err = None;
        for _ in 0..=MAX_REPLY_LINES {
            if let Err(e) = b.push(b"250-x") {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(ReplyError::TooManyLines));
    }
}
