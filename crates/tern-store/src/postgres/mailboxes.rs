//! Mailboxes in PostgreSQL: the hierarchy, roles, subscriptions and the
//! IMAP bookkeeping (`uid_validity`, `uid_next`, `highest_modseq`), with
//! the SQLite backend's semantics (`sqlite/mailboxes.rs`; names are
//! normalised by the same function, `INBOX` case-insensitive as RFC 9051
//! §5.1 wants).
//!
//! Every write first locks the account's row, so the checks it makes
//! (does the name exist, has it children, which role is taken) still hold
//! when it writes, whichever node runs it; a write that changes something
//! then takes the account's modseq (one per operation).
//!
//! UIDVALIDITY comes from one counter for the whole database (the `meta`
//! row `last_uid_validity`), raised in one statement, so two nodes never
//! hand out the same value (RFC 9051 §2.3.1.1: a name's UIDVALIDITY must
//! change whenever it is re-created).

use super::{journal, messages, PgStore, Tx};
use crate::error::{Result, StoreError};
use crate::sqlite::mailboxes::normalize_name;
use crate::store::MailboxStore;
use crate::types::*;
use async_trait::async_trait;
use tokio_postgres::Row;

const MAILBOX_COLUMNS: &str =
    "id, account_id, name, role, uid_validity, uid_next, highest_modseq, subscribed, noselect,
     first_recent_uid FROM mailbox";

fn mailbox_row(r: &Row) -> Mailbox {
    Mailbox {
        id: MailboxId(r.get(0)),
        account_id: AccountId(r.get(1)),
        name: r.get(2),
        role: r.get::<_, Option<&str>>(3).and_then(Role::parse),
        uid_validity: r.get::<_, i64>(4) as u32,
        uid_next: Uid(r.get::<_, i64>(5) as u32),
        highest_modseq: ModSeq(r.get::<_, i64>(6).max(0) as u64),
        subscribed: r.get(7),
        noselect: r.get(8),
        first_recent_uid: Uid(r.get::<_, i64>(9) as u32),
    }
}

/// Locks the account's row until the commit: the account's mailbox
/// writes (here and in messages) run one at a time on every node. Does
/// not take a modseq, so a write that turns out to change nothing leaves
/// the account's state as it was.
async fn lock(tx: &Tx<'_>, account: AccountId) -> Result<()> {
    tx.query_opt(
        "SELECT 1 FROM account WHERE id = $1 FOR NO KEY UPDATE",
        &[&account.0],
    )
    .await?
    .ok_or_else(|| StoreError::not_found("account", account))?;
    Ok(())
}

async fn list(tx: &Tx<'_>, account: AccountId) -> Result<Vec<Mailbox>> {
    let rows = tx
        .query(
            &format!("SELECT {MAILBOX_COLUMNS} WHERE account_id = $1 ORDER BY name COLLATE \"C\""),
            &[&account.0],
        )
        .await?;
    Ok(rows.iter().map(mailbox_row).collect())
}

/// The mailbox, if it is the account's (interface used by journal.rs).
pub async fn get(tx: &Tx<'_>, account: AccountId, id: MailboxId) -> Result<Mailbox> {
    tx.query_opt(
        &format!("SELECT {MAILBOX_COLUMNS} WHERE id = $1 AND account_id = $2"),
        &[&id.0, &account.0],
    )
    .await?
    .as_ref()
    .map(mailbox_row)
    .ok_or_else(|| StoreError::not_found("mailbox", id))
}

async fn by_name(tx: &Tx<'_>, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
    let Ok(name) = normalize_name(name) else {
        return Ok(None);
    };
    Ok(tx
        .query_opt(
            &format!("SELECT {MAILBOX_COLUMNS} WHERE account_id = $1 AND name = $2"),
            &[&account.0, &name],
        )
        .await?
        .as_ref()
        .map(mailbox_row))
}

async fn by_role(tx: &Tx<'_>, account: AccountId, role: Role) -> Result<Option<Mailbox>> {
    Ok(tx
        .query_opt(
            &format!("SELECT {MAILBOX_COLUMNS} WHERE account_id = $1 AND role = $2"),
            &[&account.0, &role.as_str()],
        )
        .await?
        .as_ref()
        .map(mailbox_row))
}

