//! `tag SP command [args]` (RFC 9051 §9 "command") into a [`Command`].

use super::fetch::fetch_items;
use super::lexer::Cursor;
use super::search::{search_keys, search_return};
use super::*;

/// Longest tag accepted: clients use short counters; a long tag is abuse.
const MAX_TAG: usize = 64;

/// Parses one whole command (literals included, final CRLF removed).
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let mut c = Cursor::new(line);
    let tag = c.atom()?;
    if tag.len() > MAX_TAG || tag.contains('+') {
        return Err(ParseError::Syntax("invalid tag"));
    }
    c.sp()?;
    let name = c.atom()?.to_ascii_uppercase();
    let body = match name.as_str() {
        "UID" => {
            c.sp()?;
            let sub = c.atom()?.to_ascii_uppercase();
            selected(&mut c, &sub, true)?
        }
        _ => any_state(&mut c, &name)?,
    };
    c.rest_is_empty()?;
    Ok(Command { tag, body })
}

fn any_state(c: &mut Cursor<'_>, name: &str) -> Result<CommandBody, ParseError> {
    use CommandBody::*;
    Ok(match name {
        "CAPABILITY" => Capability,
        "NOOP" => Noop,
        "LOGOUT" => Logout,
        "ID" => {
            c.sp()?;
            if c.keyword("NIL") {
                Id(None)
            } else {
                let items = c.list(|c| c.nstring())?;
                if items.len() % 2 != 0 || items.len() > 60 {
                    return Err(ParseError::Syntax("ID takes field/value pairs"));
                }
                let pairs = items
                    .chunks(2)
                    .map(|p| (p[0].clone().unwrap_or_default(), p[1].clone()))
                    .collect();
                Id(Some(pairs))
            }
        }
        "STARTTLS" => StartTls,
        "LOGIN" => {
            c.sp()?;
            let user = c.astring()?;
            c.sp()?;
            Login {
                user,
                password: c.astring()?,
            }
        }
        "AUTHENTICATE" => {
            c.sp()?;
            let mechanism = c.atom()?.to_ascii_uppercase();
            let initial = if c.eat(b' ') {
                Some(initial_response(c)?)
            } else {
                None
            };
            Authenticate { mechanism, initial }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while c.eat(b' ') {
                caps.push(c.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return Err(ParseError::Syntax("ENABLE needs a capability"));
            }
            Enable(caps)
        }
        "SELECT" | "EXAMINE" => {
            c.sp()?;
            let mailbox = c.astring()?;
            let params = if c.eat(b' ') {
                select_params(c)?
            } else {
                SelectParams::default()
            };
            if name == "SELECT" {
                Select { mailbox, params }
            } else {
                Examine { mailbox, params }
            }
        }
        "CREATE" => {
            c.sp()?;
            let mailbox = c.astring()?;
            let mut special_use = Vec::new();
            if c.eat(b' ') {
                c.expect(b'(', "expected (USE (...))")?;
                if !c.keyword("USE") {
                    return Err(ParseError::Syntax("unknown CREATE parameter"));
                }
                c.sp()?;
                special_use = c.list(|c| c.flag())?;
                c.expect(b')', "expected )")?;
            }
            Create {
                mailbox,
                special_use,
            }
        }
        "DELETE" => Delete(mailbox_arg(c)?),
        "RENAME" => {
            let from = mailbox_arg(c)?;
            Rename {
                from,
                to: mailbox_arg(c)?,
            }
        }
        "SUBSCRIBE" => Subscribe(mailbox_arg(c)?),
        "UNSUBSCRIBE" => Unsubscribe(mailbox_arg(c)?),
        "LIST" => list(c)?,
        "LSUB" => {
            let reference = mailbox_arg(c)?;
            c.sp()?;
            Lsub {
                reference,
                pattern: c.list_mailbox()?,
            }
        }
        "NAMESPACE" => Namespace,
        "STATUS" => {
            let mailbox = mailbox_arg(c)?;
            c.sp()?;
            Status {
                mailbox,
                items: c.list(status_item)?,
            }
        }
        "APPEND" => append(c)?,
        "IDLE" => Idle,
        "GETQUOTA" => {
            c.sp()?;
            GetQuota(c.astring()?)
        }
        "GETQUOTAROOT" => GetQuotaRoot(mailbox_arg(c)?),
        "COMPRESS" => {
            c.sp()?;
            Compress(c.atom()?.to_ascii_uppercase())
        }
        "CHECK" => Check,
        "CLOSE" => Close,
        "UNSELECT" => Unselect,
        "EXPUNGE" => Expunge { uids: None },
        _ => return selected(c, name, false),
    })
}

/// Commands of the selected state that have a UID form.
fn selected(c: &mut Cursor<'_>, name: &str, uid: bool) -> Result<CommandBody, ParseError> {
    use CommandBody::*;
    Ok(match name {
        "EXPUNGE" if uid => {
            c.sp()?;
            Expunge {
                uids: Some(c.sequence_set()?),
            }
        }
        "SEARCH" => {
            c.sp()?;
            let ret = if c.keyword("RETURN") {
                c.sp()?;
                let r = search_return(c)?;
                c.sp()?;
                Some(r)
            } else {
                None
            };
            let charset = if c.keyword("CHARSET") {
                c.sp()?;
                let cs = c.astring()?;
                c.sp()?;
                Some(cs)
            } else {
                None
            };
            Search {
                uid,
                charset,
                criteria: search_keys(c)?,
                ret,
            }
        }
        "FETCH" => {
            c.sp()?;
            let set = c.sequence_set()?;
            c.sp()?;
            let items = fetch_items(c)?;
            let (mut changed_since, mut vanished) = (None, false);
            if c.eat(b' ') {
                // RFC 7162 §3.1.4.1, §3.2.6: (CHANGEDSINCE n [VANISHED])
                c.list(|c| {
                    if c.keyword("CHANGEDSINCE") {
                        c.sp()?;
                        changed_since = Some(c.number()?);
                    } else if c.keyword("VANISHED") {
                        vanished = true;
                    } else {
                        return Err(ParseError::Syntax("unknown FETCH modifier"));
                    }
                    Ok(())
                })?;
            }
            if vanished && (!uid || changed_since.is_none()) {
                return Err(ParseError::Syntax(
                    "VANISHED needs UID FETCH with CHANGEDSINCE",
                ));
            }
            Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            }
        }
        "STORE" => {
            c.sp()?;
            let set = c.sequence_set()?;
            c.sp()?;
            let mut unchanged_since = None;
            if c.peek() == Some(b'(') {
                c.list(|c| {
                    if !c.keyword("UNCHANGEDSINCE") {
                        return Err(ParseError::Syntax("unknown STORE modifier"));
                    }
                    c.sp()?;
                    unchanged_since = Some(c.number()?);
                    Ok(())
                })?;
                c.sp()?;
            }
            let mode = if c.eat(b'+') {
                StoreMode::Add
            } else if c.eat(b'-') {
                StoreMode::Remove
            } else {
                StoreMode::Replace
            };
            let silent = if c.keyword("FLAGS.SILENT") {
                true
            } else if c.keyword("FLAGS") {
                false
            } else {
                return Err(ParseError::Syntax("expected FLAGS or FLAGS.SILENT"));
            };
            c.sp()?;
            // An empty list clears all flags: "FLAGS ()".
            Store {
                uid,
                set,
                mode,
                silent,
                flags: c.flags()?,
                unchanged_since,
            }
        }
        "COPY" | "MOVE" => {
            c.sp()?;
            let set = c.sequence_set()?;
            let mailbox = mailbox_arg(c)?;
            if name == "COPY" {
                Copy { uid, set, mailbox }
            } else {
                Move { uid, set, mailbox }
            }
        }
        "SORT" => {
            c.sp()?;
            let ret = if c.keyword("RETURN") {
                c.sp()?;
                let r = search_return(c)?;
                c.sp()?;
                Some(r)
            } else {
                None
            };
            let criteria = c.list(sort_key)?;
            c.sp()?;
            let charset = c.astring()?;
            c.sp()?;
            Sort {
                uid,
                criteria,
                charset,
                search: search_keys(c)?,
                ret,
            }
        }
        "THREAD" => {
            c.sp()?;
            let algorithm = c.atom()?.to_ascii_uppercase();
            c.sp()?;
            let charset = c.astring()?;
            c.sp()?;
            Thread {
                uid,
                algorithm,
                charset,
                search: search_keys(c)?,
            }
        }
        _ => return Err(ParseError::Unknown),
    })
}

