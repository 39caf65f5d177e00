//! Domains, accounts and aliases in SQLite.
//!
//! Addresses arrive already validated and lowercased by the caller
//! (`tern-core`'s address rules); this module only keeps them.

use super::indexer::IndexJob;
use super::{db, mailboxes, now, WriteCtx};
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub fn add_domain(conn: &Connection, name: &str) -> Result<Domain> {
    if name.is_empty() {
        return Err(StoreError::Invalid("a domain name cannot be empty".into()));
    }
    let created_at = now();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO domain (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![name, created_at]))
        .map_err(db("adding a domain"))?;
    if inserted == 0 {
        return Err(StoreError::exists("domain", name));
    }
    Ok(Domain {
        id: DomainId(conn.last_insert_rowid()),
        name: name.to_string(),
        created_at,
    })
}

pub fn list_domains(conn: &Connection) -> Result<Vec<Domain>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name, created_at FROM domain ORDER BY name")
        .map_err(db("listing domains"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Domain {
                id: DomainId(r.get(0)?),
                name: r.get(1)?,
                created_at: r.get(2)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("listing domains"))?;
    Ok(rows)
}

fn domain_id(conn: &Connection, name: &str) -> Result<DomainId> {
    conn.prepare_cached("SELECT id FROM domain WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(db("looking up a domain"))?
        .map(DomainId)
        .ok_or_else(|| StoreError::not_found("domain", name))
}

pub fn remove_domain(conn: &Connection, name: &str) -> Result<()> {
    let id = domain_id(conn, name)?;
    let accounts: u64 = conn
        .query_row(
            "SELECT count(*) FROM account WHERE domain_id = ?1",
            [id.0],
            |r| r.get(0),
        )
        .map_err(db("counting a domain's accounts"))?;
    if accounts > 0 {
        return Err(StoreError::DomainInUse {
            name: name.to_string(),
            accounts,
        });
    }
    conn.execute("DELETE FROM alias WHERE domain_id = ?1", [id.0])
        .and_then(|_| conn.execute("DELETE FROM domain WHERE id = ?1", [id.0]))
        .map_err(db("removing a domain"))?;
    Ok(())
}

/// The domain part of an address or of a catch-all `@domain`.
pub(crate) fn domain_of(address: &str) -> Result<&str> {
    match address.rsplit_once('@') {
        Some((_, domain)) if !domain.is_empty() => Ok(domain),
        _ => Err(StoreError::Invalid(format!(
            "{address:?} is not an address (expected local@domain)"
        ))),
    }
}

/// SQLite integers are signed: a quota above i64::MAX would wrap negative.
pub(crate) fn check_quota(quota: Option<u64>) -> Result<()> {
    match quota {
        Some(q) if q > i64::MAX as u64 => {
            Err(StoreError::Invalid(format!("quota {q} is too large")))
        }
        _ => Ok(()),
    }
}

pub fn create_account(ctx: &mut WriteCtx<'_>, new: NewAccount) -> Result<Account> {
    check_quota(new.quota_bytes)?;
    let conn = ctx.conn;
    let address = new.address.to_lowercase();
    let domain = domain_id(conn, domain_of(&address)?)?;
    if alias(conn, &address)?.is_some() {
        return Err(StoreError::Invalid(format!(
            "{address} is already an alias; remove the alias first"
        )));
    }
    let created_at = now();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO account (address, domain_id, password_hash, quota_bytes, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                address,
                domain.0,
                new.password_hash,
                new.quota_bytes.map(|q| q as i64),
                created_at
            ])
        })
        .map_err(db("creating an account"))?;
    if inserted == 0 {
        return Err(StoreError::exists("account", &address));
    }
    let id = AccountId(conn.last_insert_rowid());
    // Only the default mailboxes of a new account start subscribed.
    for (name, role) in DEFAULT_MAILBOXES {
        mailboxes::set_subscription_row(ctx.conn, id, name, true)?;
        mailboxes::create(ctx, id, name, Some(role))?;
    }
    account(ctx.conn, id)
}

const ACCOUNT_COLUMNS: &str =
    "id, address, password_hash, quota_bytes, used_bytes, created_at FROM account";

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: AccountId(r.get(0)?),
        address: r.get(1)?,
        password_hash: r.get(2)?,
        quota_bytes: r.get::<_, Option<i64>>(3)?.map(|q| q as u64),
        used_bytes: r.get::<_, i64>(4)? as u64,
        created_at: r.get(5)?,
    })
}

