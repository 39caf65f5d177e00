//! Domains, accounts, aliases, DKIM keys and per-account settings in
//! PostgreSQL, with the SQLite backend's semantics (`sqlite/directory.rs`,
//! `sqlite/settings.rs`).
//!
//! Addresses arrive validated and are lowercased here as in SQLite. Where
//! SQLite relies on its single writer, this module locks instead, since
//! every node may change the directory at once:
//! - a domain's row is locked (`FOR NO KEY UPDATE`) by whatever adds an
//!   account or alias in it, so "an alias never shadows an account" holds
//!   across nodes; removing the domain locks it `FOR UPDATE`, so an
//!   account being added elsewhere either counts or fails with NotFound;
//! - unique keys lost to a race (an address, a domain name, a DKIM
//!   selector) are `ON CONFLICT DO NOTHING` and reported as AlreadyExists.
//!
//! Names are sorted byte-wise (`COLLATE "C"`), as SQLite's BINARY collation
//! does, whatever the database's default collation is.

use super::{blobs, mailboxes, now, PgStore, Tx};
use crate::error::{Result, StoreError};
use crate::sqlite::directory::{check_quota, domain_of};
use crate::store::DirectoryStore;
use crate::types::*;
use async_trait::async_trait;
use tokio_postgres::Row;

async fn add_domain(tx: &mut Tx<'_>, name: &str) -> Result<Domain> {
    if name.is_empty() {
        return Err(StoreError::Invalid("a domain name cannot be empty".into()));
    }
    let created_at = now();
    let row = tx
        .query_opt(
            "INSERT INTO domain (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING
             RETURNING id",
            &[&name, &created_at],
        )
        .await?
        .ok_or_else(|| StoreError::exists("domain", name))?;
    Ok(Domain {
        id: DomainId(row.get(0)),
        name: name.to_string(),
        created_at,
    })
}

async fn list_domains(tx: &mut Tx<'_>) -> Result<Vec<Domain>> {
    let rows = tx
        .query(
            "SELECT id, name, created_at FROM domain ORDER BY name COLLATE \"C\"",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Domain {
            id: DomainId(r.get(0)),
            name: r.get(1),
            created_at: r.get(2),
        })
        .collect())
}

/// The domain's id, its row locked against removal and against another
/// node adding an account or alias in it until the commit.
async fn lock_domain(tx: &Tx<'_>, name: &str) -> Result<DomainId> {
    tx.query_opt(
        "SELECT id FROM domain WHERE name = $1 FOR NO KEY UPDATE",
        &[&name],
    )
    .await?
    .map(|r| DomainId(r.get(0)))
    .ok_or_else(|| StoreError::not_found("domain", name))
}

async fn remove_domain(tx: &mut Tx<'_>, name: &str) -> Result<()> {
    // FOR UPDATE waits for accounts being added in the domain (their
    // foreign key check holds the row) and makes later ones fail.
    let id: i64 = tx
        .query_opt("SELECT id FROM domain WHERE name = $1 FOR UPDATE", &[&name])
        .await?
        .ok_or_else(|| StoreError::not_found("domain", name))?
        .get(0);
    let accounts: i64 = tx
        .query_one("SELECT count(*) FROM account WHERE domain_id = $1", &[&id])
        .await?
        .get(0);
    if accounts > 0 {
        return Err(StoreError::DomainInUse {
            name: name.to_string(),
            accounts: accounts as u64,
        });
    }
    tx.execute("DELETE FROM alias WHERE domain_id = $1", &[&id])
        .await?;
    tx.execute("DELETE FROM domain WHERE id = $1", &[&id])
        .await?;
    Ok(())
}

