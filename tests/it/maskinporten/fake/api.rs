//! The self-service API's key-set resource, `/api/v1/clients/{client_id}/jwks`
//! (`oidc_api_admin`, "Bruk av asymmetrisk nøkkel"): bearer tokens from the token endpoint
//! with the `idporten:dcr.*` scopes ("Tilgangstyring av APIet"); GET, POST (and PUT) that
//! replace the whole set ("både POST og PUT erstatter evt. eksisterende JWKS"), and DELETE.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::errors::{FieldError, api_error};
use super::jwks;
use super::model::{EmptyJwks, Key, Registry, Storage};

/// GET needs one of these ("idporten:dcr.read: Gir tilgang til å lese klientregistreringer";
/// write and modify also read).
const READ_SCOPES: [&str; 3] = ["idporten:dcr.read", "idporten:dcr.write", "idporten:dcr.modify"];
/// POST, PUT and DELETE need one of these.
const WRITE_SCOPES: [&str; 2] = ["idporten:dcr.write", "idporten:dcr.modify"];

/// An API answer: status, JSON body (none for an empty body), and whether to send a
/// `WWW-Authenticate` challenge.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Option<Value>,
    pub challenge: bool,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer { status, body: Some(body), challenge: false }
    }
}

/// Answers `method` on the key set of `client_id` for the holder of `bearer`.
pub fn handle(
    registry: &mut Registry,
    method: &str,
    client_id: &str,
    bearer: Option<&str>,
    body: &[u8],
) -> Answer {
    let needed: &[&str] = if method == "GET" { &READ_SCOPES } else { &WRITE_SCOPES };
    let org = match authorize(registry, bearer, needed) {
        Ok(org) => org,
        Err(refused) => return refused,
    };
    let Some(client) = registry.clients.get(client_id) else {
        return not_found(registry, &format!("Client {client_id} not found"));
    };
    if client.org != org {
        let description = format!(
            "Client {client_id} is not bound to organisation {org}, the organisation of the access token"
        );
        return error(registry, 403, "access_denied", &description, &[]);
    }
    match method {
        "GET" => read(registry, client_id),
        "POST" | "PUT" => replace(registry, client_id, body),
        "DELETE" => delete(registry, client_id),
        _ => error(registry, 405, "method_not_allowed", &format!("{method} is not supported here"), &[]),
    }
}

/// 401 without a token the fake issued (or with an expired one), 403 without the scope; the
/// organisation of the token's client when it may go on. The `dcr` scopes reach only clients
/// "bundet mot samme org.nr. som gitt i access_token" (`oidc_api_admin`, "Bruk av Oauth2").
fn authorize(registry: &Registry, bearer: Option<&str>, needed: &[&str]) -> Result<String, Answer> {
    let Some(token) = bearer.and_then(|b| registry.valid_token(b)) else {
        let mut answer =
            error(registry, 401, "invalid_token", "Missing, unknown or expired bearer token", &[]);
        answer.challenge = true;
        return Err(answer);
    };
    if needed.iter().any(|scope| token.scopes.contains(*scope)) {
        return Ok(registry.clients.get(&token.client_id).map(|c| c.org.clone()).unwrap_or_default());
    }
    let description = format!("The access token has none of the scopes {}", needed.join(", "));
    Err(error(registry, 403, "insufficient_scope", &description, &[]))
}

/// The registered set as GET shows it, then the edits a test queued for "right after the
/// next GET" (a person changing keys in the portal between our GET and our POST).
fn read(registry: &mut Registry, client_id: &str) -> Answer {
    let dropped = &registry.faults.dropped_from_readback;
    let client = &registry.clients[client_id];
    let keys: Vec<&Key> = client.keys().iter().filter(|k| !dropped.contains(&k.kid)).collect();
    let mut body =
        json!({"created": timestamp(client.created), "last_updated": timestamp(client.last_updated())});
    let answer = match (keys.is_empty(), registry.empty_jwks) {
        (true, EmptyJwks::NotFound) => not_found(registry, &format!("Client {client_id} has no keys")),
        (true, EmptyJwks::OmitKeys) => Answer::json(200, body),
        (false, _) => {
            body["keys"] = json!(keys);
            Answer::json(200, body)
        }
    };
    apply_queued_edits(registry, client_id);
    answer
}

