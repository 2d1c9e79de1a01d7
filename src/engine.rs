//! The engine: loads records, plans each key set and carries the plan out against the store in
//! the safe order, writing outputs derived from what the store holds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use futures::StreamExt;
use tracing::{Instrument, info, info_span, warn};

use crate::findings::{self, Finding};
use crate::keygen::{KeyGenError, KeyGenerator};
use crate::kid::{KeySet, Kid};
use crate::lifecycle;
use crate::moment::Moment;
use crate::planner::{self, Action, Plan, Refusal, Request, Step};
use crate::policy::{Promotion, Target};
use crate::proof::{Attempt, Attempts, NoProver, Patience, ProofError, Prover};
use crate::publish::{PublishError, PublishedSet, Publisher};
use crate::record::{KeyRecord, Stage};
use crate::store::{KeyStore, StoreError};

/// Why a key set's run did not finish; the report keeps it typed, so that callers can tell a
/// refusal from a store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The store failed (its message names the file, secret or vault and what to do).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The planner would not carry out the request (`promote` without a pending key, ...).
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A step that would make a key current before Maskinporten can know it; nothing was
    /// written for it.
    #[error(
        "refused to make {kid} current: {why}. Nothing was written for this step; this is a bug, please report it"
    )]
    Unsafe { kid: Kid, why: &'static str },
    /// The worker is shutting down.
    #[error("stopped after {done} of {total} steps: shutting down")]
    Stopped { done: usize, total: usize },
    #[error("not started: the worker is shutting down")]
    NotStarted,
    /// The key generation thread ended without a key.
    #[error("key generation stopped: {0}")]
    Interrupted(String),
    /// `promotion = "verified"`: the pending key is due, but no token grant with it succeeded,
    /// so it stays pending (the rest of the run was carried out).
    #[error("pending key {kid} was not promoted: a token grant signed with it failed: {error}")]
    Unproven { kid: Kid, error: ProofError },
}

impl RunError {
    /// A stable name for the kind of failure, for JSON output and log pipelines.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::Store(e) => e.kind(),
            RunError::Refused(_) => "refused",
            RunError::KeyGen(_) => "keygen",
            RunError::Publish(_) => "publish",
            RunError::Unsafe { .. } => "unsafe-step",
            RunError::Stopped { .. } | RunError::NotStarted => "stopped",
            RunError::Interrupted(_) => "interrupted",
            RunError::Unproven { .. } => "unproven",
        }
    }
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
    pub error: Option<RunError>,
    /// A new key that another run wrote at the same moment (Key Vault, no lock): its version was
    /// kept and ours disabled, and this run left the rest of the key set to it. Not a failure.
    pub raced: Option<Kid>,
}

