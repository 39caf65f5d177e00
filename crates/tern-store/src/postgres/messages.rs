//! PostgreSQL MessageStore (being written).
#![allow(unused_variables)]

use super::*;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::*;
use crate::types::*;
use tokio::sync::watch;

#[async_trait]
impl MessageStore for PgStore {
    async fn accept(&self, delivery: Delivery, outbound: Option<Outbound>) -> Result<Accepted> {
        Err(StoreError::Invalid("accept: not yet on PostgreSQL".into()))
    }

    async fn append(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        message: PreparedMessage,
        keywords: Vec<String>,
        received_at: i64,
    ) -> Result<Delivered> {
        Err(StoreError::Invalid("append: not yet on PostgreSQL".into()))
    }

    async fn list_messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<Vec<MessageEntry>> {
        Err(StoreError::Invalid(
            "list_messages: not yet on PostgreSQL".into(),
        ))
    }

    async fn messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> Result<Vec<MessageEntry>> {
        Err(StoreError::Invalid(
            "messages: not yet on PostgreSQL".into(),
        ))
    }

    async fn email(&self, account: AccountId, id: EmailId) -> Result<Email> {
        Err(StoreError::Invalid("email: not yet on PostgreSQL".into()))
    }

    async fn emails(&self, account: AccountId, ids: &[EmailId]) -> Result<Vec<Option<Email>>> {
        Err(StoreError::Invalid("emails: not yet on PostgreSQL".into()))
    }

    async fn set_keywords(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uids: &[Uid],
        op: KeywordOp,
        keywords: &[String],
        unchanged_since: Option<ModSeq>,
    ) -> Result<KeywordsResult> {
        Err(StoreError::Invalid(
            "set_keywords: not yet on PostgreSQL".into(),
        ))
    }

    async fn copy_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        Err(StoreError::Invalid(
            "copy_messages: not yet on PostgreSQL".into(),
        ))
    }

    async fn move_messages(
        &self,
        account: AccountId,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> Result<CopyResult> {
        Err(StoreError::Invalid(
            "move_messages: not yet on PostgreSQL".into(),
        ))
    }

    async fn expunge(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        filter: ExpungeFilter,
    ) -> Result<Vec<Uid>> {
        Err(StoreError::Invalid("expunge: not yet on PostgreSQL".into()))
    }

    async fn quota(&self, account: AccountId) -> Result<Quota> {
        Err(StoreError::Invalid("quota: not yet on PostgreSQL".into()))
    }

    async fn search(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        key: &SearchKey,
    ) -> Result<Vec<Uid>> {
        Err(StoreError::Invalid("search: not yet on PostgreSQL".into()))
    }
}

/// Current entries of the mailbox with a modseq above `since`, in UID
/// order (interface used by journal.rs).
pub async fn list_changed(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    since: ModSeq,
) -> Result<Vec<MessageEntry>> {
    Err(StoreError::Invalid(
        "messages::list_changed: not yet on PostgreSQL".into(),
    ))
}

/// Removes messages from a mailbox inside the caller's transaction (the
/// write side of `MessageStore::expunge`; interface used by mailboxes.rs
/// to delete a mailbox). The expunged UIDs, ascending.
pub async fn expunge_in(
    tx: &mut Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    filter: ExpungeFilter,
) -> Result<Vec<Uid>> {
    Err(StoreError::Invalid(
        "messages::expunge_in: not yet on PostgreSQL".into(),
    ))
}

/// Copies (`is_move` false) or moves messages to another mailbox inside the
/// caller's transaction (the write side of COPY/MOVE; interface used by
/// mailboxes.rs to rename INBOX).
pub async fn copy_in(
    tx: &mut Tx<'_>,
    account: AccountId,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
    is_move: bool,
) -> Result<CopyResult> {
    Err(StoreError::Invalid(
        "messages::copy_in: not yet on PostgreSQL".into(),
    ))
}

/// Every UID of the mailbox, ascending (interface used by mailboxes.rs).
pub async fn all_uids(tx: &Tx<'_>, account: AccountId, mailbox: MailboxId) -> Result<Vec<Uid>> {
    Err(StoreError::Invalid(
        "messages::all_uids: not yet on PostgreSQL".into(),
    ))
}
