//! One suite, every store: lifecycle, idempotence, failures and crash consistency through the
//! engine. Each store gets the same tests from `store_suite!`.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jwk_rotator::engine::RunError;
use jwk_rotator::engine::{Engine, SetReport};
use jwk_rotator::keygen::FailingGenerator;
use jwk_rotator::kid::Kid;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::Target;
use jwk_rotator::policy::{Policy, Promotion};
use jwk_rotator::publish::{MemoryPublisher, PublishedSet};
use jwk_rotator::record::{KeyRecord, Stage};
use jwk_rotator::store::flaky::FlakyStore;
use jwk_rotator::store::{FileStore, KeyStore, MemoryStore, Opened};

use crate::support::{at, days, engine, engine_over, policy, targets};

/// Something that hands out one store, again and again (the same keys each time), with its
/// consumer secrets where it has them.
pub trait Backend: Send + Sync {
    fn open(&self) -> Opened;
}

pub struct Memory(MemoryStore);

impl Backend for Memory {
    fn open(&self) -> Opened {
        Opened::keys_only(Arc::new(self.0.clone()))
    }
}

pub struct Files(tempfile::TempDir);

impl Backend for Files {
    fn open(&self) -> Opened {
        Opened::keys_only(Arc::new(FileStore::new(self.0.path().join("keys"))))
    }
}

pub fn memory() -> Box<dyn Backend> {
    Box::new(Memory(MemoryStore::new()))
}

pub fn files() -> Box<dyn Backend> {
    Box::new(Files(tempfile::tempdir().expect("temp dir")))
}

/// Instantiates every suite test for one backend; `$make` may `.await`.
#[macro_export]
macro_rules! store_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test]
            async fn lifecycle_after_delay() {
                $crate::store_suite::lifecycle_after_delay($make).await
            }
            #[tokio::test]
            async fn manual_promotion_waits_for_promote() {
                $crate::store_suite::manual_promotion_waits_for_promote($make).await
            }
            #[tokio::test]
            async fn force_twice_on_one_day() {
                $crate::store_suite::force_twice_on_one_day($make).await
            }
            #[tokio::test]
            async fn failed_generation_keeps_the_current_key() {
                $crate::store_suite::failed_generation_keeps_the_current_key($make).await
            }
            #[tokio::test]
            async fn crash_after_each_write_converges() {
                $crate::store_suite::crash_after_each_write_converges(|| async { $make }).await
            }
        }
    };
}

store_suite!(memory_store, memory());
store_suite!(file_store, files());

pub type State = BTreeMap<Kid, Stage>;

pub fn state(store: &[KeyRecord]) -> State {
    store.iter().map(|r| (r.kid.clone(), r.stage)).collect()
}

pub async fn records(store: &Arc<dyn KeyStore>, targets: &[Target]) -> Vec<KeyRecord> {
    let sets: Vec<_> = targets.iter().map(|t| t.key_set.clone()).collect();
    let loaded = store.load(&sets).await.expect("load");
    loaded.into_values().flat_map(|r| r.expect("key set loads")).collect()
}

async fn run(engine: &Engine, targets: &[Target], now: DateTime<Utc>, request: &Request) -> Vec<SetReport> {
    engine.run(targets, now, request).await.expect("run")
}

fn assert_ok(reports: &[SetReport]) {
    for r in reports {
        assert!(r.ok(), "{}: {:?}", r.key_set, r.error);
    }
}

fn kids(recs: &[KeyRecord], stage: Stage) -> Vec<String> {
    recs.iter().filter(|r| r.stage == stage).map(|r| r.kid.to_string()).collect()
}

