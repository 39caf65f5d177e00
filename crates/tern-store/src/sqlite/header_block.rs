//! An email's header block as stored for searching (`email_header`,
//! schema v23): LZ4-compressed after a dictionary of the header fields
//! mail commonly carries (issue 10: a data directory at most twice the
//! mail).
//!
//! SUBJECT, FROM, HEADER and SENT* searches read every header block of a
//! mailbox, so the codec is LZ4 (several GB/s to decompress) rather than
//! DEFLATE, and the blocks sit in their own table, side by side, away from
//! the message blobs. A header block is too short for LZ4 to find much in
//! it alone (Received, DKIM and ARC fields are long but each occurs once or
//! twice), so the stream may refer back into [`HEADER_DICTIONARY`].
//!
//! `header_raw` holds TEXT (rows before schema v23, or a block that would
//! not shrink) or a BLOB: one byte saying how it was packed ([`LZ4_AFTER_DICTIONARY`]),
//! then the length as four little-endian bytes, then the LZ4 block.

use crate::error::{Result, StoreError};
use rusqlite::types::ValueRef;
use std::sync::OnceLock;

/// The first byte of a packed block: LZ4 after [`HEADER_DICTIONARY`].
const LZ4_AFTER_DICTIONARY: u8 = 1;

/// Header blocks longer than this are stored as they are (a block that
/// size is not a header block people search, and not worth the work).
const MAX_PACKED: usize = 1 << 20;

/// Common header fields and values, with the CRLF line ends of mail. Rows
/// packed with it are read with it: never change it (the test
/// `blocks_packed_with_the_dictionary_read_back` says so); a better one
/// gets a new first byte.
fn header_dictionary() -> &'static [u8] {
    static DICTIONARY: OnceLock<Vec<u8>> = OnceLock::new();
    DICTIONARY.get_or_init(|| {
        // Kept with LF ends in the repository, so that what an editor shows
        // is what is stored.
        include_str!("header_dictionary.txt")
            .replace('\n', "\r\n")
            .into_bytes()
    })
}

/// The packed form of a header block, when it saves an eighth.
pub fn pack(header: &str) -> Option<Vec<u8>> {
    if header.len() > MAX_PACKED {
        return None;
    }
    // The length first, then the block: `lz4::compress` writes both.
    let compressed = super::lz4::compress(header.as_bytes(), header_dictionary())?;
    if 1 + compressed.len() > header.len() - header.len() / 8 {
        return None;
    }
    let mut packed = Vec::with_capacity(1 + compressed.len());
    packed.push(LZ4_AFTER_DICTIONARY);
    packed.extend_from_slice(&compressed);
    Some(packed)
}