/// A UIDVALIDITY never given out before in this database: the current
/// time in seconds, or one more than the last one if that is not larger
/// (as in SQLite). The upsert raises the counter atomically; its row
/// stays locked until the commit, so values are also handed out in
/// commit order.
async fn next_uid_validity(tx: &Tx<'_>) -> Result<u32> {
    let now = super::now() & 0xffff_ffff;
    let row = tx
        .query_one(
            "INSERT INTO meta (key, value) VALUES ('last_uid_validity', greatest($1::bigint, 1))
             ON CONFLICT (key) DO UPDATE
             SET value = least(greatest(meta.value + 1, excluded.value), 4294967295)
             RETURNING value",
            &[&now],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u32)
}

/// Creates `name` and any missing parents. Fails if `name` itself exists
/// (unless it is a \Noselect name left by DELETE, which becomes a mailbox
/// again, RFC 9051 §6.3.3).
pub(super) async fn create(
    tx: &mut Tx<'_>,
    account: AccountId,
    name: &str,
    role: Option<Role>,
) -> Result<Mailbox> {
    let name = normalize_name(name)?;
    lock(tx, account).await?;
    if let Some(existing) = by_name(tx, account, &name).await? {
        if !existing.noselect || role.is_some() {
            return Err(StoreError::exists("mailbox", &name));
        }
        let modseq = tx.modseq(account).await?;
        tx.execute(
            "UPDATE mailbox SET noselect = FALSE WHERE id = $1",
            &[&existing.id.0],
        )
        .await?;
        journal::record(
            tx,
            account,
            modseq,
            &ChangeKind::MailboxUpdated {
                mailbox_id: existing.id,
            },
        )
        .await?;
        return get(tx, account, existing.id).await;
    }
    if let Some(role) = role {
        if by_role(tx, account, role).await?.is_some() {
            return Err(StoreError::Invalid(format!(
                "the account already has a mailbox with role {}",
                role.as_str()
            )));
        }
    }
    // Parents first, so that the hierarchy never has holes.
    for parent in crate::sqlite::mailboxes::ancestors(&name) {
        if by_name(tx, account, &parent).await?.is_none() {
            insert(tx, account, &parent, None).await?;
        }
    }
    insert(tx, account, &name, role).await
}

async fn insert(
    tx: &mut Tx<'_>,
    account: AccountId,
    name: &str,
    role: Option<Role>,
) -> Result<Mailbox> {
    let modseq = tx.modseq(account).await?;
    let uid_validity = next_uid_validity(tx).await?;
    // CREATE does not subscribe; a name subscribed before (and kept
    // through a DELETE) is subscribed again.
    let id: i64 = tx
        .query_one(
            "INSERT INTO mailbox (account_id, name, role, uid_validity, highest_modseq, subscribed)
             VALUES ($1, $2, $3, $4, $5,
                     EXISTS (SELECT 1 FROM subscription WHERE account_id = $1 AND name = $2))
             RETURNING id",
            &[
                &account.0,
                &name,
                &role.map(Role::as_str),
                &i64::from(uid_validity),
                &(modseq.0 as i64),
            ],
        )
        .await?
        .get(0);
    let id = MailboxId(id);
    journal::record(
        tx,
        account,
        modseq,
        &ChangeKind::MailboxCreated { mailbox_id: id },
    )
    .await?;
    get(tx, account, id).await
}

/// The mailboxes below `name` (`name/…`), in name order.
async fn children(tx: &Tx<'_>, account: AccountId, name: &str) -> Result<Vec<Mailbox>> {
    let prefix = format!("{name}{HIERARCHY_SEPARATOR}");
    let rows = tx
        .query(
            &format!(
                "SELECT {MAILBOX_COLUMNS} WHERE account_id = $1 AND starts_with(name, $2)
                 ORDER BY name COLLATE \"C\""
            ),
            &[&account.0, &prefix],
        )
        .await?;
    Ok(rows.iter().map(mailbox_row).collect())
}

