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

    /// Appends the wire form of `chunk` to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        for &b in chunk {
            if self.done {
                return;
            }
            if self.at_line_start && b == b'.' {
                out.push(b'.');
            }
            match b {
                b'\n' => {
                    if !self.prev_cr {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.end_of_line();
                    self.prev_cr = false;
                    continue;
                }
                b'\r' => {
                    if self.prev_cr {
                        self.line_empty = false;
                    }
                    self.prev_cr = true;
                    self.at_line_start = false;
                    out.push(b'\r');
                    continue;
                }
                _ => {}
            }
            self.prev_cr = false;
            self.at_line_start = false;
            self.line_empty = false;
            out.push(b);
        }
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
