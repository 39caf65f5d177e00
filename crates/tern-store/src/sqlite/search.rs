//! Search in SQLite: full-text keys go through the search index first
//! (`full_text.rs`), then the whole key tree is evaluated over the
//! mailbox's entries.
//!
//! Trigrams need three characters: shorter needles, and mail the index
//! does not hold yet, are matched by reading the messages, which is slower
//! but gives the same answers.

use super::db;
use super::full_text::full_text;
pub(crate) use super::full_text::{fts5_fold, index_contains, TRIGRAM};
use super::indexer::{Progress, SEARCH_WAIT};
use super::listing::Member;
use crate::error::Result;
use crate::search::{contains_ignore_case, SearchKey};
use crate::types::*;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};

/// Per-email data a search may need beyond the entry, loaded only when a
/// key asks for it.
#[derive(Default)]
pub(crate) struct Extra {
    pub(crate) header_raw: HashMap<EmailId, String>,
    /// For each keyword the key tests, the emails that hold it, when the
    /// facts are not loaded ([`keyword_holders`]).
    pub(crate) keyword_holders: Vec<(String, HashSet<EmailId>)>,
    /// The Date's day as written, as a UTC midnight.
    pub(crate) sent_day: HashMap<EmailId, Option<i64>>,
}

pub fn search(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    key: &SearchKey,
    progress: &Progress,
) -> Result<Vec<Uid>> {
    // The (UID, email) pairs come from `mailbox_email`'s key alone; whole
    // entries (flags, size, dates) are read only when the key asks for them,
    // and then only for messages that can still match.
    let members = super::listing::members(conn, account, mailbox)?;
    let member_ids: HashSet<EmailId> = members.iter().map(|m| m.email_id).collect();
    let mut uses_text = false;
    key.for_each_text_key(&mut |_| uses_text = true);
    if uses_text && !progress.wait_caught_up(SEARCH_WAIT) {
        tracing::warn!("search index is behind; answering from what it holds");
    }
    let mut text_hits: HashMap<(bool, String), HashSet<EmailId>> = HashMap::new();
    let has_index = uses_text && super::indexer::is_attached(conn);
    let mut scan_all: HashSet<(bool, String)> = HashSet::new();
    let mut failed = None;
    key.for_each_text_key(&mut |k| {
        let (body_only, needle) = match k {
            SearchKey::Body(s) => (true, s.clone()),
            SearchKey::Text(s) => (false, s.clone()),
            _ => return,
        };
        if text_hits.contains_key(&(body_only, needle.clone())) || failed.is_some() {
            return;
        }
        if !has_index || needle.replace('\0', "").chars().count() < 3 {
            // Without an index, or for a needle shorter than a trigram
            // (the index keeps no text to LIKE over), every message of the
            // mailbox is scanned below.
            scan_all.insert((body_only, needle.clone()));
            text_hits.insert((body_only, needle), HashSet::new());
            return;
        }
        match full_text(conn, &member_ids, body_only, &needle) {
            Ok(hits) => {
                text_hits.insert((body_only, needle), hits);
            }
            Err(e) => failed = Some(e),
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if !text_hits.is_empty() {
        scan_unindexed(conn, &member_ids, &mut text_hits, &scan_all)?;
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
    // Keyword tests alone over many candidates ask SQLite for the few
    // holders instead ([`keyword_holders`]); over a few candidates, their
    // rows are cheaper to look up.
    let few = candidates.len() * 8 <= members.len();
    let facts = if facts_wanted(key, false) || (few && needs_facts(key)) {
        let ids: Vec<EmailId> = candidates.iter().map(|m| m.email_id).collect();
        Some(load_facts(conn, account, &ids, members.len())?)
    } else {
        None
    };
    let mut extra = Extra::default();
    if facts.is_none() && needs(key, &|k| matches!(k, SearchKey::Keyword(_))) {
        extra.keyword_holders = keyword_holders(conn, account, key)?;
    }
    if needs(key, &|k| matches!(k, SearchKey::Header { .. })) {
        extra.header_raw = load_headers(conn, account, mailbox)?;
    }
    if needs(key, &|k| matches!(k, SearchKey::Sent { .. })) {
        if extra.header_raw.is_empty() {
            extra.header_raw = load_headers(conn, account, mailbox)?;
        }
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

/// The day each email's Date header names: SENT* compare the day as
/// written, time and zone disregarded (RFC 9051 §6.4.4), as that day's
/// midnight as if it were UTC.
pub(crate) fn sent_days(header_raw: &HashMap<EmailId, String>) -> HashMap<EmailId, Option<i64>> {
    header_raw
        .iter()
        .map(|(id, h)| {
            let day = fields_named(h, "date").next().and_then(|v| {
                crate::message::date::parse_date(&v)
                    .map(|d| crate::message::date::days_from_civil(d.year, d.month, d.day) * 86_400)
            });
            (*id, day)
        })
        .collect()
}

/// One message as a search sees it: its membership of the mailbox, and
/// the email's facts when the key needs them ([`needs_facts`]).
pub(crate) struct Message<'a> {
    pub(crate) uid: Uid,
    pub(crate) email_id: EmailId,
    pub(crate) modseq: ModSeq,
    pub(crate) saved_at: Option<i64>,
    pub(crate) facts: Option<&'a Facts>,
}

/// What some keys look at of an email, as stored: keywords stay in their
/// encoded form (" $Junk \Seen "), tested without decoding.
pub(crate) struct Facts {
    pub(crate) thread_id: ThreadId,
    pub(crate) keywords: String,
    pub(crate) size: u64,
    pub(crate) received_at: i64,
}

impl Facts {
    /// IMAP flags compare case-insensitively (RFC 9051 §2.3.2).
    fn has_keyword(&self, keyword: &str) -> bool {
        self.keywords
            .split(' ')
            .any(|k| !k.is_empty() && k.eq_ignore_ascii_case(keyword))
    }
}

/// True when the key looks at an email's [`Facts`]: flags, size, arrival,
/// thread.
pub(crate) fn needs_facts(key: &SearchKey) -> bool {
    facts_wanted(key, true)
}

/// True when the key looks at an email's [`Facts`], keyword tests counted
/// only if `for_keywords` (the SQLite store answers a key that tests
/// nothing else from [`keyword_holders`]). Spelt out per key, so a new key
/// has to choose.
pub(crate) fn facts_wanted(key: &SearchKey, for_keywords: bool) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(|k| facts_wanted(k, for_keywords)),
        SearchKey::Or(a, b) => facts_wanted(a, for_keywords) || facts_wanted(b, for_keywords),
        SearchKey::Not(k) => facts_wanted(k, for_keywords),
        SearchKey::Keyword(_) => for_keywords,
        SearchKey::Larger(_)
        | SearchKey::Smaller(_)
        | SearchKey::Received { .. }
        | SearchKey::ThreadIds(_) => true,
        SearchKey::All
        | SearchKey::Uids(_)
        | SearchKey::Sent { .. }
        | SearchKey::Header { .. }
        | SearchKey::Body(_)
        | SearchKey::Text(_)
        | SearchKey::ModSeqAtLeast(_)
        | SearchKey::Saved { .. }
        | SearchKey::EmailIds(_) => false,
    }
}

/// The facts of `ids`, emails of the account. A few of a large mailbox are
/// looked up one by one; otherwise the account's stretch of the
/// `email_listing` index is read in order, which costs less than a lookup
/// per message once more than a fraction of them are wanted.
fn load_facts(
    conn: &Connection,
    account: AccountId,
    ids: &[EmailId],
    mailbox_size: usize,
) -> Result<HashMap<EmailId, Facts>> {
    let what = db("reading messages to search");
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(EmailId, Facts)> {
        Ok((
            EmailId(r.get(0)?),
            Facts {
                thread_id: ThreadId(r.get(1)?),
                keywords: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                received_at: r.get(4)?,
            },
        ))
    };
    const COLUMNS: &str = "SELECT id, thread_id, keywords, size, received_at
                             FROM email INDEXED BY email_listing WHERE account_id = ?1";
    let mut out = HashMap::with_capacity(ids.len());
    if ids.len() * 8 <= mailbox_size {
        let mut stmt = conn
            .prepare_cached(&format!("{COLUMNS} AND id = ?2"))
            .map_err(what)?;
        for id in ids {
            let found = stmt
                .query_row(params![account.0, id.0], row)
                .optional()
                .map_err(db("reading messages to search"))?;
            if let Some((id, facts)) = found {
                out.insert(id, facts);
            }
        }
    } else {
        let wanted: HashSet<EmailId> = ids.iter().copied().collect();
        let mut stmt = conn.prepare_cached(COLUMNS).map_err(what)?;
        let mut rows = stmt
            .query([account.0])
            .map_err(db("reading messages to search"))?;
        while let Some(r) = rows.next().map_err(db("reading messages to search"))? {
            let (id, facts) = row(r).map_err(db("reading messages to search"))?;
            if wanted.contains(&id) {
                out.insert(id, facts);
            }
        }
    }
    Ok(out)
}

/// The emails of the account holding each keyword the key tests. A
/// search of the undeleted (`NOT KEYWORD \Deleted`, what desktop clients
/// send with every text search) would otherwise load every candidate's
/// facts, a row each for most of a large mailbox; here SQLite passes over
/// the account's stretch of `email_listing` and returns only the few that
/// hold the keyword. Keywords are stored " a b " and compared as IMAP
/// flags are, ignoring ASCII case (SQLite's `lower` folds ASCII only, as
/// [`Facts::has_keyword`] does); a keyword with a space is held by none.
fn keyword_holders(
    conn: &Connection,
    account: AccountId,
    key: &SearchKey,
) -> Result<Vec<(String, HashSet<EmailId>)>> {
    let mut tested = Vec::new();
    keywords_tested(key, &mut tested);
    let mut stmt = conn
        .prepare_cached(
            "SELECT id FROM email INDEXED BY email_listing
              WHERE account_id = ?1 AND instr(lower(keywords), ?2) > 0",
        )
        .map_err(db("finding messages by keyword"))?;
    let mut out: Vec<(String, HashSet<EmailId>)> = Vec::new();
    for keyword in tested {
        if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(&keyword)) {
            continue;
        }
        let holders = if keyword.is_empty() || keyword.contains(' ') {
            HashSet::new()
        } else {
            let pattern = format!(" {} ", keyword.to_ascii_lowercase());
            stmt.query_map(params![account.0, pattern], |r| Ok(EmailId(r.get(0)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                .map_err(db("finding messages by keyword"))?
        };
        out.push((keyword, holders));
    }
    Ok(out)
}

fn keywords_tested(key: &SearchKey, out: &mut Vec<String>) {
    match key {
        SearchKey::Keyword(k) => out.push(k.clone()),
        SearchKey::And(keys) => keys.iter().for_each(|k| keywords_tested(k, out)),
        SearchKey::Or(a, b) => {
            keywords_tested(a, out);
            keywords_tested(b, out);
        }
        SearchKey::Not(k) => keywords_tested(k, out),
        _ => {}
    }
}

/// A full-text key that every match must satisfy: the key itself, or one
/// of the keys of a top-level AND.
pub(crate) fn required_text_key(key: &SearchKey) -> Option<(bool, String)> {
    match key {
        SearchKey::Text(s) => Some((false, s.clone())),
        SearchKey::Body(s) => Some((true, s.clone())),
        SearchKey::And(keys) => keys.iter().find_map(required_text_key),
        _ => None,
    }
}

pub(crate) fn needs(key: &SearchKey, pred: &dyn Fn(&SearchKey) -> bool) -> bool {
    pred(key)
        || match key {
            SearchKey::And(keys) => keys.iter().any(|k| needs(k, pred)),
            SearchKey::Or(a, b) => needs(a, pred) || needs(b, pred),
            SearchKey::Not(k) => needs(k, pred),
            _ => false,
        }
}

/// The raw headers of the mailbox's emails, from `email_header`, where an
/// account's headers sit side by side (schema v8), packed since v23
/// (`header_block`). A block that does not unpack is read from the
/// message instead.
fn load_headers(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
) -> Result<HashMap<EmailId, String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.email_id, h.header_raw FROM mailbox_email m
               JOIN email_header h ON h.account_id = ?1 AND h.email_id = m.email_id
              WHERE m.mailbox_id = ?2",
        )
        .map_err(db("loading headers to search"))?;
    let rows = stmt
        .query_map([account.0, mailbox.0], |r| {
            Ok((
                EmailId(r.get(0)?),
                super::header_block::unpack(r.get_ref(1)?),
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("loading headers to search"))?;
    let mut headers = HashMap::with_capacity(rows.len());
    for (id, header) in rows {
        let header = match header {
            Ok(header) => header,
            Err(e) => {
                tracing::warn!(
                    "email {}: {e}; searching its message's header instead",
                    id.0
                );
                header_from_message(conn, id)?
            }
        };
        headers.insert(id, header);
    }
    Ok(headers)
}

/// An email's header block read from its message (for a damaged
/// `email_header` row); empty if the message is gone too.
fn header_from_message(conn: &Connection, id: EmailId) -> Result<String> {
    let Some(raw) = super::full_text::message_of(conn, id)? else {
        return Ok(String::new());
    };
    let header_size = crate::message::parse_message(&raw).summary.header_size;
    Ok(String::from_utf8_lossy(&raw[..header_size.min(raw.len())]).into_owned())
}

/// Adds to `text_hits` the messages the index does not hold yet (it is
/// catching up, or could not be written), by reading and matching their
/// text directly: slower, but a search never misses mail for the index's
/// sake. Case-insensitive substring, as the trigram index matches.
/// Needles in `scan_all` are matched against every message.
fn scan_unindexed(
    conn: &Connection,
    members: &HashSet<EmailId>,
    text_hits: &mut HashMap<(bool, String), HashSet<EmailId>>,
    scan_all: &HashSet<(bool, String)>,
) -> Result<()> {
    let indexed_upto = super::indexer::indexed_upto_attached(conn);
    let upto_for = |key: &(bool, String)| {
        if scan_all.contains(key) {
            0
        } else {
            indexed_upto
        }
    };
    let upto = if scan_all.is_empty() { indexed_upto } else { 0 };
    let mut unindexed: Vec<EmailId> = members.iter().copied().filter(|id| id.0 > upto).collect();
    unindexed.sort_unstable();
    if unindexed.is_empty() {
        return Ok(());
    }
    for id in unindexed {
        let Some((headers, body)) = super::full_text::text_from_message(conn, id)? else {
            continue;
        };
        for (key, hits) in text_hits.iter_mut() {
            let (body_only, needle) = key;
            if id.0 <= upto_for(key) {
                continue;
            }
            let needle = needle.replace('\0', "");
            // Scanned mail answers as the index would have: a needle long
            // enough for the index folds as FTS5 does.
            let contains = if needle.chars().count() >= TRIGRAM {
                index_contains
            } else {
                contains_ignore_case
            };
            if contains(&body, &needle) || (!body_only && contains(&headers, &needle)) {
                hits.insert(id);
            }
        }
    }
    Ok(())
}

fn in_range(t: i64, since: Option<i64>, before: Option<i64>) -> bool {
    since.is_none_or(|s| t >= s) && before.is_none_or(|b| t < b)
}

pub(crate) fn matches(
    e: &Message<'_>,
    key: &SearchKey,
    text: &HashMap<(bool, String), HashSet<EmailId>>,
    extra: &Extra,
) -> bool {
    match key {
        SearchKey::All => true,
        SearchKey::And(keys) => keys.iter().all(|k| matches(e, k, text, extra)),
        SearchKey::Or(a, b) => matches(e, a, text, extra) || matches(e, b, text, extra),
        SearchKey::Not(k) => !matches(e, k, text, extra),
        SearchKey::Uids(ranges) => ranges.iter().any(|(lo, hi)| e.uid >= *lo && e.uid <= *hi),
        SearchKey::Keyword(k) => match e.facts {
            Some(f) => f.has_keyword(k),
            None => extra.keyword_holders.iter().any(|(name, holders)| {
                name.eq_ignore_ascii_case(k) && holders.contains(&e.email_id)
            }),
        },
        SearchKey::Larger(n) => e.facts.is_some_and(|f| f.size > *n),
        SearchKey::Smaller(n) => e.facts.is_some_and(|f| f.size < *n),
        SearchKey::Received { since, before } => e
            .facts
            .is_some_and(|f| in_range(f.received_at, *since, *before)),
        SearchKey::Sent { since, before } => extra
            .sent_day
            .get(&e.email_id)
            .copied()
            .flatten()
            .is_some_and(|t| in_range(t, *since, *before)),
        SearchKey::Header { name, value } => extra
            .header_raw
            .get(&e.email_id)
            .is_some_and(|h| header_matches(h, name, value)),
        SearchKey::Body(s) => text
            .get(&(true, s.clone()))
            .is_some_and(|h| h.contains(&e.email_id)),
        SearchKey::Text(s) => text
            .get(&(false, s.clone()))
            .is_some_and(|h| h.contains(&e.email_id)),
        SearchKey::ModSeqAtLeast(m) => e.modseq >= *m,
        SearchKey::Saved { since, before } => {
            e.saved_at.is_some_and(|t| in_range(t, *since, *before))
        }
        SearchKey::EmailIds(ids) => ids.contains(&e.email_id),
        SearchKey::ThreadIds(ids) => e.facts.is_some_and(|f| ids.contains(&f.thread_id)),
    }
}

/// RFC 9051 §6.4.4 HEADER: some field named `name` contains `value`.
/// The value is compared as written and with RFC 2047 encoded-words
/// decoded, so `SUBJECT "Grüße"` finds `=?utf-8?q?Gr=C3=BC=C3=9Fe?=`.
///
/// Address fields also match on their addresses as parsed (RFC 9051: FROM
/// and the like search "the envelope structure's" field), so comments and
/// spacing inside an address (`user (c)@ (c) domain.org`) do not hide it.
fn header_matches(header: &str, name: &str, value: &str) -> bool {
    let address_field = ["from", "to", "cc", "bcc", "sender", "reply-to"]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(name));
    fields_named(header, name).any(|v| {
        contains_ignore_case(v.trim(), value)
            || (v.contains("=?") && contains_ignore_case(&decode_words(&v), value))
            || (address_field
                && crate::message::addresses(&v).iter().any(|a| {
                    let spec = match (&a.mailbox, &a.host) {
                        (Some(m), Some(h)) => format!("{m}@{h}"),
                        (Some(m), None) => m.clone(),
                        _ => String::new(),
                    };
                    contains_ignore_case(&spec, value)
                        || a.name
                            .as_deref()
                            .is_some_and(|n| contains_ignore_case(n, value))
                }))
    })
}

use crate::message::decode_words;

/// The unfolded values of the header fields called `name`. A search runs
/// this over every message of a mailbox: only the fields asked for are
/// copied, the others are skipped where they lie.
fn fields_named<'h>(header: &'h str, name: &'h str) -> impl Iterator<Item = String> + 'h {
    let mut lines = header
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .peekable();
    std::iter::from_fn(move || loop {
        let line = lines.next()?;
        if line.starts_with([' ', '\t']) {
            continue; // the rest of a field not asked for
        }
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if !n.trim().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = v.to_string();
        while let Some(more) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push_str(more);
        }
        return Some(value);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose search index cannot even be created (a full disk, or
    /// here a directory in its place) opens, and its searches scan the mail.
    #[tokio::test]
    async fn without_a_writable_index_the_store_opens_and_search_scans() {
        use crate::conformance::{account, deliver_to, inbox, message};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tern.db");
        let store = crate::sqlite::test_store(&db);
        let a = account(&store, "a@example.test").await;
        let d = deliver_to(
            &store,
            &a,
            message("Quarterly", "Revenue grew in the north"),
        )
        .await;
        store.close().await.unwrap();
        for suffix in ["index.db", "index.db-wal", "index.db-shm"] {
            let _ = std::fs::remove_file(db.with_extension(suffix));
        }
        std::fs::create_dir(db.with_extension("index.db")).unwrap();

        let store = crate::sqlite::test_store(&db);
        let mb = inbox(&store, &a).await;
        let found = store
            .search(a.id, mb.id, &SearchKey::Text("NORTH".into()))
            .await
            .unwrap();
        assert_eq!(found, [d.uid]);
        let none = store
            .search(a.id, mb.id, &SearchKey::Body("south".into()))
            .await
            .unwrap();
        assert!(none.is_empty());
        store.close().await.unwrap();
    }

    /// The index keeps no text: a COPY is indexed from its blob, and an
    /// index of the old layout (text stored) is rebuilt, searchable all along.
    #[tokio::test]
    async fn copies_are_searchable_and_an_old_index_layout_is_rebuilt() {
        use crate::conformance::{deliver_to, message};
        let (_dir, db, store, a, mb) = crate::sqlite::test_mailbox().await;
        let d = deliver_to(&store, &a, message("Plans", "Meet at the lighthouse")).await;
        let archive = store.create_mailbox(a.id, "Archive2", None).await.unwrap();
        store
            .copy_messages(a.id, mb.id, &[d.uid], archive.id)
            .await
            .unwrap();
        let text = |s: &str| SearchKey::Text(s.into());
        let hits = store
            .search(a.id, archive.id, &text("lighthouse"))
            .await
            .unwrap();
        assert_eq!(hits.len(), 1, "the copy is found");
        let hits = store.search(a.id, archive.id, &text("e ")).await.unwrap();
        assert_eq!(hits.len(), 1, "a needle shorter than a trigram is scanned");
        store.close().await.unwrap();

        // An index file of the first layout, claiming to hold everything.
        for suffix in ["index.db", "index.db-wal", "index.db-shm"] {
            let _ = std::fs::remove_file(db.with_extension(suffix));
        }
        let old = rusqlite::Connection::open(db.with_extension("index.db")).unwrap();
        old.execute_batch(
            "CREATE VIRTUAL TABLE email_text USING fts5 (headers, body, tokenize = 'trigram');
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO meta VALUES ('indexed_upto', 1000000);",
        )
        .unwrap();
        drop(old);
        let store = crate::sqlite::test_store(&db);
        let hits = store
            .search(a.id, mb.id, &text("LIGHTHOUSE"))
            .await
            .unwrap();
        assert_eq!(hits, [d.uid]);
        store.close().await.unwrap();
        let index = rusqlite::Connection::open(db.with_extension("index.db")).unwrap();
        let layout: i64 = index
            .query_row("SELECT value FROM meta WHERE key = 'layout'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(layout, crate::sqlite::indexer::INDEX_LAYOUT);
        // The old layout's pages were given back, and new ones are 16 KiB.
        let page_size: i64 = index
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(page_size, crate::sqlite::PAGE_SIZE);
    }

    /// Flags are read for the text's candidates only when few of the
    /// mailbox match, and from the account's whole stretch of the listing
    /// index otherwise: both give the same answers, and another account's
    /// mail with the same text is never found.
    #[tokio::test]
    async fn text_with_flags_reads_few_or_many_candidates_alike() {
        use crate::conformance::{account, deliver_to, inbox, message};
        use crate::KeywordOp;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::sqlite::test_store(&dir.path().join("tern.db"));
        let a = account(&store, "a@example.test").await;
        let other = account(&store, "b@example.test").await;
        let mb = inbox(&store, &a).await;
        let mut uids = Vec::new();
        for i in 0..40 {
            let body = if i == 7 {
                "a rare kestrel"
            } else {
                "common words"
            };
            uids.push(
                deliver_to(&store, &a, message(&format!("m{i}"), body))
                    .await
                    .uid,
            );
        }
        deliver_to(
            &store,
            &other,
            message("theirs", "a rare kestrel, common words"),
        )
        .await;
        // Every third message is deleted, the rare one among them.
        let deleted: Vec<_> = uids.iter().copied().step_by(3).chain([uids[7]]).collect();
        store
            .set_keywords(
                a.id,
                mb.id,
                &deleted,
                KeywordOp::Add,
                &["\\Deleted".into()],
                None,
            )
            .await
            .unwrap();
        let undeleted = |text: &str| {
            SearchKey::And(vec![
                SearchKey::Not(Box::new(SearchKey::Keyword("\\deleted".into()))),
                SearchKey::Text(text.into()),
            ])
        };
        let expected: Vec<_> = uids
            .iter()
            .copied()
            .filter(|u| !deleted.contains(u))
            .collect();
        assert_eq!(
            store
                .search(a.id, mb.id, &undeleted("COMMON"))
                .await
                .unwrap(),
            expected
        );
        assert!(store
            .search(a.id, mb.id, &undeleted("kestrel"))
            .await
            .unwrap()
            .is_empty());
        let rare = SearchKey::And(vec![
            SearchKey::Keyword("\\Deleted".into()),
            SearchKey::Text("kestrel".into()),
        ]);
        assert_eq!(store.search(a.id, mb.id, &rare).await.unwrap(), [uids[7]]);
        store.close().await.unwrap();
    }

    #[test]
    fn header_search_unfolds_and_ignores_case() {
        let h = "Subject: hello\r\n world\r\nX-Tag: Alpha\r\n\r\n";
        assert!(header_matches(h, "subject", "HELLO WORLD"));
        assert!(header_matches(h, "x-tag", ""));
        assert!(!header_matches(h, "x-missing", ""));
        assert!(!header_matches(h, "x-tag", "beta"));
        let commented = "From: user (comment)@ (comment) domain.org\r\n\r\n";
        assert!(header_matches(commented, "from", "user@domain.org"));
        assert!(!header_matches(commented, "to", "user@domain.org"));
        let encoded = "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus\r\nFrom: =?utf-8?q?J=C3=BCrgen?= <j@example.net>\r\n\r\n";
        assert!(header_matches(encoded, "subject", "grüße aus"));
        assert!(header_matches(encoded, "from", "Jürgen"));
    }
}
