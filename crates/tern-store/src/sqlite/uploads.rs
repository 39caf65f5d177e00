//! Uploads in SQLite: bytes an account sent ahead of using them (a JMAP
//! upload, a webmail attachment), held by an `upload` row with an expiry
//! like an email or a queue entry holds its blob, and freed with the last
//! holder.

use super::db;
use crate::error::Result;
use crate::types::*;
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};

pub fn upload(
    conn: &Connection,
    account: AccountId,
    bytes: &[u8],
    expires_at: i64,
) -> Result<BlobId> {
    // The account must exist; the foreign key would say so less clearly.
    let a = super::directory::account(conn, account)?;
    // Uploads waiting for an email count against the quota with the mail
    // (RFC 8620 §6.1), so a client cannot park unlimited bytes here.
    if let Some(limit) = a.quota_bytes {
        let waiting: i64 = conn
            .prepare_cached(
                "SELECT coalesce(sum(coalesce(b.size, length(b.data))), 0) FROM upload u
                   JOIN blob b ON b.hash = u.blob_hash WHERE u.account_id = ?1",
            )
            .and_then(|mut s| s.query_row([account.0], |r| r.get(0)))
            .map_err(db("counting uploads"))?;
        let used = a.used_bytes + waiting.max(0) as u64;
        let needed = bytes.len() as u64;
        if used + needed > limit {
            return Err(crate::error::StoreError::OverQuota {
                used,
                limit,
                needed,
            });
        }
    }
    let hash = BlobId(hex::encode(Sha256::digest(bytes)));
    conn.prepare_cached("INSERT INTO blob (hash, refs, data) VALUES (?1, 1, ?2) ON CONFLICT (hash) DO UPDATE SET refs = refs + 1")
        .and_then(|mut s| s.execute(params![hash, bytes]))
        .map_err(db("storing an upload"))?;
    conn.prepare_cached(
        "INSERT INTO upload (account_id, blob_hash, expires_at) VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut s| s.execute(params![account.0, hash, expires_at]))
    .map_err(db("recording an upload"))?;
    Ok(hash)
}

pub fn expire(conn: &Connection, now: i64) -> Result<u64> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS expired_upload (hash TEXT PRIMARY KEY, n INTEGER NOT NULL);
         DELETE FROM temp.expired_upload;",
    )
    .map_err(db("expiring uploads"))?;
    conn.prepare_cached(
        "INSERT INTO temp.expired_upload SELECT blob_hash, count(*) FROM upload WHERE expires_at <= ?1 GROUP BY blob_hash",
    )
    .and_then(|mut s| s.execute([now]))
    .map_err(db("expiring uploads"))?;
    let n = conn
        .prepare_cached("DELETE FROM upload WHERE expires_at <= ?1")
        .and_then(|mut s| s.execute([now]))
        .map_err(db("expiring uploads"))?;
    conn.execute_batch(
        "UPDATE blob SET refs = refs - (SELECT n FROM temp.expired_upload e WHERE e.hash = blob.hash)
           WHERE hash IN (SELECT hash FROM temp.expired_upload);
         DELETE FROM blob WHERE hash IN (SELECT hash FROM temp.expired_upload) AND refs <= 0;
         DELETE FROM temp.expired_upload;",
    )
    .map_err(db("freeing expired uploads"))?;
    Ok(n as u64)
}
