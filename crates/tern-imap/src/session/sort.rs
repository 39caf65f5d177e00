//! SORT and THREAD (RFC 5256): ordering and threading the messages a
//! search selects, from the decoded summaries the Store keeps, with the
//! DISPLAYFROM/DISPLAYTO keys of RFC 5957 and ESORT's RETURN (RFC 5267).
//!
//! The algorithms are pure functions over [`Item`]s, tested on their own.

use super::Session;
use crate::parse::{SearchKey, SearchReturn, SortField, SortKey};
use std::cmp::Ordering;
use std::collections::HashMap;
use tern_store::message::{decode_words, EnvelopeAddress};

/// The i;ascii-casemap comparator's key (RFC 4790 §9.2): ASCII letters
/// folded to upper case, so `_` and `[` sort after the letters; the rest
/// compared as octets.
fn casemap(s: &str) -> String {
    s.to_ascii_uppercase()
}

/// ESORT's ALL keeps the sort order (RFC 5267 §3.2): ascending runs
/// become ranges (`3:5`), nothing is reordered.
fn ordered_set(numbers: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1] == numbers[j].wrapping_add(1) {
            j += 1;
        }
        out.push(if j > i {
            format!("{}:{}", numbers[i], numbers[j])
        } else {
            numbers[i].to_string()
        });
        i = j + 1;
    }
    out.join(",")
}

/// Summaries read from the Store per request.
const SUMMARY_BATCH: usize = 500;

/// What sorting and threading need of one message.
#[derive(Debug, Clone, Default)]
pub(crate) struct Item {
    /// The number to report: a sequence number or a UID.
    pub n: u32,
    pub arrival: i64,
    /// The Date header, or the arrival time when there is none.
    pub date: i64,
    pub size: u64,
    /// RFC 5256 §2.1 base subject, compared case-insensitively.
    pub base_subject: String,
    /// The subject marked it as a reply or forward (RFC 5256 §2.1 step 6).
    pub is_reply: bool,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    pub message_id: Option<String>,
    /// References, then In-Reply-To (message ids without brackets).
    pub references: Vec<String>,
}

