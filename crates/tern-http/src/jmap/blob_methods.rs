//! JMAP Blob management (RFC 9404): `Blob/upload` (a blob made of text,
//! base64 and ranges of other blobs, inside a request), `Blob/get` (a
//! blob's bytes as text or base64, its size and digests, or a range of
//! it) and `Blob/lookup` (the emails, threads and mailboxes a blob belongs
//! to).

use super::{method_error, Call, MethodResult};
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tern_store::StoreError;

pub const BLOB: &str = "urn:ietf:params:jmap:blob";
/// Largest blob `Blob/upload` makes (the session's `maxSizeBlobSet`).
pub const MAX_SIZE_BLOB_SET: usize = 10 * 1024 * 1024;
/// Most pieces one blob is made of (`maxDataSources`).
pub const MAX_DATA_SOURCES: usize = 64;

/// The account capability (RFC 9404 §2).
pub fn capability() -> Value {
    json!({
        "maxSizeBlobSet": MAX_SIZE_BLOB_SET,
        "maxDataSources": MAX_DATA_SOURCES,
        "supportedTypeNames": ["Mailbox", "Thread", "Email"],
        "supportedDigestAlgorithms": ["sha-256"],
    })
}

/// A blob's bytes (a stored message or upload, or a decoded part of one).
async fn read(cx: &Call<'_>, id: &str) -> Result<Option<Vec<u8>>, Value> {
    let Some((blob, part)) = super::blob::parse_blob_id(id) else {
        return Ok(None);
    };
    match cx.server.mail.store().read_blob(cx.account, &blob).await {
        Ok(raw) => Ok(match part {
            None => Some(raw),
            Some(i) => super::body::part_of(&raw, i),
        }),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(method_error("serverFail", e.to_string())),
    }
}

/// `Blob/upload`.
pub async fn upload(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let (mut created, mut not_created) = (Map::new(), Map::new());
    let Some(Value::Object(create)) = args.get("create") else {
        return Err(method_error("invalidArguments", "create is required"));
    };
    for (creation_id, spec) in create {
        let result: Result<Value, Value> = async {
            let invalid = |why: &str| json!({"type": "invalidProperties", "properties": ["data"], "description": why});
            let sources = spec
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("data is a list of data sources"))?;
            if sources.len() > MAX_DATA_SOURCES {
                return Err(json!({"type": "tooManyDataSources", "maxDataSources": MAX_DATA_SOURCES}));
            }
            let mut bytes = Vec::new();
            for source in sources {
                if let Some(text) = source.get("data:asText").and_then(Value::as_str) {
                    bytes.extend_from_slice(text.as_bytes());
                } else if let Some(b64) = source.get("data:asBase64").and_then(Value::as_str) {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|_| invalid("data:asBase64 is not base64"))?;
                    bytes.extend_from_slice(&decoded);
                } else if let Some(id) = source.get("blobId").and_then(Value::as_str) {
                    let data = read(cx, id)
                        .await?
                        .ok_or_else(|| json!({"type": "blobNotFound", "notFound": [id]}))?;
                    let offset = source.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
                    let length = source.get("length").and_then(Value::as_u64).map(|l| l as usize);
                    let end = length.map_or(data.len(), |l| offset.saturating_add(l));
                    let range = data
                        .get(offset..end)
                        .ok_or_else(|| invalid("offset and length lie outside the blob"))?;
                    bytes.extend_from_slice(range);
                } else {
                    return Err(invalid("a data source has data:asText, data:asBase64 or blobId"));
                }
                if bytes.len() > MAX_SIZE_BLOB_SET {
                    return Err(json!({"type": "tooLarge", "maxSize": MAX_SIZE_BLOB_SET}));
                }
            }
            let size = bytes.len();
            let expires = tern_core::time::unix_now() + 24 * 3600;
            let blob = cx
                .server
                .mail
                .store()
                .upload_blob(account, bytes, expires)
                .await
                .map_err(|e| match e {
                    StoreError::OverQuota { .. } => json!({"type": "overQuota"}),
                    other => json!({"type": "serverFail", "description": other.to_string()}),
                })?;
            Ok(json!({
                "id": format!("b{}", blob.0),
                "type": spec.get("type").cloned().unwrap_or(Value::Null),
                "size": size,
            }))
        }
        .await;
        match result {
            Ok(v) => {
                created.insert(creation_id.clone(), v);
            }
            Err(e) => {
                not_created.insert(creation_id.clone(), e);
            }
        }
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "created": super::map_or_null(created),
        "notCreated": super::map_or_null(not_created),
    }))
}