fn apply_queued_edits(registry: &mut Registry, client_id: &str) {
    let Some(edits) = registry.faults.after_next_get.remove(client_id) else { return };
    let now = registry.now();
    let client = registry.clients.get_mut(client_id).expect("client exists");
    let mut keys = client.keys().to_vec();
    for edit in edits {
        edit(&mut keys);
    }
    client.set_keys(now, keys);
}

/// POST (or PUT): validates the set as Digdir does and replaces the registered set with it.
fn replace(registry: &mut Registry, client_id: &str, body: &[u8]) -> Answer {
    let now = registry.now();
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return error(registry, 400, "invalid_request", &format!("The body is not JSON: {e}"), &[]),
    };
    let sent = parsed.get("keys").and_then(Value::as_array).cloned().unwrap_or_default();
    registry.posted.push((now, sent));
    let keys = match jwks::validate(&parsed, now) {
        Ok(keys) => keys,
        Err(found) => return invalid(registry, &found),
    };
    let taken = kids_of_other_clients(registry, client_id, &keys);
    if !taken.is_empty() {
        return invalid(registry, &taken);
    }
    let keys = keys.into_iter().map(|k| store(registry.storage, k, now)).collect();
    let client = registry.clients.get_mut(client_id).expect("client exists");
    client.set_keys(now, keys);
    let body =
        json!({"keys": client.keys(), "created": timestamp(client.created), "last_updated": timestamp(now)});
    Answer::json(201, body)
}

/// A key as the API stores it, with the [`Storage`] quirks a test switched on.
fn store(storage: Storage, mut key: Key, now: DateTime<Utc>) -> Key {
    if let Some(clamp) = storage.exp_clamp {
        key.exp = key.exp.min((now + clamp).timestamp());
    }
    if storage.n_sign_byte
        && let Ok(n) = URL_SAFE_NO_PAD.decode(&key.n)
        && n.first().is_some_and(|b| *b >= 0x80)
    {
        key.n = URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat());
    }
    key
}

/// "kid ... må være unik innenfor alle ID-porten/Maskinportens kunder".
fn kids_of_other_clients(registry: &Registry, client_id: &str, keys: &[Key]) -> Vec<FieldError> {
    let owned =
        keys.iter().enumerate().filter_map(|(i, k)| Some((i, k, registry.kid_owner(&k.kid, client_id)?)));
    owned
        .map(|(i, k, _)| {
            FieldError::new(format!("keys[{i}].kid"), format!("kid {} is already in use", k.kid))
        })
        .collect()
}

/// DELETE removes every key; 200 with an empty body, as Digdir answers deletes.
fn delete(registry: &mut Registry, client_id: &str) -> Answer {
    let now = registry.now();
    registry.clients.get_mut(client_id).expect("client exists").set_keys(now, Vec::new());
    Answer { status: 200, body: None, challenge: false }
}

fn invalid(registry: &Registry, found: &[FieldError]) -> Answer {
    let description: Vec<&str> = found.iter().map(|e| e.message.as_str()).collect();
    error(registry, 400, "invalid_client_metadata", &description.join("; "), found)
}

fn not_found(registry: &Registry, description: &str) -> Answer {
    error(registry, 404, "not_found", description, &[])
}

fn error(registry: &Registry, status: u16, code: &str, description: &str, found: &[FieldError]) -> Answer {
    Answer::json(status, api_error(status, code, description, found, registry.now()))
}

/// Times as Digdir writes them: "2018-11-28T14:11:35+01:00".
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}
