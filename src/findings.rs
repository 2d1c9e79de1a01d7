//! Findings: what `status` and the worker's alerts report about a key set at `now`.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::kid::{KeySet, Kid};
use crate::lifecycle;
use crate::policy::Policy;
use crate::policy::Target;
use crate::record::{KeyRecord, Stage};
use crate::store::{Consumers, Loaded, StoreError};

/// How bad a finding is; also `status`'s exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Severity {
    pub fn exit_code(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// The store holds a later time than `now` on a key that is not itself future-dated.
    ClockBehind,
    /// The consumer secret that applications read does not hold the current key.
    ConsumerNotCurrent,
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

/// Evaluates every target against one store load. This is what `status` prints and what the
/// worker alerts on; a store that could not be read at all is UNKNOWN for every key set.
/// `consumers` holds, for each key set with a consumer secret, the kid that secret holds.
pub fn evaluate_all(
    targets: &[Target],
    loaded: &Result<Loaded, StoreError>,
    consumers: &Consumers,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    targets
        .iter()
        .flat_map(|t| {
            let records = records_of(loaded, &t.key_set);
            let mut found = evaluate(&t.key_set, records.as_deref(), &t.policy, now);
            if let (Ok(records), Some(holds)) = (&records, consumers.get(&t.key_set)) {
                let ctx = Context { set: &t.key_set, records, policy: &t.policy, now };
                found.extend(ctx.consumer_not_current(holds.as_ref()));
            }
            found
        })
        .collect()
}

/// Evaluates one key set. `records` is what the store gave, or its error.
pub fn evaluate(
    set: &KeySet,
    records: Result<&[KeyRecord], &StoreError>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let records = match records {
        Ok(records) => records,
        Err(e) => {
            let msg = format!("{set}: the store could not be read: {e}");
            return vec![Finding::new(set, Severity::Unknown, FindingKind::StoreError, None, None, msg)];
        }
    };
    let ctx = Context { set, records, policy, now };
    let mut out = Vec::new();
    out.extend(ctx.current_key());
    out.extend(ctx.rotation_overdue());
    out.extend(ctx.pending_not_promoted());
    out.extend(ctx.too_many_published());
    out.extend(ctx.several_current());
    out.extend(ctx.current_not_published());
    out.extend(ctx.future_dated());
    out.extend(ctx.clock_behind());
    out
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
}

impl Context<'_> {
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

    /// The next step for a pending key: add it in Samarbeidsportalen, then promote.
    fn add_then_promote(&self, p: &KeyRecord) -> String {
        let set = self.set;
        format!(
            "add {} in Samarbeidsportalen (`jwk-rotator jwks {set} --kid {}` prints it), then run `jwk-rotator promote {set}`",
            p.kid, p.kid
        )
    }

    /// No current key, or one that expires soon or has expired.
    fn current_key(&self) -> Option<Finding> {
        let set = self.set;
        let Some(c) = self.current() else {
            let next = match self.pending() {
                Some(p) => self.add_then_promote(p),
                None => format!("run `jwk-rotator rotate {set}`"),
            };
            let msg = format!("{set} has no current key: {next}");
            return Some(self.finding(Severity::Critical, FindingKind::NoCurrentKey, None, None, msg));
        };
        let expires = c.expires(self.policy);
        let left = expires - self.now;
        let (days, date) = (left.num_days(), expires.date_naive());
        if left <= TimeDelta::zero() {
            let msg = format!(
                "{set}: current key {} expired on {date}; token requests fail with MP-121. Rotate now: `jwk-rotator rotate --force {set}`, add the new key in Samarbeidsportalen, then `jwk-rotator promote {set}`",
                c.kid
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
        let days = (c.expires(self.policy) - self.now).num_days();
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
        let days = (p.expires(self.policy) - self.now).num_days();
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

    fn future_dated(&self) -> Vec<Finding> {
        let set = self.set;
        self.records
            .iter()
            .filter(|r| lifecycle::is_future_dated(r, self.now))
            .map(|r| {
                // A retired key is out of use; only its purge waits.
                let severity = if r.stage == Stage::Retired { Severity::Warning } else { Severity::Critical };
                let msg = format!(
                    "{set}: {} key {} was made at {}, after now ({}): a run with its clock ahead (or `--at` in the future) made it, or this host's clock is behind. Check the clock (NTP); with the clock right, `jwk-rotator rotate {set}` replaces it",
                    r.stage,
                    r.kid,
                    r.created.to_rfc3339(),
                    self.now.to_rfc3339()
                );
                self.finding(severity, FindingKind::FutureDated, Some(&r.kid), None, msg)
            })
            .collect()
    }

    fn clock_behind(&self) -> Option<Finding> {
        let latest = self
            .records
            .iter()
            .filter(|r| !lifecycle::is_future_dated(r, self.now))
            .map(lifecycle::latest_time)
            .max()
            .filter(|t| *t > self.now + lifecycle::CLOCK_SKEW)?;
        let msg = format!(
            "{}: the store holds a time ({}) later than now ({}): this host's clock is behind, or a run with its clock ahead wrote it. Check the clock (NTP) before the next run: until then promotion and retirement wait",
            self.set,
            latest.to_rfc3339(),
            self.now.to_rfc3339()
        );
        Some(self.finding(Severity::Critical, FindingKind::ClockBehind, None, None, msg))
    }

    /// The consumer secret holds `holds`, which should be the current key.
    fn consumer_not_current(&self, holds: Option<&Kid>) -> Option<Finding> {
        let c = self.current()?;
        if holds == Some(&c.kid) {
            return None;
        }
        let held = holds.map_or_else(|| "no usable key".to_owned(), |k| format!("key {k}"));
        let msg = format!(
            "{}: the consumer secret holds {held}, not the current key {}; applications that restart read the wrong key. Run `jwk-rotator rotate {}` to rewrite it",
            self.set, c.kid, self.set
        );
        Some(self.finding(Severity::Critical, FindingKind::ConsumerNotCurrent, Some(&c.kid), None, msg))
    }
}
