//! Search in SQLite: full-text keys go through the FTS5 trigram index
//! first, then the whole key tree is evaluated over the mailbox's entries.
//!
//! Trigrams need three characters: shorter strings fall back to LIKE over
//! the indexed text, which is slower but gives the same answers.

use super::db;
use super::indexer::{Progress, SEARCH_WAIT};
use crate::error::Result;
use crate::search::{contains_ignore_case, SearchKey};
use crate::types::*;
use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};

/// Per-email data a search may need beyond the entry, loaded only when a
/// key asks for it.
#[derive(Default)]
struct Extra {
    header_raw: HashMap<EmailId, String>,
    sent_at: HashMap<EmailId, Option<i64>>,
}

pub fn search(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    key: &SearchKey,
    progress: &Progress,
) -> Result<Vec<Uid>> {
    let entries = super::messages::list(conn, account, mailbox, None)?;
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
        match full_text(conn, account, body_only, &needle) {
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
        scan_unindexed(conn, &entries, &mut text_hits, &scan_all)?;
    }
    let mut extra = Extra::default();
    if needs(key, &|k| matches!(k, SearchKey::Header { .. })) {
        extra.header_raw = load_headers(conn, account, mailbox)?;
    }
    if needs(key, &|k| matches!(k, SearchKey::Sent { .. })) {
        extra.sent_at = load_column(conn, mailbox, "sent_at")?;
    }
    Ok(entries
        .iter()
        .filter(|e| matches(e, key, &text_hits, &extra))
        .map(|e| e.uid)
        .collect())
}

fn needs(key: &SearchKey, pred: &dyn Fn(&SearchKey) -> bool) -> bool {
    pred(key)
        || match key {
            SearchKey::And(keys) => keys.iter().any(|k| needs(k, pred)),
            SearchKey::Or(a, b) => needs(a, pred) || needs(b, pred),
            SearchKey::Not(k) => needs(k, pred),
            _ => false,
        }
}

fn load_column<T: rusqlite::types::FromSql>(
    conn: &Connection,
    mailbox: MailboxId,
    column: &'static str,
) -> Result<HashMap<EmailId, T>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT e.id, e.{column} FROM mailbox_email m JOIN email e ON e.id = m.email_id
              WHERE m.mailbox_id = ?1"
        ))
        .map_err(db("loading search data"))?;
    let rows = stmt
        .query_map([mailbox.0], |r| Ok((EmailId(r.get(0)?), r.get(1)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<HashMap<_, _>>>())
        .map_err(db("loading search data"))?;
    Ok(rows)
}

/// The raw headers of the mailbox's emails, from `email_header`, where an
/// account's headers sit side by side (schema v8).
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
            Ok((EmailId(r.get(0)?), r.get(1)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<HashMap<_, _>>>())
        .map_err(db("loading headers to search"))?;
    Ok(rows)
}

/// Adds to `text_hits` the messages the index does not hold yet (it is
/// catching up, or could not be written), by reading and matching their
/// text directly: slower, but a search never misses mail for the index's
/// sake. Case-insensitive substring, as the trigram index matches.
/// Needles in `scan_all` are matched against every message.
fn scan_unindexed(
    conn: &Connection,
    entries: &[crate::types::MessageEntry],
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
    let unindexed: Vec<EmailId> = entries
        .iter()
        .map(|e| e.email_id)
        .filter(|id| id.0 > upto)
        .collect();
    if unindexed.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT b.data FROM email e JOIN blob b ON b.hash = e.blob_hash WHERE e.id = ?1",
        )
        .map_err(db("reading unindexed mail for a search"))?;
    for id in unindexed {
        let raw: Vec<u8> = match stmt.query_row([id.0], |r| r.get(0)) {
            Ok(raw) => raw,
            Err(rusqlite::Error::QueryReturnedNoRows) => continue,
            Err(e) => return Err(db("reading unindexed mail for a search")(e)),
        };
        let parsed = crate::message::parse_message(&raw);
        let (headers, body) = super::indexer::index_text(&raw, &parsed);
        for (key, hits) in text_hits.iter_mut() {
            let (body_only, needle) = key;
            if id.0 <= upto_for(key) {
                continue;
            }
            let needle = needle.replace('\0', "");
            if contains_ignore_case(&body, &needle)
                || (!body_only && contains_ignore_case(&headers, &needle))
            {
                hits.insert(id);
            }
        }
    }
    Ok(())
}

