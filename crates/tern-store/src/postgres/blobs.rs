//! Message bytes in PostgreSQL: content-addressed blobs held by a count of
//! references (emails, uploads, queue entries), stored as fixed-size
//! `bytea` chunks so that a range is read without the rest — or, when a
//! blob directory is configured, as files every node reaches (a shared
//! filesystem) with only the bookkeeping in the database.
//!
//! Reading is always checked against the account that asks: one of its
//! emails or uploads must hold the blob, so a blob id alone opens nobody's
//! mail. Uploads (JMAP, webmail attachments) live here too.

use super::{PgStore, Tx};
use crate::error::{Result, StoreError};
use crate::store::BlobStore;
use crate::types::*;
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Bytes per `blob_chunk` row: a FETCH of a message's first kilobytes
/// reads one row; a 50 MiB message is 200 rows.
pub const CHUNK: usize = 256 * 1024;

/// The blob id of `bytes`.
pub fn hash_of(bytes: &[u8]) -> BlobId {
    BlobId(hex::encode(Sha256::digest(bytes)))
}

/// Stores `bytes` under `hash` (if no blob has them yet) and adds `refs`
/// holders to it, atomically: a concurrent release of the last holder on
/// another node either happens before (and the bytes are written again)
/// or after (and sees these holders).
pub async fn put(tx: &mut Tx<'_>, hash: &BlobId, bytes: &[u8], refs: i64) -> Result<()> {
    let row = tx
        .query_one(
            "INSERT INTO blob (hash, refs, size) VALUES ($1, $2, $3)
             ON CONFLICT (hash) DO UPDATE SET refs = blob.refs + excluded.refs
             RETURNING (xmax = 0) AS inserted",
            &[&hash.0, &refs, &(bytes.len() as i64)],
        )
        .await?;
    let inserted: bool = row.get(0);
    if !inserted {
        return Ok(());
    }
    if let Some(dir) = tx.blob_dir().map(Path::to_path_buf) {
        let name = write_file(&dir, hash, bytes).await?;
        tx.execute(
            "UPDATE blob SET file = $2 WHERE hash = $1",
            &[&hash.0, &name],
        )
        .await?;
        return Ok(());
    }
    for (seq, chunk) in bytes.chunks(CHUNK).enumerate() {
        tx.execute(
            "INSERT INTO blob_chunk (hash, seq, data) VALUES ($1, $2, $3)",
            &[&hash.0, &(seq as i32), &chunk],
        )
        .await?;
    }
    Ok(())
}

/// Adds holders to a blob that exists (one the caller already holds).
pub async fn add_ref(tx: &Tx<'_>, hash: &BlobId, n: i64) -> Result<()> {
    let changed = tx
        .execute(
            "UPDATE blob SET refs = refs + $2 WHERE hash = $1",
            &[&hash.0, &n],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::not_found("blob", hash));
    }
    Ok(())
}

/// Drops `n` holders of a blob; the last one frees its bytes (a file is
/// removed only after the commit, see [`Tx::unlink_after_commit`]).
pub async fn release(tx: &mut Tx<'_>, hash: &BlobId, n: i64) -> Result<()> {
    let row = tx
        .query_opt(
            "UPDATE blob SET refs = refs - $2 WHERE hash = $1 RETURNING refs, file",
            &[&hash.0, &n],
        )
        .await?;
    let Some(row) = row else {
        return Ok(());
    };
    if row.get::<_, i64>(0) > 0 {
        return Ok(());
    }
    tx.execute("DELETE FROM blob WHERE hash = $1", &[&hash.0])
        .await?;
    if let (Some(file), Some(dir)) = (row.get::<_, Option<String>>(1), tx.blob_dir()) {
        let path = dir.join(file);
        tx.unlink_after_commit(path);
    }
    Ok(())
}

/// Whether one of the account's emails or uploads holds the blob.
pub async fn owned_by(tx: &Tx<'_>, account: AccountId, hash: &BlobId) -> Result<bool> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM email WHERE blob_hash = $1 AND account_id = $2)
                 OR EXISTS (SELECT 1 FROM upload WHERE blob_hash = $1 AND account_id = $2)",
            &[&hash.0, &account.0],
        )
        .await?;
    Ok(row.get(0))
}

/// At most `len` bytes of a blob from `offset` (fewer at its end, none
/// past it), reading only the chunks (or the part of the file) it covers.
/// NotFound if there is no such blob.
pub async fn read_range(tx: &Tx<'_>, hash: &BlobId, offset: u64, len: usize) -> Result<Vec<u8>> {
    let row = tx
        .query_opt("SELECT size, file FROM blob WHERE hash = $1", &[&hash.0])
        .await?
        .ok_or_else(|| StoreError::not_found("blob", hash))?;
    let size = row.get::<_, i64>(0) as u64;
    if offset >= size || len == 0 {
        return Ok(Vec::new());
    }
    let end = size.min(offset.saturating_add(len as u64));
    if let Some(file) = row.get::<_, Option<String>>(1) {
        let dir = tx.blob_dir().ok_or_else(|| {
            StoreError::Invalid(format!(
                "blob {hash} is kept in a file, but this node has no [store] blob_dir"
            ))
        })?;
        return read_file(dir.join(file), offset, (end - offset) as usize).await;
    }
    let first = (offset / CHUNK as u64) as i32;
    let last = ((end - 1) / CHUNK as u64) as i32;
    let rows = tx
        .query(
            "SELECT seq, data FROM blob_chunk WHERE hash = $1 AND seq BETWEEN $2 AND $3
             ORDER BY seq",
            &[&hash.0, &first, &last],
        )
        .await?;
    let mut out = Vec::with_capacity((end - offset) as usize);
    for (expected, row) in (first..).zip(rows) {
        let seq: i32 = row.get(0);
        let data: &[u8] = row.get(1);
        if seq != expected {
            return Err(StoreError::Invalid(format!(
                "blob {hash} is missing its chunk {expected}"
            )));
        }
        let chunk_start = seq as u64 * CHUNK as u64;
        let from = offset.saturating_sub(chunk_start) as usize;
        let to = ((end - chunk_start) as usize).min(data.len());
        if from < to {
            out.extend_from_slice(&data[from..to]);
        }
    }
    if out.len() as u64 != end - offset {
        return Err(StoreError::Invalid(format!(
            "blob {hash} is shorter than its recorded size"
        )));
    }
    Ok(out)
}