/// `Blob/get`.
pub async fn get(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let ids: Vec<String> = match args.get("ids") {
        Some(Value::Array(ids)) if ids.len() <= super::MAX_OBJECTS_IN_GET => ids
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => {
            return Err(method_error(
                "invalidArguments",
                "ids is a list of blob ids",
            ))
        }
    };
    let wanted: Vec<String> = match args.get("properties") {
        None | Some(Value::Null) => vec!["data".into(), "size".into()],
        Some(Value::Array(p)) => p
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Some(_) => return Err(method_error("invalidArguments", "properties is a list")),
    };
    for p in &wanted {
        if ![
            "data",
            "data:asText",
            "data:asBase64",
            "size",
            "digest:sha-256",
        ]
        .contains(&p.as_str())
        {
            return Err(method_error(
                "invalidArguments",
                format!("unknown property {p}"),
            ));
        }
    }
    let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let length = args
        .get("length")
        .and_then(Value::as_u64)
        .map(|l| l as usize);
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    let mut budget = super::ReadBudget::default();
    for id in ids {
        let Some(data) = read(cx, &id).await? else {
            not_found.push(json!(id));
            continue;
        };
        budget.spend(data.len())?;
        let mut object = Map::new();
        object.insert("id".into(), json!(id));
        let end = length.map_or(data.len(), |l| offset.saturating_add(l).min(data.len()));
        let range = data.get(offset.min(data.len())..end).unwrap_or_default();
        let truncated = end < offset.saturating_add(length.unwrap_or(0)) || offset > data.len();
        for p in &wanted {
            match p.as_str() {
                "size" => {
                    object.insert("size".into(), json!(data.len()));
                }
                "digest:sha-256" => {
                    let digest = Sha256::digest(range);
                    object.insert(
                        p.clone(),
                        json!(base64::engine::general_purpose::STANDARD.encode(digest)),
                    );
                }
                // `data`: text when it is UTF-8, base64 otherwise.
                "data" | "data:asText" | "data:asBase64" => {
                    let text = std::str::from_utf8(range).ok();
                    if p == "data:asBase64" || (p == "data" && text.is_none()) {
                        object.insert(
                            "data:asBase64".into(),
                            json!(base64::engine::general_purpose::STANDARD.encode(range)),
                        );
                    } else {
                        object.insert("data:asText".into(), json!(text));
                        object.insert("isEncodingProblem".into(), json!(text.is_none()));
                    }
                    object.insert("isTruncated".into(), json!(truncated));
                }
                _ => {}
            }
        }
        list.push(Value::Object(object));
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "list": list,
        "notFound": not_found,
    }))
}

/// `Blob/lookup`: for each blob, the emails stored as it (a part's blob
/// id belongs to its message's email), their threads and mailboxes.
pub async fn lookup(cx: &Call<'_>, args: Map<String, Value>) -> MethodResult {
    let account = cx.account_arg(&args)?;
    let types: Vec<String> = args
        .get("typeNames")
        .and_then(Value::as_array)
        .ok_or_else(|| method_error("invalidArguments", "typeNames is required"))?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if let Some(t) = types
        .iter()
        .find(|t| !["Mailbox", "Thread", "Email"].contains(&t.as_str()))
    {
        return Err(method_error("unknownDataType", format!("no type {t}")));
    }
    let ids: Vec<String> = args
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| method_error("invalidArguments", "ids is required"))?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let store = cx.server.mail.store();
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    for id in ids {
        let Some((blob, _)) = super::blob::parse_blob_id(&id) else {
            not_found.push(json!(id));
            continue;
        };
        let emails = store
            .emails_with_blob(account, &blob)
            .await
            .map_err(|e| method_error("serverFail", e.to_string()))?;
        let records = store
            .email_records(account, &emails)
            .await
            .map_err(|e| method_error("serverFail", e.to_string()))?;
        let records: Vec<_> = records.into_iter().flatten().collect();
        if records.is_empty() && read(cx, &id).await?.is_none() {
            not_found.push(json!(id));
            continue;
        }
        let mut matched = Map::new();
        for t in &types {
            let mut found: Vec<String> = match t.as_str() {
                "Email" => records.iter().map(|r| super::ids::email_id(r.id)).collect(),
                "Thread" => records
                    .iter()
                    .map(|r| super::ids::thread_id(r.thread_id))
                    .collect(),
                _ => records
                    .iter()
                    .flat_map(|r| r.mailboxes.iter().map(|(m, _)| super::ids::mailbox_id(*m)))
                    .collect(),
            };
            found.sort();
            found.dedup();
            matched.insert(t.clone(), json!(found));
        }
        list.push(json!({"id": id, "matchedIds": matched}));
    }
    Ok(json!({
        "accountId": super::account_id(account),
        "list": list,
        "notFound": not_found,
    }))
}
