//! Registers a key set on its Maskinporten client through the self-service API.
//!
//! The set to register is the keys this tool publishes, each with an explicit `exp` (the key's
//! hard end of life, never more than a year ahead), plus the keys on the client that this tool
//! does not manage, kept as they are. Nothing is sent when the client already holds that set. A
//! `POST` replaces the whole set with no version check, so the set is read again just before
//! writing, and read back after: a key of ours missing from the read-back (someone changed the
//! client in between) is merged with what is there and written once more; if it is still
//! missing, the upload fails and the keys do not count as published.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::api::{SelfServiceApi, WallClock};
use crate::kid::KeySet;
use crate::publish::{CertificateExpiry, PublishError, PublishedSet, Publisher, Registered, RegisteredKey};

/// Maskinporten keeps a key at most a year after it is posted, and refuses an `exp` further
/// ahead (reference/maskinporten.md, "Keys on a client").
const MAX_LIFETIME: TimeDelta = TimeDelta::days(365);

/// Maskinporten accepts at most 5 keys per client.
pub const MAX_KEYS: usize = 5;

/// One key set's client.
#[derive(Debug, Clone)]
pub struct Binding {
    pub client_id: String,
    pub api: Arc<SelfServiceApi>,
    /// Remove keys this tool does not manage when uploading (`prune_unmanaged`).
    pub prune_unmanaged: bool,
}

/// Publishes key sets to their Maskinporten clients.
pub struct ApiPublisher {
    bindings: BTreeMap<KeySet, Binding>,
    certificates: Vec<CertificateExpiry>,
    clock: WallClock,
}

impl ApiPublisher {
    pub fn new(
        bindings: BTreeMap<KeySet, Binding>,
        certificates: Vec<CertificateExpiry>,
        clock: WallClock,
    ) -> Self {
        ApiPublisher { bindings, certificates, clock }
    }

    fn binding(&self, set: &KeySet) -> Result<&Binding, PublishError> {
        self.bindings.get(set).ok_or_else(|| {
            PublishError(format!("{set} is not published through Digdir's self-service API; this is a bug"))
        })
    }
}

/// A key as this tool registers it: public members, `use` and an explicit `exp`.
fn member(set: &PublishedSet, now: DateTime<Utc>) -> Vec<Value> {
    set.keys
        .iter()
        .map(|(key, expires)| key.to_jwks_member((*expires).min(now + MAX_LIFETIME).timestamp()))
        .collect()
}

fn kid_of(jwk: &Value) -> &str {
    jwk.get("kid").and_then(Value::as_str).unwrap_or_default()
}

/// The members that decide whether two registrations of a kid are the same key with the
/// same lifetime.
fn fingerprint(jwk: &Value) -> [Option<String>; 7] {
    ["kid", "kty", "alg", "use", "n", "e", "exp"].map(|k| jwk.get(k).map(Value::to_string))
}

/// What to register: ours, then the unmanaged keys that are kept.
#[derive(Debug)]
struct Desired {
    keys: Vec<Value>,
    /// Kids of keys kept that this tool does not manage.
    kept: Vec<String>,
    /// Kids of keys this tool does not manage that are left out (expired, or pruned).
    dropped: Vec<String>,
}

