//! Mailboxes (RFC 9051 §6.3): CREATE with missing parents and with
//! CREATE-SPECIAL-USE (RFC 6154 §3), RENAME taking children along, DELETE,
//! SUBSCRIBE and LSUB, LIST with wildcards, LIST-STATUS (RFC 5819) and
//! SPECIAL-USE returns, STATUS with SIZE (RFC 8438) and HIGHESTMODSEQ,
//! non-ASCII names in modified UTF-7 and, after ENABLE UTF8=ACCEPT (RFC
//! 6855), in UTF-8; and QUOTA (RFC 9208).

use super::*;

const PY_MAILBOXES: &str = r#"
M = login()
out = {}
def lst(*args):
    typ, dat = M._simple_command("LIST", *args)
    if typ != "OK":
        raise SystemExit(f"LIST {args}: {typ} {dat}")
    lists = text(M._untagged_response(typ, dat, "LIST")[1])
    return [lists, text(M.response("STATUS")[1])]
M.response("STATUS")
out["delimiter"] = lst('""', '""')[0]
out["create_child"] = status(M.create("a/b"))
out["list_a"] = lst('""', "a*")[0]
out["create_special"] = status(M._simple_command("CREATE", "Important", "(USE (\\Flagged))"))
out["create_dup"] = status(M.create("a"))
out["create_grandchild"] = status(M.create("a/b/c"))
out["rename"] = status(M.rename("a", "z"))
out["list_all"] = lst('""', "*")[0]
out["list_top"] = lst('""', "%")[0]
out["list_ref"] = lst('"z/"', "%")[0]
out["delete"] = status(M.delete("z/b/c"))
out["delete_missing"] = status(M.delete("nope"))
out["list_z"] = lst('""', "z*")[0]

out["subscribe"] = status(M.subscribe("Important"))
out["lsub"] = ok(M.lsub('""', "*"))
out["unsubscribe"] = status(M.unsubscribe("Important"))
out["lsub_after"] = ok(M.lsub('""', "*"))

