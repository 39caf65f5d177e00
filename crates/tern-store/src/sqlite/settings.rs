//! Per-account settings (schema v18): small named values an account's
//! user sets through a protocol (JMAP `VacationResponse` first), and the
//! record of automatic replies sent, so a correspondent gets at most one
//! per period (RFC 3834 §2, RFC 8621 §8).

use super::db;
use crate::error::Result;
use crate::types::AccountId;
use rusqlite::{params, Connection, OptionalExtension};

pub fn get(conn: &Connection, account: AccountId, name: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM account_setting WHERE account_id = ?1 AND name = ?2")
        .and_then(|mut s| {
            s.query_row(params![account.0, name], |r| r.get(0))
                .optional()
        })
        .map_err(db("reading a setting"))
}

/// The account's settings whose names start with `prefix` (a range of
/// the primary key, not a scan), by name.
pub fn with_prefix(
    conn: &Connection,
    account: AccountId,
    prefix: &str,
) -> Result<Vec<(String, String)>> {
    // Names sort byte-wise: everything from `prefix` up to (not including)
    // `prefix` with its last byte raised.
    let mut end = prefix.as_bytes().to_vec();
    match end.last_mut() {
        Some(b) if *b < 0x7f => *b += 1,
        _ => end.push(0x7f),
    }
    let end = String::from_utf8(end).unwrap_or_default();
    conn.prepare_cached(
        "SELECT name, value FROM account_setting
          WHERE account_id = ?1 AND name >= ?2 AND name < ?3 ORDER BY name",
    )
    .and_then(|mut s| {
        s.query_map(params![account.0, prefix, end], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
    })
    .map_err(db("reading settings"))
}

pub fn set(conn: &Connection, account: AccountId, name: &str, value: Option<&str>) -> Result<()> {
    // The account must exist; the write would otherwise keep an orphan.
    super::directory::account(conn, account)?;
    match value {
        Some(v) => conn
            .prepare_cached(
                "INSERT INTO account_setting (account_id, name, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id, name) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![account.0, name, v])),
        None => conn
            .prepare_cached("DELETE FROM account_setting WHERE account_id = ?1 AND name = ?2")
            .and_then(|mut s| s.execute(params![account.0, name])),
    }
    .map_err(db("writing a setting"))?;
    Ok(())
}

/// Whether an automatic reply to `correspondent` is due at `now` (none in
/// the last `period` seconds); if so, records it as sent.
pub fn auto_reply_due(
    conn: &Connection,
    account: AccountId,
    correspondent: &str,
    now: i64,
    period: i64,
) -> Result<bool> {
    let correspondent = correspondent.to_lowercase();
    let last: Option<i64> = conn
        .prepare_cached(
            "SELECT sent_at FROM auto_reply WHERE account_id = ?1 AND correspondent = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![account.0, correspondent], |r| r.get(0))
                .optional()
        })
        .map_err(db("reading auto-replies"))?;
    if last.is_some_and(|t| now - t < period) {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO auto_reply (account_id, correspondent, sent_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (account_id, correspondent) DO UPDATE SET sent_at = excluded.sent_at",
    )
    .and_then(|mut s| s.execute(params![account.0, correspondent, now]))
    .map_err(db("recording an auto-reply"))?;
    Ok(true)
}
