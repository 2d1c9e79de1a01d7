//! The engine: loads records, plans each key set and carries the plan out against the store in
//! the safe order, writing outputs derived from what the store holds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tracing::{Instrument, info, info_span, warn};

use crate::keygen::KeyGenerator;
use crate::kid::KeySet;
use crate::planner::{self, Action, Plan, Request, Step};
use crate::policy::Policy;
use crate::publish::{PublishedSet, Publisher};
use crate::record::{KeyRecord, Stage};
use crate::store::{KeyStore, StoreError};

/// What the engine works on: a key set and its client's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub key_set: KeySet,
    pub policy: Policy,
}

/// The outcome for one key set.
#[derive(Debug, Clone)]
pub struct SetReport {
    pub key_set: KeySet,
    /// The plan, when one could be made.
    pub plan: Option<Plan>,
    /// How many of its steps were carried out.
    pub done: usize,
    /// The records after the run (as loaded, for a dry run).
    pub records: Vec<KeyRecord>,
    pub error: Option<String>,
}

impl SetReport {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Asks a run to stop: once set, no key set is started and no further step is begun; the
/// outputs of a key set already under way are still written. Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The adapters a run uses, shared by every command and the worker.
#[derive(Clone)]
pub struct Engine {
    pub store: Arc<dyn KeyStore>,
    pub keygen: Arc<dyn KeyGenerator>,
    pub publisher: Arc<dyn Publisher>,
    pub lock_timeout: Duration,
    /// Key sets worked on at once; key generation runs on that many threads.
    pub parallelism: usize,
    /// Set by the worker on shutdown.
    pub stop: StopFlag,
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
            keygen,
            publisher,
            lock_timeout: Duration::from_secs(30),
            parallelism: cores.max(2) * 2,
            stop: StopFlag::default(),
        }
    }

    /// Loads the records of `targets` in one call.
    pub async fn load(&self, targets: &[Target]) -> Result<crate::store::Loaded, StoreError> {
        let sets: Vec<KeySet> = targets.iter().map(|t| t.key_set.clone()).collect();
        self.store.load(&sets).await
    }

    /// Plans every target without writing anything: `plan`, and `rotate --dry-run`.
    pub async fn plan(
        &self,
        targets: &[Target],
        now: DateTime<Utc>,
        request: &Request,
    ) -> Result<Vec<SetReport>, StoreError> {
        let mut loaded = self.load(targets).await?;
        Ok(targets
            .iter()
            .map(|t| {
                let records = loaded.remove(&t.key_set).unwrap_or_else(|| Ok(Vec::new()));
                let mut report = SetReport {
                    key_set: t.key_set.clone(),
                    plan: None,
                    done: 0,
                    records: Vec::new(),
                    error: None,
                };
                match records {
                    Ok(records) => {
                        match planner::plan(&t.key_set, &records, &t.policy, now, request) {
                            Ok(plan) => report.plan = Some(plan),
                            Err(refusal) => report.error = Some(refusal.0),
                        }
                        report.records = records;
                    }
                    Err(e) => report.error = Some(e.to_string()),
                }
                report
            })
            .collect())
    }

    /// One run: lock the store, then plan and carry out every target, several at once.
    /// A failing key set does not stop the others; its report holds the error.
    pub async fn run(
        &self,
        targets: &[Target],
        now: DateTime<Utc>,
        request: &Request,
    ) -> Result<Vec<SetReport>, StoreError> {
        let _lock = self.store.lock(self.lock_timeout).await?;
        if let Err(e) = self.publisher.tidy().await {
            warn!(error = %e, "publish directory not tidied");
        }
        let mut loaded = self.load(targets).await?;
        // Collected first: a lazy `map` over borrowed targets makes the run's future one that
        // the compiler can not show to be `Send`, and the worker spawns it. The futures do
        // nothing until polled, so at most `parallelism` key sets are in progress at once.
        let jobs: Vec<_> = targets
            .iter()
            .map(|t| {
                let records = loaded.remove(&t.key_set).unwrap_or_else(|| Ok(Vec::new()));
                let span = info_span!("key_set", key_set = %t.key_set);
                self.run_set(t, records, now, request).instrument(span)
            })
            .collect();
        let mut reports: Vec<SetReport> =
            futures::stream::iter(jobs).buffer_unordered(self.parallelism).collect().await;
        let order: BTreeMap<&KeySet, usize> =
            targets.iter().enumerate().map(|(i, t)| (&t.key_set, i)).collect();
        reports.sort_by_key(|r| order.get(&r.key_set).copied().unwrap_or(usize::MAX));
        Ok(reports)
    }

    async fn run_set(
        &self,
        target: &Target,
        records: Result<Vec<KeyRecord>, StoreError>,
        now: DateTime<Utc>,
        request: &Request,
    ) -> SetReport {
        let mut report = SetReport {
            key_set: target.key_set.clone(),
            plan: None,
            done: 0,
            records: Vec::new(),
            error: None,
        };
        if self.stop.is_stopped() {
            report.error = Some("not started: the worker is shutting down".to_owned());
            return report;
        }
        let records = match records {
            Ok(records) => records,
            Err(e) => {
                warn!(error = %e, "key set skipped");
                report.error = Some(e.to_string());
                return report;
            }
        };
        let plan = match planner::plan(&target.key_set, &records, &target.policy, now, request) {
            Ok(plan) => plan,
            Err(refusal) => {
                report.records = records;
                report.error = Some(refusal.0);
                return report;
            }
        };
        let mut run = SetRun { engine: self, target, now, records, dirty: false };
        let result = run.execute(&plan.steps, &mut report.done).await;
        let finish = run.finish().await;
        report.records = run.records;
        report.plan = Some(plan);
        report.error = result.and(finish).err();
        if let Some(e) = &report.error {
            warn!(error = %e, "key set failed");
        }
        report
    }
}

