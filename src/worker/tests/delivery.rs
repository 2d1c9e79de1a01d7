//! Alert delivery to in-process webhook receivers.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

use super::*;
use crate::config::worker::WebhookConfig;
use crate::worker::webhook::WebhookAlerter;

type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// An HTTP server on a free local port that keeps every JSON body posted to `/{name}`.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/{name}",
            axum::routing::post(
                |State(r): State<Received>, Path(name): Path<String>, body: Bytes| async move {
                    r.lock().unwrap().push((name, serde_json::from_slice(&body).unwrap()));
                    StatusCode::OK
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

fn webhook(url: &str, format: &str) -> Arc<dyn Alerter> {
    let text = format!("url = \"{url}\"\nformat = \"{format}\"\ntimeout = \"2s\"\nretries = 1");
    let config: WebhookConfig = toml::from_str(&text).unwrap();
    Arc::new(WebhookAlerter::new(&config).unwrap())
}

/// A store whose key of `a-TEST` was made on 2026-01-10 and never rotated.
async fn aging_store() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    seed(store.clone(), &["a-TEST"], "2026-01-10T06:00:00Z").await;
    store
}

fn bodies(received: &Received, name: &str) -> Vec<Value> {
    received.lock().unwrap().iter().filter(|(n, _)| n == name).map(|(_, b)| b.clone()).collect()
}

#[tokio::test]
async fn webhooks_get_slack_teams_and_json_payloads_once() {
    let (base, received) = receiver().await;
    // 2026-12-20: the key expires 2027-01-10, in 20 days (WARNING), and is overdue for rotation.
    let mut setup = Setup::new(aging_store().await, schedule("0 6 * * *", "UTC", ""), "2026-12-20T12:00:00Z");
    setup.sinks = vec![
        Arc::new(LogAlerter),
        webhook(&format!("{base}/slack"), "slack"),
        webhook(&format!("{base}/teams"), "teams"),
        webhook(&format!("{base}/json"), "json"),
    ];
    let worker = setup.build();
    let found = worker.evaluate().await;
    assert_eq!(found.len(), 2, "{found:?}");

    let slack = bodies(&received, "slack");
    assert_eq!(slack.len(), 1);
    let text = slack[0]["text"].as_str().unwrap();
    assert!(text.contains("WARNING") && text.contains("2 alert(s) for 1 key set(s)"), "{text}");
    let lines: Vec<&str> = slack[0]["blocks"].as_array().unwrap()[1..]
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("a-TEST.2026-01-10") && l.contains("2027-01-10") && l.contains("in 20 days")),
        "{lines:?}"
    );

    let teams = bodies(&received, "teams");
    let card = &teams[0]["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    let body = card["content"]["body"].as_array().unwrap();
    assert!(body.iter().any(|b| b["text"].as_str().unwrap().contains("jwk-rotator rotate")), "{body:?}");

    let json = bodies(&received, "json");
    assert_eq!(json[0]["source"], "jwk-rotator");
    assert_eq!(json[0]["worst"], "WARNING");
    let first = &json[0]["notifications"][0];
    assert_eq!(first["event"], "appeared");
    assert_eq!(first["finding"]["key_set"], "a-TEST");
    assert_eq!(first["finding"]["kid"], "a-TEST.2026-01-10");
    assert_eq!(first["finding"]["severity"], "WARNING");
    assert_eq!(first["finding"]["kind"], "expiring");
    assert_eq!(first["finding"]["days_left"], 20);

    worker.evaluate().await;
    assert_eq!(received.lock().unwrap().len(), 3, "an unchanged finding is not sent again");
}