ok(M.append("Important", "(\\Seen)", None, b"Subject: one\r\n\r\nfirst\r\n"))
ok(M.append("Important", None, None, b"Subject: two\r\n\r\nsecond message\r\n"))
out["list_status"] = lst('""', "*", "RETURN", "(STATUS (MESSAGES UNSEEN))")
out["list_special"] = lst('""', "*", "RETURN", "(SPECIAL-USE)")[0]
out["status"] = ok(M.status("Important", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)"))

# Modified UTF-7, sent and shown as the client wrote it.
out["create_mutf7"] = status(M.create("Entw&APw-rfe"))
out["list_mutf7"] = lst('""', "Entw*")[0]
out["select_mutf7"] = status(M.select("Entw&APw-rfe"))
out["bad_mutf7"] = status(M.create("Bad&-&Jjo"))

# UTF-8 after ENABLE UTF8=ACCEPT (in the authenticated state, RFC 5161 §3.1);
# imaplib needs the post-login capabilities.
ok(M.unselect())
M.capabilities = tuple(ok(M.capability()).upper().split())
out["enable"] = status(M.enable("UTF8=ACCEPT"))
out["list_utf8"] = lst('""', "Entw*")[0]
out["create_utf8"] = status(M.create("Ünïcode"))
M.logout()

M = login()
out["select_lowercase"] = ok(M.select("inbox"))
ok(M.append("INBOX", None, None, b"Subject: old\r\n\r\nold mail\r\n"))
out["rename_inbox"] = status(M.rename("INBOX", "OldInbox"))
out["inbox_after_rename"] = ok(M.status("INBOX", "(MESSAGES)"))
out["old_after_rename"] = ok(M.status("OldInbox", "(MESSAGES)"))
out["list_utf8_as_mutf7"] = lst('""', "*code")[0]
M.logout()
print(json.dumps(out))
"#;

fn names(list: &str) -> Vec<String> {
    list.lines()
        .map(|l| {
            let name = l.rsplit_once(" \"/\" ").expect("a LIST line").1;
            name.trim_matches('"').to_string()
        })
        .collect()
}

/// The attributes of `name` in a LIST reply.
#[track_caller]
fn attributes(list: &str, name: &str) -> Vec<String> {
    let line = list
        .lines()
        .find(|l| {
            l.ends_with(&format!(" \"/\" {name}")) || l.ends_with(&format!(" \"/\" \"{name}\""))
        })
        .unwrap_or_else(|| panic!("no {name} in {list}"));
    let inner = &line[line.find('(').unwrap() + 1..line.find(')').unwrap()];
    inner.split_whitespace().map(String::from).collect()
}

#[test]
fn create_rename_delete_subscribe_list_and_status() {
    let t = with_bob();
    let server = t.start();
    let out = imaplib(&server, PY_MAILBOXES, &[]);
    let s = |key: &str| out[key].as_str().unwrap().to_string();
    let status_is = |key: &str, status: &str, code: &str| {
        assert_eq!(out[key][0], status, "{key}: {out}");
        assert!(
            out[key][1].as_str().unwrap().starts_with(code),
            "{key}: {out}"
        );
    };

    assert_eq!(s("delimiter"), "(\\Noselect) \"/\" \"\"", "{out}");
    status_is("create_child", "OK", "");
    assert_eq!(
        names(&s("list_a")),
        ["a", "a/b"],
        "the parent was created: {out}"
    );
    assert!(attributes(&s("list_a"), "a").contains(&"\\HasChildren".into()));
    assert!(attributes(&s("list_a"), "a/b").contains(&"\\HasNoChildren".into()));
    status_is("create_special", "OK", "");
    status_is("create_dup", "NO", "[ALREADYEXISTS]");
    status_is("create_grandchild", "OK", "");

    status_is("rename", "OK", "");
    let all = names(&s("list_all"));
    for name in [
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Junk",
        "Archive",
        "Important",
        "z",
        "z/b",
        "z/b/c",
    ] {
        assert!(all.contains(&name.to_string()), "{name} in {all:?}");
    }
    assert!(
        !all.iter().any(|n| n == "a" || n.starts_with("a/")),
        "{all:?}"
    );
    let mut top = names(&s("list_top"));
    top.sort();
    assert_eq!(
        top,
        [
            "Archive",
            "Drafts",
            "INBOX",
            "Important",
            "Junk",
            "Sent",
            "Trash",
            "z"
        ],
        "{out}"
    );
    assert_eq!(names(&s("list_ref")), ["z/b"], "{out}");

    status_is("delete", "OK", "");
    status_is("delete_missing", "NO", "[NONEXISTENT]");
    assert_eq!(names(&s("list_z")), ["z", "z/b"], "{out}");
    assert!(attributes(&s("list_z"), "z/b").contains(&"\\HasNoChildren".into()));

    status_is("subscribe", "OK", "");
    assert!(names(&s("lsub")).contains(&"Important".into()), "{out}");
    status_is("unsubscribe", "OK", "");
    assert!(
        !names(&s("lsub_after")).contains(&"Important".into()),
        "{out}"
    );

    let statuses = out["list_status"][1].as_str().unwrap().replace('"', "");
    assert!(
        statuses.contains("Important (MESSAGES 2 UNSEEN 1)"),
        "LIST-STATUS: {out}"
    );
    assert!(statuses.contains("INBOX (MESSAGES 0 UNSEEN 0)"), "{out}");
    let special = s("list_special");
    for (name, attr) in [
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Trash", "\\Trash"),
        ("Junk", "\\Junk"),
        ("Archive", "\\Archive"),
        ("Important", "\\Flagged"),
    ] {
        assert!(
            attributes(&special, name).contains(&attr.into()),
            "{name}: {special}"
        );
    }
    assert!(!attributes(&special, "z").iter().any(|a| a == "\\Flagged"));

    let status = s("status").replace('"', "");
    assert!(status.starts_with("Important ("), "{status}");
    assert_eq!(number_after(&status, "MESSAGES"), 2, "{status}");
    assert_eq!(number_after(&status, "UIDNEXT"), 3, "{status}");
    assert_eq!(number_after(&status, "UNSEEN"), 1, "{status}");
    let size =
        "Subject: one\r\n\r\nfirst\r\n".len() + "Subject: two\r\n\r\nsecond message\r\n".len();
    assert_eq!(number_after(&status, "SIZE"), size as u64, "{status}");
    assert!(number_after(&status, "UIDVALIDITY") > 0, "{status}");
    assert!(number_after(&status, "HIGHESTMODSEQ") > 0, "{status}");

    status_is("create_mutf7", "OK", "");
    assert_eq!(names(&s("list_mutf7")), ["Entw&APw-rfe"], "{out}");
    status_is("select_mutf7", "OK", "");
    status_is("bad_mutf7", "NO", "");
    status_is("enable", "OK", "");
    assert_eq!(
        names(&s("list_utf8")),
        ["Entwürfe"],
        "UTF-8 after ENABLE: {out}"
    );
    status_is("create_utf8", "OK", "");
    assert_eq!(s("select_lowercase"), "0", "INBOX in any case: {out}");
    // RFC 9051 §6.3.6: renaming INBOX moves its messages, INBOX stays.
    status_is("rename_inbox", "OK", "");
    assert!(s("inbox_after_rename").ends_with("(MESSAGES 0)"), "{out}");
    assert!(s("old_after_rename").ends_with("(MESSAGES 1)"), "{out}");
    assert_eq!(
        names(&s("list_utf8_as_mutf7")),
        ["&ANw-n&AO8-code"],
        "a UTF-8 name in modified UTF-7 for another client: {out}"
    );
}

const PY_QUOTA: &str = r#"
M = login()
out = {}
ok(M.append("INBOX", None, None, b"Subject: small\r\n\r\n" + b"x" * 3000 + b"\r\n"))
out["root"] = [text(d) for d in M.getquotaroot("INBOX")[1]]
out["quota"] = ok(M.getquota('""'))
big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 1100
out["over"] = status(M.append("INBOX", None, None, big))
out["messages"] = ok(M.select("INBOX"))
out["quota_after"] = ok(M.getquota('""'))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn quota_roots_usage_and_overquota_append() {
    let t = TestDir::new();
    t.ok(&["domain", "add", "example.test"], "");
    t.ok(
        &[
            "account",
            "add",
            USER,
            "--password-stdin",
            "--allow-weak",
            "--quota",
            "1M",
        ],
        "secret\n",
    );
    let server = t.start();
    let out = imaplib(&server, PY_QUOTA, &[]);
    let used = (3000 + "Subject: small\r\n\r\n\r\n".len() as u64).div_ceil(1024);
    let root = out["root"].as_array().unwrap();
    assert_eq!(root.len(), 2, "{out}");
    assert_eq!(
        root[0].as_str().unwrap().replace('"', ""),
        "INBOX ",
        "{out}"
    );
    assert_eq!(root[1], format!("\"\" (STORAGE {used} 1024)"), "{out}");
    assert_eq!(out["quota"], format!("\"\" (STORAGE {used} 1024)"), "{out}");
    assert_eq!(out["over"][0], "NO", "{out}");
    assert!(
        out["over"][1].as_str().unwrap().starts_with("[OVERQUOTA]"),
        "{out}"
    );
    assert_eq!(out["messages"], "1", "nothing of the big one stayed: {out}");
    assert_eq!(out["quota_after"], out["quota"], "{out}");
}