impl Session {
    /// Runs the search and loads what sorting and threading need: the
    /// summaries only when `summaries` (ARRIVAL and SIZE are in the
    /// listing itself), read in batches.
    async fn items(
        &mut self,
        tag: &str,
        uid: bool,
        search: &[SearchKey],
        summaries: bool,
    ) -> Option<Vec<Item>> {
        let account = self.account_id();
        let sel = self.selected()?;
        let mailbox = sel.mailbox.id;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let key = tern_store::SearchKey::and(
            search.iter().map(|k| super::search::translate(k, sel, now)),
        );
        let store = self.srv.store.clone();
        // ALL is the session's own view of the mailbox: no search.
        let everything = search.iter().all(|k| matches!(k, SearchKey::All));
        let found = if everything {
            sel.uids.clone()
        } else {
            match store.search(account, mailbox, &key).await {
                Ok(f) => f,
                Err(e) => {
                    self.store_error(tag, e);
                    return None;
                }
            }
        };
        let entries = match store.messages(account, mailbox, &found).await {
            Ok(e) => e,
            Err(e) => {
                self.store_error(tag, e);
                return None;
            }
        };
        let mut items = Vec::with_capacity(entries.len());
        if !summaries {
            for e in entries {
                let Some(seq) = self.selected().and_then(|s| s.seq(e.uid)) else {
                    continue;
                };
                items.push(Item {
                    n: if uid { e.uid.0 } else { seq },
                    arrival: e.received_at,
                    date: e.received_at,
                    size: e.size,
                    ..Item::default()
                });
            }
            return Some(items);
        }
        let mut emails = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(SUMMARY_BATCH) {
            let ids: Vec<tern_store::EmailId> = chunk.iter().map(|e| e.email_id).collect();
            match store.emails(account, &ids).await {
                Ok(found) => emails.extend(found),
                Err(err) => {
                    self.store_error(tag, err);
                    return None;
                }
            }
        }
        for (e, email) in entries.into_iter().zip(emails) {
            let Some(seq) = self.selected().and_then(|s| s.seq(e.uid)) else {
                continue;
            };
            // Expunged since the search: not in the result.
            let Some(email) = email else {
                continue;
            };
            let s = &email.summary;
            let env = &email.envelope;
            // RFC 5256 §3: the addr-mailbox (local part) of the first
            // address, which for a group is its name; compared with
            // i;ascii-casemap (RFC 4790 §9.2: ASCII folded to upper case).
            let first = |list: &[EnvelopeAddress]| {
                list.first()
                    .and_then(|a| a.mailbox.as_deref())
                    .map(casemap)
                    .unwrap_or_default()
            };
            // RFC 5957: the decoded display name of the first address, or
            // its addr-spec when it has none.
            let display = |list: &[EnvelopeAddress]| {
                list.first()
                    .map(|a| {
                        let name = a
                            .name
                            .as_deref()
                            .map(|n| {
                                if n.contains("=?") {
                                    decode_words(n)
                                } else {
                                    n.to_string()
                                }
                            })
                            .filter(|n| !n.trim().is_empty());
                        name.unwrap_or_else(|| match (&a.mailbox, &a.host) {
                            (Some(m), Some(h)) => format!("{m}@{h}"),
                            (Some(m), None) => m.clone(),
                            _ => String::new(),
                        })
                    })
                    .map(|d| casemap(&d))
                    .unwrap_or_default()
            };
            let mut references = s.references.clone();
            references.extend(s.in_reply_to.iter().cloned());
            items.push(Item {
                n: if uid { e.uid.0 } else { seq },
                arrival: e.received_at,
                date: s.sent_at.unwrap_or(e.received_at),
                size: e.size,
                base_subject: casemap(&s.base_subject),
                is_reply: !s.subject.trim().eq_ignore_ascii_case(s.base_subject.trim()),
                from: first(&env.from),
                to: first(&env.to),
                cc: first(&env.cc),
                display_from: display(&env.from),
                display_to: display(&env.to),
                message_id: s.message_id.clone(),
                references,
            });
        }
        Some(items)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        criteria: &[SortKey],
        charset: &str,
        search: &[SearchKey],
        ret: Option<Vec<SearchReturn>>,
    ) {
        if !charset.eq_ignore_ascii_case("UTF-8") && !charset.eq_ignore_ascii_case("US-ASCII") {
            return self.tagged(
                tag,
                "NO",
                "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
            );
        }
        let summaries = criteria
            .iter()
            .any(|k| !matches!(k.field, SortField::Arrival | SortField::Size));
        let Some(mut items) = self.items(tag, uid, search, summaries).await else {
            return;
        };
        sort_items(&mut items, criteria);
        let numbers: Vec<u32> = items.iter().map(|i| i.n).collect();
        match ret {
            None => {
                let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
                self.untagged(&format!(
                    "SORT{}{}",
                    if list.is_empty() { "" } else { " " },
                    list.join(" ")
                ));
            }
            Some(ret) => {
                let mut line = format!("ESEARCH (TAG \"{tag}\")");
                if uid {
                    line.push_str(" UID");
                }
                for r in if ret.is_empty() {
                    vec![SearchReturn::All]
                } else {
                    ret
                } {
                    match (r, numbers.first(), numbers.last()) {
                        (SearchReturn::Min, Some(first), _) => {
                            line.push_str(&format!(" MIN {first}"))
                        }
                        (SearchReturn::Max, _, Some(last)) => {
                            line.push_str(&format!(" MAX {last}"))
                        }
                        (SearchReturn::Count, _, _) => {
                            line.push_str(&format!(" COUNT {}", numbers.len()))
                        }
                        (SearchReturn::All, Some(_), _) => {
                            line.push_str(&format!(" ALL {}", ordered_set(&numbers)));
                        }
                        _ => {}
                    }
                }
                self.untagged(&line);
            }
        }
        self.sync(uid).await;
        self.tagged(tag, "OK", "SORT completed");
    }

