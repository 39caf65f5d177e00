//! Which key of a TOML document a byte offset belongs to.
//!
//! The toml crate reports a deserialisation error ("invalid socket address
//! syntax") with the byte span of the offending value but not the key it was
//! assigned to, so [`KeyMap`] recovers that key to let an error message say
//! `listen.imap` and a line number.
//!
//! This is a scanner, not a parser: it runs only on text that the toml crate
//! has already parsed, so it does not validate anything. Where it meets
//! something it does not follow it stops, and answers from what it has seen
//! (the caller then reports the line alone). It never panics.

use std::ops::Range;

/// One key as written: its full dotted path, where its name is, and where its
/// value (or, for a `[table]` header, its section) is.
#[derive(Debug)]
struct Entry {
    path: Vec<String>,
    key: Range<usize>,
    value: Option<Range<usize>>,
}

/// The keys of a document, with their byte spans.
#[derive(Debug)]
pub(super) struct KeyMap {
    entries: Vec<Entry>,
}

impl KeyMap {
    /// Scans `text`, which the toml crate has already accepted as TOML.
    pub(super) fn scan(text: &str) -> KeyMap {
        let mut scanner = Scanner {
            b: text.as_bytes(),
            i: 0,
            entries: Vec::new(),
            section: None,
        };
        // `None` only means the scanner gave up; what it found is still good.
        let _ = scanner.document();
        scanner.close_section();
        KeyMap {
            entries: scanner.entries,
        }
    }

    /// The full path of the key whose *name* covers `offset`.
    pub(super) fn key_at(&self, offset: usize) -> Option<&[String]> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.contains(&offset))
            .map(|e| e.path.as_slice())
    }

    /// The full path of the innermost key whose *value* covers `offset`.
    pub(super) fn value_at(&self, offset: usize) -> Option<&[String]> {
        self.entries
            .iter()
            .filter_map(|e| Some((e.value.as_ref()?, e)))
            .filter(|(v, _)| v.contains(&offset) || (v.is_empty() && v.start == offset))
            .min_by_key(|(v, _)| v.len())
            .map(|(_, e)| e.path.as_slice())
    }

    /// The byte offset of the first occurrence of the key `path`.
    pub(super) fn find(&self, path: &[&str]) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.path.iter().map(String::as_str).eq(path.iter().copied()))
            .map(|e| e.key.start)
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    entries: Vec<Entry>,
    /// The entry of the current `[table]` header, whose section ends at the
    /// next header.
    section: Option<usize>,
}

