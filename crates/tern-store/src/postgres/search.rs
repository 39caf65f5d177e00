//! Search in PostgreSQL: IMAP SEARCH (RFC 9051 §6.4.4) over one mailbox,
//! and the text conditions of JMAP Email/query (RFC 8621 §4.4.1), with
//! the SQLite backend's answers.
//!
//! Full-text keys (BODY, TEXT) look in `email_text`, written in the same
//! commit as the email, whose `pg_trgm` GIN indexes answer substring
//! matches (RFC 9051 §6.4.4) over the text folded by `tern_fold` (see
//! schema.rs). The rest of the key tree is evaluated in Rust by the SQLite
//! backend's own code (`crate::sqlite::search`), so both backends agree
//! key for key.
//!
//! Case folding, as SQLite answers: a needle of three characters or more
//! goes through its FTS5 trigram index, which folds Unicode 6.1's simple
//! case folding ([`index_contains`]); a shorter one is scanned with Rust's
//! lowercase ([`contains_ignore_case`]). `tern_fold` gives the index's
//! answer in SQL alone in a UTF-8 database whose case mapping is not
//! Turkish (checked by [`FOLDS`]). Where that could fail (a letter whose
//! case pair is newer than FTS5's table, a short needle, another locale)
//! the SQL only narrows, with a pattern no true match escapes, and Rust
//! decides on the text of the candidates. The answer is SQLite's.

use super::Tx;
use crate::error::{Result, StoreError};
use crate::search::{contains_ignore_case, SearchKey};
use crate::sqlite::search::{
    fts5_fold, index_contains, matches, needs, needs_facts, required_text_key, sent_days, Extra,
    Facts, Message, TRIGRAM,
};
use crate::types::*;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// True in a database whose case mapping is Unicode's simple one and not
/// Turkish (not a `C` locale, which maps ASCII only, nor ICU's, which
/// uppercases `ß` to `SS`): there `tern_fold` folds as FTS5 does.
/// PostgreSQL folds this constant when it plans a statement.
const FOLDS: &str = "tern_fold('ÜIẞΣςß') = 'üißσσß'";

/// One membership of the mailbox: what a search starts from.
struct Member {
    uid: Uid,
    email_id: EmailId,
    modseq: ModSeq,
    saved_at: Option<i64>,
}

/// UIDs of the mailbox's messages matching `key`, ascending (interface
/// used by messages.rs for `MessageStore::search`). NotFound if the
/// mailbox is not the account's.
pub async fn search(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    key: &SearchKey,
) -> Result<Vec<Uid>> {
    if tx
        .query_opt(
            "SELECT 1 FROM mailbox WHERE id = $1 AND account_id = $2",
            &[&mailbox.0, &account.0],
        )
        .await?
        .is_none()
    {
        return Err(StoreError::not_found("mailbox", mailbox));
    }
    let members: Vec<Member> = tx
        .query(
            "SELECT uid, email_id, modseq, saved_at FROM mailbox_email
              WHERE mailbox_id = $1 ORDER BY uid",
            &[&mailbox.0],
        )
        .await?
        .iter()
        .map(|r| Member {
            uid: Uid(r.get::<_, i64>(0) as u32),
            email_id: EmailId(r.get(1)),
            modseq: ModSeq(r.get::<_, i64>(2) as u64),
            saved_at: r.get(3),
        })
        .collect();

    let mut needles: Vec<(bool, String)> = Vec::new();
    key.for_each_text_key(&mut |k| {
        let wanted = match k {
            SearchKey::Body(s) => (true, s.clone()),
            SearchKey::Text(s) => (false, s.clone()),
            _ => return,
        };
        if !needles.contains(&wanted) {
            needles.push(wanted);
        }
    });
    let mut text_hits: HashMap<(bool, String), HashSet<EmailId>> = HashMap::new();
    for (body_only, needle) in needles {
        let mut hits = column_hits(tx, account, mailbox, "body", &needle).await?;
        if !body_only {
            hits.extend(column_hits(tx, account, mailbox, "headers", &needle).await?);
        }
        text_hits.insert((body_only, needle), hits);
    }

    // A text key every match must satisfy narrows the messages to look at
    // to its hits: usually a few of a large mailbox.
    let candidates: Vec<&Member> = match required_text_key(key) {
        Some(k) => {
            let hits = text_hits.get(&k);
            members
                .iter()
                .filter(|m| hits.is_some_and(|h| h.contains(&m.email_id)))
                .collect()
        }
        None => members.iter().collect(),
    };
    let facts = if needs_facts(key) {
        let ids: Vec<i64> = candidates.iter().map(|m| m.email_id.0).collect();
        Some(load_facts(tx, account, &ids).await?)
    } else {
        None
    };
    let mut extra = Extra::default();
    let sent = needs(key, &|k| matches!(k, SearchKey::Sent { .. }));
    if sent || needs(key, &|k| matches!(k, SearchKey::Header { .. })) {
        extra.header_raw = load_headers(tx, account, mailbox).await?;
    }
    if sent {
        extra.sent_day = sent_days(&extra.header_raw);
    }
    Ok(candidates
        .into_iter()
        .filter(|m| {
            let m = Message {
                uid: m.uid,
                email_id: m.email_id,
                modseq: m.modseq,
                saved_at: m.saved_at,
                facts: facts.as_ref().and_then(|f| f.get(&m.email_id)),
            };
            matches(&m, key, &text_hits, &extra)
        })
        .map(|m| m.uid)
        .collect())
}

