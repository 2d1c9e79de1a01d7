//! One key set's run: plan it, carry the steps out in the safe order (a new key is written in
//! the first pass and confirmed in the second), then write the outputs and the consumer
//! secret, whatever happened.

use tracing::{info, warn};

use super::events::kind_of;
use super::{Engine, RunError, SetReport};
use crate::events::EventType;
use crate::kid::Kid;
use crate::lifecycle;
use crate::moment::Moment;
use crate::planner::{self, Action, Request, Step};
use crate::policy::Target;
use crate::publish::PublishedSet;
use crate::record::{KeyRecord, Stage};
use crate::store::{Place, StoreError};

impl Engine {
    /// The first pass over a key set: plan, then carry out the steps up to and including the
    /// write of a new key, or all of them when it makes none.
    pub(super) async fn start_set<'a>(
        &'a self,
        target: &'a Target,
        records: Result<Vec<KeyRecord>, StoreError>,
        at: Moment,
        request: &Request,
        run_id: &str,
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
        let mut run = SetRun::new(self, target, at, records, proven);
        run.unproven = unproven;
        run.run_id = run_id.to_owned();
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

/// A key set between the two passes of a run.
pub(super) struct Started<'a> {
    pub(super) report: SetReport,
    /// The run, unless the key set ended before it began (skipped, refused).
    pub(super) run: Option<SetRun<'a>>,
}

