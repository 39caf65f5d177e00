//! FETCH and UID FETCH (RFC 9051 §6.4.5), with CONDSTORE's CHANGEDSINCE
//! and MODSEQ (RFC 7162), QRESYNC's VANISHED (EARLIER), BINARY (RFC 3516)
//! and OBJECTID (RFC 8474).
//!
//! Metadata comes from the Store's entries and parsed structure; message
//! bytes are read only for the items that need them. A non-PEEK body fetch
//! sets \Seen (in a read-write mailbox) before the response is built.

use super::selected::{absent_uids, uid_set};
use super::Session;
use crate::parse::{FetchAttribute, Section, SectionPart, SequenceSet};
use crate::response;
use base64::Engine;
use tern_store::message::MimePart;
use tern_store::{Email, KeywordOp, MessageEntry, ModSeq};

impl Session {
    pub(super) async fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SequenceSet,
        items: &[FetchAttribute],
        changed_since: Option<u64>,
        vanished: bool,
    ) {
        // CHANGEDSINCE and the MODSEQ item enable CONDSTORE (RFC 7162 §3.1).
        if changed_since.is_some() || items.contains(&FetchAttribute::ModSeq) {
            self.enable_condstore();
        }
        if !self.check_numbers(tag, set, uid) {
            return;
        }
        let account = self.account_id();
        let Some(sel) = self.selected() else { return };
        let (mailbox, read_only) = (sel.mailbox.id, sel.read_only);
        let uids = sel.resolve(set, uid);
        let store = self.srv.store.clone();
        let listed = self.listed_entries(&uids);
        let mut entries = match listed {
            Some(e) => e,
            None => match store.messages(account, mailbox, &uids).await {
                Ok(e) => e,
                Err(e) => return self.store_error(tag, e),
            },
        };
        if let Some(since) = changed_since {
            entries.retain(|e| e.modseq.0 > since);
            if vanished {
                // A VANISHED the client asked for is never silently left out.
                let changes = match store.mailbox_changes(account, mailbox, ModSeq(since)).await {
                    Ok(c) => c,
                    Err(e) => return self.store_error(tag, e),
                };
                if changes.incomplete {
                    // Below the retention floor: see `absent_uids`.
                    if let Some(sel) = self.selected() {
                        let max = sel.mailbox.uid_next.0.saturating_sub(1);
                        let ranges = set.resolve(max).unwrap_or_default();
                        if let Some(gone) = absent_uids(&ranges, &sel.uids, max) {
                            self.untagged(&format!("VANISHED (EARLIER) {gone}"));
                        }
                    }
                } else {
                    let max = uids
                        .last()
                        .map_or(0, |u| u.0)
                        .max(changes.expunged.last().map_or(0, |u| u.0));
                    let in_set = set.resolve(max).unwrap_or_default();
                    let gone: Vec<_> = changes
                        .expunged
                        .into_iter()
                        .filter(|u| in_set.iter().any(|&(a, b)| u.0 >= a && u.0 <= b))
                        .collect();
                    if !gone.is_empty() {
                        self.untagged(&format!("VANISHED (EARLIER) {}", uid_set(&gone)));
                    }
                }
            }
        }
        // Implicit \Seen, before anything is written (RFC 9051 §6.4.5).
        let sets_seen = !read_only && items.iter().any(sets_seen);
        // The messages whose \Seen this FETCH set: their new FLAGS (and
        // MODSEQ under CONDSTORE) come with the answer unasked.
        let mut newly_seen = Vec::new();
        if sets_seen {
            let unseen: Vec<_> = entries
                .iter()
                .filter(|e| !e.has_keyword("\\Seen"))
                .map(|e| e.uid)
                .collect();
            if !unseen.is_empty() {
                match store
                    .set_keywords(
                        account,
                        mailbox,
                        &unseen,
                        KeywordOp::Add,
                        &["\\Seen".to_string()],
                        None,
                    )
                    .await
                {
                    Ok(r) => {
                        // Reported below with the FETCH: the sync after it
                        // must not repeat it.
                        self.note_own_changes(&r.updated, true);
                        newly_seen = r.updated.iter().map(|u| u.uid).collect();
                        for u in r.updated {
                            if let Some(e) = entries.iter_mut().find(|e| e.uid == u.uid) {
                                *e = u;
                            }
                        }
                    }
                    Err(e) => return self.store_error(tag, e),
                }
            }
        }
        // What FLAGS shows: \Recent where it is (IMAP4rev1), and no keyword
        // the client was not told of in an untagged FLAGS first.
        if items.contains(&FetchAttribute::Flags) || sets_seen {
            if let Some(sel) = self.selected_mut() {
                if let Some(flags) = sel.announce(entries.iter().flat_map(|e| e.keywords.iter())) {
                    self.conn.out.extend_from_slice(flags.as_bytes());
                }
            }
            if let Some(sel) = self.selected() {
                for e in entries.iter_mut() {
                    e.keywords = sel.shown_flags(e.uid, &e.keywords);
                }
            }
        }
        let needs_email = items.iter().any(|i| {
            matches!(
                i,
                FetchAttribute::Envelope
                    | FetchAttribute::Body
                    | FetchAttribute::BodyStructure
                    | FetchAttribute::BodySection { .. }
                    | FetchAttribute::Binary { .. }
                    | FetchAttribute::BinarySize { .. }
                    | FetchAttribute::Rfc822Header
                    | FetchAttribute::Rfc822Text
            )
        });
        let needs_raw = items.iter().any(needs_raw_bytes);
        let (condstore, utf8) = (self.condstore, self.utf8 || self.rev2);
        // Parsed metadata for every message in one round trip.
        let mut emails: Vec<Option<tern_store::Email>> = if needs_email {
            let ids: Vec<_> = entries.iter().map(|e| e.email_id).collect();
            match store.emails(account, &ids).await {
                Ok(e) => e,
                Err(e) => return self.store_error(tag, e),
            }
        } else {
            vec![None; entries.len()]
        };
        for (index, entry) in entries.iter().enumerate() {
            let Some(seq) = self.selected().and_then(|s| s.seq(entry.uid)) else {
                continue;
            };
            let email = emails[index].take();
            // A large message wanted whole (or a range of it) goes out in
            // chunks, never held in memory whole.
            let streamed = needs_raw
                && entry.size > STREAM_ABOVE
                && items
                    .iter()
                    .all(|i| !needs_raw_bytes(i) || whole_body(i).is_some());
            // The bytes are read by the entry's blob id: RFC822 needs no
            // parse, only the bytes.
            // A message expunged meanwhile (NotFound) is left out; any other
            // store error fails the command with NO rather than hiding a
            // message from the client.
            let raw = if needs_raw && !streamed {
                match store.read_blob(account, &entry.blob_id).await {
                    Ok(bytes) => Some(bytes),
                    Err(tern_store::StoreError::NotFound { .. }) => None,
                    Err(e) => return self.store_error(tag, e),
                }
            } else {
                None
            };
            // A streamed message is probed before anything of it is
            // written, so one expunged meanwhile is left out like any other.
            let gone = if streamed {
                match store.read_blob_range(account, &entry.blob_id, 0, 1).await {
                    Ok(first) => first.is_empty(),
                    Err(tern_store::StoreError::NotFound { .. }) => true,
                    Err(e) => return self.store_error(tag, e),
                }
            } else {
                needs_raw && raw.is_none()
            };
            if (needs_email && email.is_none()) || gone {
                // Expunged while we were reading: say nothing of it.
                continue;
            }
            let mut out = format!("* {seq} FETCH (").into_bytes();
            let mut first = true;
            let mut sep = |out: &mut Vec<u8>| {
                if !first {
                    out.push(b' ');
                }
                first = false;
            };
            if uid && !items.contains(&FetchAttribute::Uid) {
                sep(&mut out);
                out.extend_from_slice(format!("UID {}", entry.uid).as_bytes());
            }
            for item in items {
                sep(&mut out);
                if let Some((name, partial)) = whole_body(item).filter(|_| streamed) {
                    out.extend_from_slice(name.as_bytes());
                    let (start, len) = partial_range(&mut out, entry.size, partial);
                    self.conn.out.append(&mut out);
                    if let Err(why) = self
                        .stream_literal(account, &entry.blob_id, start, len)
                        .await
                    {
                        // The literal's length is promised and cannot be
                        // kept: the connection must end here.
                        tracing::warn!("imap {}: streaming a message: {why}", self.peer);
                        self.conn.out.clear();
                        self.closing = true;
                        return;
                    }
                    continue;
                }
                write_item(&mut out, item, entry, email.as_ref(), raw.as_deref(), utf8);
            }
            let seen_now = newly_seen.contains(&entry.uid);
            if seen_now && !items.contains(&FetchAttribute::Flags) {
                sep(&mut out);
                out.extend_from_slice(b"FLAGS ");
                response::flags(&mut out, &entry.keywords);
            }
            // MODSEQ comes unasked with CHANGEDSINCE, and under CONDSTORE
            // with a flag change (RFC 7162 §3.1.2, §3.1.4.1).
            if (changed_since.is_some() || (condstore && seen_now))
                && !items.contains(&FetchAttribute::ModSeq)
            {
                sep(&mut out);
                out.extend_from_slice(format!("MODSEQ ({})", entry.modseq).as_bytes());
            }
            out.extend_from_slice(b")\r\n");
            self.conn.out.extend_from_slice(&out);
            if self.conn.out.len() > 1 << 20 {
                // Large results go out as they are built.
                if self.flush().await.is_err() {
                    return;
                }
            }
        }
        // Expunges must not be announced during FETCH by number (§7.5.1).
        self.sync(uid).await;
        self.tagged(tag, "OK", "FETCH completed");
    }
}

