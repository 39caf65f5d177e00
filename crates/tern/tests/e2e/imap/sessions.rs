//! Several sessions on one mailbox, by raw TCP: what one session changes
//! reaches the others as untagged FETCH, EXPUNGE and EXISTS with
//! consistent message numbers (RFC 9051 §7.5.1, §2.3.1.2), never an
//! EXPUNGE during a FETCH by number, and IDLE (RFC 2177) pushes changes as
//! they are committed.

use super::*;

/// A session's view of a mailbox, kept by applying untagged responses:
/// the UID at each message number, `None` for a message announced by
/// EXISTS whose UID the session has not asked for.
struct View {
    uids: Vec<Option<u32>>,
    /// (UID, response) of each FETCH applied.
    fetched: Vec<(Option<u32>, String)>,
}

impl View {
    fn new(uids: &[u32]) -> View {
        View {
            uids: uids.iter().copied().map(Some).collect(),
            fetched: Vec::new(),
        }
    }

    /// Applies `responses` in order, asserting that every number is valid
    /// when it is used.
    #[track_caller]
    fn apply(&mut self, responses: &Done) {
        for r in &responses.untagged {
            let Some((n, kind)) = r.numbered() else {
                continue;
            };
            let n = n as usize;
            match kind.as_str() {
                "EXPUNGE" => {
                    assert!(n >= 1 && n <= self.uids.len(), "{r:?} with {:?}", self.uids);
                    self.uids.remove(n - 1);
                }
                "EXISTS" => {
                    assert!(n >= self.uids.len(), "{r:?} shrinks {:?}", self.uids);
                    self.uids.resize(n, None);
                }
                "FETCH" => {
                    assert!(n >= 1 && n <= self.uids.len(), "{r:?} with {:?}", self.uids);
                    let uid = self.uids[n - 1];
                    if r.contains("UID ") {
                        let said = number_after(&r.text(), "UID") as u32;
                        assert!(uid.is_none() || uid == Some(said), "{r:?} but {uid:?}");
                        self.uids[n - 1] = Some(said);
                    }
                    self.fetched.push((self.uids[n - 1], r.text()));
                }
                _ => {}
            }
        }
    }
}

