//! RSA JSON Web Keys in the formats altinn-jwks writes and Altinn's Maskinporten clients read.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::kid::Kid;
use crate::policy::Algorithm;

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("not standard base64 with padding (altinn-jwks `export key --base64` form)")]
    Base64,
    #[error("not a JSON web key: {0}")]
    Json(String),
    #[error("member {0:?} is missing or not base64url")]
    Member(&'static str),
    #[error("{0}")]
    Unsupported(String),
    #[error("the private members do not form a valid RSA key with this modulus")]
    Inconsistent,
}

/// The public half of an RSA signing key: what Maskinporten must know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kid: Kid,
    pub alg: Algorithm,
    /// Modulus, base64url without padding.
    pub n: String,
    /// Public exponent, base64url without padding.
    pub e: String,
}

impl PublicJwk {
    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        let n = URL_SAFE_NO_PAD.decode(&self.n).unwrap_or_default();
        let lead = n.iter().position(|b| *b != 0).unwrap_or(n.len());
        let rest = &n[lead..];
        rest.first().map_or(0, |b| rest.len() * 8 - b.leading_zeros() as usize)
    }

    /// Member order of `{set}.jwks.json`: `kty, kid, alg, use, n, e, exp`.
    pub(crate) fn to_jwks_member(&self, exp: i64) -> serde_json::Value {
        #[derive(Serialize)]
        struct Member<'a> {
            kty: &'a str,
            kid: String,
            alg: &'a str,
            #[serde(rename = "use")]
            use_: &'a str,
            n: &'a str,
            e: &'a str,
            exp: i64,
        }
        let m = Member {
            kty: "RSA",
            kid: self.kid.to_string(),
            alg: self.alg.as_str(),
            use_: "sig",
            n: &self.n,
            e: &self.e,
            exp,
        };
        serde_json::to_value(m).unwrap_or_default()
    }

    /// Compact JSON in altinn-jwks 1.x member order, as `export maskinporten` prints one key.
    pub fn to_altinn_json(&self) -> String {
        format!(
            r#"{{"alg":"{}","e":"{}","key_ops":[],"kid":"{}","kty":"RSA","n":"{}","oth":[],"use":"sig","x5c":[]}}"#,
            self.alg, self.e, self.kid, self.n
        )
    }
}

/// A private RSA JWK. Its secret members are wiped on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateJwk {
    public: PublicJwk,
    d: Zeroizing<String>,
    p: Zeroizing<String>,
    q: Zeroizing<String>,
    dp: Zeroizing<String>,
    dq: Zeroizing<String>,
    qi: Zeroizing<String>,
}

impl fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateJwk")
            .field("kid", &self.public.kid.to_string())
            .field("alg", &self.public.alg)
            .field("bits", &self.public.bits())
            .finish_non_exhaustive()
    }
}

/// The members of a private JWK as written, any order, before checks.
#[derive(Deserialize)]
struct RawPrivate {
    kty: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<Zeroizing<String>>,
    p: Option<Zeroizing<String>>,
    q: Option<Zeroizing<String>>,
    dp: Option<Zeroizing<String>>,
    dq: Option<Zeroizing<String>>,
    qi: Option<Zeroizing<String>>,
}

/// A base64url member, checked.
fn member(value: Option<String>, name: &'static str) -> Result<String, JwkError> {
    let value = value.ok_or(JwkError::Member(name))?;
    let mut bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(&value).map_err(|_| JwkError::Member(name))?);
    if bytes.is_empty() {
        return Err(JwkError::Member(name));
    }
    bytes.zeroize();
    Ok(value)
}

fn secret(value: Option<Zeroizing<String>>, name: &'static str) -> Result<Zeroizing<String>, JwkError> {
    let value = value.ok_or(JwkError::Member(name))?;
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(value.as_bytes()).map_err(|_| JwkError::Member(name))?);
    if bytes.is_empty() {
        return Err(JwkError::Member(name));
    }
    Ok(value)
}

