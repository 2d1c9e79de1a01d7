//! A compact JWS as the token endpoint reads it (RFC 7515): the header, the claims, and an
//! RSA PKCS#1 v1.5 signature checked with aws-lc-rs against a key's `n` and `e`.

use aws_lc_rs::signature::{self, RsaParameters, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The algorithms Maskinporten takes (`maskinporten_protocol_jwtgrant`: "RS256, RS384 and
/// RS512 are supported"), with 2048 bits as the smallest key.
pub fn rsa_parameters(alg: &str) -> Option<&'static RsaParameters> {
    match alg {
        "RS256" => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
        _ => None,
    }
}

/// A parsed, not yet verified, compact JWS.
pub struct Jws {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jws {
    /// Splits and decodes `header.claims.signature`; the error says which part is bad.
    pub fn parse(compact: &str) -> Result<Jws, String> {
        let parts: Vec<&str> = compact.trim().split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err(format!("a compact JWS has 3 parts, this one has {}", parts.len()));
        };
        Ok(Jws {
            header: json_object(header, "header")?,
            claims: json_object(claims, "claims")?,
            signing_input: format!("{header}.{claims}"),
            signature: URL_SAFE_NO_PAD.decode(signature).map_err(|e| format!("signature: {e}"))?,
        })
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }

    /// Whether the signature verifies with the RSA key (`n`, `e` big-endian) under `alg`.
    pub fn verifies_with(&self, alg: &str, n: &[u8], e: &[u8]) -> bool {
        let Some(params) = rsa_parameters(alg) else { return false };
        let key = RsaPublicKeyComponents { n: without_leading_zeros(n), e: without_leading_zeros(e) };
        key.verify(params, self.signing_input.as_bytes(), &self.signature).is_ok()
    }
}

fn json_object(part: &str, name: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| format!("{name}: {e}"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{name} is not a JSON object")),
        Err(e) => Err(format!("{name}: {e}")),
    }
}

/// Big-endian integers as aws-lc-rs takes them: without leading zero bytes.
pub fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}