pub fn list_accounts(conn: &Connection) -> Result<Vec<Account>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} ORDER BY address"))
        .map_err(db("listing accounts"))?;
    let rows = stmt
        .query_map([], account_row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("listing accounts"))?;
    Ok(rows)
}

pub fn account_by_address(conn: &Connection, address: &str) -> Result<Option<Account>> {
    conn.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} WHERE address = ?1"))
        .and_then(|mut s| s.query_row([address], account_row).optional())
        .map_err(db("looking up an account"))
}

pub fn account(conn: &Connection, id: AccountId) -> Result<Account> {
    conn.prepare_cached(&format!("SELECT {ACCOUNT_COLUMNS} WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id.0], account_row).optional())
        .map_err(db("looking up an account"))?
        .ok_or_else(|| StoreError::not_found("account", id))
}

fn account_id(conn: &Connection, address: &str) -> Result<AccountId> {
    account_by_address(conn, address)?
        .map(|a| a.id)
        .ok_or_else(|| StoreError::not_found("account", address))
}

pub fn set_password(conn: &Connection, address: &str, hash: &str) -> Result<()> {
    let id = account_id(conn, address)?;
    conn.execute(
        "UPDATE account SET password_hash = ?1 WHERE id = ?2",
        params![hash, id.0],
    )
    .map_err(db("setting a password"))?;
    Ok(())
}

pub fn set_quota(conn: &Connection, address: &str, quota: Option<u64>) -> Result<()> {
    check_quota(quota)?;
    let id = account_id(conn, address)?;
    conn.execute(
        "UPDATE account SET quota_bytes = ?1 WHERE id = ?2",
        params![quota.map(|q| q as i64), id.0],
    )
    .map_err(db("setting a quota"))?;
    Ok(())
}

/// Removes an account with every mailbox, email, journal row and the blobs
/// only it used.
pub fn remove_account(ctx: &mut WriteCtx<'_>, address: &str) -> Result<()> {
    let conn = ctx.conn;
    let account = account_id(conn, address)?;
    // A last modseq, though the row goes: the hub then wakes the account's
    // sessions, which find it gone at their next look and end. Its journal
    // row (kept, alone) carries the news to other processes' hubs.
    let last = ctx.modseq(account)?;
    let conn = ctx.conn;
    let id = account.0;
    let emails: Vec<i64> = conn
        .prepare("SELECT id FROM email WHERE account_id = ?1")
        .and_then(|mut s| s.query_map([id], |r| r.get(0))?.collect())
        .map_err(db("listing an account's emails"))?;
    for email_id in emails {
        ctx.index(IndexJob::Remove { email_id });
    }
    // Order matters: emails reference blobs, so the blobs this account
    // alone used can only go once its emails are gone. `id` is an integer
    // from the database, never text from a client.
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS doomed_blob (hash TEXT PRIMARY KEY, n INTEGER NOT NULL);
         DELETE FROM temp.doomed_blob;
         INSERT INTO temp.doomed_blob SELECT blob_hash, count(*) FROM email WHERE account_id = {id} GROUP BY blob_hash;
         INSERT INTO temp.doomed_blob SELECT blob_hash, count(*) FROM upload WHERE account_id = {id} GROUP BY blob_hash
           ON CONFLICT (hash) DO UPDATE SET n = n + excluded.n;
         DELETE FROM upload WHERE account_id = {id};
         DELETE FROM mailbox_email WHERE mailbox_id IN (SELECT id FROM mailbox WHERE account_id = {id});
         DELETE FROM email_header WHERE account_id = {id};
         DELETE FROM email WHERE account_id = {id};
         UPDATE blob SET refs = refs - (SELECT n FROM temp.doomed_blob d WHERE d.hash = blob.hash)
           WHERE hash IN (SELECT hash FROM temp.doomed_blob);
         DELETE FROM blob WHERE hash IN (SELECT hash FROM temp.doomed_blob) AND refs <= 0;
         DELETE FROM temp.doomed_blob;
         DELETE FROM mailbox WHERE account_id = {id};
         DELETE FROM journal WHERE account_id = {id};
         DELETE FROM bayes_token WHERE account_id = {id};
         DELETE FROM bayes_trained WHERE account_id = {id};
         DELETE FROM bayes_pending WHERE account_id = {id};
         DELETE FROM account_setting WHERE account_id = {id};
         DELETE FROM auto_reply WHERE account_id = {id};
         DELETE FROM email_submission WHERE account_id = {id};
         DELETE FROM account WHERE id = {id};
         INSERT INTO journal (account_id, modseq, type, object, kind, at)
             VALUES ({id}, {}, 'account', {id}, 'account-removed', {});",
        last.0,
        super::now()
    ))
    .map_err(db("removing an account"))?;
    Ok(())
}

