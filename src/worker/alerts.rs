//! Alert delivery: which findings are worth telling someone about (new, changed, cleared, or
//! due a reminder), and the `Alerter` port that tells them: the log always, webhooks if set.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tracing::{info, warn};

use super::metrics::Metrics;
use crate::findings::{Finding, FindingKind, Severity};
use crate::kid::KeySet;

/// Why a finding is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Not reported before.
    Appeared,
    /// Reported before with another severity or kind (say WARNING, now CRITICAL).
    Changed,
    /// Unchanged, but not sent for the reminder interval.
    Reminder,
    /// Reported before, now gone.
    Cleared,
}

/// One finding to deliver, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub event: Event,
    /// For `cleared`, the finding as last reported.
    pub finding: Finding,
    /// The severity it had when last sent, for `changed` and `cleared`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Severity>,
    pub at: DateTime<Utc>,
}

impl Notification {
    /// The severity that decides whether a sink wants it: the worse of now and before.
    pub(crate) fn weight(&self) -> Severity {
        self.finding.severity.max(self.previous.unwrap_or(Severity::Ok))
    }

    /// One line for people: `CRITICAL (was WARNING): message` or `CLEARED: message`.
    pub fn line(&self) -> String {
        let f = &self.finding;
        match (self.event, self.previous) {
            (Event::Cleared, _) => format!("CLEARED (was {}): {}", f.severity, f.message),
            (Event::Changed, Some(was)) => format!("{} (was {was}): {}", f.severity, f.message),
            (Event::Reminder, _) => format!("{} (reminder): {}", f.severity, f.message),
            _ => format!("{}: {}", f.severity, f.message),
        }
    }
}

/// Expiring and expired are one condition getting worse; the other kinds stand alone.
fn group(kind: FindingKind) -> FindingKind {
    match kind {
        FindingKind::Expired => FindingKind::Expiring,
        other => other,
    }
}

/// Whether a finding differs from the one last sent in more than its wording (days left).
fn changed(sent: &Finding, now: &Finding) -> bool {
    sent.severity != now.severity || sent.kind != now.kind || sent.kid != now.kid
}

/// What was last sent about one condition of one key set.
#[derive(Debug, Clone)]
struct Sent {
    finding: Finding,
    at: DateTime<Utc>,
}

/// Remembers what was sent, so that an unchanged finding is not sent at every evaluation.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    sent: BTreeMap<(KeySet, FindingKind), Sent>,
}

impl Tracker {
    /// Compares `findings` (a whole evaluation) with what was sent, and remembers the answer.
    pub(crate) fn update(
        &mut self,
        findings: &[Finding],
        now: DateTime<Utc>,
        reminder: TimeDelta,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for f in findings {
            let key = (f.key_set.clone(), group(f.kind));
            seen.insert(key.clone());
            let note = |event, previous| Notification { event, finding: f.clone(), previous, at: now };
            let event = match self.sent.get(&key) {
                None => Some(note(Event::Appeared, None)),
                Some(s) if changed(&s.finding, f) => Some(note(Event::Changed, Some(s.finding.severity))),
                Some(s) if now - s.at >= reminder => Some(note(Event::Reminder, None)),
                Some(_) => None,
            };
            if let Some(n) = event {
                self.sent.insert(key, Sent { finding: f.clone(), at: now });
                out.push(n);
            }
        }
        let gone: Vec<_> = self.sent.keys().filter(|k| !seen.contains(*k)).cloned().collect();
        for key in gone {
            if let Some(s) = self.sent.remove(&key) {
                let previous = Some(s.finding.severity);
                out.push(Notification { event: Event::Cleared, finding: s.finding, previous, at: now });
            }
        }
        out
    }
}

/// Tells people about findings. Object-safe; held as `Arc<dyn Alerter>`.
#[async_trait]
pub trait Alerter: Send + Sync {
    /// A name for logs and metrics (never a secret URL).
    fn name(&self) -> String;

    /// Notifications below this weight are not delivered here.
    fn min_severity(&self) -> Severity {
        Severity::Warning
    }

    /// Delivers a batch; the error says why it could not be delivered.
    async fn deliver(&self, batch: &[Notification]) -> Result<(), DeliveryError>;
}

/// Why a batch of alerts could not be delivered (never fatal: it is counted and logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The request did not reach the receiver; `reason` never names the URL.
    #[error("request failed: {reason}")]
    Request { reason: String },
    /// The receiver answered with an error status.
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    /// Every attempt failed; the last one's error.
    #[error("{attempts} attempts failed; last: {last}")]
    GaveUp { attempts: u32, last: Box<DeliveryError> },
}

/// The log: every notification, as a structured event.
#[derive(Debug, Default)]
pub(crate) struct LogAlerter;

#[async_trait]
impl Alerter for LogAlerter {
    fn name(&self) -> String {
        "log".to_owned()
    }

