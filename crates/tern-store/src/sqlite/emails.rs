//! Emails by id in SQLite (see `crate::query`): keywords and mailboxes of
//! an email, destroying emails, reading them with their memberships, and
//! the account-wide sorted, paged query.
//!
//! Each write takes one modseq for the account and journals every
//! membership it touches, exactly as the (mailbox, UID) operations in
//! `messages.rs` do, so IMAP sessions see JMAP's changes and the other way
//! round.

use super::messages::{
    add_membership, apply_keywords, collect_email, decode_keywords, memberships, no_messages_in,
    remove_membership, write_keywords,
};
use super::{db, journal, mailboxes, WriteCtx};
use crate::error::{Result, StoreError};
use crate::query::*;
use crate::types::*;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

/// Most ids one call takes: far above a JMAP client's batch, and a bound on
/// the work one operation does on the writer.
pub const MAX_IDS: usize = 5_000;

pub(crate) fn check_batch(ids: &[EmailId]) -> Result<()> {
    if ids.len() > MAX_IDS {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_IDS} emails per call, not {}",
            ids.len()
        )));
    }
    Ok(())
}

/// The keywords of an email of `account`, if it is one.
fn keywords_of(conn: &Connection, account: AccountId, id: EmailId) -> Result<Option<Vec<String>>> {
    conn.prepare_cached("SELECT keywords FROM email WHERE id = ?1 AND account_id = ?2")
        .and_then(|mut s| {
            s.query_row(params![id.0, account.0], |r| r.get::<_, String>(0))
                .optional()
        })
        .map(|k| k.map(|k| decode_keywords(&k)))
        .map_err(db("reading an email's keywords"))
}

