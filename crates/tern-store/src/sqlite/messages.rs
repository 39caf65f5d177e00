//! Messages in SQLite: delivery and append, keywords, copy, move, expunge.
//!
//! One email row per stored message copy; its content is a blob shared by
//! every email with the same bytes (the same message to 100 local recipients
//! is stored once). Each (mailbox, email) membership has its own UID and
//! modseq. Every change stamps the operation's modseq on the rows it touches,
//! on the mailbox's `highest_modseq`, and in the journal.

use super::blob_codec;
use super::indexer::IndexJob;
use super::{db, journal, mailboxes, WriteCtx};
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{named_params, params, Connection, OptionalExtension};

pub use super::listing::{email, list, list_changed};

/// A delivery with the work that needs no lock done: the message was
/// hashed and parsed by whoever prepared it (the delivery pipeline); what
/// is left here is encoding the parse into columns, before the writer.
pub struct Prepared {
    pub(crate) raw: Vec<u8>,
    /// `raw` compressed, when it is to be stored so (`blob_codec`).
    pub(crate) compressed: Option<Vec<u8>>,
    pub(crate) hash: BlobId,
    /// The size with every line ending in CRLF and a final line end.
    pub(crate) crlf_size: u64,
    pub(crate) recipients: Vec<DeliveryTarget>,
    pub(crate) received_at: i64,
    pub(crate) columns: EmailColumns,
    pub(crate) references: Vec<String>,
}

/// The parsed columns of an email row (the PostgreSQL backend stores the
/// same ones).
#[derive(Default)]
pub(crate) struct EmailColumns {
    pub(crate) sent_at: Option<i64>,
    pub(crate) message_id: Option<String>,
    pub(crate) header_raw: String,
    pub(crate) envelope: String,
    pub(crate) structure: String,
    pub(crate) summary: String,
    pub(crate) fts_headers: String,
    pub(crate) fts_body: String,
    /// Envelope, structure and summary packed as one (SQLite only; the
    /// three texts are then empty): see [`EmailColumns::pack`].
    pub(crate) packed: Option<Vec<u8>>,
    /// `header_raw` packed (SQLite only; `header_block::pack`), stored
    /// instead of it.
    pub(crate) header_packed: Option<Vec<u8>>,
}

impl EmailColumns {
    /// Packs the parse into `packed` (`blob_codec::pack` of the JSON array
    /// `[envelope, structure, summary]`) and the header block into
    /// `header_packed`, when that saves space.
    pub(crate) fn pack(&mut self) {
        self.header_packed = super::header_block::pack(&self.header_raw);
        let bundle = format!("[{},{},{}]", self.envelope, self.structure, self.summary);
        if let Some(packed) = blob_codec::pack(bundle.as_bytes()) {
            self.packed = Some(packed);
            self.envelope = String::new();
            self.structure = String::new();
            self.summary = String::new();
        }
    }
}

pub fn prepare(delivery: Delivery) -> Result<Prepared> {
    if delivery.recipients.is_empty() {
        return Ok(prepare_relay_only(delivery));
    }
    let encode = |what: &'static str, r: serde_json::Result<String>| {
        r.map_err(|e| StoreError::backend(format!("encoding the {what} of a message"), e))
    };
    let header_raw = delivery.message.header_raw();
    let references = delivery.message.referenced_ids();
    let (raw, hash, crlf_size, parsed) = delivery.message.into_parts();
    let s = &parsed.summary;
    let fts_headers = super::indexer::index_headers(header_raw.clone(), s);
    let columns = EmailColumns {
        sent_at: s.sent_at,
        message_id: s.message_id.clone(),
        envelope: encode("envelope", serde_json::to_string(&parsed.envelope))?,
        structure: encode("structure", serde_json::to_string(&parsed.structure))?,
        summary: encode("summary", serde_json::to_string(&parsed.summary))?,
        fts_headers,
        fts_body: parsed.body_text,
        header_raw,
        packed: None,
        header_packed: None,
    };
    Ok(Prepared {
        crlf_size,
        compressed: None,
        raw,
        hash,
        recipients: delivery.recipients,
        received_at: delivery.received_at,
        columns,
        references,
    })
}