#[tokio::test(start_paused = true)]
async fn dedupe_and_reminders_over_simulated_days_in_the_worker() {
    let sent: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    struct Recorder(Arc<Mutex<Vec<(String, String)>>>);
    #[async_trait]
    impl Alerter for Recorder {
        fn name(&self) -> String {
            "recorder".to_owned()
        }
        async fn deliver(
            &self,
            batch: &[super::super::alerts::Notification],
        ) -> Result<(), super::super::alerts::DeliveryError> {
            let mut sent = self.0.lock().unwrap();
            sent.extend(batch.iter().map(|n| (format!("{:?}", n.event), n.finding.kind.as_str().to_owned())));
            Ok(())
        }
    }
    let store = aging_store().await;
    // Manual promotion: the worker makes a pending key on day 90 that nobody promotes.
    let mut setup = Setup::new(store, schedule("0 6 * * *", "UTC", ""), "2026-01-11T00:00:00Z");
    setup.sinks = vec![Arc::new(Recorder(sent.clone()))];
    setup.check_every = Duration::from_secs(3600);
    let worker = setup.build();
    let (stop, handle) = spawn(&worker);
    tokio::time::sleep(Duration::from_secs(120 * 86_400)).await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    // 2026-04-10 the pending key is made; publish_ahead 7d + alert_grace 2d later it is
    // reported, then reminded daily (reminder 1d) until the end, 2026-05-11.
    let sent = sent.lock().unwrap().clone();
    let pending: Vec<&(String, String)> = sent.iter().filter(|(_, k)| k == "pending-not-promoted").collect();
    assert_eq!(pending[0].0, "Appeared");
    assert!(pending[1..].iter().all(|(e, _)| e == "Reminder"), "{sent:?}");
    assert!((20..=23).contains(&pending.len()), "one a day, not one an hour: {}", pending.len());
    assert!(sent.iter().all(|(_, k)| k == "pending-not-promoted"), "{sent:?}");
}

#[tokio::test]
async fn a_receiver_that_is_down_does_not_stop_rotation() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let store = aging_store().await;
    let mut setup = Setup::new(store.clone(), schedule("0 6 * * *", "UTC", ""), "2026-12-20T12:00:00Z");
    setup.sinks = vec![Arc::new(LogAlerter), webhook(&url, "slack")];
    let worker = setup.build();
    assert_eq!(worker.run_now().await, Some(true), "the run succeeds");
    let stages: Vec<_> = store.records().iter().map(|r| r.stage).collect();
    assert_eq!(
        stages,
        [crate::record::Stage::Current, crate::record::Stage::Pending],
        "the rotation happened"
    );
    let text = worker.metrics.encode();
    assert!(
        text.contains("jwk_rotator_alert_deliveries_total{sink=\"slack:127.0.0.1\",outcome=\"failed\"} 1"),
        "{text}"
    );
}

/// An event sink that can deliver nothing: the run goes on, and `/metrics` counts the failed
/// deliveries by sink and the failed audit log writes.
#[tokio::test]
async fn failed_event_deliveries_and_audit_writes_are_counted_and_never_stop_a_run() {
    use crate::config::events::EventWebhookConfig;
    use crate::events::{AuditLog, EventWebhook, Events, Origin};
    let metrics = Arc::new(Metrics::new(crate::testing::at("2026-01-05T06:00:00Z")));
    // Port 9 (discard) on the loopback: nothing listens there, so every attempt fails.
    let config: EventWebhookConfig =
        toml::from_str("name = \"down\"\nurl = \"http://127.0.0.1:9/hook\"\nretries = 1\ntimeout = \"1s\"")
            .unwrap();
    let hook = EventWebhook::new(config.settings().unwrap())
        .unwrap()
        .with_backoff(std::time::Duration::from_millis(1));
    let dir = tempfile::tempdir().unwrap();
    let audit = AuditLog::new(dir.path().join("no-such-dir").join("audit.jsonl"));
    let events = Events::new(Some(audit), vec![hook], metrics.events.clone());
    let origin = Origin { source: "jwk-rotator/test".to_owned(), actor: "worker".to_owned() };
    let store = Arc::new(MemoryStore::new());
    let engine = crate::testing::engine(store.clone()).0.with_events(Arc::new(events), origin);
    let targets = crate::testing::targets(&["a-TEST"], &crate::policy::Policy::default());
    let at = crate::testing::at("2026-01-05T06:00:00Z");
    let reports = engine.run(&targets, at, &crate::planner::Request::default()).await.unwrap();
    assert!(reports[0].ok(), "{:?}", reports[0].error);
    assert_eq!(reports[0].events.len(), 2, "generated and published");
    assert_eq!(store.records().len(), 1);
    let text = metrics.encode();
    assert!(
        text.contains("jwk_rotator_event_deliveries_total{sink=\"down\",outcome=\"failed\"} 2"),
        "{text}"
    );
    assert!(text.contains("jwk_rotator_audit_write_failures_total 1"), "{text}");
}
