//! The engine's own checks below the planner, and the order of a run's writes.

mod events;

use super::set_run::SetRun;
use super::*;

use chrono::{DateTime, Utc};

use crate::kid::Kid;
use crate::planner::Action;
use crate::policy::Policy;
use crate::record::Stage;
use crate::store::MemoryStore;
use crate::testing::at;

fn fixture_engine(store: Arc<MemoryStore>) -> Engine {
    crate::testing::engine(store).0
}

/// A key set whose first key is current and whose second waits, published at `published`.
async fn with_pending(store: &Arc<MemoryStore>, published: Option<DateTime<Utc>>) -> (Target, Kid) {
    let engine = fixture_engine(store.clone());
    let target = Target { key_set: "a-TEST".parse().expect("set"), policy: Policy::default() };
    let t0 = at("2026-11-21T06:00:00Z");
    let force = Request { force: true, ..Request::default() };
    for request in [Request::default(), force] {
        let reports = engine.run(std::slice::from_ref(&target), t0, &request).await.expect("run");
        assert!(reports[0].ok(), "{:?}", reports[0].error);
    }
    let mut pending = store.records().into_iter().find(|r| r.stage == Stage::Pending).expect("pending");
    pending.published = published;
    store.update(&pending).await.expect("update");
    (target, pending.kid)
}

/// A key set's run over `records`, which are not the first key set's.
fn set_run<'a>(
    engine: &'a Engine,
    target: &'a Target,
    now: DateTime<Utc>,
    records: Vec<KeyRecord>,
) -> SetRun<'a> {
    assert!(!records.is_empty(), "an empty key set's run may make its first key current");
    SetRun::new(engine, target, now.into(), records, None)
}

/// The engine's own check, below the planner: whatever a plan says, a key that no earlier
/// run published is never written as current.
#[tokio::test]
async fn a_promotion_of_a_key_no_earlier_run_published_is_refused_and_writes_nothing() {
    let now = at("2026-11-22T06:00:00Z");
    for published in [None, Some(now), Some(now + chrono::TimeDelta::days(3))] {
        let store = Arc::new(MemoryStore::new());
        let (target, kid) = with_pending(&store, published).await;
        let engine = fixture_engine(store.clone());
        let before = store.records();
        let mut run = set_run(&engine, &target, now, before.clone());
        let error = run.apply(&Action::Promote { kid: kid.clone() }).await.expect_err("refused");
        assert!(matches!(&error, RunError::Unsafe { kid: k, .. } if *k == kid), "{error}");
        assert_eq!(store.records(), before, "a refused step wrote something");
    }
}

#[tokio::test]
async fn a_new_current_key_outside_an_empty_key_set_is_refused() {
    let store = Arc::new(MemoryStore::new());
    let (target, _) = with_pending(&store, None).await;
    let engine = fixture_engine(store.clone());
    let before = store.records();
    let now = at("2026-11-22T06:00:00Z");
    let mut run = set_run(&engine, &target, now, before.clone());
    let kid: Kid = "a-TEST.2026-11-22".parse().expect("kid");
    let error = run.apply(&Action::Generate { kid, stage: Stage::Current }).await.expect_err("refused");
    assert!(matches!(error, RunError::Unsafe { .. }), "{error}");
    assert!(error.to_string().contains("first key of an empty key set"), "{error}");
    assert_eq!(store.records(), before);
}

/// A store that notes the order of new keys' writes, confirmations and updates.
struct Ordered {
    inner: Arc<dyn KeyStore>,
    log: std::sync::Mutex<Vec<String>>,
}

impl Ordered {
    fn note(&self, what: &str, kid: &Kid) {
        self.log.lock().expect("log").push(format!("{what} {kid}"));
    }
}

