//! SEARCH (RFC 9051 §6.4.4): flags, header fields, full text, sizes,
//! dates, UID sets and OR/NOT, with ESEARCH's RETURN (RFC 4731) and
//! SEARCHRES's SAVE and `$` (RFC 5182).

use super::*;
use serde_json::json;

const PY_SEARCH: &str = r#"
M = login()
mails = [
    ("(\\Seen)", "01-Feb-2020 12:00:00 +0000",
     "From: Alice <alice@example.net>\r\nTo: bob@example.test\r\nSubject: Quarterly report\r\n\r\n"
     "the budget numbers are in\r\n"),
    ("(\\Flagged)", "15-Mar-2021 09:00:00 +0000",
     "From: Carol <carol@example.org>\r\nTo: bob@example.test\r\nSubject: Lunch plans\r\nX-Priority: 1\r\n\r\n"
     "pizza tomorrow?\r\n" + "filler line to make this message large\r\n" * 150),
    (None, "15-Mar-2021 13:00:00 +0000",
     "From: Alice <alice@example.net>\r\nTo: bob@example.test\r\nSubject: Re: Lunch plans\r\n\r\n"
     "sounds good\r\n"),
    ("(\\Seen \\Answered)", "20-Jun-2022 08:00:00 +0000",
     "From: Dave <dave@example.com>\r\nTo: bob@example.test\r\nSubject: Newsletter\r\n\r\n"
     "our budget is public\r\n"),
]
for flags, date, raw in mails:
    ok(M.append("INBOX", flags, f'"{date}"', raw.encode()))
ok(M.select("INBOX"))
out = {"search": {}, "esearch": {}}
for criteria in json.loads(sys.argv[2]):
    out["search"][criteria] = [int(n) for n in ok(M.search(None, criteria)).split()]
out["uid_search"] = ok(M.uid("SEARCH", "FROM dave"))
for key, args in [
    ("min_max_count_all", ("SEARCH", "RETURN (MIN MAX COUNT ALL)", "FROM alice")),
    ("none", ("SEARCH", "RETURN (MIN MAX COUNT ALL)", "DELETED")),
    ("uid_all", ("UID", "SEARCH", "RETURN (ALL)", "1:4")),
    ("save", ("SEARCH", "RETURN (SAVE)", "UNSEEN")),
]:
    typ, dat = M._simple_command(*args)
    if typ != "OK":
        raise SystemExit(f"{args}: {typ} {dat}")
    out["esearch"][key] = text(M._untagged_response(typ, dat, "ESEARCH")[1])
