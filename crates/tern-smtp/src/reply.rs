//! SMTP replies: a code, an RFC 3463 enhanced status code (RFC 2034) and
//! text. Every reply carries an enhanced code except the greeting and the
//! answers to EHLO/HELO, which RFC 2034 §3 exempts.

use std::borrow::Cow;

/// One reply, possibly of several lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `"2.1.0"`; `None` for the greeting, EHLO/HELO and 354.
    pub status: Option<Cow<'static, str>>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, status: impl Into<Cow<'static, str>>, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status.into()),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code.
    pub fn bare(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines,
        }
    }

    /// 4xx and 5xx: the client did something that did not work.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Appends the wire form (CRLF line ends) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            // Text never carries a line break of its own (it may quote a
            // client's words), so one reply stays one reply.
            let line = line.replace(['\r', '\n'], " ");
            let text = match &self.status {
                Some(status) => format!("{}{sep}{status} {line}\r\n", self.code),
                None => format!("{}{sep}{line}\r\n", self.code),
            };
            out.extend_from_slice(text.as_bytes());
        }
        if self.lines.is_empty() {
            out.extend_from_slice(format!("{}\r\n", self.code).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        let mut out = Vec::new();
        Reply::new(250, "2.1.0", "Sender OK").write_to(&mut out);
        Reply::bare(
            250,
            vec!["mx.example".into(), "PIPELINING".into(), "SIZE 100".into()],
        )
        .write_to(&mut out);
        Reply::new(550, "5.1.1", "no such user\r\nforged: yes").write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "250 2.1.0 Sender OK\r\n250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n550 5.1.1 no such user  forged: yes\r\n"
        );
    }
}
