//! Findings: what `status` and the worker's alerts report about a key set at `now`. This file
//! holds the types and the evaluation; each rule is a method of `Context` in the file of its
//! subject: `keys` (the current and pending keys), `clocks`, `consumer` (the consumer secret),
//! `registered` (Maskinporten's registered keys, proofs) and `certificate` (the admin client's).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::kid::{KeySet, Kid};
use crate::lifecycle;
use crate::moment::Moment;
use crate::policy::Policy;
use crate::policy::Target;
use crate::proof::Attempt;
use crate::publish::{CertificateExpiry, PublishError, Registered};
use crate::record::KeyRecord;
use crate::store::{Consumer, Consumers, Loaded, StoreError};

mod certificate;
mod clocks;
mod consumer;
#[cfg(test)]
mod fixtures;
mod keys;
mod registered;
mod restart;

pub use crate::severity::Severity;

/// Which rule found something; a stable name for alert routing and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    Expiring,
    Expired,
    NoCurrentKey,
    PendingNotPromoted,
    RotationOverdue,
    TooManyPublished,
    StoreError,
    /// More than one key is current: applications may sign with either.
    SeveralCurrent,
    /// The current key is not in the published set: Maskinporten may not know it.
    CurrentNotPublished,
    /// A key was made after `now`: a clock ran ahead, or this one is behind.
    FutureDated,
    /// The store holds a later time than `now` on a key that is not itself future-dated, or a
    /// write later than this host's real clock: the clock went back.
    ClockBehind,
    /// The consumer secret that applications read does not hold the current key.
    ConsumerNotCurrent,
    /// A key this tool published is missing from the Maskinporten client, or one it retired is
    /// registered again: someone changed the client's keys in Samarbeidsportalen.
    RegistrationDrift,
    /// Maskinporten's `exp` for a key differs from this tool's.
    RegisteredExpiry,
    /// A key on the Maskinporten client that this tool does not manage.
    UnmanagedKey,
    /// Digdir's self-service API could not be read.
    MaskinportenUnreachable,
    /// `promotion = "verified"`: the pending key is due, and the token grant with it fails.
    VerificationFailing,
    /// The admin client's business certificate expires soon or has expired.
    AdminCertificate,
    /// The applications in `[[client.restart]]` were not restarted for the current key.
    RestartPending,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Expiring => "expiring",
            FindingKind::Expired => "expired",
            FindingKind::NoCurrentKey => "no-current-key",
            FindingKind::PendingNotPromoted => "pending-not-promoted",
            FindingKind::RotationOverdue => "rotation-overdue",
            FindingKind::TooManyPublished => "too-many-published",
            FindingKind::StoreError => "store-error",
            FindingKind::SeveralCurrent => "several-current",
            FindingKind::CurrentNotPublished => "current-not-published",
            FindingKind::FutureDated => "future-dated",
            FindingKind::ClockBehind => "clock-behind",
            FindingKind::ConsumerNotCurrent => "consumer-not-current",
            FindingKind::RegistrationDrift => "registration-drift",
            FindingKind::RegisteredExpiry => "registered-expiry",
            FindingKind::UnmanagedKey => "unmanaged-key",
            FindingKind::MaskinportenUnreachable => "maskinporten-unreachable",
            FindingKind::VerificationFailing => "verification-failing",
            FindingKind::AdminCertificate => "admin-certificate",
            FindingKind::RestartPending => "restart-pending",
        }
    }
}

/// One thing an operator should know, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub key_set: KeySet,
    pub severity: Severity,
    pub kind: FindingKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<Kid>,
    /// Whole days until the key expires (negative once expired), where that matters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    pub message: String,
}

/// The worst severity among `findings`; OK when there are none.
pub fn worst(findings: &[Finding]) -> Severity {
    findings.iter().map(|f| f.severity).max().unwrap_or(Severity::Ok)
}

/// One key set's records out of a store load, or the error that hides them: the store's own
/// (unreachable: every key set gets it) or the key set's. A key set that the load left out is
/// an error too, never an empty key set.
pub(crate) fn records_of<'a>(
    loaded: &'a Result<Loaded, StoreError>,
    set: &KeySet,
) -> Result<&'a [KeyRecord], StoreError> {
    match loaded {
        Ok(loaded) => crate::store::records_in(loaded, set),
        Err(e) => Err(e.clone()),
    }
}

