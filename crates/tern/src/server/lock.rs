//! One `tern serve` per data directory.
//!
//! Two servers on one directory would both accept mail, each with its own
//! writer, POP3 maildrop locks and notification hub: the second's
//! deliveries would never reach the first's IDLE sessions. `serve` holds an
//! exclusive lock on `data_dir/serve.lock` for its whole life (the
//! operating system releases it when the process ends, even on kill -9)
//! and writes its PID there, so a second server is refused naming the
//! first. Admin commands take no such lock: they work beside a running
//! server, whose sessions hear of their changes through the Store.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name inside the data directory.
const LOCK_FILE: &str = "serve.lock";

/// Holds the data directory for this process; dropping it releases it.
pub struct DataDirLock {
    _file: File,
}

/// Takes the data directory for this server, or explains who holds it.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock> {
    match try_lock_data_dir(data_dir, "tern serve")? {
        Ok(lock) => Ok(lock),
        Err(who) => bail!(
            "{who} is already using the data directory {}; stop it first, or give this server another data_dir",
            data_dir.display()
        ),
    }
}

/// Takes the data directory for `holder` (a command, named to whoever
/// finds it held), or names who holds it ("another tern serve (PID 12)"):
/// `tern store migrate` holds it too, so no server changes the store
/// while it is copied.
pub fn try_lock_data_dir(
    data_dir: &Path,
    holder: &str,
) -> Result<std::result::Result<DataDirLock, String>> {
    let path = data_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut content = String::new();
            let _ = file.read_to_string(&mut content);
            // "PID" (a server) or "PID command".
            let (pid, who) = content
                .trim()
                .split_once(' ')
                .unwrap_or((content.trim(), "tern serve"));
            return Ok(Err(match pid {
                "" => format!("another {who}"),
                pid => format!("another {who} (PID {pid})"),
            }));
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| match holder {
            "tern serve" => writeln!(file, "{}", std::process::id()),
            other => writeln!(file, "{} {other}", std::process::id()),
        })
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Ok(DataDirLock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_data_dir(dir.path()).unwrap();
        let err = lock_data_dir(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("already using the data directory"), "{err}");
        drop(held);
        assert!(lock_data_dir(dir.path()).is_ok());
    }
}
