//! Registers a key set on its Maskinporten client through the self-service API.
//!
//! The set to register is the keys this tool publishes, each with an explicit `exp` (the key's
//! hard end of life, never more than a year ahead), plus the keys on the client that this tool
//! does not manage, kept as they are (a missing `use` completed). A key whose `exp` has passed
//! is never sent: Maskinporten refuses it in every grant (MP-121) and Digdir may refuse the
//! upload, which would keep the key that replaces it from being registered. Nothing is sent
//! when the client already holds that set, compared by value; a set with no key left is removed
//! with `DELETE`. A `POST` replaces the whole set with no version check, so the set is read
//! again just before writing, and read back after: a key of ours missing from the read-back
//! (someone changed the client in between) is merged with what is there and written once more;
//! if it is still missing, the upload fails and the keys do not count as published. A key that
//! this tool does not manage is judged expired by the run's now ([`PublishedSet::at`]), the
//! clock of every other decision of the run, or by the wall clock, Digdir's; a key of ours is
//! sent while Digdir, by the wall clock, still takes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::api::{ApiError, SelfServiceApi, WallClock};
use super::compare::{exp_of, kid_of, same_exp, same_key, same_set, with_use};
use crate::kid::KeySet;
use crate::publish::{
    CertificateExpiry, EXPIRY_MARGIN, PublishError, PublishedSet, Publisher, Registered, RegisteredKey,
};

/// Maskinporten keeps a key at most a year after it is posted, and refuses an `exp` further
/// ahead (reference/maskinporten.md, "Keys on a client").
const MAX_LIFETIME: TimeDelta = TimeDelta::days(365);

/// Maskinporten accepts at most 5 keys per client.
pub const MAX_KEYS: usize = 5;

/// One key set's client.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub client_id: String,
    pub api: Arc<SelfServiceApi>,
    /// Remove keys this tool does not manage when uploading (`prune_unmanaged`).
    pub prune_unmanaged: bool,
}

/// Publishes key sets to their Maskinporten clients.
pub(crate) struct ApiPublisher {
    bindings: BTreeMap<KeySet, Binding>,
    certificates: Vec<CertificateExpiry>,
    /// Per client and kid, an `exp` that a read-back showed Digdir keeping in place of the one
    /// sent (sent, kept): a set that differs from ours only by that is not uploaded again.
    kept: Mutex<HashMap<(String, String), (i64, i64)>>,
    /// The wall clock (a simulated one in tests), by which Digdir judges `exp`.
    clock: WallClock,
}

impl ApiPublisher {
    pub(crate) fn new(
        bindings: BTreeMap<KeySet, Binding>,
        certificates: Vec<CertificateExpiry>,
        clock: WallClock,
    ) -> Self {
        ApiPublisher { bindings, certificates, kept: Mutex::default(), clock }
    }

    /// `keys` with each `exp` as Digdir kept it when it was last sent, as far as this process
    /// has seen: what a client that holds our set holds.
    fn as_kept(&self, client: &str, keys: &[Value]) -> Vec<Value> {
        let Ok(kept) = self.kept.lock() else { return keys.to_vec() };
        let mut keys = keys.to_vec();
        for key in &mut keys {
            let seen = kept.get(&(client.to_owned(), kid_of(key).to_owned()));
            if let Some((sent, held)) = seen.filter(|(sent, _)| exp_of(key) == Some(*sent)) {
                tracing::debug!(
                    client,
                    kid = kid_of(key),
                    sent,
                    held,
                    "Digdir keeps another exp for this key"
                );
                key["exp"] = (*held).into();
            }
        }
        keys
    }