fn mailbox_arg(c: &mut Cursor<'_>) -> Result<MailboxName, ParseError> {
    c.sp()?;
    c.astring()
}

/// SASL-IR initial response: base64 or "=" (RFC 4959).
fn initial_response(c: &mut Cursor<'_>) -> Result<String, ParseError> {
    if c.eat(b'=') {
        return Ok("=".into());
    }
    c.atom()
}

fn select_params(c: &mut Cursor<'_>) -> Result<SelectParams, ParseError> {
    let mut p = SelectParams::default();
    c.list(|c| {
        if c.keyword("CONDSTORE") {
            p.condstore = true;
        } else if c.keyword("QRESYNC") {
            c.sp()?;
            c.expect(b'(', "expected ( after QRESYNC")?;
            let uid_validity = c.nz_number()?;
            c.sp()?;
            let modseq = c.number()?;
            let mut known_uids = None;
            let mut seq_match = None;
            if c.eat(b' ') {
                if c.peek() != Some(b'(') {
                    known_uids = Some(c.sequence_set()?);
                    if c.eat(b' ') {
                        seq_match = Some(seq_match_data(c)?);
                    }
                } else {
                    seq_match = Some(seq_match_data(c)?);
                }
            }
            c.expect(b')', "expected ) to end QRESYNC")?;
            p.qresync = Some(QresyncParams {
                uid_validity,
                modseq,
                known_uids,
                seq_match,
            });
        } else {
            return Err(ParseError::Syntax("unknown SELECT parameter"));
        }
        Ok(())
    })?;
    Ok(p)
}

