//! The MIME tree (RFC 2045/2046) as IMAP BODYSTRUCTURE and BODY[section]
//! need it: every part's media type and fields plus exact byte offsets into
//! the raw message, so a section is served by slicing the stored blob.
//!
//! mail-parser finds the parts and their offsets; this module turns its
//! flat part list into a tree, reads the fields IMAP wants verbatim from
//! the raw header, and enforces the limits below. The offsets follow
//! RFC 2046 §5.1.1: the line break before a boundary delimiter belongs to
//! the delimiter, so a body never ends with that CRLF.

use mail_parser::{Encoding, Message, MessagePart as ParserPart, MimeHeaders, PartType};

use super::envelope::build_envelope;
use super::header::{last_value, raw_fields};
use super::{Disposition, EmbeddedMessage, MimePart};

/// Deepest nesting of multiparts and embedded messages we describe; a part
/// deeper than this is shown as one opaque application/octet-stream leaf
/// (its bytes are all still there). It keeps recursion over the tree
/// shallow, and keeps the stored JSON (about two JSON levels per MIME level)
/// well under serde_json's 128-level recursion limit, so what we write we
/// can read back. Real mail rarely nests beyond 5.
pub(super) const MAX_MIME_DEPTH: usize = 32;

/// Most parts described in one message; later siblings are left out of the
/// tree (their bytes stay in the parent's body). A 50 MB message made of
/// empty parts would otherwise store millions of entries per delivery.
pub(super) const MAX_MIME_PARTS: usize = 5_000;

/// Builds [`MimePart`] trees over one raw message.
pub(super) struct StructureBuilder<'a> {
    raw: &'a [u8],
    parts_left: usize,
}

/// What a part turned out to contain.
enum Shape {
    Multipart(Vec<MimePart>),
    Message(Box<EmbeddedMessage>),
    Leaf,
    /// Structure we do not descend into (limits reached).
    Opaque,
}

impl<'a> StructureBuilder<'a> {
    pub(super) fn new(raw: &'a [u8]) -> Self {
        StructureBuilder {
            raw,
            parts_left: MAX_MIME_PARTS,
        }
    }

    /// The root part of a parsed message (`message.parts` is non-empty).
    pub(super) fn root(&mut self, message: &Message<'_>) -> MimePart {
        let whole = Bounds {
            start: 0,
            end: self.raw.len(),
        };
        self.part(message, 0, whole, 0, false)
    }

