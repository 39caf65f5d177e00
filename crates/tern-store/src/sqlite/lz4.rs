//! LZ4 blocks (the block format of lz4's `doc/lz4_Block_format.md`) through
//! LZ4's C library, for the search index's folded text and the stored
//! header blocks.
//!
//! Why the C library (which `lz4-sys` builds and links) rather than a Rust
//! one: after a dictionary, its high-compression (HC) mode takes text to
//! 0.29 of its size where `lz4_flex` reaches 0.37, and it decodes a block
//! that refers into a dictionary lying right before the output as fast as
//! a block without one, where `lz4_flex` is 1.7× slower (BENCHMARKS.md,
//! issue 10).
//!
//! Every function here is safe to call with any input: the C functions
//! used are LZ4's bounds-checked ones, which never read outside the input
//! and dictionary nor write outside the output capacity they are given,
//! whatever the input holds; lengths are checked before they become C
//! ints.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};

// Links the C library that defines the functions below.
use lz4_sys as _;

unsafe extern "C" {
    // lz4hc.h, LZ4 1.10.
    fn LZ4_createStreamHC() -> *mut c_void;
    fn LZ4_freeStreamHC(stream: *mut c_void) -> c_int;
    fn LZ4_resetStreamHC_fast(stream: *mut c_void, level: c_int);
    fn LZ4_loadDictHC(stream: *mut c_void, dictionary: *const c_char, size: c_int) -> c_int;
    fn LZ4_attach_HC_dictionary(working: *mut c_void, dictionary: *const c_void);
    fn LZ4_compress_HC_continue(
        stream: *mut c_void,
        src: *const c_char,
        dst: *mut c_char,
        src_size: c_int,
        dst_capacity: c_int,
    ) -> c_int;
    // lz4.h, LZ4 1.10.
    fn LZ4_compressBound(input_size: c_int) -> c_int;
    fn LZ4_decompress_safe_usingDict(
        src: *const c_char,
        dst: *mut c_char,
        src_size: c_int,
        dst_capacity: c_int,
        dictionary: *const c_char,
        dictionary_size: c_int,
    ) -> c_int;
}

/// HC level 4: 0.294 of the text after a dictionary at 56 MB/s, against
/// 0.292 at level 9 (the library's default) at 46 MB/s.
const LEVEL: c_int = 4;

/// The most bytes compressed at once (LZ4's own limit is about 2 GB).
const MAX_INPUT: usize = 256 << 20;

/// An HC compression state (about 256 KiB), one per thread, reused.
struct StreamHc(*mut c_void);

impl Drop for StreamHc {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `LZ4_createStreamHC`, is not null,
        // and is freed once, here.
        unsafe { LZ4_freeStreamHC(self.0) };
    }
}

impl StreamHc {
    /// A new state at [`LEVEL`]; None if the library cannot allocate one.
    fn new() -> Option<StreamHc> {
        // SAFETY: no arguments; null on failure, checked. A new state is
        // valid for `LZ4_resetStreamHC_fast`.
        let state = unsafe { LZ4_createStreamHC() };
        if state.is_null() {
            return None;
        }
        // SAFETY: `state` is a live HC state.
        unsafe { LZ4_resetStreamHC_fast(state, LEVEL) };
        Some(StreamHc(state))
    }
}

/// Dictionaries at least this long are loaded into a state of their own
/// once per thread, which each compression then refers to
/// (`LZ4_attach_HC_dictionary`): loading 32 KiB into the HC tables for
/// every block took 7.5% of `store-bench`'s CPU. Shorter ones are loaded
/// each time.
const ATTACH_FROM: usize = 8 * 1024;

/// A dictionary loaded into a state of its own; the state refers to
/// `bytes`, which stay where they are (a `Vec`'s buffer does not move).
struct Loaded {
    bytes: Vec<u8>,
    stream: StreamHc,
}

