//! The copy's own bookkeeping in the target database: the progress row of
//! each table (its last key copied, so an interrupted copy resumes), the
//! source's fingerprint (a copy is never resumed over a source that changed
//! since), and whether a copy is unfinished (no node starts on half of one).

use super::{pg, sqlite};
use crate::error::{Result, StoreError};
use rusqlite::types::Value;
use rusqlite::Connection;
use tokio_postgres::Client;

/// The migration's own bookkeeping, beside the schema it fills (not part
/// of it: a database that never was migrated into has no such table).
pub(super) const PROGRESS_TABLE: &str = "CREATE TABLE IF NOT EXISTS migrate_progress (
    source     TEXT NOT NULL,
    table_name TEXT NOT NULL,
    last_key   TEXT,
    rows       BIGINT NOT NULL DEFAULT 0,
    done       BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (source, table_name)
)";

/// Whether a `tern store migrate` into this database has begun and not
/// completed: a node must not start on half a copy (its ids would collide
/// with rows still to come, and clients would see mail vanish).
pub async fn unfinished(client: &Client) -> Result<bool> {
    let row = client
        .query_one("SELECT to_regclass('migrate_progress') IS NOT NULL", &[])
        .await
        .map_err(pg("looking for an unfinished migration"))?;
    if !row.get::<_, bool>(0) {
        return Ok(false);
    }
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM migrate_progress WHERE table_name = '#source' AND NOT done)",
            &[],
        )
        .await
        .map_err(pg("looking for an unfinished migration"))?;
    Ok(row.get(0))
}

/// What changes whenever the SQLite store is written: its accounts'
/// modseqs, the journal and the ids handed out. A copy resumed over a
/// store that changed meanwhile would mix two states of it (tables copied
/// before the change, tables after) and hand out modseqs twice.
pub(super) fn source_fingerprint(conn: &Connection) -> Result<String> {
    conn.query_row(
        "SELECT (SELECT coalesce(sum(highest_modseq), 0) FROM account) || ':' ||
                (SELECT coalesce(max(seq), 0) FROM journal) || ':' ||
                (SELECT coalesce(max(id), 0) FROM email) || ':' ||
                (SELECT count(*) FROM mailbox_email) || ':' ||
                (SELECT count(*) FROM queue_message)",
        [],
        |r| r.get(0),
    )
    .map_err(sqlite("fingerprinting the SQLite store"))
}

/// Records the source's fingerprint at the first run; a resumed run over
/// a source that changed since is refused. The row stays not `done` until
/// the copy is complete and verified: till then no node opens the
/// database ([`unfinished`]).
pub(super) async fn check_unchanged(
    client: &Client,
    source: &str,
    fingerprint: &str,
) -> Result<()> {
    client
        .execute(
            "INSERT INTO migrate_progress (source, table_name, last_key, rows, done)
             VALUES ($1, '#source', $2, 0, FALSE) ON CONFLICT DO NOTHING",
            &[&source, &fingerprint],
        )
        .await
        .map_err(pg("recording the source's fingerprint"))?;
    let recorded: Option<String> = client
        .query_one(
            "SELECT last_key FROM migrate_progress WHERE source = $1 AND table_name = '#source'",
            &[&source],
        )
        .await
        .map_err(pg("reading the source's fingerprint"))?
        .get(0);
    if recorded.as_deref() != Some(fingerprint) {
        return Err(StoreError::Invalid(
            "the SQLite store changed since the interrupted copy began (a server or an \
             admin command wrote to it): the copy cannot continue; drop the target \
             database, create it empty and run the migration again"
                .into(),
        ));
    }
    Ok(())
}

/// One table's saved progress.
pub(super) struct Saved {
    pub table: String,
    pub last_key: Option<String>,
    pub rows: u64,
    pub done: bool,
}

pub(super) async fn load_progress(client: &Client, source: &str) -> Result<Vec<Saved>> {
    let rows = client
        .query(
            "SELECT table_name, last_key, rows, done FROM migrate_progress WHERE source = $1",
            &[&source],
        )
        .await
        .map_err(pg("reading migrate_progress"))?;
    Ok(rows
        .iter()
        .map(|r| Saved {
            table: r.get(0),
            last_key: r.get(1),
            rows: r.get::<_, i64>(2) as u64,
            done: r.get(3),
        })
        .collect())
}

/// A key as the progress row keeps it: a JSON array of its values.
pub(super) fn encode_key(key: &[Value]) -> Result<String> {
    let parts = key
        .iter()
        .map(|v| match v {
            Value::Integer(i) => Ok(serde_json::Value::from(*i)),
            Value::Text(t) => Ok(serde_json::Value::from(t.as_str())),
            other => Err(StoreError::Invalid(format!(
                "a key column holds a {:?} value",
                other.data_type()
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::Value::Array(parts).to_string())
}

pub(super) fn decode_key(text: &str) -> Result<Vec<Value>> {
    let bad = || StoreError::Invalid(format!("migrate_progress holds an unreadable key {text:?}"));
    let parts: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|_| bad())?;
    parts
        .into_iter()
        .map(|p| match p {
            serde_json::Value::Number(n) => n.as_i64().map(Value::Integer).ok_or_else(bad),
            serde_json::Value::String(s) => Ok(Value::Text(s)),
            _ => Err(bad()),
        })
        .collect()
}
