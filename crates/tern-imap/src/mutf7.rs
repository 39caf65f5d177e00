//! Modified UTF-7 (RFC 3501 §5.1.3): how IMAP4rev1 clients spell non-ASCII
//! mailbox names. `&` starts a base64 run of UTF-16 (with `,` for `/`),
//! `-` ends it, and `&-` is a literal `&`. IMAP4rev2 and UTF8=ACCEPT
//! clients use UTF-8 instead (RFC 9051 §5.1, RFC 6855).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes a UTF-8 name for a client that expects modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        let mut bits = 0u32;
        let mut nbits = 0;
        for b in bytes {
            bits = (bits << 8) | u32::from(b);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
            }
        }
        if nbits > 0 {
            out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
        }
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decodes a modified UTF-7 name; `None` if it is not valid modified UTF-7
/// (the client then gets a clear NO, never a mangled name).
pub fn decode(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.bytes().peekable();
    while let Some(b) = chars.next() {
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return None;
            }
            out.push(b as char);
            continue;
        }
        if chars.peek() == Some(&b'-') {
            chars.next();
            out.push('&');
            continue;
        }
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut units: Vec<u16> = Vec::new();
        let mut pending_byte: Option<u8> = None;
        let mut closed = false;
        for c in chars.by_ref() {
            if c == b'-' {
                closed = true;
                break;
            }
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                let byte = ((bits >> nbits) & 0xff) as u8;
                match pending_byte.take() {
                    None => pending_byte = Some(byte),
                    Some(high) => units.push(u16::from_be_bytes([high, byte])),
                }
            }
        }
        // RFC 3501: the run must end with '-', hold whole UTF-16 units, leave
        // only zero padding bits, and not encode what could be ASCII.
        if !closed || pending_byte.is_some() || units.is_empty() || (bits & ((1 << nbits) - 1)) != 0
        {
            return None;
        }
        let text = String::from_utf16(&units).ok()?;
        if text.chars().any(|c| (' '..='~').contains(&c)) {
            return None;
        }
        out.push_str(&text);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (utf8, utf7) in [
            ("INBOX", "INBOX"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("😀", "&2D3eAA-"),
        ] {
            assert_eq!(encode(utf8), utf7, "{utf8}");
            assert_eq!(decode(utf7).as_deref(), Some(utf8), "{utf7}");
        }
    }

    #[test]
    fn invalid_input_is_refused() {
        for bad in [
            "&",
            "&AB",
            "&ZeVnLIqe",
            "&AGE-",
            "&!!-",
            "&-&Zm",
            "Grüße",
            "&2D0-",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