pub fn records(
    conn: &Connection,
    account: AccountId,
    ids: &[EmailId],
) -> Result<Vec<Option<EmailRecord>>> {
    check_batch(ids)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT thread_id, blob_hash, size, received_at, sent_at, keywords
               FROM email WHERE id = ?1 AND account_id = ?2",
        )
        .map_err(db("reading emails"))?;
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let row = stmt
            .query_row(params![id.0, account.0], |r| {
                Ok((
                    ThreadId(r.get(0)?),
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .optional()
            .map_err(db("reading emails"))?;
        out.push(match row {
            None => None,
            Some((thread_id, blob_id, size, received_at, sent_at, keywords)) => {
                let mut mailboxes = memberships(conn, id)?;
                mailboxes.sort();
                Some(EmailRecord {
                    id,
                    thread_id,
                    blob_id: BlobId(blob_id),
                    size: size.max(0) as u64,
                    received_at,
                    sent_at,
                    keywords: decode_keywords(&keywords),
                    mailboxes,
                })
            }
        });
    }
    Ok(out)
}

pub fn set_keywords(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    ids: &[EmailId],
    op: KeywordOp,
    keywords: &[String],
) -> Result<EmailsChanged> {
    check_batch(ids)?;
    keywords.iter().try_for_each(|k| validate_keyword(k))?;
    let mut result = EmailsChanged::default();
    for &id in ids {
        let Some(current) = keywords_of(ctx.conn, account, id)? else {
            result.not_found.push(id);
            continue;
        };
        let new = apply_keywords(&current, op, keywords);
        if new == current {
            continue;
        }
        let modseq = ctx.modseq(account)?;
        write_keywords(ctx.conn, account, id, &new, modseq)?;
        result.changed.push(id);
        result.modseq = modseq;
    }
    if result.changed.is_empty() {
        result.modseq = journal::highest_modseq(ctx.conn, account)?;
    }
    Ok(result)
}

/// Puts the email in exactly `wanted` (JMAP `mailboxIds`): new memberships
/// get the mailbox's next UID, removed ones leave tombstones, kept ones
/// keep their UID.
/// The mailboxes an email is to be in, sorted and once each; refused when
/// none (RFC 8621 §4.1.1: an email is in at least one mailbox). Every
/// backend's `set_email_mailboxes` starts here.
pub(crate) fn wanted_mailboxes(wanted: &[MailboxId]) -> Result<Vec<MailboxId>> {
    let mut wanted = wanted.to_vec();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Err(StoreError::Invalid(
            "an email must stay in at least one mailbox; destroy it instead".into(),
        ));
    }
    Ok(wanted)
}

pub fn set_mailboxes(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    id: EmailId,
    wanted: &[MailboxId],
) -> Result<ModSeq> {
    let wanted = wanted_mailboxes(wanted)?;
    if keywords_of(ctx.conn, account, id)?.is_none() {
        return Err(StoreError::not_found("email", id));
    }
    for &m in &wanted {
        no_messages_in(&mailboxes::get(ctx.conn, account, m)?)?;
    }
    let current = memberships(ctx.conn, id)?;
    let to_remove: Vec<_> = current
        .iter()
        .filter(|(m, _)| !wanted.contains(m))
        .copied()
        .collect();
    let to_add: Vec<_> = wanted
        .iter()
        .filter(|m| !current.iter().any(|(c, _)| c == *m))
        .copied()
        .collect();
    if to_remove.is_empty() && to_add.is_empty() {
        return journal::highest_modseq(ctx.conn, account);
    }
    // Into or out of Junk: the user's verdict, for their spam classifier.
    let role_of = |ids: &mut dyn Iterator<Item = MailboxId>| -> Result<Vec<Option<Role>>> {
        ids.map(|m| Ok(mailboxes::get(ctx.conn, account, m)?.role))
            .collect()
    };
    let was = role_of(&mut current.iter().map(|(m, _)| *m))?;
    let will = role_of(&mut wanted.iter().copied())?;
    let verdict = super::spam::verdict_of_reassignment(&was, &will);
    let modseq = ctx.modseq(account)?;
    for (mailbox, uid) in to_remove {
        remove_membership(ctx.conn, account, mailbox, uid, id, modseq)?;
    }
    for mailbox in to_add {
        add_membership(ctx.conn, account, mailbox, id, modseq)?;
    }
    if let Some(spam) = verdict {
        super::spam::request_training(ctx.conn, account, id, spam)?;
    }
    Ok(modseq)
}

/// Takes every email out of every mailbox (tombstones for each) and
/// deletes it, its quota charge and its share of the blob.
pub fn destroy(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    ids: &[EmailId],
) -> Result<EmailsChanged> {
    check_batch(ids)?;
    let mut result = EmailsChanged::default();
    for &id in ids {
        if keywords_of(ctx.conn, account, id)?.is_none() {
            result.not_found.push(id);
            continue;
        }
        let modseq = ctx.modseq(account)?;
        for (mailbox, uid) in memberships(ctx.conn, id)? {
            remove_membership(ctx.conn, account, mailbox, uid, id, modseq)?;
        }
        collect_email(ctx, account, id)?;
        result.changed.push(id);
        result.modseq = modseq;
    }
    if result.changed.is_empty() {
        result.modseq = journal::highest_modseq(ctx.conn, account)?;
    }
    Ok(result)
}

/// The account-wide query: one SQL statement with the conditions, sorted
/// and cut to the page in SQLite, so only a page's ids come back.
/// Full-text conditions as `e.id IN (index hits)`, when the index can
/// answer them alone: attached, holding every email of the account, and
/// each needle at least a trigram long.
fn text_conditions(
    conn: &Connection,
    account: AccountId,
    text: &[(bool, String)],
    conditions: &mut Vec<String>,
    args: &mut Vec<Value>,
) -> Result<()> {
    let refuse = |why: &str| Err(StoreError::Invalid(why.to_string()));
    if !super::indexer::is_attached(conn) {
        return refuse("no full-text index");
    }
    let newest: Option<i64> = conn
        .prepare_cached("SELECT max(id) FROM email WHERE account_id = ?1")
        .and_then(|mut s| s.query_row([account.0], |r| r.get(0)))
        .map_err(db("reading the newest email"))?;
    if newest.is_some_and(|n| n > super::indexer::indexed_upto_attached(conn)) {
        return refuse("the full-text index is catching up");
    }
    let mut account_emails: Option<HashSet<EmailId>> = None;
    for (body_only, needle) in text {
        // As IMAP SEARCH asks the index (full_text.rs), within the account.
        if needle.replace('\0', "").chars().count() < super::full_text::TRIGRAM {
            return refuse("a needle shorter than a trigram");
        }
        let members = match &mut account_emails {
            Some(ids) => ids,
            None => account_emails.insert(emails_of(conn, account)?),
        };
        let hits = super::full_text::full_text(conn, members, *body_only, needle)?;
        let ids: Vec<i64> = hits.into_iter().map(|id| id.0).collect();
        conditions.push("e.id IN (SELECT value FROM json_each(?))".into());
        args.push(Value::Text(serde_json::to_string(&ids).unwrap_or_default()));
    }
    Ok(())
}

/// Every email id of `account`.
fn emails_of(conn: &Connection, account: AccountId) -> Result<HashSet<EmailId>> {
    let what = "listing an account's emails";
    conn.prepare_cached("SELECT id FROM email WHERE account_id = ?1")
        .and_then(|mut s| {
            s.query_map([account.0], |r| Ok(EmailId(r.get(0)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(db(what))
}

pub fn query(conn: &Connection, account: AccountId, q: &EmailQuery) -> Result<EmailQueryResult> {
    let mut conditions = vec!["e.account_id = ?".to_string()];
    let mut args: Vec<Value> = vec![Value::Integer(account.0)];
    if let Some(m) = q.in_mailbox {
        conditions.push("EXISTS (SELECT 1 FROM mailbox_email me WHERE me.email_id = e.id AND me.mailbox_id = ?)".into());
        args.push(Value::Integer(m.0));
    }
    if let Some(t) = q.in_thread {
        conditions.push("e.thread_id = ?".into());
        args.push(Value::Integer(t.0));
    }
    if !q.text.is_empty() {
        text_conditions(conn, account, &q.text, &mut conditions, &mut args)?;
    }
    for m in &q.not_in_mailboxes {
        conditions.push("NOT EXISTS (SELECT 1 FROM mailbox_email me WHERE me.email_id = e.id AND me.mailbox_id = ?)".into());
        args.push(Value::Integer(m.0));
    }
    if let Some(others) = &q.in_mailbox_other_than {
        let marks = vec!["?"; others.len()].join(", ");
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM mailbox_email me WHERE me.email_id = e.id AND me.mailbox_id NOT IN ({marks}))"
        ));
        args.extend(others.iter().map(|m| Value::Integer(m.0)));
    }
    // Keywords are stored " a b " with a space at each end; compared
    // case-insensitively, as IMAP flags are.
    for k in &q.has_keywords {
        validate_keyword(k)?;
        conditions.push("instr(lower(e.keywords), ?) > 0".into());
        args.push(Value::Text(format!(" {} ", k.to_lowercase())));
    }
    for k in &q.not_keywords {
        validate_keyword(k)?;
        conditions.push("instr(lower(e.keywords), ?) = 0".into());
        args.push(Value::Text(format!(" {} ", k.to_lowercase())));
    }
    let bounds = [
        ("e.received_at >= ?", q.after),
        ("e.received_at < ?", q.before),
        (
            "e.size >= ?",
            q.min_size.map(|s| s.min(i64::MAX as u64) as i64),
        ),
        (
            "e.size <= ?",
            q.max_size.map(|s| s.min(i64::MAX as u64) as i64),
        ),
    ];
    for (sql, value) in bounds {
        if let Some(v) = value {
            conditions.push(sql.into());
            args.push(Value::Integer(v));
        }
    }
    let column = match q.sort {
        EmailSort::ReceivedAt => "e.received_at",
        // Messages without a parsable Date sort as if sent when received.
        EmailSort::SentAt => "coalesce(e.sent_at, e.received_at)",
        EmailSort::Size => "e.size",
    };
    let dir = if q.ascending { "ASC" } else { "DESC" };
    let filter = conditions.join(" AND ");
    let total = if q.calculate_total {
        let n: i64 = conn
            .prepare(&format!("SELECT count(*) FROM email e WHERE {filter}"))
            .and_then(|mut s| s.query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0)))
            .map_err(db("counting a query's results"))?;
        Some(n.max(0) as u64)
    } else {
        None
    };
    let limit = q.limit.min(i64::MAX as usize) as i64;
    let offset = q.position.min(i64::MAX as usize) as i64;
    args.push(Value::Integer(limit));
    args.push(Value::Integer(offset));
    let sql = format!(
        "SELECT e.id FROM email e WHERE {filter} ORDER BY {column} {dir}, e.id {dir} LIMIT ? OFFSET ?"
    );
    let ids = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok(EmailId(r.get(0)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db("querying emails"))?;
    Ok(EmailQueryResult { ids, total })
}

/// The account's emails stored as `blob` (the `email_by_blob` index).
pub fn with_blob(conn: &Connection, account: AccountId, blob: &BlobId) -> Result<Vec<EmailId>> {
    conn.prepare_cached("SELECT id FROM email WHERE blob_hash = ?1 AND account_id = ?2 ORDER BY id")
        .and_then(|mut s| {
            s.query_map(params![blob.0, account.0], |r| Ok(EmailId(r.get(0)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        })
        .map_err(db("finding emails by blob"))
}
