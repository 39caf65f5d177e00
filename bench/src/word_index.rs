//! Substring search over words, measured by `index-bench` (issue 10): how
//! a word index would cut text into tokens, and how a substring becomes a
//! query of those tokens. Not used by the store (BENCHMARKS.md says why).
//!
//! IMAP SEARCH BODY/TEXT is a case-insensitive substring match (RFC 9051
//! §6.4.4), so a word index alone cannot answer it: "ollow" is inside
//! "following". A trigram index can, but keeps a position per character
//! of text, which made the index twice the size of the mail (BENCHMARKS.md,
//! issue 10). This index keeps a position per word instead and still
//! answers every substring exactly, without reading any message:
//!
//! - Text is folded ([`fts5_fold`], as the trigram index folded it) and cut
//!   into **tokens**: a run of word characters and the run of other
//!   characters after it ("hello, " "world."). A token starts exactly where
//!   a non-word character is followed by a word character, which a needle
//!   shows the same way wherever it lies in the text.
//! - So a needle with cuts inside it, `n0 | n1 | … | nk`, occurs in the text
//!   exactly when some token ends with `n0`, the next ones are `n1` … in
//!   turn, and the one after starts with `nk`. Each token is indexed twice,
//!   forward and reversed, one after the other (`F(t0) R(t0) F(t1) R(t1)`),
//!   so "ends with `n0`" is a prefix query of the reversed form and the
//!   whole needle is one FTS5 phrase: `R(n0)* F(n1) R(n1) … F(nk)*`.
//! - A needle without a cut lies inside one token: the tokens that contain
//!   it are found in the vocabulary (its own trigram index, small), and the
//!   messages holding any of them are the answer.
//!
//! FTS5's `ascii` tokenizer is given the tokens space-separated: ASCII
//! characters other than letters and digits are written as private-use
//! characters ([`ESCAPE_BASE`]) so that no token is split again. Text that
//! already holds characters of that private-use range, or a token longer
//! than [`MAX_TOKEN_CHARS`], cannot be written exactly; such a message is
//! not indexed but listed to be scanned.

use tern_store::sqlite::fts5_fold;

/// ASCII non-word characters are written as `ESCAPE_BASE + code`.
const ESCAPE_BASE: u32 = 0xE000;

/// Starts the reversed form of a token.
const REVERSED: char = '\u{E100}';

/// Characters of text that the encoding uses, so text holding them is not
/// indexed (it is scanned instead).
const RESERVED: std::ops::RangeInclusive<char> = '\u{E000}'..='\u{E1FF}';

/// Longest token indexed; a message with a longer one (a very long URL or
/// line of dashes) is scanned instead.
pub const MAX_TOKEN_CHARS: usize = 240;

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// The tokens of folded text: each a run of word characters followed by
/// the run of non-word characters after it (the first may be non-word
/// characters only).
fn tokens(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut prev_word = true;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            let word = is_word(c);
            if i > 0 && word && !prev_word {
                end = i;
                break;
            }
            prev_word = word;
        }
        let (token, after) = rest.split_at(end);
        rest = after;
        Some(token)
    })
}

fn push_encoded(c: char, out: &mut String) {
    if c.is_ascii() && !c.is_ascii_alphanumeric() {
        out.push(char::from_u32(ESCAPE_BASE + c as u32).unwrap_or(c));
    } else {
        out.push(c);
    }
}

/// A token as indexed going forward.
fn forward(token: &str, out: &mut String) {
    for c in token.chars() {
        push_encoded(c, out);
    }
}

/// A token as indexed backward: the marker, then its characters last first.
fn reversed(token: &str, out: &mut String) {
    out.push(REVERSED);
    for c in token.chars().rev() {
        push_encoded(c, out);
    }
}

/// Folds text as the index compares it.
fn fold(text: &str) -> String {
    text.chars().map(fts5_fold).collect()
}

/// The document FTS5 indexes for `text` (its `ascii` tokenizer splits it
/// at the spaces), or None when the text cannot be written exactly (see
/// the module documentation) and must be scanned instead.
pub fn document(text: &str) -> Option<String> {
    let folded = fold(text);
    if folded.chars().any(|c| RESERVED.contains(&c)) {
        return None;
    }
    let mut out = String::with_capacity(folded.len() * 2 + 16);
    for token in tokens(&folded) {
        if token.chars().count() > MAX_TOKEN_CHARS {
            return None;
        }
        forward(token, &mut out);
        out.push(' ');
        reversed(token, &mut out);
        out.push(' ');
    }
    Some(out)
}

