//! Digdir's error answers, as the fake sends them.
//!
//! The token endpoint answers `{"error", "error_description", "error_uri"}`
//! (`maskinporten_feilsoking`, "Format"): an OAuth2 code, Digdir's text with a trace id, and
//! for documented MP codes a link to the code's page. Maskinporten was seen answering
//! `{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication
//! failed. Expired key. (trace_id: 3566…)","error_uri":"https://maskinporten.no/errors/MP-121"}`
//! and, in TEST, `"error_uri":"https://test.maskinporten.no/errors/MP-200"`: the fake builds
//! the link from its issuer.
//!
//! The self-service API answers `{"status","timestamp","correlation_id","errors":
//! [{"errorMessage","fieldIdentifier"}],"error","error_description"}` with a fresh
//! correlation id.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// MP-100 (`maskinporten_feilsoking`, "Invalid grant"): no such client; a typo in `iss`.
pub const CLIENT_AUTHENTICATION_FAILED: &str = "Invalid assertion. Client authentication failed.";
/// MP-110: `aud` is not the issuer.
pub const INVALID_AUD: &str = "Invalid assertion. Client authentication failed. Invalid JWT claim aud";
/// MP-120: the `x5c` certificate is not trusted or not valid now.
pub const INVALID_CERTIFICATE: &str =
    "Invalid assertion. Client authentication failed. The JWT is signed with an invalid certificate.";
/// MP-121: the key named by `kid` has passed its `exp`.
pub const EXPIRED_KEY: &str = "Invalid assertion. Client authentication failed. Expired key.";
/// No MP code is documented; the text is the one Maskinporten answers for a `kid` it does
/// not know for the client, as quoted in public troubleshooting notes and client tests.
pub const UNKNOWN_KID: &str =
    "Invalid assertion. Client authentication failed. Unknown key identifier (kid) for client.";
/// MP-122: the certificate belongs to someone else than the client.
pub const WRONG_CERTIFICATE_OWNER: &str =
    "Invalid JWT. Invalid organization number for client. Does not match certificate orgno";
/// MP-123: `x5c` is not an array of base64 DER certificates.
pub const INVALID_X5C: &str = "Invalid JWT header x5c";
/// MP-124: the signature does not verify with the key.
pub const INVALID_SIGNATURE: &str = "Invalid JWT signature";
/// MP-130: `exp` has passed, or `iat` is too far behind Digdir's clock.
pub const JWT_EXPIRED: &str = "JWT is expired";
/// MP-012: the `jti` was used before.
pub const GRANT_USED_BEFORE: &str = "Grant is used before";
/// MP-011 (`invalid_request`): the grant is malformed, misses a claim, has one Digdir does
/// not know (`maskinporten_protocol_jwtgrant`: "Adding claims not present in the following
/// documentation will result in a response of 400 Bad request with error description
/// containing Invalid assertion"), or a value out of range.
pub const INVALID_PARAMETER: &str = "Invalid assertion. Invalid parameter value";
/// No MP code is documented (`maskinporten_feilsoking`, "Issue time is after now"): `iat`
/// is more than 10 s ahead of Digdir's clock.
pub const ISSUE_TIME_AFTER_NOW: &str = "Issue time is after now";
/// MP-200 (`invalid_scope`), followed by the scopes: "Token request contains invalid scopes
/// for client, altinn:serviceowners/read" as Maskinporten answers.
pub const INVALID_SCOPES: &str = "Token request contains invalid scopes for client, ";

/// Why the token endpoint refused a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The OAuth2 error code: `invalid_grant`, `invalid_request`, `invalid_scope`,
    /// `unsupported_grant_type`.
    pub error: &'static str,
    /// The MP code, when Digdir documents one for this failure.
    pub code: Option<&'static str>,
    /// Digdir's text.
    pub text: String,
    /// What exactly the fake found wrong, for the grant log.
    pub reason: String,
}

impl Refusal {
    pub fn new(
        error: &'static str,
        code: Option<&'static str>,
        text: &str,
        reason: impl Into<String>,
    ) -> Refusal {
        Refusal { error, code, text: text.to_owned(), reason: reason.into() }
    }

    pub fn grant(code: Option<&'static str>, text: &str, reason: impl Into<String>) -> Refusal {
        Refusal::new("invalid_grant", code, text, reason)
    }

    /// MP-011: a malformed or incomplete grant.
    pub fn parameter(reason: impl Into<String>) -> Refusal {
        Refusal::new("invalid_request", Some("MP-011"), INVALID_PARAMETER, reason)
    }

    /// The body Maskinporten sends, with a fresh trace id and `error_uri` under `issuer`.
    pub fn body(&self, issuer: &str) -> Value {
        let description = format!("{} (trace_id: {})", self.text, super::random_hex(16));
        let mut body = json!({"error": self.error, "error_description": description});
        if let Some(code) = self.code {
            body["error_uri"] = Value::from(format!("{issuer}errors/{code}"));
        }
        body
    }
}

/// The OAuth2 shape for a token-endpoint answer that is not about the grant (outage,
/// throttling, injected failures).
pub fn token_endpoint_error(error: &str, description: &str) -> Value {
    json!({"error": error, "error_description": format!("{description} (trace_id: {})", super::random_hex(16))})
}

/// One validation failure in an API answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub message: String,
    /// The member the message is about, such as `keys[0].use`.
    pub field: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { message: message.into(), field: field.into() }
    }
}

/// The self-service API's error body.
pub fn api_error(
    status: u16,
    error: &str,
    description: &str,
    errors: &[FieldError],
    now: DateTime<Utc>,
) -> Value {
    let errors: Vec<Value> =
        errors.iter().map(|e| json!({"errorMessage": e.message, "fieldIdentifier": e.field})).collect();
    json!({
        "status": status,
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "correlation_id": super::correlation_id(),
        "errors": errors,
        "error": error,
        "error_description": description,
    })
}