fn seq_match_data(c: &mut Cursor<'_>) -> Result<(SequenceSet, SequenceSet), ParseError> {
    c.expect(b'(', "expected (")?;
    let seqs = c.sequence_set()?;
    c.sp()?;
    let uids = c.sequence_set()?;
    c.expect(b')', "expected )")?;
    Ok((seqs, uids))
}

fn list(c: &mut Cursor<'_>) -> Result<CommandBody, ParseError> {
    c.sp()?;
    let mut select = Vec::new();
    if c.peek() == Some(b'(') {
        select = c.list(|c| Ok(c.atom()?.to_ascii_uppercase()))?;
        c.sp()?;
    }
    let reference = c.astring()?;
    c.sp()?;
    let patterns = if c.peek() == Some(b'(') {
        c.list(|c| c.list_mailbox())?
    } else {
        vec![c.list_mailbox()?]
    };
    let mut ret = ListReturn::default();
    if c.eat(b' ') {
        if !c.keyword("RETURN") {
            return Err(ParseError::Syntax("expected RETURN"));
        }
        c.sp()?;
        c.list(|c| {
            if c.keyword("SUBSCRIBED") {
                ret.subscribed = true;
            } else if c.keyword("CHILDREN") {
                ret.children = true;
            } else if c.keyword("SPECIAL-USE") {
                ret.special_use = true;
            } else if c.keyword("STATUS") {
                c.sp()?;
                ret.status = Some(c.list(status_item)?);
            } else {
                return Err(ParseError::Syntax("unknown LIST RETURN option"));
            }
            Ok(())
        })?;
    }
    Ok(CommandBody::List {
        reference,
        patterns,
        select,
        ret,
    })
}