impl Started<'_> {
    /// The second pass: confirm the new key, carry out the remaining steps, write the outputs.
    pub(super) async fn finish(mut self) -> SetReport {
        let Some(run) = self.run.as_mut() else { return self.report };
        if run.unconfirmed.is_none() {
            return self.report; // closed in the first pass
        }
        let mut result = Ok(());
        while result.is_ok() && run.unconfirmed.is_some() {
            result = run.confirm(&mut self.report.done).await;
            if let Err(RunError::Store(StoreError::Exists { message: why, .. })) = &result {
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
    pub(super) async fn close(&mut self, result: Result<(), RunError>) {
        let Some(run) = self.run.as_mut() else { return };
        let finish = run.finish().await;
        self.report.records = std::mem::take(&mut run.records);
        self.report.events = std::mem::take(&mut run.changes);
        self.report.restart = run.restart.take();
        self.report.error = result.and(finish).err().or(run.unproven.take());
        if let Some(e) = &self.report.error {
            warn!(error = %e, "key set failed");
        }
        self.run = None;
    }
}

/// One key set's run in progress: the records as the store holds them.
pub(super) struct SetRun<'a> {
    pub(super) engine: &'a Engine,
    pub(super) target: &'a Target,
    pub(super) at: Moment,
    pub(super) records: Vec<KeyRecord>,
    /// Whether the key set held no key at all when the run loaded it: only then may a new key
    /// be current at once.
    pub(super) first_key: bool,
    /// The pending key a token grant proved in this run.
    pub(super) proven: Option<Kid>,
    /// The proof that failed in this run: reported once the other steps are done.
    pub(super) unproven: Option<RunError>,
    /// Whether the store was written since `records` was loaded.
    pub(super) dirty: bool,
    /// Whether the last write of the outputs failed.
    pub(super) outputs_failed: bool,
    /// A new key written to the store but not yet confirmed (see [`KeyStore::write_new`]).
    pub(super) unconfirmed: Option<KeyRecord>,
    /// The new key whose confirmation found that another run's write of it won.
    pub(super) raced: Option<Kid>,
    /// The next step to carry out.
    pub(super) next: usize,
    /// The run's id, in its events.
    pub(super) run_id: String,
    /// The reason of the step being carried out, in its events.
    pub(super) reason: String,
    /// The events of the changes made so far, in order.
    pub(super) changes: Vec<crate::events::Event>,
    /// The restarts made for the current key in this run.
    pub(super) restart: Option<crate::restart::RestartOutcome>,
}

impl<'a> SetRun<'a> {
    /// A run over `records` as loaded, in which `proven` was proved (if any).
    pub(super) fn new(
        engine: &'a Engine,
        target: &'a Target,
        at: Moment,
        records: Vec<KeyRecord>,
        proven: Option<Kid>,
    ) -> Self {
        let first_key = records.is_empty();
        SetRun {
            engine,
            target,
            at,
            records,
            first_key,
            proven,
            unproven: None,
            dirty: false,
            outputs_failed: false,
            unconfirmed: None,
            raced: None,
            next: 0,
            run_id: String::new(),
            reason: String::new(),
            changes: Vec::new(),
            restart: None,
        }
    }

    /// Carries out the steps from `next` on; stops after a new key's write, which the caller
    /// confirms (with [`SetRun::confirm`]) before it goes on.
    pub(super) async fn execute(&mut self, steps: &[Step], done: &mut usize) -> Result<(), RunError> {
        while self.next < steps.len() && self.unconfirmed.is_none() {
            let i = self.next;
            if self.engine.stop.is_stopped() {
                return Err(RunError::Stopped { done: i, total: steps.len() });
            }
            let step = &steps[i];
            info!(action = %step.action, reason = %step.reason, "step");
            self.reason.clone_from(&step.reason);
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
    pub(super) async fn confirm(&mut self, done: &mut usize) -> Result<(), RunError> {
        let Some(record) = self.unconfirmed.take() else { return Ok(()) };
        if let Err(e) = self.engine.store.confirm_new(&record).await {
            self.raced = matches!(e, StoreError::Exists { .. }).then(|| record.kid.clone());
            return Err(e.into());
        }
        *done += 1;
        self.changed(EventType::Generated, &record.kid, "none", record.stage.as_str());
        if record.stage == Stage::Current {
            self.engine.sync_consumer(&record).await?;
        }
        self.records.push(record);
        Ok(())
    }

    pub(super) async fn apply(&mut self, action: &Action) -> Result<(), RunError> {
        match action {
            Action::Generate { kid, stage } => self.generate(kid, *stage).await,
            Action::Purge { kid } => {
                self.dirty = true;
                self.engine.store.purge(kid).await?;
                self.records.retain(|r| r.kid != *kid);
                self.changed(EventType::Purged, kid, Stage::Retired.as_str(), "gone");
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
        let (keygen, new, policy) = (self.engine.keygen.clone(), kid.clone(), self.target.policy.clone());
        let key = {
            // One key per core at a time; the semaphore is never closed.
            let _slot = self.engine.keygen_slots.acquire().await.ok();
            tokio::task::spawn_blocking(move || keygen.generate(new, policy.key_size(), policy.algorithm()))
                .await
                .map_err(|e| RunError::Interrupted { kid: kid.clone(), reason: e.to_string() })??
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
        let from = record.stage;
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
            self.engine.sync_consumer(&record).await?;
        }
        self.engine.store.update(&record).await?;
        self.changed(kind_of(action), kid, from.as_str(), record.stage.as_str());
        self.records.retain(|r| r.kid != *kid);
        self.records.push(record);
        Ok(())
    }

    /// A step that would break the lifecycle's first rule; nothing is written for it.
    pub(super) fn refused(&self, kid: &Kid, why: &'static str) -> RunError {
        tracing::error!(%kid, why, "step refused");
        RunError::Unsafe { kid: kid.clone(), why }
    }

    pub(super) fn record(&self, kid: &Kid) -> Result<KeyRecord, RunError> {
        self.records.iter().find(|r| r.kid == *kid).cloned().ok_or_else(|| {
            let message = format!("{kid} is no longer in the {}", self.engine.store.describe());
            StoreError::NotFound { place: Place::Key(kid.clone()), message }.into()
        })
    }

    /// Re-reads the key set after writes, so that everything after follows the store.
    pub(super) async fn reload(&mut self) -> Result<(), RunError> {
        if !self.dirty {
            return Ok(());
        }
        let set = self.target.key_set.clone();
        let loaded = self.engine.store.load(std::slice::from_ref(&set)).await?;
        self.records = crate::store::records_in(&loaded, &set)?.to_vec();
        self.dirty = false;
        Ok(())
    }

    pub(super) async fn write_outputs(&mut self) -> Result<(), RunError> {
        self.reload().await?;
        let set =
            PublishedSet::from_records(&self.target.key_set, &self.records, &self.target.policy, self.at.now);
        let written = self.engine.publisher.publish(&set).await;
        self.outputs_failed = written.is_err();
        Ok(written?)
    }

    /// Writes the outputs, then records that these keys are published.
    pub(super) async fn publish_marking(&mut self, steps: &[Step]) -> Result<(), RunError> {
        self.write_outputs().await?;
        for step in steps {
            self.reason.clone_from(&step.reason);
            self.apply(&step.action).await?;
        }
        let kids: Vec<Kid> = steps.iter().map(|s| s.action.kid().clone()).collect();
        self.read_back(&kids);
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
            self.engine.sync_consumer(&current).await?;
            self.restart = self.restart_applications(&current).await?;
        }
        Ok(())
    }
}
