//! CONDSTORE and QRESYNC (RFC 7162) by raw TCP: HIGHESTMODSEQ at SELECT,
//! FETCH CHANGEDSINCE, and a client coming back with what it knew — SELECT
//! (QRESYNC ...) and UID FETCH (CHANGEDSINCE ... VANISHED) must name
//! exactly the expunged UIDs and the changed messages.

use super::*;

/// (UID, flags) of each FETCH in `done`, which must carry UID and MODSEQ.
#[track_caller]
fn changed(done: &Done) -> Vec<(u64, Vec<String>)> {
    done.fetches()
        .iter()
        .map(|f| {
            let text = f.text();
            assert!(number_after(&text, "MODSEQ") > 0, "{text}");
            (number_after(&text, "UID"), flags_of(&text))
        })
        .collect()
}

#[test]
fn condstore_changedsince_and_qresync_resynchronisation() {
    let t = with_bob();
    let server = t.start();
    for i in 1..=5 {
        deliver(&server, &message(&format!("m{i}"), "hello\r\n"));
    }
    let imap = addr(&server, "imap");

    // CONDSTORE: HIGHESTMODSEQ at SELECT, then only what changed since.
    let mut a = Imap::login(imap);
    let select = a.run("SELECT INBOX (CONDSTORE)");
    select.ok();
    let m0 = number_after(&select.line("* OK [HIGHESTMODSEQ "), "HIGHESTMODSEQ");
    let validity = number_after(&select.line("* OK [UIDVALIDITY "), "UIDVALIDITY");
    let mut b = Imap::select(imap, "INBOX");
    b.run("STORE 2 +FLAGS (\\Flagged)").ok();
    let noop = a.run("NOOP");
    noop.ok();
    let update = noop.line("* 2 FETCH");
    assert!(number_after(&update, "MODSEQ") > m0, "{noop}");
    let since = a.run(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {m0})"));
    since.ok();
    let fetches = since.fetches();
    assert_eq!(fetches.len(), 1, "only message 2 changed:\n{since}");
    assert_eq!(fetches[0].numbered().unwrap().0, 2);
    assert_eq!(flags_of(&fetches[0].text()), ["\\Flagged"]);
    assert!(number_after(&fetches[0].text(), "MODSEQ") > m0, "{since}");

    // What a client that goes away now knows.
    let status = b.run("STATUS INBOX (HIGHESTMODSEQ UIDVALIDITY)");
    status.ok();
    let m1 = number_after(&status.line("* STATUS"), "HIGHESTMODSEQ");
    assert_eq!(
        number_after(&status.line("* STATUS"), "UIDVALIDITY"),
        validity
    );
    assert!(m1 > m0);

    // Meanwhile: UIDs 3 and 4 expunged, 1 and 5 changed, 2 untouched.
    b.run("STORE 3:4 +FLAGS (\\Deleted)").ok();
    b.run("EXPUNGE").ok();
    b.run("UID STORE 1 +FLAGS (\\Answered)").ok();
    b.run("UID STORE 5 +FLAGS ($Junk)").ok();

    let mut c = Imap::login(imap);
    let enable = c.run("ENABLE QRESYNC");
    enable.ok();
    assert_eq!(enable.line("* ENABLED"), "* ENABLED QRESYNC");
    let select = c.run(&format!("SELECT INBOX (QRESYNC ({validity} {m1}))"));
    select.ok();
    assert_eq!(
        select.lines("* VANISHED"),
        ["* VANISHED (EARLIER) 3:4"],
        "{select}"
    );
    assert_eq!(select.line("* 3 EXISTS"), "* 3 EXISTS");
    assert_eq!(
        changed(&select),
        [(1, sorted(&["\\Answered"])), (5, sorted(&["$Junk"]))],
        "{select}"
    );
    let numbers: Vec<u32> = select
        .fetches()
        .iter()
        .map(|f| f.numbered().unwrap().0)
        .collect();
    assert_eq!(numbers, [1, 3], "{select}");

    let fetch = c.run(&format!(
        "UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m1} VANISHED)"
    ));
    fetch.ok();
    assert_eq!(
        fetch.lines("* VANISHED"),
        ["* VANISHED (EARLIER) 3:4"],
        "{fetch}"
    );
    assert_eq!(
        changed(&fetch),
        [(1, sorted(&["\\Answered"])), (5, sorted(&["$Junk"]))],
        "{fetch}"
    );

    // A stale UIDVALIDITY gets no resync, only the mailbox.
    c.run("UNSELECT").ok();
    let stale = c.run(&format!("SELECT INBOX (QRESYNC ({} {m1}))", validity + 1));
    stale.ok();
    assert!(stale.lines("* VANISHED").is_empty(), "{stale}");
    assert!(stale.fetches().is_empty(), "{stale}");

    // Under QRESYNC, expunges are announced as VANISHED, not EXPUNGE.
    b.run("UID STORE 5 +FLAGS (\\Deleted)").ok();
    b.run("UID EXPUNGE 5").ok();
    let noop = c.run("NOOP");
    noop.ok();
    assert_eq!(noop.lines("* VANISHED"), ["* VANISHED 5"], "{noop}");
    assert!(
        !noop.untagged.iter().any(|r| r.contains("EXPUNGE")),
        "{noop}"
    );
    // And A, without QRESYNC, hears EXPUNGE for each.
    let noop = a.run("NOOP");
    noop.ok();
    let expunges: Vec<u32> = noop
        .numbered()
        .into_iter()
        .filter(|(_, k)| k == "EXPUNGE")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(expunges.len(), 3, "{noop}");
}
