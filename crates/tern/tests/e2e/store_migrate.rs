//! `tern store migrate` end to end (issue 16): a server on the embedded
//! SQLite store with mail in it, stopped; its store copied into
//! PostgreSQL by the command; a server started with the same
//! configuration but `[store] backend = "postgres"` gives an IMAP client
//! the same answers — UIDVALIDITY, UIDs, flags, modseqs, the messages'
//! bytes — so a client resynchronises nothing, and new mail continues
//! the UIDs.

use crate::cluster::{psql, server_url, ScratchDb};
use crate::imap::{addr, deliver, message, with_bob, Imap, Server};

/// The mailboxes the test reads.
const MAILBOXES: &[&str] = &["INBOX", "Projects", "Archive"];

/// What an IMAP client sees of bob's mail: per mailbox the SELECT
/// (CONDSTORE) data, every message's UID, flags, modseq, size and bytes,
/// and a text search; the mailbox list. `\Recent` (claimed by whichever
/// session selects first) is left out.
fn imap_view(server: &Server) -> Vec<String> {
    let mut imap = Imap::login(addr(server, "imap"));
    let mut view = Vec::new();
    for mailbox in MAILBOXES {
        let select = imap.run(&format!("SELECT {mailbox} (CONDSTORE)"));
        select.ok();
        view.extend(
            select
                .untagged
                .iter()
                .map(|r| r.text())
                .filter(|t| !t.contains("RECENT")),
        );
        let fetch = imap.run("UID FETCH 1:* (FLAGS MODSEQ RFC822.SIZE BODY.PEEK[])");
        fetch.ok();
        view.extend(
            fetch
                .untagged
                .iter()
                .map(|r| r.text().replace("\\Recent", "")),
        );
        view.push(imap.run("UID SEARCH TEXT needle").ok().line("* SEARCH"));
    }
    let list = imap.run("LIST \"\" \"*\"");
    view.extend(list.ok().lines("* LIST"));
    view.push(
        imap.run("STATUS Trash (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
            .ok()
            .line("* STATUS"),
    );
    imap.run("LOGOUT");
    view
}

/// The UIDNEXT a SELECT of the mailbox reports.
fn uid_next(view: &[String], mailbox_index: usize) -> u32 {
    view.iter()
        .filter_map(|l| l.strip_prefix("* OK [UIDNEXT "))
        .nth(mailbox_index)
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no UIDNEXT in {view:?}"))
}

#[test]
fn a_sqlite_deployment_moved_to_postgres_answers_imap_clients_as_before() {
    let Some(admin) = server_url() else { return };
    let db = ScratchDb::create(&admin);
    let t = with_bob();
    let server = t.start();
    for (subject, body) in [
        ("first", "hello"),
        ("second", "the needle is here"),
        ("third", "to be expunged"),
        ("fourth", "another needle"),
    ] {
        deliver(&server, &message(subject, body));
    }
    let mut imap = Imap::login(addr(&server, "imap"));
    imap.run("CREATE Projects").ok();
    imap.run("SELECT INBOX").ok();
    imap.run("UID STORE 1 +FLAGS (\\Seen $Work)").ok();
    imap.run("UID STORE 4 +FLAGS (\\Flagged)").ok();
    imap.run("UID MOVE 2 Projects").ok();
    imap.run("UID STORE 3 +FLAGS (\\Deleted)").ok();
    imap.run("EXPUNGE").ok();
    let appended = message("appended", "kept in the archive");
    imap.send(format!(
        "a1 APPEND Archive (\\Seen) {{{}}}\r\n",
        appended.len()
    ));
    assert!(imap.response().starts_with("+"));
    imap.send([appended.as_slice(), b"\r\n"].concat());
    imap.until_tagged("a1").ok();
    imap.run("LOGOUT");
    // The first look claims \Recent; the second is what any later
    // session sees.
    imap_view(&server);
    let before = imap_view(&server);

    let data_dir = t.data_dir();
    let from = format!("sqlite:{}", data_dir.display());
    let migrate = ["store", "migrate", "--from", &from, "--to", &db.url];
    let refused = t.fails(&migrate, "");
    assert!(
        refused.contains("tern serve") && refused.contains("stop it first"),
        "refused while the server runs: {refused}"
    );
    let (status, _) = server.stop_with("TERM");
    assert!(status.success());
    let copied = t.ok(&migrate, "");
    assert!(copied.contains("copied"), "{copied}");
    assert_eq!(psql(&db.url, "SELECT count(*) FROM account"), "1");

    let config = std::fs::read_to_string(t.config()).unwrap();
    std::fs::write(
        t.config(),
        format!(
            "{config}\n[store]\nbackend = \"postgres\"\nurl = \"{}\"\n",
            db.url
        ),
    )
    .unwrap();
    let server = t.start();
    let after = imap_view(&server);
    assert_eq!(before, after, "the same IMAP answers from PostgreSQL");

    // New mail continues where the SQLite store left off.
    deliver(&server, &message("fifth", "after the move"));
    let mut imap = Imap::login(addr(&server, "imap"));
    imap.run("SELECT INBOX").ok();
    let fetch = imap.run("UID FETCH * (UID)");
    let expected = uid_next(&before, 0);
    assert!(
        fetch.ok().fetches()[0].contains(&format!("UID {expected}")),
        "the next UID is {expected}: {fetch}"
    );
    drop(server);
}
