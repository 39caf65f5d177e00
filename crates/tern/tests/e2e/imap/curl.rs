//! curl as an IMAP client (its IMAP URL scheme, RFC 5092): listing
//! mailboxes, fetching a message by UID, a custom EXAMINE, over plain
//! IMAP and over implicit TLS.

use super::*;

#[test]
fn curl_lists_mailboxes_and_fetches_a_message_by_uid() {
    let t = with_bob();
    let server = t.start();
    let sent = message("for curl", "fetched by curl\r\n");
    deliver(&server, &sent);
    deliver(&server, &message("second", "another\r\n"));
    let stored = Mailstore::open(&t).find(USER, "for curl");
    let user = format!("{USER}:secret");
    let base = format!("imap://127.0.0.1:{}", port(&server, "imap"));
    let dir = t.dir.path();

    let out = run_tool("curl", &["-sS", &format!("{base}/"), "--user", &user], dir);
    assert!(out.status.success(), "{}", transcript(&out));
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    for name in ["INBOX", "Sent", "Drafts", "Trash"] {
        assert!(list.contains(name), "{name} listed: {list}");
    }

    // /INBOX lists INBOX (LIST "INBOX" *); ?ALL searches it.
    let out = run_tool(
        "curl",
        &["-sS", &format!("{base}/INBOX"), "--user", &user],
        dir,
    );
    assert!(out.status.success(), "{}", transcript(&out));
    let inbox = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(inbox.starts_with("* LIST ("), "{inbox}");
    assert!(
        inbox.trim_end().ends_with(" \"/\" \"INBOX\"")
            || inbox.trim_end().ends_with(" \"/\" INBOX"),
        "{inbox}"
    );
    let out = run_tool(
        "curl",
        &["-sS", &format!("{base}/INBOX?ALL"), "--user", &user],
        dir,
    );
    assert!(out.status.success(), "{}", transcript(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "* SEARCH 1 2"
    );

    let out = run_tool(
        "curl",
        &[
            "-sS",
            &format!("{base}/INBOX;UID={}", stored.uid.0),
            "--user",
            &user,
        ],
        dir,
    );
    assert!(out.status.success(), "{}", transcript(&out));
    assert!(out.stdout == stored.raw, "{}", transcript(&out));

    let out = run_tool(
        "curl",
        &[
            "-sS",
            &format!("{base}/"),
            "-X",
            "EXAMINE INBOX",
            "--user",
            &user,
        ],
        dir,
    );
    assert!(out.status.success(), "{}", transcript(&out));
    let examine = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(examine.contains("* 2 EXISTS"), "{examine}");

    let imaps = format!("imaps://127.0.0.1:{}", port(&server, "imaps"));
    let out = run_tool(
        "curl",
        &[
            "-sSk",
            &format!("{imaps}/INBOX;UID={}", stored.uid.0),
            "--user",
            &user,
        ],
        dir,
    );
    assert!(out.status.success(), "{}", transcript(&out));
    assert!(out.stdout == stored.raw, "{}", transcript(&out));

    // A wrong password fails.
    let out = run_tool(
        "curl",
        &[
            "-sS",
            &format!("{base}/INBOX;UID=1"),
            "--user",
            &format!("{USER}:wrong"),
        ],
        dir,
    );
    assert!(!out.status.success(), "{}", transcript(&out));
}
