//! `/metrics` and `/healthz` over HTTP, and the findings `status` and the worker share.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::findings::{FindingKind, Severity};
use crate::status::StatusReport;
use crate::worker::server::{self, ServerState};

/// Serves the worker's endpoint on a free local port; returns its base URL.
async fn serve(worker: &Arc<Worker>) -> String {
    let state = ServerState::of(worker);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(server::serve(listener, state, std::future::pending()));
    base
}

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A small parser of the Prometheus/OpenMetrics text format: every sample line must belong to
/// a family declared by `# TYPE`, labels must be `name="value"`, values must be numbers, and
/// the exposition must end with `# EOF`.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            families.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP ") || line.starts_with("# UNIT ") || line == "# EOF", "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
            None => (series, BTreeMap::new()),
        };
        let family = name.strip_suffix("_total").filter(|f| families.get(*f).is_some_and(|k| k == "counter"));
        let family = family.unwrap_or(name);
        assert!(families.contains_key(family), "sample {name} without # TYPE");
        assert!(name.starts_with("jwk_rotator_"), "{name}");
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap();
        let end = after.find('"').unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "label {name}");
        out.insert(name.to_owned(), after[..end].to_owned());
        rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
    }
    out
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> =
        labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let found: Vec<f64> = samples.iter().filter(|(n, l, _)| n == name && *l == want).map(|s| s.2).collect();
    assert_eq!(found.len(), 1, "{name}{labels:?} in {samples:?}");
    found[0]
}

fn ts(s: &str) -> f64 {
    at(s).timestamp() as f64
}

#[tokio::test]
async fn metrics_parse_and_hold_the_series_after_a_run() {
    let store = Arc::new(MemoryStore::new());
    seed(store.clone(), &["a-TEST"], "2026-01-10T06:00:00Z").await;
    let worker = Setup::new(store, schedule("0 6 * * *", "UTC", ""), "2026-12-20T12:00:00Z").build();
    assert_eq!(worker.run_now().await, Some(true));
    let base = serve(&worker).await;
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let samples = parse_exposition(&response.text().await.unwrap());

    let old = [("key_set", "a-TEST"), ("kid", "a-TEST.2026-01-10"), ("stage", "current")];
    let new = [("key_set", "a-TEST"), ("kid", "a-TEST.2026-12-20"), ("stage", "pending")];
    let expiry = "jwk_rotator_key_expiration_timestamp_seconds";
    assert_eq!(value(&samples, expiry, &old), ts("2027-01-10T00:00:00Z"));
    assert_eq!(value(&samples, expiry, &new), ts("2027-12-20T00:00:00Z"));
    let created = "jwk_rotator_key_creation_timestamp_seconds";
    assert_eq!(value(&samples, created, &old), ts("2026-01-10T06:00:00Z"));
    assert_eq!(value(&samples, created, &new), ts("2026-12-20T12:00:00Z"));
    let set = [("key_set", "a-TEST")];
    assert_eq!(
        value(&samples, "jwk_rotator_next_rotation_timestamp_seconds", &set),
        ts("2026-04-10T06:00:00Z")
    );
    assert_eq!(
        value(&samples, "jwk_rotator_last_success_timestamp_seconds", &[]),
        ts("2026-12-20T12:00:00Z")
    );
    assert_eq!(value(&samples, "jwk_rotator_next_run_timestamp_seconds", &[]), ts("2026-12-21T06:00:00Z"));
    assert_eq!(value(&samples, "jwk_rotator_schedule_period_seconds", &[]), 86_400.0);
    assert_eq!(value(&samples, "jwk_rotator_runs_total", &[("outcome", "success")]), 1.0);
    assert_eq!(value(&samples, "jwk_rotator_runs_total", &[("outcome", "failure")]), 0.0);
    assert_eq!(value(&samples, "jwk_rotator_rotations_total", &set), 1.0);
    assert_eq!(value(&samples, "jwk_rotator_findings", &[("severity", "warning")]), 1.0);
    assert_eq!(value(&samples, "jwk_rotator_findings", &[("severity", "critical")]), 0.0);
    assert_eq!(value(&samples, "jwk_rotator_store_requests_total", &[("operation", "lock")]), 1.0);
    assert_eq!(value(&samples, "jwk_rotator_store_requests_total", &[("operation", "create")]), 1.0);
    assert!(value(&samples, "jwk_rotator_store_requests_total", &[("operation", "load")]) >= 2.0);
    assert!(!samples.iter().any(|(n, ..)| n == "jwk_rotator_store_errors_total"), "no store errors");
}

#[tokio::test]
async fn healthz_turns_503_after_a_failed_run_and_back_to_200() {
    let store = Arc::new(SwitchStore::new());
    let worker = Setup::new(store.clone(), schedule("0 6 * * *", "UTC", ""), "2026-11-21T12:00:00Z").build();
    let base = serve(&worker).await;
    let get = || async { reqwest::get(format!("{base}/healthz")).await.unwrap() };
    worker.evaluate().await;
    assert_eq!(get().await.status(), 200, "healthy before the first run");

    store.broken.store(true, Ordering::SeqCst);
    assert_eq!(worker.run_now().await, Some(false));
    let response = get().await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert!(body["reasons"][0].as_str().unwrap().contains("failed: store unreachable (test)"), "{body}");
    let metrics = worker.metrics.encode();
    assert!(metrics.contains("jwk_rotator_store_errors_total{operation=\"lock\"} 1"), "{metrics}");

    store.broken.store(false, Ordering::SeqCst);
    assert_eq!(worker.run_now().await, Some(true));
    let response = get().await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["reasons"].as_array().unwrap().len(), 0);
}