/// A delivery nobody here keeps (it is only queued for relaying): no
/// email row will hold columns, so the message is neither parsed nor
/// encoded.
fn prepare_relay_only(delivery: Delivery) -> Prepared {
    let (raw, hash, crlf_size) = delivery.message.into_raw();
    Prepared {
        crlf_size,
        compressed: None,
        raw,
        hash,
        recipients: Vec::new(),
        received_at: delivery.received_at,
        columns: EmailColumns::default(),
        references: Vec::new(),
    }
}

/// Stores a prepared delivery. Each recipient runs in its own savepoint: one
/// over quota or gone fails alone, the others are delivered.
pub fn deliver(
    ctx: &mut WriteCtx<'_>,
    p: Prepared,
    outbound: Option<Outbound>,
) -> Result<Accepted> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO blob (hash, refs, data, codec, size) VALUES (?1, 0, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| match &p.compressed {
            Some(z) => s.execute(params![p.hash, z, blob_codec::DEFLATE, p.raw.len() as i64]),
            None => s.execute(params![p.hash, p.raw, blob_codec::RAW, None::<i64>]),
        })
        .map_err(db("storing a message blob"))?;
    let mut results = Vec::with_capacity(p.recipients.len());
    for target in &p.recipients {
        ctx.conn
            .execute_batch("SAVEPOINT rcpt")
            .map_err(db("opening a recipient savepoint"))?;
        let held = ctx.held_modseq(target.account_id);
        let index_mark = ctx.index_mark();
        let result = deliver_one(ctx, &p, target);
        let end = if result.is_ok() {
            "RELEASE rcpt"
        } else {
            // A modseq taken inside the savepoint was rolled back with it.
            ctx.restore_modseq(target.account_id, held);
            ctx.forget_index_jobs(index_mark);
            "ROLLBACK TO rcpt; RELEASE rcpt"
        };
        ctx.conn
            .execute_batch(end)
            .map_err(db("closing a recipient savepoint"))?;
        results.push(result);
    }
    // A local recipient over quota, when the message is accepted anyway
    // (another recipient took it, or it goes to remote ones), joins the
    // queue in this same commit: the queue retries and in the end bounces,
    // so nothing acknowledged is lost and nothing is stored twice.
    let mut deferred = Vec::new();
    let accepted_anyway = results.iter().any(|r| r.is_ok())
        || outbound.as_ref().is_some_and(|o| !o.recipients.is_empty());
    let queued = match outbound {
        Some(mut o) => {
            if accepted_anyway {
                for (i, (target, result)) in p.recipients.iter().zip(&results).enumerate() {
                    if let (false, Err(StoreError::OverQuota { .. })) = (target.sender_copy, result)
                    {
                        let address =
                            super::directory::account(ctx.conn, target.account_id)?.address;
                        if !o.recipients.iter().any(|r| r.address == address) {
                            o.recipients.push(OutboundRecipient {
                                address,
                                notify: DsnNotify::default(),
                                orcpt: None,
                            });
                        }
                        deferred.push(i);
                    }
                }
            }
            if o.recipients.is_empty() {
                None
            } else {
                Some(super::queue::enqueue(
                    ctx.conn,
                    &p.hash,
                    p.raw.len() as u64,
                    &o,
                )?)
            }
        }
        None => None,
    };
    // Nobody took the blob (every recipient failed): do not keep it.
    ctx.conn
        .execute("DELETE FROM blob WHERE hash = ?1 AND refs <= 0", [&p.hash])
        .map_err(db("dropping an unused blob"))?;
    Ok(Accepted {
        local: results,
        queued,
        deferred,
        blob_id: p.hash,
    })
}