fn status_item(c: &mut Cursor<'_>) -> Result<StatusItem, ParseError> {
    use StatusItem::*;
    Ok(match c.atom()?.to_ascii_uppercase().as_str() {
        "MESSAGES" => Messages,
        "RECENT" => Recent,
        "UIDNEXT" => UidNext,
        "UIDVALIDITY" => UidValidity,
        "UNSEEN" => Unseen,
        "DELETED" => Deleted,
        "SIZE" => Size,
        "HIGHESTMODSEQ" => HighestModSeq,
        "MAILBOXID" => MailboxId,
        "APPENDLIMIT" => AppendLimit,
        _ => return Err(ParseError::Syntax("unknown STATUS item")),
    })
}

/// APPEND mailbox [flags] [date-time] literal, repeated (MULTIAPPEND).
fn append(c: &mut Cursor<'_>) -> Result<CommandBody, ParseError> {
    let mailbox = mailbox_arg(c)?;
    let mut messages = Vec::new();
    while c.eat(b' ') {
        let mut flags = Vec::new();
        if c.peek() == Some(b'(') {
            flags = c.list(|c| c.flag())?;
            c.sp()?;
        }
        let mut date = None;
        if c.peek() == Some(b'"') {
            date = Some(c.date_time()?);
            c.sp()?;
        }
        // RFC 6855 §4: after ENABLE UTF8=ACCEPT clients send the message
        // as `UTF8 (~{n}...)`.
        let utf8 = c.keyword("UTF8");
        if utf8 {
            c.sp()?;
            c.expect(b'(', "expected ( after UTF8")?;
        }
        if !c.at_literal() {
            return Err(ParseError::Syntax("APPEND needs the message as a literal"));
        }
        let data = c.string_bytes()?;
        if utf8 {
            c.expect(b')', "expected ) after the UTF8 literal")?;
        }
        messages.push(AppendMessage { flags, date, data });
    }
    if messages.is_empty() {
        return Err(ParseError::Syntax("APPEND needs a message"));
    }
    Ok(CommandBody::Append { mailbox, messages })
}

