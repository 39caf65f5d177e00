//! PostgreSQL MailboxStore (being written).
#![allow(unused_variables)]

use super::*;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::*;
use crate::types::*;
use tokio::sync::watch;

#[async_trait]
impl MailboxStore for PgStore {
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        Err(StoreError::Invalid(
            "list_mailboxes: not yet on PostgreSQL".into(),
        ))
    }

    async fn mailbox(&self, account: AccountId, id: MailboxId) -> Result<Mailbox> {
        Err(StoreError::Invalid("mailbox: not yet on PostgreSQL".into()))
    }

    async fn mailbox_by_name(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        Err(StoreError::Invalid(
            "mailbox_by_name: not yet on PostgreSQL".into(),
        ))
    }

    async fn mailbox_by_role(&self, account: AccountId, role: Role) -> Result<Option<Mailbox>> {
        Err(StoreError::Invalid(
            "mailbox_by_role: not yet on PostgreSQL".into(),
        ))
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        role: Option<Role>,
    ) -> Result<Mailbox> {
        Err(StoreError::Invalid(
            "create_mailbox: not yet on PostgreSQL".into(),
        ))
    }

    async fn rename_mailbox(
        &self,
        account: AccountId,
        id: MailboxId,
        new_name: &str,
    ) -> Result<()> {
        Err(StoreError::Invalid(
            "rename_mailbox: not yet on PostgreSQL".into(),
        ))
    }

    async fn delete_mailbox(&self, account: AccountId, id: MailboxId) -> Result<()> {
        Err(StoreError::Invalid(
            "delete_mailbox: not yet on PostgreSQL".into(),
        ))
    }

    async fn subscribe_mailbox(&self, account: AccountId, id: MailboxId, on: bool) -> Result<()> {
        Err(StoreError::Invalid(
            "subscribe_mailbox: not yet on PostgreSQL".into(),
        ))
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        Err(StoreError::Invalid(
            "subscriptions: not yet on PostgreSQL".into(),
        ))
    }

    async fn set_subscription(&self, account: AccountId, name: &str, on: bool) -> Result<bool> {
        Err(StoreError::Invalid(
            "set_subscription: not yet on PostgreSQL".into(),
        ))
    }

    async fn mailbox_counts(&self, account: AccountId, id: MailboxId) -> Result<MailboxCounts> {
        Err(StoreError::Invalid(
            "mailbox_counts: not yet on PostgreSQL".into(),
        ))
    }

    async fn mailbox_thread_counts(&self, account: AccountId, id: MailboxId) -> Result<(u32, u32)> {
        Err(StoreError::Invalid(
            "mailbox_thread_counts: not yet on PostgreSQL".into(),
        ))
    }

    async fn mark_recent_claimed(
        &self,
        account: AccountId,
        id: MailboxId,
        upto: Uid,
    ) -> Result<()> {
        Err(StoreError::Invalid(
            "mark_recent_claimed: not yet on PostgreSQL".into(),
        ))
    }
}

/// The mailbox, if it is the account's (interface used by journal.rs).
pub async fn get(tx: &Tx<'_>, account: AccountId, id: MailboxId) -> Result<Mailbox> {
    Err(StoreError::Invalid(
        "mailboxes::get: not yet on PostgreSQL".into(),
    ))
}