    /// After a read-back that holds our keys: an `exp` Digdir keeps in place of the one sent is
    /// logged and remembered.
    fn note_exp(&self, set: &PublishedSet, client: &str, registered: &[RegisteredKey], ours: &[Value]) {
        let changed = other_exp(registered, ours);
        if changed.is_empty() {
            return;
        }
        let exp: Vec<String> = changed.iter().map(ToString::to_string).collect();
        tracing::warn!(key_set = %set.key_set, client, ?exp, "Digdir registered another exp than was sent; the earlier is when Maskinporten stops accepting the key, and status reports it");
        self.remember(client, &changed);
    }

    /// Notes the `exp` values Digdir kept in place of those sent.
    fn remember(&self, client: &str, changed: &[OtherExp]) {
        let Ok(mut kept) = self.kept.lock() else { return };
        for c in changed {
            if let (Some(sent), Some(held)) = (c.sent, c.registered) {
                kept.insert((client.to_owned(), c.kid.clone()), (sent, held));
            }
        }
    }

    fn binding(&self, set: &KeySet) -> Result<&Binding, PublishError> {
        self.bindings.get(set).ok_or_else(|| PublishError::NotThroughApi { key_set: set.clone() })
    }
}

/// The two times an upload answers to: the run's now ([`PublishedSet::at`]: `--at`,
/// `JWK_ROTATOR_NOW`, else the clock), by which the run decides everything, and the wall clock,
/// by which Digdir judges an `exp` it is sent (in the future, at most a year ahead). The wall
/// clock is Digdir's as far as an upload is concerned: the admin client's grants are refused
/// unless their `iat` is within 10 seconds of Digdir's clock (`maskinporten_protocol_jwtgrant`),
/// so no upload is made with a wall clock that disagrees.
#[derive(Debug, Clone, Copy)]
struct Times {
    run: DateTime<Utc>,
    wall: DateTime<Utc>,
}

impl Times {
    /// Whether Digdir still takes a key of ours with `exp` (epoch seconds). Judged by the wall
    /// clock alone: a run's now ahead of it (`--at`) must not take a key that still works off
    /// the client; the planner has already retired what the run's now calls expired.
    fn sendable(self, exp: i64) -> bool {
        exp > (self.wall + EXPIRY_MARGIN).timestamp()
    }

    /// Whether a key this tool does not manage has expired: by the run's now, as every other
    /// decision of the run, or by the wall clock, by which Digdir would refuse it.
    fn expired_foreign(self, exp: i64) -> bool {
        exp <= (self.run.max(self.wall) + EXPIRY_MARGIN).timestamp()
    }

    /// The latest `exp` to send: a year after the earlier of the two, which Digdir takes by
    /// either.
    fn latest(self) -> DateTime<Utc> {
        self.run.min(self.wall) + MAX_LIFETIME
    }
}

/// The keys this tool registers: public members, `use` and an explicit `exp`, capped a year
/// ahead ([`Times::latest`]). Keys whose `exp` has passed (or comes within [`EXPIRY_MARGIN`])
/// are left out, and named in the second list.
fn ours(set: &PublishedSet, times: Times) -> (Vec<Value>, Vec<String>) {
    let (mut keys, mut expired) = (Vec::new(), Vec::new());
    for (key, expires) in &set.keys {
        let exp = (*expires).min(times.latest()).timestamp();
        if times.sendable(exp) {
            keys.push(key.to_jwks_member(exp));
        } else {
            expired.push(key.kid.to_string());
        }
    }
    (keys, expired)
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
/// tool does not manage (with `use` completed), unless it expired or `prune` is set. Refused
/// above 5 keys.
fn desired(
    set: &PublishedSet,
    ours: &[Value],
    registered: &[RegisteredKey],
    prune: bool,
    times: Times,
    client_id: &str,
) -> Result<Desired, PublishError> {
    let managed: Vec<String> = set.managed.iter().map(ToString::to_string).collect();
    let mut out = Desired { keys: ours.to_vec(), kept: Vec::new(), dropped: Vec::new() };
    for key in registered.iter().filter(|k| !managed.contains(&k.kid)) {
        if prune || key.exp.is_some_and(|exp| times.expired_foreign(exp.timestamp())) {
            out.dropped.push(key.kid.clone());
        } else {
            out.kept.push(key.kid.clone());
            out.keys.push(with_use(&key.jwk));
        }
    }
    if out.keys.len() > MAX_KEYS {
        return Err(PublishError::TooManyKeys {
            key_set: set.key_set.clone(),
            client_id: client_id.to_owned(),
            max: MAX_KEYS,
            ours: ours.iter().map(|k| kid_of(k).to_owned()).collect(),
            unmanaged: out.kept.into(),
        });
    }
    Ok(out)
}

fn jwks(registered: &[RegisteredKey]) -> impl Iterator<Item = &Value> {
    registered.iter().map(|k| &k.jwk)
}

/// Our keys that `registered` lacks, or holds as another key under the kid.
fn missing<'a>(registered: &[RegisteredKey], ours: &'a [Value]) -> Vec<&'a str> {
    ours.iter()
        .filter(|ours| !registered.iter().any(|k| k.kid == kid_of(ours) && same_key(&k.jwk, ours)))
        .map(kid_of)
        .collect()
}