    fn min_severity(&self) -> Severity {
        Severity::Ok
    }

    async fn deliver(&self, batch: &[Notification]) -> Result<(), DeliveryError> {
        for n in batch {
            let f = &n.finding;
            let kid = f.kid.as_ref().map(ToString::to_string).unwrap_or_default();
            let (set, kind, sev) = (f.key_set.to_string(), f.kind.as_str(), f.severity.as_str());
            if n.event == Event::Cleared {
                info!(key_set = %set, kid = %kid, kind, event = "cleared", "alert cleared: {}", f.message);
            } else {
                let event = format!("{:?}", n.event).to_lowercase();
                warn!(key_set = %set, kid = %kid, kind, severity = sev, event, "alert: {}", f.message);
            }
        }
        Ok(())
    }
}

/// Decides what to send and sends it to every sink; a sink that fails is logged and counted.
pub struct Notifier {
    tracker: Mutex<Tracker>,
    sinks: Vec<Arc<dyn Alerter>>,
    reminder: TimeDelta,
    metrics: Arc<Metrics>,
}

impl Notifier {
    pub fn new(sinks: Vec<Arc<dyn Alerter>>, reminder: TimeDelta, metrics: Arc<Metrics>) -> Self {
        Notifier { tracker: Mutex::new(Tracker::default()), sinks, reminder, metrics }
    }

    /// Sends what changed since the last evaluation; returns what was due, for tests and logs.
    pub(crate) async fn notify(&self, findings: &[Finding], now: DateTime<Utc>) -> Vec<Notification> {
        let due = match self.tracker.lock() {
            Ok(mut tracker) => tracker.update(findings, now, self.reminder),
            Err(_) => return Vec::new(),
        };
        if due.is_empty() {
            return due;
        }
        let sends = self.sinks.iter().map(|sink| self.send(sink.as_ref(), &due));
        futures::future::join_all(sends).await;
        due
    }

    async fn send(&self, sink: &dyn Alerter, due: &[Notification]) {
        let batch: Vec<Notification> =
            due.iter().filter(|n| n.weight() >= sink.min_severity()).cloned().collect();
        if batch.is_empty() {
            return;
        }
        let result = sink.deliver(&batch).await;
        if let Err(e) = &result {
            warn!(sink = %sink.name(), error = %e, notifications = batch.len(), "alert delivery failed");
        }
        self.metrics.delivery(&sink.name(), result.is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(set: &str, severity: Severity, kind: FindingKind, days: i64) -> Finding {
        Finding {
            key_set: set.parse().unwrap(),
            severity,
            kind,
            kid: Some(format!("{set}.2026-01-01").parse().unwrap()),
            days_left: Some(days),
            message: format!("{set}: {days} days left"),
        }
    }

    #[test]
    fn dedupe_and_reminders_over_simulated_days() {
        let mut t = Tracker::default();
        let day = TimeDelta::days(1);
        let start: DateTime<Utc> = "2026-11-01T06:00:00Z".parse().unwrap();
        let mut sent = Vec::new();
        // 40 days, evaluated every 6 hours; the key crosses warn (30d) and critical (7d), then
        // is rotated on day 35.
        for step in 0..160 {
            let now = start + TimeDelta::hours(6 * step);
            let left = 36 - (now - start).num_days();
            let findings = match left {
                _ if now - start >= day * 35 => vec![],
                l if l <= 7 => vec![finding("a-TEST", Severity::Critical, FindingKind::Expiring, l)],
                l if l <= 30 => vec![finding("a-TEST", Severity::Warning, FindingKind::Expiring, l)],
                _ => vec![],
            };
            for n in t.update(&findings, now, TimeDelta::days(7)) {
                sent.push(((n.at - start).num_days(), n.event, n.finding.severity));
            }
        }
        use Event::*;
        let want = vec![
            (6, Appeared, Severity::Warning),
            (13, Reminder, Severity::Warning),
            (20, Reminder, Severity::Warning),
            (27, Reminder, Severity::Warning),
            (29, Changed, Severity::Critical),
            (35, Cleared, Severity::Critical),
        ];
        assert_eq!(sent, want);
    }

    #[test]
    fn expiring_turning_expired_is_a_change_not_a_new_alert() {
        let mut t = Tracker::default();
        let now: DateTime<Utc> = "2026-11-01T06:00:00Z".parse().unwrap();
        let week = TimeDelta::days(7);
        t.update(&[finding("a-TEST", Severity::Critical, FindingKind::Expiring, 1)], now, week);
        let next =
            t.update(&[finding("a-TEST", Severity::Critical, FindingKind::Expired, 0)], now + week / 7, week);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].event, Event::Changed);
        assert!(next[0].line().starts_with("CRITICAL (was CRITICAL)"));
    }
}