fn deliver_one(ctx: &mut WriteCtx<'_>, p: &Prepared, target: &DeliveryTarget) -> Result<Delivered> {
    let account = target.account_id;
    let mailbox = match target.mailbox_id {
        Some(id) => mailboxes::get(ctx.conn, account, id)?,
        None => mailboxes::by_role(ctx.conn, account, Role::Inbox)?
            .ok_or_else(|| StoreError::not_found("mailbox", "INBOX"))?,
    };
    no_messages_in(&mailbox)?;
    let size = p.raw.len() as u64;
    charge_quota(ctx.conn, account, size)?;
    let modseq = ctx.modseq(account)?;
    let thread_id = find_thread(ctx.conn, account, &p.references)?;
    target
        .keywords
        .iter()
        .try_for_each(|k| validate_keyword(k))?;
    let keywords = encode_keywords(&normalize_keywords(&target.keywords));
    let c = &p.columns;
    ctx.conn
        .prepare_cached(
            "INSERT INTO email (account_id, thread_id, blob_hash, size, received_at, sent_at, keywords,
                                message_id, crlf_size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                account.0,
                thread_id.map(|t| t.0).unwrap_or(0),
                p.hash,
                size as i64,
                p.received_at,
                c.sent_at,
                keywords,
                c.message_id,
                p.crlf_size as i64
            ])
        })
        .map_err(db("storing an email"))?;
    let email_id = EmailId(ctx.conn.last_insert_rowid());
    ctx.conn
        .prepare_cached(
            "INSERT INTO email_meta (email_id, envelope, structure, summary, packed)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                email_id.0,
                c.envelope,
                c.structure,
                c.summary,
                c.packed
            ])
        })
        .map_err(db("storing an email's parse"))?;
    ctx.conn
        .prepare_cached(
            "INSERT INTO email_header (account_id, email_id, header_raw) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| match &c.header_packed {
            Some(packed) => s.execute(params![account.0, email_id.0, packed]),
            None => s.execute(params![account.0, email_id.0, c.header_raw]),
        })
        .map_err(db("storing an email's header"))?;
    if thread_id.is_none() {
        // A new thread is named after its first email.
        ctx.conn
            .prepare_cached("UPDATE email SET thread_id = id WHERE id = ?1")
            .and_then(|mut s| s.execute([email_id.0]))
            .map_err(db("starting a thread"))?;
    }
    ctx.conn
        .prepare_cached("UPDATE blob SET refs = refs + 1 WHERE hash = ?1")
        .and_then(|mut s| s.execute([&p.hash]))
        .map_err(db("referencing a blob"))?;
    let thread_id = thread_id.unwrap_or(ThreadId(email_id.0));
    thread_changed(ctx.conn, account, thread_id, modseq)?;
    let uid = add_membership(ctx.conn, account, mailbox.id, email_id, modseq)?;
    ctx.index(IndexJob::Add {
        email_id: email_id.0,
        headers: c.fts_headers.clone(),
        body: c.fts_body.clone(),
    });
    Ok(Delivered {
        account_id: account,
        mailbox_id: mailbox.id,
        email_id,
        uid,
        modseq,
    })
}

/// A `\Noselect` name holds no messages.
pub(crate) fn no_messages_in(mailbox: &Mailbox) -> Result<()> {
    if mailbox.noselect {
        return Err(StoreError::Invalid(format!(
            "{} holds no messages (it only holds other mailboxes)",
            mailbox.name
        )));
    }
    Ok(())
}

