//! PostgreSQL DirectoryStore (being written).
#![allow(unused_variables)]

use super::*;
use crate::message::PreparedMessage;
use crate::query::*;
use crate::search::SearchKey;
use crate::store::*;
use crate::types::*;
use tokio::sync::watch;

#[async_trait]
impl DirectoryStore for PgStore {
    async fn add_domain(&self, name: &str) -> Result<Domain> {
        Err(StoreError::Invalid(
            "add_domain: not yet on PostgreSQL".into(),
        ))
    }

    async fn list_domains(&self) -> Result<Vec<Domain>> {
        Err(StoreError::Invalid(
            "list_domains: not yet on PostgreSQL".into(),
        ))
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        Err(StoreError::Invalid(
            "remove_domain: not yet on PostgreSQL".into(),
        ))
    }

    async fn create_account(&self, account: NewAccount) -> Result<Account> {
        Err(StoreError::Invalid(
            "create_account: not yet on PostgreSQL".into(),
        ))
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        Err(StoreError::Invalid(
            "list_accounts: not yet on PostgreSQL".into(),
        ))
    }

    async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        Err(StoreError::Invalid(
            "account_by_address: not yet on PostgreSQL".into(),
        ))
    }

    async fn account(&self, id: AccountId) -> Result<Account> {
        Err(StoreError::Invalid("account: not yet on PostgreSQL".into()))
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        Err(StoreError::Invalid(
            "set_password: not yet on PostgreSQL".into(),
        ))
    }

    async fn set_quota(&self, address: &str, quota_bytes: Option<u64>) -> Result<()> {
        Err(StoreError::Invalid(
            "set_quota: not yet on PostgreSQL".into(),
        ))
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        Err(StoreError::Invalid(
            "remove_account: not yet on PostgreSQL".into(),
        ))
    }

    async fn set_alias(&self, alias: Alias) -> Result<()> {
        Err(StoreError::Invalid(
            "set_alias: not yet on PostgreSQL".into(),
        ))
    }

    async fn list_aliases(&self) -> Result<Vec<Alias>> {
        Err(StoreError::Invalid(
            "list_aliases: not yet on PostgreSQL".into(),
        ))
    }

    async fn alias(&self, address: &str) -> Result<Option<Alias>> {
        Err(StoreError::Invalid("alias: not yet on PostgreSQL".into()))
    }

    async fn remove_alias(&self, address: &str) -> Result<()> {
        Err(StoreError::Invalid(
            "remove_alias: not yet on PostgreSQL".into(),
        ))
    }

    async fn add_dkim_key(&self, key: DkimKey) -> Result<()> {
        Err(StoreError::Invalid(
            "add_dkim_key: not yet on PostgreSQL".into(),
        ))
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        Err(StoreError::Invalid(
            "dkim_keys: not yet on PostgreSQL".into(),
        ))
    }

    async fn account_setting(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        Err(StoreError::Invalid(
            "account_setting: not yet on PostgreSQL".into(),
        ))
    }

    async fn set_account_setting(
        &self,
        account: AccountId,
        name: &str,
        value: Option<&str>,
    ) -> Result<()> {
        Err(StoreError::Invalid(
            "set_account_setting: not yet on PostgreSQL".into(),
        ))
    }

    async fn account_settings_with_prefix(
        &self,
        account: AccountId,
        prefix: &str,
    ) -> Result<Vec<(String, String)>> {
        Err(StoreError::Invalid(
            "account_settings_with_prefix: not yet on PostgreSQL".into(),
        ))
    }

    async fn auto_reply_due(
        &self,
        account: AccountId,
        correspondent: &str,
        now: i64,
        period: i64,
    ) -> Result<bool> {
        Err(StoreError::Invalid(
            "auto_reply_due: not yet on PostgreSQL".into(),
        ))
    }
}