/// Whether `needle` is a substring of `text` as the index compares them
/// (both folded): the answer a plan must give, for checks.
pub fn contains(text: &str, needle: &str) -> bool {
    fold(text).contains(&fold(needle))
}

/// The distinct forward tokens of a document from [`document`], for the
/// vocabulary.
pub fn vocabulary(document: &str) -> std::collections::BTreeSet<&str> {
    document
        .split(' ')
        .filter(|t| !t.is_empty() && !t.starts_with(REVERSED))
        .collect()
}

/// The forward tokens of a document from [`document`], in order.
pub fn forward_tokens(document: &str) -> impl Iterator<Item = &str> {
    document
        .split(' ')
        .filter(|t| !t.is_empty() && !t.starts_with(REVERSED))
}

/// A needle's tokens written forward (as [`forward_tokens`] gives the
/// text's), or None if no indexed text can hold it.
pub fn needle_tokens(needle: &str) -> Option<Vec<String>> {
    let folded = fold(needle);
    if folded.chars().any(|c| RESERVED.contains(&c)) {
        return None;
    }
    let parts: Vec<String> = tokens(&folded)
        .map(|t| {
            let mut out = String::new();
            forward(t, &mut out);
            out
        })
        .collect();
    (!parts.iter().any(|t| t.chars().count() > MAX_TOKEN_CHARS)).then_some(parts)
}

/// How the index answers one needle.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// No indexed message can hold it (it has reserved characters or a
    /// token too long to index): only the scanned messages can match.
    Nowhere,
    /// The needle lies inside one token: this, written forward, is looked
    /// up in the vocabulary, and messages holding any token that contains
    /// it match.
    Inside(String),
    /// An FTS5 MATCH expression, a phrase that matches exactly the
    /// messages holding the needle.
    Phrase(String),
}

/// The plan for a needle (not folded; NULs already removed).
pub fn plan(needle: &str) -> Plan {
    let folded = fold(needle);
    if folded.chars().any(|c| RESERVED.contains(&c)) {
        return Plan::Nowhere;
    }
    let parts: Vec<&str> = tokens(&folded).collect();
    if parts.iter().any(|t| t.chars().count() > MAX_TOKEN_CHARS) {
        return Plan::Nowhere;
    }
    match parts.as_slice() {
        [] => Plan::Inside(String::new()),
        [only] => {
            let mut inside = String::new();
            forward(only, &mut inside);
            Plan::Inside(inside)
        }
        [first, middle @ .., last] => Plan::Phrase(phrase(first, middle, last, true, true)),
    }
}

/// For a needle with cuts (`n0 | … | nk`, k ≥ 1): the character counts of
/// its edges `n0` and `nk`, and the phrase with either edge left out
/// (`with_first`, `with_last` false), which then matches a superset.
pub fn phrase_without_edges(
    needle: &str,
    with_first: bool,
    with_last: bool,
) -> Option<(usize, usize, String)> {
    let folded = fold(needle);
    let parts: Vec<&str> = tokens(&folded).collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return None;
    };
    let phrase = phrase(first, middle, last, with_first, with_last);
    Some((first.chars().count(), last.chars().count(), phrase))
}

/// The FTS5 phrase `R(first)* F(m) R(m) … F(last)*` of a needle's tokens,
/// either edge left out when not `with_first` / `with_last`.
fn phrase(first: &str, middle: &[&str], last: &str, with_first: bool, with_last: bool) -> String {
    let mut terms: Vec<(String, bool)> = Vec::new();
    let mut term = String::new();
    if with_first {
        reversed(first, &mut term);
        terms.push((term.clone(), true));
    }
    for t in middle {
        for encode in [forward, reversed] {
            term.clear();
            encode(t, &mut term);
            terms.push((term.clone(), false));
        }
    }
    if with_last {
        term.clear();
        forward(last, &mut term);
        terms.push((term.clone(), true));
    }
    let mut phrase = String::new();
    for (t, prefix) in &terms {
        if !phrase.is_empty() {
            phrase.push_str(" + ");
        }
        quote_into(t, &mut phrase);
        if *prefix {
            phrase.push_str(" *");
        }
    }
    phrase
}

