//! Bad input by raw TCP: garbage gets BAD and the session goes on (RFC
//! 9051 §7.1.5), too many bad commands in a row get BYE, literals before
//! login are small (RFC 9051 §4.3's memory bound for unauthenticated
//! peers), commands in the wrong state are refused, and nothing a peer
//! sends ends the session without an answer or harms the server.

use super::*;

#[test]
fn garbage_gets_bad_and_the_session_continues() {
    let t = with_bob();
    let server = t.start();
    let mut imap = Imap::connect(addr(&server, "imap"));

    // No usable tag: an untagged BAD.
    for garbage in ["garbage", "", "+ NOOP", "\u{1}\u{2}\u{3}"] {
        imap.send(format!("{garbage}\r\n"));
        let bad = imap.response();
        assert!(bad.starts_with("* BAD"), "{garbage:?}: {bad:?}");
    }
    imap.send(b"\xff\xfe\x00 (((\r\n");
    assert!(imap.response().starts_with("* BAD"));
    imap.run("NOOP").ok();

    // A tag, then nonsense: a tagged BAD.
    for bad in [
        "FROB",
        "NOOP extra",
        "LOGIN onlyuser",
        "LOGIN \"unterminated",
        "SELECT",
        "FETCH",
        "UID NOOP",
        "AUTHENTICATE PLAIN !!!notbase64",
    ] {
        imap.run(bad).is("BAD", "");
    }

    // The wrong state: NO (or BAD), never a crash.
    let before_login = imap.run("SELECT INBOX");
    assert!(before_login.tagged.starts_with("NO "), "{before_login}");
    imap.run("FETCH 1 (FLAGS)").is("NO", "");
    imap.run(&format!("LOGIN {USER} secret")).ok();
    for wrong in [
        "FETCH 1 (FLAGS)",
        "UID FETCH 1 (FLAGS)",
        "STORE 1 +FLAGS (\\Seen)",
        "EXPUNGE",
        "CLOSE",
        "SEARCH ALL",
    ] {
        let done = imap.run(wrong);
        assert!(
            done.tagged.starts_with("NO ") || done.tagged.starts_with("BAD "),
            "{wrong} before SELECT: {done}"
        );
    }
    imap.run("STARTTLS").is("BAD", "");
    imap.run(&format!("LOGIN {USER} secret")).is("BAD", "");
    imap.run("SELECT INBOX").ok();
    imap.run("LOGOUT").ok();
    assert!(imap.is_closed());
}

#[test]
fn twenty_bad_commands_in_a_row_get_bye() {
    let t = with_bob();
    let server = t.start();

    // 19 bad, a good one, 19 bad: the count starts again, no BYE.
    let mut imap = Imap::connect(addr(&server, "imap"));
    imap.send("bad\r\n".repeat(19) + "g1 NOOP\r\n" + &"bad\r\n".repeat(19) + "g2 NOOP\r\n");
    let done = imap.until_tagged("g1");
    done.ok();
    assert_eq!(done.lines("* BAD").len(), 19, "{done}");
    let done = imap.until_tagged("g2");
    done.ok();
    assert_eq!(done.lines("* BAD").len(), 19, "{done}");

    // 20 in a row: BYE, and the connection is closed.
    imap.send("x1 FROB\r\n".repeat(20));
    for _ in 0..20 {
        let bad = imap.response();
        assert!(bad.starts_with("x1 BAD"), "{bad:?}");
    }
    let bye = imap.response();
    assert!(bye.starts_with("* BYE"), "{bye:?}");
    assert!(
        imap.is_closed(),
        "the server closed the connection after BYE"
    );

    // The server itself is fine.
    let mut imap = Imap::login(addr(&server, "imap"));
    imap.run("SELECT INBOX").ok();
}

