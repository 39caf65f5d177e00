//! The lexical layer of RFC 9051 §9: atoms, quoted strings, literals,
//! numbers, and the small compound pieces every command uses (sequence
//! sets, flag lists, dates).
//!
//! The input is one whole command as it came over the wire, literals
//! included (`{5}\r\nhello`), without the final CRLF. Nothing here panics on
//! any input: every read is bounds-checked and reports a [`ParseError`].

use super::ParseError;

/// A read position over one command.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// RFC 9051 atom-specials, besides CTL and SP.
fn is_atom_special(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
    ) || b < 0x20
        || b == 0x7f
}

/// ATOM-CHAR; UTF-8 bytes are allowed (RFC 9051 utf8 mailbox names in atoms
/// are not, but lenient reading costs nothing and the session validates).
pub fn is_atom_char(b: u8) -> bool {
    !is_atom_special(b)
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes `b` if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, b: u8, what: &'static str) -> Result<(), ParseError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(ParseError::Syntax(what))
        }
    }

    pub fn sp(&mut self) -> Result<(), ParseError> {
        self.expect(b' ', "expected a space")
    }

    /// Consumes `word` (case-insensitive) if it is next and not followed by
    /// more atom characters.
    pub fn keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        match self.buf.get(self.pos..end) {
            Some(s) if s.eq_ignore_ascii_case(word.as_bytes()) => {
                if self
                    .buf
                    .get(end)
                    .is_some_and(|&b| is_atom_char(b) && b != b'[')
                {
                    return false;
                }
                self.pos = end;
                true
            }
            _ => false,
        }
    }

    /// Bytes while `pred` holds, at least one.
    fn take_while(
        &mut self,
        pred: impl Fn(u8) -> bool,
        what: &'static str,
    ) -> Result<&'a [u8], ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(ParseError::Syntax(what));
        }
        Ok(&self.buf[start..self.pos])
    }

    pub fn atom(&mut self) -> Result<String, ParseError> {
        let bytes = self.take_while(is_atom_char, "expected an atom")?;
        utf8(bytes)
    }

    /// An atom that may contain `]` (ASTRING-CHAR).
    fn astring_atom(&mut self) -> Result<&'a [u8], ParseError> {
        self.take_while(
            |b| is_atom_char(b) || b == b']',
            "expected an atom or a string",
        )
    }

    pub fn number(&mut self) -> Result<u64, ParseError> {
        let digits = self.take_while(|b| b.is_ascii_digit(), "expected a number")?;
        std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
            .filter(|n| *n <= i64::MAX as u64)
            .ok_or(ParseError::Syntax("number out of range"))
    }

    pub fn number32(&mut self) -> Result<u32, ParseError> {
        u32::try_from(self.number()?).map_err(|_| ParseError::Syntax("number out of range"))
    }

    pub fn nz_number(&mut self) -> Result<u32, ParseError> {
        match self.number32()? {
            0 => Err(ParseError::Syntax("expected a non-zero number")),
            n => Ok(n),
        }
    }

    /// True when a literal starts here: `{` or `~{` (literal8). A `~`
    /// alone is an atom character (`~foo` is an atom).
    pub fn at_literal(&self) -> bool {
        match self.peek() {
            Some(b'{') => true,
            Some(b'~') => self.buf.get(self.pos + 1) == Some(&b'{'),
            _ => false,
        }
    }

    /// True when a string starts here: a quoted string or a literal.
    pub fn at_string(&self) -> bool {
        self.peek() == Some(b'"') || self.at_literal()
    }

    /// A quoted string or a literal, as bytes.
    pub fn string_bytes(&mut self) -> Result<Vec<u8>, ParseError> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            _ if self.at_literal() => self.literal(),
            _ => Err(ParseError::Syntax("expected a string")),
        }
    }

    pub fn string(&mut self) -> Result<String, ParseError> {
        let bytes = self.string_bytes()?;
        String::from_utf8(bytes).map_err(|_| ParseError::Syntax("the string is not valid UTF-8"))
    }

    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ParseError::Syntax("unterminated quoted string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return Err(ParseError::Syntax("bad escape in a quoted string")),
                    }
                }
                Some(b'\r' | b'\n' | 0) => {
                    return Err(ParseError::Syntax("line break in a quoted string"))
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}` / `{n+}` (LITERAL+/-) and `~{n}` (literal8, RFC 3516), then
    /// CRLF and n bytes.
    fn literal(&mut self) -> Result<Vec<u8>, ParseError> {
        let binary = self.eat(b'~');
        self.expect(b'{', "expected a literal")?;
        let n = self.number()? as usize;
        self.eat(b'+');
        self.expect(b'}', "expected } after the literal size")?;
        self.expect(b'\r', "expected CRLF after a literal size")?;
        self.expect(b'\n', "expected CRLF after a literal size")?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(ParseError::Syntax("the literal is shorter than announced"))?;
        let data = self.buf[self.pos..end].to_vec();
        if !binary && data.contains(&0) {
            return Err(ParseError::Syntax(
                "NUL in a literal; use literal8 (~{n}) for binary",
            ));
        }
        self.pos = end;
        Ok(data)
    }

    /// astring: an atom (ASTRING-CHAR) or a string.
    pub fn astring_bytes(&mut self) -> Result<Vec<u8>, ParseError> {
        if self.at_string() {
            self.string_bytes()
        } else {
            Ok(self.astring_atom()?.to_vec())
        }
    }

    pub fn astring(&mut self) -> Result<String, ParseError> {
        utf8(&self.astring_bytes()?)
    }

    /// nstring: NIL or a string.
    pub fn nstring(&mut self) -> Result<Option<String>, ParseError> {
        if self.keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A list-mailbox: like an astring, with the wildcards `%` and `*`.
    pub fn list_mailbox(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            _ if self.at_string() => self.string(),
            _ => utf8(self.take_while(
                |b| is_atom_char(b) || matches!(b, b'%' | b'*' | b']'),
                "expected a mailbox pattern",
            )?),
        }
    }

    /// A parenthesised list of items read by `item`, separated by spaces.
    pub fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        self.expect(b'(', "expected (")?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }

    /// A flag: `\Seen`-style system flag or a keyword atom.
    pub fn flag(&mut self) -> Result<String, ParseError> {
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return Ok("\\*".into());
            }
            return Ok(format!("\\{}", self.atom()?));
        }
        self.atom()
    }

    /// `(flag flag ...)`, or one flag without parentheses (STORE allows it).
    pub fn flags(&mut self) -> Result<Vec<String>, ParseError> {
        if self.peek() == Some(b'(') {
            self.list(Self::flag)
        } else {
            Ok(vec![self.flag()?])
        }
    }

    /// sequence-set (RFC 9051 §9), or `$` for the saved search (RFC 5182).
    pub fn sequence_set(&mut self) -> Result<SequenceSet, ParseError> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_number()?;
            let b = if self.eat(b':') {
                self.seq_number()?
            } else {
                a
            };
            ranges.push((a, b));
            if !self.eat(b',') {
                return Ok(SequenceSet::Ranges(ranges));
            }
        }
    }

    fn seq_number(&mut self) -> Result<SeqNumber, ParseError> {
        if self.eat(b'*') {
            Ok(SeqNumber::Last)
        } else {
            self.nz_number().map(SeqNumber::Value)
        }
    }

    /// date: `d-Mon-yyyy`, bare or quoted (RFC 9051 §9 "date").
    pub fn date(&mut self) -> Result<(i32, u32, u32), ParseError> {
        let quoted = self.eat(b'"');
        let text = utf8(self.take_while(
            |b| b.is_ascii_alphanumeric() || b == b'-',
            "expected a date",
        )?)?;
        if quoted {
            self.expect(b'"', "expected \" after the date")?;
        }
        parse_date(&text).ok_or(ParseError::Syntax("expected a date like 1-Feb-2026"))
    }

    /// date-time: `"dd-Mon-yyyy hh:mm:ss +zzzz"`, as unix seconds.
    pub fn date_time(&mut self) -> Result<i64, ParseError> {
        let bytes = self.quoted()?;
        let text = utf8(&bytes)?;
        parse_date_time(&text).ok_or(ParseError::Syntax(
            "expected a date-time like \"01-Feb-2026 10:00:00 +0000\"",
        ))
    }

    pub fn rest_is_empty(&self) -> Result<(), ParseError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(ParseError::Syntax("unexpected text after the command"))
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<String, ParseError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ParseError::Syntax("not valid UTF-8"))
}

/// A sequence set: message numbers or UIDs, by range, or the saved result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    /// Inclusive ranges, as written (`a:b` may have a > b).
    Ranges(Vec<(SeqNumber, SeqNumber)>),
    /// `$`: the result of the last SEARCH with SAVE (RFC 5182).
    Saved,
}

/// A number in a sequence set; `*` is the largest in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNumber {
    Value(u32),
    Last,
}

impl SequenceSet {
    /// The numbers of the set among 1..=`max` (`*` = `max`), ascending and
    /// without duplicates; ranges are clamped to `max` so a huge range
    /// costs nothing. `None` for `$`, which the session resolves.
    /// True when the set uses `*`.
    pub fn mentions_last(&self) -> bool {
        match self {
            SequenceSet::Ranges(r) => r
                .iter()
                .any(|&(a, b)| a == SeqNumber::Last || b == SeqNumber::Last),
            SequenceSet::Saved => false,
        }
    }

    /// The largest number written in the set (`*` aside), if any.
    pub fn highest_written(&self) -> Option<u32> {
        let SequenceSet::Ranges(ranges) = self else {
            return None;
        };
        ranges
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .filter_map(|n| match n {
                SeqNumber::Value(v) => Some(v),
                SeqNumber::Last => None,
            })
            .max()
    }

    pub fn resolve(&self, max: u32) -> Option<Vec<(u32, u32)>> {
        let SequenceSet::Ranges(ranges) = self else {
            return None;
        };
        let value = |n: SeqNumber| match n {
            SeqNumber::Value(v) => v,
            SeqNumber::Last => max,
        };
        let mut out: Vec<(u32, u32)> = ranges
            .iter()
            .map(|&(a, b)| {
                let (a, b) = (value(a), value(b));
                (a.min(b), a.max(b))
            })
            .collect();
        out.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(out.len());
        for (a, b) in out {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Some(merged)
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn parse_date(text: &str) -> Option<(i32, u32, u32)> {
    let mut parts = text.split('-');
    let day: u32 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))? as u32
        + 1;
    let year: i32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
        return None;
    }
    Some((year, month, day))
}

fn parse_date_time(text: &str) -> Option<i64> {
    let (date, rest) = text.trim_start().split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let (y, m, d) = parse_date(date)?;
    // RFC 9051 §9: time = 2DIGIT ":" 2DIGIT ":" 2DIGIT, zone = ("+" / "-")
    // 4DIGIT. Digits only: `i64::from_str` alone takes a sign, so an hour of
    // "-9223372036854775808" passed the range checks below and overflowed
    // the sum (a panic with overflow checks on, a wrong date without); see
    // fuzz/corpus/imap_command/crash-append-date-time-negative-hour.
    let mut hms = time.split(':').map(digits);
    let (h, min, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || min > 59 || s > 60 || zone.len() != 5 {
        return None;
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh = digits(zone.get(1..3)?)?;
    let zm = digits(zone.get(3..5)?)?;
    let offset = sign * (zh * 3600 + zm * 60);
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60 + s - offset)
}

/// One or two ASCII digits (one is tolerated where the grammar has 2DIGIT).
fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 2 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01: the Store's, which reads Date fields with it.
pub use tern_store::message::date::days_from_civil;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_literals() {
        let mut c = Cursor::new(b"\"a \\\"q\\\" b\" {5}\r\nhe\"lo ~{3}\r\na\0b {0+}\r\n");
        assert_eq!(c.string().unwrap(), "a \"q\" b");
        c.sp().unwrap();
        assert_eq!(c.string().unwrap(), "he\"lo");
        c.sp().unwrap();
        assert_eq!(c.string_bytes().unwrap(), b"a\0b");
        c.sp().unwrap();
        assert_eq!(c.string().unwrap(), "");
        assert!(c.at_end());
        assert!(Cursor::new(b"{10}\r\nshort").string().is_err());
        assert!(Cursor::new(b"{99999999999999999999}\r\n").string().is_err());
        assert!(Cursor::new(b"\"open").string().is_err());
        assert!(Cursor::new(b"{3}\r\na\0b").string().is_err());
    }

    #[test]
    fn sequence_sets() {
        let s = Cursor::new(b"1:3,7,5:*,2").sequence_set().unwrap();
        assert_eq!(s.resolve(9), Some(vec![(1, 3), (5, 9)]));
        assert_eq!(
            Cursor::new(b"*:4").sequence_set().unwrap().resolve(2),
            Some(vec![(2, 4)])
        );
        assert_eq!(
            Cursor::new(b"$").sequence_set().unwrap(),
            SequenceSet::Saved
        );
        assert!(Cursor::new(b"0").sequence_set().is_err());
        assert!(Cursor::new(b"1:").sequence_set().is_err());
        assert!(Cursor::new(b"4294967296").sequence_set().is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(Cursor::new(b"1-Feb-2026").date().unwrap(), (2026, 2, 1));
        assert_eq!(
            Cursor::new(b"\"21-nov-2026\"").date().unwrap(),
            (2026, 11, 21)
        );
        assert!(Cursor::new(b"32-Feb-2026").date().is_err());
        assert_eq!(
            Cursor::new(b"\"21-Nov-2026 22:02:00 +0000\"")
                .date_time()
                .unwrap(),
            1_795_298_520
        );
        assert_eq!(
            Cursor::new(b"\"21-Nov-2026 23:02:00 +0100\"")
                .date_time()
                .unwrap(),
            1_795_298_520
        );
        assert!(Cursor::new(b"\"21-Nov-2026 25:00:00 +0000\"")
            .date_time()
            .is_err());
        assert!(Cursor::new(b"\"21-Nov-2026 10:00:00 0000\"")
            .date_time()
            .is_err());
        // Signed or long fields are not 2DIGIT: refused, never overflowing.
        for bad in [
            &b"\"01-Jan-2026 -9223372036854775808:00:00 +0000\""[..],
            b"\"01-Jan-2026 00:-9223372036854775808:00 +0000\"",
            b"\"01-Jan-2026 00:00:-9223372036854775808 +0000\"",
            b"\"01-Jan-2026 -1:00:00 +0000\"",
            b"\"01-Jan-2026 +1:00:00 +0000\"",
            b"\"01-Jan-2026 00:00:00 +-1-1\"",
            b"\"01-Jan-2026 010:00:00 +0000\"",
        ] {
            assert!(Cursor::new(bad).date_time().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn atoms_flags_and_keywords() {
        let mut c = Cursor::new(b"(\\Seen $Junk \\*) INBOX.x");
        assert_eq!(c.flags().unwrap(), ["\\Seen", "$Junk", "\\*"]);
        c.sp().unwrap();
        assert_eq!(c.astring().unwrap(), "INBOX.x");
        let mut c = Cursor::new(b"BODY.PEEK[");
        assert!(!c.keyword("BODY"));
        assert!(Cursor::new(b"uid ").keyword("UID"));
    }
}