/// Writes the bytes to a new file (written whole and synced before the
/// row that names it can commit); its name relative to `dir`.
async fn write_file(dir: &Path, hash: &BlobId, bytes: &[u8]) -> Result<String> {
    let unique = format!(
        "{:016x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(40)
    );
    let shard = hash.0.get(..2).unwrap_or("00").to_string();
    let name = format!("{shard}/{}-{unique}", hash.0);
    let path = dir.join(&name);
    let bytes = bytes.to_vec();
    let fail = |e| StoreError::backend(format!("writing blob file {}", path.display()), e);
    let target = path.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let parent = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)?;
        let tmp = target.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        std::fs::File::open(parent)?.sync_all()
    })
    .await
    .map_err(|e| StoreError::backend("writing a blob file", e))?
    .map_err(fail)?;
    Ok(name)
}

async fn read_file(path: PathBuf, offset: u64, len: usize) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut out = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut out)?;
        Ok(out)
    })
    .await
    .map_err(|e| StoreError::backend("reading a blob file", e))?
    .map_err(|e| StoreError::backend(format!("reading blob file {shown}"), e))
}

/// Reads a blob the account holds; NotFound for anyone else's.
async fn read_owned(
    tx: &Tx<'_>,
    account: AccountId,
    hash: &BlobId,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>> {
    if !owned_by(tx, account, hash).await? {
        return Err(StoreError::not_found("blob", hash));
    }
    read_range(tx, hash, offset, len).await
}

#[async_trait]
impl BlobStore for PgStore {
    async fn upload_blob(
        &self,
        account: AccountId,
        bytes: Vec<u8>,
        expires_at: i64,
    ) -> Result<BlobId> {
        let hash = hash_of(&bytes);
        let bytes = &bytes;
        let hash = &hash;
        self.write(move |tx| {
            Box::pin(async move {
                let row = tx
                    .query_opt(
                        "SELECT quota_bytes, used_bytes FROM account WHERE id = $1 FOR UPDATE",
                        &[&account.0],
                    )
                    .await?
                    .ok_or_else(|| StoreError::not_found("account", account))?;
                // Uploads waiting for an email count against the quota
                // with the mail (RFC 8620 §6.1), so a client cannot park
                // unlimited bytes here.
                if let Some(limit) = row.get::<_, Option<i64>>(0) {
                    let waiting: i64 = tx
                        .query_one(
                            "SELECT coalesce(sum(b.size), 0)::bigint FROM upload u
                               JOIN blob b ON b.hash = u.blob_hash WHERE u.account_id = $1",
                            &[&account.0],
                        )
                        .await?
                        .get(0);
                    let used = row.get::<_, i64>(1).max(0) as u64 + waiting.max(0) as u64;
                    let needed = bytes.len() as u64;
                    if used + needed > limit as u64 {
                        return Err(StoreError::OverQuota {
                            used,
                            limit: limit as u64,
                            needed,
                        });
                    }
                }
                put(tx, hash, bytes, 1).await?;
                tx.execute(
                    "INSERT INTO upload (account_id, blob_hash, expires_at) VALUES ($1, $2, $3)",
                    &[&account.0, &hash.0, &expires_at],
                )
                .await?;
                Ok(hash.clone())
            })
        })
        .await
    }

    async fn expire_uploads(&self, now: i64) -> Result<u64> {
        self.write(move |tx| {
            Box::pin(async move {
                let rows = tx
                    .query(
                        "DELETE FROM upload WHERE expires_at <= $1 RETURNING blob_hash",
                        &[&now],
                    )
                    .await?;
                let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
                for row in &rows {
                    *counts.entry(row.get(0)).or_default() += 1;
                }
                for (hash, n) in counts {
                    release(tx, &BlobId(hash), n).await?;
                }
                Ok(rows.len() as u64)
            })
        })
        .await
    }

    async fn read_blob(&self, account: AccountId, blob_id: &BlobId) -> Result<Vec<u8>> {
        self.read(move |tx| Box::pin(read_owned(tx, account, blob_id, 0, usize::MAX)))
            .await
    }

    async fn read_blobs(
        &self,
        account: AccountId,
        blob_ids: &[BlobId],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.read(move |tx| {
            Box::pin(async move {
                let mut out = Vec::with_capacity(blob_ids.len());
                for id in blob_ids {
                    match read_owned(tx, account, id, 0, usize::MAX).await {
                        Ok(data) => out.push(Some(data)),
                        Err(StoreError::NotFound { .. }) => out.push(None),
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    async fn read_blob_range(
        &self,
        account: AccountId,
        blob_id: &BlobId,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>> {
        self.read(move |tx| Box::pin(read_owned(tx, account, blob_id, offset, len)))
            .await
    }
}
