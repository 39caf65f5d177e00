//! The SQLite schema and its migrations.
//!
//! `PRAGMA user_version` records the schema version; `migrate` brings an
//! older database forward in one transaction and refuses a newer one, so a
//! downgrade never scribbles over data it does not understand.

use rusqlite::Connection;

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 23;

const SCHEMA_V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE domain (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE account (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    address        TEXT NOT NULL UNIQUE,
    domain_id      INTEGER NOT NULL REFERENCES domain(id),
    password_hash  TEXT NOT NULL,
    quota_bytes    INTEGER,
    used_bytes     INTEGER NOT NULL DEFAULT 0,
    highest_modseq INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

-- targets: a JSON array of addresses.
CREATE TABLE alias (
    address   TEXT PRIMARY KEY,
    domain_id INTEGER NOT NULL REFERENCES domain(id),
    targets   TEXT NOT NULL
);

CREATE TABLE mailbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES account(id),
    name           TEXT NOT NULL,
    role           TEXT,
    uid_validity   INTEGER NOT NULL,
    uid_next       INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 0,
    subscribed     INTEGER NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
);

-- Content-addressed message bytes: one row however many emails use it.
CREATE TABLE blob (
    hash TEXT PRIMARY KEY,
    refs INTEGER NOT NULL,
    data BLOB NOT NULL
);

-- keywords: space-separated with a space at each end (" $Junk \Seen "), so SQL
-- can test one with instr(); IMAP flags and JMAP keywords never hold spaces.
-- envelope/structure/summary: JSON, parsed once at delivery.
CREATE TABLE email (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES account(id),
    thread_id   INTEGER NOT NULL,
    blob_hash   TEXT NOT NULL REFERENCES blob(hash),
    size        INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    sent_at     INTEGER,
    keywords    TEXT NOT NULL,
    message_id  TEXT,
    header_raw  TEXT NOT NULL,
    envelope    TEXT NOT NULL,
    structure   TEXT NOT NULL,
    summary     TEXT NOT NULL
);
CREATE INDEX email_by_message_id ON email (account_id, message_id);

-- One row per (mailbox, email): an email may sit in several mailboxes, each
-- membership with its own UID and modseq.
CREATE TABLE mailbox_email (
    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id),
    uid        INTEGER NOT NULL,
    email_id   INTEGER NOT NULL REFERENCES email(id),
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX mailbox_email_by_email ON mailbox_email (email_id);
CREATE INDEX mailbox_email_by_modseq ON mailbox_email (mailbox_id, modseq);

-- The change journal; rows with kind = 'expunged' are the tombstones.
CREATE TABLE journal (
    account_id INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    mailbox_id INTEGER,
    uid        INTEGER,
    email_id   INTEGER
);
CREATE INDEX journal_by_account ON journal (account_id, modseq);
CREATE INDEX journal_tombstones ON journal (mailbox_id, modseq) WHERE kind = 'expunged';

-- Full-text index; rowid = email.id. The trigram tokenizer gives substring
-- matching, which IMAP SEARCH requires (RFC 9051 §6.4.4).
CREATE VIRTUAL TABLE email_text USING fts5 (headers, body, tokenize = 'trigram');
"#;

/// Version 2: the outbound queue. A queued message holds a reference on its
/// blob like an email does.
const SCHEMA_V2: &str = r#"
CREATE TABLE queue_message (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    blob_hash  TEXT NOT NULL REFERENCES blob(hash),
    size       INTEGER NOT NULL,
    mail_from  TEXT NOT NULL,
    env_id     TEXT,
    ret        TEXT,
    account_id INTEGER,
    created_at INTEGER NOT NULL
);

-- notify: bit 0 success, bit 1 failure, bit 2 delay (DSN NOTIFY).
CREATE TABLE queue_recipient (
    message_id   INTEGER NOT NULL REFERENCES queue_message(id),
    address      TEXT NOT NULL,
    notify       INTEGER NOT NULL,
    orcpt        TEXT,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    PRIMARY KEY (message_id, address)
) WITHOUT ROWID;
CREATE INDEX queue_recipient_due ON queue_recipient (status, next_attempt);

-- Blob deletes check their referencing emails, and reads check ownership.
CREATE INDEX email_by_blob ON email (blob_hash, account_id);
"#;

/// Version 3: the search index moves to its own file (see `indexer.rs`).
const SCHEMA_V3: &str = "DROP TABLE IF EXISTS email_text;";

/// Version 4: the size of a message with every line ending in CRLF, which
/// POP3 reports (RFC 1939 §11) and IMAP may one day; differs from `size`
/// only for messages stored with bare LF.
const SCHEMA_V4: &str = "ALTER TABLE email ADD COLUMN crlf_size INTEGER;
UPDATE email SET crlf_size = size WHERE crlf_size IS NULL;";

/// Version 5: a deleted mailbox with children stays as their `\Noselect`
/// parent.
const SCHEMA_V5: &str = "ALTER TABLE mailbox ADD COLUMN noselect INTEGER NOT NULL DEFAULT 0;";

/// Version 6: the parse of each email (raw header, envelope, structure,
/// summary: kilobytes of text) moves out of `email` into `email_meta`. An
/// `email` row is then about a hundred bytes, so the rows of a whole mailbox
/// sit in a few pages: listing a mailbox (SELECT, FETCH FLAGS, SEARCH,
/// EXPUNGE) read one or two rows per page before, each page copied in from
/// the file again after every commit by another connection.
const SCHEMA_V6: &str = "CREATE TABLE email_meta (
    email_id   INTEGER PRIMARY KEY REFERENCES email(id) ON DELETE CASCADE,
    header_raw TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    structure  TEXT NOT NULL,
    summary    TEXT NOT NULL
);
INSERT INTO email_meta (email_id, header_raw, envelope, structure, summary)
    SELECT id, header_raw, envelope, structure, summary FROM email;