async fn rename(tx: &mut Tx<'_>, account: AccountId, id: MailboxId, new_name: &str) -> Result<()> {
    lock(tx, account).await?;
    let mailbox = get(tx, account, id).await?;
    let new_name = normalize_name(new_name)?;
    if new_name == mailbox.name {
        return Ok(());
    }
    if by_name(tx, account, &new_name).await?.is_some() {
        return Err(StoreError::exists("mailbox", &new_name));
    }
    if new_name == "INBOX" || new_name.starts_with(&format!("{}/", mailbox.name)) {
        return Err(StoreError::Invalid(format!(
            "cannot rename {} to {new_name}",
            mailbox.name
        )));
    }
    if mailbox.name == "INBOX" {
        // RFC 9051 §6.3.6: renaming INBOX moves its messages to a new
        // mailbox and leaves INBOX in place, empty. Its children stay.
        let target = create(tx, account, &new_name, None).await?;
        let uids = messages::all_uids(tx, account, id).await?;
        messages::copy_in(tx, account, id, &uids, target.id, true).await?;
        return Ok(());
    }
    // Missing parents of the new name come first.
    if let Some((parent, _)) = new_name.rsplit_once(HIERARCHY_SEPARATOR) {
        if by_name(tx, account, parent).await?.is_none() {
            create(tx, account, parent, None).await?;
        }
    }
    let modseq = tx.modseq(account).await?;
    let mut renamed = vec![(mailbox.id, mailbox.name.clone(), new_name.clone())];
    for child in children(tx, account, &mailbox.name).await? {
        let suffix = &child.name[mailbox.name.len()..];
        renamed.push((child.id, child.name.clone(), format!("{new_name}{suffix}")));
    }
    for (mailbox_id, old, name) in renamed {
        if by_name(tx, account, &name).await?.is_some() {
            return Err(StoreError::exists("mailbox", &name));
        }
        tx.execute(
            "UPDATE mailbox SET name = $1, highest_modseq = $2 WHERE id = $3",
            &[&name, &(modseq.0 as i64), &mailbox_id.0],
        )
        .await?;
        // The subscription follows the mailbox, as Dovecot's does
        // (replacing one the new name had), and the mailbox's flag
        // mirrors the table under its new name.
        tx.execute(
            "DELETE FROM subscription WHERE account_id = $1 AND name = $2
                AND EXISTS (SELECT 1 FROM subscription WHERE account_id = $1 AND name = $3)",
            &[&account.0, &name, &old],
        )
        .await?;
        tx.execute(
            "UPDATE subscription SET name = $2 WHERE account_id = $1 AND name = $3",
            &[&account.0, &name, &old],
        )
        .await?;
        tx.execute(
            "UPDATE mailbox SET subscribed =
               EXISTS (SELECT 1 FROM subscription WHERE account_id = $1 AND name = $2)
             WHERE id = $3",
            &[&account.0, &name, &mailbox_id.0],
        )
        .await?;
        journal::record(
            tx,
            account,
            modseq,
            &ChangeKind::MailboxRenamed { mailbox_id },
        )
        .await?;
    }
    Ok(())
}

async fn delete(tx: &mut Tx<'_>, account: AccountId, id: MailboxId) -> Result<()> {
    lock(tx, account).await?;
    let mailbox = get(tx, account, id).await?;
    if mailbox.name == "INBOX" {
        return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
    }
    let has_children = !children(tx, account, &mailbox.name).await?.is_empty();
    if has_children && mailbox.noselect {
        // RFC 9051 §6.3.4: an error for a \Noselect name with inferiors.
        return Err(StoreError::HasChildren { name: mailbox.name });
    }
    // The modseq before the expunge: it is the operation's one step.
    let modseq = tx.modseq(account).await?;
    let uids = messages::all_uids(tx, account, id).await?;
    messages::expunge_in(tx, account, id, ExpungeFilter::Uids(uids)).await?;
    if has_children {
        // The children stay; the name stays as their \Noselect parent,
        // holding no messages (RFC 9051 §6.3.4).
        tx.execute("UPDATE mailbox SET noselect = TRUE WHERE id = $1", &[&id.0])
            .await?;
        return journal::record(
            tx,
            account,
            modseq,
            &ChangeKind::MailboxUpdated { mailbox_id: id },
        )
        .await;
    }
    tx.execute("DELETE FROM mailbox WHERE id = $1", &[&id.0])
        .await?;
    journal::record(
        tx,
        account,
        modseq,
        &ChangeKind::MailboxDeleted { mailbox_id: id },
    )
    .await
}

