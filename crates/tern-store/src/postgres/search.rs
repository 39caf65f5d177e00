//! Search in PostgreSQL: IMAP SEARCH (RFC 9051 §6.4.4) over one mailbox,
//! and the text conditions of JMAP Email/query (RFC 8621 §4.4.1), with
//! the SQLite backend's answers.
//!
//! Full-text keys (BODY, TEXT) look in `email_text`, written in the same
//! commit as the email, whose `pg_trgm` GIN indexes answer
//! `ILIKE '%needle%'`: substring semantics, case-insensitive (RFC 9051
//! §6.4.4), needles shorter than a trigram included (slower, same
//! answer). The rest of the key tree is evaluated in Rust by the SQLite
//! backend's own code (`crate::sqlite::search`), so both backends agree
//! key for key.
//!
//! Case folding: SQLite's backend matches with Rust's Unicode lowercase
//! ([`contains_ignore_case`]); ILIKE folds with the database's locale.
//! They agree on ASCII everywhere but a Turkish locale, and on most other
//! letters in a UTF-8 locale, but not on all (`İ` lowercases to two
//! characters in Rust and one in glibc; Rust knows the final sigma; a
//! `C` locale folds ASCII only). So here the index only narrows: the
//! pattern is one that every message Rust would match also matches
//! ([`narrow_pattern`], [`relaxed_pattern`]), and Rust decides on every
//! candidate where the two could disagree. The answer is SQLite's.

use super::Tx;
use crate::error::{Result, StoreError};
use crate::search::{contains_ignore_case, SearchKey};
use crate::sqlite::search::{
    matches, needs, needs_facts, required_text_key, sent_days, Extra, Facts, Message,
};
use crate::types::*;
use std::collections::{HashMap, HashSet};

/// True in a database whose `lower()` folds letters beyond ASCII, and
/// ASCII as English does (not a Turkish locale): there ILIKE is exact for
/// an ASCII needle, and a superset of Rust's answer for most others.
/// PostgreSQL folds this constant when it plans a statement.
const UNICODE_LOWER: &str = "lower('ÜI') = 'üi'";

/// One membership of the mailbox: what a search starts from.
struct Member {
    uid: Uid,
    email_id: EmailId,
    modseq: ModSeq,
    saved_at: Option<i64>,
}

/// UIDs of the mailbox's messages matching `key`, ascending (interface
/// used by messages.rs for `MessageStore::search`). NotFound if the
/// mailbox is not the account's.
pub async fn search(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    key: &SearchKey,
) -> Result<Vec<Uid>> {
    if tx
        .query_opt(
            "SELECT 1 FROM mailbox WHERE id = $1 AND account_id = $2",
            &[&mailbox.0, &account.0],
        )
        .await?
        .is_none()
    {
        return Err(StoreError::not_found("mailbox", mailbox));
    }
    let members: Vec<Member> = tx
        .query(
            "SELECT uid, email_id, modseq, saved_at FROM mailbox_email
              WHERE mailbox_id = $1 ORDER BY uid",
            &[&mailbox.0],
        )
        .await?
        .iter()
        .map(|r| Member {
            uid: Uid(r.get::<_, i64>(0) as u32),
            email_id: EmailId(r.get(1)),
            modseq: ModSeq(r.get::<_, i64>(2) as u64),
            saved_at: r.get(3),
        })
        .collect();

    let mut needles: Vec<(bool, String)> = Vec::new();
    key.for_each_text_key(&mut |k| {
        let wanted = match k {
            SearchKey::Body(s) => (true, s.clone()),
            SearchKey::Text(s) => (false, s.clone()),
            _ => return,
        };
        if !needles.contains(&wanted) {
            needles.push(wanted);
        }
    });
    let mut text_hits: HashMap<(bool, String), HashSet<EmailId>> = HashMap::new();
    for (body_only, needle) in needles {
        let mut hits = column_hits(tx, account, mailbox, "body", &needle).await?;
        if !body_only {
            hits.extend(column_hits(tx, account, mailbox, "headers", &needle).await?);
        }
        text_hits.insert((body_only, needle), hits);
    }

    // A text key every match must satisfy narrows the messages to look at
    // to its hits: usually a few of a large mailbox.
    let candidates: Vec<&Member> = match required_text_key(key) {
        Some(k) => {
            let hits = text_hits.get(&k);
            members
                .iter()
                .filter(|m| hits.is_some_and(|h| h.contains(&m.email_id)))
                .collect()
        }
        None => members.iter().collect(),
    };
    let facts = if needs_facts(key) {
        let ids: Vec<i64> = candidates.iter().map(|m| m.email_id.0).collect();
        Some(load_facts(tx, account, &ids).await?)
    } else {
        None
    };
    let mut extra = Extra::default();
    let sent = needs(key, &|k| matches!(k, SearchKey::Sent { .. }));
    if sent || needs(key, &|k| matches!(k, SearchKey::Header { .. })) {
        extra.header_raw = load_headers(tx, account, mailbox).await?;
    }
    if sent {
        extra.sent_day = sent_days(&extra.header_raw);
    }
    Ok(candidates
        .into_iter()
        .filter(|m| {
            let m = Message {
                uid: m.uid,
                email_id: m.email_id,
                modseq: m.modseq,
                saved_at: m.saved_at,
                facts: facts.as_ref().and_then(|f| f.get(&m.email_id)),
            };
            matches(&m, key, &text_hits, &extra)
        })
        .map(|m| m.uid)
        .collect())
}