/// Emails of the account whose indexed text contains `needle`.
fn full_text(
    conn: &Connection,
    account: AccountId,
    body_only: bool,
    needle: &str,
) -> Result<HashSet<EmailId>> {
    // FTS5 strings end at NUL; mail text never holds one worth finding.
    let needle = &needle.replace('\0', "");
    let columns = if body_only { "body" } else { "headers body" };
    // A quoted FTS5 string is a phrase; with trigrams, a substring. Needles
    // shorter than a trigram never get here: they are scanned.
    let arg = format!("{{{columns}}} : \"{}\"", needle.replace('"', "\"\""));
    let sql = "SELECT t.rowid FROM idx.email_text t JOIN email e ON e.id = t.rowid
           WHERE t.email_text MATCH ?1 AND e.account_id = ?2";
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(db("searching the full-text index"))?;
    let hits = stmt
        .query_map(params![arg, account.0], |r| Ok(EmailId(r.get(0)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<HashSet<_>>>())
        .map_err(db("searching the full-text index"))?;
    Ok(hits)
}

fn in_range(t: i64, since: Option<i64>, before: Option<i64>) -> bool {
    since.is_none_or(|s| t >= s) && before.is_none_or(|b| t < b)
}

fn matches(
    e: &MessageEntry,
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
        SearchKey::Keyword(k) => e.has_keyword(k),
        SearchKey::Larger(n) => e.size > *n,
        SearchKey::Smaller(n) => e.size < *n,
        SearchKey::Received { since, before } => in_range(e.received_at, *since, *before),
        SearchKey::Sent { since, before } => extra
            .sent_at
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
        SearchKey::EmailIds(ids) => ids.contains(&e.email_id),
        SearchKey::ThreadIds(ids) => ids.contains(&e.thread_id),
    }
}

/// RFC 9051 §6.4.4 HEADER: some field named `name` contains `value`.
/// The value is compared as written and with RFC 2047 encoded-words
/// decoded, so `SUBJECT "Grüße"` finds `=?utf-8?q?Gr=C3=BC=C3=9Fe?=`.
fn header_matches(header: &str, name: &str, value: &str) -> bool {
    fields_named(header, name).any(|v| {
        contains_ignore_case(v.trim(), value)
            || (v.contains("=?") && contains_ignore_case(&decode_words(&v), value))
    })
}

/// A header value with its encoded-words decoded (as unstructured text).
fn decode_words(value: &str) -> String {
    let raw = format!("Subject: {}\r\n\r\n", value.trim());
    mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

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
        use crate::sqlite::{SqliteOptions, SqliteStore};
        use crate::Store;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tern.db");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&db, SqliteOptions::default()).unwrap());
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

        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&db, SqliteOptions::default()).unwrap());
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
        use crate::conformance::{account, deliver_to, inbox, message};
        use crate::sqlite::{SqliteOptions, SqliteStore};
        use crate::Store;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tern.db");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&db, SqliteOptions::default()).unwrap());
        let a = account(&store, "a@example.test").await;
        let mb = inbox(&store, &a).await;
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
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&db, SqliteOptions::default()).unwrap());
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
        assert_eq!(layout, 2);
    }

    #[test]
    fn header_search_unfolds_and_ignores_case() {
        let h = "Subject: hello\r\n world\r\nX-Tag: Alpha\r\n\r\n";
        assert!(header_matches(h, "subject", "HELLO WORLD"));
        assert!(header_matches(h, "x-tag", ""));
        assert!(!header_matches(h, "x-missing", ""));
        assert!(!header_matches(h, "x-tag", "beta"));
        let encoded = "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus\r\nFrom: =?utf-8?q?J=C3=BCrgen?= <j@example.net>\r\n\r\n";
        assert!(header_matches(encoded, "subject", "grüße aus"));
        assert!(header_matches(encoded, "from", "Jürgen"));
    }
}