async fn subscribe(tx: &mut Tx<'_>, account: AccountId, id: MailboxId, on: bool) -> Result<()> {
    lock(tx, account).await?;
    let mailbox = get(tx, account, id).await?;
    set_subscription_row(tx, account, &mailbox.name, on).await?;
    if mailbox.subscribed == on {
        return Ok(());
    }
    // A property of the mailbox changed: JMAP's Mailbox state must move.
    let modseq = tx.modseq(account).await?;
    tx.execute(
        "UPDATE mailbox SET subscribed = $1 WHERE id = $2",
        &[&on, &id.0],
    )
    .await?;
    journal::record(
        tx,
        account,
        modseq,
        &ChangeKind::MailboxUpdated { mailbox_id: id },
    )
    .await
}

/// Adds or removes the subscription of a name (the table only).
pub(super) async fn set_subscription_row(
    tx: &Tx<'_>,
    account: AccountId,
    name: &str,
    on: bool,
) -> Result<()> {
    let sql = if on {
        "INSERT INTO subscription (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM subscription WHERE account_id = $1 AND name = $2"
    };
    tx.execute(sql, &[&account.0, &name]).await?;
    Ok(())
}

/// Subscribes or unsubscribes a name, whether or not a mailbox has it
/// (UNSUBSCRIBE of a deleted mailbox's name). False when nothing changed.
async fn set_subscription(
    tx: &mut Tx<'_>,
    account: AccountId,
    name: &str,
    on: bool,
) -> Result<bool> {
    let name = normalize_name(name)?;
    lock(tx, account).await?;
    if let Some(mailbox) = by_name(tx, account, &name).await? {
        let changed = mailbox.subscribed != on;
        subscribe(tx, account, mailbox.id, on).await?;
        return Ok(changed);
    }
    let had = subscriptions(tx, account).await?.contains(&name);
    set_subscription_row(tx, account, &name, on).await?;
    Ok(had != on)
}

