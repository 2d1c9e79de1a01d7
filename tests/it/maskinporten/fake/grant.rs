//! The token endpoint's judgement of a JWT grant, shared by `POST /token` and
//! `grant_in_process` (`maskinporten_protocol_jwtgrant`, `maskinporten_protocol_token`;
//! the refusals are those of `maskinporten_feilsoking`, see [`super::errors`]).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls::pki_types::CertificateDer;
use serde_json::{Value, json};

use super::certs::BusinessCa;
use super::errors::{self, Refusal};
use super::jws::{Jws, rsa_parameters};
use super::model::{GrantOutcome, GrantRecord, Registry, TOKEN_LIFETIME};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// "Maskinporten will only accept grants where iat is less than 10 seconds ahead/after our
/// clock" (`maskinporten_protocol_jwtgrant`).
const MAX_SKEW: i64 = 10;
/// "Maximum 120 seconds allowed. (exp - iat <= 120)".
const MAX_LIFETIME: i64 = 120;
/// The claims `maskinporten_protocol_jwtgrant` documents; `authorization_details` is the
/// system-user claim of `maskinporten_func_systembruker`. Any other claim is refused.
const KNOWN_CLAIMS: [&str; 11] = [
    "aud",
    "iss",
    "iat",
    "exp",
    "jti",
    "scope",
    "resource",
    "pid",
    "consumer_org",
    "iss_onbehalfof",
    "authorization_details",
];

/// Judges `assertion` at the registry's clock, issues a token when it passes, and logs the
/// grant. `Ok` is the token response body.
pub fn judge(
    registry: &mut Registry,
    ca: &BusinessCa,
    issuer: &str,
    assertion: &str,
) -> Result<Value, Refusal> {
    let mut record = GrantRecord {
        client_id: None,
        kid: None,
        certificate: None,
        outcome: GrantOutcome::Granted { scope: String::new() },
    };
    let result = check(registry, ca, issuer, assertion, &mut record);
    record.outcome = match &result {
        Ok(body) => GrantOutcome::Granted { scope: body["scope"].as_str().unwrap_or_default().to_owned() },
        Err(refusal) => GrantOutcome::Refused {
            error: refusal.error.to_owned(),
            code: refusal.code.map(str::to_owned),
            reason: refusal.reason.clone(),
        },
    };
    registry.grants.push(record);
    result
}

fn check(
    registry: &mut Registry,
    ca: &BusinessCa,
    issuer: &str,
    assertion: &str,
    record: &mut GrantRecord,
) -> Result<Value, Refusal> {
    let jws = Jws::parse(assertion).map_err(Refusal::parameter)?;
    record.client_id = jws.claim_str("iss").map(str::to_owned);
    record.kid = jws.header_str("kid").map(str::to_owned);
    let alg = supported_alg(&jws)?;
    check_claim_names(&jws)?;
    let client_id = known_client(registry, &jws)?;
    check_audience(&jws, issuer)?;
    check_times(&jws, registry.now().timestamp())?;
    let jti =
        jws.claim_str("jti").filter(|j| !j.is_empty()).ok_or_else(|| Refusal::parameter("jti is missing"))?;
    let scopes = requested_scopes(&jws)?;
    let (n, e) = signing_key(registry, ca, &jws, &client_id, record)?;
    if !jws.verifies_with(alg, &n, &e) {
        return Err(Refusal::grant(
            Some("MP-124"),
            errors::INVALID_SIGNATURE,
            format!("the {alg} signature does not verify"),
        ));
    }
    if !registry.used_jtis.insert(jti.to_owned()) {
        return Err(Refusal::grant(
            Some("MP-012"),
            errors::GRANT_USED_BEFORE,
            format!("jti {jti} was used before"),
        ));
    }
    check_scopes(registry, &client_id, &scopes)?;
    Ok(token_response(registry, &client_id, scopes))
}

fn supported_alg(jws: &Jws) -> Result<&str, Refusal> {
    match jws.header_str("alg") {
        Some(alg) if rsa_parameters(alg).is_some() => Ok(alg),
        other => Err(Refusal::parameter(format!("alg {other:?} is not RS256, RS384 or RS512"))),
    }
}

