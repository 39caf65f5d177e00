//! Search criteria the Store evaluates for a mailbox: a tree of keys that
//! IMAP SEARCH (RFC 9051 §6.4.4) and JMAP Email/query (RFC 8621 §4.4.1)
//! both translate into.
//!
//! Dates are unix seconds: a protocol converts its own date rules (IMAP's
//! whole days "disregarding time and timezone") into a half-open range
//! before asking. String keys match substrings, case-insensitively.

use crate::types::{EmailId, ModSeq, ThreadId, Uid};

/// One search key; a list of keys at the top of IMAP SEARCH is an `And`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// Every message.
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    /// Messages whose UID is in one of the inclusive ranges.
    Uids(Vec<(Uid, Uid)>),
    /// Messages carrying the flag or keyword (case-insensitive).
    Keyword(String),
    /// RFC822.SIZE larger than n.
    Larger(u64),
    /// RFC822.SIZE smaller than n.
    Smaller(u64),
    /// INTERNALDATE in [since, before) — either end open when `None`.
    Received {
        since: Option<i64>,
        before: Option<i64>,
    },
    /// The Date header's day as written (time and zone disregarded, RFC
    /// 9051 §6.4.4), as that day's UTC midnight, in [since, before);
    /// messages without a parseable Date never match.
    Sent {
        since: Option<i64>,
        before: Option<i64>,
    },
    /// A header field (name case-insensitive) containing the value; an empty
    /// value matches every message that has the field (RFC 9051 §6.4.4 HEADER).
    Header {
        name: String,
        value: String,
    },
    /// The body text (through the full-text index).
    Body(String),
    /// Header or body text (through the full-text index).
    Text(String),
    /// Messages saved in the mailbox in [since, before) (RFC 8514
    /// SAVEDBEFORE/SAVEDON/SAVEDSINCE); those with an unknown save date
    /// never match.
    Saved {
        since: Option<i64>,
        before: Option<i64>,
    },
    /// Messages whose modseq is at least this (RFC 7162 §3.1.5 MODSEQ).
    ModSeqAtLeast(ModSeq),
    EmailIds(Vec<EmailId>),
    ThreadIds(Vec<ThreadId>),
}

impl SearchKey {
    /// Conjunction, flattening nested `And`s.
    pub fn and(keys: impl IntoIterator<Item = SearchKey>) -> SearchKey {
        let mut all = Vec::new();
        for k in keys {
            match k {
                SearchKey::And(inner) => all.extend(inner),
                SearchKey::All => {}
                other => all.push(other),
            }
        }
        match all.len() {
            0 => SearchKey::All,
            1 => all.pop().unwrap_or(SearchKey::All),
            _ => SearchKey::And(all),
        }
    }

    /// Calls `f` on every full-text key in the tree (`Body` and `Text`), so
    /// a backend can run those through its index before evaluating the rest.
    pub fn for_each_text_key(&self, f: &mut impl FnMut(&SearchKey)) {
        match self {
            SearchKey::And(keys) => keys.iter().for_each(|k| k.for_each_text_key(f)),
            SearchKey::Or(a, b) => {
                a.for_each_text_key(f);
                b.for_each_text_key(f);
            }
            SearchKey::Not(k) => k.for_each_text_key(f),
            SearchKey::Body(_) | SearchKey::Text(_) => f(self),
            _ => {}
        }
    }
}

/// True when `haystack` contains `needle`, ignoring case (Unicode simple
/// lowercase), as IMAP SEARCH string matching requires.
pub fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() && needle.is_ascii() {
        let n = needle.as_bytes();
        return haystack
            .as_bytes()
            .windows(n.len())
            .any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn and_flattens() {
        let k = SearchKey::and([
            SearchKey::All,
            SearchKey::And(vec![SearchKey::Larger(1), SearchKey::Smaller(9)]),
            SearchKey::Keyword("\\Seen".into()),
        ]);
        assert_eq!(
            k,
            SearchKey::And(vec![
                SearchKey::Larger(1),
                SearchKey::Smaller(9),
                SearchKey::Keyword("\\Seen".into())
            ])
        );
        assert_eq!(SearchKey::and([SearchKey::All]), SearchKey::All);
    }

    #[test]
    fn substring_match_ignores_case() {
        assert!(contains_ignore_case("Hello World", "o w"));
        assert!(contains_ignore_case("Grüße", "GRÜ"));
        assert!(!contains_ignore_case("abc", "abcd"));
        assert!(contains_ignore_case("abc", ""));
    }
}