impl SetReport {
    fn new(key_set: &KeySet) -> Self {
        SetReport {
            key_set: key_set.clone(),
            plan: None,
            done: 0,
            records: Vec::new(),
            error: None,
            raced: None,
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// What `status` and the worker see at one moment.
#[derive(Debug)]
pub struct Evaluation {
    /// The store's records, or why they could not be read.
    pub loaded: Result<crate::store::Loaded, StoreError>,
    /// What was seen besides the store (Maskinporten's registered keys, proofs, certificates).
    pub observed: findings::Observed,
    pub findings: Vec<Finding>,
}

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

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How long after a key was registered through Digdir's API a promotion without a proof
/// waits: Digdir documents 0-2 minutes of propagation, and users have seen several.
pub const PROPAGATION_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Key sets in progress at once by default: enough to keep the store's request limit busy
/// while keys are generated, and while requests wait out a throttled vault's back-off; each
/// holds only its records.
pub const DEFAULT_PARALLELISM: usize = 256;

/// The adapters a run uses, shared by every command and the worker. Built complete with
/// [`Engine::new`] and the `with_` settings; nothing is patched afterwards.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn KeyStore>,
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
            parallelism: DEFAULT_PARALLELISM,
            keygen_slots: Arc::new(tokio::sync::Semaphore::new(cores.max(1))),
            stop: StopFlag::default(),
            prover: Arc::new(NoProver),
            attempts: Attempts::default(),
        }
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
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How many key sets are worked on at once (at least one).
    pub fn with_parallelism(mut self, parallelism: usize) -> Self {
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

    /// Loads `targets` and evaluates their findings at `at`, as `status` and the worker do.
    pub async fn evaluate(&self, targets: &[Target], at: impl Into<Moment>) -> Evaluation {
        let at = at.into();
        let loaded = self.load(targets).await;
        let observed = self.observe(targets, &loaded, at).await;
        let findings = findings::evaluate_all(targets, &loaded, &observed, at);
        Evaluation { loaded, observed, findings }
    }

    async fn registered(
        &self,
        set: &KeySet,
    ) -> Option<(KeySet, Result<crate::publish::Registered, PublishError>)> {
        Some((set.clone(), self.publisher.registered(set).await?))
    }

    /// What findings need besides the records: the consumer secrets, what Maskinporten has
    /// registered, the last proof of each due pending key (one grant for a key this process has
    /// not tried yet), and the admin certificates.
    async fn observe(
        &self,
        targets: &[Target],
        loaded: &Result<crate::store::Loaded, StoreError>,
        at: Moment,
    ) -> findings::Observed {
        let sets: Vec<KeySet> = targets.iter().map(|t| t.key_set.clone()).collect();
        let consumers = crate::store::consumers(self.store.as_ref(), &sets);
        // Collected first, as in `run`, so that the future stays `Send` for the worker.
        let reads: Vec<_> = sets.iter().map(|set| self.registered(set)).collect();
        let registered: Vec<_> = futures::stream::iter(reads).buffer_unordered(16).collect().await;
        let registered = registered.into_iter().flatten().collect();
        let mut proofs = BTreeMap::new();
        for t in targets {
            let Ok(records) = findings::records_of(loaded, &t.key_set) else { continue };
            let Some(pending) = proof_due(t, records, at, &Request::default()) else { continue };
            let last = self.attempts.last(&t.key_set).filter(|a| a.kid == pending.kid);
            let attempt = match last {
                Some(a) => a,
                None if self.prover.can_prove(&t.key_set) => {
                    let outcome = match self.store.private_key(&pending.kid).await {
                        Ok(key) => self.prover.prove(&t.key_set, &key, Patience::Once).await,
                        Err(e) => Err(ProofError { kind: "store", message: e.to_string() }),
                    };
                    let a = Attempt { kid: pending.kid.clone(), at: at.now, outcome };
                    self.attempts.record(&t.key_set, a.clone());
                    a
                }
                None => continue,
            };
            proofs.insert(t.key_set.clone(), attempt);
        }
        findings::Observed { consumers, registered, proofs, certificates: self.publisher.certificates() }
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
                self.start_set(t, records, at, request).instrument(span)
            })
            .collect();
        drop(loaded);
        let started: Vec<Started<'_>> =
            futures::stream::iter(jobs).buffer_unordered(self.parallelism).collect().await;
        let jobs: Vec<_> = started
            .into_iter()
            .map(|s| {
                let span = info_span!("key_set", key_set = %s.report.key_set);
                s.finish().instrument(span)
            })
            .collect();
        let mut reports: Vec<SetReport> =
            futures::stream::iter(jobs).buffer_unordered(self.parallelism).collect().await;
        let order: BTreeMap<&KeySet, usize> =
            targets.iter().enumerate().map(|(i, t)| (&t.key_set, i)).collect();
        reports.sort_by_key(|r| order.get(&r.key_set).copied().unwrap_or(usize::MAX));
        Ok(reports)
    }

