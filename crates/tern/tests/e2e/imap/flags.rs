//! STORE (RFC 9051 §6.4.6): adding, removing and replacing flags, the
//! .SILENT forms, and CONDSTORE's UNCHANGEDSINCE (RFC 7162 §3.1.3), which
//! must refuse a message another session changed meanwhile.

use super::*;

const PY_STORE: &str = r#"
M = login()
for i in range(3):
    ok(M.append("INBOX", None, None, f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode()))
ok(M.select("INBOX"))
out = {}
out["add"] = ok(M.store("1", "+FLAGS", "(\\Flagged \\Seen $Work)"))
out["remove"] = ok(M.store("1", "-FLAGS", "(\\Seen)"))
out["replace"] = ok(M.store("2", "FLAGS", "(\\Answered $Label1)"))
out["silent_add"] = ok(M.store("3", "+FLAGS.SILENT", "(\\Deleted \\Draft)"))
out["silent_remove"] = ok(M.store("3", "-FLAGS.SILENT", "(\\Draft)"))
out["clear"] = ok(M.store("2", "FLAGS.SILENT", "()"))
out["uid_store"] = ok(M.uid("STORE", "2", "+FLAGS", "(\\Seen)"))
out["fetch"] = [ok(M.fetch(str(i), "(FLAGS)")) for i in (1, 2, 3)]
M.logout()

# Another session sees what was stored.
M = login()
ok(M.select("INBOX", readonly=True))
out["other"] = ok(M.fetch("1:3", "(FLAGS)"))
out["readonly_store"] = status(M.store("1", "+FLAGS", "(\\Seen)"))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn store_adds_removes_and_replaces_flags() {
    let t = with_bob();
    let server = t.start();
    let out = imaplib(&server, PY_STORE, &[]);
    let s = |key: &str| out[key].as_str().unwrap().to_string();

    assert!(s("add").starts_with("1 (FLAGS"), "{out}");
    assert_eq!(
        flags_of(&s("add")),
        sorted(&["\\Flagged", "\\Seen", "$Work"])
    );
    assert_eq!(flags_of(&s("remove")), sorted(&["\\Flagged", "$Work"]));
    assert!(s("replace").starts_with("2 (FLAGS"), "{out}");
    assert_eq!(flags_of(&s("replace")), sorted(&["\\Answered", "$Label1"]));
    // .SILENT: no FETCH response.
    for key in ["silent_add", "silent_remove", "clear"] {
        assert_eq!(s(key), "", "{key}: {out}");
    }
    assert!(s("uid_store").contains("UID 2"), "{out}");
    assert_eq!(flags_of(&s("uid_store")), ["\\Seen"], "{out}");

    let fetched: Vec<Vec<String>> = out["fetch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| flags_of(f.as_str().unwrap()))
        .collect();
    assert_eq!(
        fetched,
        [
            sorted(&["\\Flagged", "$Work"]),
            sorted(&["\\Seen"]),
            sorted(&["\\Deleted"]),
        ],
        "{out}"
    );
    let other = s("other");
    assert_eq!(other.lines().count(), 3, "{other}");
    for (line, flags) in other.lines().zip(&fetched) {
        assert_eq!(&flags_of(line), flags, "{other}");
    }
    assert_eq!(out["readonly_store"][0], "NO", "{out}");
}

#[test]
fn uid_store_unchangedsince_reports_what_another_session_modified() {
    let t = with_bob();
    let server = t.start();
    for i in 1..=3 {
        deliver(&server, &message(&format!("m{i}"), "hello\r\n"));
    }
    let mut a = Imap::login(addr(&server, "imap"));
    let select = a.run("SELECT INBOX (CONDSTORE)");
    select.ok();
    let fetch = a.run("FETCH 1:3 (UID MODSEQ)");
    fetch.ok();
    let modseq = fetch
        .fetches()
        .iter()
        .map(|f| number_after(&f.text(), "MODSEQ"))
        .max()
        .unwrap();

    // B changes message 2 after A read the modseqs.
    let mut b = Imap::select(addr(&server, "imap"), "INBOX");
    b.run("STORE 2 +FLAGS (\\Flagged)").ok();

    let store = a.run(&format!(
        "UID STORE 1:3 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Seen)"
    ));
    store.is("OK", "[MODIFIED 2]");
    let fetch = a.run("FETCH 1:3 (FLAGS)");
    fetch.ok();
    let mut flags = std::collections::BTreeMap::new();
    for f in fetch.fetches() {
        flags.insert(f.numbered().unwrap().0, flags_of(&f.text()));
    }
    assert_eq!(flags[&1], ["\\Seen"], "{fetch}");
    assert_eq!(
        flags[&2],
        ["\\Flagged"],
        "not stored over B's change: {fetch}"
    );
    assert_eq!(flags[&3], ["\\Seen"], "{fetch}");

    // By sequence number the same: MODIFIED names message numbers.
    b.run("STORE 3 +FLAGS ($B)").ok();
    let now = a.run("FETCH 1 (MODSEQ)");
    let modseq = number_after(&now.fetches()[0].text(), "MODSEQ");
    let store = a.run(&format!(
        "STORE 1,3 (UNCHANGEDSINCE {modseq}) FLAGS.SILENT ($A)"
    ));
    store.is("OK", "[MODIFIED 3]");
}
