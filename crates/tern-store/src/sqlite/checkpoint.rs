//! WAL checkpoints on their own thread.
//!
//! SQLite's automatic checkpoint runs inside the committing connection: it
//! would stall the single writer (and every client waiting on it) while it
//! copies pages into the database. Here a second connection does PASSIVE
//! checkpoints on a short timer instead; they never block the writer, and
//! the writer's own automatic checkpoint is turned off.

use super::open_connection;
use crate::error::Result;
use std::path::Path;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// How often the WAL is folded back into the database: often enough that
/// the WAL stays small under load, rarely enough to cost nothing when idle.
const INTERVAL: Duration = Duration::from_millis(250);

/// Handle to the checkpoint thread.
pub struct Checkpointer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Checkpointer> {
        let conn = open_connection(path, false)?;
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tern-store-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(INTERVAL) {
                    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::debug!("WAL checkpoint: {e}");
                    }
                }
            })
            .map_err(|e| crate::StoreError::backend("starting the checkpoint thread", e))?;
        Ok(Checkpointer {
            stop: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn shutdown(&self) {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}