/// A key of ours that Digdir holds with another `exp` than the one sent.
#[derive(Debug, PartialEq, Eq)]
struct OtherExp {
    kid: String,
    sent: Option<i64>,
    registered: Option<i64>,
}

impl std::fmt::Display for OtherExp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let date = |exp: Option<i64>| {
            exp.and_then(|s| DateTime::from_timestamp(s, 0))
                .map_or_else(|| "none".to_owned(), |t| t.to_rfc3339())
        };
        write!(f, "{} (sent {}, registered {})", self.kid, date(self.sent), date(self.registered))
    }
}

/// Our keys that `registered` holds with an `exp` other than the one sent.
fn other_exp(registered: &[RegisteredKey], ours: &[Value]) -> Vec<OtherExp> {
    ours.iter()
        .filter_map(|sent| {
            let theirs = registered.iter().find(|k| k.kid == kid_of(sent))?;
            let (sent_exp, their_exp) = (exp_of(sent), exp_of(&theirs.jwk));
            (!same_exp(sent_exp, their_exp)).then(|| OtherExp {
                kid: kid_of(sent).to_owned(),
                sent: sent_exp,
                registered: their_exp,
            })
        })
        .collect()
}

fn api_error(set: &KeySet, e: ApiError) -> PublishError {
    PublishError::Api { key_set: set.clone(), cause: e.to_string() }
}

/// Words in a refusal that say a kid is taken.
const TAKEN: [&str; 8] = ["in use", "unique", "unik", "already", "exists", "duplicate", "taken", "i bruk"];

/// A refused upload, told as a kid taken by another client when Digdir's words name one of ours
/// and say so. A kid must be unique across all of Digdir's customers (`oidc_api_admin`: "må
/// være unik innenfor alle ID-porten/Maskinportens kunder"), and this tool's kids are
/// `{client}-{ENV}.{date}`, which another organisation with a client of the same name makes too.
fn refused(set: &PublishedSet, e: ApiError) -> PublishError {
    let ApiError::Refused { status: 400 | 409, messages, .. } = &e else { return api_error(&set.key_set, e) };
    let lower = messages.to_lowercase();
    let taken: Vec<String> =
        set.managed.iter().map(ToString::to_string).filter(|kid| messages.contains(kid.as_str())).collect();
    if taken.is_empty() || !TAKEN.iter().any(|w| lower.contains(w)) {
        return api_error(&set.key_set, e);
    }
    PublishError::KidTaken { key_set: set.key_set.clone(), cause: e.to_string(), kids: taken }
}

