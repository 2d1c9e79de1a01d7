//! The fake vault's HTTP side: the challenge, throttling, and the secrets REST operations.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::model::{Throttled, Vault, bundle, error_body};
use super::{FakeVault, TOKEN};

const CHALLENGE: &str = r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#;
const MAX_TAGS: usize = 15;
const MAX_TAG_LEN: usize = 512;
const MAX_VALUE: usize = 25 * 1024;

pub fn router(vault: FakeVault) -> Router {
    Router::new().fallback(handle).with_state(vault)
}

type Answer = (StatusCode, Value);

fn fail(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Answer {
    (status, error_body(code, message, inner))
}

fn not_found(name: &str) -> Answer {
    fail(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        &format!("A secret with (name/id) {name} was not found in this key vault."),
        None,
    )
}

async fn handle(
    State(fake): State<FakeVault>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let latency = fake.state().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let authorized =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
    let mut vault = fake.state();
    let (status, body, extra) = if !authorized {
        let body = error_body("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", None);
        (StatusCode::UNAUTHORIZED, body, Some(("www-authenticate", CHALLENGE.to_owned())))
    } else if let Some(f) = vault.fail.clone().filter(|f| target.contains(&f.path_contains)) {
        let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, error_body(&f.code, "failing on purpose (test)", f.inner.as_deref()), None)
    } else {
        match vault.throttle(&target) {
            Throttled::Yes { retry_after } => {
                let body = error_body(
                    "Throttled",
                    "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
                    None,
                );
                (StatusCode::TOO_MANY_REQUESTS, body, retry_after.map(|s| ("retry-after", s.to_string())))
            }
            Throttled::No => {
                let (status, body) = operation(&mut vault, &fake.base, &method, &uri, &body);
                (status, body, None)
            }
        }
    };
    vault.log.push(format!("{} {method} {target}", status.as_u16()));
    drop(vault);
    let mut response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        let mut r = (status, body.to_string()).into_response();
        r.headers_mut().insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
        r
    };
    if let Some((name, value)) = extra
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response.headers_mut().insert(name, value);
    }
    response
}

fn operation(vault: &mut Vault, base: &str, method: &Method, uri: &Uri, body: &[u8]) -> Answer {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let param = |k: &str| query.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone());
    if param("api-version").is_none() {
        return fail(StatusCode::BAD_REQUEST, "BadParameter", "api-version is required", None);
    }
    let page = match page_params(param("maxresults"), param("$skiptoken")) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let path = uri.path().trim_start_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["secrets"]) => list_secrets(vault, base, page),
        ("GET", ["secrets", name, "versions"]) => list_versions(vault, base, name, page),
        ("GET", ["secrets", name] | ["secrets", name, ""]) => get(vault, base, name, None),
        ("GET", ["secrets", name, version]) => get(vault, base, name, Some(version)),
        ("PUT", ["secrets", name]) => put(vault, base, name, body),
        ("PATCH", ["secrets", name] | ["secrets", name, ""]) => patch(vault, base, name, None, body),
        ("PATCH", ["secrets", name, version]) => patch(vault, base, name, Some(version), body),
        ("DELETE", ["secrets", name]) => delete(vault, base, name),
        ("GET", ["deletedsecrets", name]) => match vault.deleted.get(&name.to_ascii_lowercase()) {
            Some(e) => (StatusCode::OK, deleted_bundle(base, e)),
            None => not_found(name),
        },
        ("DELETE", ["deletedsecrets", name]) => purge(vault, name),
        ("POST", ["deletedsecrets", name, "recover"]) => recover(vault, base, name),
        _ => fail(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!("unknown operation {method} /{path}"),
            None,
        ),
    }
}

/// `(maxresults, offset)` from the query; `$skiptoken` is base64 JSON, as Key Vault's.
fn page_params(max: Option<String>, skip: Option<String>) -> Result<(usize, usize), Answer> {
    let bad = |m: &str| fail(StatusCode::BAD_REQUEST, "BadParameter", m, None);
    let max = match max {
        None => 25,
        Some(m) => m
            .parse()
            .ok()
            .filter(|m| (1..=25).contains(m))
            .ok_or_else(|| bad("maxresults must be 1 to 25"))?,
    };
    let offset = match skip {
        None => 0,
        Some(token) => {
            let json = STANDARD.decode(token).map_err(|_| bad("invalid $skiptoken"))?;
            let v: Value = serde_json::from_slice(&json).map_err(|_| bad("invalid $skiptoken"))?;
            v["NextMarker"].as_str().and_then(|m| m.parse().ok()).ok_or_else(|| bad("invalid $skiptoken"))?
        }
    };
    Ok((max, offset))
}