async fn create_account(tx: &mut Tx<'_>, new: &NewAccount) -> Result<Account> {
    check_quota(new.quota_bytes)?;
    let address = new.address.to_lowercase();
    let domain = lock_domain(tx, domain_of(&address)?).await?;
    if alias(tx, &address).await?.is_some() {
        return Err(StoreError::Invalid(format!(
            "{address} is already an alias; remove the alias first"
        )));
    }
    let id: i64 = tx
        .query_opt(
            "INSERT INTO account (address, domain_id, password_hash, quota_bytes, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
            &[
                &address,
                &domain.0,
                &new.password_hash,
                &new.quota_bytes.map(|q| q as i64),
                &now(),
            ],
        )
        .await?
        .ok_or_else(|| StoreError::exists("account", &address))?
        .get(0);
    let id = AccountId(id);
    // Only the default mailboxes of a new account start subscribed.
    for (name, role) in DEFAULT_MAILBOXES {
        mailboxes::set_subscription_row(tx, id, name, true).await?;
        mailboxes::create(tx, id, name, Some(role)).await?;
    }
    account(tx, id).await
}

const ACCOUNT_COLUMNS: &str =
    "id, address, password_hash, quota_bytes, used_bytes, created_at FROM account";

fn account_row(r: &Row) -> Account {
    Account {
        id: AccountId(r.get(0)),
        address: r.get(1),
        password_hash: r.get(2),
        quota_bytes: r.get::<_, Option<i64>>(3).map(|q| q as u64),
        used_bytes: r.get::<_, i64>(4).max(0) as u64,
        created_at: r.get(5),
    }
}

async fn list_accounts(tx: &mut Tx<'_>) -> Result<Vec<Account>> {
    let rows = tx
        .query(
            &format!("SELECT {ACCOUNT_COLUMNS} ORDER BY address COLLATE \"C\""),
            &[],
        )
        .await?;
    Ok(rows.iter().map(account_row).collect())
}

async fn account_by_address(tx: &Tx<'_>, address: &str) -> Result<Option<Account>> {
    // No stored address holds a NUL (PostgreSQL text cannot), and a peer's
    // (a login name) must get "no such account", not a database error.
    if address.contains('\0') {
        return Ok(None);
    }
    let row = tx
        .query_opt(
            &format!("SELECT {ACCOUNT_COLUMNS} WHERE address = $1"),
            &[&address],
        )
        .await?;
    Ok(row.as_ref().map(account_row))
}

async fn account(tx: &Tx<'_>, id: AccountId) -> Result<Account> {
    tx.query_opt(&format!("SELECT {ACCOUNT_COLUMNS} WHERE id = $1"), &[&id.0])
        .await?
        .as_ref()
        .map(account_row)
        .ok_or_else(|| StoreError::not_found("account", id))
}

async fn account_id(tx: &Tx<'_>, address: &str) -> Result<AccountId> {
    account_by_address(tx, address)
        .await?
        .map(|a| a.id)
        .ok_or_else(|| StoreError::not_found("account", address))
}

async fn set_password(tx: &mut Tx<'_>, address: &str, hash: &str) -> Result<()> {
    let changed = tx
        .execute(
            "UPDATE account SET password_hash = $1 WHERE address = $2",
            &[&hash, &address],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::not_found("account", address));
    }
    Ok(())
}

async fn set_quota(tx: &mut Tx<'_>, address: &str, quota: Option<u64>) -> Result<()> {
    check_quota(quota)?;
    let changed = tx
        .execute(
            "UPDATE account SET quota_bytes = $1 WHERE address = $2",
            &[&quota.map(|q| q as i64), &address],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::not_found("account", address));
    }
    Ok(())
}

/// What belongs to an account besides its emails, mailboxes and uploads;
/// deleted with it. Each statement takes the account id as `$1`.
const ACCOUNT_ROWS: &[&str] = &[
    "DELETE FROM mailbox WHERE account_id = $1",
    "DELETE FROM subscription WHERE account_id = $1",
    "DELETE FROM journal WHERE account_id = $1",
    "DELETE FROM bayes_token WHERE account_id = $1",
    "DELETE FROM bayes_trained WHERE account_id = $1",
    "DELETE FROM bayes_pending WHERE account_id = $1",
    "DELETE FROM account_setting WHERE account_id = $1",
    "DELETE FROM auto_reply WHERE account_id = $1",
    "DELETE FROM email_submission WHERE account_id = $1",
    "DELETE FROM maildrop_lock WHERE account_id = $1",
];