/// Counts `size` more bytes against the account's quota, or refuses.
fn charge_quota(conn: &Connection, account: AccountId, size: u64) -> Result<()> {
    let (used, limit): (i64, Option<i64>) = conn
        .prepare_cached("SELECT used_bytes, quota_bytes FROM account WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([account.0], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db("reading a quota"))?
        .ok_or_else(|| StoreError::not_found("account", account))?;
    let used = used.max(0) as u64;
    if let Some(limit) = limit {
        let limit = limit.max(0) as u64;
        if used.saturating_add(size) > limit {
            return Err(StoreError::OverQuota {
                used,
                limit,
                needed: size,
            });
        }
    }
    conn.prepare_cached("UPDATE account SET used_bytes = used_bytes + ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![size as i64, account.0]))
        .map_err(db("charging a quota"))?;
    Ok(())
}

/// The thread of the first email of the account that this one refers to
/// (References, In-Reply-To), if any.
fn find_thread(
    conn: &Connection,
    account: AccountId,
    references: &[String],
) -> Result<Option<ThreadId>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT thread_id FROM email WHERE account_id = ?1 AND message_id = ?2 LIMIT 1",
        )
        .map_err(db("finding a thread"))?;
    for id in references.iter().rev() {
        let found: Option<i64> = stmt
            .query_row(params![account.0, id], |r| r.get(0))
            .optional()
            .map_err(db("finding a thread"))?;
        if let Some(t) = found {
            return Ok(Some(ThreadId(t)));
        }
    }
    Ok(None)
}

/// Journals that an email joined or left `thread` (JMAP Thread/changes).
fn thread_changed(
    conn: &Connection,
    account: AccountId,
    thread: ThreadId,
    modseq: ModSeq,
) -> Result<()> {
    journal::record(
        conn,
        account,
        modseq,
        &ChangeKind::ThreadChanged { thread_id: thread },
    )
}

/// Adds an email to a mailbox under the mailbox's next UID.
pub(super) fn add_membership(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    email: EmailId,
    modseq: ModSeq,
) -> Result<Uid> {
    let uid: u32 = conn
        .prepare_cached(
            "UPDATE mailbox SET uid_next = uid_next + 1, highest_modseq = ?1
              WHERE id = ?2 AND account_id = ?3 RETURNING uid_next - 1",
        )
        .and_then(|mut s| s.query_row(params![modseq.0 as i64, mailbox.0, account.0], |r| r.get(0)))
        .optional()
        .map_err(db("allocating a UID"))?
        .ok_or_else(|| StoreError::not_found("mailbox", mailbox))?;
    let uid = Uid(uid);
    conn.prepare_cached(
        "INSERT INTO mailbox_email (mailbox_id, uid, email_id, modseq, saved_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            mailbox.0,
            uid.0,
            email.0,
            modseq.0 as i64,
            super::now()
        ])
    })
    .map_err(db("adding a message to a mailbox"))?;
    journal::record(
        conn,
        account,
        modseq,
        &ChangeKind::EmailAdded {
            mailbox_id: mailbox,
            uid,
            email_id: email,
        },
    )?;
    Ok(uid)
}

pub(crate) fn encode_keywords(keywords: &[String]) -> String {
    let mut s = String::from(" ");
    for k in keywords {
        s.push_str(k);
        s.push(' ');
    }
    s
}