    /// The first pass over a key set: plan, then carry out the steps up to and including the
    /// write of a new key, or all of them when it makes none.
    async fn start_set<'a>(
        &'a self,
        target: &'a Target,
        records: Result<Vec<KeyRecord>, StoreError>,
        at: Moment,
        request: &Request,
    ) -> Started<'a> {
        let mut report = SetReport::new(&target.key_set);
        if self.stop.is_stopped() {
            report.error = Some(RunError::NotStarted);
            return Started { report, run: None };
        }
        let records = match records {
            Ok(records) => records,
            Err(e) => {
                warn!(error = %e, "key set skipped");
                report.error = Some(e.into());
                return Started { report, run: None };
            }
        };
        let proof = self.prove_if_due(target, &records, at, request).await;
        let proven = proof.as_ref().filter(|a| a.outcome.is_ok()).map(|a| a.kid.clone());
        let unproven =
            proof.and_then(|a| a.outcome.err().map(|error| RunError::Unproven { kid: a.kid, error }));
        let consumer_in_use = self.consumer_in_use(target, &records);
        let request = Request { proven: proven.clone(), consumer_in_use, ..request.clone() };
        let plan = match planner::plan(&target.key_set, &records, &target.policy, at, &request) {
            Ok(plan) => plan,
            Err(refusal) => {
                report.records = records;
                report.error = Some(unproven.unwrap_or(refusal.into()));
                return Started { report, run: None };
            }
        };
        let first_key = records.is_empty();
        let mut run = SetRun {
            engine: self,
            target,
            at,
            records,
            first_key,
            proven,
            unproven,
            dirty: false,
            outputs_failed: false,
            unconfirmed: None,
            raced: None,
            next: 0,
        };
        let result = run.execute(&plan.steps, &mut report.done).await;
        report.plan = Some(plan);
        let mut started = Started { report, run: Some(run) };
        match result {
            Ok(()) if started.run.as_ref().is_some_and(|r| r.unconfirmed.is_some()) => started,
            result => {
                started.close(result).await;
                started
            }
        }
    }
}

impl Engine {
    /// With `promotion = "verified"`, proves the pending key when this run could promote it:
    /// published by an earlier run, and due (waited `publish_ahead`) or asked for (`promote`, or
    /// `retire` of the current key). Returns the attempt, also kept for findings.
    async fn prove_if_due(
        &self,
        target: &Target,
        records: &[KeyRecord],
        at: Moment,
        request: &Request,
    ) -> Option<Attempt> {
        let pending = proof_due(target, records, at, request)?;
        let verified = target.policy.promotion() == Promotion::Verified;
        if !verified && !self.prover.can_prove(&target.key_set) {
            return None; // `after-delay` proves only where it can; it needs no proof otherwise
        }
        // A key that can not be read is not proved; the rest of the run still goes ahead.
        let outcome = match self.store.private_key(&pending.kid).await {
            Ok(key) => self.prover.prove(&target.key_set, &key, Patience::WaitForPropagation).await,
            Err(e) => {
                Err(ProofError { kind: "store", message: format!("its private key could not be read: {e}") })
            }
        };
        match &outcome {
            Ok(proof) => {
                info!(kid = %pending.kid, scope = %proof.scope, "token grant with the pending key succeeded")
            }
            Err(e) => {
                warn!(kid = %pending.kid, error = %e, kind = e.kind, "token grant with the pending key failed")
            }
        }
        let attempt = Attempt { kid: pending.kid.clone(), at: at.now, outcome };
        self.attempts.record(&target.key_set, attempt.clone());
        Some(attempt)
    }

    /// The last proof attempted per key set in this process.
    pub fn attempts(&self) -> &Attempts {
        &self.attempts
    }

    /// Whether a key set without keys has a consumer secret that applications read a key from
    /// already (see [`Request::consumer_in_use`]), as the store's last load saw it.
    fn consumer_in_use(&self, target: &Target, records: &[KeyRecord]) -> bool {
        records.is_empty() && self.store.consumer(&target.key_set).is_some_and(|held| held.holds_a_key())
    }
}

