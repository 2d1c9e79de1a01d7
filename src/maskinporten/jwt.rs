//! JWT grants for Maskinporten's token endpoint: compact JWS (RFC 7515) signed with RSA PKCS#1
//! v1.5, and the claims Digdir asks for (docs.digdir.no `maskinporten_protocol_jwtgrant`): `aud`
//! the issuer, `iss` the client id, `scope`, `iat`, `exp` at most 120 s later, a unique `jti`,
//! and no other claim ("Adding claims not present ... will result in ... Invalid assertion").

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RsaEncoding};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::admin::AdminCredential;
use crate::jwk::PrivateJwk;
use crate::policy::Algorithm;

/// Seconds from `iat` to `exp`: Digdir accepts `exp - iat <= 120`.
pub(crate) const GRANT_LIFETIME_SECONDS: i64 = 120;

/// Why no JWT was made. Never holds key material.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the private key {kid} cannot sign: {reason}")]
    Key { kid: String, reason: String },
    #[error("signing the JWT with {alg} failed: the key may be damaged; check it or rotate it")]
    Sign { alg: Algorithm },
    #[error("the JWT header or claims could not be written as JSON: {0}")]
    Encode(String),
}

/// A compact JWS over `claims`: base64url (no padding) header, claims and signature. `header`
/// gets `alg`; the signature is RSA PKCS#1 v1.5 with the SHA-2 hash `alg` names.
pub fn sign(
    mut header: Map<String, Value>,
    claims: &Value,
    alg: Algorithm,
    key: &KeyPair,
) -> Result<String, JwtError> {
    header.insert("alg".to_owned(), Value::String(alg.as_str().to_owned()));
    let signing_input = format!("{}.{}", encode(&Value::Object(header))?, encode(claims)?);
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(padding(alg), &SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .map_err(|_| JwtError::Sign { alg })?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

fn encode(part: &Value) -> Result<String, JwtError> {
    let json = serde_json::to_vec(part).map_err(|e| JwtError::Encode(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn padding(alg: Algorithm) -> &'static dyn RsaEncoding {
    match alg {
        Algorithm::RS256 => &RSA_PKCS1_SHA256,
        Algorithm::RS384 => &RSA_PKCS1_SHA384,
        Algorithm::RS512 => &RSA_PKCS1_SHA512,
    }
}

/// What a grant asks for, and when it is made.
#[derive(Debug, Clone, Copy)]
pub struct GrantClaims<'a> {
    /// The client id.
    pub iss: &'a str,
    /// Maskinporten's issuer, with its trailing slash (`https://maskinporten.no/`).
    pub aud: &'a str,
    /// Scopes, separated by spaces.
    pub scope: &'a str,
    /// The time the grant is made (`iat`); Digdir accepts 10 s off its own clock.
    pub now: DateTime<Utc>,
}

impl GrantClaims<'_> {
    /// The claims with a fresh `jti`: a grant is single use, so every call makes a new one.
    fn to_json(self) -> Value {
        let iat = self.now.timestamp();
        json!({
            "aud": self.aud,
            "iss": self.iss,
            "scope": self.scope,
            "iat": iat,
            "exp": iat + GRANT_LIFETIME_SECONDS,
            "jti": fresh_jti(),
        })
    }
}

/// 128 random bits as 32 hex digits.
fn fresh_jti() -> String {
    rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// A grant signed with a client's own key: header `alg` the key's algorithm and `kid` its kid,
/// which must be registered on the client.
pub fn client_grant(key: &PrivateJwk, claims: &GrantClaims) -> Result<String, JwtError> {
    let pair =
        key.to_key_pair().map_err(|e| JwtError::Key { kid: key.kid().to_string(), reason: e.to_string() })?;
    let mut header = Map::new();
    header.insert("kid".to_owned(), Value::String(key.kid().to_string()));
    sign(header, &claims.to_json(), key.public().alg, &pair)
}

/// How the admin client's grants name the business certificate they are signed with
/// (docs.digdir.no `maskinporten_protocol_jwtgrant`, the header): "x5c: The business
/// certificate/eseal (virksomhetssertifikat) of the organization. Full certificate chain", or
/// "kid: Key identifier to a previously registered certificate / asymmetric key bound to the
/// client"; "Either 'kid' or 'x5c' must be present. 'kid' can and must be used by clients
/// having a pre-registered certificate / asymmetric key."
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum AdminAuth {
    /// The chain in `x5c`: an admin client bound to the organisation by its certificate.
    #[default]
    X5c,
    /// `kid` alone: an admin client on which Digdir registered the certificate under this kid.
    Kid(String),
}

/// A grant signed with the organisation's business certificate, header `alg` RS256 and, as
/// `auth` says, `x5c` (the chain, leaf first, each certificate standard base64, not base64url,
/// DER: RFC 7515 4.1.6) or `kid`.
pub(crate) fn admin_grant(
    cred: &AdminCredential,
    auth: &AdminAuth,
    claims: &GrantClaims,
) -> Result<String, JwtError> {
    let mut header = Map::new();
    match auth {
        AdminAuth::X5c => {
            let x5c = cred.chain().iter().map(|c| Value::String(STANDARD.encode(c.as_ref()))).collect();
            header.insert("x5c".to_owned(), Value::Array(x5c));
        }
        AdminAuth::Kid(kid) => {
            header.insert("kid".to_owned(), Value::String(kid.clone()));
        }
    }
    sign(header, &claims.to_json(), Algorithm::RS256, cred.key())
}

/// Test support: a JWT's header and claims, after its signature was checked independently of
/// the signing code.
#[cfg(test)]
pub(crate) mod check {
    use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

    use super::*;

    fn verification(alg: &str) -> &'static signature::RsaParameters {
        match alg {
            "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
            "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
            "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
            other => panic!("unexpected alg {other}"),
        }
    }

    fn split(jwt: &str) -> (Value, Value, Vec<u8>, String) {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "compact JWS: {jwt}");
        let json = |p: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        (json(parts[0]), json(parts[1]), signature, format!("{}.{}", parts[0], parts[1]))
    }

    /// Checks `jwt` against the JWK's public `n` and `e`.
    pub(crate) fn with_jwk(jwt: &str, key: &PrivateJwk) -> (Value, Value) {
        let (header, claims, sig, input) = split(jwt);
        let n = URL_SAFE_NO_PAD.decode(&key.public().n).unwrap();
        let e = URL_SAFE_NO_PAD.decode(&key.public().e).unwrap();
        let alg = verification(header["alg"].as_str().unwrap());
        RsaPublicKeyComponents { n: &n, e: &e }.verify(alg, input.as_bytes(), &sig).expect("signature");
        (header, claims)
    }

    /// Checks `jwt` against the public key of the first `x5c` certificate.
    pub(crate) fn with_x5c(jwt: &str) -> (Value, Value) {
        let (header, claims, sig, input) = split(jwt);
        let leaf = STANDARD.decode(header["x5c"][0].as_str().unwrap()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        let public = cert.public_key().subject_public_key.data.to_vec();
        UnparsedPublicKey::new(verification(header["alg"].as_str().unwrap()), public)
            .verify(input.as_bytes(), &sig)
            .expect("signature");
        (header, claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FIXTURE_KEYS, at};

    fn fixture_key(alg: Algorithm) -> PrivateJwk {
        let key = PrivateJwk::from_base64(FIXTURE_KEYS.lines().next().unwrap()).unwrap();
        key.relabel("testklient-TEST.2024-07-10".parse().unwrap(), alg)
    }

    fn claims() -> GrantClaims<'static> {
        GrantClaims {
            iss: "3f1c-client",
            aud: "https://test.maskinporten.no/",
            scope: "altinn:serviceowner idporten:dcr.read",
            now: at("2025-03-01T12:00:00Z"),
        }
    }

    #[test]
    fn a_client_grant_carries_kid_and_the_keys_alg_and_exactly_the_six_claims() {
        for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
            let key = fixture_key(alg);
            let jwt = client_grant(&key, &claims()).unwrap();
            let (header, claims) = check::with_jwk(&jwt, &key);
            assert_eq!(header, json!({"alg": alg.as_str(), "kid": "testklient-TEST.2024-07-10"}));
            let iat = at("2025-03-01T12:00:00Z").timestamp();
            let jti = claims["jti"].as_str().unwrap().to_owned();
            assert_eq!(jti.len(), 32);
            assert!(jti.chars().all(|c| c.is_ascii_hexdigit()), "{jti}");
            assert_eq!(
                claims,
                json!({
                    "aud": "https://test.maskinporten.no/",
                    "iss": "3f1c-client",
                    "scope": "altinn:serviceowner idporten:dcr.read",
                    "iat": iat,
                    "exp": iat + 120,
                    "jti": jti,
                })
            );
        }
    }

    #[test]
    fn every_grant_has_a_new_jti() {
        let key = fixture_key(Algorithm::RS256);
        let a = check::with_jwk(&client_grant(&key, &claims()).unwrap(), &key).1;
        let b = check::with_jwk(&client_grant(&key, &claims()).unwrap(), &key).1;
        assert_ne!(a["jti"], b["jti"]);
    }

    #[test]
    fn an_admin_grant_carries_the_chain_in_x5c_as_standard_base64() {
        let der = include_bytes!("../../tests/data/admin/business-aes.p12");
        let cred = AdminCredential::from_pkcs12(der, "fixture-password").unwrap();
        let jwt = admin_grant(&cred, &AdminAuth::X5c, &claims()).unwrap();
        let (header, claims) = check::with_x5c(&jwt);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header.as_object().unwrap().len(), 2, "alg and x5c only: {header}");
        let x5c: Vec<String> = cred.chain().iter().map(|c| STANDARD.encode(c.as_ref())).collect();
        assert_eq!(header["x5c"], json!(x5c));
        assert_eq!(x5c.len(), 2);
        assert_eq!(claims["iss"], "3f1c-client");
        assert_eq!(claims.as_object().unwrap().len(), 6);
    }

    #[test]
    fn an_admin_grant_in_kid_mode_carries_the_kid_and_no_chain() {
        let der = include_bytes!("../../tests/data/admin/business-aes.p12");
        let cred = AdminCredential::from_pkcs12(der, "fixture-password").unwrap();
        let jwt = admin_grant(&cred, &AdminAuth::Kid("org-cert-1".to_owned()), &claims()).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "kid": "org-cert-1"}));
        // The same key signs as in x5c mode: the certificate's.
        let x5c = admin_grant(&cred, &AdminAuth::X5c, &claims()).unwrap();
        let (x5c_header, _) = check::with_x5c(&x5c);
        let leaf = STANDARD.decode(x5c_header["x5c"][0].as_str().unwrap()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        let public = cert.public_key().subject_public_key.data.to_vec();
        let input = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            public,
        )
        .verify(input.as_bytes(), &signature)
        .expect("signed with the certificate's key");
    }

    #[test]
    fn a_jwk_that_does_not_load_is_named_by_kid_without_its_members() {
        let key = fixture_key(Algorithm::RS256);
        let mut json: Value = serde_json::from_str(&key.to_json()).unwrap();
        let d = json["d"].as_str().unwrap().to_owned();
        json["d"] = Value::String(d[..40].to_owned());
        let broken = PrivateJwk::from_json(json.to_string().as_bytes()).unwrap();
        let e = client_grant(&broken, &claims()).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains("testklient-TEST.2024-07-10"), "{text}");
        assert!(!text.contains(&d[..40]), "{text}");
    }
}