pub(crate) fn decode_keywords(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub(crate) fn apply_keywords(
    current: &[String],
    op: KeywordOp,
    keywords: &[String],
) -> Vec<String> {
    match op {
        KeywordOp::Replace => normalize_keywords(keywords),
        KeywordOp::Add => normalize_keywords(current.iter().chain(keywords)),
        KeywordOp::Remove => normalize_keywords(
            current
                .iter()
                .filter(|c| !keywords.iter().any(|k| k.eq_ignore_ascii_case(c))),
        ),
    }
}

pub fn set_keywords(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    uids: &[Uid],
    op: KeywordOp,
    keywords: &[String],
    unchanged_since: Option<ModSeq>,
) -> Result<KeywordsResult> {
    keywords.iter().try_for_each(|k| validate_keyword(k))?;
    let mut result = KeywordsResult::default();
    for entry in list(ctx.conn, account, mailbox, Some(uids))? {
        if unchanged_since.is_some_and(|u| entry.modseq > u) {
            result.modified.push(entry.uid);
            continue;
        }
        let new = apply_keywords(&entry.keywords, op, keywords);
        if new == entry.keywords {
            continue;
        }
        let modseq = ctx.modseq(account)?;
        write_keywords(ctx.conn, account, entry.email_id, &new, modseq)?;
        result.prior_modseq.push(entry.modseq);
        result.updated.push(MessageEntry {
            keywords: new,
            modseq,
            ..entry
        });
    }
    Ok(result)
}

/// Stores an email's new keywords under `modseq`. Keywords belong to the
/// email: every mailbox holding it sees the change, in its modseq and its
/// journal.
pub(super) fn write_keywords(
    conn: &Connection,
    account: AccountId,
    email: EmailId,
    keywords: &[String],
    modseq: ModSeq,
) -> Result<()> {
    let old: Option<String> = conn
        .prepare_cached("SELECT keywords FROM email WHERE id = ?1")
        .and_then(|mut s| s.query_row([email.0], |r| r.get(0)).optional())
        .map_err(db("reading keywords"))?;
    if let Some(old) = old {
        super::spam::keywords_changed(conn, account, email, &decode_keywords(&old), keywords)?;
    }
    conn.prepare_cached("UPDATE email SET keywords = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![encode_keywords(keywords), email.0]))
        .map_err(db("setting keywords"))?;
    for (mailbox_id, uid) in memberships(conn, email)? {
        touch(conn, mailbox_id, uid, modseq)?;
        journal::record(
            conn,
            account,
            modseq,
            &ChangeKind::KeywordsChanged {
                mailbox_id,
                uid,
                email_id: email,
            },
        )?;
    }
    Ok(())
}

pub(super) fn memberships(conn: &Connection, email: EmailId) -> Result<Vec<(MailboxId, Uid)>> {
    let mut stmt = conn
        .prepare_cached("SELECT mailbox_id, uid FROM mailbox_email WHERE email_id = ?1")
        .map_err(db("listing an email's mailboxes"))?;
    let rows = stmt
        .query_map([email.0], |r| Ok((MailboxId(r.get(0)?), Uid(r.get(1)?))))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("listing an email's mailboxes"))?;
    Ok(rows)
}

/// Stamps a membership and its mailbox with `modseq`.
pub(super) fn touch(conn: &Connection, mailbox: MailboxId, uid: Uid, modseq: ModSeq) -> Result<()> {
    conn.prepare_cached("UPDATE mailbox_email SET modseq = ?1 WHERE mailbox_id = ?2 AND uid = ?3")
        .and_then(|mut s| s.execute(params![modseq.0 as i64, mailbox.0, uid.0]))
        .and_then(|_| {
            conn.prepare_cached(
                "UPDATE mailbox SET highest_modseq = max(highest_modseq, ?1) WHERE id = ?2",
            )
            .and_then(|mut s| s.execute(params![modseq.0 as i64, mailbox.0]))
        })
        .map_err(db("stamping a modseq"))?;
    Ok(())
}

/// COPY (new emails, same blob) or MOVE (same emails, new memberships).
pub fn copy(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
    is_move: bool,
) -> Result<CopyResult> {
    let target = mailboxes::get(ctx.conn, account, to)?;
    no_messages_in(&target)?;
    // A MOVE into the same mailbox is allowed (RFC 6851 does not forbid
    // it): the messages get new UIDs there, as Dovecot gives them.
    let entries = list(ctx.conn, account, from, Some(uids))?;
    if entries.is_empty() {
        // Nothing to do takes no modseq and wakes nobody.
        return Ok(CopyResult {
            uid_validity: target.uid_validity,
            mapping: Vec::new(),
            modseq: super::journal::highest_modseq(ctx.conn, account)?,
        });
    }
    let mut mapping = Vec::with_capacity(entries.len());
    let modseq = ctx.modseq(account)?;
    // Into or out of Junk: the user's verdict, for their spam classifier.
    let source_role = mailboxes::get(ctx.conn, account, from)?.role;
    let verdict = super::spam::verdict_of_move(source_role, target.role);
    for entry in entries {
        let (email, dest_uid) = if is_move {
            remove_membership(ctx.conn, account, from, entry.uid, entry.email_id, modseq)?;
            let uid = add_membership(ctx.conn, account, to, entry.email_id, modseq)?;
            (entry.email_id, uid)
        } else {
            let copy = duplicate_email(ctx, account, entry.email_id, entry.size)?;
            (copy, add_membership(ctx.conn, account, to, copy, modseq)?)
        };
        if let Some(spam) = verdict {
            super::spam::request_training(ctx.conn, account, email, spam)?;
        }
        mapping.push((entry.uid, dest_uid));
    }
    Ok(CopyResult {
        uid_validity: target.uid_validity,
        mapping,
        modseq,
    })
}

/// A new email row with the same content, parse and keywords as `email`.
fn duplicate_email(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    email: EmailId,
    size: u64,
) -> Result<EmailId> {
    let conn = ctx.conn;
    charge_quota(conn, account, size)?;
    conn.prepare_cached(
        "INSERT INTO email (account_id, thread_id, blob_hash, size, received_at, sent_at, keywords,
                            message_id, crlf_size)
         SELECT account_id, thread_id, blob_hash, size, received_at, sent_at, keywords,
                message_id, crlf_size
           FROM email WHERE id = ?1",
    )
    .and_then(|mut s| s.execute([email.0]))
    .map_err(db("copying an email"))?;
    let copy = EmailId(conn.last_insert_rowid());
    let thread: i64 = conn
        .prepare_cached("SELECT thread_id FROM email WHERE id = ?1")
        .and_then(|mut s| s.query_row([copy.0], |r| r.get(0)))
        .map_err(db("reading a copy's thread"))?;
    let modseq = ctx.modseq(account)?;
    thread_changed(conn, account, ThreadId(thread), modseq)?;
    conn.prepare_cached(
        "INSERT INTO email_meta (email_id, envelope, structure, summary, packed)
         SELECT ?2, envelope, structure, summary, packed FROM email_meta WHERE email_id = ?1",
    )
    .and_then(|mut s| s.execute([email.0, copy.0]))
    .map_err(db("copying an email's parse"))?;
    conn.prepare_cached(
        "INSERT INTO email_header (account_id, email_id, header_raw)
         SELECT account_id, ?3, header_raw FROM email_header WHERE account_id = ?1 AND email_id = ?2",
    )
    .and_then(|mut s| s.execute([account.0, email.0, copy.0]))
    .map_err(db("copying an email's header"))?;
    conn.prepare_cached(
        "UPDATE blob SET refs = refs + 1 WHERE hash = (SELECT blob_hash FROM email WHERE id = ?1)",
    )
    .and_then(|mut s| s.execute([copy.0]))
    .map_err(db("copying an email"))?;
    ctx.index(IndexJob::Copy { email_id: copy.0 });
    Ok(copy)
}

