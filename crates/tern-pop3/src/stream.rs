//! Sending a message as a POP3 multi-line response (RFC 1939 §3): lines end
//! in CRLF (a stored bare LF becomes CRLF), a line that starts with "." gets
//! another "." in front, and the response ends with CRLF "." CRLF. The
//! message is read from the Store in chunks, so its size does not matter.

/// Bytes read from the Store per step of a RETR.
pub const CHUNK: usize = 64 * 1024;

/// The byte-stuffing state carried from one chunk to the next.
pub struct Stuffer {
    at_line_start: bool,
    /// Nothing but (at most) a CR on the current line so far.
    line_empty: bool,
    prev_cr: bool,
    /// For TOP: `Some(n)` sends the header, the blank line and n body lines.
    body_lines_left: Option<u32>,
    in_body: bool,
    done: bool,
}

impl Stuffer {
    pub fn new(top_lines: Option<u32>) -> Stuffer {
        Stuffer {
            at_line_start: true,
            line_empty: true,
            prev_cr: false,
            body_lines_left: top_lines,
            in_body: false,
            done: false,
        }
    }

    /// True once TOP has sent what it should; the rest of the message is
    /// not needed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends the wire form of `chunk` to `out`, a line at a time: runs
    /// of ordinary bytes are copied whole.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut rest = chunk;
        while !rest.is_empty() && !self.done {
            if self.at_line_start && rest[0] == b'.' {
                out.push(b'.');
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.content(&rest[..i], out);
                    if !self.prev_cr {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.prev_cr = false;
                    self.end_of_line();
                    rest = &rest[i + 1..];
                }
                None => {
                    self.content(rest, out);
                    rest = &[];
                }
            }
        }
    }

    /// Bytes of a line, without its LF.
    fn content(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let Some(&last) = bytes.last() else { return };
        out.extend_from_slice(bytes);
        // A line stays "empty" only while it holds nothing but one CR.
        if bytes != b"\r" || self.prev_cr {
            self.line_empty = false;
        }
        self.at_line_start = false;
        self.prev_cr = last == b'\r';
    }

    fn end_of_line(&mut self) {
        let empty = self.line_empty;
        self.at_line_start = true;
        self.line_empty = true;
        let Some(left) = self.body_lines_left.as_mut() else {
            return;
        };
        if self.in_body {
            *left = left.saturating_sub(1);
        } else if empty {
            // The blank line ends the header; it is sent, then the body lines.
            self.in_body = true;
        }
        if self.in_body && *left == 0 {
            self.done = true;
        }
    }

    /// Ends the response: a final CRLF if the message lacked one, then ".".
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[&[u8]], top: Option<u32>) -> Vec<u8> {
        let mut s = Stuffer::new(top);
        let mut out = Vec::new();
        for chunk in input {
            s.push(chunk, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn dots_are_stuffed_and_line_ends_made_crlf() {
        assert_eq!(
            run(&[b"Subject: x\r\n\r\n.hidden\r\n..two\r\nend"], None),
            b"Subject: x\r\n\r\n..hidden\r\n...two\r\nend\r\n.\r\n"
        );
        assert_eq!(run(&[b"a\nb\n"], None), b"a\r\nb\r\n.\r\n");
        // Across chunk boundaries: CR in one chunk, LF in the next; a dot at the start of a chunk.
        assert_eq!(run(&[b"a\r", b"\n.b\r\n"], None), b"a\r\n..b\r\n.\r\n");
        assert_eq!(run(&[b""], None), b".\r\n");
    }

    /// The wire form computed the slow, obvious way, for comparison.
    fn reference(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut lines: Vec<&[u8]> = message.split(|&b| b == b'\n').collect();
        let last = lines.pop().unwrap_or_default();
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        if !last.is_empty() {
            if last.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(last);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    #[test]
    fn any_message_in_any_chunks_matches_the_reference() {
        let mut seed = 5u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..3000 {
            let len = next() % 60;
            let message: Vec<u8> = (0..len).map(|_| b".\r\nab"[next() % 5]).collect();
            let mut chunks = Vec::new();
            let mut rest = &message[..];
            while !rest.is_empty() {
                let n = 1 + next() % rest.len();
                chunks.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(
                run(&chunks, None),
                reference(&message),
                "{:?} in {:?}",
                String::from_utf8_lossy(&message),
                chunks
            );
        }
    }

    #[test]
    fn top_sends_the_header_and_n_lines() {
        let m: &[u8] = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n";
        assert_eq!(run(&[m], Some(0)), b"A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(run(&[m], Some(2)), b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n");
        assert_eq!(run(&[m], Some(99)), [m, b".\r\n"].concat());
        // No blank line at all: everything is header.
        assert_eq!(run(&[b"A: 1\r\n"], Some(0)), b"A: 1\r\n.\r\n");
    }
}