/// Emails of the mailbox whose `column` of `email_text` contains
/// `needle`, as SQLite's backend finds them.
///
/// The statement hands back the text of the candidates only where its
/// answer may not be exact ([`Needle::exact`], or a text holding a letter
/// whose case mapping ends in ASCII, for a short ASCII needle), and Rust
/// decides on those. For the usual needle in a UTF-8 database, nothing
/// but ids comes back.
async fn column_hits(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
    column: &str,
    needle: &str,
) -> Result<HashSet<EmailId>> {
    let n = Needle::new(needle);
    // `column` is one of two names fixed in this module, never input.
    let sql = if n.long {
        format!(
            "SELECT t.email_id, CASE WHEN $4 AND {FOLDS} THEN NULL ELSE t.{column} END
               FROM mailbox_email me JOIN email_text t ON t.email_id = me.email_id
              WHERE me.mailbox_id = $1 AND t.account_id = $2
                AND tern_fold(t.{column}) LIKE tern_fold(CASE WHEN {FOLDS} THEN $3 ELSE $5 END)"
        )
    } else {
        // No trigram to look up: the mailbox's texts are scanned in SQL.
        // Rust's lowercase maps `İ` to `i` and a combining dot, and PostgreSQL's
        // case mapping maps `İ` `ı` `ſ` `K` to ASCII letters.
        format!(
            "SELECT t.email_id,
                    CASE WHEN $4 AND {FOLDS} AND t.{column} !~ '[İıſK]' THEN NULL
                         ELSE t.{column} END
               FROM mailbox_email me JOIN email_text t ON t.email_id = me.email_id
              WHERE me.mailbox_id = $1 AND t.account_id = $2
                AND upper(t.{column}) ILIKE upper(CASE WHEN {FOLDS} THEN $3 ELSE $5 END)"
        )
    };
    let rows = tx
        .query(
            &sql,
            &[
                &mailbox.0,
                &account.0,
                &n.pattern,
                &n.exact,
                &relaxed_pattern(&n.text),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .filter(|r| {
            r.get::<_, Option<&str>>(1)
                .is_none_or(|text| n.found_in(text))
        })
        .map(|r| EmailId(r.get(0)))
        .collect())
}

/// A BODY or TEXT needle, and how SQLite's backend would match it.
struct Needle {
    /// Without NULs: neither the stored text nor SQLite's index has any.
    text: String,
    /// Long enough for SQLite's trigram index, which folds as
    /// [`index_contains`]; shorter ones are scanned ([`contains_ignore_case`]).
    long: bool,
    /// The SQL answer needs no check in Rust (where [`FOLDS`] holds).
    exact: bool,
    /// The LIKE pattern for a database where [`FOLDS`] holds.
    pattern: String,
}

impl Needle {
    fn new(needle: &str) -> Needle {
        let text = super::text(needle).into_owned();
        let long = text.chars().count() >= TRIGRAM;
        if long {
            Needle {
                exact: !text.chars().any(folds_unlike_fts5),
                pattern: like_pattern(&text),
                text,
                long,
            }
        } else {
            // Rust lowercases `İ` to `i` and a combining dot above; the
            // database to `i`: the dot may be missing there.
            let mut pattern = String::with_capacity(text.len() + 2);
            pattern.push('%');
            for c in text.chars() {
                match c {
                    '\u{307}' => pattern.push('%'),
                    c => push_literal(&mut pattern, c),
                }
            }
            pattern.push('%');
            Needle {
                exact: text.is_ascii(),
                pattern,
                text,
                long,
            }
        }
    }

    fn found_in(&self, text: &str) -> bool {
        if self.long {
            index_contains(text, &self.text)
        } else {
            contains_ignore_case(text, &self.text)
        }
    }
}

/// Whether `tern_fold` may put `c` with other letters than FTS5 does: a
/// letter whose case pair is newer than FTS5's table (Unicode 6.1) or
/// beyond its planes, `İ` `ı` and the private-use characters `tern_fold`
/// sets them aside as, and the noncharacters SQLite reads as U+FFFD.
///
/// The database's case classes are modelled by Rust's (`lower(upper(c))`,
/// as `tern_fold`), whose Unicode is at least as new: every class whose
/// letters FTS5 does not fold together is set apart, all its letters.
fn folds_unlike_fts5(c: char) -> bool {
    static APART: OnceLock<HashSet<char>> = OnceLock::new();
    if c.is_ascii() {
        return false;
    }
    APART
        .get_or_init(|| {
            let one = |c: char, mapped: &mut dyn Iterator<Item = char>| match (
                mapped.next(),
                mapped.next(),
            ) {
                (Some(m), None) => m,
                _ => c,
            };
            let database_fold = |c: char| {
                if matches!(c, 'İ' | 'ı') {
                    return c;
                }
                let upper = one(c, &mut c.to_uppercase());
                one(upper, &mut upper.to_lowercase())
            };
            let mut classes: HashMap<char, Vec<char>> = HashMap::new();
            // Every cased script is in the first two planes.
            for c in '\u{80}'..='\u{1_FFFF}' {
                classes.entry(database_fold(c)).or_default().push(c);
            }
            let mut apart: HashSet<char> = HashSet::from([
                'İ', 'ı', '\u{E000}', '\u{E001}', '\u{FFFD}', '\u{FFFE}', '\u{FFFF}',
            ]);
            for letters in classes.values() {
                let folded = fts5_fold(letters[0]);
                if letters.iter().any(|l| fts5_fold(*l) != folded) {
                    apart.extend(letters);
                }
            }
            apart
        })
        .contains(&c)
}

/// The facts of `ids`, emails of the account.
async fn load_facts(
    tx: &Tx<'_>,
    account: AccountId,
    ids: &[i64],
) -> Result<HashMap<EmailId, Facts>> {
    let rows = tx
        .query(
            "SELECT id, thread_id, keywords, size, received_at FROM email
              WHERE account_id = $1 AND id = ANY($2)",
            &[&account.0, &ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                EmailId(r.get(0)),
                Facts {
                    thread_id: ThreadId(r.get(1)),
                    keywords: r.get(2),
                    size: r.get::<_, i64>(3).max(0) as u64,
                    received_at: r.get(4),
                },
            )
        })
        .collect())
}

