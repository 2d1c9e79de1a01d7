//! What the self-service API accepts as a client's key set, checked as Digdir documents it.
//!
//! `oidc_api_admin` ("Bruk av asymmetrisk nøkkel"): a JWKS of "inntil 5" keys that replaces
//! the whole set; the members `kty, alg, use, e, n` always; RSA of 2048 bits; a `kid` the
//! customer chooses that "må være unik innenfor alle ID-porten/Maskinportens kunder".
//! `maskinporten_protocol_jwtgrant`: RS256, RS384, RS512. Since 2025-05-22 keys without
//! `use` are refused. A key lives at most one year (`oidc_func_clientreg`): `exp` is set to
//! now + 1 year when absent, and may not be later than that; a key whose `exp` has passed is
//! refused, as Maskinporten refuses it in every grant (`maskinporten_feilsoking`, MP-121
//! "Expired key"). An empty set is refused: the last key is removed with DELETE.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::errors::FieldError;
use super::jws::without_leading_zeros;
use super::model::{Key, one_year_after};

pub const MAX_KEYS: usize = 5;
const ALGS: [&str; 3] = ["RS256", "RS384", "RS512"];
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];
const MIN_BITS: usize = 2048;

/// The keys of a POST body, or every reason to refuse it.
pub fn validate(body: &Value, now: DateTime<Utc>) -> Result<Vec<Key>, Vec<FieldError>> {
    let Some(keys) = body.get("keys").and_then(Value::as_array) else {
        return Err(vec![FieldError::new("keys", "The body must be a JWKS: an object with a keys array")]);
    };
    if keys.is_empty() {
        // okdata-maskinporten-api (`delete_client_key`): "When deleting the last key, we need
        // to DELETE instead of POST-ing an empty `keys` object".
        let message = "A key set must hold at least one key; DELETE removes every key";
        return Err(vec![FieldError::new("keys", message)]);
    }
    if keys.len() > MAX_KEYS {
        let message = format!("A client can have at most {MAX_KEYS} keys, this set has {}", keys.len());
        return Err(vec![FieldError::new("keys", message)]);
    }
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for (i, jwk) in keys.iter().enumerate() {
        match validate_key(jwk, &format!("keys[{i}]"), now) {
            Ok(key) => accepted.push(key),
            Err(mut found) => errors.append(&mut found),
        }
    }
    errors.extend(duplicate_kids(keys));
    if errors.is_empty() { Ok(accepted) } else { Err(errors) }
}

fn validate_key(jwk: &Value, field: &str, now: DateTime<Utc>) -> Result<Key, Vec<FieldError>> {
    let Some(jwk) = jwk.as_object() else {
        return Err(vec![FieldError::new(field, "A key must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let mut fail =
        |member: &str, message: String| errors.push(FieldError::new(format!("{field}.{member}"), message));
    for member in PRIVATE_MEMBERS.iter().filter(|m| jwk.contains_key(**m)) {
        fail(member, format!("Private key member {member} must not be sent; send the public key only"));
    }
    let text = |member: &str| jwk.get(member).and_then(Value::as_str).unwrap_or_default();
    if text("kty") != "RSA" {
        fail("kty", "kty must be RSA".to_owned());
    }
    match jwk.get("use").and_then(Value::as_str) {
        None => fail("use", "use is required (keys without use are refused since 2025-05-22)".to_owned()),
        Some("sig") => {}
        Some(other) => fail("use", format!("use must be sig, not {other}")),
    }
    if !ALGS.contains(&text("alg")) {
        fail("alg", format!("alg must be one of {}", ALGS.join(", ")));
    }
    if let Err(message) = check_kid(text("kid")) {
        fail("kid", message);
    }
    if let Err((member, message)) = check_modulus_and_exponent(jwk) {
        fail(member, message);
    }
    let exp = match expiry(jwk, now) {
        Ok(exp) => exp,
        Err(message) => {
            fail("exp", message);
            0
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let owned = |member: &str| text(member).to_owned();
    Ok(Key {
        kid: owned("kid"),
        alg: owned("alg"),
        use_: Some(owned("use")),
        kty: owned("kty"),
        e: owned("e"),
        n: owned("n"),
        exp,
    })
}

/// `kid` is required and made of `[A-Za-z0-9._-]`.
fn check_kid(kid: &str) -> Result<(), String> {
    if kid.is_empty() {
        return Err("kid is required".to_owned());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    match kid.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(format!("kid may only hold A-Z, a-z, 0-9, '.', '_' and '-', not {c:?}")),
        None => Ok(()),
    }
}

fn check_modulus_and_exponent(jwk: &Map<String, Value>) -> Result<(), (&'static str, String)> {
    let decode = |member: &'static str| {
        let text =
            jwk.get(member).and_then(Value::as_str).ok_or((member, format!("{member} is required")))?;
        URL_SAFE_NO_PAD.decode(text).map_err(|e| (member, format!("{member} is not base64url: {e}")))
    };
    let n = decode("n")?;
    decode("e")?;
    let bits = bit_length(without_leading_zeros(&n));
    if bits < MIN_BITS {
        return Err(("n", format!("RSA keys must have at least {MIN_BITS} bits, this one has {bits}")));
    }
    Ok(())
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        Some(first) => big_endian.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// `exp` as sent (in the future, at most a year ahead), or now + 1 year when absent.
fn expiry(jwk: &Map<String, Value>, now: DateTime<Utc>) -> Result<i64, String> {
    let latest = one_year_after(now).timestamp();
    let Some(exp) = jwk.get("exp") else { return Ok(latest) };
    let exp = exp.as_i64().ok_or("exp must be a number of seconds since the epoch")?;
    if exp <= now.timestamp() {
        return Err(format!("exp {exp} has passed"));
    }
    if exp > latest {
        return Err(format!("exp {exp} is more than one year ahead (latest {latest})"));
    }
    Ok(exp)
}

/// A `kid` may appear once in a set.
fn duplicate_kids(keys: &[Value]) -> Vec<FieldError> {
    let mut seen = std::collections::HashSet::new();
    let kids = keys.iter().enumerate().filter_map(|(i, k)| Some((i, k.get("kid")?.as_str()?)));
    let repeated = kids.filter(|(_, kid)| !seen.insert(*kid));
    repeated
        .map(|(i, kid)| FieldError::new(format!("keys[{i}].kid"), format!("kid {kid} is not unique")))
        .collect()
}