    /// Describes part `id` of `message`, which must lie within `bounds`
    /// (its parent's body).
    fn part(
        &mut self,
        message: &Message<'_>,
        id: usize,
        bounds: Bounds,
        depth: usize,
        in_digest: bool,
    ) -> MimePart {
        let Some(p) = message.parts.get(id) else {
            // Callers only pass ids they checked; an empty leaf beats a panic.
            return plain_text_part(self.raw, bounds.end, bounds.end, bounds.end);
        };
        self.parts_left = self.parts_left.saturating_sub(1);
        let (header_start, body_start, body_end) = bounds.clamp(p);
        let body = Bounds {
            start: body_start,
            end: body_end,
        };
        let fields = raw_fields(&self.raw[header_start..body_start]);

        let declared = p.content_type().map(|ct| {
            (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().map(str::to_ascii_lowercase),
            )
        });
        let declared_subtype = |of_type: &str| match &declared {
            Some((t, Some(s))) if t == of_type => Some(s.clone()),
            _ => None,
        };

        let can_descend = depth < MAX_MIME_DEPTH && self.parts_left > 0;
        let shape = match &p.body {
            PartType::Multipart(ids) if !ids.is_empty() => {
                if can_descend {
                    let is_digest = declared_subtype("multipart").as_deref() == Some("digest");
                    let mut children = Vec::new();
                    for &child in ids {
                        let child = child as usize;
                        // Children always come after their parent in
                        // mail-parser's list; insisting on it rules out
                        // cycles whatever the list holds.
                        if child <= id || child >= message.parts.len() {
                            continue;
                        }
                        if self.parts_left == 0 && !children.is_empty() {
                            break;
                        }
                        children.push(self.part(message, child, body, depth + 1, is_digest));
                    }
                    if children.is_empty() {
                        Shape::Leaf
                    } else {
                        Shape::Multipart(children)
                    }
                } else {
                    Shape::Opaque
                }
            }
            // An embedded message is only described when mail-parser parsed
            // it in place: base64 or quoted-printable (RFC 2046 §5.2.1 allows
            // only 7bit, 8bit and binary) make it parse the decoded bytes,
            // whose offsets do not point into our blob.
            PartType::Message(inner) if p.encoding == Encoding::None && !inner.parts.is_empty() => {
                if can_descend {
                    Shape::Message(Box::new(self.embedded(inner, body, depth)))
                } else {
                    Shape::Opaque
                }
            }
            _ => Shape::Leaf,
        };

        let (media_type, media_subtype) = match &shape {
            // RFC 2046 §5.1.3: an unrecognised multipart subtype is treated
            // as mixed.
            Shape::Multipart(_) => (
                "multipart".to_string(),
                declared_subtype("multipart").unwrap_or_else(|| "mixed".to_string()),
            ),
            Shape::Message(_) => (
                "message".to_string(),
                declared_subtype("message")
                    .filter(|s| s == "global")
                    .unwrap_or_else(|| "rfc822".to_string()),
            ),
            Shape::Opaque => ("application".to_string(), "octet-stream".to_string()),
            Shape::Leaf => leaf_type(declared.as_ref(), in_digest),
        };
        let params = if matches!(shape, Shape::Opaque) {
            Vec::new()
        } else {
            p.content_type()
                .and_then(|ct| ct.attributes())
                .map(params_of)
                .unwrap_or_default()
        };
        let disposition = p.content_disposition().map(|cd| Disposition {
            kind: cd.ctype().to_ascii_lowercase(),
            params: cd.attributes().map(params_of).unwrap_or_default(),
        });
        let language = last_value(&fields, "content-language")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();

        let (children, message) = match shape {
            Shape::Multipart(children) => (children, None),
            Shape::Message(embedded) => (Vec::new(), Some(embedded)),
            Shape::Leaf | Shape::Opaque => (Vec::new(), None),
        };
        MimePart {
            media_type,
            media_subtype,
            params,
            id: last_value(&fields, "content-id"),
            description: last_value(&fields, "content-description"),
            encoding: last_value(&fields, "content-transfer-encoding"),
            md5: last_value(&fields, "content-md5"),
            disposition,
            language,
            location: last_value(&fields, "content-location"),
            header_start,
            body_start,
            body_end,
            body_size: body_end - body_start,
            body_lines: count_lines(&self.raw[body_start..body_end]),
            children,
            message,
        }
    }

    /// The message carried in a message/rfc822 part whose body is `body`.
    fn embedded(&mut self, inner: &Message<'_>, body: Bounds, depth: usize) -> EmbeddedMessage {
        let mut structure = self.part(inner, 0, body, depth + 1, false);
        // The embedded message is exactly the enclosing part's body, so
        // BODY[n] and BODY[n.HEADER] + BODY[n.TEXT] agree. (mail-parser may
        // end the inner root early, or count the delimiter's CRLF as the
        // inner header's blank line; the clamp took care of the latter.)
        structure.header_start = body.start;
        structure.body_end = body.end;
        structure.body_size = structure.body_end - structure.body_start;
        structure.body_lines = count_lines(&self.raw[structure.body_start..structure.body_end]);
        let header = &self.raw[structure.header_start..structure.body_start];
        EmbeddedMessage {
            envelope: build_envelope(&raw_fields(header)),
            structure,
        }
    }
}

/// A byte range of the raw message that a part must stay inside.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    start: usize,
    end: usize,
}