/// Messages above this size, fetched whole or by byte range, are sent in
/// chunks of [`STREAM_CHUNK`] straight from the Store.
const STREAM_ABOVE: u64 = 1 << 20;
const STREAM_CHUNK: usize = 256 * 1024;

impl Session {
    /// Writes ` {len}\r\n` and `len` bytes of the blob from `start`, a
    /// chunk at a time. The caller probed the blob before writing anything
    /// of the message; one that vanishes after that (its last copy expunged
    /// and collected mid-stream) leaves the literal short, which the caller
    /// answers by ending the connection.
    async fn stream_literal(
        &mut self,
        account: tern_store::AccountId,
        blob_id: &tern_store::BlobId,
        start: u64,
        len: u64,
    ) -> Result<(), String> {
        let store = self.srv.store.clone();
        let mut sent = 0u64;
        let mut header = Some(format!(" {{{len}}}\r\n"));
        while sent < len || header.is_some() {
            let want = (len - sent).min(STREAM_CHUNK as u64) as usize;
            let chunk = if want == 0 {
                Vec::new()
            } else {
                let chunk = store
                    .read_blob_range(account, blob_id, start + sent, want)
                    .await
                    .map_err(|e| e.to_string())?;
                if chunk.is_empty() {
                    return Err("the message ended before its recorded size".into());
                }
                chunk
            };
            if let Some(h) = header.take() {
                self.conn.out.extend_from_slice(h.as_bytes());
            }
            let n = chunk.len().min(want);
            self.conn.out.extend_from_slice(&chunk[..n]);
            sent += n as u64;
            self.flush().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Items that need the message's bytes.
fn needs_raw_bytes(item: &FetchAttribute) -> bool {
    matches!(
        item,
        FetchAttribute::BodySection { .. }
            | FetchAttribute::Binary { .. }
            | FetchAttribute::BinarySize { .. }
            | FetchAttribute::Rfc822
            | FetchAttribute::Rfc822Header
            | FetchAttribute::Rfc822Text
    )
}

/// For an item that is the whole message or a byte range of it (BODY[],
/// BODY.PEEK[]<o.n>, RFC822): its name in the response and the range.
fn whole_body(item: &FetchAttribute) -> Option<(&'static str, Option<(u64, u64)>)> {
    match item {
        FetchAttribute::Rfc822 => Some(("RFC822", None)),
        FetchAttribute::BodySection {
            section, partial, ..
        } if section.part.is_empty() && section.what.is_none() => Some(("BODY[]", *partial)),
        _ => None,
    }
}

/// [`apply_partial`] for a message of `size` bytes not in memory: writes
/// the `<origin>` and returns the (start, length) to send.
fn partial_range(out: &mut Vec<u8>, size: u64, partial: Option<(u64, u64)>) -> (u64, u64) {
    match partial {
        None => (0, size),
        Some((offset, len)) => {
            out.extend_from_slice(format!("<{offset}>").as_bytes());
            let start = offset.min(size);
            (start, len.min(size - start))
        }
    }
}

fn sets_seen(item: &FetchAttribute) -> bool {
    matches!(
        item,
        FetchAttribute::BodySection { peek: false, .. }
            | FetchAttribute::Binary { peek: false, .. }
            | FetchAttribute::Rfc822
            | FetchAttribute::Rfc822Text
    )
}

fn write_item(
    out: &mut Vec<u8>,
    item: &FetchAttribute,
    e: &MessageEntry,
    email: Option<&Email>,
    raw: Option<&[u8]>,
    utf8: bool,
) {
    use FetchAttribute::*;
    let raw = raw.unwrap_or_default();
    match item {
        Uid => out.extend_from_slice(format!("UID {}", e.uid).as_bytes()),
        Flags => {
            out.extend_from_slice(b"FLAGS ");
            response::flags(out, &e.keywords);
        }
        SaveDate => {
            // NIL for a message saved before Tern kept the date (RFC 8514
            // §4.2 allows NIL where the date is not known).
            out.extend_from_slice(b"SAVEDATE ");
            match e.saved_at {
                Some(t) => response::date_time(out, t),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        InternalDate => {
            out.extend_from_slice(b"INTERNALDATE ");
            response::date_time(out, e.received_at);
        }
        Rfc822Size => out.extend_from_slice(format!("RFC822.SIZE {}", e.size).as_bytes()),
        ModSeq => out.extend_from_slice(format!("MODSEQ ({})", e.modseq).as_bytes()),
        EmailId => out.extend_from_slice(format!("EMAILID (M{})", e.email_id).as_bytes()),
        ThreadId => out.extend_from_slice(format!("THREADID (T{})", e.thread_id).as_bytes()),
        Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            if let Some(email) = email {
                response::envelope(out, &email.envelope, utf8);
            }
        }
        Body | BodyStructure => {
            out.extend_from_slice(if matches!(item, Body) {
                b"BODY "
            } else {
                b"BODYSTRUCTURE "
            });
            if let Some(email) = email {
                response::body_structure(
                    out,
                    &email.structure,
                    matches!(item, BodyStructure),
                    utf8,
                );
            }
        }
        Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            literal(out, raw);
        }
        Rfc822Header => {
            let end = email.map_or(0, |m| m.structure.body_start).min(raw.len());
            out.extend_from_slice(b"RFC822.HEADER ");
            literal(out, &raw[..end]);
        }
        Rfc822Text => {
            let start = email.map_or(0, |m| m.structure.body_start).min(raw.len());
            out.extend_from_slice(b"RFC822.TEXT ");
            literal(out, &raw[start..]);
        }
        BodySection {
            section, partial, ..
        } => {
            let bytes = email
                .and_then(|m| section_bytes(raw, &m.structure, section))
                .unwrap_or_default();
            out.extend_from_slice(b"BODY[");
            section_name(out, section);
            out.push(b']');
            let slice = apply_partial(out, &bytes, *partial);
            out.push(b' ');
            literal(out, slice);
        }
        Binary { part, partial, .. } => {
            let decoded = email.and_then(|m| binary_bytes(raw, &m.structure, part));
            out.extend_from_slice(format!("BINARY[{}]", dotted(part)).as_bytes());
            match decoded {
                None => out.extend_from_slice(b" NIL"),
                Some(bytes) => {
                    let slice = apply_partial(out, &bytes, *partial);
                    out.push(b' ');
                    if slice.contains(&0) {
                        out.push(b'~');
                    }
                    literal(out, slice);
                }
            }
        }
        BinarySize { part } => {
            let size = email
                .and_then(|m| binary_bytes(raw, &m.structure, part))
                .map_or(0, |b| b.len());
            out.extend_from_slice(format!("BINARY.SIZE[{}] {size}", dotted(part)).as_bytes());
        }
    }
}

fn literal(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// `<origin>` in the response and the requested slice (RFC 9051 §6.4.5).
fn apply_partial<'a>(out: &mut Vec<u8>, bytes: &'a [u8], partial: Option<(u64, u64)>) -> &'a [u8] {
    match partial {
        None => bytes,
        Some((offset, len)) => {
            out.extend_from_slice(format!("<{offset}>").as_bytes());
            let start = (offset as usize).min(bytes.len());
            let end = start.saturating_add(len as usize).min(bytes.len());
            &bytes[start..end]
        }
    }
}

fn dotted(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn section_name(out: &mut Vec<u8>, s: &Section) {
    let mut name = dotted(&s.part);
    if let Some(what) = &s.what {
        if !name.is_empty() {
            name.push('.');
        }
        match what {
            SectionPart::Header => name.push_str("HEADER"),
            SectionPart::Text => name.push_str("TEXT"),
            SectionPart::Mime => name.push_str("MIME"),
            SectionPart::HeaderFields(f) => name.push_str(&format!(
                "HEADER.FIELDS ({})",
                f.join(" ").to_ascii_uppercase()
            )),
            SectionPart::HeaderFieldsNot(f) => name.push_str(&format!(
                "HEADER.FIELDS.NOT ({})",
                f.join(" ").to_ascii_uppercase()
            )),
        }
    }
    out.extend_from_slice(name.as_bytes());
}

/// The part a section path names (RFC 9051 §6.4.5 part numbering): in a
/// multipart, children from 1; in a single part, 1 is the part itself; a
/// message/rfc822 part is entered to number its message's parts.
fn find_part<'a>(root: &'a MimePart, path: &[u32]) -> Option<&'a MimePart> {
    let mut cur = root;
    for (i, &n) in path.iter().enumerate() {
        let container = if i == 0 {
            cur
        } else {
            cur.message.as_ref().map(|m| &m.structure).unwrap_or(cur)
        };
        if i > 0 && cur.message.is_none() && !cur.media_type.eq_ignore_ascii_case("multipart") {
            return None;
        }
        cur = if container.media_type.eq_ignore_ascii_case("multipart") {
            container.children.get(n as usize - 1)?
        } else if n == 1 {
            container
        } else {
            return None;
        };
    }
    Some(cur)
}

/// The bytes of a body section.
fn section_bytes(raw: &[u8], root: &MimePart, s: &Section) -> Option<Vec<u8>> {
    let slice = |a: usize, b: usize| {
        raw.get(a.min(raw.len())..b.min(raw.len()))
            .map(<[u8]>::to_vec)
    };
    let part = if s.part.is_empty() {
        root
    } else {
        find_part(root, &s.part)?
    };
    // HEADER and TEXT of a part address the message inside it.
    let message = if s.part.is_empty() {
        Some(root)
    } else {
        part.message.as_ref().map(|m| &m.structure)
    };
    match &s.what {
        None if s.part.is_empty() => Some(raw.to_vec()),
        None => slice(part.body_start, part.body_end),
        Some(SectionPart::Mime) => slice(part.header_start, part.body_start),
        Some(SectionPart::Header) => message.and_then(|m| slice(m.header_start, m.body_start)),
        Some(SectionPart::Text) => {
            message.and_then(|m| slice(m.body_start, m.body_end.max(m.body_start)))
        }
        Some(SectionPart::HeaderFields(names)) => message
            .and_then(|m| slice(m.header_start, m.body_start))
            .map(|h| header_fields(&h, names, true)),
        Some(SectionPart::HeaderFieldsNot(names)) => message
            .and_then(|m| slice(m.header_start, m.body_start))
            .map(|h| header_fields(&h, names, false)),
    }
}

/// The header fields named (or, with `keep` false, all others), then the
/// blank line (RFC 9051: HEADER.FIELDS includes the delimiting blank line).
fn header_fields(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut include = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        if trimmed.is_empty() {
            break;
        }
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name).trim().to_string();
            include = names.iter().any(|n| n.eq_ignore_ascii_case(&name)) == keep;
        }
        if include {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// BINARY: a leaf part's content with its transfer encoding undone.
fn binary_bytes(raw: &[u8], root: &MimePart, path: &[u32]) -> Option<Vec<u8>> {
    let part = if path.is_empty() {
        root
    } else {
        find_part(root, path)?
    };
    if part.media_type.eq_ignore_ascii_case("multipart") && !path.is_empty() {
        return None;
    }
    let body = raw.get(part.body_start.min(raw.len())..part.body_end.min(raw.len()))?;
    if path.is_empty() {
        return Some(raw.to_vec());
    }
    match part
        .encoding
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("base64") => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD.decode(clean).ok()
        }
        Some("quoted-printable") => Some(quoted_printable(body)),
        _ => Some(body.to_vec()),
    }
}

