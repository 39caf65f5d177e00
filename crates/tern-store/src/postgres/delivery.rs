//! Delivery and APPEND in PostgreSQL: one message stored once for every
//! local target, and queued for the remote recipients, in one commit (the
//! SQLite backend's `messages::deliver`, same rows, same answers).
//!
//! - The message is parsed and encoded into columns before the
//!   transaction, off the async threads ([`prepare`]), so a connection is
//!   never held while a large message is parsed.
//! - Every target account's row is locked first, in ascending id order, so
//!   two deliveries to the same accounts never deadlock; the modseq of each
//!   account is taken only when its copy is stored, so a target that fails
//!   (over quota, no such mailbox) fails alone, in its savepoint, and
//!   leaves no gap in its account's modseqs.
//! - UIDs are taken after the account's modseq (whose row lock is held to
//!   the commit): UIDs and modseqs grow in commit order on every node.

use super::messages::{add_membership, charge_quota, hold_accounts, thread_changed};
use super::{blobs, mailboxes, queue, PgStore, Tx};
use crate::error::{Result, StoreError};
use crate::sqlite::messages::{encode_keywords, no_messages_in, prepare, Prepared};
use crate::types::*;

/// PostgreSQL TEXT holds no NUL: peer bytes lose theirs before they reach
/// a column (they carry nothing a search or a thread could use).
pub(super) fn without_nul(s: &mut String) {
    if let std::borrow::Cow::Owned(clean) = super::text(s) {
        *s = clean;
    }
}

/// Parses and encodes the message (CPU work, on the blocking pool) and
/// makes its text columns fit PostgreSQL.
async fn prepare_off_thread(delivery: Delivery) -> Result<Prepared> {
    tokio::task::spawn_blocking(move || {
        let mut p = prepare(delivery)?;
        let c = &mut p.columns;
        for s in [&mut c.header_raw, &mut c.fts_headers, &mut c.fts_body] {
            without_nul(s);
        }
        if let Some(id) = &mut c.message_id {
            without_nul(id);
        }
        p.references.iter_mut().for_each(without_nul);
        Ok(p)
    })
    .await
    .map_err(|e| StoreError::backend("parsing a message", e))?
}

/// `MessageStore::accept`.
pub(super) async fn accept(
    store: &PgStore,
    delivery: Delivery,
    outbound: Option<Outbound>,
) -> Result<Accepted> {
    let prepared = prepare_off_thread(delivery).await?;
    let (p, outbound) = (&prepared, &outbound);
    store
        .write(move |tx| Box::pin(deliver(tx, p, outbound.as_ref())))
        .await
}

