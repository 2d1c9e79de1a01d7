//! The worker's Prometheus metrics, every name starting with `jwk_rotator_`, and their encoding.

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

use crate::engine::SetReport;
use crate::events::EventCounts;
use crate::findings::{self, Finding, Severity};
use crate::lifecycle;
use crate::planner::Action;
use crate::policy::Target;
use crate::record::KeyRecord;
use crate::store::{Loaded, StoreError};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    pub key_set: String,
    pub kid: String,
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SetLabels {
    pub key_set: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabels {
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabels {
    pub environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub sink: String,
    pub outcome: String,
}

/// Every metric the worker exports. Cheap to update; shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub key_expiration: Family<KeyLabels, Gauge>,
    pub key_creation: Family<KeyLabels, Gauge>,
    pub next_rotation: Family<SetLabels, Gauge>,
    pub start_time: Gauge,
    pub last_run: Gauge,
    pub last_success: Gauge,
    pub next_run: Gauge,
    pub schedule_period: Gauge,
    pub runs: Family<OutcomeLabels, Counter>,
    pub skipped_ticks: Counter,
    pub rotations: Family<SetLabels, Counter>,
    pub promotions: Family<SetLabels, Counter>,
    pub retirements: Family<SetLabels, Counter>,
    pub findings: Family<SeverityLabels, Gauge>,
    pub store_requests: Family<OperationLabels, Counter>,
    pub store_errors: Family<OperationLabels, Counter>,
    pub alert_deliveries: Family<DeliveryLabels, Counter>,
    pub admin_certificate_expiration: Family<CertificateLabels, Gauge>,
    /// Event deliveries by sink and outcome, and failed audit log writes.
    pub events: EventCounts,
}

/// Registers `metric` under `name`: the registry holds a clone, which shares its values.
fn register(r: &mut Registry, name: &str, help: &str, metric: &(impl Metric + Clone)) {
    r.register(name, help, metric.clone());
}

impl Metrics {
    /// Every metric, registered; `started` is the worker's start time.
    pub fn new(started: DateTime<Utc>) -> Self {
        let mut m = Metrics::unregistered();
        let mut registry = Registry::default();
        m.register_times(&mut registry);
        m.register_counts(&mut registry);
        m.registry = registry;
        m.seed(started);
        m
    }

    /// Every metric, not yet in the registry.
    fn unregistered() -> Self {
        Metrics {
            registry: Registry::default(),
            key_expiration: Family::default(),
            key_creation: Family::default(),
            next_rotation: Family::default(),
            start_time: Gauge::default(),
            last_run: Gauge::default(),
            last_success: Gauge::default(),
            next_run: Gauge::default(),
            schedule_period: Gauge::default(),
            runs: Family::default(),
            skipped_ticks: Counter::default(),
            rotations: Family::default(),
            promotions: Family::default(),
            retirements: Family::default(),
            findings: Family::default(),
            store_requests: Family::default(),
            store_errors: Family::default(),
            alert_deliveries: Family::default(),
            admin_certificate_expiration: Family::default(),
            events: EventCounts::default(),
        }
    }

    /// The keys' and the schedule's times, in the order `/metrics` shows them.
    fn register_times(&self, r: &mut Registry) {
        let by_key = ", by key set, kid and stage";
        let expiration = format!("When each key expires (kid date + max_age){by_key}");
        register(r, "jwk_rotator_key_expiration_timestamp_seconds", &expiration, &self.key_expiration);
        let creation = format!("When each key was created{by_key}");
        register(r, "jwk_rotator_key_creation_timestamp_seconds", &creation, &self.key_creation);
        register(
            r,
            "jwk_rotator_next_rotation_timestamp_seconds",
            "When the current key of each key set is due to be replaced by a new pending key",
            &self.next_rotation,
        );
        register(r, "jwk_rotator_start_timestamp_seconds", "When the worker started", &self.start_time);
        register(
            r,
            "jwk_rotator_last_run_timestamp_seconds",
            "When the last run finished, successful or not",
            &self.last_run,
        );
        register(
            r,
            "jwk_rotator_last_success_timestamp_seconds",
            "When the last successful run finished (0: none yet)",
            &self.last_success,
        );
        register(r, "jwk_rotator_next_run_timestamp_seconds", "The next scheduled run", &self.next_run);
        register(
            r,
            "jwk_rotator_schedule_period_seconds",
            "The schedule's period now: from the last scheduled run to the next",
            &self.schedule_period,
        );
    }

    /// What happened since the start (runs, keys changed, findings, store requests, alerts),
    /// then the admin certificates' expiry, in the order `/metrics` shows them.
    fn register_counts(&self, r: &mut Registry) {
        register(r, "jwk_rotator_runs", "Runs by outcome", &self.runs);
        let skipped = "Scheduled ticks skipped because a run was still going";
        register(r, "jwk_rotator_skipped_ticks", skipped, &self.skipped_ticks);
        register(r, "jwk_rotator_rotations", "New keys generated, by key set", &self.rotations);
        let promotions = "Pending keys promoted to current, by key set";
        register(r, "jwk_rotator_promotions", promotions, &self.promotions);
        register(r, "jwk_rotator_retirements", "Keys retired, by key set", &self.retirements);
        register(r, "jwk_rotator_findings", "Findings at the last evaluation, by severity", &self.findings);
        let requests = "Key store requests, by operation";
        register(r, "jwk_rotator_store_requests", requests, &self.store_requests);
        let errors = "Key store requests that failed, by operation";
        register(r, "jwk_rotator_store_errors", errors, &self.store_errors);
        let deliveries = "Alert deliveries by sink and outcome";
        register(r, "jwk_rotator_alert_deliveries", deliveries, &self.alert_deliveries);
        let events = "Event deliveries to [[events.webhook]], by sink and outcome";
        register(r, "jwk_rotator_event_deliveries", events, &self.events.deliveries);
        let audit = "Writes of the [events] audit log that failed (the events are in the log lines only)";
        register(r, "jwk_rotator_audit_write_failures", audit, &self.events.audit_write_failures);
        register(
            r,
            "jwk_rotator_admin_certificate_expiration_timestamp_seconds",
            "When the admin client's business certificate expires, by environment",
            &self.admin_certificate_expiration,
        );
    }

    /// The series that exist from the start: the start time, and zero findings and runs.
    fn seed(&self, started: DateTime<Utc>) {
        self.start_time.set(started.timestamp());
        for severity in [Severity::Warning, Severity::Critical, Severity::Unknown] {
            self.findings.get_or_create(&severity_labels(severity)).set(0);
        }
        for outcome in ["success", "failure"] {
            self.runs.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc_by(0);
        }
    }

    /// The metrics in the OpenMetrics text format that Prometheus scrapes.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts what a finished run did and when.
    pub(crate) fn record_run(&self, reports: &Result<Vec<SetReport>, StoreError>, now: DateTime<Utc>) {
        let ok = reports.as_ref().is_ok_and(|r| r.iter().all(SetReport::ok));
        let outcome = if ok { "success" } else { "failure" };
        self.runs.get_or_create(&OutcomeLabels { outcome: outcome.to_owned() }).inc();
        self.last_run.set(now.timestamp());
        if ok {
            self.last_success.set(now.timestamp());
        }
        for report in reports.iter().flatten() {
            let labels = SetLabels { key_set: report.key_set.to_string() };
            let steps = report.plan.iter().flat_map(|p| p.steps.iter()).take(report.done);
            for step in steps {
                let family = match step.action {
                    Action::Generate { .. } => &self.rotations,
                    Action::Promote { .. } => &self.promotions,
                    Action::Retire { .. } => &self.retirements,
                    _ => continue,
                };
                family.get_or_create(&labels).inc();
            }
        }
    }

    /// Replaces the per-key series and finding counts with what one store load shows. When the
    /// store could not be read at all, the key series keep their last values, so that expiry
    /// alerts in Prometheus still see the keys.
    pub(crate) fn observe(
        &self,
        targets: &[Target],
        loaded: &Result<Loaded, StoreError>,
        observed: &findings::Observed,
        found: &[Finding],
        now: DateTime<Utc>,
    ) {
        self.count_findings(found);
        for cert in &observed.certificates {
            let labels = CertificateLabels { environment: cert.environment.to_string() };
            self.admin_certificate_expiration.get_or_create(&labels).set(cert.not_after.timestamp());
        }
        if loaded.is_err() {
            return;
        }
        self.key_expiration.clear();
        self.key_creation.clear();
        self.next_rotation.clear();
        for t in targets {
            let Ok(records) = findings::records_of(loaded, &t.key_set) else { continue };
            let registered = observed.registered.get(&t.key_set).and_then(|r| r.as_ref().ok());
            for r in records {
                let labels = KeyLabels {
                    key_set: t.key_set.to_string(),
                    kid: r.kid.to_string(),
                    stage: r.stage.as_str().to_owned(),
                };
                // Maskinporten's registered `exp` when it is earlier than the kid date + max_age.
                let expires = findings::expires(r, &t.policy, registered);
                self.key_expiration.get_or_create(&labels).set(expires.timestamp());
                self.key_creation.get_or_create(&labels).set(r.created.timestamp());
            }
            if let Some(at) = next_rotation(t, records, now) {
                self.next_rotation
                    .get_or_create(&SetLabels { key_set: t.key_set.to_string() })
                    .set(at.timestamp());
            }
        }
    }

    fn count_findings(&self, found: &[Finding]) {
        for severity in [Severity::Warning, Severity::Critical, Severity::Unknown] {
            let n = found.iter().filter(|f| f.severity == severity).count();
            self.findings.get_or_create(&severity_labels(severity)).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts one alert delivery.
    pub(crate) fn delivery(&self, sink: &str, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.alert_deliveries
            .get_or_create(&DeliveryLabels { sink: sink.to_owned(), outcome: outcome.to_owned() })
            .inc();
    }
}

impl crate::store::StoreObserver for Metrics {
    /// Counts one store request and whether it failed.
    fn store_request(&self, operation: &'static str, failed: bool) {
        let labels = OperationLabels { operation: operation.to_owned() };
        self.store_requests.get_or_create(&labels).inc();
        if failed {
            self.store_errors.get_or_create(&labels).inc();
        }
    }
}

fn severity_labels(severity: Severity) -> SeverityLabels {
    SeverityLabels { severity: severity.as_str().to_lowercase() }
}

/// When the planner will make a new pending key for the current one (see
/// [`lifecycle::next_rotation`]). None without a current key.
pub(crate) fn next_rotation(
    target: &Target,
    records: &[KeyRecord],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let current = lifecycle::current(records, now)?;
    Some(lifecycle::next_rotation(current, &target.policy, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{CertificateExpiry, Registered, RegisteredKey};
    use crate::store::MemoryStore;
    use crate::testing::{at, engine, set, targets};

    /// Digdir's registered `exp`, when earlier than the kid date + max_age, is the key's expiry;
    /// the admin certificate's expiry is a series of its own.
    #[tokio::test]
    async fn registered_expiry_and_the_admin_certificate_are_exported() {
        let store = std::sync::Arc::new(MemoryStore::new());
        let (engine, _) = engine(store.clone());
        let targets = targets(&["a-TEST"], &crate::policy::Policy::default());
        let now = at("2026-11-21T06:00:00Z");
        engine.run(&targets, now, &crate::planner::Request::default()).await.expect("run");
        let loaded = engine.load(&targets).await;
        let kid = "a-TEST.2026-11-21";
        let earlier = at("2027-01-01T00:00:00Z");
        let registered = Registered {
            client_id: "cid".to_owned(),
            keys: vec![RegisteredKey { kid: kid.to_owned(), exp: Some(earlier), jwk: serde_json::json!({}) }],
        };
        let observed = findings::Observed {
            registered: [(set("a-TEST"), Ok(registered))].into_iter().collect(),
            certificates: vec![CertificateExpiry {
                environment: "TEST".parse().expect("env"),
                setting: "[maskinporten.TEST] admin_certificate".to_owned(),
                subject: "CN=org".to_owned(),
                not_after: at("2027-03-01T00:00:00Z"),
                key_sets: vec![set("a-TEST")],
            }],
            ..Default::default()
        };
        let metrics = Metrics::new(now);
        metrics.observe(&targets, &loaded, &observed, &[], now);
        let text = metrics.encode();
        let expiry = format!(
            "jwk_rotator_key_expiration_timestamp_seconds{{key_set=\"a-TEST\",kid=\"{kid}\",stage=\"current\"}} {}",
            earlier.timestamp()
        );
        assert!(text.contains(&expiry), "{text}");
        let cert = format!(
            "jwk_rotator_admin_certificate_expiration_timestamp_seconds{{environment=\"TEST\"}} {}",
            at("2027-03-01T00:00:00Z").timestamp()
        );
        assert!(text.contains(&cert), "{text}");
    }
}