/// The outputs equal the store's published keys, current first, with nothing private.
pub async fn assert_outputs_follow_store(
    store: &Arc<dyn KeyStore>,
    publisher: &MemoryPublisher,
    targets: &[Target],
) {
    for t in targets {
        let recs = records(store, std::slice::from_ref(t)).await;
        let sets = publisher.sets.lock().expect("publisher");
        let Some(got) = sets.get(&t.key_set) else { panic!("{} never published", t.key_set) };
        let expected = PublishedSet::from_records(&t.key_set, &recs, &t.policy, got.at);
        assert_eq!(got, &expected, "{}", t.key_set);
        if let Some((first, _)) = got.keys.first() {
            let current = recs.iter().find(|r| r.stage == Stage::Current).expect("current");
            assert_eq!(first.kid, current.kid);
        }
        assert!(!got.jwks_json().contains("\"d\""));
    }
}

pub async fn lifecycle_after_delay(backend: Box<dyn Backend>) {
    let opened = backend.open();
    let store = opened.keys.clone();
    let (engine, publisher) = engine_over(opened);
    let targets = targets(&["testklient-TEST", "other-PROD"], &policy(Promotion::AfterDelay));
    let t0 = at("2026-11-21T06:00:00Z");

    assert_ok(&run(&engine, &targets, t0, &Request::default()).await);
    let recs = records(&store, &targets[..1]).await;
    assert_eq!(kids(&recs, Stage::Current), ["testklient-TEST.2026-11-21"]);
    assert!(recs[0].published.is_some());
    assert_outputs_follow_store(&store, &publisher, &targets).await;

    let again = run(&engine, &targets, t0, &Request::default()).await;
    assert!(again.iter().all(|r| r.plan.as_ref().is_some_and(|p| p.is_empty())), "second run did something");
    assert_eq!(records(&store, &targets[..1]).await, recs, "second run changed the store");

    assert_ok(&run(&engine, &targets, t0 + days(90), &Request::default()).await);
    let recs = records(&store, &targets[..1]).await;
    assert_eq!(kids(&recs, Stage::Pending), ["testklient-TEST.2027-02-19"]);
    assert_outputs_follow_store(&store, &publisher, &targets).await;

    assert_ok(&run(&engine, &targets, t0 + days(96), &Request::default()).await);
    assert_eq!(kids(&records(&store, &targets[..1]).await, Stage::Pending), ["testklient-TEST.2027-02-19"]);

    assert_ok(&run(&engine, &targets, t0 + days(97), &Request::default()).await);
    let recs = records(&store, &targets[..1]).await;
    assert_eq!(kids(&recs, Stage::Current), ["testklient-TEST.2027-02-19"]);
    assert_eq!(kids(&recs, Stage::Previous), ["testklient-TEST.2026-11-21"]);
    assert_outputs_follow_store(&store, &publisher, &targets).await;

    assert_ok(&run(&engine, &targets, t0 + days(111), &Request::default()).await);
    let recs = records(&store, &targets[..1]).await;
    assert_eq!(kids(&recs, Stage::Retired), ["testklient-TEST.2026-11-21"]);
    assert_outputs_follow_store(&store, &publisher, &targets).await;

    assert_ok(&run(&engine, &targets, t0 + days(141), &Request::default()).await);
    let recs = records(&store, &targets[..1]).await;
    assert_eq!(state(&recs).len(), 1, "retired key purged after retain_retired: {recs:?}");
}

pub async fn manual_promotion_waits_for_promote(backend: Box<dyn Backend>) {
    let opened = backend.open();
    let store = opened.keys.clone();
    let (engine, publisher) = engine_over(opened);
    let targets = targets(&["testklient-PROD"], &Policy::default());
    let t0 = at("2026-11-21T06:00:00Z");
    assert_ok(&run(&engine, &targets, t0, &Request::default()).await);
    assert_ok(&run(&engine, &targets, t0 + days(90), &Request::default()).await);
    assert_ok(&run(&engine, &targets, t0 + days(120), &Request::default()).await);
    let recs = records(&store, &targets).await;
    assert_eq!(kids(&recs, Stage::Pending), ["testklient-PROD.2027-02-19"], "manual mode promoted by itself");

    let promote = Request { promote: true, ..Request::default() };
    assert_ok(&run(&engine, &targets, t0 + days(120), &promote).await);
    let recs = records(&store, &targets).await;
    assert_eq!(kids(&recs, Stage::Current), ["testklient-PROD.2027-02-19"]);
    assert_eq!(kids(&recs, Stage::Previous), ["testklient-PROD.2026-11-21"]);
    assert_outputs_follow_store(&store, &publisher, &targets).await;

    let nothing = run(&engine, &targets, t0 + days(120), &promote).await;
    assert!(matches!(nothing[0].error, Some(RunError::Refused(_))), "{nothing:?}");
}

