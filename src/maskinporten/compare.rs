//! Whether a key as Digdir's self-service API returns it is the key this tool sent, compared by
//! value rather than as JSON text: Digdir may write the same number another way or keep an `exp`
//! of its own, and a text comparison would fail every upload after its read-back.
//!
//! - `n` and `e` are numbers: base64url with or without padding, with or without the leading
//!   zero byte a two's-complement writer (Java's `BigInteger.toByteArray`) puts before a first
//!   byte of 0x80 and up.
//! - `use` missing is `sig`: keys registered before 2025-05-22, when Digdir made `use`
//!   mandatory, come back without it (okdata-maskinporten-api, commit e12da91).
//! - `exp` is the same within `EXP_TOLERANCE`; a larger difference is the caller's to judge
//!   (the earlier one is when Maskinporten stops accepting the key).

pub(crate) use crate::publish::same_exp;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// A member as text.
fn text<'a>(jwk: &'a Value, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

/// The kid of a JWK, empty when it has none.
pub(crate) fn kid_of(jwk: &Value) -> &str {
    text(jwk, "kid").unwrap_or_default()
}

/// The `exp` of a JWK in epoch seconds.
pub(crate) fn exp_of(jwk: &Value) -> Option<i64> {
    jwk.get("exp").and_then(Value::as_i64)
}

/// A base64url big-endian integer without leading zero bytes; `None` when it does not decode.
fn number(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    let encoded = text(jwk, name)?.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(bytes[first..].to_vec())
}

/// Whether `a` and `b` are the same public key under the same kid, whatever their `exp`.
pub(crate) fn same_key(a: &Value, b: &Value) -> bool {
    let same_text = |name: &str| text(a, name) == text(b, name);
    let usage = |jwk: &Value| text(jwk, "use").unwrap_or("sig").to_owned();
    let same_number = |name: &str| match (number(a, name), number(b, name)) {
        (Some(x), Some(y)) => x == y,
        _ => same_text(name),
    };
    ["kid", "kty", "alg"].iter().all(|m| same_text(m))
        && usage(a) == usage(b)
        && same_number("n")
        && same_number("e")
}

/// Whether `a` and `b` are the same key with the same lifetime.
pub(crate) fn same_registration(a: &Value, b: &Value) -> bool {
    same_key(a, b) && same_exp(exp_of(a), exp_of(b))
}

/// Whether two sets of keys are the same, order aside (a kid appears once in a set).
pub(crate) fn same_set<'a>(
    a: impl IntoIterator<Item = &'a Value>,
    b: impl IntoIterator<Item = &'a Value>,
) -> bool {
    let (a, b): (Vec<&Value>, Vec<&Value>) = (a.into_iter().collect(), b.into_iter().collect());
    a.len() == b.len()
        && a.iter().all(|x| b.iter().any(|y| kid_of(x) == kid_of(y) && same_registration(x, y)))
}

/// `use: "sig"` on a key that has no `use`, and nothing else changed: Digdir refuses a key
/// without `use` since 2025-05-22, and keys registered before come back without it.
pub(crate) fn with_use(jwk: &Value) -> Value {
    let mut completed = jwk.clone();
    if let Some(members) = completed.as_object_mut()
        && members.get("use").is_none_or(Value::is_null)
    {
        members.insert("use".to_owned(), Value::String("sig".to_owned()));
    }
    completed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(n: &str, exp: i64) -> Value {
        json!({"kid": "k", "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB", "exp": exp})
    }

    #[test]
    fn numbers_compare_by_value_and_use_defaults_to_sig() {
        let n = URL_SAFE_NO_PAD.encode([0xc1, 0x02, 0x03]);
        let signed = URL_SAFE_NO_PAD.encode([0x00, 0xc1, 0x02, 0x03]);
        assert!(same_key(&key(&n, 1), &key(&signed, 1)), "a sign byte is the same number");
        assert!(same_key(&key(&n, 1), &key(&format!("{n}="), 9)), "padding and exp aside");
        assert!(!same_key(&key(&n, 1), &key(&URL_SAFE_NO_PAD.encode([0xc1, 0x02, 0x04]), 1)));
        let mut legacy = key(&n, 1);
        legacy.as_object_mut().expect("object").remove("use");
        assert!(same_key(&key(&n, 1), &legacy));
        let mut enc = key(&n, 1);
        enc["use"] = json!("enc");
        assert!(!same_key(&key(&n, 1), &enc));
        assert!(same_key(&key("not base64!", 1), &key("not base64!", 1)), "as text when it does not decode");
    }

    #[test]
    fn exp_is_the_same_within_a_day() {
        let day = crate::publish::EXP_TOLERANCE.num_seconds();
        assert!(same_exp(Some(1_000_000), Some(1_000_000 - day)));
        assert!(!same_exp(Some(1_000_000), Some(1_000_000 - day - 1)));
        assert!(!same_exp(Some(1), None));
        assert!(same_set(&[key("AQAB", 5), key("AQAB", 5)][..1], &[key("AQAB", 6)]));
        assert!(!same_set(&[key("AQAB", 5)], &[key("AQAB", 5 + 2 * day)]));
    }

    #[test]
    fn use_is_completed_and_nothing_else_changes() {
        let legacy = json!({"kid": "old", "kty": "RSA", "n": "AQAB", "e": "AQAB", "x5t": "abc", "exp": 7});
        let completed = with_use(&legacy);
        assert_eq!(completed["use"], "sig");
        let mut back = completed.clone();
        back.as_object_mut().expect("object").remove("use");
        assert_eq!(back, legacy);
        let enc = json!({"kid": "x", "use": "enc"});
        assert_eq!(with_use(&enc), enc, "only a missing use is completed");
    }
}
