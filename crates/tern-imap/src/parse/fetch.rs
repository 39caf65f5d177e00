//! FETCH data items (RFC 9051 §6.4.5), with BINARY (RFC 3516), MODSEQ
//! (RFC 7162) and OBJECTID's EMAILID/THREADID (RFC 8474).

use super::lexer::Cursor;
use super::ParseError;

/// One thing FETCH should return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttribute {
    Envelope,
    Flags,
    InternalDate,
    Rfc822,
    Rfc822Header,
    Rfc822Size,
    Rfc822Text,
    /// BODY (non-extensible BODYSTRUCTURE).
    Body,
    BodyStructure,
    Uid,
    /// BODY[section]<partial> or BODY.PEEK[...].
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<(u64, u64)>,
    },
    /// BINARY[part]<partial> or BINARY.PEEK[...].
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u64, u64)>,
    },
    BinarySize {
        part: Vec<u32>,
    },
    ModSeq,
    EmailId,
    ThreadId,
    /// SAVEDATE (RFC 8514).
    SaveDate,
}

/// A body section: a part path and what of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// `1.2` → [1, 2]; empty for the whole message.
    pub part: Vec<u32>,
    pub what: Option<SectionPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionPart {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// The FETCH item list: a macro, one item, or a parenthesised list.
pub fn fetch_items(c: &mut Cursor<'_>) -> Result<Vec<FetchAttribute>, ParseError> {
    use FetchAttribute::*;
    if c.keyword("ALL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope]);
    }
    if c.keyword("FAST") {
        return Ok(vec![Flags, InternalDate, Rfc822Size]);
    }
    if c.keyword("FULL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope, Body]);
    }
    if c.peek() == Some(b'(') {
        // An item asked for twice is answered once, as Dovecot does.
        let mut items = c.list(fetch_item)?;
        let mut seen = Vec::with_capacity(items.len());
        items.retain(|i| {
            let first = !seen.contains(i);
            seen.push(i.clone());
            first
        });
        return Ok(items);
    }
    Ok(vec![fetch_item(c)?])
}

fn fetch_item(c: &mut Cursor<'_>) -> Result<FetchAttribute, ParseError> {
    use FetchAttribute::*;
    // Longer names before their prefixes.
    let simple = [
        ("ENVELOPE", Envelope),
        ("FLAGS", Flags),
        ("INTERNALDATE", InternalDate),
        ("SAVEDATE", SaveDate),
        ("RFC822.HEADER", Rfc822Header),
        ("RFC822.SIZE", Rfc822Size),
        ("RFC822.TEXT", Rfc822Text),
        ("RFC822", Rfc822),
        ("BODYSTRUCTURE", BodyStructure),
        ("UID", Uid),
        ("MODSEQ", ModSeq),
        ("EMAILID", EmailId),
        ("THREADID", ThreadId),
    ];
    for (name, item) in simple {
        if c.keyword(name) {
            return Ok(item);
        }
    }
    if c.keyword("BODY.PEEK") {
        return body_section(c, true);
    }
    if c.keyword("BODY") {
        if c.peek() == Some(b'[') {
            return body_section(c, false);
        }
        return Ok(Body);
    }
    if c.keyword("BINARY.SIZE") {
        return Ok(BinarySize {
            part: binary_part(c)?,
        });
    }
    if c.keyword("BINARY.PEEK") {
        return Ok(Binary {
            peek: true,
            part: binary_part(c)?,
            partial: partial(c)?,
        });
    }
    if c.keyword("BINARY") {
        return Ok(Binary {
            peek: false,
            part: binary_part(c)?,
            partial: partial(c)?,
        });
    }
    Err(ParseError::Syntax("unknown FETCH item"))
}

fn body_section(c: &mut Cursor<'_>, peek: bool) -> Result<FetchAttribute, ParseError> {
    c.expect(b'[', "expected [ after BODY")?;
    let section = section(c)?;
    c.expect(b']', "expected ] to end the section")?;
    Ok(FetchAttribute::BodySection {
        peek,
        section,
        partial: partial(c)?,
    })
}

/// section-spec inside the brackets.
fn section(c: &mut Cursor<'_>) -> Result<Section, ParseError> {
    let mut s = Section::default();
    loop {
        if !c.peek().is_some_and(|b| b.is_ascii_digit()) {
            break;
        }
        s.part.push(c.nz_number()?);
        if !c.eat(b'.') {
            return Ok(s);
        }
    }
    if c.peek() == Some(b']') {
        if !s.part.is_empty() {
            return Err(ParseError::Syntax("a section cannot end with ."));
        }
        return Ok(s);
    }
    s.what = Some(if c.keyword("HEADER.FIELDS.NOT") {
        c.sp()?;
        SectionPart::HeaderFieldsNot(c.list(|c| c.astring())?)
    } else if c.keyword("HEADER.FIELDS") {
        c.sp()?;
        SectionPart::HeaderFields(c.list(|c| c.astring())?)
    } else if c.keyword("HEADER") {
        SectionPart::Header
    } else if c.keyword("TEXT") {
        SectionPart::Text
    } else if c.keyword("MIME") && !s.part.is_empty() {
        SectionPart::Mime
    } else {
        return Err(ParseError::Syntax("bad section"));
    });
    Ok(s)
}

/// `[1.2]` for BINARY (numbers only, RFC 3516 §4.2).
fn binary_part(c: &mut Cursor<'_>) -> Result<Vec<u32>, ParseError> {
    c.expect(b'[', "expected [")?;
    let mut part = Vec::new();
    if !c.eat(b']') {
        loop {
            part.push(c.nz_number()?);
            if c.eat(b']') {
                break;
            }
            c.expect(b'.', "expected . or ]")?;
        }
    }
    Ok(part)
}

/// `<offset.length>`.
fn partial(c: &mut Cursor<'_>) -> Result<Option<(u64, u64)>, ParseError> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let offset = c.number()?;
    c.expect(b'.', "expected . in <offset.length>")?;
    let len = c.number()?;
    if len == 0 {
        return Err(ParseError::Syntax("a partial length must not be 0"));
    }
    c.expect(b'>', "expected > to end <offset.length>")?;
    Ok(Some((offset, len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use FetchAttribute::*;

    fn items(s: &str) -> Result<Vec<FetchAttribute>, ParseError> {
        let mut c = Cursor::new(s.as_bytes());
        let r = fetch_items(&mut c)?;
        c.rest_is_empty()?;
        Ok(r)
    }

    #[test]
    fn items_and_sections() {
        assert_eq!(items("FAST").unwrap(), [Flags, InternalDate, Rfc822Size]);
        assert_eq!(
            items("(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)])").unwrap(),
            [
                Uid,
                Rfc822Size,
                Flags,
                BodySection {
                    peek: true,
                    section: Section {
                        part: vec![],
                        what: Some(SectionPart::HeaderFields(vec![
                            "From".into(),
                            "Subject".into()
                        ]))
                    },
                    partial: None
                }
            ]
        );
        assert_eq!(
            items("BODY[]<0.2048>").unwrap(),
            [BodySection {
                peek: false,
                section: Section::default(),
                partial: Some((0, 2048))
            }]
        );
        assert_eq!(
            items("body[1.2.MIME]").unwrap(),
            [BodySection {
                peek: false,
                section: Section {
                    part: vec![1, 2],
                    what: Some(SectionPart::Mime)
                },
                partial: None
            }]
        );
        assert_eq!(
            items("(BODY BODYSTRUCTURE MODSEQ EMAILID THREADID)").unwrap(),
            [Body, BodyStructure, ModSeq, EmailId, ThreadId]
        );
        assert_eq!(
            items("(BINARY.PEEK[1]<0.10> BINARY.SIZE[2])").unwrap(),
            [
                Binary {
                    peek: true,
                    part: vec![1],
                    partial: Some((0, 10))
                },
                BinarySize { part: vec![2] }
            ]
        );
        assert_eq!(items("RFC822").unwrap(), [Rfc822]);
    }

    #[test]
    fn bad_items() {
        for bad in [
            "BODY[",
            "BODY[MIME]",
            "BODY[1.]",
            "BODY[]<1>",
            "BODY[]<0.0>",
            "(FLAGS",
            "NONSENSE",
            "BINARY[HEADER]",
            "BODY[0]",
        ] {
            assert!(items(bad).is_err(), "{bad}");
        }
    }
}