#[async_trait::async_trait]
impl KeyStore for Ordered {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn lock(&self, timeout: Duration) -> Result<crate::store::StoreLock, StoreError> {
        self.inner.lock(timeout).await
    }
    async fn load(&self, sets: &[KeySet]) -> Result<crate::store::Loaded, StoreError> {
        self.inner.load(sets).await
    }
    async fn private_key(&self, kid: &Kid) -> Result<crate::jwk::PrivateJwk, StoreError> {
        self.inner.private_key(kid).await
    }
    async fn write_new(&self, record: &KeyRecord, key: &crate::jwk::PrivateJwk) -> Result<(), StoreError> {
        self.note("write", &record.kid);
        self.inner.write_new(record, key).await
    }
    async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.note("confirm", &record.kid);
        self.inner.confirm_new(record).await
    }
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.note("update", &record.kid);
        self.inner.update(record).await
    }
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.inner.purge(kid).await
    }
}

#[tokio::test]
async fn the_ordered_store_passes_every_method_on() {
    let recording = crate::store::recording::Recording::new();
    let ordered = Ordered { inner: recording.clone(), log: Default::default() };
    let opened = crate::store::Opened::keys_only(Arc::new(ordered));
    let key = crate::testing::fixture_key("a-TEST.2026-11-21");
    crate::store::recording::call_every_method(&opened, &key, at("2026-11-21T06:00:00Z")).await;
    assert_eq!(recording.calls(), crate::store::recording::every_method(&opened));
}

/// Racing writers are looked for once per run: every new key is written before the first
/// is confirmed, and nothing else is written for a key before it is confirmed.
#[tokio::test]
async fn a_run_writes_every_new_key_before_it_confirms_any() {
    let store = Arc::new(Ordered { inner: Arc::new(MemoryStore::new()), log: Default::default() });
    let engine = crate::testing::engine(store.clone()).0.with_parallelism(3);
    let targets: Vec<Target> = (0..12)
        .map(|i| Target { key_set: format!("k{i}-TEST").parse().expect("set"), policy: Policy::default() })
        .collect();
    for now in [at("2026-11-21T06:00:00Z"), at("2027-02-21T06:00:00Z")] {
        store.log.lock().expect("log").clear();
        let reports = engine.run(&targets, now, &Request::default()).await.expect("run");
        assert!(reports.iter().all(SetReport::ok), "{reports:?}");
        let log = store.log.lock().expect("log").clone();
        let writes: Vec<usize> = (0..log.len()).filter(|&i| log[i].starts_with("write ")).collect();
        assert_eq!(writes.len(), 12, "{log:?}");
        let first_confirm = log.iter().position(|l| l.starts_with("confirm ")).expect("confirmed");
        assert!(
            writes.iter().all(|&w| w < first_confirm),
            "a key was confirmed before all were written: {log:?}"
        );
        for (i, line) in log.iter().enumerate().filter(|(_, l)| l.starts_with("update ")) {
            let kid = &line["update ".len()..];
            let confirmed = log.iter().position(|l| *l == format!("confirm {kid}"));
            if log.iter().any(|l| *l == format!("write {kid}")) {
                assert!(confirmed.is_some_and(|c| c < i), "{kid} updated before it was confirmed: {log:?}");
            }
        }
    }
}

/// A generator whose thread dies without a key.
struct Panicking;

impl crate::keygen::KeyGenerator for Panicking {
    fn generate(
        &self,
        kid: Kid,
        _: crate::policy::KeySize,
        _: crate::policy::Algorithm,
    ) -> Result<crate::jwk::PrivateJwk, crate::keygen::KeyGenError> {
        panic!("key generation for {kid} died (test)");
    }
}