fn unpadded(bytes: &[u8]) -> String {
    let lead = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
    URL_SAFE_NO_PAD.encode(&bytes[lead..])
}

impl PrivateJwk {
    /// Builds a key from big-endian integers (as in PKCS#1), with leading zeros removed.
    pub(crate) fn from_components(kid: Kid, alg: Algorithm, c: &RsaComponents<'_>) -> Self {
        PrivateJwk {
            public: PublicJwk { kid, alg, n: unpadded(c.n), e: unpadded(c.e) },
            d: Zeroizing::new(unpadded(c.d)),
            p: Zeroizing::new(unpadded(c.p)),
            q: Zeroizing::new(unpadded(c.q)),
            dp: Zeroizing::new(unpadded(c.dp)),
            dq: Zeroizing::new(unpadded(c.dq)),
            qi: Zeroizing::new(unpadded(c.qi)),
        }
    }

    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    /// The same key material under another kid and algorithm.
    pub fn relabel(&self, kid: Kid, alg: Algorithm) -> Self {
        let mut key = self.clone();
        key.public.kid = kid;
        key.public.alg = alg;
        key
    }

    pub fn kid(&self) -> &Kid {
        &self.public.kid
    }

    /// Parses compact or pretty JSON of one private RSA JWK, members in any order.
    pub fn from_json(json: &[u8]) -> Result<Self, JwkError> {
        let raw: RawPrivate =
            serde_json::from_slice(json).map_err(|e| JwkError::Json(crate::redact::json_error(&e)))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawPrivate) -> Result<Self, JwkError> {
        if raw.kty.as_deref() != Some("RSA") {
            return Err(JwkError::Unsupported("kty must be \"RSA\"".to_owned()));
        }
        if raw.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(JwkError::Unsupported("use is not \"sig\", which Maskinporten needs".to_owned()));
        }
        let alg = raw.alg.as_deref().ok_or(JwkError::Member("alg"))?;
        // Neither message quotes the member: it may hold anything, even a private value.
        let alg =
            alg.parse().map_err(|_| JwkError::Unsupported("alg is not RS256, RS384 or RS512".to_owned()))?;
        let kid = raw.kid.ok_or(JwkError::Member("kid"))?;
        let kid = kid.parse().map_err(|_| {
            JwkError::Unsupported("kid is not a kid (CLIENT-ENV.YYYY-MM-DD with an optional -N, or altinn-jwks 2.0's CLIENT-ENV.XXXX)".to_owned())
        })?;
        Ok(PrivateJwk {
            public: PublicJwk { kid, alg, n: member(raw.n, "n")?, e: member(raw.e, "e")? },
            d: secret(raw.d, "d")?,
            p: secret(raw.p, "p")?,
            q: secret(raw.q, "q")?,
            dp: secret(raw.dp, "dp")?,
            dq: secret(raw.dq, "dq")?,
            qi: secret(raw.qi, "qi")?,
        })
    }

    /// Compact JSON in altinn-jwks member order:
    /// `alg, d, dp, dq, e, key_ops, kid, kty, n, oth, p, q, qi, use, x5c`.
    pub fn to_json(&self) -> Zeroizing<String> {
        let p = &self.public;
        Zeroizing::new(format!(
            r#"{{"alg":"{}","d":"{}","dp":"{}","dq":"{}","e":"{}","key_ops":[],"kid":"{}","kty":"RSA","n":"{}","oth":[],"p":"{}","q":"{}","qi":"{}","use":"sig","x5c":[]}}"#,
            p.alg,
            self.d.as_str(),
            self.dp.as_str(),
            self.dq.as_str(),
            p.e,
            p.kid,
            p.n,
            self.p.as_str(),
            self.q.as_str(),
            self.qi.as_str()
        ))
    }

    /// Standard base64 with padding of [`Self::to_json`]: the `EncodedJwk` form.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.to_json().as_bytes()))
    }

    /// Reads the `EncodedJwk` form (standard base64 with padding, surrounding white space allowed).
    pub fn from_base64(text: &str) -> Result<Self, JwkError> {
        let json = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| JwkError::Base64)?);
        Self::from_json(&json)
    }

    /// Loads the key into aws-lc-rs, which checks that all members agree (`RSA_check_key`).
    pub(crate) fn to_key_pair(&self) -> Result<aws_lc_rs::rsa::KeyPair, JwkError> {
        let dec = |s: &str| Zeroizing::new(URL_SAFE_NO_PAD.decode(s).unwrap_or_default());
        let (n, e) = (dec(&self.public.n), dec(&self.public.e));
        let (d, p, q) = (dec(&self.d), dec(&self.p), dec(&self.q));
        let (dp, dq, qi) = (dec(&self.dp), dec(&self.dq), dec(&self.qi));
        let components = aws_lc_rs::rsa::KeyPairComponents {
            public_key: aws_lc_rs::rsa::PublicKeyComponents { n: &n[..], e: &e[..] },
            d: &d[..],
            p: &p[..],
            q: &q[..],
            dP: &dp[..],
            dQ: &dq[..],
            qInv: &qi[..],
        };
        aws_lc_rs::rsa::KeyPair::from_components(&components).map_err(|_| JwkError::Inconsistent)
    }
}