/// What was observed besides the store: each is empty when it does not apply.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// For each key set with a consumer secret, the kid that secret holds.
    pub consumers: Consumers,
    /// For each key set published through Digdir's API, what the client has registered.
    pub registered: BTreeMap<KeySet, Result<Registered, PublishError>>,
    /// The last token grant tried with each key set's pending key.
    pub proofs: BTreeMap<KeySet, Attempt>,
    /// The admin clients' business certificates.
    pub certificates: Vec<CertificateExpiry>,
    /// The key sets whose client names applications to restart after a promotion.
    pub restarts: std::collections::BTreeSet<KeySet>,
}

/// Evaluates every target against one store load. This is what `status` prints and what the
/// worker alerts on; a store that could not be read at all is UNKNOWN for every key set.
pub fn evaluate_all(
    targets: &[Target],
    loaded: &Result<Loaded, StoreError>,
    observed: &Observed,
    at: impl Into<Moment>,
) -> Vec<Finding> {
    let at = at.into();
    let now = at.now;
    let mut found: Vec<Finding> = targets
        .iter()
        .flat_map(|t| {
            let records = records_of(loaded, &t.key_set);
            let Ok(records) = records else {
                return evaluate(&t.key_set, records.as_deref(), &t.policy, at);
            };
            let registered = observed.registered.get(&t.key_set);
            let ctx = Context {
                set: &t.key_set,
                records,
                policy: &t.policy,
                now,
                wall: at.wall,
                registered: registered.and_then(|r| r.as_ref().ok()),
                consumer: observed.consumers.get(&t.key_set),
            };
            let mut found = ctx.all();
            if let Some(holds) = ctx.consumer {
                found.extend(ctx.consumer_not_current(holds));
            }
            match registered {
                Some(Ok(registered)) => found.extend(ctx.drift(registered)),
                Some(Err(e)) => found.push(ctx.unreachable(e)),
                None => {}
            }
            found.extend(ctx.verification_failing(observed.proofs.get(&t.key_set)));
            if observed.restarts.contains(&t.key_set) {
                found.extend(ctx.restart_pending());
            }
            found
        })
        .collect();
    for cert in &observed.certificates {
        found.extend(certificate::finding(cert, targets, now));
    }
    found
}

/// When Maskinporten stops accepting `r`: the kid date + `max_age`, or the `exp` the client has
/// registered for it when that is earlier (Digdir's is the one that counts).
pub fn expires(r: &KeyRecord, policy: &Policy, registered: Option<&Registered>) -> DateTime<Utc> {
    let ours = r.expires(policy);
    let theirs = registered.and_then(|reg| reg.get(&r.kid.to_string())).and_then(|k| k.exp);
    theirs.map_or(ours, |t| t.min(ours))
}

/// Evaluates one key set at `at`. `records` is what the store gave, or its error.
pub fn evaluate(
    set: &KeySet,
    records: Result<&[KeyRecord], &StoreError>,
    policy: &Policy,
    at: impl Into<Moment>,
) -> Vec<Finding> {
    let Moment { now, wall } = at.into();
    let records = match records {
        Ok(records) => records,
        Err(e) => {
            let msg = format!("{set}: the store could not be read: {e}");
            return vec![Finding::new(set, Severity::Unknown, FindingKind::StoreError, None, None, msg)];
        }
    };
    Context { set, records, policy, now, wall, registered: None, consumer: None }.all()
}

impl Finding {
    fn new(
        set: &KeySet,
        severity: Severity,
        kind: FindingKind,
        kid: Option<&Kid>,
        days_left: Option<i64>,
        message: String,
    ) -> Finding {
        Finding { key_set: set.clone(), severity, kind, kid: kid.cloned(), days_left, message }
    }
}

/// One key set at one moment: each finding rule is a method.
struct Context<'a> {
    set: &'a KeySet,
    records: &'a [KeyRecord],
    policy: &'a Policy,
    now: DateTime<Utc>,
    /// The host's real clock, against the real times of the store's writes.
    wall: DateTime<Utc>,
    /// What Maskinporten has registered, when the key set is published through its API.
    registered: Option<&'a Registered>,
    /// What the consumer secret holds, for a store and key set with one.
    consumer: Option<&'a Consumer>,
}

