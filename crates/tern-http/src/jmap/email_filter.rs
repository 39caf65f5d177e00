//! `Email/query` filters (RFC 8621 §4.4.1, RFC 8620 §5.5): conditions and
//! the `AND`/`OR`/`NOT` operators over them, parsed into what the Store's
//! account-wide query takes and what is left to check per email; an `AND`
//! of conditions folds into one condition where it can.

use super::email::store_keyword;
use super::method_error;
use serde_json::{Map, Value};
use tern_store::{EmailQuery, SearchKey};

/// Deepest nesting of filter operators.
const MAX_FILTER_DEPTH: usize = 16;

use super::ids::parse_mailbox_id;

/// A condition the Store does not answer: checked per email.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Residual {
    HasAttachment(bool),
    /// Some, all or none of the emails of its thread have the keyword.
    InThread(ThreadRule, String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ThreadRule {
    All,
    Some,
    None,
}

/// One `FilterCondition` (RFC 8621 §4.4.1): what the Store's query takes,
/// the text conditions, and what is checked per email.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Condition {
    pub query: EmailQuery,
    pub text: Vec<SearchKey>,
    pub residual: Vec<Residual>,
    /// Contradictory (two different `inMailbox` in one `AND`).
    pub nothing: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Filter {
    Condition(Box<Condition>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Vec<Filter>),
}

pub(super) fn parse_utc_date(text: &str) -> Result<i64, Value> {
    tern_mail::headers::parse_utc_date(text)
        .ok_or_else(|| method_error("invalidArguments", format!("{text} is not a UTCDate")))
}

/// For the fuzz target: a client's UTCDate, and back.
#[doc(hidden)]
pub fn fuzz_dates(text: &str) -> Option<String> {
    parse_utc_date(text).ok().map(super::email::utc_date)
}

/// For the fuzz target: a client's filter.
#[doc(hidden)]
pub fn fuzz_filter(value: &Value) -> bool {
    parse_filter(value, 0).is_ok()
}

pub(super) fn parse_filter(value: &Value, depth: usize) -> Result<Filter, Value> {
    let Value::Object(map) = value else {
        return Err(method_error("invalidArguments", "a filter is an object"));
    };
    if depth > MAX_FILTER_DEPTH {
        return Err(method_error(
            "unsupportedFilter",
            format!("filters nest at most {MAX_FILTER_DEPTH} deep"),
        ));
    }
    let Some(operator) = map.get("operator") else {
        return parse_condition(map).map(|c| Filter::Condition(Box::new(c)));
    };
    let conditions = match map.get("conditions") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|c| parse_filter(c, depth + 1))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(method_error(
                "invalidArguments",
                "a FilterOperator has a conditions array",
            ))
        }
    };
    if let Some(other) = map.keys().find(|k| *k != "operator" && *k != "conditions") {
        return Err(method_error(
            "invalidArguments",
            format!("a FilterOperator has no {other}"),
        ));
    }
    match operator.as_str() {
        Some("AND") => Ok(Filter::And(conditions)),
        Some("OR") => Ok(Filter::Or(conditions)),
        Some("NOT") => Ok(Filter::Not(conditions)),
        _ => Err(method_error(
            "invalidArguments",
            "operator is AND, OR or NOT",
        )),
    }
}

fn parse_condition(f: &Map<String, Value>) -> Result<Condition, Value> {
    let mut c = Condition::default();
    let invalid = |what: &str| method_error("invalidArguments", what.to_string());
    for (key, value) in f {
        match (key.as_str(), value) {
            ("inMailbox", Value::String(id)) => {
                c.query.in_mailbox = Some(
                    parse_mailbox_id(id)
                        .ok_or_else(|| invalid(&format!("no mailbox {id}")))?,
                )
            }
            ("inMailboxOtherThan", Value::Array(ids)) => {
                let ids = ids
                    .iter()
                    .map(|id| id.as_str().and_then(parse_mailbox_id))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("inMailboxOtherThan takes mailbox ids"))?;
                c.query.in_mailbox_other_than = Some(ids);
            }
            ("hasKeyword", Value::String(k)) => c.query.has_keywords.push(store_keyword(k)),
            ("notKeyword", Value::String(k)) => c.query.not_keywords.push(store_keyword(k)),
            ("allInThreadHaveKeyword", Value::String(k)) => c
                .residual
                .push(Residual::InThread(ThreadRule::All, store_keyword(k))),
            ("someInThreadHaveKeyword", Value::String(k)) => c
                .residual
                .push(Residual::InThread(ThreadRule::Some, store_keyword(k))),
            ("noneInThreadHaveKeyword", Value::String(k)) => c
                .residual
                .push(Residual::InThread(ThreadRule::None, store_keyword(k))),
            ("hasAttachment", Value::Bool(b)) => c.residual.push(Residual::HasAttachment(*b)),
            ("minSize", Value::Number(n)) => {
                c.query.min_size = Some(n.as_u64().ok_or_else(|| invalid("minSize"))?)
            }
            // `size < maxSize` (RFC 8621 §4.4.1); the Store's bound is inclusive.
            ("maxSize", Value::Number(n)) => match n.as_u64() {
                Some(0) => c.nothing = true,
                Some(n) => c.query.max_size = Some(n - 1),
                None => return Err(invalid("maxSize")),
            },
            ("after", Value::String(d)) => c.query.after = Some(parse_utc_date(d)?),
            ("before", Value::String(d)) => c.query.before = Some(parse_utc_date(d)?),
            ("text", Value::String(t)) => c.text.push(SearchKey::Text(t.clone())),
            ("body", Value::String(t)) => c.text.push(SearchKey::Body(t.clone())),
            (field @ ("from" | "to" | "cc" | "bcc" | "subject"), Value::String(t)) => {
                let mut name = field.to_string();
                name[..1].make_ascii_uppercase();
                c.text.push(SearchKey::Header {
                    name,
                    value: t.clone(),
                });
            }
            ("header", Value::Array(h)) => match h.as_slice() {
                [Value::String(name)] => c.text.push(SearchKey::Header {
                    name: name.clone(),
                    value: String::new(),
                }),
                [Value::String(name), Value::String(value)] => c.text.push(SearchKey::Header {
                    name: name.clone(),
                    value: value.clone(),
                }),
                _ => return Err(invalid("header is [name] or [name, value]")),
            },
            (other, _) => {
                return Err(method_error(
                    "unsupportedFilter",
                    format!("{other} is not a condition this server knows, or its value is of the wrong type"),
                ))
            }
        }
    }
    Ok(c)
}