/// One member of a private JWK set as written: its `kid` text (which may be anything, so shown
/// only with care), and the key or why it can not be read.
pub struct SetMember {
    pub kid: Option<String>,
    pub key: Result<PrivateJwk, JwkError>,
}

/// Parses a private JWK set `{"keys":[...]}` (altinn-jwks's private key set), keeping each
/// member's failure apart so that one bad key can be reported by its kid.
pub(crate) fn private_set_from_json(json: &[u8]) -> Result<Vec<SetMember>, JwkError> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<RawPrivate>,
    }
    let set: Set = serde_json::from_slice(json).map_err(|e| JwkError::Json(crate::redact::json_error(&e)))?;
    Ok(set
        .keys
        .into_iter()
        .map(|raw| SetMember { kid: raw.kid.clone(), key: PrivateJwk::from_raw(raw) })
        .collect())
}

/// Big-endian RSA integers, borrowed from a PKCS#1 structure.
pub(crate) struct RsaComponents<'a> {
    pub n: &'a [u8],
    pub e: &'a [u8],
    pub d: &'a [u8],
    pub p: &'a [u8],
    pub q: &'a [u8],
    pub dp: &'a [u8],
    pub dq: &'a [u8],
    pub qi: &'a [u8],
}

/// `[...]` in altinn-jwks 1.x order: the bare array that Samarbeidsportalen's key field takes.
pub(crate) fn maskinporten_array<'a>(keys: impl IntoIterator<Item = &'a PublicJwk>) -> String {
    let members: Vec<String> = keys.into_iter().map(PublicJwk::to_altinn_json).collect();
    format!("[{}]", members.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_B64: &str = include_str!("../tests/data/testklient-TEST.2024-07-10.key.b64");
    const VECTOR_PUBLIC: &str = include_str!("../tests/data/testklient-TEST.2024-07-10.maskinporten.json");

    #[test]
    fn altinn_vector_round_trips_byte_for_byte() {
        let key = PrivateJwk::from_base64(VECTOR_B64).unwrap();
        assert_eq!(key.to_base64().as_str(), VECTOR_B64);
        assert_eq!(maskinporten_array([key.public()]), VECTOR_PUBLIC);
        assert_eq!(key.public().bits(), 2048);
    }

    proptest::proptest! {
        /// Any kid the grammar allows and any algorithm: the private JWK survives its base64 and
        /// JSON forms unchanged, its public half is the same key, and no form of the public half
        /// holds a private member.
        #[test]
        fn jwks_round_trip_under_any_kid_and_algorithm(
            client in "[a-z][a-z0-9]{0,20}(-[a-z0-9]{1,8}){0,2}",
            env in proptest::sample::select(vec!["TEST", "PROD"]),
            day in 0u32..3650,
            serial in proptest::option::of(2u32..40),
            alg in proptest::sample::select(vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512]),
        ) {
            let date = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(day.into());
            let suffix = serial.map(|n| format!("-{n}")).unwrap_or_default();
            let kid: Kid = format!("{client}-{env}.{date}{suffix}").parse().unwrap();
            let key = PrivateJwk::from_base64(VECTOR_B64).unwrap().relabel(kid.clone(), alg);
            let again = PrivateJwk::from_base64(&key.to_base64()).unwrap();
            proptest::prop_assert!(again == key);
            proptest::prop_assert!(PrivateJwk::from_json(key.to_json().as_bytes()).unwrap() == key);
            proptest::prop_assert_eq!(again.kid(), &kid);
            proptest::prop_assert_eq!(again.public(), key.public());
            proptest::prop_assert_eq!(again.public().alg, alg);
            let public = maskinporten_array([again.public()]);
            let members: serde_json::Value = serde_json::from_str(&public).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                proptest::prop_assert!(members[0].get(private).is_none(), "{} in {}", private, public);
            }
        }
    }

    #[test]
    fn altinn_vector_is_a_consistent_rsa_key() {
        let key = PrivateJwk::from_base64(VECTOR_B64).unwrap();
        key.to_key_pair().unwrap();
    }

    #[test]
    fn debug_never_shows_secrets() {
        let key = PrivateJwk::from_base64(VECTOR_B64).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("testklient-TEST.2024-07-10"));
        assert!(!shown.contains(key.d.as_str()) && !shown.contains(&key.p[..20]), "{shown}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert_eq!(PrivateJwk::from_base64("not base64!").unwrap_err(), JwkError::Base64);
        let url_safe = VECTOR_B64.replace('+', "-").replace('/', "_");
        if url_safe != VECTOR_B64 {
            assert_eq!(PrivateJwk::from_base64(&url_safe).unwrap_err(), JwkError::Base64);
        }
        let json = STANDARD.decode(VECTOR_B64).unwrap();
        let json = String::from_utf8(json).unwrap();
        let no_d = json.replacen("\"d\":", "\"x\":", 1);
        assert_eq!(PrivateJwk::from_json(no_d.as_bytes()).unwrap_err(), JwkError::Member("d"));
        let ec = json.replace("\"RSA\"", "\"EC\"");
        assert!(matches!(PrivateJwk::from_json(ec.as_bytes()), Err(JwkError::Unsupported(_))));
        assert!(matches!(PrivateJwk::from_json(b"{"), Err(JwkError::Json(_))));
    }

    #[test]
    fn members_holding_a_private_value_are_refused_without_quoting_it() {
        let key = PrivateJwk::from_base64(VECTOR_B64).unwrap();
        let d = key.d.as_str().to_owned();
        let json = key.to_json().as_str().to_owned();
        for member in ["kid", "alg", "use"] {
            let value = serde_json::from_str::<serde_json::Value>(&json).unwrap()[member]
                .as_str()
                .unwrap()
                .to_owned();
            let bad = json.replace(&format!("\"{member}\":\"{value}\""), &format!("\"{member}\":\"{d}\""));
            let err = PrivateJwk::from_json(bad.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(member) && !err.contains(&d[..12]), "{member}: {err}");
        }
        let bad = json.replace("\"key_ops\":[]", &format!("\"key_ops\":[],\"n\":[\"{d}\"]"));
        let err = PrivateJwk::from_json(bad.as_bytes()).unwrap_err().to_string();
        assert!(!err.contains(&d[..12]), "{err}");
    }

    #[test]
    fn a_tampered_private_member_is_inconsistent() {
        let mut key = PrivateJwk::from_base64(VECTOR_B64).unwrap();
        key.d = key.dp.clone();
        assert_eq!(key.to_key_pair().unwrap_err(), JwkError::Inconsistent);
    }
}