/// The account's subscribed names, mailboxes or not, in name order.
async fn subscriptions(tx: &Tx<'_>, account: AccountId) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "SELECT name FROM subscription WHERE account_id = $1 ORDER BY name COLLATE \"C\"",
            &[&account.0],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Keywords are stored space-delimited with a space at each end (the
/// shared encoding, `sqlite::messages::encode_keywords`), so a flag is
/// found as ` \flag ` in the lowercased text.
async fn counts(tx: &Tx<'_>, account: AccountId, id: MailboxId) -> Result<MailboxCounts> {
    get(tx, account, id).await?;
    let r = tx
        .query_one(
            "SELECT count(*),
                    count(*) FILTER (WHERE position(' \\seen ' in lower(e.keywords)) = 0),
                    count(*) FILTER (WHERE position(' \\deleted ' in lower(e.keywords)) > 0),
                    coalesce(sum(e.size), 0)::bigint,
                    count(*) FILTER (WHERE m.uid >= b.first_recent_uid)
               FROM mailbox b JOIN mailbox_email m ON m.mailbox_id = b.id
               JOIN email e ON e.id = m.email_id
              WHERE b.id = $1",
            &[&id.0],
        )
        .await?;
    Ok(MailboxCounts {
        messages: r.get::<_, i64>(0) as u32,
        unseen: r.get::<_, i64>(1) as u32,
        deleted: r.get::<_, i64>(2) as u32,
        size: r.get::<_, i64>(3).max(0) as u64,
        recent: r.get::<_, i64>(4) as u32,
    })
}

/// Distinct threads in the mailbox, and those with an unseen email there.
async fn thread_counts(tx: &Tx<'_>, account: AccountId, id: MailboxId) -> Result<(u32, u32)> {
    get(tx, account, id).await?;
    let r = tx
        .query_one(
            "SELECT count(DISTINCT e.thread_id),
                    count(DISTINCT e.thread_id)
                      FILTER (WHERE position(' \\seen ' in lower(e.keywords)) = 0)
               FROM mailbox_email m JOIN email e ON e.id = m.email_id
              WHERE m.mailbox_id = $1",
            &[&id.0],
        )
        .await?;
    Ok((r.get::<_, i64>(0) as u32, r.get::<_, i64>(1) as u32))
}

/// `first_recent_uid` rises to `upto` (never falls): IMAP sessions have
/// claimed the messages below it as \Recent (RFC 3501 §2.3.2). No
/// journal and no modseq: \Recent is not a change other sessions are
/// told of. One statement, so sessions on two nodes only ever raise it.
async fn mark_recent_claimed(
    tx: &Tx<'_>,
    account: AccountId,
    id: MailboxId,
    upto: Uid,
) -> Result<()> {
    tx.execute(
        "UPDATE mailbox SET first_recent_uid = greatest(first_recent_uid, $1)
          WHERE id = $2 AND account_id = $3",
        &[&i64::from(upto.0), &id.0, &account.0],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl MailboxStore for PgStore {
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.read_one(move |tx| Box::pin(list(tx, account))).await
    }

    async fn mailbox(&self, account: AccountId, id: MailboxId) -> Result<Mailbox> {
        self.read_one(move |tx| Box::pin(get(tx, account, id)))
            .await
    }

    async fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        self.read_one(move |tx| Box::pin(by_name(tx, account, name)))
            .await
    }

    async fn mailbox_by_role(&self, account: AccountId, role: Role) -> Result<Option<Mailbox>> {
        self.read_one(move |tx| Box::pin(by_role(tx, account, role)))
            .await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        role: Option<Role>,
    ) -> Result<Mailbox> {
        self.write(move |tx| Box::pin(create(tx, account, name, role)))
            .await
            .map_err(|e| {
                // Serialised by the account lock, so not expected; but a
                // lost race on the name is AlreadyExists, as in SQLite.
                if super::is_unique_violation(&e) {
                    StoreError::exists("mailbox", name)
                } else {
                    e
                }
            })
    }

    async fn rename_mailbox(
        &self,
        account: AccountId,
        id: MailboxId,
        new_name: &str,
    ) -> Result<()> {
        self.write(move |tx| Box::pin(rename(tx, account, id, new_name)))
            .await
            .map_err(|e| {
                if super::is_unique_violation(&e) {
                    StoreError::exists("mailbox", new_name)
                } else {
                    e
                }
            })
    }

    async fn delete_mailbox(&self, account: AccountId, id: MailboxId) -> Result<()> {
        self.write(move |tx| Box::pin(delete(tx, account, id)))
            .await
    }

    async fn subscribe_mailbox(&self, account: AccountId, id: MailboxId, on: bool) -> Result<()> {
        self.write(move |tx| Box::pin(subscribe(tx, account, id, on)))
            .await
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.read_one(move |tx| Box::pin(subscriptions(tx, account)))
            .await
    }

    async fn set_subscription(&self, account: AccountId, name: &str, on: bool) -> Result<bool> {
        self.write(move |tx| Box::pin(set_subscription(tx, account, name, on)))
            .await
    }

    async fn mailbox_counts(&self, account: AccountId, id: MailboxId) -> Result<MailboxCounts> {
        self.read(move |tx| Box::pin(counts(tx, account, id))).await
    }

    async fn mailbox_thread_counts(&self, account: AccountId, id: MailboxId) -> Result<(u32, u32)> {
        self.read(move |tx| Box::pin(thread_counts(tx, account, id)))
            .await
    }

    async fn mark_recent_claimed(
        &self,
        account: AccountId,
        id: MailboxId,
        upto: Uid,
    ) -> Result<()> {
        self.write(move |tx| Box::pin(mark_recent_claimed(tx, account, id, upto)))
            .await
    }
}