/// One key set's run in progress: the records as the store holds them.
struct SetRun<'a> {
    engine: &'a Engine,
    target: &'a Target,
    now: DateTime<Utc>,
    records: Vec<KeyRecord>,
    /// Whether the store was written since `records` was loaded.
    dirty: bool,
}

impl SetRun<'_> {
    async fn execute(&mut self, steps: &[Step], done: &mut usize) -> Result<(), String> {
        let mut i = 0;
        while i < steps.len() {
            if self.engine.stop.is_stopped() {
                return Err(format!("stopped after {i} of {} steps: shutting down", steps.len()));
            }
            let step = &steps[i];
            info!(action = %step.action, reason = %step.reason, "step");
            if let Action::Publish { .. } = step.action {
                // Consecutive publish steps are one write of the outputs.
                let run =
                    steps[i..].iter().take_while(|s| matches!(s.action, Action::Publish { .. })).count();
                self.publish_marking(&steps[i..i + run]).await?;
                i += run;
                *done += run;
                continue;
            }
            self.apply(&step.action).await?;
            i += 1;
            *done += 1;
        }
        Ok(())
    }

    async fn apply(&mut self, action: &Action) -> Result<(), String> {
        let store = &self.engine.store;
        match action {
            Action::Generate { kid, stage } => {
                let (keygen, kid, policy) =
                    (self.engine.keygen.clone(), kid.clone(), self.target.policy.clone());
                let key = tokio::task::spawn_blocking(move || {
                    keygen.generate(kid, policy.key_size, policy.algorithm)
                })
                .await
                .map_err(|e| format!("key generation stopped: {e}"))?
                .map_err(|e| e.to_string())?;
                let record = KeyRecord::new(key.public().clone(), *stage, self.now);
                self.dirty = true;
                store.create(&record, &key).await.map_err(|e| e.to_string())?;
                if *stage == Stage::Current {
                    store.sync_consumer(&record).await.map_err(|e| e.to_string())?;
                }
                self.records.push(record);
            }
            Action::Purge { kid } => {
                self.dirty = true;
                store.purge(kid).await.map_err(|e| e.to_string())?;
                self.records.retain(|r| r.kid != *kid);
            }
            Action::Promote { kid }
            | Action::Demote { kid }
            | Action::Retire { kid }
            | Action::Publish { kid } => {
                let mut record = self.record(kid)?;
                planner::transition(&mut record, action, self.now);
                self.dirty = true;
                if let Action::Promote { .. } = action {
                    store.sync_consumer(&record).await.map_err(|e| e.to_string())?;
                }
                store.update(&record).await.map_err(|e| e.to_string())?;
                self.records.retain(|r| r.kid != *kid);
                self.records.push(record);
            }
        }
        Ok(())
    }

    fn record(&self, kid: &crate::kid::Kid) -> Result<KeyRecord, String> {
        self.records
            .iter()
            .find(|r| r.kid == *kid)
            .cloned()
            .ok_or_else(|| format!("{kid} is no longer in the {}", self.engine.store.describe()))
    }

    /// Re-reads the key set after writes, so that everything after follows the store.
    async fn reload(&mut self) -> Result<(), String> {
        if !self.dirty {
            return Ok(());
        }
        let set = self.target.key_set.clone();
        let mut loaded =
            self.engine.store.load(std::slice::from_ref(&set)).await.map_err(|e| e.to_string())?;
        self.records = loaded.remove(&set).unwrap_or_else(|| Ok(Vec::new())).map_err(|e| e.to_string())?;
        self.dirty = false;
        Ok(())
    }

    async fn write_outputs(&mut self) -> Result<(), String> {
        self.reload().await?;
        let set = PublishedSet::from_records(&self.target.key_set, &self.records, &self.target.policy);
        self.engine.publisher.publish(&set).await.map_err(|e| e.to_string())
    }

    /// Writes the outputs, then records that these keys are published.
    async fn publish_marking(&mut self, steps: &[Step]) -> Result<(), String> {
        self.write_outputs().await?;
        for step in steps {
            self.apply(&step.action).await?;
        }
        Ok(())
    }

    /// After the steps, failed or not: outputs follow the store, and applications read the
    /// current key.
    async fn finish(&mut self) -> Result<(), String> {
        self.write_outputs().await?;
        let current = self.records.iter().find(|r| r.stage == Stage::Current).cloned();
        if let Some(current) = current {
            self.engine.store.sync_consumer(&current).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
