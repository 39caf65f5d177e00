//! WAL checkpoints on their own thread.
//!
//! SQLite's automatic checkpoint runs inside the committing connection: it
//! would stall the single writer (and every client waiting on it) while it
//! copies pages into the database. Here a second connection does PASSIVE
//! checkpoints on a short timer instead; they never block the writer, and
//! the writer's own automatic checkpoint is turned off.

use super::open_connection;
use super::periodic::Periodic;
use crate::error::Result;
use std::path::Path;
use std::time::Duration;

/// How often the WAL is folded back into the database: often enough that
/// the WAL stays small under load, rarely enough to cost nothing when idle.
const INTERVAL: Duration = Duration::from_millis(250);

/// Starts the checkpoint thread.
pub fn start(path: &Path) -> Result<Periodic> {
    let conn = open_connection(path, false)?;
    Periodic::start("tern-store-checkpoint", INTERVAL, move || {
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::debug!("WAL checkpoint: {e}");
        }
    })
}