impl Context<'_> {
    /// The rules that need only the records.
    fn all(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        out.extend(self.current_key());
        out.extend(self.rotation_overdue());
        out.extend(self.pending_not_promoted());
        out.extend(self.too_many_published());
        out.extend(self.several_current());
        out.extend(self.current_not_published());
        out.extend(self.future_dated());
        out.extend(self.clock_behind());
        out.extend(self.clock_went_back());
        out
    }

    /// When Maskinporten stops accepting `r`: the kid date + `max_age`, or the `exp` the client
    /// has registered for it when that is earlier (Digdir's is the one that counts).
    fn expires(&self, r: &KeyRecord) -> DateTime<Utc> {
        expires(r, self.policy, self.registered)
    }

    fn finding(
        &self,
        severity: Severity,
        kind: FindingKind,
        kid: Option<&Kid>,
        days: Option<i64>,
        msg: String,
    ) -> Finding {
        Finding::new(self.set, severity, kind, kid, days, msg)
    }

    fn current(&self) -> Option<&KeyRecord> {
        lifecycle::current(self.records, self.now)
    }

    fn pending(&self) -> Option<&KeyRecord> {
        lifecycle::pending(self.records, self.now)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{SET, at, record, registered};
    use super::*;
    use crate::record::Stage;
    use crate::store::Consumer;

    #[test]
    fn a_store_that_can_not_be_read_is_unknown_for_every_key_set() {
        let targets = crate::testing::targets(&[SET, "b-TEST"], &Policy::default());
        let place = crate::store::Place::vault("https://v.vault.azure.net/");
        let down =
            Err(StoreError::Unavailable { place, message: "vault down; check the network".to_owned() });
        let found = evaluate_all(&targets, &down, &Observed::default(), at("2026-02-01T00:00:00Z"));
        assert_eq!(found.len(), 2, "{found:#?}");
        for (f, set) in found.iter().zip([SET, "b-TEST"]) {
            assert_eq!((f.kind, f.severity), (FindingKind::StoreError, Severity::Unknown));
            assert_eq!(
                f.message,
                format!("{set}: the store could not be read: vault down; check the network")
            );
        }
        assert_eq!(worst(&found), Severity::Unknown);
    }

    #[test]
    fn a_key_set_left_out_of_a_load_is_unknown_never_empty() {
        let targets = crate::testing::targets(&[SET], &Policy::default());
        let loaded = Ok(Loaded::new());
        let found = evaluate_all(&targets, &loaded, &Observed::default(), at("2026-02-01T00:00:00Z"));
        assert_eq!(found.iter().map(|f| f.kind).collect::<Vec<_>>(), [FindingKind::StoreError]);
    }

    #[test]
    fn what_was_observed_besides_the_store_adds_its_findings() {
        let targets = crate::testing::targets(&[SET], &Policy::default());
        let set: KeySet = SET.parse().expect("set");
        let loaded = Ok(Loaded::from([(set.clone(), Ok(vec![record("2026-01-10", Stage::Current, true)]))]));
        let now = at("2026-02-01T00:00:00Z");
        assert_eq!(evaluate_all(&targets, &loaded, &Observed::default(), now), [], "a healthy key set");
        let mut observed = Observed::default();
        observed.consumers.insert(set.clone(), Consumer::Foreign);
        observed.registered.insert(set.clone(), Ok(registered(&[])));
        let found = evaluate_all(&targets, &loaded, &observed, now);
        let kinds: Vec<FindingKind> = found.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::ConsumerNotCurrent, FindingKind::RegistrationDrift], "{found:#?}");
        assert_eq!(worst(&found), Severity::Critical);
        let unreachable = PublishError::Api { key_set: set.clone(), cause: "HTTP 503".to_owned() };
        observed.registered.insert(set, Err(unreachable));
        let found = evaluate_all(&targets, &loaded, &observed, now);
        assert_eq!(found.last().map(|f| f.kind), Some(FindingKind::MaskinportenUnreachable));
    }

    #[test]
    fn digdirs_earlier_exp_is_the_one_that_counts() {
        let r = record("2026-01-10", Stage::Current, true);
        let policy = Policy::default();
        assert_eq!(expires(&r, &policy, None), at("2027-01-10T00:00:00Z"));
        let earlier = registered(&[("a-TEST.2026-01-10", Some(at("2026-12-01T00:00:00Z")))]);
        assert_eq!(expires(&r, &policy, Some(&earlier)), at("2026-12-01T00:00:00Z"));
        let later = registered(&[("a-TEST.2026-01-10", Some(at("2027-06-01T00:00:00Z")))]);
        assert_eq!(expires(&r, &policy, Some(&later)), at("2027-01-10T00:00:00Z"));
    }
}