fn check_claim_names(jws: &Jws) -> Result<(), Refusal> {
    match jws.claims.keys().find(|name| !KNOWN_CLAIMS.contains(&name.as_str())) {
        Some(name) => Err(Refusal::parameter(format!("unknown claim {name}"))),
        None => Ok(()),
    }
}

/// MP-100: `iss` must name a client.
fn known_client(registry: &Registry, jws: &Jws) -> Result<String, Refusal> {
    let iss = jws.claim_str("iss").ok_or_else(|| Refusal::parameter("iss is missing"))?;
    if !registry.clients.contains_key(iss) {
        return Err(Refusal::grant(
            Some("MP-100"),
            errors::CLIENT_AUTHENTICATION_FAILED,
            format!("no client {iss}"),
        ));
    }
    Ok(iss.to_owned())
}

/// MP-110: "The 'aud' field of the JWT must be set equal to the issuer identifier of
/// maskinporten and must only contain a single value" (`maskinporten_protocol_token`).
fn check_audience(jws: &Jws, issuer: &str) -> Result<(), Refusal> {
    let aud = match jws.claims.get("aud") {
        Some(Value::String(one)) => Some(one.as_str()),
        Some(Value::Array(values)) if values.len() == 1 => values[0].as_str(),
        _ => None,
    };
    if aud == Some(issuer) {
        return Ok(());
    }
    let reason = format!("aud {:?} is not {issuer}", jws.claims.get("aud"));
    Err(Refusal::grant(Some("MP-110"), errors::INVALID_AUD, reason))
}

/// `iat` within 10 s of the clock either way, `exp - iat <= 120`, `exp` not passed.
fn check_times(jws: &Jws, now: i64) -> Result<(), Refusal> {
    let iat = jws.claim_i64("iat").ok_or_else(|| Refusal::parameter("iat is missing or not a number"))?;
    let exp = jws.claim_i64("exp").ok_or_else(|| Refusal::parameter("exp is missing or not a number"))?;
    if iat > now + MAX_SKEW {
        let reason = format!("iat is {} s ahead of the clock (at most {MAX_SKEW})", iat - now);
        return Err(Refusal::grant(None, errors::ISSUE_TIME_AFTER_NOW, reason));
    }
    if iat < now - MAX_SKEW {
        let reason = format!("iat is {} s behind the clock (at most {MAX_SKEW})", now - iat);
        return Err(Refusal::grant(Some("MP-130"), errors::JWT_EXPIRED, reason));
    }
    if exp - iat > MAX_LIFETIME {
        return Err(Refusal::parameter(format!("exp - iat is {} s (at most {MAX_LIFETIME})", exp - iat)));
    }
    if exp <= now {
        return Err(Refusal::grant(
            Some("MP-130"),
            errors::JWT_EXPIRED,
            format!("exp passed {} s ago", now - exp),
        ));
    }
    Ok(())
}

fn requested_scopes(jws: &Jws) -> Result<Vec<String>, Refusal> {
    let scope = jws.claim_str("scope").ok_or_else(|| Refusal::parameter("scope is missing"))?;
    let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
    if scopes.is_empty() {
        return Err(Refusal::parameter("scope is empty"));
    }
    Ok(scopes)
}

/// The RSA key (`n`, `e`) the grant must be signed with: the registered key named by `kid`,
/// or the leaf of a trusted `x5c` chain ("Either 'kid' or 'x5c' must be present").
fn signing_key(
    registry: &Registry,
    ca: &BusinessCa,
    jws: &Jws,
    client_id: &str,
    record: &mut GrantRecord,
) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    match (jws.header_str("kid"), jws.header.get("x5c")) {
        (Some(kid), _) => registered_key(registry, client_id, kid),
        (None, Some(x5c)) => certificate_key(registry, ca, client_id, x5c, record),
        (None, None) => Err(Refusal::parameter("the header has neither kid nor x5c")),
    }
}