/// An FTS5 string: encoded tokens hold no quote (ASCII punctuation is
/// escaped), so quoting is enough.
fn quote_into(term: &str, out: &mut String) {
    out.push('"');
    out.push_str(term);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_a_word_and_what_follows_it() {
        let t: Vec<&str> = tokens(", hello,  world.\nfoo").collect();
        assert_eq!(t, [", ", "hello,  ", "world.\n", "foo"]);
        assert_eq!(tokens("").count(), 0);
        assert_eq!(tokens("abc").collect::<Vec<_>>(), ["abc"]);
    }

    #[test]
    fn a_document_holds_each_token_forward_then_reversed() {
        let d = document("Hi, Bob").unwrap();
        assert_eq!(
            d,
            "hi\u{E02C}\u{E020} \u{E100}\u{E020}\u{E02C}ih bob \u{E100}bob "
        );
        assert_eq!(
            vocabulary(&d).into_iter().collect::<Vec<_>>(),
            ["bob", "hi\u{E02C}\u{E020}"]
        );
        assert_eq!(document("a\u{E020}b"), None);
        assert_eq!(document(&"x".repeat(MAX_TOKEN_CHARS + 1)), None);
    }

    #[test]
    fn needles_become_phrases_or_vocabulary_lookups() {
        assert_eq!(plan("OLLOW"), Plan::Inside("ollow".into()));
        assert_eq!(
            plan("lo, w"),
            Plan::Phrase("\"\u{E100}\u{E020}\u{E02C}ol\" * + \"w\" *".into())
        );
        assert_eq!(
            plan("o big w"),
            Plan::Phrase(
                "\"\u{E100}\u{E020}o\" * + \"big\u{E020}\" + \"\u{E100}\u{E020}gib\" + \"w\" *"
                    .into()
            )
        );
        assert_eq!(plan("\u{E000}x"), Plan::Nowhere);
    }

    /// Every substring of 3 to 7 characters of some awkward texts (runs of
    /// separators, punctuation at either end, folded letters), through a
    /// real FTS5 table, against a plain search of the folded text.
    #[test]
    fn plans_answer_exactly_as_a_substring_search() {
        let texts = [
            "Hello,  World. Foo-bar baz!",
            "  leading space and trailing  ",
            "ΣΊΣΥΦΟΣ ςσ straße, Straße",
            "a.b.c d..e f -- g",
            "x\u{E020}y is not indexed",
        ];
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5 (text, content = '', tokenize = 'ascii');
             CREATE TABLE vocab (term TEXT PRIMARY KEY);",
        )
        .unwrap();
        for (id, text) in texts.iter().enumerate() {
            if let Some(doc) = document(text) {
                conn.execute(
                    "INSERT INTO t (rowid, text) VALUES (?1, ?2)",
                    rusqlite::params![id as i64, doc],
                )
                .unwrap();
                for term in vocabulary(&doc) {
                    conn.execute("INSERT OR IGNORE INTO vocab (term) VALUES (?1)", [term])
                        .unwrap();
                }
            }
        }
        let run = |e: &str| -> std::collections::BTreeSet<i64> {
            let mut stmt = conn
                .prepare("SELECT rowid FROM t WHERE t MATCH ?1")
                .unwrap();
            let rows = stmt.query_map([e], |r| r.get(0)).unwrap();
            rows.map(|r| r.unwrap()).collect()
        };
        for text in texts {
            let chars: Vec<char> = text.chars().collect();
            for len in 3..=7 {
                for needle in chars.windows(len).map(|w| w.iter().collect::<String>()) {
                    let expected: std::collections::BTreeSet<i64> = texts
                        .iter()
                        .enumerate()
                        .filter(|(_, t)| document(t).is_some() && contains(t, &needle))
                        .map(|(i, _)| i as i64)
                        .collect();
                    let found = match plan(&needle) {
                        Plan::Nowhere => Default::default(),
                        Plan::Phrase(p) => run(&p),
                        Plan::Inside(inside) => {
                            let mut stmt = conn.prepare("SELECT term FROM vocab").unwrap();
                            let terms: Vec<String> = stmt
                                .query_map([], |r| r.get(0))
                                .unwrap()
                                .map(|r| r.unwrap())
                                .collect();
                            terms
                                .iter()
                                .filter(|t| t.contains(inside.as_str()))
                                .flat_map(|t| run(&format!("\"{t}\"")))
                                .collect()
                        }
                    };
                    assert_eq!(found, expected, "needle {needle:?}");
                }
            }
        }
    }
}