pub fn set_alias(conn: &Connection, alias: Alias) -> Result<()> {
    let address = alias.address.to_lowercase();
    let domain = domain_id(conn, domain_of(&address)?)?;
    if alias.targets.is_empty() {
        return Err(StoreError::Invalid(format!(
            "alias {address} needs at least one target"
        )));
    }
    if account_by_address(conn, &address)?.is_some() {
        return Err(StoreError::Invalid(format!(
            "{address} is an account; an alias cannot shadow it"
        )));
    }
    let targets: Vec<String> = alias.targets.iter().map(|t| t.to_lowercase()).collect();
    let json = serde_json::to_string(&targets)
        .map_err(|e| StoreError::backend("encoding alias targets", e))?;
    conn.execute(
        "INSERT INTO alias (address, domain_id, targets) VALUES (?1, ?2, ?3)
         ON CONFLICT (address) DO UPDATE SET targets = excluded.targets",
        params![address, domain.0, json],
    )
    .map_err(db("setting an alias"))?;
    Ok(())
}

fn alias_row(r: &Row<'_>) -> rusqlite::Result<(String, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

fn decode_alias((address, targets): (String, String)) -> Result<Alias> {
    let targets = serde_json::from_str(&targets)
        .map_err(|e| StoreError::backend(format!("decoding the targets of alias {address}"), e))?;
    Ok(Alias { address, targets })
}

pub fn list_aliases(conn: &Connection) -> Result<Vec<Alias>> {
    let mut stmt = conn
        .prepare_cached("SELECT address, targets FROM alias ORDER BY address")
        .map_err(db("listing aliases"))?;
    let rows = stmt
        .query_map([], alias_row)
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("listing aliases"))?;
    rows.into_iter().map(decode_alias).collect()
}

pub fn alias(conn: &Connection, address: &str) -> Result<Option<Alias>> {
    conn.prepare_cached("SELECT address, targets FROM alias WHERE address = ?1")
        .and_then(|mut s| s.query_row([address], alias_row).optional())
        .map_err(db("looking up an alias"))?
        .map(decode_alias)
        .transpose()
}

pub fn remove_alias(conn: &Connection, address: &str) -> Result<()> {
    let removed = conn
        .execute("DELETE FROM alias WHERE address = ?1", [address])
        .map_err(db("removing an alias"))?;
    if removed == 0 {
        return Err(StoreError::not_found("alias", address));
    }
    Ok(())
}

/// Stores a DKIM key; AlreadyExists when the selector is taken.
pub fn add_dkim_key(conn: &Connection, key: DkimKey) -> Result<()> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO dkim_key (domain, selector, algorithm, private_key, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                key.domain.to_ascii_lowercase(),
                key.selector,
                key.algorithm,
                key.private_key,
                key.created_at
            ])
        })
        .map_err(db("storing a DKIM key"))?;
    if inserted == 0 {
        return Err(StoreError::exists(
            "DKIM selector",
            format!("{}._domainkey.{}", key.selector, key.domain),
        ));
    }
    Ok(())
}

/// A domain's DKIM keys, oldest first.
pub fn dkim_keys(conn: &Connection, domain: &str) -> Result<Vec<DkimKey>> {
    conn.prepare_cached(
        "SELECT domain, selector, algorithm, private_key, created_at
           FROM dkim_key WHERE domain = ?1 ORDER BY created_at, selector",
    )
    .and_then(|mut s| {
        s.query_map([domain], |r| {
            Ok(DkimKey {
                domain: r.get(0)?,
                selector: r.get(1)?,
                algorithm: r.get(2)?,
                private_key: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?
        .collect()
    })
    .map_err(db("reading DKIM keys"))
}
