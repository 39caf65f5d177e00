//! A background thread that runs a task at a fixed interval until shut
//! down: WAL checkpoints (`checkpoint.rs`) and the watch for other
//! processes' commits (`watcher.rs`). Shutting down wakes it at once and
//! waits for the task in progress.

use crate::error::{Result, StoreError};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// Handle to a periodic thread.
pub struct Periodic {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Periodic {
    /// Runs `tick` every `interval` on a thread called `name`.
    pub fn start(
        name: &str,
        interval: Duration,
        mut tick: impl FnMut() + Send + 'static,
    ) -> Result<Periodic> {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // Dropping the sender (shutdown) ends the wait at once.
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    tick();
                }
            })
            .map_err(|e| StoreError::backend(format!("starting the {name} thread"), e))?;
        Ok(Periodic {
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