/// Takes an email out of a mailbox, leaving a tombstone.
pub(super) fn remove_membership(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
    uid: Uid,
    email: EmailId,
    modseq: ModSeq,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM mailbox_email WHERE mailbox_id = ?1 AND uid = ?2")
        .and_then(|mut s| s.execute(params![mailbox.0, uid.0]))
        .and_then(|_| {
            conn.prepare_cached(
                "UPDATE mailbox SET highest_modseq = max(highest_modseq, ?1) WHERE id = ?2",
            )
            .and_then(|mut s| s.execute(params![modseq.0 as i64, mailbox.0]))
        })
        .map_err(db("removing a message from a mailbox"))?;
    journal::record(
        conn,
        account,
        modseq,
        &ChangeKind::EmailExpunged {
            mailbox_id: mailbox,
            uid,
            email_id: email,
        },
    )
}

/// Deletes an email that no mailbox holds any more, its index entry, its
/// share of the blob and its quota charge.
pub(super) fn collect_email(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    email: EmailId,
) -> Result<()> {
    let conn = ctx.conn;
    if !memberships(conn, email)?.is_empty() {
        return Ok(());
    }
    ctx.index(IndexJob::Remove { email_id: email.0 });
    let (hash, size, thread): (String, i64, i64) = conn
        .prepare_cached("SELECT blob_hash, size, thread_id FROM email WHERE id = ?1")
        .and_then(|mut s| s.query_row([email.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .map_err(db("reading an email to remove"))?;
    let modseq = ctx.modseq(account)?;
    thread_changed(conn, account, ThreadId(thread), modseq)?;
    conn.prepare_cached("DELETE FROM email_header WHERE account_id = ?1 AND email_id = ?2")
        .and_then(|mut s| s.execute([account.0, email.0]))
        .map_err(db("removing an email's header"))?;
    let steps = [
        ("DELETE FROM email WHERE id = ?1", email.0.to_string()),
        (
            "UPDATE blob SET refs = refs - 1 WHERE hash = ?1",
            hash.clone(),
        ),
        ("DELETE FROM blob WHERE hash = ?1 AND refs <= 0", hash),
    ];
    for (sql, arg) in steps {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([arg]))
            .map_err(db("removing an email"))?;
    }
    conn.prepare_cached("UPDATE account SET used_bytes = max(0, used_bytes - ?1) WHERE id = ?2")
        .and_then(|mut s| s.execute(params![size, account.0]))
        .map_err(db("releasing quota"))?;
    Ok(())
}

pub fn expunge(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    filter: ExpungeFilter,
) -> Result<Vec<Uid>> {
    let doomed: Vec<(Uid, EmailId)> = match &filter {
        ExpungeFilter::Deleted => deleted_messages(ctx.conn, account, mailbox)?,
        ExpungeFilter::DeletedAmong(uids) | ExpungeFilter::Uids(uids) => {
            let only_deleted = matches!(filter, ExpungeFilter::DeletedAmong(_));
            list(ctx.conn, account, mailbox, Some(uids))?
                .into_iter()
                .filter(|e| !only_deleted || e.has_keyword("\\Deleted"))
                .map(|e| (e.uid, e.email_id))
                .collect()
        }
    };
    if doomed.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = ctx.modseq(account)?;
    let mut expunged = Vec::with_capacity(doomed.len());
    for (uid, email_id) in doomed {
        remove_membership(ctx.conn, account, mailbox, uid, email_id, modseq)?;
        collect_email(ctx, account, email_id)?;
        expunged.push(uid);
    }
    Ok(expunged)
}

/// The messages of a mailbox flagged `\Deleted`, found in SQL: EXPUNGE runs
/// on the writer thread, which should not build an entry for every message
/// of the mailbox to keep a few. Keywords keep the case they were stored
/// with, so the test ignores case as [`MessageEntry::has_keyword`] does.
fn deleted_messages(
    conn: &Connection,
    account: AccountId,
    mailbox: MailboxId,
) -> Result<Vec<(Uid, EmailId)>> {
    mailboxes::get(conn, account, mailbox)?;
    conn.prepare_cached(
        "SELECT m.uid, m.email_id FROM mailbox_email m
           JOIN email e INDEXED BY email_listing ON e.account_id = :account AND e.id = m.email_id
          WHERE m.mailbox_id = :mailbox AND instr(lower(e.keywords), ' \\deleted ') > 0
          ORDER BY m.uid",
    )
    .and_then(|mut s| {
        s.query_map(
            named_params! {":account": account.0, ":mailbox": mailbox.0},
            |r| Ok((Uid(r.get(0)?), EmailId(r.get(1)?))),
        )?
        .collect()
    })
    .map_err(db("finding deleted messages"))
}