/// The pending key that a run at `at` must prove before it may promote it, if any: with
/// `verified`, when it is due or asked for; with `after-delay`, when no current key works any
/// more and `publish_ahead` has not passed ([`lifecycle::needs_rescue`]: a proof promotes it at
/// once). `manual` proves on `promote` only, in the engine's check before the promotion.
pub fn proof_due<'r>(
    target: &Target,
    records: &'r [KeyRecord],
    at: Moment,
    request: &Request,
) -> Option<&'r KeyRecord> {
    let pending = lifecycle::pending(records, at.now).filter(|p| lifecycle::published_before(p, at))?;
    let current = lifecycle::current(records, at.now);
    let hand_over = request.retire.as_ref().is_some_and(|r| current.is_some_and(|c| c.kid == r.kid));
    let waited = lifecycle::published_at_least(pending, at, target.policy.publish_ahead().delta());
    let rescue = lifecycle::needs_rescue(records, &target.policy, at.now);
    match target.policy.promotion() {
        Promotion::Verified => (request.promote || hand_over || waited || rescue).then_some(pending),
        Promotion::AfterDelay => (rescue && !waited).then_some(pending),
        Promotion::Manual => None,
    }
}

/// A key set between the two passes of a run.
struct Started<'a> {
    report: SetReport,
    /// The run, unless the key set ended before it began (skipped, refused).
    run: Option<SetRun<'a>>,
}

impl Started<'_> {
    /// The second pass: confirm the new key, carry out the remaining steps, write the outputs.
    async fn finish(mut self) -> SetReport {
        let Some(run) = self.run.as_mut() else { return self.report };
        if run.unconfirmed.is_none() {
            return self.report; // closed in the first pass
        }
        let mut result = Ok(());
        while result.is_ok() && run.unconfirmed.is_some() {
            result = run.confirm(&mut self.report.done).await;
            if let Err(RunError::Store(StoreError::Exists(why))) = &result {
                // Two runs made the same kid; the vault kept the other run's version. It
                // carries out the same steps, so this one stops here, and did not fail.
                info!(kid = ?run.raced, %why, "another run wrote this key at the same moment; it carries out the rest");
                self.report.raced = run.raced.take();
                result = Ok(());
                break;
            }
            if result.is_ok()
                && let Some(plan) = &self.report.plan
            {
                result = run.execute(&plan.steps, &mut self.report.done).await;
            }
        }
        self.close(result).await;
        self.report
    }

    /// After the steps, failed or not: the outputs and the consumer secret follow the store.
    async fn close(&mut self, result: Result<(), RunError>) {
        let Some(run) = self.run.as_mut() else { return };
        let finish = run.finish().await;
        self.report.records = std::mem::take(&mut run.records);
        self.report.error = result.and(finish).err().or(run.unproven.take());
        if let Some(e) = &self.report.error {
            warn!(error = %e, "key set failed");
        }
        self.run = None;
    }
}

/// One key set's run in progress: the records as the store holds them.
struct SetRun<'a> {
    engine: &'a Engine,
    target: &'a Target,
    at: Moment,
    records: Vec<KeyRecord>,
    /// Whether the key set held no key at all when the run loaded it: only then may a new key
    /// be current at once.
    first_key: bool,
    /// The pending key a token grant proved in this run.
    proven: Option<Kid>,
    /// The proof that failed in this run: reported once the other steps are done.
    unproven: Option<RunError>,
    /// Whether the store was written since `records` was loaded.
    dirty: bool,
    /// Whether the last write of the outputs failed.
    outputs_failed: bool,
    /// A new key written to the store but not yet confirmed (see [`KeyStore::write_new`]).
    unconfirmed: Option<KeyRecord>,
    /// The new key whose confirmation found that another run's write of it won.
    raced: Option<Kid>,
    /// The next step to carry out.
    next: usize,
}

