//! Message bytes in and out: what SMTP stored comes back from FETCH BODY[]
//! byte for byte, and APPEND (RFC 9051 §6.3.12) with UIDPLUS's APPENDUID
//! (RFC 4315) and MULTIAPPEND (RFC 3502) stores exactly what it was given.

use super::*;

const PY_FETCH_ALL: &str = r#"
M = login()
out = {"select": ok(M.select("INBOX"))}
out["body"] = literal(M.fetch("1", "(BODY.PEEK[])"))
out["uid_body"] = literal(M.uid("FETCH", sys.argv[2], "(BODY.PEEK[])"))
out["rfc822"] = literal(M.fetch("1", "(RFC822)"))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn mail_delivered_by_smtp_is_fetched_byte_identical() {
    let t = with_bob();
    let server = t.start();
    let sent = b"From: Sender <sender@remote.test>\r\nTo: <bob@example.test>\r\n\
Subject: exact bytes\r\nMessage-ID: <exact.1@remote.test>\r\n\r\nfirst line\r\n\
.a line that starts with a dot\r\n\r\n\ttabbed   spaced  \r\nlast line without a newline";
    deliver(&server, sent);
    let stored = Mailstore::open(&t).find(USER, "exact bytes");
    assert!(stored.raw.len() > sent.len(), "trace fields were added");

    let out = imaplib(&server, PY_FETCH_ALL, &[&stored.uid.0.to_string()]);
    assert!(out["select"].as_str().unwrap().starts_with('1'), "{out}");
    for key in ["body", "uid_body", "rfc822"] {
        assert!(
            out[key].is_string(),
            "{key}: the FETCH response held no message: {out}"
        );
        let fetched = unbase64(&out[key]);
        assert!(
            fetched == stored.raw,
            "{key}: fetched {} bytes, stored {}:\n{:?}\n{:?}",
            fetched.len(),
            stored.raw.len(),
            String::from_utf8_lossy(&fetched),
            stored.text()
        );
    }
}

const PY_APPEND: &str = r#"
M = login()
data = open(sys.argv[2], "rb").read()
out = {"append": status(M.append("INBOX", "(\\Flagged)", '"21-Nov-2026 22:02:00 +0000"', data))}
out["select"] = ok(M.select("INBOX"))
uid = out["append"][1].split()[2].rstrip("]")
out["body"] = literal(M.uid("FETCH", uid, "(BODY.PEEK[])"))
out["meta"] = ok(M.uid("FETCH", uid, "(FLAGS INTERNALDATE RFC822.SIZE)"))
out["missing"] = status(M.append("Nosuchfolder", None, None, data))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn append_round_trips_exactly_and_returns_appenduid() {
    let t = with_bob();
    let server = t.start();
    // 8-bit text, bytes that are not UTF-8, and lines starting with dots.
    let sent: &[u8] =
        b"From: Me <bob@example.test>\r\nTo: friend@remote.test\r\nSubject: draft\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln \xe2\x82\xac\r\nnot utf-8: \xff\xfe\x80\r\n\
.leading dot\r\n..two dots\r\n.\r\nthe end\r\n";
    let file = write_file(&t, "draft.eml", sent);
    let out = imaplib(&server, PY_APPEND, &[file.to_str().unwrap()]);

    let append = out["append"][1].as_str().unwrap();
    assert_eq!(out["append"][0], "OK", "{out}");
    assert!(append.starts_with("[APPENDUID "), "{out}");
    let mut words = append.split_whitespace().skip(1);
    let uid_validity: u32 = words.next().unwrap().parse().unwrap();
    let uid: u32 = words.next().unwrap().trim_end_matches(']').parse().unwrap();
    assert!(uid_validity > 0);
    assert!(
        out["select"].as_str().unwrap().starts_with('1'),
        "one message: {out}"
    );

    let fetched = unbase64(&out["body"]);
    assert!(
        fetched == sent,
        "fetched {:?}\nsent {:?}",
        String::from_utf8_lossy(&fetched),
        String::from_utf8_lossy(sent)
    );
    let meta = out["meta"].as_str().unwrap();
    assert!(meta.contains(&format!("UID {uid}")), "{meta}");
    assert!(
        meta.contains("INTERNALDATE \"21-Nov-2026 22:02:00 +0000\""),
        "{meta}"
    );
    assert!(
        meta.contains(&format!("RFC822.SIZE {}", sent.len())),
        "{meta}"
    );
    assert_eq!(flags_of(meta), ["\\Flagged"], "{meta}");

    // The store holds exactly the appended bytes under the returned UID.
    let stored = Mailstore::open(&t).find(USER, "draft");
    assert_eq!(stored.uid.0, uid);
    assert!(stored.raw == sent, "{:?}", stored.text());

    assert_eq!(out["missing"][0], "NO", "{out}");
    assert!(
        out["missing"][1]
            .as_str()
            .unwrap()
            .starts_with("[TRYCREATE]"),
        "{out}"
    );
}

