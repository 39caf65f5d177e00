//! FETCH data items (RFC 9051 §6.4.5, §7.5.2) on a multipart message with
//! an attachment: FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE,
//! BODYSTRUCTURE, body sections and partials, BINARY (RFC 3516), MODSEQ
//! (RFC 7162), EMAILID and THREADID (RFC 8474), and the implicit \Seen of
//! a non-PEEK body fetch.

use super::*;
use base64::Engine;

/// The attachment, with a NUL, 8-bit bytes and a CRLF that base64 hides.
const ATTACHMENT: &[u8] = b"\x00\x01\x02binary\xff\r\nmore";

fn report() -> (Vec<u8>, String) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(ATTACHMENT);
    let raw = format!(
        "From: Alice Example <alice@example.net>\r\nTo: bob@example.test\r\n\
Subject: Report attached\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\
Message-ID: <report.1@example.net>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
--sep\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attachment.\r\n\
--sep\r\nContent-Type: application/octet-stream; name=data.bin\r\n\
Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=data.bin\r\n\r\n\
{b64}\r\n--sep--\r\n"
    );
    (raw.into_bytes(), b64)
}

const PY_ITEMS: &str = r#"
M = login()
data = open(sys.argv[2], "rb").read()
out = {"append": status(M.append("INBOX", None, '"02-Nov-2026 10:00:00 +0000"', data))}
ok(M.select("INBOX"))
f = lambda items: ok(M.fetch("1", items))
out["meta"] = f("(FLAGS INTERNALDATE RFC822.SIZE)")
out["envelope"] = f("(ENVELOPE)")
out["bodystructure"] = f("(BODYSTRUCTURE)")
out["subject"] = literal(M.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject)])"))
out["part1"] = literal(M.fetch("1", "(BODY.PEEK[1])"))
out["mime2"] = literal(M.fetch("1", "(BODY.PEEK[2.MIME])"))
out["partial_text"] = f("(BODY.PEEK[]<0.10>)")
out["partial"] = literal(M.fetch("1", "(BODY.PEEK[]<0.10>)"))
out["binary_peek"] = literal(M.fetch("1", "(BINARY.PEEK[2])"))
out["ids"] = f("(MODSEQ EMAILID THREADID)")
out["flags_after_peek"] = f("(FLAGS)")
ok(M.select("INBOX", readonly=True))
out["examine_body"] = f("(BODY[])")
out["flags_after_examine"] = f("(FLAGS)")
ok(M.select("INBOX"))
out["body_text"] = f("(BODY[])")
out["flags_after_body"] = f("(FLAGS)")
out["binary"] = literal(M.fetch("1", "(BINARY[2])"))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn fetch_items_of_a_multipart_message() {
    let t = with_bob();
    let server = t.start();
    let (raw, b64) = report();
    let file = write_file(&t, "report.eml", &raw);
    let out = imaplib(&server, PY_ITEMS, &[file.to_str().unwrap()]);
    assert_eq!(out["append"][0], "OK", "{out}");
    let stored = Mailstore::open(&t).find(USER, "Report attached");
    assert_eq!(stored.raw, raw);
    let s = |key: &str| out[key].as_str().unwrap().to_string();

    let meta = s("meta");
    assert_eq!(flags_of(&meta), Vec::<String>::new(), "{meta}");
    assert!(
        meta.contains("INTERNALDATE \"02-Nov-2026 10:00:00 +0000\""),
        "{meta}"
    );
    assert!(
        meta.contains(&format!("RFC822.SIZE {}", stored.raw.len())),
        "{meta}"
    );

    let alice = "((\"Alice Example\" NIL \"alice\" \"example.net\"))";
    assert!(
        s("envelope").contains(&format!(
            "ENVELOPE (\"Mon, 2 Nov 2026 10:00:00 +0000\" \"Report attached\" {alice} {alice} {alice} \
             ((NIL NIL \"bob\" \"example.test\")) NIL NIL NIL \"<report.1@example.net>\")"
        )),
        "{out}"
    );

    let expected = format!(
        "BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 19 0 NIL NIL NIL NIL)\
(\"APPLICATION\" \"OCTET-STREAM\" (\"NAME\" \"data.bin\") NIL NIL \"BASE64\" {} NIL \
(\"ATTACHMENT\" (\"FILENAME\" \"data.bin\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"sep\") NIL NIL NIL)",
        b64.len()
    );
    assert!(
        s("bodystructure").contains(&expected),
        "{}\nexpected {expected}",
        s("bodystructure")
    );

    let text = |key: &str| String::from_utf8_lossy(&unbase64(&out[key])).into_owned();
    assert_eq!(text("subject"), "Subject: Report attached\r\n\r\n");
    assert_eq!(text("part1"), "See the attachment.");
    assert_eq!(
        text("mime2"),
        "Content-Type: application/octet-stream; name=data.bin\r\n\
Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=data.bin\r\n\r\n"
    );
    assert!(s("partial_text").contains("BODY[]<0> {10}"), "{out}");
    assert_eq!(text("partial"), "From: Alic");
    assert_eq!(unbase64(&out["binary_peek"]), ATTACHMENT);
    assert_eq!(unbase64(&out["binary"]), ATTACHMENT);

    let ids = s("ids");
    assert!(number_after(&ids, "MODSEQ") >= 1, "{ids}");
    assert!(
        ids.contains(&format!("EMAILID (M{})", stored.email.id.0)),
        "{ids}"
    );
    assert!(
        ids.contains(&format!("THREADID (T{})", stored.email.thread_id.0)),
        "{ids}"
    );

    // PEEK leaves \Seen alone; BODY[] sets it and says so in its response.
    assert_eq!(
        flags_of(&s("flags_after_peek")),
        Vec::<String>::new(),
        "{out}"
    );
    // Nor does BODY[] under EXAMINE (read-only).
    assert!(s("examine_body").contains("BODY[] {"), "{out}");
    assert_eq!(
        flags_of(&s("flags_after_examine")),
        Vec::<String>::new(),
        "{out}"
    );
    assert!(s("body_text").contains("FLAGS (\\Seen)"), "{out}");
    assert_eq!(flags_of(&s("flags_after_body")), ["\\Seen"], "{out}");
}

