//! Removing and moving messages: EXPUNGE and UIDPLUS's UID EXPUNGE (RFC
//! 4315 §2.1), CLOSE's silent expunge and UNSELECT's none (RFC 9051
//! §6.4.1, RFC 3691), COPY with COPYUID and TRYCREATE, and MOVE (RFC 6851).

use super::*;

/// Applies `* n EXPUNGE` responses (as numbers) to a list of UIDs.
fn apply_expunges(uids: &mut Vec<u32>, expunged: &str) {
    for n in expunged.split_whitespace() {
        let n: usize = n.parse().expect("a message number");
        assert!(n >= 1 && n <= uids.len(), "EXPUNGE {n} of {uids:?}");
        uids.remove(n - 1);
    }
}

const PY_EXPUNGE: &str = r#"
M = login()
for i in range(1, 7):
    ok(M.append("INBOX", None, None, f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode()))
ok(M.select("INBOX"))
out = {}
ok(M.store("1,3", "+FLAGS.SILENT", "(\\Deleted)"))
out["expunge"] = ok(M.expunge())
out["after_expunge"] = ok(M.fetch("1:*", "(UID)"))

# Now UIDs 2 4 5 6: delete 4, 5 and 6, remove only 4 and 5.
ok(M.uid("STORE", "4:6", "+FLAGS.SILENT", "(\\Deleted)"))
out["uid_expunge"] = status(M.uid("EXPUNGE", "4:5"))
out["uid_expunged"] = text(M.response("EXPUNGE")[1])
out["after_uid_expunge"] = ok(M.fetch("1:*", "(UID FLAGS)"))

# CLOSE removes UID 6 and says nothing of it.
out["close"] = status(M.close())
out["close_expunged"] = text(M.response("EXPUNGE")[1])
out["after_close"] = ok(M.select("INBOX"))
out["uids_after_close"] = ok(M.fetch("1:*", "(UID)"))

# UNSELECT removes nothing.
ok(M.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
out["unselect"] = status(M.unselect())
out["unselect_expunged"] = text(M.response("EXPUNGE")[1])
out["after_unselect"] = ok(M.select("INBOX"))
out["flags_after_unselect"] = ok(M.fetch("1:*", "(UID FLAGS)"))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn expunge_uid_expunge_close_and_unselect() {
    let t = with_bob();
    let server = t.start();
    let out = imaplib(&server, PY_EXPUNGE, &[]);
    let s = |key: &str| out[key].as_str().unwrap().to_string();
    let uids_in = |key: &str| -> Vec<u32> {
        s(key)
            .lines()
            .map(|l| number_after(l, "UID") as u32)
            .collect()
    };

    let mut uids = vec![1, 2, 3, 4, 5, 6];
    apply_expunges(&mut uids, &s("expunge"));
    assert_eq!(uids, [2, 4, 5, 6], "{out}");
    assert_eq!(uids_in("after_expunge"), uids, "{out}");

    assert_eq!(out["uid_expunge"][0], "OK", "{out}");
    apply_expunges(&mut uids, &s("uid_expunged"));
    assert_eq!(uids, [2, 6], "only \\Deleted among the UIDs given: {out}");
    assert_eq!(uids_in("after_uid_expunge"), uids, "{out}");
    let after = s("after_uid_expunge");
    assert_eq!(
        flags_of(after.lines().nth(1).unwrap()),
        ["\\Deleted"],
        "{out}"
    );

    assert_eq!(out["close"][0], "OK", "{out}");
    assert_eq!(s("close_expunged"), "", "CLOSE is silent: {out}");
    assert_eq!(s("after_close"), "1", "{out}");
    assert_eq!(uids_in("uids_after_close"), [2], "{out}");

    assert_eq!(out["unselect"][0], "OK", "{out}");
    assert_eq!(s("unselect_expunged"), "", "{out}");
    assert_eq!(s("after_unselect"), "1", "UNSELECT expunged nothing: {out}");
    assert_eq!(flags_of(&s("flags_after_unselect")), ["\\Deleted"], "{out}");
    assert_eq!(stored_uids(&t), [2]);
}

const PY_COPY: &str = r#"
M = login()
for i in range(1, 4):
    ok(M.append("INBOX", None, None, f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode()))
ok(M.create("Saved"))
out = {"status": ok(M.status("Saved", "(UIDVALIDITY)"))}
ok(M.select("INBOX"))
out["copy"] = status(M.copy("1:2", "Saved"))
M.response("COPYUID")
out["uid_copy"] = status(M.uid("COPY", "3", "Saved"))
out["uid_copyuid"] = text(M.response("COPYUID")[1])
out["trycreate"] = status(M.copy("1", "Nowhere"))
M.response("COPYUID")
M.response("EXPUNGE")
typ, dat = M._simple_command("MOVE", "2", "Saved")
out["move"] = [typ, text(dat)]
out["move_copyuid"] = text(M.response("COPYUID")[1])
out["move_expunged"] = text(M.response("EXPUNGE")[1])
out["inbox"] = ok(M.fetch("1:*", "(UID)"))
out["uid_move"] = status(M.uid("MOVE", "3", "Saved"))
out["uid_move_expunged"] = text(M.response("EXPUNGE")[1])
out["inbox_after_uid_move"] = ok(M.fetch("1:*", "(UID)"))
ok(M.select("Saved"))
out["saved"] = ok(M.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (Subject)])"))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn copy_and_move_return_copyuid() {
    let t = with_bob();
    let server = t.start();
    let out = imaplib(&server, PY_COPY, &[]);
    let s = |key: &str| out[key].as_str().unwrap().to_string();
    let validity = number_after(&s("status"), "UIDVALIDITY");

    assert_eq!(out["copy"][0], "OK", "{out}");
    assert!(
        out["copy"][1]
            .as_str()
            .unwrap()
            .starts_with(&format!("[COPYUID {validity} 1:2 1:2]")),
        "{out}"
    );
    assert_eq!(out["uid_copy"][0], "OK", "{out}");
    assert_eq!(s("uid_copyuid"), format!("{validity} 3 3"), "{out}");
    assert_eq!(out["trycreate"][0], "NO", "{out}");
    assert!(
        out["trycreate"][1]
            .as_str()
            .unwrap()
            .starts_with("[TRYCREATE]"),
        "{out}"
    );

    assert_eq!(out["move"][0], "OK", "{out}");
    assert_eq!(s("move_copyuid"), format!("{validity} 2 4"), "{out}");
    assert_eq!(
        s("move_expunged"),
        "2",
        "MOVE expunges in the same session: {out}"
    );
    let uids = |key: &str| -> Vec<u64> {
        s(key)
            .lines()
            .filter(|l| l.contains("(UID "))
            .map(|l| number_after(l, "UID"))
            .collect()
    };
    assert_eq!(uids("inbox"), [1, 3], "{out}");
    assert_eq!(out["uid_move"][0], "OK", "{out}");
    assert_eq!(s("uid_move_expunged"), "2", "{out}");
    assert_eq!(uids("inbox_after_uid_move"), [1], "{out}");
    assert_eq!(stored_uids(&t), [1]);

    let saved = s("saved");
    let subjects: Vec<String> = saved
        .split("Subject: ")
        .skip(1)
        .map(|s| s.split('\r').next().unwrap().to_string())
        .collect();
    assert_eq!(subjects, ["m1", "m2", "m3", "m2", "m3"], "{saved}");
    assert_eq!(uids("saved"), [1, 2, 3, 4, 5], "{saved}");
}
