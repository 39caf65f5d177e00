//! Message bodies as they arrive: in memory while small, in a temporary
//! file once past a threshold (1 MiB), so that many clients sending large
//! messages at once (SMTP DATA and BDAT, IMAP APPEND literals) cost disk,
//! not memory, for as long as their transfers last.
//!
//! The file is created in the data directory's `spool/` and unlinked at
//! once, so it vanishes when the handle is dropped — also when the process
//! is killed: a crash leaves no spool files behind. A body is read back
//! into memory only to be parsed and stored, which callers bound with
//! [`LargeBodies`] (a few at a time), so memory no longer grows with the
//! number of sessions transferring.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies up to this size stay in memory.
pub const SPOOL_THRESHOLD: usize = 1 << 20;

/// Bytes gathered in memory before each write to the file.
const WRITE_BUFFER: usize = 256 << 10;

/// A body being received.
pub struct Spool {
    dir: Option<PathBuf>,
    threshold: usize,
    /// The body while small; once spooled, bytes not yet written.
    mem: Vec<u8>,
    file: Option<tokio::fs::File>,
    len: u64,
    /// A NUL byte was received (IMAP allows it only in literal8).
    nul: bool,
}

/// Where spools go, and how many spooled bodies may be in memory at once.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// `None` keeps every body in memory (tests, tools).
    pub dir: Option<PathBuf>,
    /// Bodies past this size go to a file.
    pub threshold: usize,
}

impl SpoolConfig {
    /// Spools under `data_dir/spool`, created (and emptied of anything an
    /// older version left) now.
    pub fn in_data_dir(data_dir: &Path) -> io::Result<SpoolConfig> {
        let dir = data_dir.join("spool");
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(SpoolConfig {
            dir: Some(dir),
            threshold: SPOOL_THRESHOLD,
        })
    }

    /// Every body in memory.
    pub fn memory() -> SpoolConfig {
        SpoolConfig {
            dir: None,
            threshold: usize::MAX,
        }
    }

    /// A new, empty body.
    pub fn spool(&self) -> Spool {
        Spool {
            dir: self.dir.clone(),
            threshold: self.threshold,
            mem: Vec::new(),
            file: None,
            len: 0,
            nul: false,
        }
    }
}

impl Spool {
    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a NUL byte was received.
    pub fn contains_nul(&self) -> bool {
        self.nul
    }

    /// Whether the body went to a file.
    pub fn is_spooled(&self) -> bool {
        self.file.is_some()
    }

    /// Appends `bytes`; past the threshold the body moves to a file.
    pub async fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.len += bytes.len() as u64;
        self.nul = self.nul || bytes.contains(&0);
        self.mem.extend_from_slice(bytes);
        if self.file.is_none() && self.mem.len() > self.threshold {
            if let Some(dir) = &self.dir {
                self.file = Some(create_unlinked(dir)?);
            }
        }
        if self.mem.len() >= WRITE_BUFFER {
            if let Some(file) = &mut self.file {
                file.write_all(&self.mem).await?;
                self.mem.clear();
                self.mem.shrink_to(WRITE_BUFFER);
            }
        }
        Ok(())
    }

    /// Forgets what was received (a body refused half-way).
    pub fn clear(&mut self) {
        self.mem = Vec::new();
        self.file = None;
        self.len = 0;
    }

    /// The whole body in memory.
    pub async fn into_vec(mut self) -> io::Result<Vec<u8>> {
        let Some(mut file) = self.file.take() else {
            return Ok(std::mem::take(&mut self.mem));
        };
        let on_disk = self.len - self.mem.len() as u64;
        let mut body = Vec::with_capacity(self.len as usize);
        file.flush().await?;
        file.seek(io::SeekFrom::Start(0)).await?;
        (&mut file).take(on_disk).read_to_end(&mut body).await?;
        if body.len() as u64 != on_disk {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spool file is shorter than what was written to it",
            ));
        }
        body.extend_from_slice(&self.mem);
        Ok(body)
    }
}

/// A new file in `dir`, already unlinked.
fn create_unlinked(dir: &Path) -> io::Result<tokio::fs::File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "{}-{}.spool",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(tokio::fs::File::from_std(file))
}

/// How many spooled bodies may be read back into memory at once.
#[derive(Clone, Debug)]
pub struct LargeBodies {
    slots: Arc<Semaphore>,
}

impl LargeBodies {
    /// Two: parsing and storing is CPU and disk bound, so more at once
    /// only adds memory, not throughput, on a small machine.
    pub const DEFAULT: usize = 2;

    pub fn new(slots: usize) -> LargeBodies {
        LargeBodies {
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }

    /// The body in memory, with a slot held while it is if it was spooled;
    /// keep the permit until the body is stored.
    pub async fn read(&self, spool: Spool) -> io::Result<(Vec<u8>, Option<OwnedSemaphorePermit>)> {
        let permit = if spool.is_spooled() {
            Some(
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| io::Error::other("the server is shutting down"))?,
            )
        } else {
            None
        };
        Ok((spool.into_vec().await?, permit))
    }
}

impl Default for LargeBodies {
    fn default() -> LargeBodies {
        LargeBodies::new(LargeBodies::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_bodies_stay_in_memory_and_large_ones_go_to_an_unlinked_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig {
            dir: Some(dir.path().to_owned()),
            threshold: 1000,
        };
        let mut small = config.spool();
        small.push(b"hello").await.unwrap();
        assert!(!small.is_spooled());
        assert_eq!(small.into_vec().await.unwrap(), b"hello");

        let mut large = config.spool();
        let mut expected = Vec::new();
        for i in 0..50_000u32 {
            let line = format!("line {i}\r\n");
            expected.extend_from_slice(line.as_bytes());
            large.push(line.as_bytes()).await.unwrap();
        }
        assert!(large.is_spooled());
        assert_eq!(large.len(), expected.len() as u64);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file is unlinked at once"
        );
        let bodies = LargeBodies::new(1);
        let (body, permit) = bodies.read(large).await.unwrap();
        assert!(permit.is_some());
        assert_eq!(body, expected);
    }
}
