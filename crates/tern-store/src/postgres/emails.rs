//! Emails by id in PostgreSQL (see `crate::query`): keywords and mailboxes
//! of an email, destroying emails, reading them with their memberships,
//! and the account-wide sorted, paged query — the SQLite backend's
//! `emails.rs`, same rows, same answers.
//!
//! Each write locks its account first, takes one modseq for it when it
//! changes something, and journals every membership it touches, exactly
//! as the (mailbox, UID) operations in `messages.rs` do, so IMAP sessions
//! see JMAP's changes and the other way round.

use super::listing::{memberships, uid_of};
use super::messages::{
    add_membership, collect_email, hold_accounts, remove_membership, write_keywords,
};
use super::{journal, mailboxes, spam, submissions, PgStore, Tx};
use crate::error::{Result, StoreError};
use crate::query::*;
use crate::sqlite::emails::check_batch;
use crate::sqlite::messages::{apply_keywords, decode_keywords, no_messages_in};
use crate::store::*;
use crate::types::*;
use async_trait::async_trait;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

/// Shortest text needle answered account-wide: the trigram indexes find
/// nothing shorter without reading every message, and the SQLite backend
/// refuses the same (the caller then searches mailbox by mailbox).
const MIN_NEEDLE_CHARS: usize = 3;

/// The keywords of the account's emails among `ids`, by id.
async fn keywords_of(
    tx: &Tx<'_>,
    account: AccountId,
    ids: &[EmailId],
) -> Result<HashMap<EmailId, Vec<String>>> {
    let wanted: Vec<i64> = ids.iter().map(|i| i.0).collect();
    let rows = tx
        .query(
            "SELECT id, keywords FROM email WHERE id = ANY($1) AND account_id = $2",
            &[&wanted, &account.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (EmailId(r.get(0)), decode_keywords(r.get(1))))
        .collect())
}

async fn records(
    tx: &Tx<'_>,
    account: AccountId,
    ids: &[EmailId],
) -> Result<Vec<Option<EmailRecord>>> {
    check_batch(ids)?;
    let wanted: Vec<i64> = ids.iter().map(|i| i.0).collect();
    let rows = tx
        .query(
            "SELECT id, thread_id, blob_hash, size, received_at, sent_at, keywords
               FROM email WHERE id = ANY($1) AND account_id = $2",
            &[&wanted, &account.0],
        )
        .await?;
    let held = tx
        .query(
            "SELECT m.email_id, m.mailbox_id, m.uid FROM mailbox_email m
               JOIN email e ON e.id = m.email_id AND e.account_id = $2
              WHERE m.email_id = ANY($1)
              ORDER BY m.mailbox_id, m.uid",
            &[&wanted, &account.0],
        )
        .await?;
    let mut mailboxes: HashMap<EmailId, Vec<(MailboxId, Uid)>> = HashMap::new();
    for r in &held {
        mailboxes
            .entry(EmailId(r.get(0)))
            .or_default()
            .push((MailboxId(r.get(1)), uid_of(r.get(2))));
    }
    let mut found = HashMap::with_capacity(rows.len());
    for r in &rows {
        let id = EmailId(r.get(0));
        found.insert(
            id,
            EmailRecord {
                id,
                thread_id: ThreadId(r.get(1)),
                blob_id: BlobId(r.get(2)),
                size: r.get::<_, i64>(3).max(0) as u64,
                received_at: r.get(4),
                sent_at: r.get(5),
                keywords: decode_keywords(r.get(6)),
                mailboxes: mailboxes.remove(&id).unwrap_or_default(),
            },
        );
    }
    Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
}

async fn set_keywords(
    tx: &mut Tx<'_>,
    account: AccountId,
    ids: &[EmailId],
    op: KeywordOp,
    keywords: &[String],
) -> Result<EmailsChanged> {
    check_batch(ids)?;
    keywords.iter().try_for_each(|k| validate_keyword(k))?;
    hold_accounts(tx, &[account]).await?;
    let mut current = keywords_of(tx, account, ids).await?;
    let mut result = EmailsChanged::default();
    for &id in ids {
        let Some(old) = current.get_mut(&id) else {
            result.not_found.push(id);
            continue;
        };
        let new = apply_keywords(old, op, keywords);
        if new == *old {
            continue;
        }
        let modseq = tx.modseq(account).await?;
        write_keywords(tx, account, id, old, &new, modseq).await?;
        // An id asked for twice sees its first change.
        *old = new;
        result.changed.push(id);
        result.modseq = modseq;
    }
    if result.changed.is_empty() {
        result.modseq = journal::highest_modseq(tx, account).await?;
    }
    Ok(result)
}