#[test]
fn multiappend_adds_every_message_of_one_command() {
    let t = with_bob();
    let server = t.start();
    let one = b"Subject: first of two\r\n\r\none\r\n".to_vec();
    let two = b"Subject: second of two\r\n\r\ntwo\r\n".to_vec();

    let mut imap = Imap::login(addr(&server, "imap"));
    imap.send(format!(
        "m1 APPEND INBOX (\\Flagged) \"02-Nov-2026 10:00:00 +0000\" {{{}}}\r\n",
        one.len()
    ));
    let go = imap.response();
    assert!(
        go.starts_with("+"),
        "a continuation for the first literal: {go:?}"
    );
    imap.send(
        [
            &one[..],
            format!(" (\\Seen) {{{}}}\r\n", two.len()).as_bytes(),
        ]
        .concat(),
    );
    let go = imap.response();
    assert!(
        go.starts_with("+"),
        "a continuation for the second literal: {go:?}"
    );
    imap.send([&two[..], b"\r\n"].concat());
    let done = imap.until_tagged("m1");
    done.is("OK", "[APPENDUID ");
    let uid_validity = number_after(&done.tagged, "APPENDUID");
    assert!(
        done.tagged
            .starts_with(&format!("OK [APPENDUID {uid_validity} 1:2]")),
        "{done}"
    );

    let stored = Mailstore::open(&t).inbox(USER);
    assert_eq!(stored.len(), 2);
    assert!(stored[0].raw == one && stored[1].raw == two);

    let select = imap.run("SELECT INBOX");
    select.ok();
    assert_eq!(select.line("* 2 EXISTS"), "* 2 EXISTS");
    let fetch = imap.run("FETCH 1:2 (FLAGS INTERNALDATE)");
    fetch.ok();
    let fetches = fetch.fetches();
    assert_eq!(fetches.len(), 2, "{fetch}");
    assert_eq!(flags_of(&fetches[0].text()), ["\\Flagged"], "{fetch}");
    assert!(
        fetches[0].contains("\"02-Nov-2026 10:00:00 +0000\""),
        "{fetch}"
    );
    assert_eq!(flags_of(&fetches[1].text()), ["\\Seen"], "{fetch}");
    // An APPEND to the selected mailbox announces the new message.
    let three = b"Subject: third\r\n\r\nthree\r\n";
    imap.send(format!("m2 APPEND INBOX {{{}+}}\r\n", three.len()));
    imap.send([&three[..], b"\r\n"].concat());
    let done = imap.until_tagged("m2");
    done.is("OK", &format!("[APPENDUID {uid_validity} 3]"));
    assert_eq!(done.line("* 3 EXISTS"), "* 3 EXISTS", "{done}");
    let bodies = imap.run("UID FETCH 1:2 (BODY.PEEK[])");
    bodies.ok();
    let got: Vec<Vec<u8>> = bodies
        .fetches()
        .iter()
        .map(|f| f.literal_after("BODY[] "))
        .collect();
    assert!(got == [one, two], "{bodies}");
}

