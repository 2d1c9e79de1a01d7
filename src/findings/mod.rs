//! Findings: what `status` and the worker's alerts report about a key set at `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::kid::{KeySet, Kid};
use crate::lifecycle;
use crate::moment::Moment;
use crate::policy::Policy;
use crate::policy::Target;
use crate::proof::Attempt;
use crate::publish::{CertificateExpiry, PublishError, Registered};
use crate::record::{KeyRecord, Stage};
use crate::store::{Consumer, Consumers, Loaded, StoreError};

mod clocks;
mod registered;

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
pub fn records_of<'a>(
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
            found
        })
        .collect();
    for cert in &observed.certificates {
        found.extend(certificate(cert, targets, now));
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

/// A business certificate that expires within the first of its key sets' `warn_before`.
fn certificate(cert: &CertificateExpiry, targets: &[Target], now: DateTime<Utc>) -> Option<Finding> {
    let target = targets.iter().find(|t| cert.key_sets.contains(&t.key_set))?;
    let left = cert.not_after - now;
    let policy = &target.policy;
    let severity = if left <= policy.critical_before().delta() {
        Severity::Critical
    } else if left <= policy.warn_before().delta() {
        Severity::Warning
    } else {
        return None;
    };
    let when = if left <= TimeDelta::zero() {
        format!(
            "expired on {}: the tool can not read or register keys through Digdir's API",
            cert.not_after.date_naive()
        )
    } else {
        format!("expires on {}, in {} days", cert.not_after.date_naive(), left.num_days())
    };
    let msg = format!(
        "the admin client's business certificate {} ({}) {when}; order a new one from the certificate issuer, register it with Digdir for the admin client, and replace {}",
        cert.subject, cert.setting, cert.setting
    );
    Some(Finding::new(
        &target.key_set,
        severity,
        FindingKind::AdminCertificate,
        None,
        Some(left.num_days()),
        msg,
    ))
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

    /// The next step for a pending key: add it in Samarbeidsportalen, then promote; or, when the
    /// key set is registered through Digdir's API, what holds the promotion back.
    fn add_then_promote(&self, p: &KeyRecord) -> String {
        let set = self.set;
        if self.registered.is_some() {
            return match self.policy.promotion() {
                crate::policy::Promotion::Verified => format!(
                    "it is registered through Digdir's API and is promoted once a token grant with it succeeds; `jwk-rotator verify {set} --kid {}` shows why it does not",
                    p.kid
                ),
                _ => format!("it is registered through Digdir's API; run `jwk-rotator promote {set}`"),
            };
        }
        format!(
            "add {} in Samarbeidsportalen (`jwk-rotator jwks {set} --kid {} --format maskinporten` prints that one key), then run `jwk-rotator promote {set}`",
            p.kid, p.kid
        )
    }

    /// The way out of an expired current key, step by step from where the key set is.
    fn rescue_steps(&self) -> String {
        let set = self.set;
        let promote = format!(
            "`jwk-rotator promote {set}` makes it current as soon as Maskinporten grants a token signed with it (it proves the key first when the client has client_id and verify_scope)"
        );
        let api = self.registered.is_some();
        match self.pending() {
            Some(p) if p.published.is_some() && api => {
                format!("Pending key {} is registered through Digdir's API: {promote}", p.kid)
            }
            Some(p) if p.published.is_some() => {
                format!("Pending key {}: {}", p.kid, self.add_then_promote(p))
            }
            Some(p) => format!(
                "1. `jwk-rotator rotate {set}` publishes pending key {}{}; 2. {promote}",
                p.kid,
                if api { " and registers it through Digdir's API" } else { ", add it in Samarbeidsportalen" }
            ),
            None if api => format!(
                "1. `jwk-rotator rotate {set}` makes a new key and registers it through Digdir's API (the expired key is not sent); 2. {promote}"
            ),
            None => format!(
                "1. `jwk-rotator rotate {set}` makes a new key; 2. add it in Samarbeidsportalen (`jwk-rotator jwks {set} --kid KID`); 3. {promote}"
            ),
        }
    }

    /// No current key, or one that expires soon or has expired.
    fn current_key(&self) -> Option<Finding> {
        let set = self.set;
        let Some(c) = self.current() else {
            let next = match self.pending() {
                Some(p) => self.add_then_promote(p),
                None => format!("run `jwk-rotator rotate {set}`"),
            };
            let msg = match self.consumer_in_use() {
                Some(holds) => format!(
                    "{set} has no current key, and its consumer secret holds {holds}, which applications read: if that is altinn-jwks's current key, `jwk-rotator import altinn-jwks --from DIR|VAULT_URL {set}` adopts it; otherwise {next}"
                ),
                None => format!("{set} has no current key: {next}"),
            };
            return Some(self.finding(Severity::Critical, FindingKind::NoCurrentKey, None, None, msg));
        };
        let expires = self.expires(c);
        let left = expires - self.now;
        let (days, date) = (left.num_days(), expires.date_naive());
        if left <= TimeDelta::zero() {
            let msg = format!(
                "{set}: current key {} expired on {date}; token requests fail with MP-121. {}",
                c.kid,
                self.rescue_steps()
            );
            return Some(self.finding(
                Severity::Critical,
                FindingKind::Expired,
                Some(&c.kid),
                Some(days),
                msg,
            ));
        }
        if left > self.policy.warn_before().delta() && left > self.policy.critical_before().delta() {
            return None;
        }
        let severity = if left <= self.policy.critical_before().delta() {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let next = match self.pending() {
            Some(p) => self.add_then_promote(p),
            None => format!(
                "run `jwk-rotator rotate --force {set}`, add the new key in Samarbeidsportalen, then promote"
            ),
        };
        let msg = format!("{set}: current key {} expires on {date}, in {days} days; {next}", c.kid);
        Some(self.finding(severity, FindingKind::Expiring, Some(&c.kid), Some(days), msg))
    }

    /// A current key past `rotate_after` (and grace) with no pending key: no schedule runs.
    fn rotation_overdue(&self) -> Option<Finding> {
        let c = self.current()?;
        let overdue = self.policy.rotate_after().delta() + self.policy.alert_grace().delta();
        if self.pending().is_some() || self.now - c.created <= overdue {
            return None;
        }
        let set = self.set;
        let msg = format!(
            "{set}: current key {} is {} days old and no new key was made (rotate_after {}); the rotation schedule is not running: check the job, or run `jwk-rotator rotate {set}`",
            c.kid,
            (self.now - c.created).num_days(),
            self.policy.rotate_after()
        );
        let days = (self.expires(c) - self.now).num_days();
        Some(self.finding(Severity::Warning, FindingKind::RotationOverdue, Some(&c.kid), Some(days), msg))
    }

    /// A pending key that waited past `publish_ahead` (and grace) without being promoted.
    fn pending_not_promoted(&self) -> Option<Finding> {
        let p = self.pending()?;
        let since = p.published.unwrap_or(p.created);
        if self.now - since <= self.policy.publish_ahead().delta() + self.policy.alert_grace().delta() {
            return None;
        }
        let msg = format!(
            "{}: pending key {} has waited {} days without being promoted; {}",
            self.set,
            p.kid,
            (self.now - since).num_days(),
            self.add_then_promote(p)
        );
        let days = (self.expires(p) - self.now).num_days();
        Some(self.finding(Severity::Warning, FindingKind::PendingNotPromoted, Some(&p.kid), Some(days), msg))
    }

    fn too_many_published(&self) -> Option<Finding> {
        let published = lifecycle::published_count(self.records);
        if published <= self.policy.max_published() as usize {
            return None;
        }
        let msg = format!(
            "{}: {published} keys are published but max_published is {}; Maskinporten refuses more than 5. Run `jwk-rotator rotate {}` to retire the oldest",
            self.set,
            self.policy.max_published(),
            self.set
        );
        Some(self.finding(Severity::Critical, FindingKind::TooManyPublished, None, None, msg))
    }

    fn several_current(&self) -> Option<Finding> {
        let currents: Vec<&KeyRecord> = self.records.iter().filter(|r| r.stage == Stage::Current).collect();
        if currents.len() < 2 {
            return None;
        }
        let kids: Vec<String> = currents.iter().map(|r| r.kid.to_string()).collect();
        let winner = self.current().map(|r| r.kid.to_string()).unwrap_or_default();
        let msg = format!(
            "{}: {} keys are current ({}); an interrupted run left them. `jwk-rotator rotate {}` keeps {winner} and demotes the others",
            self.set,
            kids.len(),
            kids.join(", "),
            self.set
        );
        Some(self.finding(Severity::Critical, FindingKind::SeveralCurrent, None, None, msg))
    }

    fn current_not_published(&self) -> Vec<Finding> {
        let set = self.set;
        self.records
            .iter()
            .filter(|r| r.stage == Stage::Current && r.published.is_none())
            .map(|c| {
                let msg = format!(
                    "{set}: current key {} was never published, so Maskinporten may not know it; run `jwk-rotator rotate {set}` to publish it and make sure it is added in Samarbeidsportalen",
                    c.kid
                );
                self.finding(Severity::Critical, FindingKind::CurrentNotPublished, Some(&c.kid), None, msg)
            })
            .collect()
    }

    /// What the consumer secret holds when applications read a key there that this key set
    /// does not hold: another tool's key, or one whose record is gone.
    fn consumer_in_use(&self) -> Option<String> {
        match self.consumer? {
            Consumer::Empty => None,
            Consumer::Foreign => Some("a key jwk-rotator did not write".to_owned()),
            Consumer::Kid(kid) if !self.records.iter().any(|r| r.kid == *kid) => {
                Some(format!("key {kid}, which this key set does not hold"))
            }
            Consumer::Kid(_) => None,
        }
    }

    /// The consumer secret holds `holds`, which should be the current key.
    fn consumer_not_current(&self, holds: &Consumer) -> Option<Finding> {
        let c = self.current()?;
        if holds.kid() == Some(&c.kid) {
            return None;
        }
        let held = match holds {
            Consumer::Kid(k) => format!("key {k}"),
            Consumer::Foreign => "a key jwk-rotator did not write".to_owned(),
            Consumer::Empty => "no usable key".to_owned(),
        };
        let msg = format!(
            "{}: the consumer secret holds {held}, not the current key {}; applications that restart read the wrong key. Run `jwk-rotator rotate {}` to rewrite it",
            self.set, c.kid, self.set
        );
        Some(self.finding(Severity::Critical, FindingKind::ConsumerNotCurrent, Some(&c.kid), None, msg))
    }
}