/// The header block a `header_raw` value holds, packed or not.
pub fn unpack(value: ValueRef<'_>) -> Result<String> {
    match value {
        ValueRef::Text(text) => Ok(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(packed) => {
            let damaged = |why: &str| StoreError::Invalid(format!("a stored header block {why}"));
            let Some((&how, rest)) = packed.split_first() else {
                return Err(damaged("is empty"));
            };
            if how != LZ4_AFTER_DICTIONARY {
                return Err(damaged(&format!(
                    "is packed in way {how}, unknown to this Tern"
                )));
            }
            let (size, block) = super::lz4::split_size(rest)
                .ok_or_else(|| damaged("is shorter than its length"))?;
            if size > MAX_PACKED {
                return Err(damaged("claims more bytes than are ever packed"));
            }
            let mut bytes = vec![0; size];
            if !super::lz4::decompress_with_dictionary(block, &mut bytes, header_dictionary()) {
                return Err(damaged("does not decompress"));
            }
            String::from_utf8(bytes).map_err(|_| damaged("is not UTF-8"))
        }
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => Err(StoreError::Invalid(
            "a stored header block is not text".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Return-Path: <ann@example.org>\r\n\
        Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n\
        \tby mail.example.test (Tern) with ESMTPS id 4f2a\r\n\
        \tfor <bob@example.test>; Mon, 2 Nov 2026 10:00:00 +0000\r\n\
        DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s1;\r\n\
        \th=from:to:subject:date:message-id;\r\n\
        \tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\
        From: Ann <ann@example.org>\r\n\
        To: Bob <bob@example.test>\r\n\
        Subject: Plans for Tuesday\r\n\
        Date: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
        Message-ID: <4f2a@example.org>\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=\"utf-8\"\r\n\r\n";

    /// A block packed by schema v23: if this fails, the dictionary
    /// changed, and every block packed with it would no longer read.
    #[test]
    fn blocks_packed_with_the_dictionary_read_back() {
        let packed = pack(HEADER).expect("a header block shrinks");
        assert!(
            packed.len() * 2 < HEADER.len(),
            "{} of {}",
            packed.len(),
            HEADER.len()
        );
        assert_eq!(unpack(ValueRef::Blob(&packed)).unwrap(), HEADER);
        assert_eq!(unpack(ValueRef::Text(HEADER.as_bytes())).unwrap(), HEADER);
        let dictionary = header_dictionary();
        assert_eq!(dictionary.len(), 3_157 + 86, "LF ends became CRLF");
        assert!(dictionary.ends_with(b"MIME-Version: 1.0\r\n"));
        let sum = dictionary
            .iter()
            .fold(0u32, |h, &b| h.wrapping_mul(31).wrapping_add(b as u32));
        assert_eq!(sum, 3_799_257_364, "the header dictionary changed");
    }

    /// SUBJECT searches find mail whose header block is packed, stored as
    /// text (before schema v23) or damaged (read from the message).
    #[tokio::test]
    async fn header_searches_read_packed_text_and_damaged_blocks() {
        use crate::conformance::{deliver_to, message};
        use crate::SearchKey;
        let (_dir, db, store, a, mb) = crate::sqlite::test_mailbox().await;
        let mut uids = Vec::new();
        for subject in ["Plans packed", "Plans as text", "Plans damaged", "Other"] {
            uids.push(deliver_to(&store, &a, message(subject, "body")).await.uid);
        }
        store.close().await.unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        let blobs: i64 = conn
            .query_row(
                "SELECT count(*) FROM email_header WHERE typeof(header_raw) = 'blob'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(blobs, 4, "every header block is packed");
        let (second, third): (i64, i64) = conn
            .query_row(
                "SELECT min(email_id) + 1, min(email_id) + 2 FROM email_header",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let packed: Vec<u8> = conn
            .query_row(
                "SELECT header_raw FROM email_header WHERE email_id = ?1",
                [second],
                |r| r.get(0),
            )
            .unwrap();
        let text = unpack(ValueRef::Blob(&packed)).unwrap();
        assert!(text.contains("Subject: Plans as text\r\n"), "{text:?}");
        conn.execute(
            "UPDATE email_header SET header_raw = ?1 WHERE email_id = ?2",
            rusqlite::params![text, second],
        )
        .unwrap();
        conn.execute(
            "UPDATE email_header SET header_raw = x'01ffffff7f00' WHERE email_id = ?1",
            [third],
        )
        .unwrap();
        drop(conn);
        let store = crate::sqlite::test_store(&db);
        let subject = |value: &str| SearchKey::Header {
            name: "subject".into(),
            value: value.into(),
        };
        let found = store.search(a.id, mb.id, &subject("PLANS")).await.unwrap();
        assert_eq!(found, uids[..3]);
        let found = store
            .search(a.id, mb.id, &subject("damaged"))
            .await
            .unwrap();
        assert_eq!(found, [uids[2]]);
        store.close().await.unwrap();
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let packed = pack(HEADER).unwrap();
        for cut in 0..packed.len() {
            let _ = unpack(ValueRef::Blob(&packed[..cut]));
        }
        for i in 0..packed.len() {
            for bit in [0x01, 0x80] {
                let mut damaged = packed.clone();
                damaged[i] ^= bit;
                if let Ok(text) = unpack(ValueRef::Blob(&damaged)) {
                    assert!(text.len() <= MAX_PACKED);
                }
            }
        }
        assert!(unpack(ValueRef::Blob(&[])).is_err());
        assert!(unpack(ValueRef::Blob(&[7, 0, 0, 0, 0])).is_err());
        assert!(unpack(ValueRef::Null).is_err());
        assert_eq!(pack("Subject: hi\r\n\r\n"), None, "too short to shrink");
    }
}