    pub(super) async fn thread(
        &mut self,
        tag: &str,
        uid: bool,
        algorithm: &str,
        charset: &str,
        search: &[SearchKey],
    ) {
        if !charset.eq_ignore_ascii_case("UTF-8") && !charset.eq_ignore_ascii_case("US-ASCII") {
            return self.tagged(
                tag,
                "NO",
                "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
            );
        }
        let threads = match algorithm {
            "ORDEREDSUBJECT" | "REFERENCES" => {
                let Some(items) = self.items(tag, uid, search, true).await else {
                    return;
                };
                if algorithm == "REFERENCES" {
                    thread_references(&items)
                } else {
                    thread_ordered_subject(&items)
                }
            }
            _ => {
                return self.tagged(
                    tag,
                    "BAD",
                    "unknown threading algorithm; ORDEREDSUBJECT and REFERENCES are offered",
                )
            }
        };
        let mut line = String::from("THREAD ");
        for t in &threads {
            write_thread(&mut line, t);
        }
        self.untagged(line.trim_end());
        self.sync(uid).await;
        self.tagged(tag, "OK", "THREAD completed");
    }
}

/// A thread: a message (or none, for a missing parent) and its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Thread {
    pub n: Option<u32>,
    pub children: Vec<Thread>,
}

/// `(1 2 (3)(4 5))`: a chain of single children is a flat list; several
/// children each get parentheses.
fn write_thread(out: &mut String, t: &Thread) {
    out.push('(');
    write_chain(out, t);
    out.push(')');
}

fn write_chain(out: &mut String, t: &Thread) {
    let mut cur = t;
    let mut first = true;
    loop {
        if let Some(n) = cur.n {
            if !first {
                out.push(' ');
            }
            out.push_str(&n.to_string());
            first = false;
        }
        match cur.children.as_slice() {
            [only] => cur = only,
            [] => return,
            many => {
                if !first {
                    out.push(' ');
                }
                for c in many {
                    write_thread(out, c);
                }
                return;
            }
        }
    }
}

/// RFC 5256 §3 SORT, ties broken by message order.
pub(crate) fn sort_items(items: &mut [Item], criteria: &[SortKey]) {
    items.sort_by(|a, b| {
        for k in criteria {
            let o = match k.field {
                SortField::Arrival => a.arrival.cmp(&b.arrival),
                SortField::Date => a.date.cmp(&b.date),
                SortField::Size => a.size.cmp(&b.size),
                SortField::Subject => a.base_subject.cmp(&b.base_subject),
                SortField::From => a.from.cmp(&b.from),
                SortField::To => a.to.cmp(&b.to),
                SortField::Cc => a.cc.cmp(&b.cc),
                SortField::DisplayFrom => a.display_from.cmp(&b.display_from),
                SortField::DisplayTo => a.display_to.cmp(&b.display_to),
            };
            let o = if k.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.n.cmp(&b.n)
    });
}

/// ORDEREDSUBJECT: one thread per base subject, its first message (by date)
/// the parent of all the others; threads ordered by their first message.
pub(crate) fn thread_ordered_subject(items: &[Item]) -> Vec<Thread> {
    let mut sorted = items.to_vec();
    sorted.sort_by(|a, b| {
        a.base_subject
            .cmp(&b.base_subject)
            .then(a.date.cmp(&b.date))
            .then(a.n.cmp(&b.n))
    });
    let mut threads: Vec<(i64, u32, Thread)> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j].base_subject == sorted[i].base_subject {
            j += 1;
        }
        let children = sorted[i + 1..j]
            .iter()
            .map(|m| Thread {
                n: Some(m.n),
                children: vec![],
            })
            .collect();
        threads.push((
            sorted[i].date,
            sorted[i].n,
            Thread {
                n: Some(sorted[i].n),
                children,
            },
        ));
        i = j;
    }
    threads.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    threads.into_iter().map(|(_, _, t)| t).collect()
}