#[test]
fn updates_from_another_session_keep_message_numbers_consistent() {
    let t = with_bob();
    let server = t.start();
    for i in 1..=3 {
        deliver(&server, &message(&format!("m{i}"), "hello\r\n"));
    }
    let imap = addr(&server, "imap");
    let mut a = Imap::login(imap);
    let select = a.run("SELECT INBOX");
    select.ok();
    assert_eq!(select.line("* 3 EXISTS"), "* 3 EXISTS");
    let mut view = View::new(&[1, 2, 3]);

    // B flags message 1, expunges message 2; then a fourth message arrives.
    let mut b = Imap::select(imap, "INBOX");
    b.run("STORE 1 +FLAGS (\\Flagged)").ok();
    b.run("STORE 2 +FLAGS (\\Deleted)").ok();
    let expunge = b.run("EXPUNGE");
    expunge.ok();
    assert_eq!(
        expunge.numbered(),
        [(2, "EXPUNGE".to_string())],
        "{expunge}"
    );
    deliver(&server, &message("m4", "hello\r\n"));

    let noop = a.run("NOOP");
    noop.ok();
    view.apply(&noop);
    let kinds: Vec<String> = noop.numbered().into_iter().map(|(_, k)| k).collect();
    for kind in ["FETCH", "EXPUNGE", "EXISTS"] {
        assert_eq!(
            kinds.iter().filter(|k| *k == kind).count(),
            1,
            "one {kind} in:\n{noop}"
        );
    }
    assert_eq!(view.uids, [Some(1), Some(3), None], "{noop}");
    assert_eq!(view.fetched.len(), 1);
    assert_eq!(
        view.fetched[0].0,
        Some(1),
        "the FETCH is about UID 1: {noop}"
    );
    assert_eq!(flags_of(&view.fetched[0].1), ["\\Flagged"], "{noop}");

    let fetch = a.run("FETCH 1:* (UID)");
    fetch.ok();
    view.apply(&fetch);
    let uids: Vec<u32> = view.uids.iter().map(|u| u.unwrap()).collect();
    assert_eq!(uids, [1, 3, 4]);
    assert_eq!(uids, stored_uids(&t));

    // B expunges UID 3 (A's message 2) just before A fetches by number:
    // A's FETCH must not say EXPUNGE, and its numbers keep their meaning.
    b.run("UID STORE 3 +FLAGS (\\Deleted)").ok();
    b.run("UID EXPUNGE 3").ok();
    view.fetched.clear();
    let fetch = a.run("FETCH 1:* (UID FLAGS)");
    fetch.ok();
    assert!(
        !fetch
            .untagged
            .iter()
            .any(|r| r.contains("EXPUNGE") || r.contains("VANISHED")),
        "no EXPUNGE during FETCH by number (RFC 9051 §7.5.1):\n{fetch}"
    );
    view.apply(&fetch);
    assert_eq!(view.uids, [Some(1), Some(3), Some(4)], "{fetch}");
    assert!(
        view.fetched.iter().all(|(uid, _)| *uid != Some(3)),
        "nothing fetched of the expunged message: {fetch}"
    );
    // A STORE and a SEARCH by number hold it back too.
    let store = a.run("STORE 1 +FLAGS ($Seen1)");
    store.ok();
    assert!(store.lines("* 2 EXPUNGE").is_empty(), "{store}");
    let search = a.run("SEARCH ALL");
    search.ok();
    assert!(search.lines("* 2 EXPUNGE").is_empty(), "{search}");

    // The next NOOP announces it.
    let noop = a.run("NOOP");
    noop.ok();
    view.apply(&noop);
    // One recent message fewer (IMAP4rev1, RFC 3501 §7.3.2).
    assert_eq!(
        noop.numbered(),
        [(2, "EXPUNGE".to_string()), (2, "RECENT".to_string())],
        "{noop}"
    );
    assert_eq!(view.uids, [Some(1), Some(4)]);
    let fetch = a.run("FETCH 1:* (UID)");
    view.apply(&fetch);
    let uids: Vec<u32> = view.uids.iter().map(|u| u.unwrap()).collect();
    assert_eq!(uids, stored_uids(&t));
    assert_eq!(uids, [1, 4]);
}

#[test]
fn idle_pushes_new_mail_flag_changes_and_expunges() {
    let t = with_bob();
    let server = t.start();
    deliver(&server, &message("before idle", "hello\r\n"));
    let imap = addr(&server, "imap");
    let mut a = Imap::select(imap, "INBOX");
    let mut b = Imap::select(imap, "INBOX");

    a.send("i1 IDLE\r\n");
    let go = a.response();
    assert!(go.starts_with("+ "), "{go:?}");

    // New mail: A hears of it without sending anything.
    deliver(&server, &message("during idle", "hello\r\n"));
    let exists = a.response();
    assert_eq!(exists.text(), "* 2 EXISTS");
    // Selected first, A claimed the first message as recent; the new one
    // is A's too (RFC 3501 §2.3.2), B being told of it later.
    assert_eq!(a.response().text(), "* 2 RECENT");

    // A flag stored by B.
    b.run("STORE 1 +FLAGS (\\Flagged)").ok();
    let fetch = a.response();
    assert_eq!(
        fetch.numbered(),
        Some((1, "FETCH".to_string())),
        "{fetch:?}"
    );
    assert_eq!(flags_of(&fetch.text()), ["\\Flagged"], "{fetch:?}");

    // An expunge by B (a FETCH for its \Deleted may come first).
    b.run("STORE 2 +FLAGS (\\Deleted)").ok();
    b.run("EXPUNGE").ok();
    loop {
        let r = a.response();
        match r.numbered() {
            Some((2, kind)) if kind == "EXPUNGE" => break,
            Some((2, kind)) if kind == "FETCH" => {
                assert!(r.contains("\\Deleted"), "{r:?}")
            }
            _ => panic!("unexpected during IDLE: {r:?}"),
        }
    }

    a.send("DONE\r\n");
    let done = a.until_tagged("i1");
    done.ok();
    // The expunged message was recent for A: one recent fewer.
    assert_eq!(done.numbered(), [(1, "RECENT".to_string())], "{done}");
    let fetch = a.run("FETCH 1:* (UID FLAGS)");
    assert_eq!(fetch.fetches().len(), 1, "{fetch}");
    assert_eq!(flags_of(&fetch.fetches()[0].text()), ["\\Flagged"]);
}