/// Removes an account with every mailbox, email, journal row and the blobs
/// only it held.
async fn remove_account(tx: &mut Tx<'_>, address: &str) -> Result<()> {
    let account = account_id(tx, address).await?;
    // A last modseq, though the row goes: the commit's notification wakes
    // the account's sessions on every node, which find it gone at their
    // next look and end. Its journal row (kept, alone) says why.
    let last = tx.modseq(account).await?;
    let id = account.0;
    // Emails and uploads hold blobs: count the holders this account
    // drops, and release them once the rows that reference the blobs
    // are gone. Hash order, so two removals lock blobs in one order.
    let held = tx
        .query(
            "SELECT blob_hash, count(*) FROM (
                 SELECT blob_hash FROM email WHERE account_id = $1
                 UNION ALL SELECT blob_hash FROM upload WHERE account_id = $1) h
              GROUP BY blob_hash ORDER BY blob_hash",
            &[&id],
        )
        .await?;
    for sql in [
        "DELETE FROM upload WHERE account_id = $1",
        "DELETE FROM mailbox_email WHERE mailbox_id IN (SELECT id FROM mailbox WHERE account_id = $1)",
        "DELETE FROM email_header WHERE account_id = $1",
        "DELETE FROM email_text WHERE account_id = $1",
        "DELETE FROM email_meta WHERE email_id IN (SELECT id FROM email WHERE account_id = $1)",
        "DELETE FROM email WHERE account_id = $1",
    ] {
        tx.execute(sql, &[&id]).await?;
    }
    for row in &held {
        blobs::release(tx, &BlobId(row.get(0)), row.get(1)).await?;
    }
    for sql in ACCOUNT_ROWS {
        tx.execute(sql, &[&id]).await?;
    }
    tx.execute("DELETE FROM account WHERE id = $1", &[&id])
        .await?;
    tx.execute(
        "INSERT INTO journal (account_id, modseq, type, object, kind, at)
         VALUES ($1, $2, 'account', $1, 'account-removed', $3)",
        &[&id, &(last.0 as i64), &now()],
    )
    .await?;
    Ok(())
}

async fn set_alias(tx: &mut Tx<'_>, alias: &Alias) -> Result<()> {
    let address = alias.address.to_lowercase();
    let domain = lock_domain(tx, domain_of(&address)?).await?;
    if alias.targets.is_empty() {
        return Err(StoreError::Invalid(format!(
            "alias {address} needs at least one target"
        )));
    }
    if account_by_address(tx, &address).await?.is_some() {
        return Err(StoreError::Invalid(format!(
            "{address} is an account; an alias cannot shadow it"
        )));
    }
    let targets: Vec<String> = alias.targets.iter().map(|t| t.to_lowercase()).collect();
    let json = serde_json::to_string(&targets)
        .map_err(|e| StoreError::backend("encoding alias targets", e))?;
    tx.execute(
        "INSERT INTO alias (address, domain_id, targets) VALUES ($1, $2, $3)
         ON CONFLICT (address) DO UPDATE SET targets = excluded.targets",
        &[&address, &domain.0, &json],
    )
    .await?;
    Ok(())
}

fn decode_alias(r: &Row) -> Result<Alias> {
    let address: String = r.get(0);
    let targets = serde_json::from_str(r.get(1))
        .map_err(|e| StoreError::backend(format!("decoding the targets of alias {address}"), e))?;
    Ok(Alias { address, targets })
}

async fn list_aliases(tx: &mut Tx<'_>) -> Result<Vec<Alias>> {
    tx.query(
        "SELECT address, targets FROM alias ORDER BY address COLLATE \"C\"",
        &[],
    )
    .await?
    .iter()
    .map(decode_alias)
    .collect()
}

