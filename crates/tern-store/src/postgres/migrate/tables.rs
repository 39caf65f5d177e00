//! What `tern store migrate` copies: every table of the SQLite schema
//! (`sqlite/schema.rs`) with its columns, its key and how its rows become
//! PostgreSQL ones (`postgres/schema.rs`, the same tables by design).

/// How a column's SQLite value becomes a PostgreSQL one.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// BIGINT (u32 UIDs too).
    Int,
    /// TEXT, made valid UTF-8 without NUL.
    Text,
    /// SQLite's 0/1 integer as BOOLEAN.
    Bool,
    /// BYTEA.
    Bytes,
}

/// A column: its expression in the SQLite SELECT, and its name (the same
/// in both schemas for plain tables).
pub(super) struct Col {
    pub expr: &'static str,
    pub name: &'static str,
    pub kind: Kind,
}

const fn col(name: &'static str, kind: Kind) -> Col {
    Col {
        expr: name,
        name,
        kind,
    }
}

/// What a table's rows become.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Shape {
    /// The same row in the same table.
    Plain,
    /// `blob (hash, refs, data)` → `blob (hash, refs, size)` and its
    /// `blob_chunk` rows.
    Blob,
    /// `email_meta` with its parse packed (SQLite's `packed`) → the three
    /// JSON texts PostgreSQL keeps.
    EmailMeta,
    /// `email_header` with its header block packed (SQLite's BLOB form of
    /// `header_raw`) → the text PostgreSQL keeps.
    EmailHeader,
    /// Each `email` with its message → `email_text (email_id, account_id,
    /// headers, body)`, the search text SQLite keeps in another file.
    EmailText,
}

pub(super) struct Table {
    /// The PostgreSQL table (and the SQLite one for plain tables).
    pub name: &'static str,
    /// The SQLite FROM clause.
    pub from: &'static str,
    /// Selected columns; the first `key` of them are the table's key, in
    /// the order pages are read.
    pub columns: &'static [Col],
    pub key: usize,
    pub shape: Shape,
    /// Appended to the INSERT.
    pub on_conflict: &'static str,
}

const fn plain(name: &'static str, key: usize, columns: &'static [Col]) -> Table {
    Table {
        name,
        from: name,
        columns,
        key,
        shape: Shape::Plain,
        on_conflict: "",
    }
}

use Kind::{Bool, Bytes, Int, Text};

