//! The engine: loads records, plans each key set and carries the plan out against the store in
//! the safe order, writing outputs derived from what the store holds. This file holds the
//! engine and its two entry points for key sets (`plan`, `run`); `set_run` carries one key
//! set's plan out, `promotion` checks a promotion against Maskinporten, `proof` proves pending
//! keys, `observe` gathers what findings need, and `report` says how each key set ended.

mod events;
mod observe;
mod promotion;
mod proof;
mod report;
mod restart;
mod set_run;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tracing::{Instrument, info_span, warn};

use crate::events::{EventSink, NoEvents, Origin};
use crate::keygen::KeyGenerator;
use crate::kid::KeySet;
use crate::moment::Moment;
use crate::planner::{self, Request};
use crate::policy::Target;
use crate::proof::{Attempts, NoProver, Prover};
use crate::publish::Publisher;
use crate::record::KeyRecord;
use crate::store::{ConsumerSecrets, KeyStore, Opened, StoreError};

pub use observe::Evaluation;
pub(crate) use proof::proof_due;
pub use report::{RunError, SetReport};
use set_run::Started;

/// The targets with each key set once, in first-named order.
fn distinct(targets: &[Target]) -> Vec<Target> {
    let mut seen = std::collections::BTreeSet::new();
    targets.iter().filter(|t| seen.insert(t.key_set.clone())).cloned().collect()
}

/// Asks a run to stop: once set, no key set is started and no further step is begun; the
/// outputs of a key set already under way are still written. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How long after a key was registered through Digdir's API a promotion without a proof
/// waits: Digdir documents 0-2 minutes of propagation, and users have seen several.
pub(crate) const PROPAGATION_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Key sets in progress at once by default: enough to keep the store's request limit busy
/// while keys are generated, and while requests wait out a throttled vault's back-off; each
/// holds only its records.
pub(crate) const DEFAULT_PARALLELISM: usize = 256;