/// The raw headers of the mailbox's emails.
async fn load_headers(
    tx: &Tx<'_>,
    account: AccountId,
    mailbox: MailboxId,
) -> Result<HashMap<EmailId, String>> {
    let rows = tx
        .query(
            "SELECT m.email_id, h.header_raw FROM mailbox_email m
               JOIN email_header h ON h.account_id = $1 AND h.email_id = m.email_id
              WHERE m.mailbox_id = $2",
            &[&account.0, &mailbox.0],
        )
        .await?;
    Ok(rows.iter().map(|r| (EmailId(r.get(0)), r.get(1))).collect())
}

/// A SQL condition on `e.id` (an alias of `email`) for one JMAP text
/// needle, with the LIKE pattern as parameter `$param`; `body_only` looks
/// in the body alone, otherwise in the headers and the body. Interface
/// used by emails.rs (`query_emails`), which pushes [`like_pattern`] as
/// that parameter (for needles of three characters or more, as SQLite).
///
/// One statement decides here, with no Rust to check candidates: the
/// answer is SQLite's index's wherever `tern_fold` folds as FTS5 does (a
/// UTF-8 database not in a Turkish locale, letters Unicode 6.1 knows).
pub fn text_condition(body_only: bool, param: usize) -> String {
    let like = |column: &str| format!("tern_fold(t.{column}) LIKE tern_fold(${param})");
    let columns = if body_only {
        like("body")
    } else {
        format!("({} OR {})", like("headers"), like("body"))
    };
    format!("EXISTS (SELECT 1 FROM email_text t WHERE t.email_id = e.id AND {columns})")
}

/// The LIKE pattern that finds `needle` as a substring (`%` `_` `\`
/// escaped, NULs dropped: the stored text has none).
pub fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        push_literal(&mut pattern, c);
    }
    pattern.push('%');
    pattern
}

