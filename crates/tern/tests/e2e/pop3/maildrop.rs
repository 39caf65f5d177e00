//! The maildrop: INBOX as it stood at login (RFC 1939 §8), unique ids that
//! outlive sessions, restarts and moves (§7 UIDL), deletes that happen only
//! at QUIT (§6), and one session per maildrop (RFC 2449 §8.1.2 IN-USE).
//! Other devices change INBOX through the Store meanwhile.

use super::*;

/// The unique ids of a UIDL listing, in message-number order.
fn ids(uidl: &[(u32, String)]) -> Vec<String> {
    uidl.iter().map(|(_, id)| id.clone()).collect()
}

#[test]
fn uidl_is_stable_across_sessions_restarts_and_moves_and_never_reused() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b", "c"]);
    let pop3 = addr(&server, "pop3");

    let mut pop = Pop3::login(pop3, BOB, "secret");
    let first = pop.uidl();
    assert_eq!(first.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2, 3]);
    let first = ids(&first);
    // RFC 1939 §7: 1 to 70 characters from 0x21 to 0x7E, all different.
    for id in &first {
        assert!(
            (1..=70).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{id:?}"
        );
    }
    assert!(first[0] != first[1] && first[1] != first[2] && first[0] != first[2]);
    for (i, id) in first.iter().enumerate() {
        assert_eq!(
            pop.ok(&format!("UIDL {}", i + 1)),
            format!("+OK {} {id}", i + 1)
        );
    }
    pop.ok("QUIT");
    // A session that ends without QUIT changes nothing either.
    let mut pop = Pop3::login(pop3, BOB, "secret");
    assert_eq!(ids(&pop.uidl()), first);
    drop(pop);
    assert_eq!(ids(&Pop3::login_when_free(pop3).uidl()), first);

    // Across a restart.
    let (status, _) = server.stop_with("TERM");
    assert!(status.success(), "{status:?}");
    let server = t.start();
    let pop3 = addr(&server, "pop3");
    let mut pop = Pop3::login(pop3, BOB, "secret");
    assert_eq!(ids(&pop.uidl()), first);
    pop.ok("QUIT");

    // "IMAP" moves the first message to Archive: POP3 no longer sees it;
    // the others keep their ids (not their numbers).
    let imap = Imap::open(&t, BOB);
    let uid_a = imap.list(Role::Inbox)[0].uid;
    let moved = imap.move_messages(Role::Inbox, &[uid_a], Role::Archive);
    assert_eq!(moved.mapping.len(), 1);
    let mut pop = Pop3::login(pop3, BOB, "secret");
    assert_eq!(ids(&pop.uidl()), &first[1..]);
    pop.ok("QUIT");
    // Moved back, it is the newest message of INBOX (a new IMAP UID), and
    // its unique id is the one it had: a POP3 client will not fetch it
    // twice.
    let archived = imap.list(Role::Archive)[0].uid;
    imap.move_messages(Role::Archive, &[archived], Role::Inbox);
    let inbox = imap.list(Role::Inbox);
    assert!(inbox[2].uid > uid_a, "{inbox:?}");
    let mut pop = Pop3::login(pop3, BOB, "secret");
    assert_eq!(
        ids(&pop.uidl()),
        [first[1].clone(), first[2].clone(), first[0].clone()]
    );
    pop.ok("RETR 3");
    assert!(pop.lines().contains(&"Subject: a".to_string()));
    pop.ok("QUIT");

    // The newest message is expunged, a new one arrives: its id is new
    // (reusing one would make clients skip the new message as "seen").
    let newest = imap.list(Role::Inbox)[2].uid;
    imap.expunge(Role::Inbox, &[newest]);
    deliver_all(&server, &["d"]);
    let mut pop = Pop3::login(pop3, BOB, "secret");
    let now = ids(&pop.uidl());
    assert_eq!(now.len(), 3);
    assert_eq!(&now[..2], &first[1..]);
    assert!(!first.contains(&now[2]), "{now:?} reuses one of {first:?}");
    pop.ok("QUIT");
}

