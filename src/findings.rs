//! Findings: what `status` and the worker's alerts report about a key set at `now`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::Target;
use crate::kid::{KeySet, Kid};
use crate::policy::Policy;
use crate::record::{KeyRecord, Stage};
use crate::store::{Loaded, StoreError};

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
/// (unreachable: every key set gets it) or the key set's.
pub fn records_of<'a>(
    loaded: &'a Result<Loaded, StoreError>,
    set: &KeySet,
) -> Result<&'a [KeyRecord], String> {
    match loaded {
        Ok(loaded) => match loaded.get(set) {
            Some(Ok(records)) => Ok(records),
            Some(Err(e)) => Err(e.to_string()),
            None => Ok(&[]),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Evaluates every target against one store load. This is what `status` prints and what the
/// worker alerts on; a store that could not be read at all is UNKNOWN for every key set.
pub fn evaluate_all(
    targets: &[Target],
    loaded: &Result<Loaded, StoreError>,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    targets
        .iter()
        .flat_map(|t| {
            let records = records_of(loaded, &t.key_set);
            evaluate(&t.key_set, records.as_deref().map_err(String::as_str), &t.policy, now)
        })
        .collect()
}

/// Evaluates one key set. `records` is what the store gave, or its error.
pub fn evaluate(
    set: &KeySet,
    records: Result<&[KeyRecord], &str>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let finding = |severity, kind, kid: Option<&Kid>, days_left, message: String| Finding {
        key_set: set.clone(),
        severity,
        kind,
        kid: kid.cloned(),
        days_left,
        message,
    };
    let records = match records {
        Ok(records) => records,
        Err(e) => {
            let msg = format!("{set}: the store could not be read: {e}");
            return vec![finding(Severity::Unknown, FindingKind::StoreError, None, None, msg)];
        }
    };
    let mut out = Vec::new();
    let current = records.iter().filter(|r| r.stage == Stage::Current).max_by_key(|r| r.activated);
    let pending = records.iter().filter(|r| r.stage == Stage::Pending).max_by_key(|r| r.created);
    match current {
        None => out.push(finding(
            Severity::Critical,
            FindingKind::NoCurrentKey,
            None,
            None,
            format!("{set} has no current key: run `jwk-rotator rotate {set}`"),
        )),
        Some(c) => {
            let expires = c.expires(policy);
            let left = expires - now;
            let days = left.num_days();
            let date = expires.date_naive();
            if left <= chrono::TimeDelta::zero() {
                let msg = format!(
                    "{set}: current key {} expired on {date}; token requests fail with MP-121. Rotate now: `jwk-rotator rotate --force {set}`, upload {set}.maskinporten.json, then `jwk-rotator promote {set}`",
                    c.kid
                );
                out.push(finding(Severity::Critical, FindingKind::Expired, Some(&c.kid), Some(days), msg));
            } else if left <= policy.critical_before.delta() || left <= policy.warn_before.delta() {
                let severity = if left <= policy.critical_before.delta() {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                let next = match pending {
                    Some(p) => format!(
                        "upload {set}.maskinporten.json with {} and run `jwk-rotator promote {set}`",
                        p.kid
                    ),
                    None => format!(
                        "run `jwk-rotator rotate --force {set}`, upload {set}.maskinporten.json, then promote"
                    ),
                };
                let msg = format!("{set}: current key {} expires on {date}, in {days} days; {next}", c.kid);
                out.push(finding(severity, FindingKind::Expiring, Some(&c.kid), Some(days), msg));
            }
            let overdue = policy.rotate_after.delta() + policy.alert_grace.delta();
            if pending.is_none() && now - c.created > overdue {
                let msg = format!(
                    "{set}: current key {} is {} days old and no new key was made (rotate_after {}); the rotation schedule is not running: check the job, or run `jwk-rotator rotate {set}`",
                    c.kid,
                    (now - c.created).num_days(),
                    policy.rotate_after
                );
                out.push(finding(
                    Severity::Warning,
                    FindingKind::RotationOverdue,
                    Some(&c.kid),
                    Some(days),
                    msg,
                ));
            }
        }
    }
    if let Some(p) = pending {
        let since = p.published.unwrap_or(p.created);
        if now - since > policy.publish_ahead.delta() + policy.alert_grace.delta() {
            let msg = format!(
                "{set}: pending key {} has waited {} days without being promoted; upload {set}.maskinporten.json to Samarbeidsportalen, then run `jwk-rotator promote {set}`",
                p.kid,
                (now - since).num_days()
            );
            let days = (p.expires(policy) - now).num_days();
            out.push(finding(
                Severity::Warning,
                FindingKind::PendingNotPromoted,
                Some(&p.kid),
                Some(days),
                msg,
            ));
        }
    }
    let published = records.iter().filter(|r| r.stage.is_published()).count();
    if published > policy.max_published as usize {
        let msg = format!(
            "{set}: {published} keys are published but max_published is {}; Maskinporten refuses more than 5. Run `jwk-rotator rotate {set}` to retire the oldest",
            policy.max_published
        );
        out.push(finding(Severity::Critical, FindingKind::TooManyPublished, None, None, msg));
    }
    out
}