pub async fn force_twice_on_one_day(backend: Box<dyn Backend>) {
    let opened = backend.open();
    let store = opened.keys.clone();
    let (engine, _) = engine_over(opened.clone());
    let targets = targets(&["testklient-TEST"], &Policy::default());
    let t0 = at("2026-11-21T06:00:00Z");
    let force = Request { force: true, ..Request::default() };
    assert_ok(&run(&engine, &targets, t0, &force).await);
    assert_ok(&run(&engine, &targets, t0, &force).await);
    let recs = records(&store, &targets).await;
    assert_eq!(kids(&recs, Stage::Current), ["testklient-TEST.2026-11-21"]);
    assert_eq!(kids(&recs, Stage::Pending), ["testklient-TEST.2026-11-21-2"]);
    assert_ok(&run(&engine, &targets, t0, &force).await);
    let recs = records(&store, &targets).await;
    assert_eq!(kids(&recs, Stage::Pending), ["testklient-TEST.2026-11-21-3"]);
    assert_eq!(kids(&recs, Stage::Retired), ["testklient-TEST.2026-11-21-2"], "superseded pending retired");
}

pub async fn failed_generation_keeps_the_current_key(backend: Box<dyn Backend>) {
    let opened = backend.open();
    let store = opened.keys.clone();
    let (engine, _) = engine_over(opened.clone());
    let targets = targets(&["testklient-TEST"], &Policy::default());
    let t0 = at("2026-11-21T06:00:00Z");
    assert_ok(&run(&engine, &targets, t0, &Request::default()).await);
    let before = records(&store, &targets).await;
    let failing =
        Engine::over(opened, Arc::new(FailingGenerator::default()), Arc::new(MemoryPublisher::default()));
    let reports = run(&failing, &targets, t0 + days(90), &Request::default()).await;
    assert!(matches!(reports[0].error, Some(RunError::KeyGen(_))), "{:?}", reports[0].error);
    assert_eq!(records(&store, &targets).await, before, "a failed generation changed the store");
    assert_ok(&run(&engine, &targets, t0 + days(90), &Request::default()).await);
    assert_eq!(kids(&records(&store, &targets).await, Stage::Pending).len(), 1, "the next run retries");
}

/// Brings a fresh store to a state where one run at day 214 does every kind of write:
/// `crashy` retires and purges, `promo` promotes, demotes and then rotates, `fresh` bootstraps.
async fn seed(store: Opened, targets: &[Target], t0: DateTime<Utc>) {
    let (engine, _) = engine_over(store);
    for d in [0, 90, 97, 187, 194] {
        assert_ok(&run(&engine, &targets[..1], t0 + days(d), &Request::default()).await);
    }
    for d in [0, 90] {
        assert_ok(&run(&engine, &targets[1..2], t0 + days(d), &Request::default()).await);
    }
}

fn actions(reports: &[SetReport]) -> std::collections::BTreeSet<&'static str> {
    use jwk_rotator::planner::Action;
    let steps = reports.iter().flat_map(|r| r.plan.iter().flat_map(|p| p.steps.iter()));
    steps
        .map(|s| match s.action {
            Action::Generate { .. } => "generate",
            Action::Publish { .. } => "publish",
            Action::Promote { .. } => "promote",
            Action::Demote { .. } => "demote",
            Action::Retire { .. } => "retire",
            Action::Purge { .. } => "purge",
        })
        .collect()
}

