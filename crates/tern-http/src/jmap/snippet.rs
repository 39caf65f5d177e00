//! `SearchSnippet/get` (RFC 8621 §5): for emails a text search found, the
//! subject and a piece of the body with the words searched for marked
//! (`<mark>`), HTML-escaped, so a client shows why each one matched.

use super::{method_error, Call, MethodResult};
use serde_json::{json, Map, Value};
use tern_store::EmailId;

/// Longest preview, in characters (RFC 8621 §5: at most 255 octets of
/// text before markup is a good size).
const PREVIEW_CHARS: usize = 200;
/// Characters shown before the first match.
const LEAD_CHARS: usize = 40;

/// The words a filter searches for in text (not under `NOT`), lower-case.
fn terms(filter: &Value, out: &mut Vec<String>, depth: usize) {
    let Some(map) = filter.as_object() else {
        return;
    };
    if depth > 16 || map.get("operator").and_then(Value::as_str) == Some("NOT") {
        return;
    }
    if let Some(Value::Array(conditions)) = map.get("conditions") {
        for c in conditions {
            terms(c, out, depth + 1);
        }
    }
    for key in ["text", "subject", "body"] {
        if let Some(t) = map.get(key).and_then(Value::as_str) {
            out.extend(
                t.split_whitespace()
                    .map(|w| w.trim_matches('"').to_lowercase())
                    .filter(|w| !w.is_empty()),
            );
        }
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Most octets of a preview, markup included (RFC 8621 §5).
const PREVIEW_OCTETS: usize = 255;

/// `text` escaped with every occurrence of a term marked, at most `max`
/// octets of it (markup included) when given; `None` if no term occurs.
/// Matching is case-insensitive, by characters.
fn mark(text: &str, terms: &[String], max: Option<usize>) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut marked = vec![false; chars.len()];
    for term in terms {
        let t: Vec<char> = term.chars().collect();
        if t.is_empty() || t.len() > lower.len() {
            continue;
        }
        for start in 0..=lower.len() - t.len() {
            if lower[start..start + t.len()] == t[..] {
                marked[start..start + t.len()]
                    .iter_mut()
                    .for_each(|m| *m = true);
            }
        }
    }
    if !marked.contains(&true) {
        return None;
    }
    let mut out = String::new();
    let mut open = false;
    for (c, m) in chars.iter().zip(&marked) {
        let mut piece = String::new();
        let mut opens = open;
        if *m && !open {
            piece.push_str("<mark>");
            opens = true;
        } else if !*m && open {
            piece.push_str("</mark>");
            opens = false;
        }
        piece.push_str(&escape(&c.to_string()));
        // Room for this piece and the closing tag it may need.
        let closing = if opens { "</mark>".len() } else { 0 };
        if max.is_some_and(|max| out.len() + piece.len() + closing > max) {
            break;
        }
        out.push_str(&piece);
        open = opens;
    }
    if open {
        out.push_str("</mark>");
    }
    Some(out)
}

/// About [`PREVIEW_CHARS`] of `body` around the first term, marked.
fn preview(body: &str, terms: &[String]) -> Option<String> {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = flat.to_lowercase();
    let first = terms.iter().filter_map(|t| lower.find(t.as_str())).min()?;
    // `first` indexes the lower-cased text; count characters instead,
    // which lower-casing keeps for nearly all text.
    let at = lower[..first].chars().count();
    let start = at.saturating_sub(LEAD_CHARS);
    let window: String = flat.chars().skip(start).take(PREVIEW_CHARS).collect();
    mark(&window, terms, Some(PREVIEW_OCTETS))
}

pub async fn get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let ids: Vec<String> = match args.get("emailIds") {
        Some(Value::Array(ids)) if ids.len() <= super::MAX_OBJECTS_IN_GET => ids
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| method_error("invalidArguments", "emailIds are strings"))?,
        Some(Value::Array(_)) => {
            return Err(method_error(
                "requestTooLarge",
                format!("at most {} emails", super::MAX_OBJECTS_IN_GET),
            ))
        }
        _ => return Err(method_error("invalidArguments", "emailIds is required")),
    };
    let mut words = Vec::new();
    if let Some(filter) = args.get("filter") {
        terms(filter, &mut words, 0);
    }
    let store = cx.server.mail.store();
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    let mut budget = super::ReadBudget::default();
    for id in ids {
        let Some(email) = super::email::parse_email_id(&id) else {
            not_found.push(json!(id));
            continue;
        };
        let record = store
            .email_records(account, &[EmailId(email.0)])
            .await
            .map_err(|e| method_error("serverFail", e.to_string()))?
            .pop()
            .flatten();
        let Some(record) = record else {
            not_found.push(json!(id));
            continue;
        };
        let raw = store
            .read_blob(account, &record.blob_id)
            .await
            .map_err(|e| method_error("serverFail", e.to_string()))?;
        budget.spend(raw.len())?;
        let parsed = tern_store::message::parse_message(&raw);
        list.push(json!({
            "emailId": id,
            "subject": mark(&parsed.summary.subject, &words, None),
            "preview": preview(&parsed.body_text, &words),
        }));
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "list": list,
        "notFound": if not_found.is_empty() { Value::Null } else { Value::Array(not_found) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_terms_and_escapes() {
        let words = vec!["café".to_string(), "lunch".to_string()];
        assert_eq!(
            mark("Lunch at <Café>", &words, None).unwrap(),
            "<mark>Lunch</mark> at &lt;<mark>Café</mark>&gt;"
        );
        assert_eq!(mark("nothing here", &words, None), None);
        // CJK and escapes cost octets: the preview stays within 255.
        let wide = format!("{} lunch {}", "漢&".repeat(40), "字<".repeat(200));
        let p = preview(&wide, &words).unwrap();
        assert!(p.len() <= PREVIEW_OCTETS, "{} octets", p.len());
        assert!(p.contains("<mark>lunch</mark>"), "{p}");
        let body = format!("{} the lunch menu {}", "x ".repeat(100), "y ".repeat(200));
        let p = preview(&body, &words).unwrap();
        assert!(p.contains("<mark>lunch</mark>"), "{p}");
        assert!(p.chars().count() < PREVIEW_CHARS + 20);
        let mut t = Vec::new();
        terms(
            &json!({"operator": "AND", "conditions": [{"text": "Big Lunch"},
                {"operator": "NOT", "conditions": [{"text": "spam"}]}]}),
            &mut t,
            0,
        );
        assert_eq!(t, ["big", "lunch"]);
    }
}
