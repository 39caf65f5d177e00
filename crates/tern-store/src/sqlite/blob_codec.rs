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
//! envelope, structure and summary as one JSON array (`email_meta.packed`,
//! schema version 21). A parse is a kilobyte or two, too short for DEFLATE
//! to learn its own field names, so since schema version 22 the stream
//! starts from a preset dictionary ([`PARSE_DICTIONARY`]: the fields in
//! their order, RFC 1950's FDICT idea in a raw stream): 583 bytes a
//! message become 332 (BENCHMARKS.md, issue 10).

use crate::error::{Result, StoreError};
use flate2::{Compress, Compression, FlushCompress, Status};
use std::cell::RefCell;
use std::io::Read;

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

/// Packed parses are a few kilobytes: level 6 takes a tenth off level 1's
/// output there for microseconds.
const PACK_LEVEL: u32 = 6;

/// What a packed parse's DEFLATE stream starts from: JSON in the shape
/// `ParsedMessage` serialises to, values mostly left out. Rows packed with
/// it are read with it: never change it; a better one gets a new
/// [`PackedAs`] value.
const PARSE_DICTIONARY: &[u8] = include_bytes!("parse_dictionary.txt");

/// How a packed text was compressed: the fourth byte of its length field
/// (texts are at most [`MAX_COMPRESSED`], so three bytes hold the length,
/// and schema v21 rows, all plain DEFLATE, have a zero there).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum PackedAs {
    Deflate = 0,
    DeflateAfterParseDictionary = 1,
}

/// The DEFLATE form of `raw`, when it is worth storing instead.
pub fn encode(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < MIN_COMPRESSED || raw.len() > MAX_COMPRESSED {
        return None;
    }
    let compressed = deflate_after(&[], raw, LEVEL)?;
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
            inflate_after(&[], &data, size)
        }
        other => Err(StoreError::Invalid(format!(
            "a blob stored with codec {other}, which this Tern does not know"
        ))),
    }
}

/// An email's parse stored packed (`email_meta.packed`): its length in
/// three little-endian bytes and how it was compressed ([`PackedAs`]) in
/// the fourth, then its DEFLATE form after [`PARSE_DICTIONARY`]; `None`
/// when that would not save an eighth or the text is too long to pack.
pub fn pack(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() > MAX_COMPRESSED {
        return None;
    }
    let compressed = deflate_after(PARSE_DICTIONARY, text, PACK_LEVEL)?;
    if 4 + compressed.len() > text.len() - text.len() / 8 {
        return None;
    }
    let mut packed = (text.len() as u32).to_le_bytes().to_vec();
    packed[3] = PackedAs::DeflateAfterParseDictionary as u8;
    packed.extend_from_slice(&compressed);
    Some(packed)
}

/// The text [`pack`] packed (or schema v21's plain DEFLATE did).
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>> {
    let (&[a, b, c, how], data) = packed
        .split_first_chunk::<4>()
        .ok_or_else(|| StoreError::Invalid("a packed value shorter than its length".into()))?;
    let size = u32::from_le_bytes([a, b, c, 0]) as usize;
    let dictionary: &[u8] = match how {
        h if h == PackedAs::Deflate as u8 => &[],
        h if h == PackedAs::DeflateAfterParseDictionary as u8 => PARSE_DICTIONARY,
        other => {
            return Err(StoreError::Invalid(format!(
                "a packed value compressed in way {other}, which this Tern does not know"
            )))
        }
    };
    inflate_after(dictionary, data, size)
}

/// `data` as raw DEFLATE (RFC 1951) that may refer back into `dictionary`
/// as if it had come first; `dictionary` itself is not in the output.
/// DEFLATE has no preset dictionary of its own (zlib's FDICT is a wrapper
/// around it, which miniz_oxide does not offer), but a stream compressed
/// after the dictionary and a sync flush starts a new block on a byte
/// boundary, its back-references reaching into the dictionary's bytes,
/// however they were encoded: [`inflate_after`] puts them back in front
/// as one stored block.
fn deflate_after(dictionary: &[u8], data: &[u8], level: u32) -> Option<Vec<u8>> {
    thread_local! {
        // A compressor per level, reused: miniz_oxide's state is some
        // 300 KiB, and setting up a new one cost 100 µs, five times the
        // compression of a 1.5 KiB parse.
        static COMPRESSORS: RefCell<Vec<(u32, Compress)>> = const { RefCell::new(Vec::new()) };
    }
    COMPRESSORS.with(|compressors| {
        let mut compressors = compressors.borrow_mut();
        let index = match compressors.iter().position(|(l, _)| *l == level) {
            Some(index) => index,
            None => {
                compressors.push((level, Compress::new(Compression::new(level), false)));
                compressors.len() - 1
            }
        };
        let compressor = &mut compressors[index].1;
        compressor.reset();
        let mut out = Vec::with_capacity(dictionary.len() + data.len() / 2 + 64);
        let mut start = 0;
        if !dictionary.is_empty() {
            compress_all(compressor, dictionary, &mut out, FlushCompress::Sync)?;
            start = out.len();
        }
        compress_all(compressor, data, &mut out, FlushCompress::Finish)?;
        out.drain(..start);
        Some(out)
    })
}