/// One page of `total` items, built by `items(offset, max)` (only the page's items are built,
/// so listing a large vault page by page stays linear), with a `nextLink` to `path` when more
/// follow.
fn paged(
    base: &str,
    path: &str,
    total: usize,
    (max, offset): (usize, usize),
    items: impl FnOnce(usize, usize) -> Vec<Value>,
) -> Answer {
    let end = (offset + max).min(total);
    let page = if offset < end { items(offset, end - offset) } else { Vec::new() };
    let next = (end < total).then(|| {
        let token =
            STANDARD.encode(json!({ "NextMarker": end.to_string(), "TargetLocation": 0 }).to_string());
        let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        format!("{base}{path}?api-version=2025-07-01&$skiptoken={token}&maxresults={max}")
    });
    (StatusCode::OK, json!({ "value": page, "nextLink": next }))
}

fn list_secrets(vault: &Vault, base: &str, page: (usize, usize)) -> Answer {
    let listed = || vault.live.values().filter(|e| !e.versions.is_empty());
    paged(base, "/secrets", listed().count(), page, |skip, take| {
        listed()
            .skip(skip)
            .take(take)
            .filter_map(|e| e.versions.last().map(|v| bundle(base, e, v, false, false)))
            .collect()
    })
}

fn list_versions(vault: &Vault, base: &str, name: &str, page: (usize, usize)) -> Answer {
    let Some(entry) = vault.live.get(&name.to_ascii_lowercase()) else {
        return (StatusCode::OK, json!({ "value": [], "nextLink": null }));
    };
    // No order is promised; newest first makes sure clients sort for themselves.
    let path = format!("/secrets/{}/versions", entry.name);
    paged(base, &path, entry.versions.len(), page, |skip, take| {
        entry
            .versions
            .iter()
            .rev()
            .skip(skip)
            .take(take)
            .map(|v| bundle(base, entry, v, false, true))
            .collect()
    })
}

fn get(vault: &Vault, base: &str, name: &str, version: Option<&str>) -> Answer {
    let Some(entry) = vault.live.get(&name.to_ascii_lowercase()) else { return not_found(name) };
    let found = match version {
        Some(id) => entry.versions.iter().find(|v| v.id == id),
        None => entry.versions.last(),
    };
    let Some(v) = found else { return not_found(&format!("{name}/{}", version.unwrap_or_default())) };
    if !v.enabled {
        return fail(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        );
    }
    (StatusCode::OK, bundle(base, entry, v, true, true))
}

fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Checks tags as Key Vault does.
fn tags_of(body: &Value) -> Result<Option<Map<String, Value>>, Answer> {
    let Some(tags) = body.get("tags") else { return Ok(None) };
    let bad = |m: &str| fail(StatusCode::BAD_REQUEST, "BadParameter", m, None);
    let tags = tags.as_object().ok_or_else(|| bad("tags must be an object"))?;
    if tags.len() > MAX_TAGS {
        return Err(bad("The number of tags exceeds the maximum of 15"));
    }
    for (k, v) in tags {
        let v = v.as_str().ok_or_else(|| bad("tag values must be strings"))?;
        if k.len() > MAX_TAG_LEN || v.len() > MAX_TAG_LEN {
            return Err(bad("Tag names and values are limited to 512 characters"));
        }
    }
    Ok(Some(tags.clone()))
}