/// Puts the email in exactly `wanted` (JMAP `mailboxIds`): new memberships
/// get the mailbox's next UID, removed ones leave tombstones, kept ones
/// keep their UID.
async fn set_mailboxes(
    tx: &mut Tx<'_>,
    account: AccountId,
    id: EmailId,
    wanted: &[MailboxId],
) -> Result<ModSeq> {
    let wanted = crate::sqlite::emails::wanted_mailboxes(wanted)?;
    hold_accounts(tx, &[account]).await?;
    if keywords_of(tx, account, &[id]).await?.is_empty() {
        return Err(StoreError::not_found("email", id));
    }
    let mut will = Vec::with_capacity(wanted.len());
    for &m in &wanted {
        let mailbox = mailboxes::get(tx, account, m).await?;
        no_messages_in(&mailbox)?;
        will.push(mailbox.role);
    }
    let current = memberships(tx, id).await?;
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
        return journal::highest_modseq(tx, account).await;
    }
    // Into or out of Junk: the user's verdict, for their spam classifier.
    let mut was = Vec::with_capacity(current.len());
    for (m, _) in &current {
        was.push(mailboxes::get(tx, account, *m).await?.role);
    }
    let verdict = crate::sqlite::spam::verdict_of_reassignment(&was, &will);
    let modseq = tx.modseq(account).await?;
    for (mailbox, uid) in to_remove {
        remove_membership(tx, account, mailbox, uid, id, modseq).await?;
    }
    for mailbox in to_add {
        add_membership(tx, account, mailbox, id, modseq).await?;
    }
    if let Some(spam) = verdict {
        spam::request_training(tx, account, id, spam).await?;
    }
    Ok(modseq)
}

/// Takes every email out of every mailbox (tombstones for each) and
/// deletes it, its quota charge and its share of the blob.
async fn destroy(tx: &mut Tx<'_>, account: AccountId, ids: &[EmailId]) -> Result<EmailsChanged> {
    check_batch(ids)?;
    hold_accounts(tx, &[account]).await?;
    let mut result = EmailsChanged::default();
    for &id in ids {
        // Asked for once more after its destruction, it is gone.
        if keywords_of(tx, account, &[id]).await?.is_empty() {
            result.not_found.push(id);
            continue;
        }
        let modseq = tx.modseq(account).await?;
        for (mailbox, uid) in memberships(tx, id).await? {
            remove_membership(tx, account, mailbox, uid, id, modseq).await?;
        }
        collect_email(tx, account, id).await?;
        result.changed.push(id);
        result.modseq = modseq;
    }
    if result.changed.is_empty() {
        result.modseq = journal::highest_modseq(tx, account).await?;
    }
    Ok(result)
}