/// The set to register over `registered`: `ours`, plus every registered key whose kid this
/// tool does not manage, unless it expired or `prune` is set. Refused above 5 keys.
fn desired(
    set: &PublishedSet,
    ours: &[Value],
    registered: &[RegisteredKey],
    prune: bool,
    now: DateTime<Utc>,
    client_id: &str,
) -> Result<Desired, PublishError> {
    let managed: Vec<String> = set.managed.iter().map(ToString::to_string).collect();
    let mut out = Desired { keys: ours.to_vec(), kept: Vec::new(), dropped: Vec::new() };
    for key in registered.iter().filter(|k| !managed.contains(&k.kid)) {
        if prune || key.exp.is_some_and(|exp| exp <= now) {
            out.dropped.push(key.kid.clone());
        } else {
            out.kept.push(key.kid.clone());
            out.keys.push(key.jwk.clone());
        }
    }
    if out.keys.len() > MAX_KEYS {
        let ours: Vec<&str> = ours.iter().map(kid_of).collect();
        return Err(PublishError(format!(
            "{} would have {} keys on Maskinporten client {client_id}, and Maskinporten allows {MAX_KEYS}: this tool's {} and {} that it does not manage ({}). Nothing was sent. Remove keys that are no longer used in Samarbeidsportalen, or set prune_unmanaged = true for this client to remove the keys it does not manage",
            set.key_set,
            out.keys.len(),
            ours.join(", "),
            out.kept.len(),
            out.kept.join(", ")
        )));
    }
    Ok(out)
}

/// The fingerprints of `keys`, sorted: two sets are the same when these are.
fn fingerprints<'a>(keys: impl Iterator<Item = &'a Value>) -> Vec<[Option<String>; 7]> {
    let mut prints: Vec<_> = keys.map(fingerprint).collect();
    prints.sort();
    prints
}

/// Whether `registered` holds exactly `keys` (order aside).
fn holds_exactly(registered: &[RegisteredKey], keys: &[Value]) -> bool {
    fingerprints(registered.iter().map(|k| &k.jwk)) == fingerprints(keys.iter())
}

/// Our keys that `registered` lacks, or holds with another `exp` or key.
fn missing<'a>(registered: &[RegisteredKey], ours: &'a [Value]) -> Vec<&'a str> {
    ours.iter()
        .filter(|ours| {
            let kid = kid_of(ours);
            !registered.iter().any(|k| k.kid == kid && fingerprint(&k.jwk) == fingerprint(ours))
        })
        .map(kid_of)
        .collect()
}

fn api_error(set: &KeySet, e: super::api::ApiError) -> PublishError {
    PublishError(format!("{set}: {e}"))
}

#[async_trait]
impl Publisher for ApiPublisher {
    fn describe(&self) -> String {
        "Digdir's self-service API".to_owned()
    }

    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError> {
        let binding = self.binding(&set.key_set)?;
        let (api, client) = (&binding.api, binding.client_id.as_str());
        let ours = member(set, (self.clock)());
        let read = || async { api.get(client).await.map_err(|e| api_error(&set.key_set, e)) };
        let mut registered = read().await?;
        let mut lacking = Vec::new();
        // A few rounds at most: a later one merges a change someone made while we wrote.
        for round in 0..3 {
            let now = (self.clock)();
            let want = desired(set, &ours, &registered, binding.prune_unmanaged, now, client)?;
            if holds_exactly(&registered, &want.keys) {
                return Ok(());
            }
            if round == 0 {
                // Read again just before writing: POST replaces the set without a version
                // check, so a change made in the portal since the first read would be lost.
                let again = read().await?;
                let before = registered.iter().map(|k| &k.jwk);
                if fingerprints(again.iter().map(|k| &k.jwk)) != fingerprints(before) {
                    tracing::info!(key_set = %set.key_set, client, "the client's keys changed since the first read; merging");
                    registered = again;
                    continue;
                }
            }
            if !want.dropped.is_empty() {
                tracing::info!(key_set = %set.key_set, client, dropped = ?want.dropped, "keys not managed by jwk-rotator are removed (expired, or prune_unmanaged)");
            }
            api.replace(client, &want.keys).await.map_err(|e| api_error(&set.key_set, e))?;
            registered = read().await?;
            lacking = missing(&registered, &ours);
            if lacking.is_empty() {
                tracing::info!(key_set = %set.key_set, client, keys = want.keys.len(), kept = ?want.kept, "registered on Maskinporten");
                return Ok(());
            }
            tracing::warn!(key_set = %set.key_set, client, lacking = ?lacking, "the read-back lacks keys that were sent; merging and writing again");
        }
        Err(PublishError(format!(
            "{}: Maskinporten client {client} does not hold {} with the exp that was sent, after repeated uploads and read-backs: someone is changing the client's keys at the same time (Samarbeidsportalen or another tool). The keys do not count as published; find out who, then run again",
            set.key_set,
            lacking.join(", ")
        )))
    }