fn sort_key(c: &mut Cursor<'_>) -> Result<SortKey, ParseError> {
    let reverse = c.keyword("REVERSE");
    if reverse {
        c.sp()?;
    }
    let field = match c.atom()?.to_ascii_uppercase().as_str() {
        "ARRIVAL" => SortField::Arrival,
        "CC" => SortField::Cc,
        "DATE" => SortField::Date,
        "FROM" => SortField::From,
        "SIZE" => SortField::Size,
        "SUBJECT" => SortField::Subject,
        "TO" => SortField::To,
        "DISPLAYFROM" => SortField::DisplayFrom,
        "DISPLAYTO" => SortField::DisplayTo,
        _ => return Err(ParseError::Syntax("unknown SORT key")),
    };
    Ok(SortKey { reverse, field })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::lexer::SeqNumber;
    use CommandBody::*;

    fn body(s: &str) -> CommandBody {
        match parse_command(s.as_bytes()) {
            Ok(c) => c.body,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn one(n: u32) -> SequenceSet {
        SequenceSet::Ranges(vec![(SeqNumber::Value(n), SeqNumber::Value(n))])
    }

    #[test]
    fn session_commands() {
        assert_eq!(
            parse_command(b"a1 CAPABILITY").unwrap(),
            Command {
                tag: "a1".into(),
                body: Capability
            }
        );
        assert_eq!(
            body("a LOGIN bob@example.test \"p a\\\"ss\""),
            Login {
                user: "bob@example.test".into(),
                password: "p a\"ss".into()
            }
        );
        assert_eq!(
            body("a LOGIN {3}\r\nbob {2+}\r\npw"),
            Login {
                user: "bob".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            body("a AUTHENTICATE PLAIN AGJvYgBwdw=="),
            Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some("AGJvYgBwdw==".into())
            }
        );
        assert_eq!(
            body("a AUTHENTICATE PLAIN ="),
            Authenticate {
                mechanism: "PLAIN".into(),
                initial: Some("=".into())
            }
        );
        assert_eq!(
            body("a ENABLE QRESYNC utf8=accept"),
            Enable(vec!["QRESYNC".into(), "UTF8=ACCEPT".into()])
        );
        assert_eq!(
            body("a ID (\"name\" \"mutt\" \"version\" NIL)"),
            Id(Some(vec![
                ("name".into(), Some("mutt".into())),
                ("version".into(), None)
            ]))
        );
        assert_eq!(body("a ID NIL"), Id(None));
    }

    #[test]
    fn mailbox_commands() {
        assert_eq!(
            body("a SELECT INBOX"),
            Select {
                mailbox: "INBOX".into(),
                params: SelectParams::default()
            }
        );
        assert_eq!(
            body("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
            Select {
                mailbox: "INBOX".into(),
                params: SelectParams {
                    condstore: false,
                    qresync: Some(QresyncParams {
                        uid_validity: 67890007,
                        modseq: 20050715194045000,
                        known_uids: Some(SequenceSet::Ranges(vec![
                            (SeqNumber::Value(41), SeqNumber::Value(41)),
                            (SeqNumber::Value(43), SeqNumber::Value(211)),
                            (SeqNumber::Value(214), SeqNumber::Value(541)),
                        ])),
                        seq_match: None
                    })
                }
            }
        );
        assert!(matches!(
            body("a EXAMINE \"Sent\" (CONDSTORE)"),
            Examine {
                params: SelectParams {
                    condstore: true,
                    ..
                },
                ..
            }
        ));
        assert_eq!(
            body("a CREATE Archive/2026 (USE (\\Archive))"),
            Create {
                mailbox: "Archive/2026".into(),
                special_use: vec!["\\Archive".into()]
            }
        );
        assert_eq!(
            body("a RENAME a b"),
            Rename {
                from: "a".into(),
                to: "b".into()
            }
        );
        assert_eq!(
            body("a LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))"),
            List {
                reference: "".into(),
                patterns: vec!["*".into(), "%".into()],
                select: vec!["SUBSCRIBED".into()],
                ret: ListReturn {
                    subscribed: false,
                    children: true,
                    special_use: false,
                    status: Some(vec![StatusItem::Messages, StatusItem::Unseen])
                }
            }
        );
        assert!(matches!(body("a LIST \"\" INBOX/%"), List { .. }));
        assert_eq!(
            body("a STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ SIZE)").clone(),
            Status {
                mailbox: "INBOX".into(),
                items: vec![
                    StatusItem::Messages,
                    StatusItem::UidNext,
                    StatusItem::HighestModSeq,
                    StatusItem::Size
                ]
            }
        );
    }

    #[test]
    fn append_and_multiappend() {
        assert_eq!(
            body("a APPEND Drafts (\\Draft \\Seen) \"21-Nov-2026 22:02:00 +0000\" {5}\r\nhello {3+}\r\nbye"),
            Append {
                mailbox: "Drafts".into(),
                messages: vec![
                    AppendMessage { flags: vec!["\\Draft".into(), "\\Seen".into()], date: Some(1_795_298_520), data: b"hello".to_vec() },
                    AppendMessage { flags: vec![], date: None, data: b"bye".to_vec() },
                ]
            }
        );
        assert_eq!(
            body("a APPEND INBOX ~{3}\r\na\0b"),
            Append {
                mailbox: "INBOX".into(),
                messages: vec![AppendMessage {
                    flags: vec![],
                    date: None,
                    data: b"a\0b".to_vec()
                }]
            }
        );
    }

    #[test]
    fn selected_commands() {
        assert!(matches!(
            body("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)"),
            Fetch {
                uid: true,
                changed_since: Some(12345),
                vanished: true,
                ..
            }
        ));
        assert_eq!(
            body("a UID STORE 1 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Deleted)"),
            Store {
                uid: true,
                set: one(1),
                mode: StoreMode::Add,
                silent: true,
                flags: vec!["\\Deleted".into()],
                unchanged_since: Some(5)
            }
        );
        assert_eq!(
            body("a STORE 1 FLAGS ()"),
            Store {
                uid: false,
                set: one(1),
                mode: StoreMode::Replace,
                silent: false,
                flags: vec![],
                unchanged_since: None
            }
        );
        assert_eq!(body("a UID EXPUNGE 1"), Expunge { uids: Some(one(1)) });
        assert_eq!(body("a EXPUNGE"), Expunge { uids: None });
        assert_eq!(
            body("a UID MOVE 1 Trash"),
            Move {
                uid: true,
                set: one(1),
                mailbox: "Trash".into()
            }
        );
        assert!(matches!(
            body("a SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 UNSEEN"),
            Search {
                ret: Some(_),
                charset: Some(_),
                ..
            }
        ));
        assert!(matches!(
            body("a UID SORT (REVERSE DATE SUBJECT) UTF-8 ALL"),
            Sort { uid: true, .. }
        ));
        assert!(matches!(
            body("a THREAD REFERENCES UTF-8 ALL"),
            Thread { uid: false, .. }
        ));
        assert!(matches!(body("a IDLE"), Idle));
    }

    #[test]
    fn bad_commands_fail_without_panicking() {
        for bad in [
            "",
            "a",
            "a ",
            "* NOOP",
            "a+ NOOP",
            "a FROB",
            "a UID NOOP",
            "a NOOP extra",
            "a SELECT",
            "a LOGIN bob",
            "a FETCH 1",
            "a FETCH x FLAGS",
            "a STORE 1 FLAGZ (\\Seen)",
            "a APPEND INBOX \"not a literal\"",
            "a APPEND INBOX {5}\r\nhi",
            "a UID FETCH 1 FLAGS (VANISHED)",
            "a FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)",
            "a LIST \"\"",
            "a STATUS INBOX (BOGUS)",
            "a SORT (DATE) UTF-8",
            "a ENABLE",
            "a ID (\"odd\")",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_command(b"abc FROB"), Err(ParseError::Unknown));
        assert_eq!(ParseError::tag(b"abc FROB x"), Some("abc".into()));
        assert_eq!(ParseError::tag(b"garbage"), None);
    }

    #[test]
    fn no_input_makes_the_parser_panic() {
        let seeds: [&[u8]; 5] = [
            b"a UID FETCH 1:*,3 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From)]<0.10>) (CHANGEDSINCE 1 VANISHED)",
            b"a SELECT INBOX (QRESYNC (1 2 3:4 (1:2 3:4)))",
            b"a APPEND INBOX (\\Seen) \"21-Nov-2026 22:02:00 +0000\" {3+}\r\nabc",
            b"a SEARCH OR (FROM \"x\" NOT SEEN) HEADER a {1}\r\nb",
            b"a LIST (SUBSCRIBED) \"\" (* %) RETURN (STATUS (MESSAGES))",
        ];
        let alphabet = b"(){}[]<>\"\\ *%$:.,+-~0123456789aBNIL\r\n\x00\xff";
        let mut seed = 3u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for base in seeds {
            for _ in 0..20_000 {
                let mut line = base.to_vec();
                for _ in 0..(next() % 6) {
                    let pos = next() % (line.len() + 1);
                    match next() % 3 {
                        0 if pos < line.len() => {
                            line.remove(pos);
                        }
                        1 if pos < line.len() => line[pos] = alphabet[next() % alphabet.len()],
                        _ => line.insert(pos, alphabet[next() % alphabet.len()]),
                    }
                }
                let _ = parse_command(&line);
            }
        }
    }
}