/// Stores a prepared delivery; one result per target, in order.
async fn deliver<'env>(
    tx: &mut Tx<'env>,
    p: &'env Prepared,
    outbound: Option<&Outbound>,
) -> Result<Accepted> {
    let accounts: Vec<AccountId> = p.recipients.iter().map(|t| t.account_id).collect();
    hold_accounts(tx, &accounts).await?;
    // Held with no reference yet: each stored copy adds one, and a blob
    // nobody took is dropped again at the end.
    blobs::put(tx, &p.hash, &p.raw, 0).await?;
    let mut results = Vec::with_capacity(p.recipients.len());
    for target in &p.recipients {
        let result = tx
            .savepoint(|tx| Box::pin(deliver_one(tx, p, target)))
            .await;
        match result {
            // The transaction is lost (another node won, the connection
            // dropped): the whole delivery runs again.
            Err(e) if super::is_retryable(&e) => return Err(e),
            result => results.push(result),
        }
    }
    // A local recipient over quota, when the message is accepted anyway
    // (another recipient took it, or it goes to remote ones), joins the
    // queue in this same commit: the queue retries and in the end bounces,
    // so nothing acknowledged is lost and nothing is stored twice.
    let mut deferred = Vec::new();
    let accepted_anyway =
        results.iter().any(|r| r.is_ok()) || outbound.is_some_and(|o| !o.recipients.is_empty());
    let queued = match outbound {
        Some(o) => {
            let mut o = o.clone();
            if accepted_anyway {
                for (i, (target, result)) in p.recipients.iter().zip(&results).enumerate() {
                    if let (false, Err(StoreError::OverQuota { .. })) = (target.sender_copy, result)
                    {
                        let address = address_of(tx, target.account_id).await?;
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
                Some(queue::enqueue(tx, &p.hash, p.raw.len() as u64, &o).await?)
            }
        }
        None => None,
    };
    // Nobody took the blob (every recipient failed): do not keep it.
    blobs::release(tx, &p.hash, 0).await?;
    Ok(Accepted {
        local: results,
        queued,
        deferred,
        blob_id: p.hash.clone(),
    })
}

async fn address_of(tx: &Tx<'_>, account: AccountId) -> Result<String> {
    tx.query_opt("SELECT address FROM account WHERE id = $1", &[&account.0])
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::not_found("account", account))
}

/// The account's INBOX.
async fn inbox(tx: &Tx<'_>, account: AccountId) -> Result<Mailbox> {
    let id: i64 = tx
        .query_opt(
            "SELECT id FROM mailbox WHERE account_id = $1 AND role = 'inbox'",
            &[&account.0],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::not_found("mailbox", "INBOX"))?;
    mailboxes::get(tx, account, MailboxId(id)).await
}

/// One target's copy: its email row, parse, header, search text and
/// membership, its quota charge and its reference on the blob.
async fn deliver_one(tx: &mut Tx<'_>, p: &Prepared, target: &DeliveryTarget) -> Result<Delivered> {
    let account = target.account_id;
    let mailbox = match target.mailbox_id {
        Some(id) => mailboxes::get(tx, account, id).await?,
        None => inbox(tx, account).await?,
    };
    no_messages_in(&mailbox)?;
    target
        .keywords
        .iter()
        .try_for_each(|k| validate_keyword(k))?;
    let size = p.raw.len() as u64;
    charge_quota(tx, account, size).await?;
    let modseq = tx.modseq(account).await?;
    let thread = find_thread(tx, account, &p.references).await?;
    let keywords = encode_keywords(&normalize_keywords(&target.keywords));
    let c = &p.columns;
    // One statement for the email and what hangs off it. A new thread is
    // named after its first email, whose id is taken first for that.
    let row = tx
        .query_one(
            "WITH n AS (SELECT nextval(pg_get_serial_sequence('email', 'id')) AS id),
                  e AS (INSERT INTO email (id, account_id, thread_id, blob_hash, size, received_at,
                                           sent_at, keywords, message_id, crlf_size)
                        SELECT n.id, $1::bigint, coalesce($2::bigint, n.id), $3::text,
                               $4::bigint, $5::bigint, $6::bigint, $7::text, $8::text, $9::bigint
                          FROM n
                        RETURNING id, thread_id),
                  m AS (INSERT INTO email_meta (email_id, envelope, structure, summary)
                        SELECT id, $10::text, $11::text, $12::text FROM e),
                  h AS (INSERT INTO email_header (account_id, email_id, header_raw)
                        SELECT $1::bigint, id, $13::text FROM e),
                  t AS (INSERT INTO email_text (email_id, account_id, headers, body)
                        SELECT id, $1::bigint, $14::text, $15::text FROM e),
                  b AS (UPDATE blob SET refs = refs + 1 WHERE hash = $3::text)
             SELECT id, thread_id FROM e",
            &[
                &account.0,
                &thread.map(|t| t.0),
                &p.hash.0,
                &(size as i64),
                &p.received_at,
                &c.sent_at,
                &keywords,
                &c.message_id,
                &(p.crlf_size as i64),
                &c.envelope,
                &c.structure,
                &c.summary,
                &c.header_raw,
                &c.fts_headers,
                &c.fts_body,
            ],
        )
        .await?;
    let email_id = EmailId(row.get(0));
    let thread_id = ThreadId(row.get(1));
    thread_changed(tx, account, thread_id, modseq).await?;
    let uid = add_membership(tx, account, mailbox.id, email_id, modseq).await?;
    Ok(Delivered {
        account_id: account,
        mailbox_id: mailbox.id,
        email_id,
        uid,
        modseq,
    })
}

/// The thread of the first email of the account that this one refers to
/// (References, In-Reply-To; the last named first), if any.
async fn find_thread(
    tx: &Tx<'_>,
    account: AccountId,
    references: &[String],
) -> Result<Option<ThreadId>> {
    if references.is_empty() {
        return Ok(None);
    }
    let row = tx
        .query_opt(
            "SELECT e.thread_id FROM unnest($2::text[]) WITH ORDINALITY AS r(message_id, n)
               JOIN email e ON e.account_id = $1 AND e.message_id = r.message_id
              ORDER BY r.n DESC, e.id LIMIT 1",
            &[&account.0, &references],
        )
        .await?;
    Ok(row.map(|r| ThreadId(r.get(0))))
}