const PY_LARGE: &str = r#"
import hashlib
M = login()
data = open(sys.argv[2], "rb").read()
ok(M.append("INBOX", None, None, data))
ok(M.select("INBOX"))
sha = lambda b: hashlib.sha256(b).hexdigest()
def fetch(items):
    typ, resp = M.fetch("1", items)
    if typ != "OK":
        raise SystemExit(f"expected OK, got {typ} {resp!r}")
    lits = [d[1] for d in resp if isinstance(d, tuple)]
    return {
        "sha": [sha(l) for l in lits],
        "heads": [d[0].decode() for d in resp if isinstance(d, tuple)],
        "tails": [d.decode() for d in resp if isinstance(d, bytes)],
    }
out = {
    "expect_whole": sha(data),
    "expect_range": sha(data[1000000:1600000]),
    "expect_empty": sha(b""),
    "size": len(data),
}
out["whole"] = fetch("(BODY.PEEK[])")
out["mixed"] = fetch("(UID RFC822.SIZE BODY.PEEK[] FLAGS)")
out["range"] = fetch("(BODY.PEEK[]<1000000.600000>)")
out["past_end"] = fetch("(BODY.PEEK[]<99000000.10>)")
out["rfc822"] = fetch("(RFC822)")
out["flags_after"] = ok(M.fetch("1", "(FLAGS)"))
out["noop"] = ok(M.noop())
M.logout()
print(json.dumps(out))
"#;

/// A message above the streaming threshold (1 MiB) fetched whole, by
/// range, past its end and as RFC822 among other items: the bytes are
/// exact, the literal lengths right, and the session goes on after.
#[test]
fn large_messages_are_fetched_exactly_in_chunks() {
    let t = with_bob();
    let server = t.start();
    let mut raw =
        b"From: alice@example.net\r\nTo: bob@example.test\r\nSubject: big\r\n\r\n".to_vec();
    let mut i = 0u32;
    while raw.len() < 3 * 1024 * 1024 + 12345 {
        raw.extend_from_slice(
            format!("line {i} of a large message, caf\u{e9} {}\r\n", i * 7919).as_bytes(),
        );
        i += 1;
    }
    let file = write_file(&t, "big.eml", &raw);
    let out = imaplib(&server, PY_LARGE, &[file.to_str().unwrap()]);
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let whole = s(&out["expect_whole"]);
    assert_eq!(out["size"], raw.len());
    assert_eq!(out["whole"]["sha"][0], whole, "{}", out["whole"]);
    assert!(s(&out["whole"]["heads"][0]).ends_with(&format!("BODY[] {{{}}}", raw.len())));
    assert_eq!(out["mixed"]["sha"][0], whole);
    let head = s(&out["mixed"]["heads"][0]);
    assert!(
        head.contains("UID 1") && head.contains(&format!("RFC822.SIZE {}", raw.len())),
        "{head}"
    );
    assert!(
        s(&out["mixed"]["tails"][0]).contains("FLAGS (\\Recent)"),
        "{}",
        out["mixed"]
    );
    assert_eq!(out["range"]["sha"][0], out["expect_range"]);
    assert!(
        s(&out["range"]["heads"][0]).ends_with("BODY[]<1000000> {600000}"),
        "{}",
        out["range"]
    );
    assert_eq!(out["past_end"]["sha"][0], out["expect_empty"]);
    assert!(
        s(&out["past_end"]["heads"][0]).ends_with("BODY[]<99000000> {0}"),
        "{}",
        out["past_end"]
    );
    assert_eq!(out["rfc822"]["sha"][0], whole);
    assert!(
        s(&out["rfc822"]["tails"][0]).contains("FLAGS (\\Seen \\Recent)"),
        "{}",
        out["rfc822"]
    );
    assert_eq!(flags_of(&s(&out["flags_after"])), ["\\Seen"], "{out}");
}
