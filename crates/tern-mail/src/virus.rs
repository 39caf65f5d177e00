//! Virus scanning with ClamAV's clamd (`[virus]`), as a [`Screen`]: every
//! message is streamed to clamd with `zINSTREAM` (clamd(8): chunks each
//! preceded by a 4-byte big-endian length, a zero length ending the
//! stream; the reply `stream: OK` or `stream: <name> FOUND`, NUL-ended).
//! An infected message is refused for everyone (554 5.7.1); when clamd
//! cannot answer, `on_failure` says whether mail waits (451 4.7.0) or
//! flows unscanned.

use crate::screen::{Screen, ScreenInput, Screening};
use async_trait::async_trait;
use std::time::Duration;
use tern_core::config::{OnFailure, VirusConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes per INSTREAM chunk.
const CHUNK: usize = 64 * 1024;
/// The longest reply read from clamd.
const MAX_REPLY: usize = 4096;

/// The clamd client.
pub struct Clamd {
    config: VirusConfig,
}

/// What clamd said about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    Clean,
    /// The signature's name.
    Infected(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("connecting to clamd at {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("talking to clamd: {0}")]
    Io(#[from] std::io::Error),
    #[error("clamd: {0}")]
    Refused(String),
    #[error("clamd took longer than {0} s")]
    Timeout(u64),
}

impl Clamd {
    pub fn new(config: VirusConfig) -> Clamd {
        Clamd { config }
    }

    /// Scans `data`.
    pub async fn scan(&self, data: &[u8]) -> Result<Scan, ScanError> {
        let limit = Duration::from_secs(self.config.timeout_secs);
        let scan = async {
            let address = self.config.clamd.as_str();
            if address.contains('/') {
                let stream = tokio::net::UnixStream::connect(address)
                    .await
                    .map_err(|e| ScanError::Connect(address.into(), e))?;
                instream(stream, data).await
            } else {
                let stream = tokio::net::TcpStream::connect(address)
                    .await
                    .map_err(|e| ScanError::Connect(address.into(), e))?;
                instream(stream, data).await
            }
        };
        tokio::time::timeout(limit, scan)
            .await
            .map_err(|_| ScanError::Timeout(self.config.timeout_secs))?
    }
}

/// One `zINSTREAM` exchange over `stream`.
async fn instream(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    data: &[u8],
) -> Result<Scan, ScanError> {
    stream.write_all(b"zINSTREAM\0").await?;
    for chunk in data.chunks(CHUNK) {
        // A chunk is at most CHUNK bytes, so its length fits in a u32.
        stream
            .write_all(&(chunk.len() as u32).to_be_bytes())
            .await?;
        stream.write_all(chunk).await?;
    }
    stream.write_all(&0u32.to_be_bytes()).await?;
    stream.flush().await?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = stream.read(&mut buf).await?;
        reply.extend_from_slice(&buf[..n]);
        if n == 0 || reply.contains(&0) || reply.len() > MAX_REPLY {
            break;
        }
    }
    parse_reply(&reply)
}

/// clamd's answer to a stream scan.
pub fn parse_reply(reply: &[u8]) -> Result<Scan, ScanError> {
    let end = reply.iter().position(|&b| b == 0).unwrap_or(reply.len());
    let text = String::from_utf8_lossy(&reply[..end.min(MAX_REPLY)]);
    let text = text.trim();
    let result = text.strip_prefix("stream:").map(str::trim);
    match result {
        Some("OK") => Ok(Scan::Clean),
        Some(r) if r.ends_with(" FOUND") => {
            let name = r.trim_end_matches(" FOUND").trim();
            Ok(Scan::Infected(name.chars().take(200).collect()))
        }
        _ if text.is_empty() => Err(ScanError::Refused("no answer".into())),
        _ => Err(ScanError::Refused(text.chars().take(200).collect())),
    }
}

#[async_trait]
impl Screen for Clamd {
    fn name(&self) -> &str {
        "clamd"
    }

    async fn screen(&self, input: &ScreenInput<'_>) -> Screening {
        let from = &input.envelope.mail_from;
        if input.raw.len() as u64 > self.config.max_size {
            tracing::info!(
                "virus scan skipped: a message from <{from}> of {} bytes is over virus.max_size",
                input.raw.len()
            );
            return Screening::pass();
        }
        match self.scan(input.raw).await {
            Ok(Scan::Clean) => Screening::pass(),
            Ok(Scan::Infected(name)) => {
                tracing::warn!("virus {name} in a message from <{from}>: refused");
                Screening::refuse(
                    554,
                    "5.7.1",
                    format!("message refused: it contains a virus ({name})"),
                )
            }
            Err(e) => match self.config.on_failure {
                OnFailure::Defer => {
                    tracing::error!("{e}; mail deferred (virus.on_failure = \"defer\")");
                    Screening::refuse(451, "4.7.0", "virus scanner unavailable; try again later")
                }
                OnFailure::Accept => {
                    tracing::error!("{e}; mail accepted unscanned (virus.on_failure = \"accept\")");
                    Screening::pass()
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamd_replies() {
        assert_eq!(parse_reply(b"stream: OK\0").unwrap(), Scan::Clean);
        assert_eq!(
            parse_reply(b"stream: Eicar-Test-Signature FOUND\0").unwrap(),
            Scan::Infected("Eicar-Test-Signature".into())
        );
        assert!(parse_reply(b"INSTREAM size limit exceeded. ERROR\0").is_err());
        assert!(parse_reply(b"").is_err());
        assert!(parse_reply(&[0xff; 9000]).is_err());
    }

    #[tokio::test]
    async fn a_dead_scanner_defers_or_passes_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let clamd = |on_failure| {
            Clamd::new(VirusConfig {
                clamd: socket.display().to_string(),
                on_failure,
                ..VirusConfig::default()
            })
        };
        let envelope = crate::test_support::inbound_envelope();
        let input = ScreenInput {
            raw: b"Subject: x\r\n\r\nhi\r\n",
            envelope: &envelope,
            trace: None,
        };
        let deferred = clamd(OnFailure::Defer).screen(&input).await;
        assert_eq!(deferred.refuse.map(|r| r.0), Some(451));
        let passed = clamd(OnFailure::Accept).screen(&input).await;
        assert_eq!(passed.refuse, None);
    }
}