ALTER TABLE email DROP COLUMN header_raw;
ALTER TABLE email DROP COLUMN envelope;
ALTER TABLE email DROP COLUMN structure;
ALTER TABLE email DROP COLUMN summary;";

/// Version 7: what a mailbox listing needs of each email, in an index
/// ordered by account. Listing a mailbox joins its memberships to their
/// emails; through the table each email was a page of its own (mail arrives
/// interleaved across accounts), through this index an account's emails
/// share a few pages.
const SCHEMA_V7: &str = "CREATE INDEX email_listing ON email
    (account_id, id, thread_id, keywords, size, received_at, blob_hash, crlf_size);";

/// Version 8: raw headers in their own table, ordered by account. Header
/// searches (SUBJECT, FROM, HEADER ...) read the raw header of every message
/// in the mailbox; inside `email_meta` each sat beside kilobytes of JSON, a
/// page or more per message (a tenth of the server's CPU under a mixed IMAP
/// load). Rows are deleted with their email explicitly (by primary key).
const SCHEMA_V8: &str = "CREATE TABLE email_header (
    account_id INTEGER NOT NULL,
    email_id   INTEGER NOT NULL,
    header_raw TEXT NOT NULL,
    PRIMARY KEY (account_id, email_id)
) WITHOUT ROWID;
INSERT INTO email_header (account_id, email_id, header_raw)
    SELECT e.account_id, p.email_id, p.header_raw FROM email_meta p JOIN email e ON e.id = p.email_id;
ALTER TABLE email_meta DROP COLUMN header_raw;";

/// Version 9: one generic change journal for every sync protocol.
///
/// - Each row names the `type` of object that changed (`email`, `mailbox`,
///   `thread`, `account`; later `contact`, `event`, `sieve`), its `collection` (the
///   mailbox of an email membership; later an address book or calendar)
///   and the `object` (email or mailbox id), so JMAP `/changes`,
///   ActiveSync SyncKeys and DAV sync tokens read the same rows.
/// - `seq` is never reused (AUTOINCREMENT): other processes' commits are
///   found by reading the rows after the last one seen (`watcher.rs`); a
///   plain rowid could be handed out again after the newest rows were
///   deleted (an account removed), and those changes would go unseen.
/// - `at` (unix seconds) lets old rows be pruned; `account.journal_floor`
///   is then the modseq at or below which changes are no longer known.
const SCHEMA_V9: &str = "CREATE TABLE journal_v9 (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    type       TEXT NOT NULL,
    collection INTEGER,
    object     INTEGER,
    kind       TEXT NOT NULL,
    uid        INTEGER,
    at         INTEGER NOT NULL
);
INSERT INTO journal_v9 (account_id, modseq, type, collection, object, kind, uid, at)
    SELECT account_id, modseq,
           CASE WHEN kind LIKE 'mailbox-%' THEN 'mailbox' ELSE 'email' END,
           CASE WHEN kind LIKE 'mailbox-%' THEN NULL ELSE mailbox_id END,
           CASE WHEN kind LIKE 'mailbox-%' THEN mailbox_id ELSE email_id END,
           kind, uid, CAST(strftime('%s', 'now') AS INTEGER)
      FROM journal ORDER BY rowid;