pub async fn crash_after_each_write_converges<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Box<dyn Backend>>,
{
    let retain = jwk_rotator::policy::Span::days(10);
    let pol = crate::support::with(jwk_rotator::policy::PolicyOverrides {
        promotion: Some(Promotion::AfterDelay),
        retain_retired: Some(retain),
        ..Default::default()
    });
    let targets = targets(&["crashy-TEST", "promo-TEST", "fresh-TEST"], &pol);
    let t0 = at("2026-01-01T06:00:00Z");
    let t = t0 + days(214);

    let reference = make().await;
    seed(reference.open(), &targets, t0).await;
    let (engine_ref, _) = engine_over(reference.open());
    let reports = run(&engine_ref, &targets, t, &Request::default()).await;
    assert_ok(&reports);
    let all = ["generate", "publish", "promote", "demote", "retire", "purge"];
    assert_eq!(actions(&reports), all.into_iter().collect(), "the crash run must do every kind of write");
    let expected = state(&records(&reference.open().keys, &targets).await);

    for budget in 0.. {
        let backend = make().await;
        seed(backend.open(), &targets, t0).await;
        let before = records(&backend.open().keys, &targets).await;
        let (flaky, opened) = FlakyStore::opened(&backend.open(), budget);
        let (crashing, _) = engine_over(opened);
        let _ = crashing.run(&targets, t, &Request::default()).await;
        let crashed = flaky.writes() > budget;

        let (next, publisher) = engine_over(backend.open());
        assert_ok(&run(&next, &targets, t, &Request::default()).await);
        let after = records(&backend.open().keys, &targets).await;
        assert_eq!(state(&after), expected, "crash after write {budget}");
        for old in &before {
            let kept = after.iter().find(|r| r.kid == old.kid);
            let purged = !expected.contains_key(&old.kid);
            assert!(
                kept.is_some_and(|k| k.public == old.public) || purged,
                "{} lost after crash at {budget}",
                old.kid
            );
        }
        assert_outputs_follow_store(&backend.open().keys, &publisher, &targets).await;
        if !crashed {
            assert!(budget > 8, "too few writes to test: {budget}");
            break;
        }
    }
}

#[tokio::test]
async fn two_runs_on_one_directory_never_interleave() {
    let dir = tempfile::tempdir().expect("temp dir");
    let targets = targets(&["a-TEST", "b-TEST", "c-TEST"], &Policy::default());
    let t0 = at("2026-11-21T06:00:00Z");
    let (one, _) = engine(Arc::new(FileStore::new(dir.path().join("keys"))));
    let (two, _) = engine(Arc::new(FileStore::new(dir.path().join("keys"))));
    let req = Request::default();
    let (a, b) = tokio::join!(one.run(&targets, t0, &req), two.run(&targets, t0, &req));
    let (a, b) = (a.expect("first run"), b.expect("second run"));
    assert_ok(&a);
    assert_ok(&b);
    let store: Arc<dyn KeyStore> = Arc::new(FileStore::new(dir.path().join("keys")));
    let recs = records(&store, &targets).await;
    assert_eq!(recs.len(), 3, "each key set bootstrapped once, not twice: {recs:?}");
    let generated = a.iter().chain(&b).filter(|r| r.plan.as_ref().is_some_and(|p| !p.is_empty())).count();
    assert_eq!(generated, 3, "the run that waited saw the other's keys");
}

#[tokio::test]
async fn a_held_lock_times_out_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStore::new(dir.path().join("keys"));
    let held = store.lock(std::time::Duration::from_secs(1)).await.expect("first lock");
    let start = std::time::Instant::now();
    let Err(err) = store.lock(std::time::Duration::from_millis(300)).await else {
        panic!("second lock taken")
    };
    assert!(start.elapsed() >= std::time::Duration::from_millis(300), "did not wait");
    assert!(err.to_string().contains("another jwk-rotator run holds"), "{err}");
    assert!(err.to_string().contains(".lock"), "{err}");
    drop(held);
    store.lock(std::time::Duration::from_millis(300)).await.expect("free again");
}