async fn alias(tx: &Tx<'_>, address: &str) -> Result<Option<Alias>> {
    if address.contains('\0') {
        return Ok(None);
    }
    tx.query_opt(
        "SELECT address, targets FROM alias WHERE address = $1",
        &[&address],
    )
    .await?
    .as_ref()
    .map(decode_alias)
    .transpose()
}

async fn remove_alias(tx: &mut Tx<'_>, address: &str) -> Result<()> {
    let removed = tx
        .execute("DELETE FROM alias WHERE address = $1", &[&address])
        .await?;
    if removed == 0 {
        return Err(StoreError::not_found("alias", address));
    }
    Ok(())
}

async fn add_dkim_key(tx: &mut Tx<'_>, key: &DkimKey) -> Result<()> {
    let inserted = tx
        .execute(
            "INSERT INTO dkim_key (domain, selector, algorithm, private_key, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &key.domain.to_ascii_lowercase(),
                &key.selector,
                &key.algorithm,
                &key.private_key,
                &key.created_at,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::exists(
            "DKIM selector",
            format!("{}._domainkey.{}", key.selector, key.domain),
        ));
    }
    Ok(())
}

async fn dkim_keys(tx: &mut Tx<'_>, domain: &str) -> Result<Vec<DkimKey>> {
    let rows = tx
        .query(
            "SELECT domain, selector, algorithm, private_key, created_at
               FROM dkim_key WHERE domain = $1 ORDER BY created_at, selector COLLATE \"C\"",
            &[&domain],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| DkimKey {
            domain: r.get(0),
            selector: r.get(1),
            algorithm: r.get(2),
            private_key: r.get(3),
            created_at: r.get(4),
        })
        .collect())
}