DROP TABLE journal;
ALTER TABLE journal_v9 RENAME TO journal;
CREATE INDEX journal_by_account ON journal (account_id, modseq);
CREATE INDEX journal_tombstones ON journal (collection, modseq) WHERE kind = 'expunged';
ALTER TABLE account ADD COLUMN journal_floor INTEGER NOT NULL DEFAULT 0;";

/// Version 10: the queue as work. A worker claims a message with a lease
/// (`lease_id`, from the `lease_seq` counter, valid until `lease_until`);
/// an expired lease is claimed again.
const SCHEMA_V10: &str = "ALTER TABLE queue_message ADD COLUMN lease_id INTEGER;
ALTER TABLE queue_message ADD COLUMN lease_until INTEGER;
INSERT OR IGNORE INTO meta (key, value) VALUES ('lease_seq', 0);";

/// Version 11: an account's emails by arrival, for the account-wide sorted
/// query (JMAP `Email/query`, newest first by default): a page is read off
/// the index instead of sorting every email of the account.
const SCHEMA_V11: &str = "CREATE INDEX email_by_received ON email (account_id, received_at, id);";

/// Version 12: uploads (JMAP `/upload`, webmail attachments) hold their
/// blob like an email or a queue entry does, until they expire.
const SCHEMA_V12: &str = "CREATE TABLE upload (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES account(id),
    blob_hash  TEXT NOT NULL REFERENCES blob(hash),
    expires_at INTEGER NOT NULL
);
CREATE INDEX upload_by_blob ON upload (blob_hash, account_id);
CREATE INDEX upload_by_expiry ON upload (expires_at);";

/// Version 13: IMAP4rev1's \Recent (RFC 3501 §2.3.2) and SAVEDATE (RFC
/// 8514). `first_recent_uid`: messages from this UID on are recent, not
/// yet claimed by a session that selected the mailbox; existing mailboxes
/// start with nothing recent. `saved_at`: when the message was put in the
/// mailbox (NULL for those from before).
///
/// `subscription`: IMAP subscriptions by name (RFC 9051 §6.3.7): they
/// outlive a DELETE of the mailbox and come back with a CREATE of the
/// name; `mailbox.subscribed` mirrors them for JMAP's isSubscribed.
const SCHEMA_V13: &str =
    "ALTER TABLE mailbox ADD COLUMN first_recent_uid INTEGER NOT NULL DEFAULT 1;
