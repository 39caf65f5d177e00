//! Reading message bytes in SQLite: whole, or by range through SQLite's
//! incremental blob I/O (never loading the rest), always checked against
//! the account that asks (one of its emails or uploads must hold the
//! blob), so a blob id alone opens nobody's mail.

use super::{blob_codec, db};
use crate::error::{Result, StoreError};
use crate::types::*;
use rusqlite::{params, Connection, OptionalExtension};

/// The whole message.
pub fn read_blob(conn: &Connection, account: AccountId, hash: &BlobId) -> Result<Vec<u8>> {
    read_blob_at(conn, owned_blob(conn, account, hash)?, 0, usize::MAX)
}

/// Reads part of a blob through SQLite's incremental blob I/O, without
/// loading the rest.
pub fn read_blob_range(
    conn: &Connection,
    account: AccountId,
    hash: &BlobId,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>> {
    read_blob_at(conn, owned_blob(conn, account, hash)?, offset, len)
}

/// Where a blob's bytes are and how they are stored, as the query that
/// found the row read it (`rowid, codec, size`), so reading them costs no
/// second lookup.
pub(super) struct BlobRow {
    rowid: i64,
    codec: i64,
    size: Option<i64>,
}

impl BlobRow {
    /// From a row whose first three columns are `rowid, codec, size`.
    pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BlobRow> {
        Ok(BlobRow {
            rowid: r.get(0)?,
            codec: r.get(1)?,
            size: r.get(2)?,
        })
    }
}

/// The row of a blob the account may read: one of its own emails or
/// uploads holds it. NotFound otherwise, whether or not the bytes exist.
fn owned_blob(conn: &Connection, account: AccountId, hash: &BlobId) -> Result<BlobRow> {
    conn.prepare_cached(
        "SELECT rowid, codec, size FROM blob WHERE hash = ?1
            AND (EXISTS (SELECT 1 FROM email WHERE blob_hash = ?1 AND account_id = ?2)
                 OR EXISTS (SELECT 1 FROM upload WHERE blob_hash = ?1 AND account_id = ?2))",
    )
    .and_then(|mut s| {
        s.query_row(params![hash, account.0], BlobRow::from_row)
            .optional()
    })
    .map_err(db("finding a blob"))?
    .ok_or_else(|| StoreError::not_found("blob", hash))
}

/// At most `len` bytes of the blob `row` from `offset`: read incrementally
/// (never the whole blob) when stored raw, inflated whole and cut when
/// compressed (those are small, see `blob_codec`).
pub(super) fn read_blob_at(
    conn: &Connection,
    row: BlobRow,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>> {
    let BlobRow { rowid, codec, size } = row;
    if codec != blob_codec::RAW {
        let data: Vec<u8> = conn
            .prepare_cached("SELECT data FROM blob WHERE rowid = ?1")
            .and_then(|mut s| s.query_row([rowid], |r| r.get(0)))
            .map_err(db("reading a blob"))?;
        let mut whole = blob_codec::decode(data, codec, size)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(whole.len());
        let end = start.saturating_add(len).min(whole.len());
        whole.truncate(end);
        whole.drain(..start);
        return Ok(whole);
    }
    let blob = conn
        .blob_open(rusqlite::MAIN_DB, "blob", "data", rowid, true)
        .map_err(db("opening a blob"))?;
    let size = blob.len() as u64;
    if offset >= size {
        return Ok(Vec::new());
    }
    let n = (len as u64).min(size - offset) as usize;
    let mut buf = vec![0u8; n];
    blob.read_at_exact(&mut buf, offset as usize)
        .map_err(db("reading a blob"))?;
    Ok(buf)
}
