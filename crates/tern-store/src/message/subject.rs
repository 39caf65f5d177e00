//! The base subject of RFC 5256 §2.1, which IMAP THREAD=REFERENCES /
//! ORDEREDSUBJECT, SORT SUBJECT and JMAP threading compare.
//!
//! The input is the already decoded subject (step 1's RFC 2047 decoding is
//! done by mail-parser). Case is kept: the RFC's matching is
//! case-insensitive and the comparer lowercases, while a person reading a
//! thread title wants the sender's capitals.

/// Returns the base subject of a decoded subject.
pub(super) fn base_subject(subject: &str) -> String {
    // Step 1: tabs and line breaks become spaces, runs of spaces one space.
    let collapsed = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s = collapsed.as_str();

    loop {
        // Step 2: remove subj-trailer ("(fwd)" / WSP) repeatedly.
        loop {
            if let Some(rest) = s.strip_suffix(' ') {
                s = rest;
            } else if ends_with_ci(s, "(fwd)") {
                s = &s[..s.len() - "(fwd)".len()];
            } else {
                break;
            }
        }
        // Steps 3-5: remove subj-leader, then one subj-blob if something
        // remains after it, until neither applies.
        loop {
            let before = s.len();
            while let Some(rest) = strip_leader(s) {
                s = rest;
            }
            if let Some(rest) = strip_blob(s) {
                if !rest.is_empty() {
                    s = rest;
                }
            }
            if s.len() == before {
                break;
            }
        }
        // Step 6: "[fwd: subject]" is unwrapped and the whole thing redone.
        if starts_with_ci(s, "[fwd:") && s.ends_with(']') && s.len() > "[fwd:".len() {
            s = &s["[fwd:".len()..s.len() - 1];
            continue;
        }
        return s.to_string();
    }
}

/// subj-leader = (*subj-blob subj-refwd) / WSP
fn strip_leader(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix(' ') {
        return Some(rest);
    }
    let mut t = s;
    while let Some(rest) = strip_blob(t) {
        t = rest;
    }
    strip_refwd(t)
}

/// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
fn strip_refwd(s: &str) -> Option<&str> {
    let mut t = if starts_with_ci(s, "re") {
        &s[2..]
    } else if starts_with_ci(s, "fwd") {
        &s[3..]
    } else if starts_with_ci(s, "fw") {
        &s[2..]
    } else {
        return None;
    };
    t = t.trim_start_matches(' ');
    if let Some(rest) = strip_blob(t) {
        t = rest;
    }
    t.strip_prefix(':')
}

/// subj-blob = "[" *BLOBCHAR "]" *WSP, where BLOBCHAR is anything but
/// brackets.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(['[', ']'])?;
    let rest = inner[end..].strip_prefix(']')?;
    Some(rest.trim_start_matches(' '))
}

// The patterns are ASCII, so a match ends on a char boundary and slicing
// there is safe whatever the rest of the subject holds.
fn starts_with_ci(s: &str, pattern: &str) -> bool {
    s.as_bytes()
        .get(..pattern.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(pattern.as_bytes()))
}

fn ends_with_ci(s: &str, pattern: &str) -> bool {
    s.len() >= pattern.len()
        && s.as_bytes()[s.len() - pattern.len()..].eq_ignore_ascii_case(pattern.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::base_subject;

    #[test]
    fn rfc_5256_base_subjects() {
        for (subject, base) in [
            ("Re: [list] Fwd: hello (fwd)", "hello"),
            ("hello", "hello"),
            ("RE: re:Re : hello", "hello"),
            ("Re[2]: hello", "hello"),
            ("FW: Fwd: fw[x]: Hello World", "Hello World"),
            ("[list] hello", "hello"),
            ("[list]", "[list]"),
            ("[list] [other]", "[other]"),
            ("[Fwd: Re: hello]", "hello"),
            ("[fwd: [fwd: hi (fwd)]]", "hi"),
            ("  hello \t\r\n  world  (FWD) (fwd)", "hello world"),
            ("Re: Über die Brücke", "Über die Brücke"),
            ("Reply to this", "Reply to this"),
            ("Re:", ""),
            ("", ""),
            ("[", "["),
            ("[fwd:]", ""),
            ("(fwd)", ""),
        ] {
            assert_eq!(base_subject(subject), base, "base subject of {subject:?}");
        }
    }
}
