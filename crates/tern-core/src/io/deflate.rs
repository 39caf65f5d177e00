//! Raw DEFLATE in both directions over a connection: IMAP's COMPRESS
//! (RFC 4978). Every flush ends the compressed block with a sync flush, so
//! the peer can decode everything written so far; reads inflate what
//! arrives.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much compressed input is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A connection with COMPRESS=DEFLATE active.
pub struct Deflate<S> {
    inner: S,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed bytes read but not yet inflated.
    input: Vec<u8>,
    input_pos: usize,
    /// Compressed bytes produced but not yet written to `inner`.
    output: Vec<u8>,
    /// The peer closed its side.
    eof: bool,
}

impl<S> Deflate<S> {
    pub fn new(inner: S) -> Deflate<S> {
        Deflate {
            inner,
            // RFC 4978 §4: raw deflate, no zlib header.
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::default(), false),
            input: Vec::new(),
            input_pos: 0,
            output: Vec::new(),
            eof: false,
        }
    }

    /// Like [`Deflate::new`], with compressed bytes already read from
    /// `inner` (a client may pipeline its first compressed command right
    /// behind COMPRESS).
    pub fn with_input(inner: S, input: Vec<u8>) -> Deflate<S> {
        Deflate {
            input,
            ..Deflate::new(inner)
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {e}"))
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.input_pos < this.input.len() || this.eof {
                let before_in = this.inflate.total_in();
                let before_out = this.inflate.total_out();
                let dst = buf.initialize_unfilled();
                let status = this
                    .inflate
                    .decompress(&this.input[this.input_pos..], dst, FlushDecompress::Sync)
                    .map_err(other)?;
                let consumed = (this.inflate.total_in() - before_in) as usize;
                let produced = (this.inflate.total_out() - before_out) as usize;
                this.input_pos += consumed;
                buf.advance(produced);
                if produced > 0 || this.eof || status == Status::StreamEnd {
                    return Poll::Ready(Ok(()));
                }
                if consumed == 0 && this.input_pos < this.input.len() && produced == 0 {
                    // Needs more input than we have to make progress.
                    this.input.drain(..this.input_pos);
                    this.input_pos = 0;
                }
            }
            // Read more compressed input.
            if this.input_pos >= this.input.len() {
                this.input.clear();
                this.input_pos = 0;
            }
            let start = this.input.len();
            this.input.resize(start + READ_CHUNK, 0);
            let mut rb = ReadBuf::new(&mut this.input[start..]);
            let result = Pin::new(&mut this.inner).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            this.input.truncate(start + n);
            ready!(result)?;
            if n == 0 {
                this.eof = true;
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Writes out compressed bytes already produced.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.output.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.output.drain(..n);
        }
        Poll::Ready(Ok(()))
    }

    /// Compresses `data` (possibly empty) into `output` with `flush`.
    fn compress(&mut self, mut data: &[u8], flush: FlushCompress) -> io::Result<()> {
        loop {
            let before_in = self.deflate.total_in();
            self.output.reserve(data.len() / 2 + 64);
            self.deflate
                .compress_vec(data, &mut self.output, flush)
                .map_err(other)?;
            let consumed = (self.deflate.total_in() - before_in) as usize;
            data = &data[consumed..];
            // Done when all input is taken and, for a flush, output had room.
            if data.is_empty() && self.output.capacity() > self.output.len() {
                return Ok(());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Keep memory bounded: write out what is pending first.
        if this.output.len() > 64 * 1024 {
            ready!(this.poll_drain(cx))?;
        }
        this.compress(data, FlushCompress::None)?;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.compress(&[], FlushCompress::Sync)?;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_directions_round_trip() {
        let (a, b) = tokio::io::duplex(1024);
        let mut a = Deflate::new(a);
        let mut b = Deflate::new(b);
        let text: Vec<u8> = (0..200_000u32)
            .map(|i| b"abcdefgh\r\n"[(i % 10) as usize])
            .collect();
        let sent = text.clone();
        let writer = tokio::spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.flush().await.unwrap();
            a.write_all(b"second\r\n").await.unwrap();
            a.flush().await.unwrap();
            a
        });
        let mut got = vec![0u8; text.len() + 8];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..text.len()], &text[..]);
        assert_eq!(&got[text.len()..], b"second\r\n");
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_panic() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut b = Deflate::new(b);
        a.write_all(&[0xff; 64]).await.unwrap();
        drop(a);
        let mut buf = [0u8; 16];
        assert!(b.read(&mut buf).await.is_err());
    }
}