/// Every table of the SQLite schema, parents before the rows that refer
/// to them (the PostgreSQL schema has the foreign keys). Key columns
/// first; the number before the columns is how many there are.
#[rustfmt::skip]
pub(super) const TABLES: &[Table] = &[
    plain("domain", 1, &[col("id", Int), col("name", Text), col("created_at", Int)]),
    plain("account", 1, &[
        col("id", Int), col("address", Text), col("domain_id", Int), col("password_hash", Text),
        col("quota_bytes", Int), col("used_bytes", Int), col("highest_modseq", Int),
        col("journal_floor", Int), col("created_at", Int),
    ]),
    plain("alias", 1, &[col("address", Text), col("domain_id", Int), col("targets", Text)]),
    plain("mailbox", 1, &[
        col("id", Int), col("account_id", Int), col("name", Text), col("role", Text),
        col("uid_validity", Int), col("uid_next", Int), col("highest_modseq", Int),
        col("subscribed", Bool), col("noselect", Bool), col("first_recent_uid", Int),
    ]),
    plain("subscription", 2, &[col("account_id", Int), col("name", Text)]),
    Table {
        name: "blob",
        from: "blob",
        columns: &[
            col("hash", Text), col("refs", Int), col("data", Bytes), col("codec", Int),
            col("size", Int),
        ],
        key: 1,
        shape: Shape::Blob,
        on_conflict: "",
    },
    plain("email", 1, &[
        col("id", Int), col("account_id", Int), col("thread_id", Int), col("blob_hash", Text),
        col("size", Int), col("crlf_size", Int), col("received_at", Int), col("sent_at", Int),
        col("keywords", Text), col("message_id", Text),
    ]),
    Table {
        name: "email_meta",
        from: "email_meta",
        columns: &[
            col("email_id", Int), col("envelope", Text), col("structure", Text),
            col("summary", Text), col("packed", Bytes),
        ],
        key: 1,
        shape: Shape::EmailMeta,
        on_conflict: "",
    },
    Table {
        name: "email_header",
        from: "email_header",
        columns: &[col("account_id", Int), col("email_id", Int), col("header_raw", Text)],
        key: 2,
        shape: Shape::EmailHeader,
        on_conflict: "",
    },
    Table {
        name: "email_text",
        // LEFT: an email whose blob is gone (it should not be) still gets
        // its row, with empty text.
        from: "email e LEFT JOIN blob b ON b.hash = e.blob_hash",
        columns: &[
            Col { expr: "e.id", name: "email_id", kind: Int },
            Col { expr: "e.account_id", name: "account_id", kind: Int },
            Col { expr: "b.data", name: "data", kind: Bytes },
            Col { expr: "b.codec", name: "codec", kind: Int },
            Col { expr: "b.size", name: "size", kind: Int },
        ],
        key: 1,
        shape: Shape::EmailText,
        on_conflict: "",
    },
    plain("mailbox_email", 2, &[
        col("mailbox_id", Int), col("uid", Int), col("email_id", Int), col("modseq", Int),
        col("saved_at", Int),
    ]),
    plain("journal", 1, &[
        col("seq", Int), col("account_id", Int), col("modseq", Int), col("type", Text),
        col("collection", Int), col("object", Int), col("kind", Text), col("uid", Int),
        col("at", Int),
    ]),
    plain("upload", 1, &[
        col("id", Int), col("account_id", Int), col("blob_hash", Text), col("expires_at", Int),
    ]),
    plain("queue_message", 1, &[
        col("id", Int), col("blob_hash", Text), col("size", Int), col("mail_from", Text),
        col("env_id", Text), col("ret", Text), col("account_id", Int), col("created_at", Int),
        col("lease_id", Int), col("lease_until", Int), col("held", Bool),
        col("delay_notified", Bool), col("require_tls", Bool),
    ]),
    plain("queue_recipient", 2, &[
        col("message_id", Int), col("address", Text), col("notify", Int), col("orcpt", Text),
        col("status", Text), col("attempts", Int), col("next_attempt", Int),
        col("last_error", Text),
    ]),
    plain("email_submission", 2, &[
        col("account_id", Int), col("id", Int), col("email_id", Int), col("thread_id", Int),
        col("identity_id", Text), col("mail_from", Text), col("rcpt_to", Text),
        col("send_at", Int), col("queue_id", Int), col("delivery", Text), col("canceled", Bool),
    ]),
    plain("dkim_key", 2, &[
        col("domain", Text), col("selector", Text), col("algorithm", Text),
        col("private_key", Bytes), col("created_at", Int),
    ]),
    plain("tls_report", 5, &[
        col("day", Text), col("policy_domain", Text), col("policy_type", Text),
        col("result_type", Text), col("mx_host", Text), col("sessions", Int),
    ]),
    plain("bayes_token", 2, &[
        col("account_id", Int), col("token", Int), col("spam", Int), col("ham", Int),
    ]),
    // `seq` (the request applied last) starts at 0, its default: the
    // requests copied are all newer than nothing.
    plain("bayes_trained", 2, &[
        col("account_id", Int), col("email_id", Int), col("spam", Bool), col("agreed", Bool),
        col("trained_at", Int),
    ]),
    plain("bayes_pending", 1, &[
        col("seq", Int), col("account_id", Int), col("email_id", Int), col("spam", Bool),
    ]),
    plain("greylist", 3, &[
        col("network", Text), col("sender", Text), col("recipient", Text),
        col("first_seen", Int), col("passed_at", Int),
    ]),
    plain("account_setting", 2, &[col("account_id", Int), col("name", Text), col("value", Text)]),
    plain("auto_reply", 2, &[col("account_id", Int), col("correspondent", Text), col("sent_at", Int)]),
    // Counters (last_uid_validity, lease_seq, queue_flushes): the new
    // schema starts some of them, so the larger value wins.
    Table {
        name: "meta",
        from: "meta",
        columns: &[col("key", Text), col("value", Int)],
        key: 1,
        shape: Shape::Plain,
        on_conflict: "ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value, excluded.value)",
    },
];

/// Identity columns, moved past the copied ids at the end.
pub(super) const IDENTITIES: &[(&str, &str)] = &[
    ("domain", "id"),
    ("account", "id"),
    ("mailbox", "id"),
    ("email", "id"),
    ("journal", "seq"),
    ("upload", "id"),
    ("queue_message", "id"),
    ("bayes_pending", "seq"),
];