#[tokio::test]
async fn a_key_generation_that_dies_is_reported_with_its_kid_and_writes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let (target, _) = with_pending(&store, None).await;
    let before = store.records();
    let engine =
        Engine::new(store.clone(), Arc::new(Panicking), Arc::new(crate::publish::MemoryPublisher::default()));
    let force = Request { force: true, ..Request::default() };
    let reports =
        engine.run(std::slice::from_ref(&target), at("2026-11-22T06:00:00Z"), &force).await.expect("run");
    let error = reports[0].error.clone().expect("failed");
    let RunError::Interrupted { kid, reason } = &error else { panic!("{error:?}") };
    assert_eq!(kid.to_string(), "a-TEST.2026-11-22");
    assert!(reason.contains("panic"), "{reason}");
    assert_eq!(error.kind(), "interrupted");
    assert_eq!(error.to_string(), format!("key generation stopped: {reason}"));
    assert_eq!(store.records().len(), before.len(), "no key was written");
}

/// An engine over both ports of a memory store whose key set `a-TEST` has a consumer secret
/// holding `held`.
fn with_consumer(held: crate::store::Consumer) -> (Arc<MemoryStore>, Engine, Target) {
    let store = Arc::new(MemoryStore::new());
    let target = Target { key_set: "a-TEST".parse().expect("set"), policy: Policy::default() };
    store.set_consumer(&target.key_set, held);
    let engine = crate::testing::engine_over(crate::store::Opened::with_consumers(store.clone())).0;
    (store, engine, target)
}

#[tokio::test]
async fn the_consumer_secret_follows_the_first_key_and_each_promotion() {
    use crate::store::{Consumer, ConsumerSecrets};
    let (store, engine, target) = with_consumer(Consumer::Empty);
    let targets = std::slice::from_ref(&target);
    engine.run(targets, at("2026-11-21T06:00:00Z"), &Request::default()).await.expect("run");
    let first: Kid = "a-TEST.2026-11-21".parse().expect("kid");
    assert_eq!(store.consumer(&target.key_set), Some(Consumer::Kid(first.clone())));
    engine.run(targets, at("2027-02-19T06:00:00Z"), &Request::default()).await.expect("rotate");
    assert_eq!(
        store.consumer(&target.key_set),
        Some(Consumer::Kid(first)),
        "a pending key is not handed out"
    );
    let promote = Request { promote: true, ..Request::default() };
    let reports = engine.run(targets, at("2027-02-20T06:00:00Z"), &promote).await.expect("promote");
    assert!(reports[0].ok(), "{:?}", reports[0].error);
    let second: Kid = "a-TEST.2027-02-19".parse().expect("kid");
    assert_eq!(store.consumer(&target.key_set), Some(Consumer::Kid(second)));
}

#[tokio::test]
async fn a_consumer_secret_in_use_makes_an_empty_key_sets_first_key_pending() {
    use crate::store::{Consumer, ConsumerSecrets};
    let (store, engine, target) = with_consumer(Consumer::Foreign);
    let reports =
        engine.run(std::slice::from_ref(&target), at("2026-11-21T06:00:00Z"), &Request::default()).await;
    assert!(reports.expect("run")[0].ok());
    let stages: Vec<Stage> = store.records().iter().map(|r| r.stage).collect();
    assert_eq!(stages, [Stage::Pending], "applications read another key: the first key waits");
    assert_eq!(store.consumer(&target.key_set), Some(Consumer::Foreign), "their key is left alone");
    // An engine given only the key records (as over the file store) sees no consumer secret:
    // its first key is current at once, and the secret is not written.
    let (store, _, target) = with_consumer(Consumer::Foreign);
    let (keys_only, _) = crate::testing::engine(store.clone());
    assert!(keys_only.consumer_secrets().is_none());
    let reports =
        keys_only.run(std::slice::from_ref(&target), at("2026-11-21T06:00:00Z"), &Request::default()).await;
    assert!(reports.expect("run")[0].ok());
    let stages: Vec<Stage> = store.records().iter().map(|r| r.stage).collect();
    assert_eq!(stages, [Stage::Current]);
    assert_eq!(store.consumer(&target.key_set), Some(Consumer::Foreign));
}