out["saved"] = ok(M.fetch("$", "(FLAGS)"))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn search_keys_esearch_and_saved_results() {
    let t = with_bob();
    let server = t.start();
    let cases: &[(&str, &[u32])] = &[
        ("ALL", &[1, 2, 3, 4]),
        ("SEEN", &[1, 4]),
        ("UNSEEN", &[2, 3]),
        ("FLAGGED", &[2]),
        ("ANSWERED", &[4]),
        ("NOT SEEN", &[2, 3]),
        ("UNANSWERED SEEN", &[1]),
        ("FROM alice", &[1, 3]),
        ("FROM \"ALICE@EXAMPLE\"", &[1, 3]),
        ("SUBJECT lunch", &[2, 3]),
        ("SUBJECT \"re: lunch\"", &[3]),
        ("TO bob", &[1, 2, 3, 4]),
        ("HEADER X-Priority 1", &[2]),
        ("HEADER X-Missing \"\"", &[]),
        ("BODY budget", &[1, 4]),
        ("BODY Quarterly", &[]),
        ("TEXT pizza", &[2]),
        ("TEXT Quarterly", &[1]),
        ("TEXT \"budget numbers\"", &[1]),
        ("LARGER 4000", &[2]),
        ("SMALLER 4000", &[1, 3, 4]),
        ("SINCE 15-Mar-2021", &[2, 3, 4]),
        ("BEFORE 15-Mar-2021", &[1]),
        ("ON 15-Mar-2021", &[2, 3]),
        ("SINCE 1-Jan-2021 BEFORE 1-Jan-2022", &[2, 3]),
        ("UID 2:3", &[2, 3]),
        ("UID 3:*", &[3, 4]),
        ("2:4 UNSEEN", &[2, 3]),
        ("OR FROM dave FLAGGED", &[2, 4]),
        ("NOT FROM alice", &[2, 4]),
        ("OR (SEEN FROM alice) FLAGGED", &[1, 2]),
        ("SEEN BODY budget NOT ANSWERED", &[1]),
    ];
    let criteria: Vec<&str> = cases.iter().map(|(c, _)| *c).collect();
    let out = imaplib(&server, PY_SEARCH, &[&json!(criteria).to_string()]);
    let mut wrong = Vec::new();
    for (criteria, expected) in cases {
        if out["search"][criteria] != json!(expected) {
            wrong.push(format!(
                "SEARCH {criteria}: got {}, expected {expected:?}",
                out["search"][criteria]
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(out["uid_search"], "4", "{out}");

    let esearch = |key: &str| out["esearch"][key].as_str().unwrap().to_string();
    let all = esearch("min_max_count_all");
    assert!(all.starts_with("(TAG \""), "{all}");
    let rest = all.split_once(") ").map(|(_, r)| r).unwrap_or("");
    let mut items: Vec<&str> = rest.split(' ').collect::<Vec<_>>();
    let mut pairs: Vec<(String, String)> = items
        .chunks(2)
        .map(|p| (p[0].to_string(), p.get(1).unwrap_or(&"").to_string()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("ALL".into(), "1,3".into()),
            ("COUNT".into(), "2".into()),
            ("MAX".into(), "3".into()),
            ("MIN".into(), "1".into()),
        ],
        "{all}"
    );
    let none = esearch("none");
    items = none.split(' ').collect();
    assert_eq!(items[items.len() - 2..], ["COUNT", "0"], "{none}");
    assert!(!none.contains("MIN") && !none.contains("ALL"), "{none}");
    assert!(esearch("uid_all").ends_with(") UID ALL 1:4"), "{out}");
    assert_eq!(esearch("save"), "", "SAVE alone returns nothing: {out}");

    let saved = out["saved"].as_str().unwrap();
    let numbers: Vec<&str> = saved
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["2", "3"],
        "FETCH $ fetched the saved result: {saved}"
    );
}

const PY_SEARCH_I18N: &str = r#"
M = login()
encoded = ("From: =?utf-8?q?J=C3=BCrgen?= <j@example.net>\r\nTo: bob@example.test\r\n"
           "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           "Sch=C3=B6ne Gr=C3=BC=C3=9Fe\r\n").encode()
raw = ("From: Jürgen <j@example.net>\r\nTo: bob@example.test\r\nSubject: Grüße aus Köln\r\n"
       "Content-Type: text/plain; charset=utf-8\r\n\r\nSchöne Grüße\r\n").encode()
ok(M.append("INBOX", None, None, encoded))
ok(M.append("INBOX", None, None, raw))
ok(M.select("INBOX"))
out = {}
for key, value in [("SUBJECT", "Grüße"), ("SUBJECT", "aus"), ("FROM", "Jürgen"),
                   ("BODY", "Schöne"), ("TEXT", "Köln")]:
    M.literal = value.encode()
    out[f"{key} {value}"] = ok(M.search("UTF-8", key))
M.logout()
print(json.dumps(out))
"#;

#[test]
fn search_matches_decoded_text_in_headers_and_bodies() {
    let t = with_bob();
    let server = t.start();
    let out = imaplib(&server, PY_SEARCH_I18N, &[]);
    // Message 1 says it in RFC 2047 encoded words and quoted-printable,
    // message 2 in raw UTF-8 (RFC 6532): both match each search, since
    // SEARCH compares the text, not its transfer encoding (RFC 9051
    // §6.4.4; Tern's BODY and TEXT already decode).
    let mut wrong = Vec::new();
    for (criteria, found) in out.as_object().unwrap() {
        if found != "1 2" {
            wrong.push(format!(
                "SEARCH CHARSET UTF-8 {criteria}: got {found}, expected 1 2"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