fn put(vault: &mut Vault, base: &str, name: &str, body: &[u8]) -> Answer {
    if !valid_name(name) {
        return fail(StatusCode::BAD_REQUEST, "BadParameter", "The secret name is invalid", None);
    }
    if vault.deleted.contains_key(&name.to_ascii_lowercase()) {
        let m = format!(
            "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
        );
        return fail(StatusCode::CONFLICT, "Conflict", &m, Some("ObjectIsDeletedButRecoverable"));
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return fail(StatusCode::BAD_REQUEST, "BadParameter", "The request body is not JSON", None);
    };
    let Some(value) = body["value"].as_str().filter(|v| v.len() <= MAX_VALUE) else {
        return fail(StatusCode::BAD_REQUEST, "BadParameter", "value is missing or longer than 25 KB", None);
    };
    let tags = match tags_of(&body) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let attributes = &body["attributes"];
    let content_type = body["contentType"].as_str().map(str::to_owned);
    let enabled = attributes["enabled"].as_bool().unwrap_or(true);
    let (exp, nbf) = (attributes["exp"].as_i64(), attributes["nbf"].as_i64());
    let id = vault.put(name, value.to_owned(), content_type, tags, enabled, exp, nbf);
    get_version(vault, base, name, &id, true)
}

fn get_version(vault: &Vault, base: &str, name: &str, id: &str, with_value: bool) -> Answer {
    let entry = &vault.live[&name.to_ascii_lowercase()];
    match entry.versions.iter().find(|v| v.id == id) {
        Some(v) => (StatusCode::OK, bundle(base, entry, v, with_value, true)),
        None => not_found(name),
    }
}

fn patch(vault: &mut Vault, base: &str, name: &str, version: Option<&str>, body: &[u8]) -> Answer {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return fail(StatusCode::BAD_REQUEST, "BadParameter", "The request body is not JSON", None);
    };
    let tags = match tags_of(&body) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let now = vault.now();
    let Some(entry) = vault.live.get_mut(&name.to_ascii_lowercase()) else { return not_found(name) };
    let found = match version {
        Some(id) => entry.versions.iter_mut().find(|v| v.id == id),
        None => entry.versions.last_mut(),
    };
    let Some(v) = found else { return not_found(name) };
    let attributes = &body["attributes"];
    if let Some(enabled) = attributes["enabled"].as_bool() {
        v.enabled = enabled;
    }
    if let Some(exp) = attributes["exp"].as_i64() {
        v.exp = Some(exp);
    }
    if let Some(nbf) = attributes["nbf"].as_i64() {
        v.nbf = Some(nbf);
    }
    if let Some(ct) = body["contentType"].as_str() {
        v.content_type = Some(ct.to_owned());
    }
    if tags.is_some() {
        v.tags = tags;
    }
    v.updated = now;
    let id = v.id.clone();
    get_version(vault, base, name, &id, false)
}

fn deleted_bundle(base: &str, entry: &super::model::Entry) -> Value {
    let mut out =
        entry.versions.last().map(|v| bundle(base, entry, v, false, true)).unwrap_or_else(|| json!({}));
    let deleted = entry.deleted_at.unwrap_or_default();
    out["recoveryId"] = format!("{base}/deletedsecrets/{}", entry.name).into();
    out["deletedDate"] = deleted.into();
    out["scheduledPurgeDate"] = (deleted + 90 * 86_400).into();
    out
}

fn delete(vault: &mut Vault, base: &str, name: &str) -> Answer {
    match vault.delete(name) {
        Some(entry) => (StatusCode::OK, deleted_bundle(base, entry)),
        None => not_found(name),
    }
}

fn conflict(name: &str) -> Answer {
    let m = format!("Secret {name} is currently being deleted.");
    fail(StatusCode::CONFLICT, "Conflict", &m, Some("ObjectIsBeingDeleted"))
}

fn purge(vault: &mut Vault, name: &str) -> Answer {
    if !vault.deleted.contains_key(&name.to_ascii_lowercase()) {
        return not_found(name);
    }
    if vault.conflict_pending(name) {
        return conflict(name);
    }
    vault.deleted.remove(&name.to_ascii_lowercase());
    (StatusCode::NO_CONTENT, Value::Null)
}

fn recover(vault: &mut Vault, base: &str, name: &str) -> Answer {
    let key = name.to_ascii_lowercase();
    if !vault.deleted.contains_key(&key) {
        return not_found(name);
    }
    if vault.conflict_pending(name) {
        return conflict(name);
    }
    let Some(mut entry) = vault.deleted.remove(&key) else { return not_found(name) };
    entry.deleted_at = None;
    let answer =
        entry.versions.last().map(|v| bundle(base, &entry, v, false, true)).unwrap_or_else(|| json!({}));
    vault.live.insert(key, entry);
    (StatusCode::OK, answer)
}
