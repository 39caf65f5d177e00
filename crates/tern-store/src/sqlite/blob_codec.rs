//! Message blobs stored compressed (issue 10: a data directory at most
//! twice the mail it holds). Mail is mostly text, which DEFLATE (RFC 1951)
//! takes to well under half; bytes that would not shrink by an eighth —
//! attachments already compressed, tiny messages — are kept as they came.
//!
//! A `blob` row says how its `data` is stored in `codec`: [`RAW`] (the
//! bytes as received) or [`DEFLATE`], with `size` then holding the length
//! before compression. Rows written before schema version 20 are all raw.
//! A range read of a compressed blob inflates the whole blob and slices
//! it; blobs longer than [`MAX_COMPRESSED`] are never compressed, so that
//! costs at most that much, and large messages keep SQLite's incremental
//! reads. Uploads (JMAP, webmail) stay raw: they are mostly attachments,
//! and short-lived.
//!
//! The same DEFLATE packs an email's parse ([`pack`], [`unpack`]): its
//! envelope, structure and summary as one JSON array, about 2.5 times
//! smaller than the three texts (`email_meta.packed`, schema version 21).

use crate::error::{Result, StoreError};
use std::io::{Read, Write};

/// `codec` of bytes stored as received.
pub const RAW: i64 = 0;
/// `codec` of raw DEFLATE data.
pub const DEFLATE: i64 = 1;

/// Shorter blobs are not worth it (a header block alone).
const MIN_COMPRESSED: usize = 512;
/// Longer blobs stay raw, so a range read never inflates more than this.
pub const MAX_COMPRESSED: usize = 4 << 20;
/// zlib's level 1: about 0.43 of plain text against 0.41 at level 6, in
/// a third less CPU on the delivery path.
const LEVEL: u32 = 1;

/// The DEFLATE form of `raw`, when it is worth storing instead.
pub fn encode(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < MIN_COMPRESSED || raw.len() > MAX_COMPRESSED {
        return None;
    }
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(raw.len() / 2),
        flate2::Compression::new(LEVEL),
    );
    encoder.write_all(raw).ok()?;
    let compressed = encoder.finish().ok()?;
    (compressed.len() <= raw.len() - raw.len() / 8).then_some(compressed)
}

/// The bytes as received, from a row's `data`, `codec` and `size`.
pub fn decode(data: Vec<u8>, codec: i64, size: Option<i64>) -> Result<Vec<u8>> {
    match codec {
        RAW => Ok(data),
        DEFLATE => {
            let size = size
                .and_then(|s| usize::try_from(s).ok())
                .ok_or_else(|| StoreError::Invalid("a compressed blob without its size".into()))?;
            if size > MAX_COMPRESSED {
                return Err(StoreError::Invalid(format!(
                    "a compressed blob claims {size} bytes, more than are ever compressed"
                )));
            }
            let mut out = Vec::with_capacity(size);
            // One byte past the size, so a longer stream is caught.
            flate2::read::DeflateDecoder::new(&data[..])
                .take(size as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| StoreError::backend("inflating a stored message", e))?;
            if out.len() != size {
                return Err(StoreError::Invalid(format!(
                    "a compressed blob inflates to {} bytes, not the {size} stored",
                    out.len()
                )));
            }
            Ok(out)
        }
        other => Err(StoreError::Invalid(format!(
            "a blob stored with codec {other}, which this Tern does not know"
        ))),
    }
}

/// A text stored packed (an email's parse, `email_meta.packed`): its
/// length as four little-endian bytes, then its DEFLATE form; `None` when
/// that would not save an eighth or the text is too long to pack.
pub fn pack(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() > MAX_COMPRESSED {
        return None;
    }
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(4 + text.len() / 2),
        flate2::Compression::new(LEVEL),
    );
    encoder.write_all(text).ok()?;
    let compressed = encoder.finish().ok()?;
    if 4 + compressed.len() > text.len() - text.len() / 8 {
        return None;
    }
    let mut packed = (text.len() as u32).to_le_bytes().to_vec();
    packed.extend_from_slice(&compressed);
    Some(packed)
}

/// The text [`pack`] packed.
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>> {
    let (size, data) = packed
        .split_first_chunk::<4>()
        .ok_or_else(|| StoreError::Invalid("a packed value shorter than its length".into()))?;
    decode(
        data.to_vec(),
        DEFLATE,
        Some(u32::from_le_bytes(*size) as i64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_text_comes_back_and_damage_is_an_error() {
        let text = br#"[{"from":[{"name":"Ann","address":"ann@example.org"}]},{"type":"text"},{"subject":"hi","from":[{"name":"Ann","address":"ann@example.org"}]}]"#.repeat(3);
        let packed = pack(&text).expect("JSON shrinks");
        assert!(
            packed.len() < text.len() / 2,
            "{} of {}",
            packed.len(),
            text.len()
        );
        assert_eq!(unpack(&packed).unwrap(), text);
        assert!(pack(b"[1,2]").is_none(), "too short to shrink");
        assert!(unpack(&packed[..3]).is_err());
        assert!(unpack(&packed[..packed.len() - 4]).is_err());
        let mut wrong_size = packed.clone();
        wrong_size[0] ^= 1;
        assert!(unpack(&wrong_size).is_err());
        let mut huge = packed;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(&huge).is_err());
    }

    #[test]
    fn text_is_compressed_and_comes_back_whole() {
        let raw = "Subject: hello\r\n\r\nThe quick brown fox jumps over the lazy dog.\r\n"
            .repeat(40)
            .into_bytes();
        let stored = encode(&raw).expect("text shrinks");
        assert!(
            stored.len() < raw.len() / 4,
            "{} of {}",
            stored.len(),
            raw.len()
        );
        assert_eq!(
            decode(stored, DEFLATE, Some(raw.len() as i64)).unwrap(),
            raw
        );
        assert_eq!(decode(raw.clone(), RAW, None).unwrap(), raw);
    }

    #[test]
    fn what_does_not_shrink_stays_raw() {
        assert_eq!(encode(b"Subject: short\r\n\r\nhi\r\n"), None);
        // Bytes with no redundancy (a stand-in for a compressed attachment).
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..8192)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(encode(&noise), None);
        assert_eq!(encode(&vec![b'a'; MAX_COMPRESSED + 1]), None);
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let raw = b"a".repeat(4096);
        let stored = encode(&raw).unwrap();
        // Wrong size, either way.
        assert!(decode(stored.clone(), DEFLATE, Some(4095)).is_err());
        assert!(decode(stored.clone(), DEFLATE, Some(4097)).is_err());
        assert!(decode(stored.clone(), DEFLATE, None).is_err());
        assert!(decode(stored.clone(), DEFLATE, Some(-1)).is_err());
        assert!(decode(stored, DEFLATE, Some(i64::MAX)).is_err());
        // Not DEFLATE at all, and an unknown codec.
        assert!(decode(b"\xff\xff\xff".to_vec(), DEFLATE, Some(10)).is_err());
        assert!(decode(raw, 7, None).is_err());
    }
}