/// Until the first evaluation, neither endpoint answers as if there were no keys.
#[tokio::test]
async fn both_endpoints_answer_503_until_the_first_evaluation() {
    let store = Arc::new(MemoryStore::new());
    seed(store.clone(), &["a-TEST"], "2026-11-01T06:00:00Z").await;
    let worker = Setup::new(store, schedule("0 6 * * *", "UTC", ""), "2026-11-21T12:00:00Z").build();
    let base = serve(&worker).await;
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 503);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("first evaluation") && !text.contains("jwk_rotator_"), "{text}");
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 503);
    let body: serde_json::Value = serde_json::from_str(&health.text().await.unwrap()).unwrap();
    assert!(body["reasons"][0].as_str().unwrap().contains("first evaluation"), "{body}");

    worker.evaluate().await;
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let samples = parse_exposition(&metrics.text().await.unwrap());
    let key = [("key_set", "a-TEST"), ("kid", "a-TEST.2026-11-01"), ("stage", "current")];
    assert_eq!(
        value(&samples, "jwk_rotator_key_expiration_timestamp_seconds", &key),
        ts("2027-11-01T00:00:00Z")
    );
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200);
}

/// The status page answers 503 until the first evaluation too, then the page of the last one,
/// with a CSP that allows nothing but its own style, and its next event.
#[tokio::test]
async fn the_page_answers_after_the_first_evaluation_with_its_csp() {
    let store = Arc::new(MemoryStore::new());
    seed(store.clone(), &["a-TEST"], "2026-11-01T06:00:00Z").await;
    let worker = Setup::new(store, schedule("0 6 * * *", "UTC", ""), "2026-11-21T12:00:00Z").build();
    let base = serve(&worker).await;
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.text().await.unwrap().contains("first evaluation"));

    worker.evaluate().await;
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap().to_owned();
    assert_eq!(csp, crate::status::page::content_security_policy());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("a-TEST.2026-11-01"), "{html}");
    // Made 2026-11-01, rotate_after 90 days: the next key is due on 2027-01-30.
    assert!(html.contains("generate a-TEST.2027-01-30 as pending on 2027-01-30"), "{html}");
    assert!(html.contains("next run at 2026-11-22 06:00 UTC"), "{html}");
}

#[tokio::test(start_paused = true)]
async fn status_and_the_worker_report_the_same_findings() {
    let store = Arc::new(SwitchStore::new());
    seed(store.clone(), &["old-TEST"], "2025-12-01T06:00:00Z").await;
    seed(store.clone(), &["aging-TEST"], "2026-01-10T06:00:00Z").await;
    seed(store.clone(), &["fresh-TEST"], "2026-12-01T06:00:00Z").await;
    let mut setup = Setup::new(store.clone(), schedule("0 6 * * *", "UTC", ""), "2026-12-20T12:00:00Z");
    setup.targets = targets(&["old-TEST", "aging-TEST", "fresh-TEST", "empty-TEST"]);
    let worker = setup.build();
    let now = worker.clock.now();

    let status = StatusReport::gather(&worker.engine, &worker.targets, now.into()).await.findings;
    let alerted = worker.evaluate().await;
    assert_eq!(status, alerted);
    let kinds: Vec<(String, FindingKind, Severity)> =
        alerted.iter().map(|f| (f.key_set.to_string(), f.kind, f.severity)).collect();
    let want = [
        ("old-TEST", FindingKind::Expired, Severity::Critical),
        ("old-TEST", FindingKind::RotationOverdue, Severity::Warning),
        ("aging-TEST", FindingKind::Expiring, Severity::Warning),
        ("aging-TEST", FindingKind::RotationOverdue, Severity::Warning),
        ("empty-TEST", FindingKind::NoCurrentKey, Severity::Critical),
    ];
    assert_eq!(kinds, want.map(|(s, k, v)| (s.to_owned(), k, v)));

    store.broken.store(true, Ordering::SeqCst);
    let status = StatusReport::gather(&worker.engine, &worker.targets, now.into()).await.findings;
    let alerted = worker.evaluate().await;
    assert_eq!(status, alerted);
    assert!(alerted.iter().all(|f| f.severity == Severity::Unknown && f.kind == FindingKind::StoreError));
    assert_eq!(alerted.len(), 4);
    let metrics = worker.metrics.encode();
    assert!(metrics.contains("jwk_rotator_findings{severity=\"unknown\"} 4"), "{metrics}");
    let kept = "jwk_rotator_key_expiration_timestamp_seconds{key_set=\"aging-TEST\"";
    assert!(metrics.contains(kept), "key series outlive an unreachable store: {metrics}");
}