/// Conditions of a query on `email e` and the parameters they bind.
#[derive(Default)]
struct Filter {
    conditions: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Filter {
    /// Binds a parameter; its `$n`.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> usize {
        self.params.push(Box::new(value));
        self.params.len()
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The account-wide query: one SQL statement with the conditions, sorted
/// and cut to the page in PostgreSQL, so only a page's ids come back.
async fn query(tx: &Tx<'_>, account: AccountId, q: &EmailQuery) -> Result<EmailQueryResult> {
    let mut f = Filter::default();
    let n = f.bind(account.0);
    f.conditions.push(format!("e.account_id = ${n}"));
    if let Some(m) = q.in_mailbox {
        let n = f.bind(m.0);
        f.conditions.push(format!(
            "EXISTS (SELECT 1 FROM mailbox_email me WHERE me.email_id = e.id AND me.mailbox_id = ${n})"
        ));
    }
    if let Some(t) = q.in_thread {
        let n = f.bind(t.0);
        f.conditions.push(format!("e.thread_id = ${n}"));
    }
    for (body_only, needle) in &q.text {
        let needle = super::text(needle);
        if needle.chars().count() < MIN_NEEDLE_CHARS {
            return Err(StoreError::Invalid(
                "a needle shorter than a trigram".into(),
            ));
        }
        let n = f.bind(super::search::like_pattern(&needle));
        f.conditions
            .push(super::search::text_condition(*body_only, n));
    }
    for m in &q.not_in_mailboxes {
        let n = f.bind(m.0);
        f.conditions.push(format!(
            "NOT EXISTS (SELECT 1 FROM mailbox_email me WHERE me.email_id = e.id AND me.mailbox_id = ${n})"
        ));
    }
    if let Some(others) = &q.in_mailbox_other_than {
        let n = f.bind(others.iter().map(|m| m.0).collect::<Vec<i64>>());
        f.conditions.push(format!(
            "EXISTS (SELECT 1 FROM mailbox_email me WHERE me.email_id = e.id AND me.mailbox_id <> ALL(${n}))"
        ));
    }
    // Keywords are stored " a b " with a space at each end; compared
    // case-insensitively, as IMAP flags are.
    for (keywords, test) in [(&q.has_keywords, "> 0"), (&q.not_keywords, "= 0")] {
        for k in keywords {
            validate_keyword(k)?;
            let n = f.bind(format!(" {} ", k.to_lowercase()));
            f.conditions
                .push(format!("strpos(lower(e.keywords), ${n}) {test}"));
        }
    }
    let size = |s: Option<u64>| s.map(|s| s.min(i64::MAX as u64) as i64);
    let bounds = [
        ("e.received_at >=", q.after),
        ("e.received_at <", q.before),
        ("e.size >=", size(q.min_size)),
        ("e.size <=", size(q.max_size)),
    ];
    for (test, value) in bounds {
        if let Some(v) = value {
            let n = f.bind(v);
            f.conditions.push(format!("{test} ${n}"));
        }
    }
    let column = match q.sort {
        EmailSort::ReceivedAt => "e.received_at",
        // Messages without a parsable Date sort as if sent when received.
        EmailSort::SentAt => "coalesce(e.sent_at, e.received_at)",
        EmailSort::Size => "e.size",
    };
    let dir = if q.ascending { "ASC" } else { "DESC" };
    let filter = f.conditions.join(" AND ");
    let total = if q.calculate_total {
        let rows = tx
            .query_dynamic(
                &format!("SELECT count(*) FROM email e WHERE {filter}"),
                &f.params(),
            )
            .await?;
        let n: i64 = rows.first().map(|r| r.get(0)).unwrap_or(0);
        Some(n.max(0) as u64)
    } else {
        None
    };
    let limit = f.bind(q.limit.min(i64::MAX as usize) as i64);
    let offset = f.bind(q.position.min(i64::MAX as usize) as i64);
    let sql = format!(
        "SELECT e.id FROM email e WHERE {filter}
          ORDER BY {column} {dir}, e.id {dir} LIMIT ${limit} OFFSET ${offset}"
    );
    let ids = tx
        .query_dynamic(&sql, &f.params())
        .await?
        .iter()
        .map(|r| EmailId(r.get(0)))
        .collect();
    Ok(EmailQueryResult { ids, total })
}

/// The account's emails stored as `blob`.
async fn with_blob(tx: &Tx<'_>, account: AccountId, blob: &BlobId) -> Result<Vec<EmailId>> {
    let rows = tx
        .query(
            "SELECT id FROM email WHERE blob_hash = $1 AND account_id = $2 ORDER BY id",
            &[&blob.0, &account.0],
        )
        .await?;
    Ok(rows.iter().map(|r| EmailId(r.get(0))).collect())
}

#[async_trait]
impl EmailStore for PgStore {
    async fn email_records(
        &self,
        account: AccountId,
        ids: &[EmailId],
    ) -> Result<Vec<Option<EmailRecord>>> {
        self.read(move |tx| Box::pin(records(tx, account, ids)))
            .await
    }

    async fn set_email_keywords(
        &self,
        account: AccountId,
        ids: &[EmailId],
        op: KeywordOp,
        keywords: &[String],
    ) -> Result<EmailsChanged> {
        self.write(move |tx| Box::pin(set_keywords(tx, account, ids, op, keywords)))
            .await
    }

    async fn set_email_mailboxes(
        &self,
        account: AccountId,
        id: EmailId,
        mailboxes: &[MailboxId],
    ) -> Result<ModSeq> {
        self.write(move |tx| Box::pin(set_mailboxes(tx, account, id, mailboxes)))
            .await
    }

    async fn destroy_emails(&self, account: AccountId, ids: &[EmailId]) -> Result<EmailsChanged> {
        self.write(move |tx| Box::pin(destroy(tx, account, ids)))
            .await
    }

    async fn query_emails(
        &self,
        account: AccountId,
        query: &EmailQuery,
    ) -> Result<EmailQueryResult> {
        self.read(move |tx| Box::pin(self::query(tx, account, query)))
            .await
    }

    async fn emails_with_blob(&self, account: AccountId, blob: &BlobId) -> Result<Vec<EmailId>> {
        self.read(move |tx| Box::pin(with_blob(tx, account, blob)))
            .await
    }

    async fn record_submission(
        &self,
        account: AccountId,
        submission: &SubmissionRecord,
    ) -> Result<SubmissionId> {
        self.write(move |tx| Box::pin(submissions::record(tx, account, submission)))
            .await
    }

    async fn submissions(
        &self,
        account: AccountId,
        ids: Option<&[SubmissionId]>,
    ) -> Result<Vec<SubmissionRecord>> {
        self.read(move |tx| Box::pin(submissions::list(tx, account, ids)))
            .await
    }

    async fn cancel_submission(&self, account: AccountId, id: SubmissionId) -> Result<bool> {
        self.write(move |tx| Box::pin(submissions::cancel(tx, account, id)))
            .await
    }

    async fn destroy_submissions(
        &self,
        account: AccountId,
        ids: &[SubmissionId],
    ) -> Result<Vec<SubmissionId>> {
        self.write(move |tx| Box::pin(submissions::destroy(tx, account, ids)))
            .await
    }
}
