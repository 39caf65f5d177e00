//! Result references (RFC 8620 §3.7): an argument named `#name` whose
//! value is `{resultOf, name, path}` takes the value at `path` (a JSON
//! Pointer, RFC 6901, with `*` mapping over arrays) in the response of an
//! earlier call in the same request.

use super::method_error;
use serde_json::{Map, Value};

/// `args` with every `#` reference replaced by the value it points at.
pub fn resolve(
    args: &Map<String, Value>,
    responses: &[Value],
) -> Result<Map<String, Value>, Value> {
    let mut out = Map::with_capacity(args.len());
    for (key, value) in args {
        let Some(name) = key.strip_prefix('#') else {
            out.insert(key.clone(), value.clone());
            continue;
        };
        if args.contains_key(name) {
            return Err(method_error(
                "invalidArguments",
                format!("both {name} and #{name} are given"),
            ));
        }
        let invalid = |why: &str| method_error("invalidResultReference", why.to_string());
        let reference = value
            .as_object()
            .ok_or_else(|| invalid("a result reference is an object"))?;
        let (Some(result_of), Some(method), Some(path)) = (
            reference.get("resultOf").and_then(Value::as_str),
            reference.get("name").and_then(Value::as_str),
            reference.get("path").and_then(Value::as_str),
        ) else {
            return Err(invalid("a result reference has resultOf, name and path"));
        };
        let response = responses
            .iter()
            .find(|r| r[2] == result_of && r[0] == method)
            .ok_or_else(|| invalid(&format!("no {method} response with call id {result_of}")))?;
        let found = pointer(&response[1], path)
            .ok_or_else(|| invalid(&format!("{path} is not in the {method} response")))?;
        out.insert(name.to_string(), found);
    }
    Ok(out)
}

/// `args` with creation ids (`#k1`, RFC 8620 §5.3) replaced by the ids
/// they became, where a method takes ids: `ids`, `destroy`, the keys of
/// `update`, and `emailId` in `create`. An unknown `#` id is left as it is
/// (and is not found).
pub fn creation_ids(
    mut args: Map<String, Value>,
    created: &Map<String, Value>,
) -> Map<String, Value> {
    let map = |v: &mut Value| {
        if let Some(id) = v.as_str().and_then(|s| s.strip_prefix('#')) {
            if let Some(real) = created.get(id) {
                *v = real.clone();
            }
        }
    };
    for key in ["ids", "destroy"] {
        if let Some(Value::Array(list)) = args.get_mut(key) {
            list.iter_mut().for_each(map);
        }
    }
    // Inside created objects: the ids they point at (an EmailSubmission's
    // `emailId`).
    if let Some(Value::Object(create)) = args.get_mut("create") {
        for object in create.values_mut() {
            if let Some(Value::String(_)) = object.get("emailId") {
                if let Some(v) = object.get_mut("emailId") {
                    map(v);
                }
            }
        }
    }
    if let Some(Value::Object(update)) = args.remove("update") {
        let renamed = update
            .into_iter()
            .map(|(k, v)| {
                let key = k
                    .strip_prefix('#')
                    .and_then(|c| created.get(c))
                    .and_then(Value::as_str)
                    .map(String::from)
                    .unwrap_or(k);
                (key, v)
            })
            .collect();
        args.insert("update".into(), Value::Object(renamed));
    }
    args
}

/// Evaluates a JSON Pointer with JMAP's `*` extension: at an array, `*`
/// applies the rest of the path to every item, flattening arrays of
/// results into one array.
pub fn pointer(value: &Value, path: &str) -> Option<Value> {
    if path.is_empty() {
        return Some(value.clone());
    }
    let tokens: Vec<String> = path
        .strip_prefix('/')?
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    // Deeper than any JSON the server parses (serde_json stops at 128).
    if tokens.len() > 128 {
        return None;
    }
    walk(value, &tokens)
}

fn walk(value: &Value, tokens: &[String]) -> Option<Value> {
    let Some((token, rest)) = tokens.split_first() else {
        return Some(value.clone());
    };
    match value {
        Value::Array(items) if token == "*" => {
            let mut out = Vec::new();
            for item in items {
                match walk(item, rest)? {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Some(Value::Array(out))
        }
        Value::Array(items) => {
            let i: usize = token.parse().ok()?;
            walk(items.get(i)?, rest)
        }
        Value::Object(map) => walk(map.get(token.as_str())?, rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_with_wildcards() {
        let v =
            json!({"list": [{"id": "a", "ids": ["x", "y"]}, {"id": "b", "ids": ["z"]}], "a/b": 1});
        assert_eq!(pointer(&v, "/list/*/id"), Some(json!(["a", "b"])));
        assert_eq!(pointer(&v, "/list/*/ids"), Some(json!(["x", "y", "z"])));
        assert_eq!(pointer(&v, "/list/1/id"), Some(json!("b")));
        assert_eq!(pointer(&v, "/a~1b"), Some(json!(1)));
        assert_eq!(pointer(&v, "/missing"), None);
        assert_eq!(pointer(&v, "list"), None);
    }

    #[test]
    fn references_to_earlier_responses() {
        let responses = vec![json!(["Mailbox/get", {"list": [{"id": "m1"}, {"id": "m2"}]}, "c0"])];
        let args = json!({"#ids": {"resultOf": "c0", "name": "Mailbox/get", "path": "/list/*/id"}, "accountId": "a1"});
        let resolved = resolve(args.as_object().unwrap(), &responses).unwrap();
        assert_eq!(resolved["ids"], json!(["m1", "m2"]));
        let wrong = json!({"#ids": {"resultOf": "c9", "name": "Mailbox/get", "path": "/list"}});
        let e = resolve(wrong.as_object().unwrap(), &responses).unwrap_err();
        assert_eq!(e["type"], "invalidResultReference");
        let both =
            json!({"ids": [], "#ids": {"resultOf": "c0", "name": "Mailbox/get", "path": "/list"}});
        assert_eq!(
            resolve(both.as_object().unwrap(), &responses).unwrap_err()["type"],
            "invalidArguments"
        );
    }
}