impl Bounds {
    /// mail-parser's offsets for `p`, clamped into these bounds so that
    /// `header_start <= body_start <= body_end` always holds, every slice a
    /// reader takes is in range, and a child never leaks out of its parent
    /// (mail-parser can, e.g., take the CRLF of a boundary delimiter as the
    /// blank line ending a header).
    fn clamp(self, p: &ParserPart<'_>) -> (usize, usize, usize) {
        let header_start = (p.offset_header as usize).clamp(self.start, self.end);
        let body_start = (p.offset_body as usize).clamp(header_start, self.end);
        let body_end = (p.offset_end as usize).clamp(body_start, self.end);
        (header_start, body_start, body_end)
    }
}

/// A text/plain leaf over the given range of `raw`, with no fields: what an
/// unparseable message becomes.
pub(super) fn plain_text_part(
    raw: &[u8],
    header_start: usize,
    body_start: usize,
    body_end: usize,
) -> MimePart {
    MimePart {
        media_type: "text".to_string(),
        media_subtype: "plain".to_string(),
        params: Vec::new(),
        id: None,
        description: None,
        encoding: None,
        md5: None,
        disposition: None,
        language: Vec::new(),
        location: None,
        header_start,
        body_start,
        body_end,
        body_size: body_end - body_start,
        body_lines: count_lines(&raw[body_start..body_end]),
        children: Vec::new(),
        message: None,
    }
}

/// The media type of a part with no sub-structure.
fn leaf_type(declared: Option<&(String, Option<String>)>, in_digest: bool) -> (String, String) {
    let owned = |t: &str, s: &str| (t.to_string(), s.to_string());
    match declared {
        // A multipart mail-parser could not split (no boundary parameter, or
        // the boundary never occurs): it keeps the bytes as text, so do we;
        // a multipart with no parts is not valid in BODYSTRUCTURE.
        Some((t, _)) if t == "multipart" => owned("text", "plain"),
        // A message/rfc822 we could not describe (base64/QP-encoded, or
        // empty) cannot be shown as one: IMAP's grammar would then require
        // an envelope and a body. Presented as opaque bytes instead.
        Some((t, Some(s))) if t == "message" && (s == "rfc822" || s == "global") => {
            owned("application", "octet-stream")
        }
        Some((t, Some(s))) if !t.is_empty() && !s.is_empty() => (t.clone(), s.clone()),
        // RFC 2046 §5.1.5: in a digest the default is message/rfc822, which
        // as a leaf becomes opaque for the reason above.
        _ if in_digest => owned("application", "octet-stream"),
        // RFC 2045 §5.2: no (or an invalid) Content-Type means text/plain.
        _ => owned("text", "plain"),
    }
}

