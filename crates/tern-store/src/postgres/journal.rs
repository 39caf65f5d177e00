//! PostgreSQL ChangeStore (being written).
#![allow(unused_variables)]

use super::*;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::*;
use crate::types::*;
use tokio::sync::watch;

#[async_trait]
impl ChangeStore for PgStore {
    async fn highest_modseq(&self, account: AccountId) -> Result<ModSeq> {
        Err(StoreError::Invalid(
            "highest_modseq: not yet on PostgreSQL".into(),
        ))
    }

    async fn mailbox_changes(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        since: ModSeq,
    ) -> Result<MailboxChanges> {
        Err(StoreError::Invalid(
            "mailbox_changes: not yet on PostgreSQL".into(),
        ))
    }

    async fn account_changes(
        &self,
        account: AccountId,
        since: ModSeq,
        limit: usize,
    ) -> Result<Vec<Change>> {
        Err(StoreError::Invalid(
            "account_changes: not yet on PostgreSQL".into(),
        ))
    }

    async fn prune_journal(&self, before: i64) -> Result<u64> {
        Err(StoreError::Invalid(
            "prune_journal: not yet on PostgreSQL".into(),
        ))
    }

    fn subscribe(&self, account: AccountId) -> watch::Receiver<ModSeq> {
        self.hub.subscribe(account, ModSeq(0))
    }
}