/// `c` as a LIKE pattern matching itself (the default escape is `\`).
fn push_literal(pattern: &mut String, c: char) {
    match c {
        '\0' => {}
        '%' | '_' | '\\' => {
            pattern.push('\\');
            pattern.push(c);
        }
        c => pattern.push(c),
    }
}

/// The pattern for a database where [`FOLDS`] does not hold (a `C`
/// locale folds ASCII only, a Turkish one folds `I` to `ı`, ICU `ß` to
/// `ss`): ASCII in order, `i` `k` `s` as any character (`İ` `ı`, the
/// Kelvin sign and `ſ` fold to them), anything beyond ASCII as any run. A
/// wide net; Rust decides on every catch.
fn relaxed_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    let mut wildcard = true;
    for c in needle.chars() {
        match c {
            'i' | 'I' | 'k' | 'K' | 's' | 'S' => {
                pattern.push('_');
                wildcard = false;
            }
            c if c.is_ascii() => {
                push_literal(&mut pattern, c);
                wildcard = false;
            }
            _ => {
                if !wildcard {
                    pattern.push('%');
                    wildcard = true;
                }
            }
        }
    }
    if !wildcard {
        pattern.push('%');
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_wildcards_and_drop_nuls() {
        assert_eq!(like_pattern("100%"), "%100\\%%");
        assert_eq!(like_pattern("a_b\\c\0d"), "%a\\_b\\\\cd%");
        assert_eq!(like_pattern(""), "%%");
        assert_eq!(Needle::new("i\u{307}").pattern, "%i%%");
        assert_eq!(Needle::new("ok").pattern, "%ok%");
        assert_eq!(relaxed_pattern("Ünïcödé 5%"), "%n%c%d% 5\\%%");
        assert_eq!(relaxed_pattern("kiwis"), "%__w__%");
        assert_eq!(relaxed_pattern("€"), "%");
    }

    #[test]
    fn needles_say_when_the_index_alone_is_exact() {
        assert!(Needle::new("Quarterly").exact);
        assert!(Needle::new("üNÏcödé ΟΔΟΣ ς µ").exact);
        assert!(!Needle::new("İstanbul").exact);
        assert!(
            !Needle::new("ꭰꭰꭰ").exact,
            "Cherokee cases came in Unicode 8"
        );
        assert!(Needle::new("ok").exact && !Needle::new("ö").exact);
        assert!(Needle::new("q\0uarter").long && !Needle::new("o\0k").long);
    }

    #[test]
    fn jmap_conditions_name_their_parameter() {
        assert_eq!(
            text_condition(true, 3),
            "EXISTS (SELECT 1 FROM email_text t WHERE t.email_id = e.id \
             AND tern_fold(t.body) LIKE tern_fold($3))"
        );
        assert!(text_condition(false, 7).contains(
            "(tern_fold(t.headers) LIKE tern_fold($7) OR tern_fold(t.body) LIKE tern_fold($7))"
        ));
    }

    /// Messages whose texts differ where Rust's lowercase, FTS5's folding
    /// and PostgreSQL's case mapping differ.
    const TEXTS: [(&str, &str); 8] = [
        ("Unicode", "über Ünïcödé text"),
        ("Greek", "ΟΔΟΣ ΚΑΙ οδός"),
        ("Turkish", "İstanbul İzmir kapı"),
        ("German", "STRASSE und Straße"),
        ("Kelvin", "273 \u{212A} cold"),
        ("Plain", "quarterly Revenue"),
        ("Symbols", "5 µm thick, ϐeta ϑeta Maſse"),
        ("Newer", "Ꭰꭰ Ꭱ ᲀ Ɜ"),
    ];

    const NEEDLES: [&str; 42] = [
        "üNÏcödé",
        "ÜNÏCÖDÉ",
        "Ünïcödé",
        "ÏCÖ",
        "unicode",
        "οδος",
        "οδοσ",
        "ΟΔΟΣ",
        "ΟΔΌΣ",
        "ς κ",
        "istanbul",
        "İstanbul",
        "i\u{307}stanbul",
        "İZMİR",
        "kapi",
        "KAPI",
        "straße",
        "STRASSE",
        "STRAẞE",
        "273 k",
        "\u{212A} cold",
        "revenue",
        "QUARTERLY",
        "μm t",
        "µm t",
        "βeta",
        "θeta",
        "masse",
        "ꭰꭰ ",
        "ᎠᎠ ",
        "ꭱ",
        "в",
        "ᲀ",
        "ɜ",
        "é",
        "ö",
        "ß",
        "Ü",
        "ı",
        "i",
        "ς",
        "",
    ];

    /// What `store` finds for every needle of [`NEEDLES`] in [`TEXTS`]:
    /// by IMAP BODY and TEXT, and by JMAP when `jmap` (where one SQL
    /// condition can be exact, see `text_condition`).
    async fn answers(store: &std::sync::Arc<dyn crate::Store>, jmap: bool) -> Vec<String> {
        use crate::conformance::{account, deliver_to, inbox, message};
        use crate::query::EmailQuery;
        let a = account(store, "a@example.test").await;
        let mb = inbox(store, &a).await;
        let mut by_uid = HashMap::new();
        let mut by_id = HashMap::new();
        for (subject, body) in TEXTS {
            let d = deliver_to(store, &a, message(subject, body)).await;
            by_uid.insert(d.uid, subject);
            by_id.insert(d.email_id, subject);
        }
        let mut found = Vec::new();
        for needle in NEEDLES {
            for key in [
                SearchKey::Body(needle.into()),
                SearchKey::Text(needle.into()),
            ] {
                let hits = store.search(a.id, mb.id, &key).await.unwrap();
                let hits: Vec<&str> = hits.iter().map(|u| by_uid[u]).collect();
                found.push(format!("IMAP {key:?}: {hits:?}"));
            }
            if !jmap || (!Needle::new(needle).exact && needle.chars().count() >= TRIGRAM) {
                continue;
            }
            // After the IMAP searches, which wait for SQLite's index.
            let query = EmailQuery {
                text: vec![(true, needle.to_string())],
                limit: 100,
                ..Default::default()
            };
            let jmap = match store.query_emails(a.id, &query).await {
                Ok(r) => {
                    let mut hits: Vec<&str> = r.ids.iter().map(|id| by_id[id]).collect();
                    hits.sort_unstable();
                    format!("{hits:?}")
                }
                Err(StoreError::Invalid(why)) => format!("refused ({why})"),
                Err(e) => panic!("{e}"),
            };
            found.push(format!("JMAP body {needle:?}: {jmap}"));
        }
        found
    }

    /// IMAP SEARCH and JMAP text conditions answer as the SQLite backend
    /// does on letters beyond ASCII, in any case, in a UTF-8 database and
    /// (IMAP, through Rust's checks) in a `C` or an ICU one. Runs on scratch
    /// databases of the server named by `TERN_TEST_POSTGRES` (skipped
    /// without one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn case_folding_beyond_ascii_agrees_with_sqlite() {
        use crate::postgres::{PgOptions, PgStore};
        use crate::sqlite::{SqliteOptions, SqliteStore};
        use crate::Store;
        use std::sync::Arc;
        let Some(admin) = std::env::var("TERN_TEST_POSTGRES")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!("skipped: set TERN_TEST_POSTGRES=postgres://… to run");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let lite: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("tern.db"), SqliteOptions::default()).unwrap(),
        );
        let with_jmap = answers(&lite, true).await;
        let without_jmap: Vec<String> = with_jmap
            .iter()
            .filter(|a| a.starts_with("IMAP"))
            .cloned()
            .collect();
        lite.close().await.unwrap();
        assert!(with_jmap
            .iter()
            .any(|a| a.contains("JMAP") && a.contains("Greek")));

        let (admin_client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let base = admin.split('?').next().unwrap().rsplit_once('/').unwrap().0;
        for (locale, expected) in [
            ("", &with_jmap),
            (" TEMPLATE template0 LOCALE 'C'", &without_jmap),
            (
                " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C.UTF-8'",
                &without_jmap,
            ),
        ] {
            let name = format!("tern_search_fold_{}", std::process::id());
            admin_client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .unwrap();
            let create = format!("CREATE DATABASE {name}{locale}");
            if let Err(e) = admin_client.batch_execute(&create).await {
                // ICU needs PostgreSQL 15 built with it.
                eprintln!("skipped `{create}`: {e}");
                continue;
            }
            let pg: Arc<dyn Store> = Arc::new(
                PgStore::open(PgOptions::new(format!("{base}/{name}")))
                    .await
                    .unwrap(),
            );
            let found = answers(&pg, locale.is_empty()).await;
            pg.close().await.unwrap();
            drop(pg);
            let _ = admin_client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            let differ: Vec<String> = expected
                .iter()
                .zip(&found)
                .filter(|(l, p)| l != p)
                .map(|(l, p)| format!("SQLite {l}\n    PostgreSQL{locale} {p}"))
                .collect();
            assert!(differ.is_empty(), "{}", differ.join("\n"));
            assert_eq!(expected.len(), found.len());
        }
    }
}
