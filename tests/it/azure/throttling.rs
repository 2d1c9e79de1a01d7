//! Throttling: 429s on a share of requests are retried (with and without `Retry-After`) and
//! the run completes; a key set that is always throttled fails alone, with a clear message.

use std::time::Instant;

use jwk_rotator::engine::RunError;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::Promotion;
use jwk_rotator::store::StoreError;

use super::fake::Throttle;
use super::*;

#[tokio::test]
async fn vault_a_rotation_completes_when_every_third_request_is_throttled() {
    let vault = FakeVault::start("throttle-share").await;
    vault.set_throttle(Throttle { every: 3, only: None, retry_after: Some(0) });
    let clients = [client("testklient", &["TEST", "PROD"], Some("{client}-{env}-jwk"), Promotion::Manual)];
    let store = store_with(&vault, &clients, "");
    let (engine, _) = engine(store.clone());
    let t = targets(&clients);
    run_ok(&engine, &t, t0(), &Request::default()).await;
    run_ok(&engine, &t, t0() + days(91), &Request::default()).await;
    run_ok(&engine, &t, t0() + days(92), &promote()).await;
    let log = vault.log();
    let throttled = log.iter().filter(|l| l.starts_with("429 ")).count();
    assert!(throttled >= 10, "{throttled} throttled of {}", log.len());
    let recs = records(&*store, &set("testklient-PROD")).await;
    assert_eq!(stages(&recs).iter().map(|(_, s)| *s).collect::<Vec<_>>(), [Stage::Previous, Stage::Current]);
}

#[tokio::test]
async fn vault_retry_after_from_the_vault_is_honoured() {
    let vault = FakeVault::start("throttle-wait").await;
    let clients = [client("testklient", &["TEST"], None, Promotion::Manual)];
    let store = store_with(&vault, &clients, "");
    records(&*store, &set("testklient-TEST")).await; // the challenge is done
    vault.set_throttle(Throttle { every: 2, only: None, retry_after: Some(1) });
    let start = Instant::now();
    records(&*store, &set("testklient-TEST")).await;
    records(&*store, &set("testklient-TEST")).await;
    assert!(start.elapsed().as_millis() >= 1000, "waited {:?}", start.elapsed());
    assert_eq!(vault.log().iter().filter(|l| l.starts_with("429 ")).count(), 1);
}

#[tokio::test]
async fn vault_a_key_set_that_is_always_throttled_fails_alone_with_a_clear_message() {
    let vault = FakeVault::start("throttle-always").await;
    vault.set_throttle(Throttle { every: 1, only: Some("jwk-klientb-".into()), retry_after: None });
    let clients = [
        client("klienta", &["TEST"], Some("{client}-{env}-jwk"), Promotion::Manual),
        client("klientb", &["TEST"], Some("{client}-{env}-jwk"), Promotion::Manual),
    ];
    let (engine, published) = engine(store_with(&vault, &clients, ""));
    let reports = engine.run(&targets(&clients), t0(), &Request::default()).await.expect("run");
    assert!(reports[0].ok(), "{:?}", reports[0].error);
    let error = reports[1].error.clone().expect("klientb fails");
    assert!(matches!(error, RunError::Store(StoreError::Throttled { .. })), "{error:?}");
    let error = error.to_string();
    assert!(error.contains("kept throttling") && error.contains("429"), "{error}");
    assert!(error.contains("jwk-klientb-TEST--2026-11-21"), "names the secret: {error}");
    assert!(published.sets.lock().expect("lock").contains_key(&set("klienta-TEST")));
    assert!(vault.versions("klientb-TEST-jwk").is_empty(), "no consumer secret without a key");
}