#[test]
fn the_maildrop_is_a_snapshot_taken_at_login() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b", "c"]);
    let imap = Imap::open(&t, BOB);
    let before = imap.list(Role::Inbox);
    let raws = imap.inbox_raw();

    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    let stat = pop.ok("STAT");
    let list = pop.multi("LIST");
    let uidl = pop.uidl();
    assert_eq!(list.len(), 3);

    // Meanwhile: new mail, and another device flags a, expunges b, moves
    // c to Archive and appends e.
    deliver_all(&server, &["d"]);
    imap.add_flag(Role::Inbox, &[before[0].uid], "\\Seen");
    assert_eq!(imap.expunge(Role::Inbox, &[before[1].uid]), [before[1].uid]);
    imap.move_messages(Role::Inbox, &[before[2].uid], Role::Archive);
    let appended = imap.append(Role::Inbox, &message("e", "appended\r\n"));
    let now = imap.list(Role::Inbox);
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(now[0].has_keyword("\\Seen"));

    // Numbers, sizes and ids are those of the login.
    assert_eq!(pop.ok("STAT"), stat);
    assert_eq!(pop.multi("LIST"), list);
    assert_eq!(pop.uidl(), uidl);
    assert_eq!(pop.ok("LIST 2"), format!("+OK 2 {}", before[1].size));
    // The expunged message is gone for good: -ERR, and the session goes on.
    let gone = pop.err("RETR 2");
    assert_eq!(gone, "-ERR message 2 was removed by another client");
    pop.err("TOP 2 0");
    pop.ok("NOOP");
    // The moved one still exists, in Archive: it can be read.
    assert_eq!(pop.ok("RETR 3"), format!("+OK {} octets", raws[2].len()));
    assert_eq!(show(&pop.wire()), show(&stuffed(&raws[2])));
    assert_eq!(pop.ok("RETR 1"), format!("+OK {} octets", raws[0].len()));
    assert_eq!(show(&pop.wire()), show(&stuffed(&raws[0])));
    // DELE of the message IMAP expunged, and of the flagged one; at QUIT
    // the flagged one goes, the moved one stays in Archive.
    pop.ok("DELE 2");
    pop.ok("DELE 1");
    pop.ok("QUIT");
    assert!(pop.is_closed());

    // A new session sees the new state: d and e.
    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    let inbox = imap.list(Role::Inbox);
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    assert_eq!(inbox[1].email_id, appended.email_id);
    assert_eq!(
        pop.ok("STAT"),
        format!("+OK 2 {}", inbox[0].size + inbox[1].size)
    );
    assert_eq!(
        pop.uidl(),
        [
            (1, inbox[0].email_id.to_string()),
            (2, inbox[1].email_id.to_string())
        ]
    );
    for (n, subject) in [(1, "d"), (2, "e")] {
        pop.ok(&format!("RETR {n}"));
        assert!(pop.lines().contains(&format!("Subject: {subject}")));
    }
    pop.ok("QUIT");
    let archive = imap.list(Role::Archive);
    assert_eq!(archive.len(), 1);
    assert_eq!(archive[0].email_id, before[2].email_id);
}

#[test]
fn dele_without_quit_deletes_nothing() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b"]);
    let imap = Imap::open(&t, BOB);
    let before = imap.list(Role::Inbox);
    let modseq = imap.highest_modseq();

    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    pop.ok("DELE 1");
    pop.ok("DELE 2");
    assert_eq!(pop.ok("STAT"), "+OK 0 0");
    // The connection drops: no QUIT, no UPDATE state (RFC 1939 §6).
    drop(pop);

    let mut pop = Pop3::login_when_free(addr(&server, "pop3"));
    assert_eq!(pop.multi("LIST").len(), 2);
    pop.ok("QUIT");
    assert_eq!(imap.list(Role::Inbox), before);
    assert_eq!(imap.highest_modseq(), modseq, "nothing was written");
}