UPDATE mailbox SET first_recent_uid = uid_next;
ALTER TABLE mailbox_email ADD COLUMN saved_at INTEGER;
CREATE TABLE subscription (
    account_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
INSERT INTO subscription SELECT account_id, name FROM mailbox WHERE subscribed = 1;";

/// Version 14: a queued message an administrator holds (`tern queue
/// hold`) is not claimed until released.
const SCHEMA_V14: &str = "ALTER TABLE queue_message ADD COLUMN held INTEGER NOT NULL DEFAULT 0;";

/// Version 15: outbound delivery. A queued message remembers whether its
/// sender was told of the delay (RFC 3461 DELAY, once per message) and
/// whether it was submitted with REQUIRETLS (RFC 8689); each
/// local domain may have DKIM signing keys (RFC 6376), by selector.
const SCHEMA_V15: &str = r#"
ALTER TABLE queue_message ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_message ADD COLUMN require_tls INTEGER NOT NULL DEFAULT 0;
-- Deleting a blob checks the foreign keys that name it: without this
-- index, every blob freed scanned the whole queue.
CREATE INDEX queue_message_by_blob ON queue_message (blob_hash);
CREATE TABLE dkim_key (
    domain      TEXT NOT NULL,
    selector    TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (domain, selector)
) WITHOUT ROWID;
-- TLS reporting (RFC 8460): sessions per UTC day, destination policy
-- domain, policy type (sts, tlsa, no-policy-found), result ("success" or
-- an RFC 8460 §4.4 result type) and MX host.
CREATE TABLE tls_report (
    day           TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    policy_type   TEXT NOT NULL,
    result_type   TEXT NOT NULL,
    mx_host       TEXT NOT NULL,
    sessions      INTEGER NOT NULL,
    PRIMARY KEY (day, policy_domain, policy_type, result_type, mx_host)
) WITHOUT ROWID;
"#;

/// Version 16: the spam filter's memory. Each account's Bayesian
/// classifier: token counts (tokens are 64-bit hashes), which emails were
/// trained as what (so a changed verdict untrains the old one), and the
/// requests the Store operations that move mail into or out of Junk leave
/// for the trainer; and greylisting's triplets.
const SCHEMA_V16: &str = r#"
CREATE TABLE bayes_token (
    account_id INTEGER NOT NULL,
    token      INTEGER NOT NULL,
    spam       INTEGER NOT NULL,
    ham        INTEGER NOT NULL,
    PRIMARY KEY (account_id, token)
) WITHOUT ROWID;
CREATE TABLE bayes_trained (
    account_id INTEGER NOT NULL,
    email_id   INTEGER NOT NULL,
    spam       INTEGER NOT NULL,
    agreed     INTEGER NOT NULL,
    trained_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, email_id)
) WITHOUT ROWID;
CREATE TABLE bayes_pending (
    seq        INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    email_id   INTEGER NOT NULL,
    spam       INTEGER NOT NULL
);
CREATE TABLE greylist (
    network    TEXT NOT NULL,
    sender     TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    passed_at  INTEGER,
    PRIMARY KEY (network, sender, recipient)
) WITHOUT ROWID;
"#;

/// Version 17: an account's emails by thread, for JMAP `Thread/get`
/// (otherwise a scan of the account's listing per thread).
const SCHEMA_V17: &str = "CREATE INDEX email_by_thread ON email (account_id, thread_id);";