/// REFERENCES (RFC 5256 §3, after Jamie Zawinski's algorithm): messages
/// linked by Message-ID/References/In-Reply-To, missing parents kept as
/// placeholders only where they join several replies, root threads with the
/// same base subject merged, siblings and threads ordered by date.
pub(crate) fn thread_references(items: &[Item]) -> Vec<Thread> {
    // An arena of containers; `msg` indexes `items`.
    struct Node {
        msg: Option<usize>,
        parent: Option<usize>,
        children: Vec<usize>,
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    fn node_for(by_id: &mut HashMap<String, usize>, id: &str, nodes: &mut Vec<Node>) -> usize {
        *by_id.entry(id.to_string()).or_insert_with(|| {
            nodes.push(Node {
                msg: None,
                parent: None,
                children: vec![],
            });
            nodes.len() - 1
        })
    }
    fn is_ancestor(nodes: &[Node], maybe_ancestor: usize, mut n: usize) -> bool {
        let mut steps = 0;
        while let Some(p) = nodes[n].parent {
            if p == maybe_ancestor || steps > nodes.len() {
                return true;
            }
            n = p;
            steps += 1;
        }
        false
    }
    fn link(nodes: &mut [Node], parent: usize, child: usize) {
        if parent == child || is_ancestor(nodes, child, parent) {
            return;
        }
        if let Some(old) = nodes[child].parent {
            nodes[old].children.retain(|&c| c != child);
        }
        nodes[child].parent = Some(parent);
        nodes[parent].children.push(child);
    }
    for (i, item) in items.iter().enumerate() {
        // A message without an id, or with one already taken, gets its own.
        let own = match &item.message_id {
            Some(id) if by_id.get(id).is_none_or(|&n| nodes[n].msg.is_none()) => {
                node_for(&mut by_id, id, &mut nodes)
            }
            _ => node_for(&mut by_id, &format!("\u{0}{i}"), &mut nodes),
        };
        nodes[own].msg = Some(i);
        let mut prev: Option<usize> = None;
        for r in &item.references {
            let n = node_for(&mut by_id, r, &mut nodes);
            if let Some(p) = prev {
                if nodes[n].parent.is_none() {
                    link(&mut nodes, p, n);
                }
            }
            prev = Some(n);
        }
        // Step 1.B: an existing parent (from a truncated References
        // elsewhere) is broken first; the new link is then made unless it
        // would close a loop, in which case the message stays a root.
        if let Some(old) = nodes[own].parent.take() {
            nodes[old].children.retain(|&c| c != own);
        }
        if let Some(p) = prev {
            link(&mut nodes, p, own);
        }
    }
    // Build trees from the roots, dropping empty placeholders.
    fn build(nodes: &[Node], n: usize, items: &[Item], root: bool) -> Vec<Thread> {
        let children: Vec<Thread> = nodes[n]
            .children
            .iter()
            .flat_map(|&c| build(nodes, c, items, false))
            .collect();
        match nodes[n].msg {
            Some(m) => vec![Thread {
                n: Some(items[m].n),
                children,
            }],
            None if children.is_empty() => vec![],
            // A placeholder joins replies only at the root with several.
            None if root && children.len() > 1 => vec![Thread { n: None, children }],
            None => children,
        }
    }
    let mut roots: Vec<Thread> = (0..nodes.len())
        .filter(|&n| nodes[n].parent.is_none())
        .flat_map(|n| build(&nodes, n, items, true))
        .collect();
    let by_n: HashMap<u32, &Item> = items.iter().map(|i| (i.n, i)).collect();
    // Merge root threads by base subject (RFC 5256 §3 step 5).
    let subject_of = |t: &Thread| -> Option<(String, bool)> {
        let n = t.n.or_else(|| t.children.first().and_then(|c| c.n))?;
        by_n.get(&n)
            .map(|i| (i.base_subject.clone(), i.is_reply && t.n.is_some()))
    };
    let mut merged: Vec<Thread> = Vec::new();
    let mut table: HashMap<String, usize> = HashMap::new();
    for t in roots.drain(..) {
        let Some((subject, reply)) = subject_of(&t) else {
            merged.push(t);
            continue;
        };
        if subject.is_empty() {
            merged.push(t);
            continue;
        }
        match table.get(&subject) {
            None => {
                table.insert(subject, merged.len());
                merged.push(t);
            }
            Some(&at) => {
                let existing = &mut merged[at];
                let existing_reply = subject_of(existing).is_some_and(|(_, r)| r);
                if existing.n.is_none() && t.n.is_none() {
                    existing.children.extend(t.children);
                } else if existing.n.is_none() || (!existing_reply && reply) {
                    // Into the placeholder, or a reply under its original.
                    existing.children.push(t);
                } else {
                    let old = std::mem::replace(
                        existing,
                        Thread {
                            n: None,
                            children: vec![],
                        },
                    );
                    existing.children = vec![old, t];
                }
            }
        }
    }
    // Order siblings, then threads, by date (then message order).
    fn first_date(t: &Thread, by_n: &HashMap<u32, &Item>) -> (i64, u32) {
        match t.n.and_then(|n| by_n.get(&n)) {
            Some(i) => (i.date, i.n),
            None => t
                .children
                .iter()
                .map(|c| first_date(c, by_n))
                .min()
                .unwrap_or((i64::MAX, u32::MAX)),
        }
    }
    fn order(t: &mut Thread, by_n: &HashMap<u32, &Item>) {
        for c in &mut t.children {
            order(c, by_n);
        }
        t.children.sort_by_key(|c| first_date(c, by_n));
    }
    for t in &mut merged {
        order(t, &by_n);
    }
    merged.sort_by_key(|t| first_date(t, &by_n));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> Item {
        Item {
            n,
            date,
            arrival: date,
            base_subject: subject.to_lowercase(),
            message_id: Some(id.to_string()),
            references: refs.iter().map(|r| r.to_string()).collect(),
            ..Item::default()
        }
    }

    fn text(threads: &[Thread]) -> String {
        let mut s = String::new();
        for t in threads {
            write_thread(&mut s, t);
        }
        s
    }

    #[test]
    fn sorting_breaks_ties_by_message_order() {
        let mut items = vec![
            item(1, 30, "b", "1", &[]),
            item(2, 10, "a", "2", &[]),
            item(3, 10, "a", "3", &[]),
        ];
        sort_items(
            &mut items,
            &[SortKey {
                reverse: false,
                field: SortField::Date,
            }],
        );
        assert_eq!(items.iter().map(|i| i.n).collect::<Vec<_>>(), [2, 3, 1]);
        sort_items(
            &mut items,
            &[SortKey {
                reverse: true,
                field: SortField::Subject,
            }],
        );
        assert_eq!(items.iter().map(|i| i.n).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn references_threads_replies_and_placeholders() {
        let items = vec![
            item(1, 10, "topic", "a", &[]),
            item(2, 20, "topic", "b", &["a"]),
            item(3, 30, "topic", "c", &["a", "b"]),
            item(4, 15, "other", "d", &[]),
            // Two replies to a message we do not have: joined under a placeholder.
            item(5, 40, "lost", "e", &["missing"]),
            item(6, 50, "lost", "f", &["missing"]),
        ];
        assert_eq!(text(&thread_references(&items)), "(1 2 3)(4)((5)(6))");
    }

    #[test]
    fn references_survives_loops_and_duplicates() {
        let items = vec![
            item(1, 10, "x", "a", &["b"]),
            item(2, 20, "x", "b", &["a"]),
            item(3, 30, "y", "a", &[]),
        ];
        let out = text(&thread_references(&items));
        for n in ["1", "2", "3"] {
            assert!(out.contains(n), "{out}");
        }
    }

    /// RFC 5256 step 1.B breaks the message's existing parent before the
    /// loop check: 3's parent (1, from 2's References) goes, and the link
    /// to 2 would close a loop, so 3 heads its own thread.
    #[test]
    fn references_breaks_the_old_parent_before_the_loop_check() {
        let items = vec![
            item(1, 10, "x", "a", &[]),
            item(2, 20, "y", "b", &["a", "c"]),
            item(3, 30, "z", "c", &["b"]),
        ];
        assert_eq!(text(&thread_references(&items)), "(1)(3 2)");
    }

    #[test]
    fn esort_ranges_keep_the_order() {
        assert_eq!(
            ordered_set(&[8, 1, 3, 4, 5, 7, 11, 12, 9]),
            "8,1,3:5,7,11:12,9"
        );
        assert_eq!(ordered_set(&[5, 4, 3]), "5,4,3");
    }

    #[test]
    fn ordered_subject_groups_by_subject() {
        let items = vec![
            item(1, 30, "b", "1", &[]),
            item(2, 10, "a", "2", &[]),
            item(3, 20, "a", "3", &[]),
            item(4, 40, "a", "4", &[]),
        ];
        assert_eq!(text(&thread_ordered_subject(&items)), "(2 (3)(4))(1)");
    }
}
