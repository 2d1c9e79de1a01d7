//! The worker loop in paused time: cron ticks across DST, no overlap, retries, shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Europe::Oslo;

use super::*;
use crate::record::Stage;

/// Lets paused time pass until the worker's clock reads `until`.
async fn pass_until(worker: &Worker, until: &str) {
    let left = (at(until) - worker.clock.now()).to_std().unwrap();
    tokio::time::sleep(left).await;
}

#[tokio::test(start_paused = true)]
async fn worker_ticks_at_cron_times_across_oslo_dst() {
    let setup = Setup::new(
        Arc::new(MemoryStore::new()),
        schedule("30 2 * * *", "Europe/Oslo", ""),
        "2026-03-20T12:00:00Z",
    );
    let worker = setup.build();
    let (stop, handle) = spawn(&worker);
    pass_until(&worker, "2026-11-05T12:00:00Z").await;
    stop.send(()).unwrap();
    handle.await.unwrap();

    let runs = worker.history();
    assert!(runs.iter().all(|r| r.ok && r.attempt == 0), "{runs:?}");
    let local: Vec<_> = runs.iter().map(|r| r.started.with_timezone(&Oslo).naive_local()).collect();
    let days: Vec<NaiveDate> = local.iter().map(|t| t.date()).collect();
    let first = NaiveDate::from_ymd_opt(2026, 3, 21).unwrap();
    let last = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();
    let want: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    assert_eq!(days, want, "one run a day: none doubled, none skipped");
    let spring = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
    for t in &local {
        // 02:30 does not exist on the spring-forward day: the run comes at 03:00, after the gap.
        let expected = if t.date() == spring { "03:00:00" } else { "02:30:00" };
        assert_eq!(t.time(), expected.parse::<NaiveTime>().unwrap(), "run at {t}");
    }
    // The fall-back day, 2026-10-25, has 02:30 twice; the run came once, at the first.
    let fall: Vec<_> = runs.iter().filter(|r| r.started.date_naive().to_string() == "2026-10-25").collect();
    assert_eq!(fall.len(), 1);
    assert_eq!(fall[0].started, at("2026-10-25T00:30:00Z"));
}