#[test]
fn a_big_literal_before_login_is_refused_with_the_commands_tag() {
    let t = with_bob();
    let server = t.start();
    let mut imap = Imap::connect(addr(&server, "imap"));

    // A synchronising literal: the client waits for "+", which must not
    // come; the refusal must be tagged, or the client never learns that
    // its command is over (RFC 9051 §7.5; RFC 3501 §7.5).
    imap.send("a1 LOGIN {102400}\r\n");
    let refusal = imap.response();
    assert!(
        !refusal.starts_with("+"),
        "no continuation for 100 KiB before login"
    );
    assert!(
        refusal.starts_with("a1 NO") || refusal.starts_with("a1 BAD"),
        "a tagged refusal, got {refusal:?}"
    );
    imap.run("NOOP").ok();

    // LITERAL+ (RFC 7888): the literal comes anyway; it is read and
    // dropped, then the command refused, again under its tag.
    imap.send(
        [
            b"a2 LOGIN {102400+}\r\n".to_vec(),
            vec![b'x'; 102_400],
            b" secret\r\n".to_vec(),
        ]
        .concat(),
    );
    let refusal = imap.response();
    assert!(
        refusal.starts_with("a2 NO") || refusal.starts_with("a2 BAD"),
        "a tagged refusal, got {refusal:?}"
    );
    imap.run("NOOP").ok();

    // A small literal is fine, and logs in.
    imap.send(format!("a3 LOGIN {{{}}}\r\n", USER.len()));
    assert!(imap.response().starts_with("+"));
    imap.send(format!("{USER} {{6+}}\r\nsecret\r\n"));
    imap.until_tagged("a3").ok();
    // After login a 100 KiB literal is an ordinary message.
    let body = [
        b"Subject: big\r\n\r\n".to_vec(),
        vec![b'y'; 102_400],
        b"\r\n".to_vec(),
    ]
    .concat();
    imap.send(format!("a4 APPEND INBOX {{{}}}\r\n", body.len()));
    assert!(imap.response().starts_with("+"));
    imap.send([body.clone(), b"\r\n".to_vec()].concat());
    imap.until_tagged("a4").is("OK", "[APPENDUID");
    let stored = Mailstore::open(&t).inbox(USER);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].raw == body, "the 100 KiB message stored as sent");
}

