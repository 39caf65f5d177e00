//! Notifications across processes: commits made by another process on the
//! same database (an admin command, an import) wake this process's
//! subscribers, as the Store contract requires (`Store::subscribe`).
//!
//! The writer thread notifies the hub of its own commits directly. For the
//! others, this thread keeps one read connection and asks SQLite, every
//! [`POLL_INTERVAL`], whether anyone committed (`PRAGMA data_version`
//! changes when another connection, in any process, has committed). Only
//! then does it read the journal rows added since it last looked (every
//! change to an account writes one, with the account's new modseq) and
//! notify the hub with each account's highest. The journal rows are read
//! after their commit, so a subscriber is never told of a change it cannot
//! see. Our own commits are seen here too; the hub ignores a modseq that
//! does not rise, so nobody is woken twice.
//!
//! PostgreSQL will meet the same contract with LISTEN/NOTIFY.

use super::open_connection;
use super::periodic::Periodic;
use crate::error::Result;
use crate::hub::NotificationHub;
use crate::types::{AccountId, ModSeq};
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often another process's commits are looked for: IDLE hears of them
/// within this (the target is p99 under 100 ms); an idle server pays one
/// cheap pragma per interval.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Journal rows read per query, so a burst from an import is taken in
/// bounded pieces.
const BATCH: i64 = 5_000;

/// Starts the watcher thread for the database at `path`.
pub fn start(path: &Path, hub: Arc<NotificationHub>) -> Result<Periodic> {
    let conn = open_connection(path, true)?;
    let mut last_row = last_journal_row(&conn)?;
    let mut version = data_version(&conn).map_err(super::db("reading the data version"))?;
    Periodic::start("tern-store-watch", POLL_INTERVAL, move || {
        match data_version(&conn) {
            Ok(v) if v == version => return,
            Ok(v) => version = v,
            Err(e) => {
                tracing::warn!("watching for other processes' commits: {e}");
                return;
            }
        }
        match announce(&conn, &hub, last_row) {
            Ok(row) => last_row = row,
            Err(e) => tracing::warn!("reading other processes' changes: {e}"),
        }
    })
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

fn last_journal_row(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT max(seq) FROM journal", [], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .optional()
    .map(|v| v.flatten().unwrap_or(0))
    .map_err(super::db("reading the journal's end"))
}

/// Notifies the hub of every account changed after journal row `after`;
/// returns the last row read. Writers are serialised by SQLite's write
/// lock and `seq` is never reused (schema v9), so rows become visible in
/// `seq` order and none is skipped.
fn announce(conn: &Connection, hub: &NotificationHub, mut after: i64) -> rusqlite::Result<i64> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, account_id, modseq FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    loop {
        let mut highest: HashMap<AccountId, ModSeq> = HashMap::new();
        let mut read = 0;
        let mut rows = stmt.query([after, BATCH])?;
        while let Some(r) = rows.next()? {
            after = r.get(0)?;
            let account = AccountId(r.get(1)?);
            let modseq = ModSeq(r.get::<_, i64>(2)? as u64);
            let e = highest.entry(account).or_insert(modseq);
            *e = (*e).max(modseq);
            read += 1;
        }
        for (account, modseq) in highest {
            hub.notify(account, modseq);
        }
        if read < BATCH {
            return Ok(after);
        }
    }
}