#[tokio::test(start_paused = true)]
async fn a_tick_during_a_run_is_skipped_and_counted() {
    let mut setup =
        Setup::new(Arc::new(MemoryStore::new()), schedule("0 * * * *", "UTC", ""), "2026-11-21T00:30:00Z");
    // Every run writes the outputs at least once (the first one twice): 100 minutes each, and
    // the ticks come hourly.
    setup.publisher =
        Arc::new(SlowPublisher { inner: MemoryPublisher::default(), delay: Duration::from_secs(100 * 60) });
    let worker = setup.build();
    let (stop, handle) = spawn(&worker);
    pass_until(&worker, "2026-11-22T00:30:00Z").await;
    stop.send(()).unwrap();
    handle.await.unwrap();

    let runs = worker.history();
    for pair in runs.windows(2) {
        assert!(pair[1].started >= pair[0].finished, "runs overlap: {pair:?}");
    }
    // Runs at 01:00 (until 04:20), then 05:00, 07:00, ... 21:00; the one at 23:00 is still
    // going at the end. The other 13 of the day's 24 ticks came during a run.
    let starts: Vec<String> = runs.iter().map(|r| r.started.format("%H:%M").to_string()).collect();
    assert_eq!(
        starts,
        ["01:00", "05:00", "07:00", "09:00", "11:00", "13:00", "15:00", "17:00", "19:00", "21:00"]
    );
    assert_eq!(worker.metrics.skipped_ticks.get(), 13);
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_is_retried_with_backoff_before_the_next_tick() {
    let store = Arc::new(SwitchStore::new());
    store.fail_first.store(2, Ordering::SeqCst);
    let extra = "retries = 3\nretry_backoff = \"10m\"";
    let setup = Setup::new(store.clone(), schedule("0 6 * * *", "UTC", extra), "2026-11-21T05:59:00Z");
    let worker = setup.build();
    let (stop, handle) = spawn(&worker);

    pass_until(&worker, "2026-11-21T06:05:00Z").await;
    let (healthy, body) = worker.health.verdict(worker.clock.now());
    assert!(!healthy, "unhealthy after a failed run: {body}");
    assert!(body["reasons"][0].as_str().unwrap().contains("store unreachable"), "{body}");

    pass_until(&worker, "2026-11-22T07:00:00Z").await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    let runs: Vec<_> = worker.history().iter().map(|r| (r.started, r.attempt, r.ok)).collect();
    let want = [
        (at("2026-11-21T06:00:00Z"), 0, false),
        (at("2026-11-21T06:10:00Z"), 1, false),
        (at("2026-11-21T06:30:00Z"), 2, true),
        (at("2026-11-22T06:00:00Z"), 0, true),
    ];
    assert_eq!(runs, want);
    assert!(worker.health.verdict(worker.clock.now()).0, "healthy again after a successful run");
    assert_eq!(store.inner.records().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_limit_and_the_next_tick_runs() {
    let store = Arc::new(SwitchStore::new());
    store.broken.store(true, Ordering::SeqCst);
    let extra = "retries = 2\nretry_backoff = \"1h\"";
    let setup = Setup::new(store.clone(), schedule("0 6 * * *", "UTC", extra), "2026-11-21T05:59:00Z");
    let worker = setup.build();
    let (stop, handle) = spawn(&worker);
    pass_until(&worker, "2026-11-22T05:59:00Z").await;
    store.broken.store(false, Ordering::SeqCst);
    pass_until(&worker, "2026-11-22T06:01:00Z").await;
    stop.send(()).unwrap();
    handle.await.unwrap();
    let runs: Vec<_> = worker.history().iter().map(|r| (r.started, r.attempt, r.ok)).collect();
    let want = [
        (at("2026-11-21T06:00:00Z"), 0, false),
        (at("2026-11-21T07:00:00Z"), 1, false),
        (at("2026-11-21T09:00:00Z"), 2, false),
        (at("2026-11-22T06:00:00Z"), 0, true),
    ];
    assert_eq!(runs, want);
}

#[tokio::test(start_paused = true)]
async fn shutdown_mid_run_finishes_the_step_under_way_and_begins_no_other() {
    let store = Arc::new(MemoryStore::new());
    let publisher = MemoryPublisher::default();
    let mut setup = Setup::new(
        store.clone(),
        schedule("0 6 * * *", "UTC", "run_at_start = true\nshutdown_timeout = \"1m\""),
        "2026-11-21T12:00:00Z",
    );
    setup.publisher = Arc::new(SlowPublisher { inner: publisher.clone(), delay: Duration::from_secs(10) });
    setup.targets = targets(&["a-TEST", "b-TEST", "c-TEST"]);
    setup.parallelism = 1;
    let worker = setup.build();
    let (stop, handle) = spawn(&worker);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let signalled = tokio::time::Instant::now();
    stop.send(()).unwrap();
    handle.await.unwrap();
    let took = signalled.elapsed();
    assert!(took <= Duration::from_secs(60), "shutdown took {took:?}");

    // The run's first pass wrote every key set's first key before the stop (a run waits for
    // racing writers once, after all its new keys); after the stop each key set finishes that
    // step and begins no other: only a-TEST, whose publish step was under way, is marked
    // published.
    let records = store.records();
    let stages: Vec<(String, Stage, bool)> =
        records.iter().map(|r| (r.kid.key_set().to_string(), r.stage, r.published.is_some())).collect();
    let want = [("a-TEST", true), ("b-TEST", false), ("c-TEST", false)]
        .map(|(set, published)| (set.to_owned(), Stage::Current, published));
    assert_eq!(stages, want, "{records:?}");
    let published: Vec<String> = publisher.sets.lock().unwrap().keys().map(ToString::to_string).collect();
    assert_eq!(published, ["a-TEST", "b-TEST", "c-TEST"], "each key set in progress writes its outputs");
    assert!(worker.engine.stop().is_stopped());
}

#[tokio::test(start_paused = true)]
async fn jitter_delays_runs_within_its_bound_and_shutdown_does_not_wait_for_it() {
    let store = Arc::new(MemoryStore::new());
    seed(store.clone(), &["a-TEST"], "2026-11-01T06:00:00Z").await;
    let setup = Setup::new(store, schedule("0 6 * * *", "UTC", "jitter = \"30m\""), "2026-11-21T05:00:00Z");
    let worker = setup.build();
    let (stop, handle) = spawn(&worker);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let metrics = worker.metrics.encode();
    assert!(
        metrics.contains("jwk_rotator_key_expiration_timestamp_seconds{key_set=\"a-TEST\""),
        "evaluated at start: {metrics}"
    );
    pass_until(&worker, "2026-11-24T05:00:00Z").await;
    let runs = worker.history();
    assert_eq!(runs.len(), 3);
    for r in &runs {
        let tick = r.started.date_naive().and_hms_opt(6, 0, 0).unwrap().and_utc();
        assert!(r.started >= tick && r.started <= tick + chrono::TimeDelta::minutes(30), "{r:?}");
    }
    stop.send(()).unwrap();
    handle.await.unwrap();

    // Stopped during a run's jitter wait: the worker does not sit out the rest of it.
    let setup = Setup::new(
        Arc::new(MemoryStore::new()),
        schedule("0 6 * * *", "UTC", "jitter = \"6h\""),
        "2026-11-21T05:59:00Z",
    );
    let worker = setup.build();
    let (stop, handle) = spawn(&worker);
    pass_until(&worker, "2026-11-21T06:00:01Z").await;
    let signalled = tokio::time::Instant::now();
    stop.send(()).unwrap();
    handle.await.unwrap();
    assert!(signalled.elapsed() <= Duration::from_secs(2), "{:?}", signalled.elapsed());
}