/// Feeds all of `input` to `compressor` and flushes as `flush` says,
/// growing `out` as needed.
fn compress_all(
    compressor: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> Option<()> {
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let (before, written) = (compressor.total_in(), out.len());
        let status = compressor.compress_vec(input, out, flush).ok()?;
        let consumed = usize::try_from(compressor.total_in() - before).ok()?;
        input = &input[consumed..];
        let room_left = out.len() < out.capacity();
        if consumed == 0 && out.len() == written && room_left && status != Status::StreamEnd {
            // No progress with room to spare: the compressor is stuck.
            return None;
        }
        match status {
            Status::StreamEnd => return Some(()),
            // A sync flush is complete once the input is in and the
            // output did not run out (zlib's convention).
            Status::Ok if flush == FlushCompress::Sync && input.is_empty() && room_left => {
                return Some(())
            }
            Status::Ok | Status::BufError => {}
        }
    }
}

/// The `size` bytes [`deflate_after`] compressed after `dictionary` (at
/// most 65,535 bytes: one stored block).
fn inflate_after(dictionary: &[u8], data: &[u8], size: usize) -> Result<Vec<u8>> {
    if size > MAX_COMPRESSED {
        return Err(StoreError::Invalid(format!(
            "a compressed value claims {size} bytes, more than are ever compressed"
        )));
    }
    // A stored block (BFINAL 0, BTYPE 00, LEN, NLEN) holding the dictionary.
    let len = u16::try_from(dictionary.len())
        .map_err(|_| StoreError::Invalid("a dictionary longer than a stored block".into()))?;
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&len.to_le_bytes());
    prefix.extend_from_slice(&(!len).to_le_bytes());
    prefix.extend_from_slice(dictionary);
    let stream: Box<dyn Read + '_> = if dictionary.is_empty() {
        Box::new(data)
    } else {
        Box::new(prefix.as_slice().chain(data))
    };
    let mut decoder = flate2::read::DeflateDecoder::new(stream);
    let inflate_err = |e| StoreError::backend("inflating a stored value", e);
    std::io::copy(
        &mut decoder.by_ref().take(dictionary.len() as u64),
        &mut std::io::sink(),
    )
    .map_err(inflate_err)?;
    let mut out = Vec::with_capacity(size);
    // One byte past the size, so a longer stream is caught.
    decoder
        .take(size as u64 + 1)
        .read_to_end(&mut out)
        .map_err(inflate_err)?;
    if out.len() != size {
        return Err(StoreError::Invalid(format!(
            "a compressed value inflates to {} bytes, not the {size} stored",
            out.len()
        )));
    }
    Ok(out)
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

    /// A parse packed by schema v22 (after [`PARSE_DICTIONARY`]): if this
    /// fails, the dictionary changed, and every row packed with it would
    /// no longer read. Give a new dictionary a new [`PackedAs`] instead.
    #[test]
    fn rows_packed_with_the_parse_dictionary_read_back() {
        let text = br#"[{"date":"Mon, 2 Nov 2026 10:00:00 +0000","subject":"Plans","from":[{"name":"Alice","adl":null,"mailbox":"alice","host":"example.net"}]},{"media_type":"text","media_subtype":"plain"},{"subject":"Plans","preview":"Meet at the lighthouse"}]"#;
        let golden = "ee0000019556390a80400cfc4a5e206861ef03147bb1d86230c2ea0a1bc5c6bf1b\
                      6145025a58a7983007339ddd21053561bb764849b9d921c623ad02c617a354daeef8\
                      52cea563d201bb9b168f6c56628efe1fbb36a4f7374f0a6a40c8090983fc38b07058\
                      2314e604";
        let golden: Vec<u8> = (0..golden.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&golden[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(unpack(&golden).unwrap(), text);
        assert_eq!(unpack(&pack(text).unwrap()).unwrap(), text);
        // Schema v21's rows: plain DEFLATE, a zero fourth byte.
        let mut v21 = (text.len() as u32).to_le_bytes().to_vec();
        v21.extend_from_slice(&deflate_after(&[], text, LEVEL).unwrap());
        assert_eq!(v21[3], 0);
        assert_eq!(unpack(&v21).unwrap(), text);
        let packed = pack(text).unwrap();
        assert!(
            packed.len() * 4 < v21.len() * 3,
            "the dictionary saves a quarter: {} against {}",
            packed.len(),
            v21.len()
        );
        // Unknown ways, and a stream read with the wrong dictionary.
        let mut unknown = golden.clone();
        unknown[3] = 9;
        assert!(unpack(&unknown).is_err());
        let mut without = golden;
        without[3] = PackedAs::Deflate as u8;
        assert!(unpack(&without).map_or(true, |t| t != text));
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

    /// The compressor is reused: each stream still stands alone, whatever
    /// came before it on the thread.
    #[test]
    fn streams_from_a_reused_compressor_stand_alone() {
        let mut next = crate::conformance::xorshift(3);
        let texts: Vec<Vec<u8>> = (0..50)
            .map(|i| {
                let words: Vec<String> = (0..200 + i * 37)
                    .map(|_| format!("w{}", next() % 300))
                    .collect();
                words.join(" ").into_bytes()
            })
            .collect();
        for text in &texts {
            let stored = encode(text).expect("text shrinks");
            assert_eq!(
                &decode(stored, DEFLATE, Some(text.len() as i64)).unwrap(),
                text
            );
            let packed = pack(text).expect("text shrinks");
            assert_eq!(&unpack(&packed).unwrap(), text);
        }
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
