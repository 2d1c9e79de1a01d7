//! The Grafana dashboard (infra/grafana/jwk-rotator.json) against the metrics the worker
//! really exports: every name a query reads is in `/metrics` with every family populated, and
//! the panels the dashboard exists for are there.

use std::collections::BTreeSet;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::worker::metrics::{
    CertificateLabels, DeliveryLabels, KeyLabels, Metrics, OperationLabels, OutcomeLabels, SetLabels,
    SeverityLabels,
};

fn set() -> SetLabels {
    SetLabels { key_set: "a-TEST".to_owned() }
}

fn inc<L: Clone + std::hash::Hash + Eq>(family: &Family<L, Counter>, labels: L) {
    family.get_or_create(&labels).inc();
}

fn put<L: Clone + std::hash::Hash + Eq>(family: &Family<L, Gauge>, labels: L) {
    family.get_or_create(&labels).set(1);
}

/// `/metrics` with a series in every family.
fn populated() -> String {
    let m = Metrics::new(crate::testing::at("2026-11-21T06:00:00Z"));
    let key =
        KeyLabels { key_set: "a-TEST".into(), kid: "a-TEST.2026-11-21".into(), stage: "current".into() };
    put(&m.key_expiration, key.clone());
    put(&m.key_creation, key);
    put(&m.next_rotation, set());
    for g in [&m.start_time, &m.last_run, &m.last_success, &m.next_run, &m.schedule_period] {
        g.set(1);
    }
    inc(&m.runs, OutcomeLabels { outcome: "failure".into() });
    m.skipped_ticks.inc();
    for family in [&m.rotations, &m.promotions, &m.retirements] {
        inc(family, set());
    }
    put(&m.findings, SeverityLabels { severity: "warning".into() });
    inc(&m.store_requests, OperationLabels { operation: "load".into() });
    inc(&m.store_errors, OperationLabels { operation: "load".into() });
    inc(&m.alert_deliveries, DeliveryLabels { sink: "webhook".into(), outcome: "failed".into() });
    put(&m.admin_certificate_expiration, CertificateLabels { environment: "test".into() });
    m.encode()
}

/// The names of the samples in an exposition (counters as `..._total`).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// Every query's text in the dashboard.
fn queries() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/grafana/jwk-rotator.json");
    let text = std::fs::read_to_string(path).expect("infra/grafana/jwk-rotator.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let targets = panels.iter().flat_map(|p| p["targets"].as_array().into_iter().flatten());
    targets.map(|t| t["expr"].as_str().expect("expr").to_owned()).collect()
}

/// The `jwk_rotator_...` names in a PromQL expression.
fn names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("jwk_rotator_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

#[test]
fn every_metric_the_dashboard_reads_is_exported() {
    let exported = exported(&populated());
    assert!(exported.contains("jwk_rotator_runs_total"), "counters carry _total: {exported:?}");
    let queries = queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for expr in &queries {
        let names = names_in(expr);
        assert!(!names.is_empty(), "a query that reads no jwk-rotator metric: {expr}");
        for name in names {
            assert!(
                exported.contains(&name),
                "{name} (in `{expr}`) is not exported; the worker has {exported:?}"
            );
        }
    }
}

/// What the dashboard is for: days left, stage counts, last success, failures, alert
/// deliveries and certificate expiry each have a query.
#[test]
fn the_dashboard_shows_what_an_operator_looks_for() {
    let all = queries().join("\n");
    for needed in [
        "jwk_rotator_key_expiration_timestamp_seconds{stage=\"current\"}",
        "count by (key_set, stage) (jwk_rotator_key_expiration_timestamp_seconds)",
        "jwk_rotator_last_success_timestamp_seconds",
        "jwk_rotator_runs_total{outcome=\"failure\"}",
        "jwk_rotator_alert_deliveries_total",
        "jwk_rotator_admin_certificate_expiration_timestamp_seconds",
        "jwk_rotator_next_rotation_timestamp_seconds",
    ] {
        assert!(all.contains(needed), "no query reads {needed}");
    }
}

#[test]
fn names_are_read_out_of_an_expression() {
    assert_eq!(
        names_in("sum(increase(jwk_rotator_runs_total{a=\"b\"}[1d])) / jwk_rotator_x_seconds"),
        ["jwk_rotator_runs_total", "jwk_rotator_x_seconds"]
    );
}