thread_local! {
    static STREAM: RefCell<Option<StreamHc>> = const { RefCell::new(None) };
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

/// The state holding `dictionary` loaded, made on this thread's first use
/// of it (replacing another); null if the library cannot allocate one.
/// Valid until the next call on this thread.
fn loaded(dictionary: &[u8]) -> *mut c_void {
    LOADED.with(|loaded| {
        let mut loaded = loaded.borrow_mut();
        if loaded.as_ref().is_none_or(|l| l.bytes != dictionary) {
            *loaded = None;
            let Some(stream) = StreamHc::new() else {
                return std::ptr::null_mut();
            };
            let bytes = dictionary.to_vec();
            // SAFETY: `stream.0` is a live state at LEVEL; `bytes` is live
            // for its length and is kept, unmoved and unchanged, beside the
            // state that refers to it for as long as the state exists.
            unsafe { LZ4_loadDictHC(stream.0, bytes.as_ptr().cast(), bytes.len() as c_int) };
            *loaded = Some(Loaded { bytes, stream });
        }
        loaded.as_ref().map_or(std::ptr::null_mut(), |l| l.stream.0)
    })
}

/// `text` as one LZ4 block compressed after `dictionary` (may be empty),
/// with the text's length first (four bytes, little-endian); None if the
/// text is too long or the library could not allocate its state.
pub(crate) fn compress(text: &[u8], dictionary: &[u8]) -> Option<Vec<u8>> {
    if text.len() > MAX_INPUT || dictionary.len() > MAX_INPUT {
        return None;
    }
    let (text_size, dictionary_size) = (text.len() as c_int, dictionary.len() as c_int);
    // SAFETY: a pure function of its argument.
    let bound = unsafe { LZ4_compressBound(text_size) };
    let bound = usize::try_from(bound).ok().filter(|b| *b > 0)?;
    let mut out = vec![0u8; 4 + bound];
    out[..4].copy_from_slice(&(text.len() as u32).to_le_bytes());
    let mut attached = None;
    if dictionary.len() >= ATTACH_FROM {
        let loaded = loaded(dictionary);
        if loaded.is_null() {
            return None;
        }
        attached = Some(loaded);
    }
    let written = STREAM.with(|stream| {
        let mut stream = stream.borrow_mut();
        if stream.is_none() {
            *stream = StreamHc::new();
        }
        let Some(StreamHc(state)) = stream.as_ref() else {
            return 0;
        };
        // SAFETY: `state` is a live HC state owned by this thread, and so
        // is `attached`, which holds the same dictionary loaded and stays
        // as it is until this thread's next call. The dictionary and the
        // text are borrowed for the whole of these calls (the state refers
        // to them, or to `attached`, only until the next reset); the
        // output has `bound` bytes after its length, which is
        // `LZ4_compressBound` of the text, so the compression fits.
        unsafe {
            LZ4_resetStreamHC_fast(*state, LEVEL);
            match attached {
                Some(loaded) => LZ4_attach_HC_dictionary(*state, loaded.cast_const()),
                None if dictionary_size > 0 => {
                    LZ4_loadDictHC(*state, dictionary.as_ptr().cast(), dictionary_size);
                }
                None => {}
            }
            LZ4_compress_HC_continue(
                *state,
                text.as_ptr().cast(),
                out.as_mut_ptr().add(4).cast(),
                text_size,
                bound as c_int,
            )
        }
    });
    let written = usize::try_from(written)
        .ok()
        .filter(|w| *w > 0 || text.is_empty())?;
    out.truncate(4 + written);
    Some(out)
}

/// The length a block written by [`compress`] claims, and the block
/// after it; None if it is shorter than its length field.
pub(crate) fn split_size(block: &[u8]) -> Option<(usize, &[u8])> {
    let (size, rest) = block.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*size) as usize, rest))
}

/// Decompresses `block` (without its length) into `buf[prefix..]`, whose
/// length is the text's, with `buf[..prefix]` as the dictionary, the way
/// the C decoder is fastest; false unless it fills `buf[prefix..]` exactly.
pub(crate) fn decompress_after_prefix(block: &[u8], buf: &mut [u8], prefix: usize) -> bool {
    let Some(capacity) = buf.len().checked_sub(prefix) else {
        return false;
    };
    let (Ok(src_size), Ok(dst_capacity), Ok(dictionary_size)) = (
        c_int::try_from(block.len()),
        c_int::try_from(capacity),
        c_int::try_from(prefix),
    ) else {
        return false;
    };
    let base = buf.as_mut_ptr();
    // SAFETY: `block` is live for `src_size` bytes; `buf` holds `prefix +
    // capacity` bytes and is borrowed mutably for the call: the decoder
    // writes at most `dst_capacity` of them from `base + prefix` and reads
    // back no further than `base` (the dictionary, directly before).
    let written = unsafe {
        LZ4_decompress_safe_usingDict(
            block.as_ptr().cast(),
            base.add(prefix).cast(),
            src_size,
            dst_capacity,
            base.cast_const().cast(),
            dictionary_size,
        )
    };
    usize::try_from(written) == Ok(capacity)
}

