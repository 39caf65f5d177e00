//! `tern-imap`: the IMAP server (RFC 9051 IMAP4rev2 and RFC 3501
//! IMAP4rev1).
//!
//! Built so far: [`parse`], the command parser — every command of RFC 9051
//! and RFC 3501 with the extensions Tern offers (CONDSTORE/QRESYNC, MOVE,
//! UIDPLUS, ESEARCH, SEARCHRES, SORT, THREAD, LIST-EXTENDED, LIST-STATUS,
//! SPECIAL-USE, CREATE-SPECIAL-USE, QUOTA, BINARY, MULTIAPPEND, ENABLE, ID,
//! IDLE, COMPRESS, UNSELECT, NAMESPACE) — and [`mutf7`], the modified UTF-7
//! of IMAP4rev1 mailbox names. Sessions come next.

pub mod mutf7;
pub mod parse;
pub mod response;