/// Emails of the mailbox whose `column` of `email_text` contains
/// `needle`, ignoring case as [`contains_ignore_case`] does.
///
/// The trigram index finds candidates with a pattern no true match
/// escapes; the statement hands back the text of those where ILIKE and
/// Rust could disagree (a needle beyond ASCII, a text holding `İ` or the
/// Kelvin sign, a database whose `lower()` is not Unicode's), and Rust
/// decides on those. For an ASCII needle in a UTF-8 database that is
/// rarely any, so nothing but ids comes back.
async fn column_hits(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    column: &str,
    needle: &str,
) -> Result<HashSet<EmailId>> {
    // The stored text holds no NUL (PostgreSQL TEXT cannot), and SQLite's
    // index drops them from the needle too.
    let needle = needle.replace('\0', "");
    let ascii = needle.is_ascii();
    // `column` is one of two names fixed in this module, never input.
    let sql = format!(
        "SELECT t.email_id,
                CASE WHEN $4 AND {UNICODE_LOWER} AND t.{column} !~ '[İK]' THEN NULL
                     ELSE t.{column} END
           FROM mailbox_email me JOIN email_text t ON t.email_id = me.email_id
          WHERE me.mailbox_id = $1 AND t.account_id = $2
            AND t.{column} ILIKE (CASE WHEN {UNICODE_LOWER} THEN $3 ELSE $5 END)"
    );
    let rows = tx
        .query(
            &sql,
            &[
                &mailbox.0,
                &account.0,
                &narrow_pattern(&needle),
                &ascii,
                &relaxed_pattern(&needle),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .filter(|r| {
            r.get::<_, Option<&str>>(1)
                .is_none_or(|text| contains_ignore_case(text, &needle))
        })
        .map(|r| EmailId(r.get(0)))
        .collect())
}

/// The facts of `ids`, emails of the account.
async fn load_facts(
    tx: &Tx<'_>,
    account: AccountId,
    ids: &[i64],
) -> Result<HashMap<EmailId, Facts>> {
    let rows = tx
        .query(
            "SELECT id, thread_id, keywords, size, received_at FROM email
              WHERE account_id = $1 AND id = ANY($2)",
            &[&account.0, &ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                EmailId(r.get(0)),
                Facts {
                    thread_id: ThreadId(r.get(1)),
                    keywords: r.get(2),
                    size: r.get::<_, i64>(3).max(0) as u64,
                    received_at: r.get(4),
                },
            )
        })
        .collect())
}