/// Decompresses `block` (without its length) into `out`, whose length is
/// the text's, after `dictionary` kept elsewhere (slower than
/// [`decompress_after_prefix`]: for short blocks); false unless it fills
/// `out` exactly.
pub(crate) fn decompress_with_dictionary(block: &[u8], out: &mut [u8], dictionary: &[u8]) -> bool {
    let (Ok(src_size), Ok(dst_capacity), Ok(dictionary_size)) = (
        c_int::try_from(block.len()),
        c_int::try_from(out.len()),
        c_int::try_from(dictionary.len()),
    ) else {
        return false;
    };
    // SAFETY: `block` and `dictionary` are live for their lengths, `out`
    // is borrowed mutably for its length, which bounds the writes; the
    // three do not overlap (`out` is a unique borrow).
    let written = unsafe {
        LZ4_decompress_safe_usingDict(
            block.as_ptr().cast(),
            out.as_mut_ptr().cast(),
            src_size,
            dst_capacity,
            dictionary.as_ptr().cast(),
            dictionary_size,
        )
    };
    usize::try_from(written) == Ok(out.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(seed: u64, words: usize) -> Vec<u8> {
        let mut next = crate::conformance::xorshift(seed);
        let vocabulary = ["the", "keeper", "lighthouse", "of", "Grüße", "\r\n", "a"];
        (0..words)
            .map(|_| vocabulary[(next() % vocabulary.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes()
    }

    #[test]
    fn blocks_come_back_with_and_without_a_dictionary() {
        let dictionary = text(1, 2000);
        for (i, words) in [0, 1, 10, 300, 5000].into_iter().enumerate() {
            let original = text(i as u64 + 2, words);
            // None, one loaded each time, one loaded once and attached.
            for dictionary in [&[][..], &dictionary[..1000], &dictionary[..]] {
                let block = compress(&original, dictionary).unwrap();
                let (size, rest) = split_size(&block).unwrap();
                assert_eq!(size, original.len());
                let mut buf = dictionary.to_vec();
                buf.resize(dictionary.len() + size, 0);
                assert!(decompress_after_prefix(rest, &mut buf, dictionary.len()));
                assert_eq!(&buf[dictionary.len()..], original);
                let mut out = vec![0; size];
                assert!(decompress_with_dictionary(rest, &mut out, dictionary));
                assert_eq!(out, original);
            }
        }
        // Another long dictionary on the same thread takes the first's place.
        let other = text(7, 3000);
        assert!(other.len() >= ATTACH_FROM && dictionary.len() >= ATTACH_FROM);
        let original = text(8, 500);
        for dictionary in [&dictionary, &other, &dictionary] {
            let block = compress(&original, dictionary).unwrap();
            let mut out = vec![0; original.len()];
            assert!(decompress_with_dictionary(
                &block[4..],
                &mut out,
                dictionary
            ));
            assert_eq!(out, original);
        }
        // Text like the dictionary's shrinks further after it.
        let original = text(9, 300);
        let alone = compress(&original, &[]).unwrap().len();
        let after = compress(&original, &dictionary).unwrap().len();
        assert!(after < alone, "{after} after the dictionary, {alone} alone");
    }

    /// Truncated, damaged or wrongly sized blocks, and the wrong
    /// dictionary: refused or decoded within bounds, never a crash.
    #[test]
    fn damaged_blocks_are_refused_without_crashing() {
        let dictionary = text(1, 2000);
        let original = text(3, 800);
        let block = compress(&original, &dictionary).unwrap();
        let rest = &block[4..];
        for cut in 0..rest.len() {
            let mut out = vec![0; original.len()];
            assert!(!decompress_with_dictionary(
                &rest[..cut],
                &mut out,
                &dictionary
            ));
        }
        for at in 0..rest.len() {
            for value in [0u8, 0x0f, 0xf0, 0xff] {
                let mut damaged = rest.to_vec();
                damaged[at] = value;
                let mut buf = dictionary.clone();
                buf.resize(dictionary.len() + original.len(), 0);
                let _ = decompress_after_prefix(&damaged, &mut buf, dictionary.len());
                assert_eq!(buf.len(), dictionary.len() + original.len());
            }
        }
        let mut short = vec![0; original.len() - 1];
        assert!(!decompress_with_dictionary(rest, &mut short, &dictionary));
        let mut long = vec![0; original.len() + 1];
        assert!(!decompress_with_dictionary(rest, &mut long, &dictionary));
        let mut out = vec![0; original.len()];
        let decoded_without = decompress_with_dictionary(rest, &mut out, &[]);
        assert!(!decoded_without || out != original);
        assert!(!decompress_after_prefix(rest, &mut [0; 3], 4));
        assert_eq!(split_size(&[1, 2, 3]), None);
    }
}