/// Replaces the client's keys with `want`; with `DELETE` when no key is left (an empty `POST` is
/// refused).
async fn write(
    api: &SelfServiceApi,
    client: &str,
    set: &PublishedSet,
    want: &Desired,
) -> Result<(), PublishError> {
    if !want.dropped.is_empty() {
        tracing::info!(key_set = %set.key_set, client, dropped = ?want.dropped, "keys not managed by jwk-rotator are removed (expired, or prune_unmanaged)");
    }
    let written = if want.keys.is_empty() {
        tracing::info!(key_set = %set.key_set, client, "no key is left to register; the client's keys are removed with DELETE");
        api.delete_all(client).await
    } else {
        api.replace(client, &want.keys).await
    };
    written.map_err(|e| refused(set, e))
}

#[async_trait]
impl Publisher for ApiPublisher {
    fn describe(&self) -> String {
        "Digdir's self-service API".to_owned()
    }

    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError> {
        let binding = self.binding(&set.key_set)?;
        let (api, client) = (&binding.api, binding.client_id.as_str());
        let times = Times { run: set.at, wall: (self.clock)() };
        let (ours, expired) = ours(set, times);
        if !expired.is_empty() {
            tracing::warn!(key_set = %set.key_set, client, ?expired, "keys whose exp has passed are not sent: Maskinporten no longer accepts them (MP-121)");
        }
        let read = || async { api.get(client).await.map_err(|e| api_error(&set.key_set, e)) };
        let mut registered = read().await?;
        let mut lacking = Vec::new();
        // A few rounds at most: a later one merges a change someone made while we wrote.
        for round in 0..3 {
            let want = desired(set, &ours, &registered, binding.prune_unmanaged, times, client)?;
            if same_set(jwks(&registered), &self.as_kept(client, &want.keys)) {
                return Ok(());
            }
            if round == 0 {
                // Read again just before writing: POST replaces the set without a version
                // check, so a change made in the portal since the first read would be lost.
                let again = read().await?;
                if !same_set(jwks(&again), jwks(&registered)) {
                    tracing::info!(key_set = %set.key_set, client, "the client's keys changed since the first read; merging");
                    registered = again;
                    continue;
                }
            }
            write(api, client, set, &want).await?;
            registered = read().await?;
            lacking = missing(&registered, &ours);
            if lacking.is_empty() {
                self.note_exp(set, client, &registered, &ours);
                tracing::info!(key_set = %set.key_set, client, keys = want.keys.len(), kept = ?want.kept, "registered on Maskinporten");
                return Ok(());
            }
            tracing::warn!(key_set = %set.key_set, client, lacking = ?lacking, "the read-back lacks keys that were sent; merging and writing again");
        }
        Err(PublishError::NotHeld {
            key_set: set.key_set.clone(),
            client_id: client.to_owned(),
            lacking: lacking.into_iter().map(str::to_owned).collect(),
        })
    }