/// The raw headers of the mailbox's emails.
async fn load_headers(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
) -> Result<HashMap<EmailId, String>> {
    let rows = tx
        .query(
            "SELECT m.email_id, h.header_raw FROM mailbox_email m
               JOIN email_header h ON h.account_id = $1 AND h.email_id = m.email_id
              WHERE m.mailbox_id = $2",
            &[&account.0, &mailbox.0],
        )
        .await?;
    Ok(rows.iter().map(|r| (EmailId(r.get(0)), r.get(1))).collect())
}

/// A SQL condition on `e.id` (an alias of `email`) for one JMAP text
/// needle, with the LIKE pattern as parameter `$param`; `body_only` looks
/// in the body alone, otherwise in the headers and the body. Interface
/// used by emails.rs (`query_emails`), which pushes [`like_pattern`] as
/// that parameter.
///
/// One statement decides here, with no Rust to check candidates: the
/// answer is ILIKE's, which is SQLite's for ASCII and, in a UTF-8
/// database, for the letters both know (see the module's note).
pub fn text_condition(body_only: bool, param: usize) -> String {
    let columns = if body_only {
        format!("t.body ILIKE ${param}")
    } else {
        format!("(t.headers ILIKE ${param} OR t.body ILIKE ${param})")
    };
    format!("EXISTS (SELECT 1 FROM email_text t WHERE t.email_id = e.id AND {columns})")
}

/// The ILIKE pattern that finds `needle` as a substring (`%` `_` `\`
/// escaped, NULs dropped: the stored text has none).
pub fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        push_literal(&mut pattern, c);
    }
    pattern.push('%');
    pattern
}

/// `c` as a LIKE pattern matching itself (the default escape is `\`).
fn push_literal(pattern: &mut String, c: char) {
    match c {
        '\0' => {}
        '%' | '_' | '\\' => {
            pattern.push('\\');
            pattern.push(c);
        }
        c => pattern.push(c),
    }
}

/// The pattern for a database whose `lower()` is Unicode's: the needle,
/// except where Rust's lowercase is not one letter for one letter. A
/// sigma matches any letter (Rust writes `ς` at a word's end, glibc
/// always `σ`), and a combining dot above may be missing (Rust lowercases
/// `İ` to `i` and U+0307, glibc to `i`).
fn narrow_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        match c {
            'Σ' | 'σ' | 'ς' => pattern.push('_'),
            '\u{307}' => pattern.push('%'),
            c => push_literal(&mut pattern, c),
        }
    }
    pattern.push('%');
    pattern
}

/// The pattern for a database whose `lower()` folds ASCII only (a `C`
/// locale) or folds `I` the Turkish way: ASCII letters in order, `i` and
/// `k` as any letter (`İ` and the Kelvin sign fold to them), anything
/// beyond ASCII as any run. A wide net; Rust decides on every catch.
fn relaxed_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        match c {
            'i' | 'I' | 'k' | 'K' => pattern.push('_'),
            c if c.is_ascii() => push_literal(&mut pattern, c),
            _ => {
                if !pattern.ends_with('%') || pattern.ends_with("\\%") {
                    pattern.push('%');
                }
            }
        }
    }
    if !pattern.ends_with('%') || pattern.ends_with("\\%") {
        pattern.push('%');
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_wildcards_and_drop_nuls() {
        assert_eq!(like_pattern("100%"), "%100\\%%");
        assert_eq!(like_pattern("a_b\\c\0d"), "%a\\_b\\\\cd%");
        assert_eq!(like_pattern(""), "%%");
        assert_eq!(narrow_pattern("ΟΔΟΣ"), "%ΟΔΟ_%");
        assert_eq!(narrow_pattern("i\u{307}x"), "%i%x%");
        assert_eq!(relaxed_pattern("Ünïcödé 5%"), "%n%c%d% 5\\%%");
        assert_eq!(relaxed_pattern("kiwi"), "%__w_%");
        assert_eq!(relaxed_pattern("€"), "%");
    }

    #[test]
    fn jmap_conditions_name_their_parameter() {
        assert_eq!(
            text_condition(true, 3),
            "EXISTS (SELECT 1 FROM email_text t WHERE t.email_id = e.id AND t.body ILIKE $3)"
        );
        assert!(text_condition(false, 7).contains("t.headers ILIKE $7 OR t.body ILIKE $7"));
    }
}