/// Version 18: per-account settings (the vacation response) and the
/// automatic replies sent, one per correspondent and period.
const SCHEMA_V18: &str = r#"
CREATE TABLE account_setting (
    account_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
CREATE TABLE auto_reply (
    account_id    INTEGER NOT NULL,
    correspondent TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    PRIMARY KEY (account_id, correspondent)
) WITHOUT ROWID;
"#;

/// Version 19: JMAP EmailSubmissions, kept after sending until the client
/// destroys them (RFC 8621 §7).
const SCHEMA_V19: &str = r#"
CREATE TABLE email_submission (
    account_id  INTEGER NOT NULL,
    id          INTEGER NOT NULL,
    email_id    INTEGER NOT NULL,
    thread_id   INTEGER NOT NULL,
    identity_id TEXT NOT NULL,
    mail_from   TEXT NOT NULL,
    rcpt_to     TEXT NOT NULL,
    send_at     INTEGER NOT NULL,
    queue_id    INTEGER,
    delivery    TEXT NOT NULL DEFAULT '{}',
    canceled    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;
CREATE INDEX email_submission_by_queue ON email_submission (queue_id) WHERE queue_id IS NOT NULL;
"#;

/// Version 20: message blobs may be stored compressed (`blob_codec.rs`):
/// `codec` 0 raw, 1 DEFLATE; `size` the length before compression (NULL
/// for raw rows, whose `length(data)` is it).
const SCHEMA_V20: &str = r#"
ALTER TABLE blob ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blob ADD COLUMN size INTEGER;
"#;

/// Version 21: an email's parse (envelope, structure, summary) may be
/// stored as one DEFLATE-compressed JSON array in `packed`
/// (`blob_codec::pack`), the three text columns then empty: the JSON was
/// as large as the compressed messages themselves (issue 10).
const SCHEMA_V21: &str = "ALTER TABLE email_meta ADD COLUMN packed BLOB;";

// Version 22 changes no table: `email_meta.packed` values may now be
// compressed after a preset dictionary (`blob_codec::pack`), which a Tern
// of version 21 could not read, so the version number says so.
//
// Version 23 changes no table either: `email_header.header_raw` may now
// hold a header block packed as a BLOB (`header_block`), which a Tern of
// version 22 would read as text.

/// Creates or upgrades the schema.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<Result<(), String>> {
    // IMMEDIATE takes the write lock first, so two processes starting on a
    // fresh directory (server and admin command) migrate one after the other.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Ok(Err(format!(
            "the database has schema version {version}, newer than this Tern understands ({SCHEMA_VERSION}); upgrade Tern"
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(Ok(()));
    }
    if version < 1 {
        tx.execute_batch(SCHEMA_V1)?;
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2)?;
    }
    if version < 3 {
        tx.execute_batch(SCHEMA_V3)?;
    }
    if version < 4 {
        tx.execute_batch(SCHEMA_V4)?;
    }
    if version < 5 {
        tx.execute_batch(SCHEMA_V5)?;
    }
    if version < 6 {
        tx.execute_batch(SCHEMA_V6)?;
    }
    if version < 7 {
        tx.execute_batch(SCHEMA_V7)?;
    }
    if version < 8 {
        tx.execute_batch(SCHEMA_V8)?;
    }
    if version < 9 {
        tx.execute_batch(SCHEMA_V9)?;
    }
    if version < 10 {
        tx.execute_batch(SCHEMA_V10)?;
    }
    if version < 11 {
        tx.execute_batch(SCHEMA_V11)?;
    }
    if version < 12 {
        tx.execute_batch(SCHEMA_V12)?;
    }
    if version < 13 {
        tx.execute_batch(SCHEMA_V13)?;
    }
    if version < 14 {
        tx.execute_batch(SCHEMA_V14)?;
    }
    if version < 15 {
        tx.execute_batch(SCHEMA_V15)?;
    }
    if version < 16 {
        tx.execute_batch(SCHEMA_V16)?;
    }
    if version < 17 {
        tx.execute_batch(SCHEMA_V17)?;
    }
    if version < 18 {
        tx.execute_batch(SCHEMA_V18)?;
    }
    if version < 19 {
        tx.execute_batch(SCHEMA_V19)?;
    }
    if version < 20 {
        tx.execute_batch(SCHEMA_V20)?;
    }
    if version < 21 {
        tx.execute_batch(SCHEMA_V21)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 8 journal rows keep their meaning in the generic journal.
    #[test]
    fn version_8_journal_rows_become_generic() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in [
            SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7, SCHEMA_V8,
        ] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 8;
             INSERT INTO journal (account_id, modseq, kind, mailbox_id, uid, email_id)
                 VALUES (1, 1, 'mailbox-created', 4, NULL, NULL), (1, 2, 'added', 4, 7, 9);",
        )
        .unwrap();
        migrate(&mut conn).unwrap().unwrap();
        type Row = (i64, String, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<Row> = conn
            .prepare("SELECT seq, type, collection, object, uid FROM journal ORDER BY seq")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "mailbox".to_string(), None, Some(4), None),
                (2, "email".to_string(), Some(4), Some(9), Some(7))
            ]
        );
    }

    /// A database at version 5 with one email keeps that email, parse and
    /// all, through the move of the parse into `email_meta`.
    #[test]
    fn version_5_moves_the_parse_out_of_email() {
        let mut conn = Connection::open_in_memory().unwrap();
        for step in [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 5;
             INSERT INTO domain (id, name, created_at) VALUES (1, 'example.org', 0);
             INSERT INTO account (id, address, domain_id, password_hash, created_at)
                 VALUES (1, 'a@example.org', 1, 'x', 0);
             INSERT INTO blob (hash, refs, data) VALUES ('h', 1, x'00');
             INSERT INTO email (id, account_id, thread_id, blob_hash, size, received_at, keywords,
                                header_raw, envelope, structure, summary, crlf_size)
                 VALUES (7, 1, 7, 'h', 1, 0, ' ', 'Subject: hi', '{\"e\":1}', '{\"s\":1}', '{\"m\":1}', 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap().unwrap();
        let meta: (String, String, String, String) = conn
            .query_row(
                "SELECT h.header_raw, p.envelope, p.structure, p.summary
                   FROM email_meta p JOIN email_header h ON h.account_id = 1 AND h.email_id = p.email_id
                  WHERE p.email_id = 7",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            meta,
            (
                "Subject: hi".into(),
                "{\"e\":1}".into(),
                "{\"s\":1}".into(),
                "{\"m\":1}".into()
            )
        );
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('email')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(!columns.iter().any(|c| c == "header_raw" || c == "envelope"));
        assert!(columns.iter().any(|c| c == "keywords"));
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        // Deleting the email takes its parse with it.
        conn.execute_batch("PRAGMA foreign_keys = ON; DELETE FROM email WHERE id = 7;")
            .unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM email_meta", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
