//! After the consumer secret holds the current key: restarting the client's applications once
//! for that key's promotion, and recording on the key's record that it was done, so that a
//! retry or a run after a crash restarts only what was not finished.

use tracing::warn;

use super::report::RunError;
use super::set_run::SetRun;
use crate::events::EventType;
use crate::record::KeyRecord;
use crate::restart::RestartOutcome;

impl SetRun<'_> {
    /// Restarts the applications of the key set's client for `current`, unless its record
    /// says that was done. The record is written only when every restart succeeded; a failed
    /// one is reported in the outcome (and tried again by the next run), never failing the run.
    pub(super) async fn restart_applications(
        &mut self,
        current: &KeyRecord,
    ) -> Result<Option<RestartOutcome>, RunError> {
        let Some(restarter) = &self.engine.restarter else { return Ok(None) };
        if current.restarted.is_some() || !restarter.restarts(&self.target.key_set) {
            return Ok(None);
        }
        let activated = current.activated.unwrap_or(current.created);
        let outcome = restarter.restart(&current.kid, activated, self.at.now).await;
        self.restart_events(&outcome);
        if !outcome.succeeded() {
            for e in outcome.failures() {
                warn!(kid = %current.kid, error = %e, "restart failed");
            }
            return Ok(Some(outcome));
        }
        let record = KeyRecord { restarted: Some(self.at.now), ..current.clone() };
        self.engine.store.update(&record).await?;
        self.dirty = true;
        self.reload().await?;
        Ok(Some(outcome))
    }

    /// One `restart.succeeded` or `restart.failed` per application, for the promoted key: `to`
    /// names the application, `reason` why it failed.
    fn restart_events(&mut self, outcome: &RestartOutcome) {
        let step_reason = std::mem::take(&mut self.reason);
        for result in &outcome.results {
            let (kind, reason) = match &result.error {
                None => (EventType::Restarted, "the consumer secret holds the promoted key".to_owned()),
                Some(e) => (EventType::RestartFailed, format!("{e}; the next run tries again")),
            };
            self.reason = reason;
            self.changed(kind, &outcome.kid, "promoted", &result.target.to_string());
        }
        self.reason = step_reason;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use crate::engine::Engine;
    use crate::events::EventType;
    use crate::kid::{KeySet, Kid};
    use crate::planner::Request;
    use crate::policy::{Policy, Target};
    use crate::restart::{RestartError, RestartOutcome, RestartResult, RestartTarget, Restarter, Workload};
    use crate::store::{Consumer, ConsumerSecrets, MemoryStore, Opened};
    use crate::testing::at;

    /// A restart as the fake saw it: the key, its activation, the consumer secret's content.
    type Call = (Kid, DateTime<Utc>, Option<Consumer>);

    /// Records each restart with what the consumer secret held at that moment; fails while
    /// `failing` is set.
    struct Fake {
        store: Arc<MemoryStore>,
        calls: Mutex<Vec<Call>>,
        failing: Mutex<bool>,
    }

    #[async_trait]
    impl Restarter for Fake {
        fn restarts(&self, set: &KeySet) -> bool {
            set.client().as_str() == "a"
        }

        async fn restart(&self, kid: &Kid, activated: DateTime<Utc>, now: DateTime<Utc>) -> RestartOutcome {
            let held = self.store.consumer(kid.key_set());
            self.calls.lock().expect("calls").push((kid.clone(), activated, held));
            let target = RestartTarget::Kubernetes {
                workload: Workload::Deployment,
                namespace: "team-a".to_owned(),
                name: "app".to_owned(),
            };
            let error = (*self.failing.lock().expect("flag")).then(|| RestartError::Unreachable {
                target: target.to_string(),
                api: "the Kubernetes API",
                cause: "connection refused".to_owned(),
            });
            let results = vec![RestartResult { target, error }];
            RestartOutcome { key_set: kid.key_set().clone(), kid: kid.clone(), at: now, results }
        }
    }

    fn setup() -> (Arc<MemoryStore>, Arc<Fake>, Engine, Target) {
        let store = Arc::new(MemoryStore::new());
        let target = Target { key_set: "a-TEST".parse().expect("set"), policy: Policy::default() };
        store.set_consumer(&target.key_set, Consumer::Empty);
        let fake =
            Arc::new(Fake { store: store.clone(), calls: Mutex::default(), failing: Mutex::new(false) });
        let engine = crate::testing::engine_over(Opened::with_consumers(store.clone())).0;
        (store, fake.clone(), engine.with_restarter(fake), target)
    }

    fn kid(text: &str) -> Kid {
        text.parse().expect("kid")
    }

    async fn run(engine: &Engine, target: &Target, now: &str, request: &Request) -> crate::engine::SetReport {
        let reports = engine.run(std::slice::from_ref(target), at(now), request).await.expect("run");
        reports.into_iter().next().expect("report")
    }

    #[tokio::test]
    async fn each_promotion_restarts_once_after_the_consumer_secret_holds_the_key() {
        let (store, fake, engine, target) = setup();
        let report = run(&engine, &target, "2026-11-21T06:00:00Z", &Request::default()).await;
        assert!(report.restart.as_ref().is_some_and(RestartOutcome::succeeded), "{report:?}");
        let first = kid("a-TEST.2026-11-21");
        let restarted: Vec<_> = report.events.iter().filter(|e| e.kind == EventType::Restarted).collect();
        assert_eq!(restarted.len(), 1, "one restart.succeeded per application: {:?}", report.events);
        assert_eq!(restarted[0].subject, first.to_string());
        assert!(restarted[0].data.to.as_deref().is_some_and(|to| to.contains("team-a/app")), "{restarted:?}");
        // The same run again, and a run that only makes a pending key: no restart.
        run(&engine, &target, "2026-11-21T06:00:00Z", &Request::default()).await;
        let report = run(&engine, &target, "2027-02-19T06:00:00Z", &Request::default()).await;
        assert!(report.restart.is_none(), "a pending key restarts nothing");
        let promote = Request { promote: true, ..Request::default() };
        run(&engine, &target, "2027-02-20T06:00:00Z", &promote).await;
        run(&engine, &target, "2027-02-20T07:00:00Z", &Request::default()).await;
        let second = kid("a-TEST.2027-02-19");
        let calls = fake.calls.lock().expect("calls").clone();
        assert_eq!(
            calls,
            [
                (first.clone(), at("2026-11-21T06:00:00Z"), Some(Consumer::Kid(first.clone()))),
                (second.clone(), at("2027-02-20T06:00:00Z"), Some(Consumer::Kid(second.clone()))),
            ],
            "once per promotion, with the consumer secret holding the key already"
        );
        let restarted = store.records().into_iter().find(|r| r.kid == second).and_then(|r| r.restarted);
        assert_eq!(restarted, Some(at("2027-02-20T06:00:00Z")), "recorded on the key's record");
    }

    #[tokio::test]
    async fn a_failed_restart_fails_no_run_and_the_next_run_tries_again() {
        let (store, fake, engine, target) = setup();
        *fake.failing.lock().expect("flag") = true;
        let report = run(&engine, &target, "2026-11-21T06:00:00Z", &Request::default()).await;
        assert!(report.ok(), "a failed restart is not a failed rotation: {:?}", report.error);
        let outcome = report.restart.expect("outcome");
        assert_eq!(outcome.failures().count(), 1);
        assert!(outcome.failures().all(|e| e.to_string().contains("team-a/app")));
        let failed: Vec<_> = report.events.iter().filter(|e| e.kind == EventType::RestartFailed).collect();
        assert_eq!(failed.len(), 1, "{:?}", report.events);
        assert!(failed[0].data.reason.contains("the next run tries again"), "{failed:?}");
        assert!(store.records().iter().all(|r| r.restarted.is_none()), "not recorded as done");
        *fake.failing.lock().expect("flag") = false;
        run(&engine, &target, "2026-11-21T07:00:00Z", &Request::default()).await;
        run(&engine, &target, "2026-11-21T08:00:00Z", &Request::default()).await;
        assert_eq!(fake.calls.lock().expect("calls").len(), 2, "tried again once, then done");
        assert!(store.records().iter().all(|r| r.restarted == Some(at("2026-11-21T07:00:00Z"))));
    }

    /// A run killed between the promotion and the restart (here: an engine without the
    /// restarter promotes) leaves the record without `restarted`; the next run restarts once.
    #[tokio::test]
    async fn a_run_cut_off_after_the_promotion_is_finished_by_the_next() {
        let (store, fake, engine, target) = setup();
        let (plain, _) = crate::testing::engine_over(Opened::with_consumers(store.clone()));
        run(&plain, &target, "2026-11-21T06:00:00Z", &Request::default()).await;
        assert!(fake.calls.lock().expect("calls").is_empty());
        run(&engine, &target, "2026-11-21T06:30:00Z", &Request::default()).await;
        run(&engine, &target, "2026-11-21T07:00:00Z", &Request::default()).await;
        let calls = fake.calls.lock().expect("calls").clone();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].1, at("2026-11-21T06:00:00Z"), "the annotation is the promotion's time");
    }
}
