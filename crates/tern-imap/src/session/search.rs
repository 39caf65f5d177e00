//! SEARCH and UID SEARCH (RFC 9051 §6.4.4), with ESEARCH results (RFC
//! 4731), SEARCHRES's SAVE (RFC 5182), WITHIN (RFC 5032), CONDSTORE's
//! MODSEQ (RFC 7162) and OBJECTID (RFC 8474): IMAP keys are translated into
//! the Store's [`tern_store::SearchKey`], which runs full-text keys through
//! the index.

use super::selected::{uid_set, Selected};
use super::Session;
use crate::parse::lexer::days_from_civil;
use crate::parse::{SearchKey, SearchReturn};
use tern_store::{EmailId, SearchKey as Key, ThreadId, Uid};

impl Session {
    pub(super) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        charset: Option<&str>,
        criteria: &[SearchKey],
        ret: Option<Vec<SearchReturn>>,
    ) {
        if let Some(cs) = charset {
            if !cs.eq_ignore_ascii_case("UTF-8") && !cs.eq_ignore_ascii_case("US-ASCII") {
                return self.tagged(
                    tag,
                    "NO",
                    "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
                );
            }
        }
        // SEARCH takes message numbers beyond the mailbox as matching
        // nothing, as Dovecot does; FETCH, STORE and COPY refuse them.
        let account = self.account_id();
        let Some(sel) = self.selected() else { return };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let key = Key::and(criteria.iter().map(|k| translate(k, sel, now)));
        let mailbox = sel.mailbox.id;
        let wants_modseq = criteria.iter().any(uses_modseq);
        if wants_modseq {
            // SEARCH MODSEQ enables CONDSTORE (RFC 7162 §3.1).
            self.enable_condstore();
        }
        let found = match self.srv.store.search(account, mailbox, &key).await {
            Ok(f) => f,
            Err(e) => return self.store_error(tag, e),
        };
        // Only what this session knows of (a message delivered meanwhile has
        // no number yet).
        let Some(sel) = self.selected() else { return };
        let found: Vec<Uid> = found
            .into_iter()
            .filter(|u| sel.seq(*u).is_some())
            .collect();
        let numbers: Vec<u32> = found
            .iter()
            .map(|u| if uid { u.0 } else { sel.seq(*u).unwrap_or(0) })
            .collect();
        // IMAP4rev2 answers every SEARCH with ESEARCH (RFC 9051 §6.4.4).
        let ret = if self.rev2 && ret.is_none() {
            Some(vec![SearchReturn::All])
        } else {
            ret
        };
        // With only MIN and/or MAX asked for, those are the messages
        // returned: the MODSEQ is theirs (RFC 4731 §3.2) and SAVE keeps
        // just them (RFC 5182 §2.4).
        let extremes_only = ret.as_ref().is_some_and(|r| {
            r.iter()
                .any(|x| matches!(x, SearchReturn::Min | SearchReturn::Max))
                && !r
                    .iter()
                    .any(|x| matches!(x, SearchReturn::All | SearchReturn::Count))
        });
        let returned: Vec<Uid> = match (extremes_only, ret.as_ref()) {
            (true, Some(r)) if !found.is_empty() => {
                let mut picked = Vec::new();
                if r.contains(&SearchReturn::Min) {
                    picked.push(found[0]);
                }
                if r.contains(&SearchReturn::Max) {
                    picked.push(found[found.len() - 1]);
                }
                picked.dedup();
                picked
            }
            _ => found.clone(),
        };
        let highest = if wants_modseq && !returned.is_empty() {
            match self.srv.store.messages(account, mailbox, &returned).await {
                Ok(m) => m.iter().map(|e| e.modseq.0).max(),
                Err(e) => return self.store_error(tag, e),
            }
        } else {
            None
        };
        match ret {
            None => {
                let mut line = String::from("SEARCH");
                for n in &numbers {
                    line.push_str(&format!(" {n}"));
                }
                if let Some(m) = highest {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                self.untagged(&line);
            }
            Some(ret) => {
                let ret = if ret.is_empty() {
                    vec![SearchReturn::All]
                } else {
                    ret
                };
                if ret.contains(&SearchReturn::Save) {
                    if let Some(sel) = self.selected_mut() {
                        sel.saved = returned.clone();
                    }
                }
                let only_save = ret.iter().all(|r| *r == SearchReturn::Save);
                if !only_save {
                    let mut line = format!("ESEARCH (TAG \"{tag}\")");
                    if uid {
                        line.push_str(" UID");
                    }
                    if !numbers.is_empty() {
                        for r in &ret {
                            match r {
                                SearchReturn::Min => line.push_str(&format!(
                                    " MIN {}",
                                    numbers.iter().min().unwrap_or(&0)
                                )),
                                SearchReturn::Max => line.push_str(&format!(
                                    " MAX {}",
                                    numbers.iter().max().unwrap_or(&0)
                                )),
                                SearchReturn::All => {
                                    let as_uids: Vec<Uid> =
                                        numbers.iter().map(|n| Uid(*n)).collect();
                                    line.push_str(&format!(" ALL {}", uid_set(&as_uids)));
                                }
                                SearchReturn::Count | SearchReturn::Save => {}
                            }
                        }
                    }
                    if ret.contains(&SearchReturn::Count) {
                        line.push_str(&format!(" COUNT {}", numbers.len()));
                    }
                    if let Some(m) = highest {
                        line.push_str(&format!(" MODSEQ {m}"));
                    }
                    self.untagged(&line);
                }
            }
        }
        self.sync(uid).await;
        self.tagged(tag, "OK", "SEARCH completed");
    }
}

fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(ks) => ks.iter().any(uses_modseq),
        _ => false,
    }
}

/// The UTC day `d` as [start, end) unix seconds: IMAP dates disregard time
/// and timezone (RFC 9051 §6.4.4).
fn day((y, m, d): (i32, u32, u32)) -> (i64, i64) {
    let start = days_from_civil(y, m, d) * 86_400;
    (start, start + 86_400)
}

fn uid_ranges(uids: &[Uid]) -> Key {
    if uids.is_empty() {
        return Key::Not(Box::new(Key::All));
    }
    Key::Uids(uids.iter().map(|u| (*u, *u)).collect())
}

fn flag(name: &str) -> Key {
    Key::Keyword(name.to_string())
}

fn not(k: Key) -> Key {
    Key::Not(Box::new(k))
}

/// The messages recent in this session, as UID ranges.
fn recent(sel: &Selected) -> Key {
    Key::Uids(
        sel.recent
            .iter()
            .filter(|(from, to)| from < to)
            .map(|&(from, to)| (from, Uid(to.0 - 1)))
            .collect(),
    )
}

pub(super) fn translate(k: &SearchKey, sel: &Selected, now: i64) -> Key {
    use SearchKey as S;
    let header = |name: &str, v: &str| Key::Header {
        name: name.to_string(),
        value: v.to_string(),
    };
    match k {
        S::All => Key::All,
        // \Recent is the session's own (IMAP4rev1; none after ENABLE
        // IMAP4rev2): NEW is recent and unseen, OLD not recent.
        S::Recent => recent(sel),
        S::New => Key::And(vec![recent(sel), not(flag("\\Seen"))]),
        S::Old => not(recent(sel)),
        S::Answered => flag("\\Answered"),
        S::Deleted => flag("\\Deleted"),
        S::Draft => flag("\\Draft"),
        S::Flagged => flag("\\Flagged"),
        S::Seen => flag("\\Seen"),
        S::Unanswered => not(flag("\\Answered")),
        S::Undeleted => not(flag("\\Deleted")),
        S::Undraft => not(flag("\\Draft")),
        S::Unflagged => not(flag("\\Flagged")),
        S::Unseen => not(flag("\\Seen")),
        S::Keyword(k) => flag(k),
        S::Unkeyword(k) => not(flag(k)),
        S::Bcc(v) => header("Bcc", v),
        S::Cc(v) => header("Cc", v),
        S::From(v) => header("From", v),
        S::To(v) => header("To", v),
        S::Subject(v) => header("Subject", v),
        S::Header(n, v) => header(n, v),
        S::Body(v) => Key::Body(v.clone()),
        S::Text(v) => Key::Text(v.clone()),
        S::Before(d) => Key::Received {
            since: None,
            before: Some(day(*d).0),
        },
        S::On(d) => Key::Received {
            since: Some(day(*d).0),
            before: Some(day(*d).1),
        },
        S::Since(d) => Key::Received {
            since: Some(day(*d).0),
            before: None,
        },
        S::SentBefore(d) => Key::Sent {
            since: None,
            before: Some(day(*d).0),
        },
        S::SentOn(d) => Key::Sent {
            since: Some(day(*d).0),
            before: Some(day(*d).1),
        },
        S::SentSince(d) => Key::Sent {
            since: Some(day(*d).0),
            before: None,
        },
        // Dates in the server's zone, as INTERNALDATE keys use: UTC.
        S::SavedBefore(d) => Key::Saved {
            since: None,
            before: Some(day(*d).0),
        },
        S::SavedOn(d) => Key::Saved {
            since: Some(day(*d).0),
            before: Some(day(*d).1),
        },
        S::SavedSince(d) => Key::Saved {
            since: Some(day(*d).0),
            before: None,
        },
        // Every mailbox keeps save dates (RFC 8514 §4.1).
        S::SaveDateSupported => Key::All,
        S::Larger(n) => Key::Larger(*n),
        S::Smaller(n) => Key::Smaller(*n),
        S::Older(n) => Key::Received {
            since: None,
            before: Some(now.saturating_sub(*n as i64) + 1),
        },
        S::Younger(n) => Key::Received {
            since: Some(now.saturating_sub(*n as i64)),
            before: None,
        },
        S::Uid(set) => uid_ranges(&sel.resolve(set, true)),
        S::Sequence(set) => uid_ranges(&sel.resolve(set, false)),
        S::ModSeq(m) => Key::ModSeqAtLeast(tern_store::ModSeq(*m)),
        S::EmailId(id) => match id.strip_prefix('M').and_then(|n| n.parse().ok()) {
            Some(n) => Key::EmailIds(vec![EmailId(n)]),
            None => not(Key::All),
        },
        S::ThreadId(id) => match id.strip_prefix('T').and_then(|n| n.parse().ok()) {
            Some(n) => Key::ThreadIds(vec![ThreadId(n)]),
            None => not(Key::All),
        },
        S::Not(k) => not(translate(k, sel, now)),
        S::Or(a, b) => Key::Or(
            Box::new(translate(a, sel, now)),
            Box::new(translate(b, sel, now)),
        ),
        S::And(ks) => Key::and(ks.iter().map(|k| translate(k, sel, now))),
    }
}