/// Content-Type / Content-Disposition parameters, names lowercased. The
/// values are mail-parser's: RFC 2231 continuations joined and charset-
/// decoded, quotes removed.
fn params_of(attributes: &[mail_parser::Attribute<'_>]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
        .collect()
}

/// IMAP body-fld-lines: the line breaks in the encoded body, as Dovecot
/// and UW-IMAP count them. A body part's last line usually has none (the
/// CRLF before a boundary is the delimiter's) and so is not counted.
pub(super) fn count_lines(body: &[u8]) -> usize {
    body.iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{parse_message, MimePart};
    use super::{MAX_MIME_DEPTH, MAX_MIME_PARTS};

    /// Checks the invariants [`MimePart`] documents, over the whole tree.
    pub(in super::super) fn assert_well_formed(raw: &[u8], part: &MimePart) {
        fn walk(raw: &[u8], part: &MimePart, start: usize, end: usize, depth: usize) {
            assert!(depth <= MAX_MIME_DEPTH + 1, "tree deeper than the limit");
            assert!(
                start <= part.header_start,
                "{part:?} starts before its parent's body"
            );
            assert!(part.header_start <= part.body_start);
            assert!(part.body_start <= part.body_end);
            assert!(part.body_end <= end && end <= raw.len());
            assert_eq!(part.body_size, part.body_end - part.body_start);
            assert_eq!(part.media_type == "multipart", !part.children.is_empty());
            assert_eq!(
                part.media_type == "message"
                    && (part.media_subtype == "rfc822" || part.media_subtype == "global"),
                part.message.is_some()
            );
            assert_eq!(part.media_type, part.media_type.to_ascii_lowercase());
            assert_eq!(part.media_subtype, part.media_subtype.to_ascii_lowercase());
            for child in &part.children {
                walk(raw, child, part.body_start, part.body_end, depth + 1);
            }
            if let Some(embedded) = &part.message {
                let inner = &embedded.structure;
                assert_eq!(inner.header_start, part.body_start);
                assert_eq!(inner.body_end, part.body_end);
                walk(raw, inner, part.body_start, part.body_end, depth + 1);
            }
        }
        walk(raw, part, 0, raw.len(), 0);
    }

    /// The part's MIME header and body as text.
    fn slices<'a>(raw: &'a [u8], part: &MimePart) -> (&'a str, &'a str) {
        let text = |a: usize, b: usize| std::str::from_utf8(&raw[a..b]).unwrap();
        (
            text(part.header_start, part.body_start),
            text(part.body_start, part.body_end),
        )
    }

    const NESTED: &str = "From: a@example.com\r
Subject: test\r
Content-Type: multipart/mixed; boundary=\"outer\"\r
\r
preamble\r
--outer\r
Content-Type: multipart/alternative; boundary=inner\r
\r
--inner\r
Content-Type: text/plain; charset=utf-8\r
\r
plain text\r
--inner\r
Content-Type: text/html\r
\r
<p>html</p>\r
--inner--\r
inner epilogue\r
--outer  \r
Content-Type: application/pdf; name=a.pdf\r
Content-Disposition: attachment; filename=\"a.pdf\"\r
Content-Transfer-Encoding: base64\r
Content-ID: <pdf@x>\r
Content-Description: =?utf-8?q?Rechnung_f=C3=BCr_Mai?=\r
Content-Language: de, en\r
\r
QUJD\r
--outer\r
Content-Type: message/rfc822\r
\r
From: x@example.org\r
Subject: inner\r
\r
inner body\r
line2\r
--outer\r
Content-Type: message/rfc822\r
\r
From: y@example.org\r
Content-Type: multipart/mixed; boundary=emb\r
\r
--emb\r
Content-Type: text/plain\r
\r
emb text\r
--emb--\r
--outer--\r
epilogue\r
";

    fn check_nested(raw: &[u8]) {
        // Written with CRLF; the bare-LF variant compares against the same
        // text with CRs removed.
        let lf = !raw.contains(&b'\r');
        let fix = |s: &str| {
            if lf {
                s.replace('\r', "")
            } else {
                s.to_string()
            }
        };
        let parsed = parse_message(raw);
        let root = &parsed.structure;
        assert_well_formed(raw, root);

        assert_eq!(
            slices(raw, root).0,
            fix("From: a@example.com\r\nSubject: test\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n")
        );
        assert_eq!(root.body_end, raw.len());
        assert_eq!(parsed.summary.header_size, root.body_start);
        assert_eq!(
            (root.media_type.as_str(), root.media_subtype.as_str()),
            ("multipart", "mixed")
        );
        assert_eq!(
            root.params,
            vec![("boundary".to_string(), "outer".to_string())]
        );
        assert_eq!(root.children.len(), 4);

        let alt = &root.children[0];
        assert_eq!(alt.media_subtype, "alternative");
        assert_eq!(
            slices(raw, alt),
            (
                fix("Content-Type: multipart/alternative; boundary=inner\r\n\r\n").as_str(),
                fix("--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain text\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\ninner epilogue").as_str()
            )
        );
        let plain = &alt.children[0];
        assert_eq!(
            slices(raw, plain),
            (
                fix("Content-Type: text/plain; charset=utf-8\r\n\r\n").as_str(),
                "plain text"
            )
        );
        assert_eq!((plain.body_size, plain.body_lines), (10, 0));
        assert_eq!(
            plain.params,
            vec![("charset".to_string(), "utf-8".to_string())]
        );
        let html = &alt.children[1];
        assert_eq!(
            slices(raw, html),
            (
                fix("Content-Type: text/html\r\n\r\n").as_str(),
                "<p>html</p>"
            )
        );

        let pdf = &root.children[1];
        assert_eq!(slices(raw, pdf).1, "QUJD");
        assert!(slices(raw, pdf)
            .0
            .starts_with("Content-Type: application/pdf"));
        assert!(slices(raw, pdf)
            .0
            .ends_with(&fix("Content-Language: de, en\r\n\r\n")));
        assert_eq!(
            (pdf.media_type.as_str(), pdf.media_subtype.as_str()),
            ("application", "pdf")
        );
        assert_eq!(pdf.encoding.as_deref(), Some("base64"));
        assert_eq!(pdf.id.as_deref(), Some("<pdf@x>"));
        // Verbatim, as IMAP's body-fld-desc wants it.
        assert_eq!(
            pdf.description.as_deref(),
            Some("=?utf-8?q?Rechnung_f=C3=BCr_Mai?=")
        );
        assert_eq!(pdf.language, vec!["de", "en"]);
        let disposition = pdf.disposition.as_ref().unwrap();
        assert_eq!(disposition.kind, "attachment");
        assert_eq!(
            disposition.params,
            vec![("filename".to_string(), "a.pdf".to_string())]
        );

        let rfc822 = &root.children[2];
        assert_eq!(
            (rfc822.media_type.as_str(), rfc822.media_subtype.as_str()),
            ("message", "rfc822")
        );
        assert_eq!(
            slices(raw, rfc822),
            (
                fix("Content-Type: message/rfc822\r\n\r\n").as_str(),
                fix("From: x@example.org\r\nSubject: inner\r\n\r\ninner body\r\nline2").as_str()
            )
        );
        // Line breaks, as Dovecot counts: "line2" has none of its own.
        assert_eq!(rfc822.body_lines, 4);
        let embedded = rfc822.message.as_ref().unwrap();
        assert_eq!(embedded.envelope.subject.as_deref(), Some("inner"));
        assert_eq!(
            slices(raw, &embedded.structure),
            (
                fix("From: x@example.org\r\nSubject: inner\r\n\r\n").as_str(),
                fix("inner body\r\nline2").as_str()
            )
        );
        assert_eq!(embedded.structure.media_type, "text");
        assert_eq!(embedded.structure.body_lines, 1);

        let rfc822_multi = &root.children[3];
        let embedded = rfc822_multi.message.as_ref().unwrap();
        assert_eq!(embedded.envelope.from[0].mailbox.as_deref(), Some("y"));
        let inner = &embedded.structure;
        assert_eq!(inner.media_subtype, "mixed");
        assert_eq!(
            slices(raw, inner).1,
            fix("--emb\r\nContent-Type: text/plain\r\n\r\nemb text\r\n--emb--")
        );
        assert_eq!(
            slices(raw, &inner.children[0]),
            (fix("Content-Type: text/plain\r\n\r\n").as_str(), "emb text")
        );
    }

    #[test]
    fn nested_offsets_are_exact() {
        check_nested(NESTED.as_bytes());
    }

    #[test]
    fn nested_offsets_are_exact_with_bare_lf() {
        check_nested(NESTED.replace('\r', "").as_bytes());
    }

    #[test]
    fn part_without_header_and_empty_and_unterminated_parts() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nno header\r\n--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b\r\nContent-Type: text/x-log\r\n\r\nno close delimiter";
        let root = parse_message(raw).structure;
        assert_well_formed(raw, &root);
        let [first, empty, last] = &root.children[..] else {
            panic!("three parts expected: {root:?}")
        };
        assert_eq!(slices(raw, first), ("\r\n", "no header"));
        assert_eq!(
            (first.media_type.as_str(), first.media_subtype.as_str()),
            ("text", "plain")
        );
        assert_eq!(slices(raw, empty).1, "");
        assert_eq!(empty.body_lines, 0);
        assert_eq!(slices(raw, last).1, "no close delimiter");
        assert_eq!(last.media_subtype, "x-log");
    }

    #[test]
    fn embedded_message_ending_at_the_delimiter() {
        // The CRLF before "--b--" is the delimiter's, so the inner header
        // has no blank line and the inner body is empty.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n--b--\r\n";
        let root = parse_message(raw).structure;
        assert_well_formed(raw, &root);
        let inner = &root.children[0].message.as_ref().unwrap().structure;
        assert_eq!(slices(raw, inner), ("Subject: x\r\n", ""));
    }

    #[test]
    fn odd_types_stay_describable() {
        // Encoded message/rfc822 (RFC 2046 §5.2.1 forbids it), a multipart
        // without boundary, a type without subtype, and a digest's default.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r
\r
--b\r
Content-Type: message/rfc822\r
Content-Transfer-Encoding: base64\r
\r
U3ViamVjdDogeAoKYm9keQo=\r
--b\r
Content-Type: multipart/alternative\r
\r
no boundary here\r
--b\r
Content-Type: image\r
\r
x\r
--b\r
Content-Type: multipart/digest; boundary=d\r
\r
--d\r
\r
Subject: digest item\r
\r
item body\r
--d--\r
--b--\r
";
        let root = parse_message(raw).structure;
        assert_well_formed(raw, &root);
        let types: Vec<(&str, &str)> = root
            .children
            .iter()
            .map(|p| (p.media_type.as_str(), p.media_subtype.as_str()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("application", "octet-stream"),
                ("text", "plain"),
                ("text", "plain"),
                ("multipart", "digest"),
            ]
        );
        assert_eq!(root.children[0].encoding.as_deref(), Some("base64"));
        let item = &root.children[3].children[0];
        assert_eq!(
            (item.media_type.as_str(), item.media_subtype.as_str()),
            ("message", "rfc822")
        );
        assert_eq!(
            item.message.as_ref().unwrap().envelope.subject.as_deref(),
            Some("digest item")
        );
    }

    #[test]
    fn deep_multipart_nesting_is_cut_at_the_limit() {
        let depth = 300;
        let mut raw = String::from("Subject: deep\r\n");
        for i in 0..depth {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
            ));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\nbottom\r\n");
        for i in (0..depth).rev() {
            raw.push_str(&format!("--b{i}--\r\n"));
        }
        let parsed = parse_message(raw.as_bytes());
        assert_well_formed(raw.as_bytes(), &parsed.structure);
        let mut part = &parsed.structure;
        let mut levels = 0;
        while let Some(child) = part.children.first() {
            part = child;
            levels += 1;
        }
        assert_eq!(levels, MAX_MIME_DEPTH);
        assert_eq!(part.media_type, "application");
        // What we store, we can read back.
        let json = serde_json::to_string(&parsed).unwrap();
        assert_eq!(
            serde_json::from_str::<super::super::ParsedMessage>(&json).unwrap(),
            parsed
        );
    }

    #[test]
    fn deep_message_nesting_neither_overflows_nor_panics() {
        // Each level is 32 bytes; 40 000 levels is 1.3 MB, an ordinary
        // message size. Dropping mail-parser's nested result recursively
        // would overflow the stack here.
        let level = "Content-Type: message/rfc822\r\n\r\n";
        let raw = format!("{}Subject: bottom\r\n\r\nbody\r\n", level.repeat(40_000));
        let parsed = parse_message(raw.as_bytes());
        assert_well_formed(raw.as_bytes(), &parsed.structure);
        let json = serde_json::to_string(&parsed).unwrap();
        assert_eq!(
            serde_json::from_str::<super::super::ParsedMessage>(&json).unwrap(),
            parsed
        );
    }

    #[test]
    fn part_count_is_bounded() {
        let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for _ in 0..(MAX_MIME_PARTS + 100) {
            raw.push_str("--b\r\n\r\nx\r\n");
        }
        raw.push_str("--b--\r\n");
        let parsed = parse_message(raw.as_bytes());
        assert_well_formed(raw.as_bytes(), &parsed.structure);
        assert_eq!(parsed.structure.children.len(), MAX_MIME_PARTS - 1);
    }
}