#[test]
fn large_append_literals_arrive_through_the_spool_byte_exact() {
    let t = with_bob();
    let server = t.start();
    let mut imap = Imap::login(addr(&server, "imap"));
    let body = |n: usize| {
        let mut m = format!("From: bob@example.test\r\nSubject: big {n}\r\n\r\n").into_bytes();
        while m.len() < 3 << 20 {
            m.extend_from_slice(format!("line {} of message {n}\r\n", m.len()).as_bytes());
        }
        m
    };
    let (one, two, small) = (body(1), body(2), b"Subject: small\r\n\r\nhi\r\n".to_vec());
    // A synchronising literal, then MULTIAPPEND with LITERAL+ mixing sizes.
    let tag = imap.tag();
    imap.send(format!("{tag} APPEND INBOX (\\Seen) {{{}}}\r\n", one.len()));
    assert!(imap.response().starts_with("+ "));
    imap.send(&one);
    imap.send("\r\n");
    imap.until_tagged(&tag).ok();
    let tag = imap.tag();
    let mut command = format!("{tag} APPEND INBOX {{{}+}}\r\n", two.len()).into_bytes();
    command.extend_from_slice(&two);
    command.extend_from_slice(format!(" {{{}+}}\r\n", small.len()).as_bytes());
    command.extend_from_slice(&small);
    command.extend_from_slice(b"\r\n");
    imap.send(&command);
    imap.until_tagged(&tag).ok();
    imap.run("SELECT INBOX").ok();
    for (n, expected) in [(1, &one), (2, &two), (3, &small)] {
        let fetched = imap.run(&format!("FETCH {n} BODY.PEEK[]"));
        assert!(
            fetched.fetches()[0].literal_after("BODY[] ") == *expected,
            "message {n} differs"
        );
    }
    // A client sending our placeholder itself gets just those bytes stored.
    let forged = b"tern-spool:0000000000000001:0";
    let tag = imap.tag();
    let mut command = format!("{tag} APPEND INBOX {{{}+}}\r\n", forged.len()).into_bytes();
    command.extend_from_slice(forged);
    command.extend_from_slice(b"\r\n");
    imap.send(&command);
    imap.until_tagged(&tag).ok();
    imap.run("NOOP").ok();
    let fetched = imap.run("FETCH 4 BODY.PEEK[]");
    assert_eq!(fetched.fetches()[0].literal_after("BODY[] "), forged);
}

#[test]
fn a_spooled_literal_with_nul_is_refused_as_a_small_one_is() {
    let t = with_bob();
    let server = t.start();
    let mut imap = Imap::login(addr(&server, "imap"));
    let mut body = b"Subject: binary\r\n\r\n".to_vec();
    body.resize(2 << 20, b'a');
    body[100_000] = 0;
    let tag = imap.tag();
    let mut command = format!("{tag} APPEND INBOX {{{}+}}\r\n", body.len()).into_bytes();
    command.extend_from_slice(&body);
    command.extend_from_slice(b"\r\n");
    imap.send(&command);
    let done = imap.until_tagged(&tag);
    done.is("BAD", "NUL in a literal");
    imap.run("NOOP").ok();
    imap.run("SELECT INBOX").ok();
}

#[test]
fn a_skipped_oversized_literal_followed_by_another_ends_the_connection() {
    let t = TestDir::with_config("[limits]\nmax_message_size = \"1M\"");
    t.add_account(USER);
    let server = t.start();
    let mut imap = Imap::login(addr(&server, "imap"));
    // MULTIAPPEND whose first message is over the limit, sent with
    // LITERAL+: the second literal's bytes must never run as commands.
    let smuggled = b"x DELETE Archive\r\n";
    let tag = imap.tag();
    let mut command = format!("{tag} APPEND INBOX {{{}+}}\r\n", 2 << 20).into_bytes();
    command.extend(std::iter::repeat_n(b'a', 2 << 20));
    command.extend_from_slice(format!(" {{{}+}}\r\n", smuggled.len()).as_bytes());
    command.extend_from_slice(smuggled);
    command.extend_from_slice(b"\r\n");
    imap.send(&command);
    let done = imap.until_tagged(&tag);
    done.is("BAD", "literal too big");
    assert!(imap.read().is_some_and(|r| r.starts_with("* BYE")));
    assert!(imap.is_closed());
    let mut again = Imap::login(addr(&server, "imap"));
    let list = again.run("LIST \"\" Archive");
    assert!(
        list.lines("* LIST").iter().any(|l| l.contains("Archive")),
        "{list}"
    );
}
