//! Worker tests with a paused tokio clock, fixture keys and in-process HTTP receivers.

mod dashboard;
mod delivery;
mod endpoint;
mod runs;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Worker;
use super::alerts::{Alerter, LogAlerter, Notifier};
use super::metrics::Metrics;
use super::schedule::{Clock, Schedule, TokioClock};
use crate::engine::Engine;
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::planner::Request;
use crate::policy::Policy;
use crate::policy::Target;
use crate::publish::{MemoryPublisher, PublishError, PublishedSet, Publisher};
use crate::record::KeyRecord;
use crate::store::counting::CountingStore;
use crate::store::{KeyStore, Loaded, MemoryStore, Place, StoreError, StoreLock};

pub(super) use crate::testing::{at, fixtures};

/// Targets with the default policy.
pub(super) fn targets(names: &[&str]) -> Vec<Target> {
    crate::testing::targets(names, &Policy::default())
}

pub(super) fn engine(store: Arc<dyn KeyStore>, publisher: Arc<dyn Publisher>) -> Engine {
    Engine::new(store, fixtures(), publisher)
}

/// A `[schedule]` table.
pub(super) fn schedule(cron: &str, tz: &str, extra: &str) -> Schedule {
    Schedule::new(toml::from_str(&format!("cron = \"{cron}\"\ntimezone = \"{tz}\"\n{extra}")).unwrap())
}

/// What a test worker is made of; `build` wraps the store in the counting decorator.
pub(super) struct Setup {
    pub store: Arc<dyn KeyStore>,
    pub publisher: Arc<dyn Publisher>,
    pub targets: Vec<Target>,
    pub schedule: Schedule,
    pub start: DateTime<Utc>,
    pub sinks: Vec<Arc<dyn Alerter>>,
    pub check_every: Duration,
    pub parallelism: usize,
}

impl Setup {
    pub(super) fn new(store: Arc<dyn KeyStore>, schedule: Schedule, start: &str) -> Self {
        Setup {
            store,
            publisher: Arc::new(MemoryPublisher::default()),
            targets: targets(&["a-TEST"]),
            schedule,
            start: at(start),
            sinks: vec![Arc::new(LogAlerter)],
            check_every: Duration::from_secs(86_400),
            parallelism: 4,
        }
    }

    pub(super) fn build(self) -> Arc<Worker> {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(self.start));
        let metrics = Arc::new(Metrics::new(clock.now()));
        let counted = Arc::new(CountingStore::new(self.store, metrics.clone()));
        let engine = engine(counted, self.publisher).with_parallelism(self.parallelism);
        let notifier = Notifier::new(self.sinks, chrono::TimeDelta::days(1), metrics.clone());
        Arc::new(Worker::new(engine, self.targets, self.schedule, clock, metrics, notifier, self.check_every))
    }
}

/// Runs the worker in a task; dropping or sending on the returned sender stops it.
pub(super) fn spawn(worker: &Arc<Worker>) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let w = worker.clone();
    let handle = tokio::spawn(async move {
        w.run(async {
            let _ = stopped.await;
        })
        .await;
    });
    (stop, handle)
}

/// Gives a store keys as they were at `when`: one run at that time.
pub(super) async fn seed(store: Arc<dyn KeyStore>, sets: &[&str], when: &str) {
    let reports = engine(store, Arc::new(MemoryPublisher::default()))
        .run(&targets(sets), at(when), &Request::default())
        .await
        .unwrap();
    assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
}

/// A publisher that takes its time, so that runs last (in paused time).
pub(crate) struct SlowPublisher {
    pub inner: MemoryPublisher,
    pub delay: Duration,
}

#[async_trait]
impl Publisher for SlowPublisher {
    fn describe(&self) -> String {
        "slow publisher".to_owned()
    }
    fn registers(&self, set: &crate::kid::KeySet) -> bool {
        self.inner.registers(set)
    }
    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError> {
        tokio::time::sleep(self.delay).await;
        self.inner.publish(set).await
    }
}

/// A store that is unreachable while `broken` is set, or for its first `fail_first` runs.
#[derive(Default)]
pub(crate) struct SwitchStore<S = MemoryStore> {
    pub inner: Arc<S>,
    pub broken: AtomicBool,
    pub fail_first: AtomicUsize,
}

impl SwitchStore {
    /// Over a new memory store.
    pub(super) fn new() -> Self {
        Self::default()
    }
}

impl<S> SwitchStore<S> {
    fn check(&self) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                place: Place::Store("switch store".to_owned()),
                message: "store unreachable (test)".to_owned(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl<S: KeyStore> KeyStore for SwitchStore<S> {
    fn describe(&self) -> String {
        format!("switch {}", self.inner.describe())
    }
    async fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError> {
        let failing = self.fail_first.load(Ordering::SeqCst);
        if failing > 0 {
            self.fail_first.store(failing - 1, Ordering::SeqCst);
            return Err(StoreError::Unavailable {
                place: Place::Store(self.describe()),
                message: "store unreachable (test)".to_owned(),
            });
        }
        self.check()?;
        self.inner.lock(timeout).await
    }
    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        self.check()?;
        self.inner.load(sets).await
    }
    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        self.inner.private_key(kid).await
    }
    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.check()?;
        self.inner.write_new(record, key).await
    }
    async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.confirm_new(record).await
    }
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.update(record).await
    }
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.inner.purge(kid).await
    }
}

#[tokio::test]
async fn the_switch_store_passes_every_method_on() {
    let recording = crate::store::recording::Recording::new();
    let switch = SwitchStore { inner: recording.clone(), broken: false.into(), fail_first: 0.into() };
    let opened = crate::store::Opened::keys_only(Arc::new(switch));
    let key = crate::testing::fixture_key("a-TEST.2026-11-21");
    crate::store::recording::call_every_method(&opened, &key, at("2026-11-21T06:00:00Z")).await;
    assert_eq!(recording.calls(), crate::store::recording::every_method(&opened));
}