impl Scanner<'_> {
    fn document(&mut self) -> Option<()> {
        let mut table: Vec<String> = Vec::new();
        loop {
            self.skip_trivia();
            if self.i >= self.b.len() {
                return Some(());
            }
            if self.peek()? == b'[' {
                self.close_section();
                let start = self.i;
                self.i += 1;
                let array = self.eat(b'[');
                let (path, last) = self.key(&[])?;
                self.skip_ws();
                self.expect(b']')?;
                if array {
                    self.expect(b']')?;
                }
                if let Some(entry) = self.entries.get_mut(last) {
                    entry.value = Some(start..start);
                }
                self.section = Some(last);
                table = path;
            } else {
                self.keyval(&table)?;
            }
        }
    }

    /// Ends the current `[table]` section at the current position.
    fn close_section(&mut self) {
        let end = self.i.min(self.b.len());
        if let Some(entry) = self.section.take().and_then(|i| self.entries.get_mut(i)) {
            if let Some(value) = &mut entry.value {
                value.end = end;
            }
        }
    }

    /// `key = value`, recording the key under `base`.
    fn keyval(&mut self, base: &[String]) -> Option<()> {
        let (path, last) = self.key(base)?;
        self.skip_ws();
        self.expect(b'=')?;
        self.skip_ws();
        let start = self.i;
        self.value(&path)?;
        if let Some(entry) = self.entries.get_mut(last) {
            entry.value = Some(start..self.i);
        }
        Some(())
    }

    /// A dotted key; records an entry for each prefix and returns the full
    /// path and the index of its entry.
    fn key(&mut self, base: &[String]) -> Option<(Vec<String>, usize)> {
        let mut path = base.to_vec();
        loop {
            self.skip_ws();
            let start = self.i;
            let name = match self.peek()? {
                b'"' => {
                    self.basic_string()?;
                    self.text(start + 1..self.i - 1)
                }
                b'\'' => {
                    self.literal_string()?;
                    self.text(start + 1..self.i - 1)
                }
                _ => {
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                    {
                        self.i += 1;
                    }
                    if self.i == start {
                        return None;
                    }
                    self.text(start..self.i)
                }
            };
            path.push(name);
            self.entries.push(Entry {
                path: path.clone(),
                key: start..self.i,
                value: None,
            });
            self.skip_ws();
            if !self.eat(b'.') {
                return Some((path, self.entries.len() - 1));
            }
        }
    }

    fn value(&mut self, path: &[String]) -> Option<()> {
        match self.peek()? {
            b'"' => self.basic_string(),
            b'\'' => self.literal_string(),
            b'[' => {
                self.i += 1;
                loop {
                    self.skip_trivia();
                    if self.eat(b']') {
                        return Some(());
                    }
                    self.value(path)?;
                    self.skip_trivia();
                    if !self.eat(b',') {
                        self.skip_trivia();
                        return self.expect(b']');
                    }
                }
            }
            b'{' => {
                self.i += 1;
                loop {
                    self.skip_trivia();
                    if self.eat(b'}') {
                        return Some(());
                    }
                    self.keyval(path)?;
                    self.skip_trivia();
                    if !self.eat(b',') {
                        self.skip_trivia();
                        return self.expect(b'}');
                    }
                }
            }
            _ => {
                // Numbers, booleans, dates: up to a delimiter.
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b']' | b'}' | b'#' | b'\n' | b'\r'))
                {
                    self.i += 1;
                }
                while self.i > start && matches!(self.b[self.i - 1], b' ' | b'\t') {
                    self.i -= 1;
                }
                (self.i > start).then_some(())
            }
        }
    }

    /// `"..."` or `"""..."""`, leaving `i` after the closing quotes.
    fn basic_string(&mut self) -> Option<()> {
        self.quoted(b'"', true)
    }

    /// `'...'` or `'''...'''`, leaving `i` after the closing quotes.
    fn literal_string(&mut self) -> Option<()> {
        self.quoted(b'\'', false)
    }

    fn quoted(&mut self, quote: u8, escapes: bool) -> Option<()> {
        let triple = [quote; 3];
        let multi = self.b.get(self.i..self.i + 3) == Some(&triple[..]);
        self.i += if multi { 3 } else { 1 };
        loop {
            let c = self.peek()?;
            if escapes && c == b'\\' {
                self.i += 2;
            } else if multi && self.b.get(self.i..self.i + 3) == Some(&triple[..]) {
                self.i += 3;
                // Up to two quotes may sit just inside the closing delimiter.
                for _ in 0..2 {
                    self.eat(quote);
                }
                return Some(());
            } else if !multi && c == quote {
                self.i += 1;
                return Some(());
            } else if !multi && c == b'\n' {
                return None;
            } else {
                self.i += 1;
            }
        }
    }

    fn text(&self, range: Range<usize>) -> String {
        String::from_utf8_lossy(self.b.get(range).unwrap_or_default()).into_owned()
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Spaces, newlines and comments.
    fn skip_trivia(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.i += 1,
                Some(b'#') => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(map: &KeyMap, text: &str, needle: &str) -> Option<String> {
        let offset = text.find(needle).unwrap();
        map.value_at(offset).map(|p| p.join("."))
    }

    #[test]
    fn finds_keys_and_values() {
        let text = r#"
# comment with [brackets] and = signs
hostname = "mail.example.com" # trailing
data_dir = 'C:\data'

[listen]
smtp = [ "0.0.0.0:25",   # first
         "bad one",
]
"imap" = []
pop3.x = { a = 1, b = [ "q\"uote", 'z' ], c.d = 2 }

[[limits]]
max = """
multi "line" ""text"""
z = 1979-05-27 07:32:00Z
"#;
        let map = KeyMap::scan(text);
        assert_eq!(at(&map, text, "\"mail.").as_deref(), Some("hostname"));
        assert_eq!(at(&map, text, "'C:").as_deref(), Some("data_dir"));
        assert_eq!(at(&map, text, "\"bad one").as_deref(), Some("listen.smtp"));
        assert_eq!(at(&map, text, "[]").as_deref(), Some("listen.imap"));
        assert_eq!(at(&map, text, "1,").as_deref(), Some("listen.pop3.x.a"));
        assert_eq!(at(&map, text, "'z'").as_deref(), Some("listen.pop3.x.b"));
        assert_eq!(at(&map, text, "2 }").as_deref(), Some("listen.pop3.x.c.d"));
        assert_eq!(at(&map, text, "text").as_deref(), Some("limits.max"));
        assert_eq!(at(&map, text, "07:32").as_deref(), Some("limits.z"));
        // A header's section spans to the next header.
        assert_eq!(at(&map, text, "[[limits").as_deref(), Some("limits"));

        let name = |needle: &str| {
            map.key_at(text.find(needle).unwrap() + 1)
                .map(|p| p.join("."))
        };
        assert_eq!(name("\"imap\"").as_deref(), Some("listen.imap"));
        assert_eq!(name("pop3.x").as_deref(), Some("listen.pop3"));
        assert_eq!(name("listen]").as_deref(), Some("listen"));
        assert_eq!(map.find(&["listen", "imap"]), text.find("\"imap\""));
        assert_eq!(map.find(&["limits", "z"]), text.find("z ="));
        assert_eq!(map.find(&["nope"]), None);
    }

    #[test]
    fn gives_up_quietly() {
        for text in [
            "a = \"unterminated",
            "[",
            "= 1",
            "a = [1, 2",
            "\u{feff}x = 1",
            "a.b. = 1",
        ] {
            let map = KeyMap::scan(text);
            let _ = map.value_at(3);
            let _ = map.key_at(0);
        }
        let map = KeyMap::scan("a = 1\nb = \"open");
        assert_eq!(map.value_at(4).map(|p| p.join(".")).as_deref(), Some("a"));
    }
}