async fn setting(tx: &mut Tx<'_>, account: AccountId, name: &str) -> Result<Option<String>> {
    Ok(tx
        .query_opt(
            "SELECT value FROM account_setting WHERE account_id = $1 AND name = $2",
            &[&account.0, &name],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The account's settings whose names start with `prefix`, by name
/// (byte-wise, as in SQLite).
async fn settings_with_prefix(
    tx: &mut Tx<'_>,
    account: AccountId,
    prefix: &str,
) -> Result<Vec<(String, String)>> {
    let rows = tx
        .query(
            "SELECT name, value FROM account_setting
              WHERE account_id = $1 AND starts_with(name, $2) ORDER BY name COLLATE \"C\"",
            &[&account.0, &prefix],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn set_setting(
    tx: &mut Tx<'_>,
    account: AccountId,
    name: &str,
    value: Option<&str>,
) -> Result<()> {
    // The account must exist (and stay until the commit: KEY SHARE holds
    // off its removal); the write would otherwise leave an orphan.
    tx.query_opt(
        "SELECT 1 FROM account WHERE id = $1 FOR KEY SHARE",
        &[&account.0],
    )
    .await?
    .ok_or_else(|| StoreError::not_found("account", account))?;
    match value {
        Some(v) => {
            tx.execute(
                "INSERT INTO account_setting (account_id, name, value) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value",
                &[&account.0, &name, &v],
            )
            .await?
        }
        None => {
            tx.execute(
                "DELETE FROM account_setting WHERE account_id = $1 AND name = $2",
                &[&account.0, &name],
            )
            .await?
        }
    };
    Ok(())
}

/// Whether an automatic reply to `correspondent` is due at `now`; if so,
/// recorded as sent. One statement: of two nodes delivering at once, the
/// second waits for the first's row and finds the reply sent
/// (RFC 3834 §2: at most one per correspondent and period).
async fn auto_reply_due(
    tx: &mut Tx<'_>,
    account: AccountId,
    correspondent: &str,
    now: i64,
    period: i64,
) -> Result<bool> {
    let correspondent = correspondent.to_lowercase();
    let due = tx
        .query_opt(
            "INSERT INTO auto_reply (account_id, correspondent, sent_at) VALUES ($1, $2, $3)
             ON CONFLICT (account_id, correspondent) DO UPDATE SET sent_at = excluded.sent_at
             WHERE excluded.sent_at - auto_reply.sent_at >= $4
             RETURNING 1",
            &[&account.0, &correspondent, &now, &period],
        )
        .await?;
    Ok(due.is_some())
}

#[async_trait]
impl DirectoryStore for PgStore {
    async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = &name.to_ascii_lowercase();
        self.write(move |tx| Box::pin(add_domain(tx, name))).await
    }

    async fn list_domains(&self) -> Result<Vec<Domain>> {
        self.read_one(|tx| Box::pin(list_domains(tx))).await
    }

    async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = &name.to_ascii_lowercase();
        self.write(move |tx| Box::pin(remove_domain(tx, name)))
            .await
    }

    async fn create_account(&self, account: NewAccount) -> Result<Account> {
        let account = &account;
        self.write(move |tx| Box::pin(create_account(tx, account)))
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.read_one(|tx| Box::pin(list_accounts(tx))).await
    }

    async fn account_by_address(&self, address: &str) -> Result<Option<Account>> {
        let address = &address.to_lowercase();
        self.read_one(move |tx| Box::pin(account_by_address(tx, address)))
            .await
    }

    async fn account(&self, id: AccountId) -> Result<Account> {
        self.read_one(move |tx| Box::pin(account(tx, id))).await
    }

    async fn set_password(&self, address: &str, password_hash: &str) -> Result<()> {
        let address = &address.to_lowercase();
        self.write(move |tx| Box::pin(set_password(tx, address, password_hash)))
            .await
    }

    async fn set_quota(&self, address: &str, quota_bytes: Option<u64>) -> Result<()> {
        let address = &address.to_lowercase();
        self.write(move |tx| Box::pin(set_quota(tx, address, quota_bytes)))
            .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = &address.to_lowercase();
        self.write(move |tx| Box::pin(remove_account(tx, address)))
            .await
    }

    async fn set_alias(&self, alias: Alias) -> Result<()> {
        let alias = &alias;
        self.write(move |tx| Box::pin(set_alias(tx, alias))).await
    }

    async fn list_aliases(&self) -> Result<Vec<Alias>> {
        self.read_one(|tx| Box::pin(list_aliases(tx))).await
    }

    async fn alias(&self, address: &str) -> Result<Option<Alias>> {
        let address = &address.to_lowercase();
        self.read_one(move |tx| Box::pin(alias(tx, address))).await
    }

    async fn remove_alias(&self, address: &str) -> Result<()> {
        let address = &address.to_lowercase();
        self.write(move |tx| Box::pin(remove_alias(tx, address)))
            .await
    }

    async fn add_dkim_key(&self, key: DkimKey) -> Result<()> {
        let key = &key;
        self.write(move |tx| Box::pin(add_dkim_key(tx, key))).await
    }

    async fn dkim_keys(&self, domain: &str) -> Result<Vec<DkimKey>> {
        let domain = &domain.to_ascii_lowercase();
        self.read_one(move |tx| Box::pin(dkim_keys(tx, domain)))
            .await
    }

    async fn account_setting(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        self.read_one(move |tx| Box::pin(setting(tx, account, name)))
            .await
    }

    async fn set_account_setting(
        &self,
        account: AccountId,
        name: &str,
        value: Option<&str>,
    ) -> Result<()> {
        self.write(move |tx| Box::pin(set_setting(tx, account, name, value)))
            .await
    }

    async fn account_settings_with_prefix(
        &self,
        account: AccountId,
        prefix: &str,
    ) -> Result<Vec<(String, String)>> {
        self.read_one(move |tx| Box::pin(settings_with_prefix(tx, account, prefix)))
            .await
    }

    async fn auto_reply_due(
        &self,
        account: AccountId,
        correspondent: &str,
        now: i64,
        period: i64,
    ) -> Result<bool> {
        self.write(move |tx| Box::pin(auto_reply_due(tx, account, correspondent, now, period)))
            .await
    }
}