    async fn registered(&self, set: &KeySet) -> Option<Result<Registered, PublishError>> {
        let binding = self.bindings.get(set)?;
        let keys = binding.api.get(&binding.client_id).await.map_err(|e| api_error(set, e));
        Some(keys.map(|keys| Registered { client_id: binding.client_id.clone(), keys }))
    }

    fn certificates(&self) -> Vec<CertificateExpiry> {
        self.certificates.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, exp: Option<i64>) -> RegisteredKey {
        let mut jwk = serde_json::json!({"kid": kid, "kty": "RSA", "use": "sig", "alg": "RS256", "n": "x", "e": "AQAB"});
        if let Some(exp) = exp {
            jwk["exp"] = exp.into();
        }
        RegisteredKey { kid: kid.to_owned(), exp: exp.and_then(|s| DateTime::from_timestamp(s, 0)), jwk }
    }

    fn set(managed: &[&str]) -> PublishedSet {
        PublishedSet {
            key_set: "a-TEST".parse().expect("set"),
            keys: Vec::new(),
            managed: managed.iter().map(|k| k.parse().expect("kid")).collect(),
        }
    }

    #[test]
    fn unmanaged_keys_are_kept_expired_ones_dropped_and_more_than_five_refused_by_name() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("now");
        let ours: Vec<Value> = ["a-TEST.2026-11-01", "a-TEST.2026-08-01"]
            .iter()
            .map(|k| key(k, Some(1_900_000_000)).jwk)
            .collect();
        let registered = vec![
            key("a-TEST.2026-05-01", Some(1_900_000_000)), // ours, retired: managed, left out
            key("legacy-1", Some(1_900_000_000)),
            key("old", Some(1_700_000_000)), // expired
        ];
        let s = set(&["a-TEST.2026-11-01", "a-TEST.2026-08-01", "a-TEST.2026-05-01"]);
        let want = desired(&s, &ours, &registered, false, now, "cid").expect("desired");
        assert_eq!(want.kept, ["legacy-1"]);
        assert_eq!(want.dropped, ["old"]);
        assert_eq!(
            want.keys.iter().map(kid_of).collect::<Vec<_>>(),
            ["a-TEST.2026-11-01", "a-TEST.2026-08-01", "legacy-1"]
        );
        let pruned = desired(&s, &ours, &registered, true, now, "cid").expect("pruned");
        assert_eq!(pruned.keys.len(), 2);

        let crowd: Vec<RegisteredKey> =
            (1..=4).map(|i| key(&format!("theirs-{i}"), Some(1_900_000_000))).collect();
        let err = desired(&s, &ours, &crowd, false, now, "cid").expect_err("six keys");
        for name in [
            "6 keys",
            "allows 5",
            "a-TEST.2026-11-01",
            "theirs-1",
            "theirs-4",
            "prune_unmanaged",
            "Nothing was sent",
        ] {
            assert!(err.0.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn the_same_keys_in_another_order_need_no_upload_and_another_exp_does() {
        let registered = vec![key("b", Some(2)), key("a", Some(1))];
        assert!(holds_exactly(&registered, &[key("a", Some(1)).jwk, key("b", Some(2)).jwk]));
        assert!(!holds_exactly(&registered, &[key("a", Some(1)).jwk, key("b", Some(3)).jwk]));
        assert!(!holds_exactly(&registered, &[key("a", Some(1)).jwk]));
        assert_eq!(missing(&registered, &[key("a", Some(1)).jwk, key("c", Some(1)).jwk]), ["c"]);
        assert_eq!(missing(&registered, &[key("b", Some(5)).jwk]), ["b"]);
    }
}
