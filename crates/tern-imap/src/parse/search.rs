//! SEARCH keys (RFC 9051 §6.4.4, RFC 3501 §6.4.4), with MODSEQ (RFC 7162
//! §3.1.5), WITHIN's OLDER/YOUNGER (RFC 5032), SEARCHRES's `$` (RFC 5182),
//! OBJECTID's EMAILID/THREADID (RFC 8474) and ESEARCH's RETURN (RFC 4731).
//!
//! Dates stay as calendar dates here: IMAP compares them "disregarding time
//! and timezone", which the session turns into ranges.

use super::lexer::{Cursor, SequenceSet};
use super::ParseError;

/// Nesting past this is an attack, not a search.
const MAX_DEPTH: usize = 32;

/// One search key as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Deleted,
    Draft,
    Flagged,
    Seen,
    Recent,
    New,
    Old,
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unseen,
    Keyword(String),
    Unkeyword(String),
    Bcc(String),
    Cc(String),
    From(String),
    To(String),
    Subject(String),
    Body(String),
    Text(String),
    Header(String, String),
    /// Dates as (year, month, day).
    Before((i32, u32, u32)),
    On((i32, u32, u32)),
    Since((i32, u32, u32)),
    SentBefore((i32, u32, u32)),
    SentOn((i32, u32, u32)),
    SentSince((i32, u32, u32)),
    /// SAVEDBEFORE/SAVEDON/SAVEDSINCE and SAVEDATESUPPORTED (RFC 8514).
    SavedBefore((i32, u32, u32)),
    SavedOn((i32, u32, u32)),
    SavedSince((i32, u32, u32)),
    SaveDateSupported,
    Larger(u64),
    Smaller(u64),
    Older(u64),
    Younger(u64),
    Uid(SequenceSet),
    /// Message numbers.
    Sequence(SequenceSet),
    ModSeq(u64),
    EmailId(String),
    ThreadId(String),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    /// A parenthesised list: all must match.
    And(Vec<SearchKey>),
}

/// ESEARCH RETURN options (RFC 4731 §3.1, RFC 5182 SAVE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
}

/// `RETURN (...)` of SEARCH/SORT.
pub fn search_return(c: &mut Cursor<'_>) -> Result<Vec<SearchReturn>, ParseError> {
    c.list(|c| {
        Ok(match c.atom()?.to_ascii_uppercase().as_str() {
            "MIN" => SearchReturn::Min,
            "MAX" => SearchReturn::Max,
            "ALL" => SearchReturn::All,
            "COUNT" => SearchReturn::Count,
            "SAVE" => SearchReturn::Save,
            _ => return Err(ParseError::Syntax("unknown RETURN option")),
        })
    })
}

/// Keys separated by spaces until the end of the command.
pub fn search_keys(c: &mut Cursor<'_>) -> Result<Vec<SearchKey>, ParseError> {
    let mut keys = vec![search_key(c, 0)?];
    while !c.at_end() {
        c.sp()?;
        keys.push(search_key(c, 0)?);
    }
    Ok(keys)
}