impl SetRun<'_> {
    /// Carries out the steps from `next` on; stops after a new key's write, which the caller
    /// confirms (with [`SetRun::confirm`]) before it goes on.
    async fn execute(&mut self, steps: &[Step], done: &mut usize) -> Result<(), RunError> {
        while self.next < steps.len() && self.unconfirmed.is_none() {
            let i = self.next;
            if self.engine.stop.is_stopped() {
                return Err(RunError::Stopped { done: i, total: steps.len() });
            }
            let step = &steps[i];
            info!(action = %step.action, reason = %step.reason, "step");
            if let Action::Publish { .. } = step.action {
                // Consecutive publish steps are one write of the outputs.
                let run =
                    steps[i..].iter().take_while(|s| matches!(s.action, Action::Publish { .. })).count();
                self.publish_marking(&steps[i..i + run]).await?;
                self.next += run;
                *done += run;
                continue;
            }
            self.apply(&step.action).await?;
            self.next += 1;
            if self.unconfirmed.is_none() {
                *done += 1;
            }
        }
        Ok(())
    }

    /// Confirms the new key written last: the store keeps the oldest of racing writes and
    /// fails if ours lost. Only then does the step count as done, and a first key become the
    /// one applications read.
    async fn confirm(&mut self, done: &mut usize) -> Result<(), RunError> {
        let Some(record) = self.unconfirmed.take() else { return Ok(()) };
        if let Err(e) = self.engine.store.confirm_new(&record).await {
            self.raced = matches!(e, StoreError::Exists(_)).then(|| record.kid.clone());
            return Err(e.into());
        }
        *done += 1;
        if record.stage == Stage::Current {
            self.engine.store.sync_consumer(&record).await?;
        }
        self.records.push(record);
        Ok(())
    }

    async fn apply(&mut self, action: &Action) -> Result<(), RunError> {
        match action {
            Action::Generate { kid, stage } => self.generate(kid, *stage).await,
            Action::Purge { kid } => {
                self.dirty = true;
                self.engine.store.purge(kid).await?;
                self.records.retain(|r| r.kid != *kid);
                Ok(())
            }
            Action::Promote { kid }
            | Action::Demote { kid }
            | Action::Retire { kid }
            | Action::Publish { kid } => self.transition(kid, action).await,
        }
    }

    /// Makes and stores a new key. Only an empty key set's first key may be current at once.
    async fn generate(&mut self, kid: &Kid, stage: Stage) -> Result<(), RunError> {
        if stage == Stage::Current && !self.first_key {
            let why = "a new key may be current at once only as the first key of an empty key set";
            return Err(self.refused(kid, why));
        }
        let (keygen, kid, policy) = (self.engine.keygen.clone(), kid.clone(), self.target.policy.clone());
        let key = {
            // One key per core at a time; the semaphore is never closed.
            let _slot = self.engine.keygen_slots.acquire().await.ok();
            tokio::task::spawn_blocking(move || keygen.generate(kid, policy.key_size(), policy.algorithm()))
                .await
                .map_err(|e| RunError::Interrupted(e.to_string()))??
        };
        let record = KeyRecord::new(key.public().clone(), stage, self.at);
        self.dirty = true;
        self.engine.store.write_new(&record, &key).await?;
        drop(key);
        self.unconfirmed = Some(record);
        Ok(())
    }

    /// Changes a stored key's stage or timestamps. A promotion is refused unless an earlier
    /// run published the key (by the run's time and by the host's real clock), whatever the
    /// plan says.
    async fn transition(&mut self, kid: &Kid, action: &Action) -> Result<(), RunError> {
        let mut record = self.record(kid)?;
        let promote = matches!(action, Action::Promote { .. });
        if promote && !lifecycle::published_before(&record, self.at) {
            let why = "it was not published by an earlier run (by this run's time and this host's real clock), so Maskinporten may not know it";
            return Err(self.refused(kid, why));
        }
        let verified = self.target.policy.promotion() == crate::policy::Promotion::Verified;
        if promote && verified && self.proven.as_ref() != Some(kid) {
            let why = "promotion = \"verified\" and no token grant signed with it succeeded in this run";
            return Err(self.refused(kid, why));
        }
        if promote {
            self.check_registered(kid).await?;
        }
        planner::transition(&mut record, action, self.at);
        self.dirty = true;
        if promote {
            self.engine.store.sync_consumer(&record).await?;
        }
        self.engine.store.update(&record).await?;
        self.records.retain(|r| r.kid != *kid);
        self.records.push(record);
        Ok(())
    }

    /// Before a promotion: a key set registered through Digdir's API must hold the key there
    /// now. A key removed by hand since it was published is not promoted; the outputs written
    /// at the end of the run register it again, and a later run promotes it.
    async fn check_registered(&self, kid: &Kid) -> Result<(), RunError> {
        let set = &self.target.key_set;
        let Some(found) = self.engine.publisher.registered(set).await else { return Ok(()) };
        let registered = found?;
        if registered.get(&kid.to_string()).is_some() {
            return self.check_propagated(kid).await;
        }
        Err(RunError::Publish(PublishError::Unregistered {
            kid: kid.clone(),
            client_id: registered.client_id,
        }))
    }

    /// A key registered through the API moments ago may not have reached Maskinporten yet
    /// (Digdir documents 0-2 minutes): it is promoted once a token grant signed with it
    /// succeeds (in this run, or here when the key set can be proved), or without a proof once
    /// [`PROPAGATION_MARGIN`] has passed since it was registered, by the run's time and by the
    /// host's real clock.
    async fn check_propagated(&self, kid: &Kid) -> Result<(), RunError> {
        if self.proven.as_ref() == Some(kid) {
            return Ok(());
        }
        let Some(record) = self.records.iter().find(|r| r.kid == *kid) else { return Ok(()) };
        let waited = lifecycle::published_for(record, self.at).unwrap_or_default().max(TimeDelta::zero());
        if waited >= PROPAGATION_MARGIN {
            return Ok(());
        }
        let ready = self.at.now + (PROPAGATION_MARGIN - waited);
        let set = &self.target.key_set;
        let failed = match self.prove_now(kid).await {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => format!("; a token grant signed with it failed: {e}"),
            None => String::new(),
        };
        Err(RunError::Refused(planner::Refusal(format!(
            "{kid} was registered on Maskinporten at {} ({}s ago by this host's real clock), and Digdir documents up to 2 minutes before Maskinporten knows a new key{failed}; promote it once `jwk-rotator verify {set}` succeeds, or after {} without a proof",
            record.published.map(|t| t.to_rfc3339()).unwrap_or_default(),
            waited.num_seconds(),
            ready.to_rfc3339(),
        ))))
    }

    /// A token grant signed with `kid`, when the key set can be proved.
    async fn prove_now(&self, kid: &Kid) -> Option<Result<(), ProofError>> {
        let set = &self.target.key_set;
        if !self.engine.prover.can_prove(set) {
            return None;
        }
        let key = match self.engine.store.private_key(kid).await {
            Ok(key) => key,
            Err(e) => return Some(Err(ProofError { kind: "store", message: e.to_string() })),
        };
        let outcome = self.engine.prover.prove(set, &key, Patience::WaitForPropagation).await;
        if let Ok(proof) = &outcome {
            info!(%kid, scope = %proof.scope, "token grant with the key to promote succeeded");
        }
        Some(outcome.map(|_| ()))
    }

    /// A step that would break the lifecycle's first rule; nothing is written for it.
    fn refused(&self, kid: &Kid, why: &'static str) -> RunError {
        tracing::error!(%kid, why, "step refused");
        RunError::Unsafe { kid: kid.clone(), why }
    }

    fn record(&self, kid: &Kid) -> Result<KeyRecord, RunError> {
        self.records.iter().find(|r| r.kid == *kid).cloned().ok_or_else(|| {
            StoreError::NotFound(format!("{kid} is no longer in the {}", self.engine.store.describe())).into()
        })
    }

    /// Re-reads the key set after writes, so that everything after follows the store.
    async fn reload(&mut self) -> Result<(), RunError> {
        if !self.dirty {
            return Ok(());
        }
        let set = self.target.key_set.clone();
        let loaded = self.engine.store.load(std::slice::from_ref(&set)).await?;
        self.records = crate::store::records_in(&loaded, &set)?.to_vec();
        self.dirty = false;
        Ok(())
    }

    async fn write_outputs(&mut self) -> Result<(), RunError> {
        self.reload().await?;
        let set =
            PublishedSet::from_records(&self.target.key_set, &self.records, &self.target.policy, self.at.now);
        let written = self.engine.publisher.publish(&set).await;
        self.outputs_failed = written.is_err();
        Ok(written?)
    }

    /// Writes the outputs, then records that these keys are published.
    async fn publish_marking(&mut self, steps: &[Step]) -> Result<(), RunError> {
        self.write_outputs().await?;
        for step in steps {
            self.apply(&step.action).await?;
        }
        Ok(())
    }

    /// After the steps, failed or not: outputs follow the store, and applications read the
    /// current key.
    async fn finish(&mut self) -> Result<(), RunError> {
        // Outputs that just failed to be written, with nothing changed since, are not tried a
        // second time in the same run (Digdir's API down: its retries were spent already).
        if !self.outputs_failed || self.dirty {
            self.write_outputs().await?;
        }
        let current = lifecycle::current(&self.records, self.at.now).cloned();
        if let Some(current) = current {
            self.engine.store.sync_consumer(&current).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::{DateTime, Utc};

    use crate::policy::Policy;

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
        SetRun {
            engine,
            target,
            at: now.into(),
            records,
            first_key: false,
            proven: None,
            unproven: None,
            dirty: false,
            outputs_failed: false,
            unconfirmed: None,
            raced: None,
            next: 0,
        }
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

    /// A memory store that notes the order of new keys' writes, confirmations and updates.
    struct Ordered {
        inner: MemoryStore,
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
        async fn create(&self, _: &KeyRecord, _: &crate::jwk::PrivateJwk) -> Result<(), StoreError> {
            panic!("the engine writes new keys with write_new and confirm_new");
        }
        async fn write_new(
            &self,
            record: &KeyRecord,
            key: &crate::jwk::PrivateJwk,
        ) -> Result<(), StoreError> {
            self.note("write", &record.kid);
            self.inner.create(record, key).await
        }
        async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError> {
            self.note("confirm", &record.kid);
            Ok(())
        }
        async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
            self.note("update", &record.kid);
            self.inner.update(record).await
        }
        async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
            self.inner.purge(kid).await
        }
    }

    /// Racing writers are looked for once per run: every new key is written before the first
    /// is confirmed, and nothing else is written for a key before it is confirmed.
    #[tokio::test]
    async fn a_run_writes_every_new_key_before_it_confirms_any() {
        let store = Arc::new(Ordered { inner: MemoryStore::new(), log: Default::default() });
        let engine = crate::testing::engine(store.clone()).0.with_parallelism(3);
        let targets: Vec<Target> = (0..12)
            .map(|i| Target {
                key_set: format!("k{i}-TEST").parse().expect("set"),
                policy: Policy::default(),
            })
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
                    assert!(
                        confirmed.is_some_and(|c| c < i),
                        "{kid} updated before it was confirmed: {log:?}"
                    );
                }
            }
        }
    }
}