/// Quoted-printable decoding (RFC 2045 §6.7), line by line: trailing
/// blanks are transport padding and go (rule 3), a line then ending in `=`
/// is a soft break (rule 5, so `=` followed by blanks is one too), `=XX` is
/// an octet; a malformed `=` is kept as it is.
fn quoted_printable(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut rest = s;
    while !rest.is_empty() {
        let (line, ending, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = &rest[..i];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                (line, true, &rest[i + 1..])
            }
            None => (rest, false, &rest[rest.len()..]),
        };
        rest = next;
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let line = &line[..end];
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            if line[i] == b'=' {
                if let (Some(h), Some(l)) = (
                    line.get(i + 1).and_then(|&b| hex(b)),
                    line.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(line[i]);
            i += 1;
        }
        if ending && !soft {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_store::message::parse_message;

    const NESTED: &[u8] = b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nfirst\r\n\
--a\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n--b\r\nContent-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n\r\n--a--\r\n";

    fn section(part: &[u32], what: Option<SectionPart>) -> Section {
        Section {
            part: part.to_vec(),
            what,
        }
    }

    #[test]
    fn sections_slice_the_stored_bytes() {
        let p = parse_message(NESTED);
        let s = |part: &[u32], what| {
            String::from_utf8(section_bytes(NESTED, &p.structure, &section(part, what)).unwrap())
                .unwrap()
        };
        assert_eq!(s(&[1], None), "first");
        assert_eq!(
            s(&[1], Some(SectionPart::Mime)),
            "Content-Type: text/plain\r\n\r\n"
        );
        assert!(s(&[2], Some(SectionPart::Header)).starts_with("Subject: inner\r\n"));
        assert_eq!(s(&[2, 1], None), "caf=C3=A9");
        assert_eq!(
            s(&[], Some(SectionPart::HeaderFields(vec!["subject".into()]))),
            "Subject: outer\r\n\r\n"
        );
        assert!(s(
            &[],
            Some(SectionPart::HeaderFieldsNot(vec!["subject".into()]))
        )
        .starts_with("Content-Type: multipart/mixed"));
        assert!(section_bytes(NESTED, &p.structure, &section(&[3], None)).is_none());
        assert!(section_bytes(NESTED, &p.structure, &section(&[1, 1, 1], None)).is_none());
    }

    #[test]
    fn binary_undoes_transfer_encodings() {
        let p = parse_message(NESTED);
        assert_eq!(
            binary_bytes(NESTED, &p.structure, &[2, 1]).unwrap(),
            "café".as_bytes()
        );
        assert_eq!(
            binary_bytes(NESTED, &p.structure, &[2, 2]).unwrap(),
            [0, 1, 2]
        );
        assert_eq!(quoted_printable(b"a=3Db=\r\nc=ZZ"), b"a=bc=ZZ");
        // Trailing blanks are padding; `=` then blanks is a soft break;
        // an encoded blank at the end stays (RFC 2045 §6.7).
        assert_eq!(
            quoted_printable(b"today.  =20\r\nsoft =  \r\nbreak  \r\nend"),
            b"today.   \r\nsoft break\r\nend"
        );
    }
}