/// The adapters a run uses, shared by every command and the worker. Built complete with
/// [`Engine::new`] and the `with_` settings; nothing is patched afterwards.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn KeyStore>,
    /// The secrets applications read the current key from, for a store that has them.
    consumers: Option<Arc<dyn ConsumerSecrets>>,
    keygen: Arc<dyn KeyGenerator>,
    publisher: Arc<dyn Publisher>,
    lock_timeout: Duration,
    /// Key sets worked on at once. Requests are bounded by the store itself (Key Vault:
    /// `[store] max_in_flight` and `request_budget`), key generation by `keygen_slots`.
    parallelism: usize,
    /// Keys generated at once on the blocking pool: one per core.
    keygen_slots: Arc<tokio::sync::Semaphore>,
    /// Set by the worker on shutdown.
    stop: StopFlag,
    /// Proves pending keys with token grants (`promotion = "verified"`).
    prover: Arc<dyn Prover>,
    /// The last proof per key set, for findings between runs.
    attempts: Attempts,
    /// Where the events of each key set's changes go.
    events: Arc<dyn EventSink>,
    /// The `source` and `actor` of those events.
    origin: Origin,
    /// Restarts the applications of clients that name some, after a promotion.
    restarter: Option<Arc<dyn crate::restart::Restarter>>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn KeyStore>,
        keygen: Arc<dyn KeyGenerator>,
        publisher: Arc<dyn Publisher>,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Engine {
            store,
            consumers: None,
            keygen,
            publisher,
            lock_timeout: Duration::from_secs(30),
            parallelism: DEFAULT_PARALLELISM,
            keygen_slots: Arc::new(tokio::sync::Semaphore::new(cores.max(1))),
            stop: StopFlag::default(),
            prover: Arc::new(NoProver),
            attempts: Attempts::default(),
            events: Arc::new(NoEvents),
            origin: Origin { source: "jwk-rotator".to_owned(), actor: "unknown".to_owned() },
            restarter: None,
        }
    }

    /// Sends the events of every change to `sink`, as coming from `origin`.
    pub fn with_events(mut self, sink: Arc<dyn EventSink>, origin: Origin) -> Self {
        self.events = sink;
        self.origin = origin;
        self
    }

    /// The event sink, for what happens after a run (restarts), and the events' origin.
    pub fn events(&self) -> (&Arc<dyn EventSink>, &Origin) {
        (&self.events, &self.origin)
    }

    /// An engine over both ports of `store`: its key records, and its consumer secrets if it
    /// has them.
    pub fn over(store: Opened, keygen: Arc<dyn KeyGenerator>, publisher: Arc<dyn Publisher>) -> Self {
        let engine = Engine::new(store.keys, keygen, publisher);
        match store.consumers {
            Some(consumers) => engine.with_consumer_secrets(consumers),
            None => engine,
        }
    }

    /// Keeps `consumers` holding each key set's current key (a store's consumer secrets).
    pub(crate) fn with_consumer_secrets(mut self, consumers: Arc<dyn ConsumerSecrets>) -> Self {
        self.consumers = Some(consumers);
        self
    }

    /// The consumer secrets the engine keeps, if its store has them.
    pub fn consumer_secrets(&self) -> Option<&Arc<dyn ConsumerSecrets>> {
        self.consumers.as_ref()
    }

    /// Makes `current` the key that applications of its key set read, where they read one.
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError> {
        match &self.consumers {
            Some(consumers) => consumers.sync_consumer(current).await,
            None => Ok(()),
        }
    }

    /// Restarts the applications a client names once one of its keys is promoted and its
    /// consumer secret holds it.
    pub fn with_restarter(mut self, restarter: Arc<dyn crate::restart::Restarter>) -> Self {
        self.restarter = Some(restarter);
        self
    }

    /// Proves pending keys before a verified promotion, and for `verify`.
    pub fn with_prover(mut self, prover: Arc<dyn Prover>) -> Self {
        self.prover = prover;
        self
    }

    /// The prover, for `verify`.
    pub fn prover(&self) -> &Arc<dyn Prover> {
        &self.prover
    }

    /// The publisher, for what Maskinporten has registered.
    pub fn publisher(&self) -> &Arc<dyn Publisher> {
        &self.publisher
    }

    /// How long a run waits for another run's lock on the store.
    pub(crate) fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How many key sets are worked on at once (at least one).
    #[cfg(test)]
    pub(crate) fn with_parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism.max(1);
        self
    }

    /// The store the engine reads and writes.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// The flag that asks a run to stop; the worker sets it on shutdown.
    pub fn stop(&self) -> &StopFlag {
        &self.stop
    }

    /// Loads the records of `targets` in one call.
    pub async fn load(&self, targets: &[Target]) -> Result<crate::store::Loaded, StoreError> {
        let sets: Vec<KeySet> = targets.iter().map(|t| t.key_set.clone()).collect();
        self.store.load(&sets).await
    }

    /// Plans every target at `at` without writing anything: `plan`, and `rotate --dry-run`.
    pub async fn plan(
        &self,
        targets: &[Target],
        at: impl Into<Moment>,
        request: &Request,
    ) -> Result<Vec<SetReport>, StoreError> {
        let at = at.into();
        let targets = distinct(targets);
        let loaded = self.load(&targets).await?;
        Ok(targets
            .iter()
            .map(|t| {
                let mut report = SetReport::new(&t.key_set);
                match crate::store::records_in(&loaded, &t.key_set) {
                    Ok(records) => {
                        let consumer_in_use = self.consumer_in_use(t, records);
                        let request = Request { consumer_in_use, ..request.clone() };
                        match planner::plan(&t.key_set, records, &t.policy, at, &request) {
                            Ok(plan) => report.plan = Some(plan),
                            Err(refusal) => report.error = Some(refusal.into()),
                        }
                        report.records = records.to_vec();
                    }
                    Err(e) => report.error = Some(e.into()),
                }
                report
            })
            .collect())
    }

    /// One run at `at`: lock the store, then plan and carry out every target, several at once.
    /// A failing key set does not stop the others; its report holds the error. A key set
    /// named twice is worked on once.
    pub async fn run(
        &self,
        targets: &[Target],
        at: impl Into<Moment>,
        request: &Request,
    ) -> Result<Vec<SetReport>, StoreError> {
        let at = at.into();
        let targets = distinct(targets);
        let _lock = self.store.lock(self.lock_timeout).await?;
        let run_id = events::new_run_id();
        if let Err(e) = self.publisher.tidy().await {
            warn!(error = %e, "publish directory not tidied");
        }
        let loaded = self.load(&targets).await?;
        // Two passes, so that a store that must wait for racing writers (Key Vault's `settle`)
        // waits once per run rather than once per new key: the first pass carries each key set
        // up to and including the write of its new key (a key set without one runs to its
        // end), the second confirms each new key and carries out the rest.
        // The futures are collected first: a lazy `map` over borrowed targets makes the run's
        // future one that the compiler can not show to be `Send`, and the worker spawns it.
        // They do nothing until polled, so at most `parallelism` key sets are in progress.
        let jobs: Vec<_> = targets
            .iter()
            .map(|t| {
                let records = crate::store::records_in(&loaded, &t.key_set).map(<[KeyRecord]>::to_vec);
                let span = info_span!("key_set", key_set = %t.key_set);
                self.start_set(t, records, at, request, &run_id).instrument(span)
            })
            .collect();
        drop(loaded);
        let started: Vec<Started<'_>> =
            futures::stream::iter(jobs).buffer_unordered(self.parallelism).collect().await;
        let jobs: Vec<_> = started
            .into_iter()
            .map(|s| {
                let span = info_span!("key_set", key_set = %s.report.key_set);
                let run_id = &run_id;
                async move {
                    let mut report = s.finish().await;
                    self.emit_for(&mut report, run_id, at.now).await;
                    report
                }
                .instrument(span)
            })
            .collect();
        let mut reports: Vec<SetReport> =
            futures::stream::iter(jobs).buffer_unordered(self.parallelism).collect().await;
        let order: BTreeMap<&KeySet, usize> =
            targets.iter().enumerate().map(|(i, t)| (&t.key_set, i)).collect();
        reports.sort_by_key(|r| order.get(&r.key_set).copied().unwrap_or(usize::MAX));
        Ok(reports)
    }

    /// Whether a key set without keys has a consumer secret that applications read a key from
    /// already (see [`Request::consumer_in_use`]), as the store's last load saw it.
    fn consumer_in_use(&self, target: &Target, records: &[KeyRecord]) -> bool {
        let held = self.consumers.as_ref().and_then(|c| c.consumer(&target.key_set));
        records.is_empty() && held.is_some_and(|held| held.holds_a_key())
    }
}