/// The key named by `kid` among those the token endpoint knows (the set as it was
/// `propagation` ago); MP-121 when its `exp` has passed.
fn registered_key(registry: &Registry, client_id: &str, kid: &str) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    let known = registry.propagated_keys(client_id).iter().find(|k| k.kid == kid);
    let key = known.ok_or_else(|| {
        Refusal::grant(
            None,
            errors::UNKNOWN_KID,
            format!("kid {kid} is not (yet) known for client {client_id}"),
        )
    })?;
    if key.exp <= registry.now().timestamp() {
        return Err(Refusal::grant(
            Some("MP-121"),
            errors::EXPIRED_KEY,
            format!("key {kid} expired at {}", key.exp),
        ));
    }
    let decode = |member: &str| URL_SAFE_NO_PAD.decode(member).unwrap_or_default();
    Ok((decode(&key.n), decode(&key.e)))
}

/// The leaf key of an `x5c` chain that the business CA vouches for at the fake's clock, when
/// the leaf is the certificate the client is bound to. A client with registered keys must
/// use `kid` instead ("'kid' can and must be used by clients having a pre-registered ...
/// asymmetric key").
fn certificate_key(
    registry: &Registry,
    ca: &BusinessCa,
    client_id: &str,
    x5c: &Value,
    record: &mut GrantRecord,
) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    let chain = decode_x5c(x5c)?;
    let leaf = ca
        .verify(&chain, registry.now())
        .map_err(|e| Refusal::grant(Some("MP-120"), errors::INVALID_CERTIFICATE, e))?;
    record.certificate = Some(leaf.subject_cn.clone());
    let client = &registry.clients[client_id];
    if client.certificate_subject.as_deref() != Some(leaf.subject_cn.as_str()) {
        let reason = format!("certificate {} is not the one client {client_id} is bound to", leaf.subject_cn);
        return Err(Refusal::grant(Some("MP-122"), errors::WRONG_CERTIFICATE_OWNER, reason));
    }
    if !client.keys().is_empty() {
        let reason = format!("client {client_id} has registered keys and must sign with kid");
        return Err(Refusal::grant(Some("MP-100"), errors::CLIENT_AUTHENTICATION_FAILED, reason));
    }
    Ok((leaf.n, leaf.e))
}

/// MP-123: `x5c` must be an array of base64 DER certificates, leaf first.
fn decode_x5c(x5c: &Value) -> Result<Vec<CertificateDer<'static>>, Refusal> {
    let invalid = |reason: &str| Refusal::grant(Some("MP-123"), errors::INVALID_X5C, reason);
    let items = x5c.as_array().ok_or_else(|| invalid("x5c is not an array"))?;
    let decoded = items.iter().map(|item| {
        let text = item.as_str().ok_or_else(|| invalid("an x5c entry is not a string"))?;
        let der = STANDARD.decode(text).map_err(|_| invalid("an x5c entry is not base64"))?;
        Ok(CertificateDer::from(der))
    });
    decoded.collect()
}

/// MP-200 (`invalid_scope`): every scope must be registered on the client.
fn check_scopes(registry: &Registry, client_id: &str, scopes: &[String]) -> Result<(), Refusal> {
    let allowed = &registry.clients[client_id].scopes;
    let invalid: Vec<&str> = scopes.iter().filter(|s| !allowed.contains(*s)).map(String::as_str).collect();
    if invalid.is_empty() {
        return Ok(());
    }
    let text = format!("{}{}", errors::INVALID_SCOPES, invalid.join(" "));
    Err(Refusal::new(
        "invalid_scope",
        Some("MP-200"),
        &text,
        format!("client {client_id} may not ask for {}", invalid.join(" ")),
    ))
}

/// `maskinporten_protocol_token`, "Response".
fn token_response(registry: &mut Registry, client_id: &str, scopes: Vec<String>) -> Value {
    let scope = scopes.join(" ");
    let token = registry.issue_token(client_id, scopes.into_iter().collect::<BTreeSet<_>>());
    json!({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "scope": scope})
}