/// Commands that are legal or nearly so but push at limits, each of
/// which must get a tagged answer, whatever it is.
const NASTY: &[&str] = &[
    "FETCH 1 (BODY[1.2.3.4.5.6.7.8.9.10])",
    "FETCH 1 (BINARY[9] BINARY.SIZE[1.1] BODY[1.MIME] BODY[2.HEADER] BODY[1.TEXT])",
    "FETCH 1:4294967295 (BODY.PEEK[]<9223372036854775807.9223372036854775807>)",
    "FETCH 4294967295,1:*,* (FLAGS BODYSTRUCTURE ENVELOPE)",
    "FETCH 0 (FLAGS)",
    "FETCH 4294967296 (FLAGS)",
    "UID FETCH 4294967295:* (FLAGS) (CHANGEDSINCE 9223372036854775807 VANISHED)",
    "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 99999999999999999999)",
    "SEARCH OLDER 9223372036854775807 YOUNGER 9223372036854775807 LARGER 9223372036854775807",
    "SEARCH SENTBEFORE 1-Jan-9999 SINCE 31-Feb-0001 NOT ON 29-Feb-2023",
    "SEARCH TEXT \"\" BODY \"\\\"*\\\" OR NEAR(a b) ^x\" HEADER \"\" \"\"",
    "SEARCH MODSEQ 9223372036854775807 EMAILID Mzz THREADID T-1",
    "SEARCH CHARSET KOI8-R ALL",
    "SEARCH ((((((((((((((((((((((((((((((((((((((((ALL))))))))))))))))))))))))))))))))))))))))",
    "SEARCH RETURN (SAVE MIN) 99999:*",
    "FETCH $ (UID)",
    "STORE 1:* (UNCHANGEDSINCE 0) FLAGS.SILENT (\\Seen)",
    "STORE 1 FLAGS (\\Recent)",
    "STORE 1 +FLAGS (\\*)",
    "APPEND INBOX (\\Seen) \"31-Dec-9999 23:59:60 -2359\" {5}\r\nhello",
    "APPEND INBOX \"01-Jan-0001 00:00:00 +9999\" {5}\r\nhello",
    "APPEND INBOX ~{3+}\r\na\u{0}b",
    "APPEND INBOX {0}\r\n",
    "ENABLE QRESYNC UTF8=ACCEPT NOTHING",
    "SELECT INBOX (QRESYNC (4294967295 9223372036854775807 1:4294967295 (1:* 1:*)))",
    "SELECT INBOX (QRESYNC (1 0))",
    "LIST \"\" \"*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%*%\"",
    "LIST (SUBSCRIBED SPECIAL-USE REMOTE) \"\" (\"\" % INBOX) RETURN (CHILDREN SUBSCRIBED STATUS (MESSAGES DELETED SIZE MAILBOXID APPENDLIMIT))",
    "CREATE \"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z\"",
    "CREATE \"/\"",
    "CREATE \"\"",
    "CREATE x (USE (\\Sent))",
    "CREATE y (USE (\\Nonsense \\Junk))",
    "RENAME INBOX INBOX/sub",
    "RENAME a a/b/c",
    "RENAME \"\" b",
    "DELETE INBOX",
    "DELETE a",
    "STATUS INBOX (MESSAGES MESSAGES RECENT)",
    "GETQUOTA nothing",
    "GETQUOTAROOT nowhere",
    "COPY 1:* \"\"",
    "MOVE $ INBOX",
    "COMPRESS NONSENSE",
    "SORT (DATE) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "ID (\"name\" {3}\r\nabc)",
    "NAMESPACE",
    "CHECK",
    "UID MOVE 1:* INBOX",
    "UID EXPUNGE 1:*",
];

#[test]
fn nothing_a_peer_sends_goes_unanswered_or_harms_the_server() {
    let t = with_bob();
    let server = t.start();
    deliver(&server, &message("victim", "hello\r\n"));
    let imap = addr(&server, "imap");

    // Before login: odd authentication and an overlong line.
    let mut conn = Imap::connect(imap);
    for odd in [
        "AUTHENTICATE PLAIN AA==",
        "AUTHENTICATE PLAIN =",
        "AUTHENTICATE CRAM-MD5",
        "ID (\"x\" {99999999999999999999})",
        "LOGIN \"\" \"\"",
    ] {
        let done = conn.run(odd);
        assert!(!done.tagged.starts_with("OK"), "{odd}: {done}");
    }
    conn.send(vec![b'a'; 70 * 1024]);
    conn.send("\r\n");
    assert!(conn.response().starts_with("* BAD"));
    conn.run("NOOP").ok();

    // Logged in and selected: every nasty command gets its tagged answer.
    conn.run(&format!("LOGIN {USER} secret")).ok();
    conn.run("SELECT INBOX").ok();
    for nasty in NASTY {
        let tag = conn.tag();
        if let Some((first, rest)) = nasty.split_once("\r\n") {
            // A literal: wait for the continuation unless it is LITERAL+.
            conn.send(format!("{tag} {first}\r\n"));
            if !first.ends_with("+}") {
                let go = conn.response();
                assert!(go.starts_with("+"), "{nasty}: {go:?}");
            }
            conn.send(format!("{rest}\r\n"));
        } else {
            conn.send(format!("{tag} {nasty}\r\n"));
        }
        let done = conn.until_tagged(&tag);
        assert!(
            ["OK", "NO", "BAD"]
                .iter()
                .any(|s| done.tagged.starts_with(s)),
            "{nasty}: {done}"
        );
    }
    // IDLE ended by something other than DONE.
    conn.send("i1 IDLE\r\n");
    assert!(conn.response().starts_with("+"));
    conn.send("NOT DONE AT ALL\r\n");
    conn.until_tagged("i1").is("BAD", "");
    conn.run("NOOP").ok();
    conn.run("LOGOUT").ok();

    // A client that vanishes inside a literal.
    let mut gone = Imap::login(imap);
    gone.send("x APPEND INBOX {1000}\r\n");
    assert!(gone.response().starts_with("+"));
    gone.send("only part of it");
    drop(gone);

    // The server still serves, and the store is consistent.
    let mut after = Imap::login(imap);
    let select = after.run("SELECT INBOX");
    select.ok();
    let fetch = after.run("FETCH 1:* (UID)");
    fetch.ok();
    let uids: Vec<u32> = fetch
        .fetches()
        .iter()
        .map(|f| number_after(&f.text(), "UID") as u32)
        .collect();
    assert_eq!(uids, stored_uids(&t));
}