#[test]
fn dele_and_quit_expunge_through_the_store_and_its_journal() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a", "b", "c"]);
    let imap = Imap::open(&t, BOB);
    let before = imap.list(Role::Inbox);
    let modseq = imap.highest_modseq();

    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    pop.ok("DELE 1");
    pop.ok("DELE 3");
    assert_eq!(
        pop.ok("QUIT"),
        "+OK mail.example.test signing off (2 messages deleted)"
    );
    assert!(pop.is_closed());

    let after = imap.list(Role::Inbox);
    assert_eq!(after, before[1..2]);
    // The journal has the tombstones an IMAP client resynchronises from
    // (RFC 7162 QRESYNC's VANISHED).
    let changes = imap.changes(Role::Inbox, modseq);
    assert_eq!(changes.expunged, [before[0].uid, before[2].uid]);
    assert!(changes.changed.is_empty(), "{:?}", changes.changed);
    assert!(changes.highest_modseq > modseq);
    // Expunged, not moved: Trash is empty and the emails are gone.
    assert!(imap.list(Role::Trash).is_empty());
    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    assert_eq!(pop.uidl(), [(1, before[1].email_id.to_string())]);
    pop.ok("QUIT");
}

#[test]
fn with_deleted_trash_dele_moves_the_message_to_trash_at_quit() {
    let t = bob("[pop3]\ndeleted = \"trash\"");
    let server = t.start();
    deliver_all(&server, &["a", "b"]);
    let imap = Imap::open(&t, BOB);
    let before = imap.list(Role::Inbox);
    let raw = imap.raw(before[0].email_id);
    let modseq = imap.highest_modseq();

    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    pop.ok("DELE 1");
    assert_eq!(
        pop.ok("QUIT"),
        "+OK mail.example.test signing off (1 messages deleted)"
    );

    assert_eq!(imap.list(Role::Inbox), before[1..]);
    assert_eq!(imap.changes(Role::Inbox, modseq).expunged, [before[0].uid]);
    // The same email, now in Trash, for the user's other devices.
    let trash = imap.list(Role::Trash);
    assert_eq!(trash.len(), 1);
    assert_eq!(trash[0].email_id, before[0].email_id);
    assert_eq!(imap.raw(trash[0].email_id), raw);
    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    assert_eq!(pop.ok("STAT"), format!("+OK 1 {}", before[1].size));
    pop.ok("QUIT");
}

#[test]
fn a_second_session_gets_in_use_until_the_first_quits() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a"]);
    let pop3 = addr(&server, "pop3");

    let mut first = Pop3::login(pop3, BOB, "secret");
    first.ok("DELE 1");

    let mut second = Pop3::connect(pop3);
    second.ok(&format!("USER {BOB}"));
    let busy = second.err("PASS secret");
    assert!(busy.starts_with("-ERR [IN-USE] "), "{busy}");
    // Not logged in: TRANSACTION commands are refused; AUTH PLAIN and the
    // TLS port say IN-USE too.
    second.err("STAT");
    let plain = base64_plain(BOB, "secret");
    assert!(second
        .err(&format!("AUTH PLAIN {plain}"))
        .starts_with("-ERR [IN-USE] "));
    let out = poplib(
        r#"
p = poplib.POP3_SSL("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=60)
p.user("bob@example.test")
try:
    p.pass_("secret")
    print(json.dumps("logged in"))
except poplib.error_proto as e:
    print(json.dumps(s(e.args[0])))
"#,
        &[&port(&server, "pop3s")],
    );
    assert!(out.as_str().unwrap().starts_with("-ERR [IN-USE] "), "{out}");
    // The first session is unaffected.
    assert_eq!(first.ok("STAT"), "+OK 0 0");
    first.ok("QUIT");

    // Released at QUIT, after its deletes: the same connection logs in.
    second.ok(&format!("USER {BOB}"));
    assert_eq!(
        second.ok("PASS secret"),
        "+OK maildrop has 0 messages (0 octets)"
    );
    second.ok("QUIT");
}

#[test]
fn a_shutdown_mid_session_deletes_nothing() {
    let t = bob("");
    let server = t.start();
    deliver_all(&server, &["a"]);
    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    pop.ok("DELE 1");
    let (status, _) = server.stop_with("TERM");
    assert!(status.success(), "{status:?}");
    // The session is told, and ends without the UPDATE state.
    assert_eq!(
        pop.line(),
        "-ERR [SYS/TEMP] server shutting down; nothing was deleted"
    );
    assert!(pop.is_closed());
    let server = t.start();
    let mut pop = Pop3::login(addr(&server, "pop3"), BOB, "secret");
    assert_eq!(pop.multi("LIST").len(), 1);
    pop.ok("QUIT");
}