impl Filter {
    /// Whether any condition looks at other emails of the thread.
    pub(super) fn looks_at_threads(&self) -> bool {
        match self {
            Filter::Condition(c) => c
                .residual
                .iter()
                .any(|r| matches!(r, Residual::InThread(..))),
            Filter::And(parts) | Filter::Or(parts) | Filter::Not(parts) => {
                parts.iter().any(Filter::looks_at_threads)
            }
        }
    }
}

/// An `AND` of conditions as one condition, where they fold.
pub(super) fn fold_and(parts: &[Filter]) -> Option<Condition> {
    let mut out = Condition::default();
    for part in parts {
        let c = match part {
            Filter::Condition(c) => (**c).clone(),
            Filter::And(inner) => fold_and(inner)?,
            _ => return None,
        };
        let q = c.query;
        match (out.query.in_mailbox, q.in_mailbox) {
            (Some(a), Some(b)) if a != b => out.nothing = true,
            (None, Some(b)) => out.query.in_mailbox = Some(b),
            _ => {}
        }
        if q.in_mailbox_other_than.is_some() {
            if out.query.in_mailbox_other_than.is_some() {
                return None;
            }
            out.query.in_mailbox_other_than = q.in_mailbox_other_than;
        }
        out.query.has_keywords.extend(q.has_keywords);
        out.query.not_keywords.extend(q.not_keywords);
        out.query.min_size = out.query.min_size.max(q.min_size);
        out.query.max_size = match (out.query.max_size, q.max_size) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.query.after = out.query.after.max(q.after);
        out.query.before = match (out.query.before, q.before) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        out.text.extend(c.text);
        out.residual.extend(c.residual);
        out.nothing |= c.nothing;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operators_parse_and_fold() {
        let f = parse_filter(
            &json!({"operator": "AND", "conditions": [
                {"inMailbox": "M3"}, {"hasKeyword": "$seen"}, {"minSize": 10}
            ]}),
            0,
        )
        .unwrap();
        let Filter::And(parts) = &f else { panic!() };
        let c = fold_and(parts).unwrap();
        assert_eq!(c.query.in_mailbox, Some(tern_store::MailboxId(3)));
        assert_eq!(c.query.has_keywords, vec!["\\Seen".to_string()]);
        assert_eq!(c.query.min_size, Some(10));
        let clash = parse_filter(
            &json!({"operator": "AND", "conditions": [{"inMailbox": "M3"}, {"inMailbox": "M4"}]}),
            0,
        )
        .unwrap();
        let Filter::And(parts) = &clash else { panic!() };
        assert!(fold_and(parts).unwrap().nothing);
        let or = parse_filter(
            &json!({"operator": "OR", "conditions": [{"from": "a"}, {"to": "a"}]}),
            0,
        )
        .unwrap();
        assert!(matches!(or, Filter::Or(ref v) if v.len() == 2));
    }

    #[test]
    fn bad_filters_are_errors() {
        for bad in [
            json!({"operator": "XOR", "conditions": []}),
            json!({"operator": "AND"}),
            json!({"inMailbox": 3}),
            json!({"unknownThing": "x"}),
            json!([1]),
        ] {
            assert!(parse_filter(&bad, 0).is_err(), "{bad}");
        }
        let mut deep = json!({"hasKeyword": "a"});
        for _ in 0..40 {
            deep = json!({"operator": "NOT", "conditions": [deep]});
        }
        assert!(parse_filter(&deep, 0).is_err());
    }
}