    /// `publish` is `Ok` only once a read-back holds every key sent.
    fn registers(&self, set: &KeySet) -> bool {
        self.bindings.contains_key(set)
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
    use crate::jwk::PublicJwk;
    use crate::policy::Algorithm;

    fn key(kid: &str, exp: Option<i64>) -> RegisteredKey {
        let mut jwk = serde_json::json!({"kid": kid, "kty": "RSA", "use": "sig", "alg": "RS256", "n": "x", "e": "AQAB"});
        if let Some(exp) = exp {
            jwk["exp"] = exp.into();
        }
        RegisteredKey { kid: kid.to_owned(), exp: exp.and_then(|s| DateTime::from_timestamp(s, 0)), jwk }
    }

    fn set(managed: &[&str], at: i64) -> PublishedSet {
        PublishedSet {
            key_set: "a-TEST".parse().expect("set"),
            keys: Vec::new(),
            managed: managed.iter().map(|k| k.parse().expect("kid")).collect(),
            at: DateTime::from_timestamp(at, 0).expect("at"),
        }
    }

    #[test]
    fn unmanaged_keys_are_kept_expired_ones_dropped_and_more_than_five_refused_by_name() {
        let ours: Vec<Value> = ["a-TEST.2026-11-01", "a-TEST.2026-08-01"]
            .iter()
            .map(|k| key(k, Some(1_900_000_000)).jwk)
            .collect();
        let mut legacy = key("legacy-1", Some(1_900_000_000));
        legacy.jwk.as_object_mut().expect("object").remove("use");
        let registered = vec![
            key("a-TEST.2026-05-01", Some(1_900_000_000)), // ours, retired: managed, left out
            legacy,
            key("old", Some(1_700_000_000)),       // expired
            key("soon", Some(1_800_000_000 + 60)), // expires within the margin
        ];
        let s = set(&["a-TEST.2026-11-01", "a-TEST.2026-08-01", "a-TEST.2026-05-01"], 1_800_000_000);
        let times = Times { run: s.at, wall: s.at };
        let want = desired(&s, &ours, &registered, false, times, "cid").expect("desired");
        assert_eq!(want.kept, ["legacy-1"]);
        assert_eq!(want.dropped, ["old", "soon"]);
        assert_eq!(
            want.keys.iter().map(kid_of).collect::<Vec<_>>(),
            ["a-TEST.2026-11-01", "a-TEST.2026-08-01", "legacy-1"]
        );
        assert_eq!(want.keys[2]["use"], "sig", "a legacy key is sent with use");
        let pruned = desired(&s, &ours, &registered, true, times, "cid").expect("pruned");
        assert_eq!(pruned.keys.len(), 2);

        let crowd: Vec<RegisteredKey> =
            (1..=4).map(|i| key(&format!("theirs-{i}"), Some(1_900_000_000))).collect();
        let err = desired(&s, &ours, &crowd, false, times, "cid").expect_err("six keys");
        let PublishError::TooManyKeys { client_id, max, ours: sent, unmanaged, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((client_id.as_str(), *max, sent.len()), ("cid", 5, 2));
        assert_eq!(**unmanaged, ["theirs-1", "theirs-2", "theirs-3", "theirs-4"]);
        let err = err.to_string();
        for name in [
            "6 keys",
            "allows 5",
            "a-TEST.2026-11-01",
            "theirs-1",
            "theirs-4",
            "prune_unmanaged",
            "Nothing was sent",
        ] {
            assert!(err.contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn an_expired_key_is_never_sent_and_exp_is_capped_from_the_earlier_clock() {
        let public = |kid: &str| PublicJwk {
            kid: kid.parse().expect("kid"),
            alg: Algorithm::RS256,
            n: "AQAB".into(),
            e: "AQAB".into(),
        };
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("at");
        let mut s = set(&[], at.timestamp());
        s.keys = vec![
            (public("a-TEST.2025-01-01"), at - TimeDelta::days(3)),
            (public("a-TEST.2025-02-01"), at + TimeDelta::minutes(4)),
            (public("a-TEST.2025-03-01"), at + TimeDelta::days(10)),
            (public("a-TEST.2026-11-01"), at + TimeDelta::days(400)),
        ];
        let (keys, expired) = ours(&s, Times { run: at, wall: at });
        assert_eq!(expired, ["a-TEST.2025-01-01", "a-TEST.2025-02-01"]);
        let sent: Vec<&str> = keys.iter().map(kid_of).collect();
        assert_eq!(sent, ["a-TEST.2025-03-01", "a-TEST.2026-11-01"]);
        assert_eq!(exp_of(&keys[1]), Some((at + MAX_LIFETIME).timestamp()));
        // The run's now (`--at`) 20 days ahead of the wall clock: a key of ours that Digdir
        // still takes is sent (the planner decides what the run's now retires), and Digdir, on
        // the wall clock, takes an exp a year from its own time at most.
        let ahead = Times { run: at + TimeDelta::days(20), wall: at };
        let (keys, expired) = ours(&s, ahead);
        assert_eq!(expired.len(), 2);
        assert_eq!(exp_of(&keys[1]), Some((at + MAX_LIFETIME).timestamp()));
        assert!(ahead.expired_foreign((at + TimeDelta::days(10)).timestamp()), "theirs: the run's now");
        // 20 days behind: the cap follows the run, and the wall clock still drops what Digdir
        // would refuse.
        let behind = Times { run: at - TimeDelta::days(20), wall: at };
        let (keys, expired) = ours(&s, behind);
        assert_eq!(expired.len(), 2);
        assert_eq!(exp_of(&keys[1]), Some((at - TimeDelta::days(20) + MAX_LIFETIME).timestamp()));
    }

    #[test]
    fn the_same_keys_in_another_order_need_no_upload_and_another_exp_does() {
        let registered = vec![key("b", Some(200_000)), key("a", Some(100_000))];
        let same = |keys: &[Value]| same_set(jwks(&registered), keys);
        assert!(same(&[key("a", Some(100_000)).jwk, key("b", Some(200_000)).jwk]));
        assert!(!same(&[key("a", Some(100_000)).jwk, key("b", Some(400_000)).jwk]));
        assert!(!same(&[key("a", Some(100_000)).jwk]));
        assert_eq!(missing(&registered, &[key("a", Some(1)).jwk, key("c", Some(1)).jwk]), ["c"]);
        assert_eq!(missing(&registered, &[key("b", Some(5)).jwk]), Vec::<&str>::new(), "exp aside");
        let changed = other_exp(&registered, &[key("b", Some(400_000)).jwk, key("a", Some(100_000)).jwk]);
        let shown: Vec<String> = changed.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["b (sent 1970-01-05T15:06:40+00:00, registered 1970-01-03T07:33:20+00:00)"]);

        // Once seen, the exp Digdir keeps for a sent one is what a client that holds our set has.
        let publisher = ApiPublisher::new(BTreeMap::new(), Vec::new(), Arc::new(Utc::now));
        let ours = [key("b", Some(400_000)).jwk, key("a", Some(100_000)).jwk];
        assert!(!same_set(jwks(&registered), &publisher.as_kept("cid", &ours)));
        publisher.remember("cid", &changed);
        assert!(same_set(jwks(&registered), &publisher.as_kept("cid", &ours)));
        assert!(!same_set(jwks(&registered), &publisher.as_kept("other", &ours)), "per client");
        let later = [key("b", Some(500_000)).jwk, key("a", Some(100_000)).jwk];
        assert!(!same_set(jwks(&registered), &publisher.as_kept("cid", &later)), "for that exp only");
    }

    #[test]
    fn a_taken_kid_of_ours_is_told_as_such_and_other_refusals_as_digdir_said() {
        let s = set(&["a-TEST.2026-11-01"], 1_800_000_000);
        let refusal = |messages: &str| ApiError::Refused {
            action: "replacing the keys of client cid".to_owned(),
            status: 400,
            messages: messages.to_owned(),
            correlation_id: Some("c-1".to_owned()),
        };
        let told = refused(&s, refusal("keys[0].kid: kid a-TEST.2026-11-01 is already in use"));
        assert!(
            matches!(&told, PublishError::KidTaken { kids, .. } if kids == &["a-TEST.2026-11-01"]),
            "{told:?}"
        );
        let told = told.to_string();
        for part in [
            "is already in use",
            "c-1",
            "another client holds a-TEST.2026-11-01",
            "rotate --force a-TEST",
            "retire a-TEST KID --force",
            "organisation number",
        ] {
            assert!(told.contains(part), "{part}: {told}");
        }
        let other = refused(&s, refusal("keys[0].n: too short"));
        assert!(
            matches!(&other, PublishError::Api { cause, .. } if cause.contains("too short")),
            "{other:?}"
        );
        assert!(!other.to_string().contains("another client holds"), "{other}");
        let foreign = refused(&s, refusal("kid legacy-1 is already in use"));
        assert!(matches!(foreign, PublishError::Api { .. }), "only our kids: {foreign}");
    }
}