fn search_key(c: &mut Cursor<'_>, depth: usize) -> Result<SearchKey, ParseError> {
    use SearchKey::*;
    if depth > MAX_DEPTH {
        return Err(ParseError::Syntax("search keys nested too deeply"));
    }
    if c.peek() == Some(b'(') {
        return Ok(And(c.list(|c| search_key(c, depth + 1))?));
    }
    if c.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        return Ok(Sequence(c.sequence_set()?));
    }
    let word = c.atom()?.to_ascii_uppercase();
    let arg = |c: &mut Cursor<'_>| -> Result<String, ParseError> {
        c.sp()?;
        c.astring()
    };
    let date = |c: &mut Cursor<'_>| {
        c.sp()?;
        c.date()
    };
    let number = |c: &mut Cursor<'_>| {
        c.sp()?;
        c.number()
    };
    Ok(match word.as_str() {
        "ALL" => All,
        "ANSWERED" => Answered,
        "DELETED" => Deleted,
        "DRAFT" => Draft,
        "FLAGGED" => Flagged,
        "SEEN" => Seen,
        "RECENT" => Recent,
        "NEW" => New,
        "OLD" => Old,
        "UNANSWERED" => Unanswered,
        "UNDELETED" => Undeleted,
        "UNDRAFT" => Undraft,
        "UNFLAGGED" => Unflagged,
        "UNSEEN" => Unseen,
        "KEYWORD" => {
            c.sp()?;
            Keyword(c.flag()?)
        }
        "UNKEYWORD" => {
            c.sp()?;
            Unkeyword(c.flag()?)
        }
        "BCC" => Bcc(arg(c)?),
        "CC" => Cc(arg(c)?),
        "FROM" => From(arg(c)?),
        "TO" => To(arg(c)?),
        "SUBJECT" => Subject(arg(c)?),
        "BODY" => Body(arg(c)?),
        "TEXT" => Text(arg(c)?),
        "HEADER" => {
            let name = arg(c)?;
            Header(name, arg(c)?)
        }
        "BEFORE" => Before(date(c)?),
        "ON" => On(date(c)?),
        "SINCE" => Since(date(c)?),
        "SENTBEFORE" => SentBefore(date(c)?),
        "SENTON" => SentOn(date(c)?),
        "SENTSINCE" => SentSince(date(c)?),
        "SAVEDBEFORE" => SavedBefore(date(c)?),
        "SAVEDON" => SavedOn(date(c)?),
        "SAVEDSINCE" => SavedSince(date(c)?),
        "SAVEDATESUPPORTED" => SaveDateSupported,
        "LARGER" => Larger(number(c)?),
        "SMALLER" => Smaller(number(c)?),
        "OLDER" => Older(number(c)?),
        "YOUNGER" => Younger(number(c)?),
        "UID" => {
            c.sp()?;
            Uid(c.sequence_set()?)
        }
        "MODSEQ" => {
            c.sp()?;
            // Optional entry name and type (RFC 7162 §3.1.5): "/flags/\\draft" all.
            if c.peek() == Some(b'"') {
                c.string()?;
                c.sp()?;
                c.atom()?;
                c.sp()?;
            }
            ModSeq(c.number()?)
        }
        "EMAILID" => EmailId(arg(c)?),
        "THREADID" => ThreadId(arg(c)?),
        "NOT" => {
            c.sp()?;
            Not(Box::new(search_key(c, depth + 1)?))
        }
        "OR" => {
            c.sp()?;
            let a = search_key(c, depth + 1)?;
            c.sp()?;
            Or(Box::new(a), Box::new(search_key(c, depth + 1)?))
        }
        _ => return Err(ParseError::Syntax("unknown search key")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::lexer::SeqNumber;
    use SearchKey::*;

    fn keys(s: &str) -> Result<Vec<SearchKey>, ParseError> {
        search_keys(&mut Cursor::new(s.as_bytes()))
    }

    #[test]
    fn keys_parse() {
        assert_eq!(
            keys("UNSEEN FROM \"Smith\" SINCE 1-Feb-2026 OR (LARGER 100 SMALLER 2000) NOT KEYWORD $Junk").unwrap(),
            [
                Unseen,
                From("Smith".into()),
                Since((2026, 2, 1)),
                Or(Box::new(And(vec![Larger(100), Smaller(2000)])), Box::new(Not(Box::new(Keyword("$Junk".into()))))),
            ]
        );
        assert_eq!(
            keys("1:3 UID $").unwrap(),
            [
                Sequence(SequenceSet::Ranges(vec![(
                    SeqNumber::Value(1),
                    SeqNumber::Value(3)
                )])),
                Uid(SequenceSet::Saved)
            ]
        );
        assert_eq!(
            keys("HEADER X-Tag {3}\r\nabc").unwrap(),
            [Header("X-Tag".into(), "abc".into())]
        );
        assert_eq!(
            keys("MODSEQ \"/flags/\\\\draft\" all 620162338").unwrap(),
            [ModSeq(620162338)]
        );
        assert_eq!(
            keys("younger 3600 EMAILID M6d99ac3275bb4e").unwrap(),
            [Younger(3600), EmailId("M6d99ac3275bb4e".into())]
        );
    }

    #[test]
    fn bad_keys() {
        for bad in [
            "",
            "FROM",
            "SINCE yesterday",
            "OR SEEN",
            "(SEEN",
            "LARGER -1",
            "BOGUS",
            "NOT",
        ] {
            assert!(keys(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}SEEN{}", "(".repeat(100), ")".repeat(100));
        assert!(keys(&deep).is_err());
        let deep_not = format!("{}SEEN", "NOT ".repeat(100));
        assert!(keys(&deep_not).is_err());
    }
}