#[test]
fn idle_ends_on_a_done_split_around_an_update() {
    let t = with_bob();
    let server = t.start();
    let mut a = Imap::select(addr(&server, "imap"), "INBOX");
    a.send("i1 IDLE\r\n");
    assert!(a.response().starts_with("+ "));
    // TCP may cut "DONE" anywhere. Half of it arrives; then an update is
    // pushed (a whole SMTP transaction later, so the half is read by then);
    // then the rest. The half already read must not be lost.
    a.send("DO");
    deliver(&server, &message("while half done", "hello\r\n"));
    assert_eq!(a.response().text(), "* 1 EXISTS");
    a.send("NE\r\n");
    a.until_tagged("i1").ok();
    a.run("NOOP").ok();
}

#[test]
fn deleting_the_mailbox_another_session_has_selected() {
    let t = with_bob();
    let server = t.start();
    let imap = addr(&server, "imap");
    let mut a = Imap::login(imap);
    a.run("CREATE Box").ok();
    a.send("a1 APPEND Box {16+}\r\nSubject: x\r\n\r\nx\r\n\r\n");
    a.until_tagged("a1").ok();
    a.run("SELECT Box").ok();
    let mut b = Imap::login(imap);
    b.run("DELETE Box").ok();

    // A may be told with BYE — and then the connection must close (RFC
    // 9051 §7.1.5: BYE says the server is about to close it) — or carry
    // on, but then no longer in a mailbox that is gone.
    a.send("n1 NOOP\r\n");
    let mut bye = None;
    while let Some(r) = a.read() {
        if r.starts_with("* BYE") {
            bye = Some(r);
            continue;
        }
        assert!(
            bye.is_none(),
            "after {bye:?} the server must close the connection, but it sent {r:?}"
        );
        if r.starts_with("n1 ") {
            let fetch = a.run("FETCH 1 (FLAGS)");
            assert!(
                fetch.tagged.starts_with("NO ") || fetch.tagged.starts_with("BAD "),
                "FETCH in a deleted mailbox: {fetch}"
            );
            a.run("SELECT INBOX").ok();
            break;
        }
    }
    let mut again = Imap::login(imap);
    again.run("SELECT INBOX").ok();
}

/// \Recent is claimed once (RFC 3501 §2.3.2), and a restart does not hand
/// the same messages out again: the claims reach the Store by shutdown.
#[test]
fn recent_is_claimed_once_across_a_restart() {
    let t = with_bob();
    let server = t.start();
    deliver(&server, &message("one", "hello\r\n"));
    deliver(&server, &message("two", "hello\r\n"));
    let imap = addr(&server, "imap");
    let mut a = Imap::login(imap);
    let first = a.run("SELECT INBOX");
    first.ok();
    assert_eq!(first.lines("* 2 RECENT").len(), 1, "{first}");
    let mut b = Imap::login(imap);
    let second = b.run("SELECT INBOX");
    assert_eq!(second.lines("* 0 RECENT").len(), 1, "{second}");
    let status = b.run("STATUS Archive (RECENT)");
    status.ok();
    drop((a, b));
    let (exit, _) = server.stop_with("TERM");
    assert!(exit.success());

    let server = t.start();
    let mut c = Imap::login(addr(&server, "imap"));
    let after = c.run("SELECT INBOX");
    after.ok();
    assert_eq!(after.lines("* 0 RECENT").len(), 1, "{after}");
}
