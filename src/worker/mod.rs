//! The long-running `worker`: runs on the schedule, serves its status page, `/healthz` and
//! `/metrics`, sends alerts.

pub mod alerts;
pub mod metrics;
pub mod schedule;
pub mod server;
pub mod webhook;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::task::JoinHandle;
use tracing::{Instrument, info, info_span, warn};

use crate::engine::{Engine, SetReport};
use crate::findings::Finding;
use crate::moment::Moment;
use crate::planner::Request;
use crate::policy::Target;
use crate::status::StatusReport;
use crate::store::StoreError;
use alerts::Notifier;
use metrics::Metrics;
use schedule::{Clock, Schedule, sleep_until};
use server::{FrontPage, Health, RunSummary};

/// One run as the worker saw it; the last thousand are kept for tests and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLog {
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// 0 for a scheduled run, 1.. for retries.
    pub attempt: u32,
    pub ok: bool,
}

const HISTORY: usize = 1000;

/// Everything a worker needs; see `app::worker::from_config` for the production set-up.
pub struct Worker {
    pub engine: Engine,
    pub targets: Vec<Target>,
    pub schedule: Schedule,
    pub clock: Arc<dyn Clock>,
    /// The host's real clock, which every write records beside `clock`'s time: the same clock,
    /// unless `clock` was started at `JWK_ROTATOR_NOW`.
    pub real: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// The status page of the last evaluation, which `/` serves.
    pub page: Arc<FrontPage>,
    pub notifier: Notifier,
    /// Findings are evaluated this often between runs.
    pub check_every: Duration,
    history: Mutex<Vec<RunLog>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Run { attempt: u32 },
    Check,
}

/// The loop's own state: what is due next and what is running.
struct Due {
    tick: Option<DateTime<Utc>>,
    retry: Option<(u32, DateTime<Utc>)>,
    check: DateTime<Utc>,
    running: Option<(Job, JoinHandle<Option<bool>>)>,
    /// A tick came while a check was going: run when it ends.
    run_waiting: bool,
}

impl Due {
    fn wake(&self) -> DateTime<Utc> {
        let retry = self.retry.filter(|_| self.running.is_none()).map(|(_, at)| at);
        [self.tick, retry, Some(self.check)].into_iter().flatten().min().unwrap_or(self.check)
    }
}

enum Wake {
    Shutdown,
    JobDone(Option<bool>),
    Time,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: Engine,
        targets: Vec<Target>,
        schedule: Schedule,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        notifier: Notifier,
        check_every: Duration,
    ) -> Self {
        let jitter = schedule.config().jitter.to_std();
        let health = Arc::new(Health::new(Duration::from_secs(600) + jitter));
        let worker = Worker {
            engine,
            targets,
            schedule,
            real: clock.clone(),
            clock,
            metrics,
            health,
            page: Arc::default(),
            notifier,
            check_every,
            history: Mutex::default(),
        };
        worker.announce(worker.clock.now());
        worker
    }

    /// The same worker with `real` as the host's real clock (see [`Worker::real`]).
    pub(crate) fn with_real_clock(mut self, real: Arc<dyn Clock>) -> Self {
        self.real = real;
        self
    }

    /// The moment a run or evaluation happens: the worker's time and the real clock.
    fn moment(&self) -> Moment {
        Moment::new(self.clock.now(), self.real.now())
    }

    /// Tells `/healthz` and `/metrics` when the next tick after `now` is; returns it.
    fn announce(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tick = self.schedule.next_after(now);
        self.health.set_next_run(tick);
        self.metrics.next_run.set(tick.map_or(0, |t| t.timestamp()));
        let period = self.schedule.period(now).map_or(0, |p| p.as_secs());
        self.metrics.schedule_period.set(i64::try_from(period).unwrap_or(i64::MAX));
        tick
    }

    /// The runs so far (the last thousand).
    pub fn history(&self) -> Vec<RunLog> {
        self.history.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Runs until `shutdown` completes, then lets the key set in progress finish its step and
    /// returns within the schedule's `shutdown_timeout`.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let now = self.clock.now();
        let check = now + TimeDelta::from_std(self.check_every).unwrap_or(TimeDelta::hours(1));
        let mut due = Due { tick: None, retry: None, check, running: None, run_waiting: false };
        self.set_next_tick(&mut due, now);
        let next = due.tick.map(|t| t.to_rfc3339()).unwrap_or_default();
        let config = self.schedule.config();
        info!(cron = %config.cron, timezone = %config.timezone, next = %next, "worker started");
        // A first evaluation at once fills /metrics and sends what is already wrong.
        let first = if config.run_at_start { Job::Run { attempt: 0 } } else { Job::Check };
        self.start(&mut due, first);
        loop {
            let wake = due.wake();
            let event = tokio::select! {
                biased;
                () = &mut shutdown => Wake::Shutdown,
                done = job_done(&mut due.running) => Wake::JobDone(done),
                () = sleep_until(self.clock.as_ref(), wake) => Wake::Time,
            };
            match event {
                Wake::Shutdown => break,
                Wake::JobDone(ok) => self.finished(&mut due, ok),
                Wake::Time => self.on_time(&mut due),
            }
        }
        self.shut_down(due).await;
    }

    fn set_next_tick(&self, due: &mut Due, now: DateTime<Utc>) {
        due.tick = self.announce(now);
    }

    fn on_time(self: &Arc<Self>, due: &mut Due) {
        let now = self.clock.now();
        if due.tick.is_some_and(|t| t <= now) {
            match due.running {
                Some((Job::Run { .. }, _)) => {
                    self.metrics.skipped_ticks.inc();
                    let tick = due.tick.map(|t| t.to_rfc3339()).unwrap_or_default();
                    warn!(tick = %tick, "tick skipped: the previous run is still going");
                }
                Some((Job::Check, _)) => due.run_waiting = true,
                None => {
                    due.retry = None;
                    self.start(due, Job::Run { attempt: 0 });
                }
            }
            self.set_next_tick(due, now);
        }
        if let Some((attempt, at)) = due.retry.filter(|(_, at)| *at <= now && due.running.is_none()) {
            info!(attempt, due = %at.to_rfc3339(), "retrying the failed run");
            due.retry = None;
            self.start(due, Job::Run { attempt });
        }
        if due.check <= now {
            if due.running.is_none() {
                self.start(due, Job::Check);
            }
            due.check = now + TimeDelta::from_std(self.check_every).unwrap_or(TimeDelta::hours(1));
        }
    }

    fn start(self: &Arc<Self>, due: &mut Due, job: Job) {
        let worker = self.clone();
        let handle = match job {
            Job::Run { attempt } => {
                let span = info_span!("run", attempt);
                tokio::spawn(async move { worker.run_job(attempt).await }.instrument(span))
            }
            Job::Check => tokio::spawn(async move {
                worker.evaluate().await;
                None
            }),
        };
        due.running = Some((job, handle));
    }

    fn finished(self: &Arc<Self>, due: &mut Due, ok: Option<bool>) {
        let Some((job, _)) = due.running.take() else { return };
        if let (Job::Run { attempt }, Some(false)) = (job, ok) {
            let now = self.clock.now();
            due.retry = self.schedule.retry_at(now, attempt + 1, due.tick).map(|at| (attempt + 1, at));
            match due.retry {
                Some((n, at)) => info!(retry = n, at = %at.to_rfc3339(), "the run failed; retrying"),
                None => warn!("the run failed; no retry is left before the next tick"),
            }
        }
        if std::mem::take(&mut due.run_waiting) {
            self.start(due, Job::Run { attempt: 0 });
        }
    }

    /// One run now, outside the schedule (tests, benchmarks); `Some(true)` when it succeeded.
    #[cfg(test)]
    pub(crate) async fn run_now(self: &Arc<Self>) -> Option<bool> {
        self.clone().run_job(0).await
    }

    /// One run: wait the jitter, run every key set, then evaluate and alert. `None` when
    /// shutdown came first.
    async fn run_job(self: Arc<Self>, attempt: u32) -> Option<bool> {
        if !self.wait_jitter().await {
            return None;
        }
        let at = self.moment();
        let started = at.now;
        let reports = self.engine.run(&self.targets, at, &Request::default()).await;
        let finished = self.clock.now();
        let summary = summarize(&reports, finished);
        self.metrics.record_run(&reports, finished);
        if summary.ok {
            info!(key_sets = self.targets.len(), "run finished");
        } else {
            warn!(errors = %summary.errors.join("; "), "run failed");
        }
        let ok = summary.ok;
        self.health.record(summary);
        if let Ok(mut history) = self.history.lock() {
            history.push(RunLog { started, finished, attempt, ok });
            let excess = history.len().saturating_sub(HISTORY);
            history.drain(..excess);
        }
        self.evaluate().await;
        Some(ok)
    }

    /// Waits a random part of `jitter`, a second at a time so that shutdown need not wait for
    /// it; false when shutdown came first.
    async fn wait_jitter(&self) -> bool {
        let mut left = self.schedule.jitter();
        while !left.is_zero() && !self.engine.stop().is_stopped() {
            let step = left.min(Duration::from_secs(1));
            tokio::time::sleep(step).await;
            left -= step;
        }
        !self.engine.stop().is_stopped()
    }

    /// Loads every key set, evaluates findings as `status` does, updates the metrics and
    /// sends what changed.
    pub async fn evaluate(&self) -> Vec<Finding> {
        let at = self.moment();
        let now = at.now;
        let evaluation = self.engine.evaluate(&self.targets, at).await;
        let found = evaluation.findings.clone();
        self.metrics.observe(&self.targets, &evaluation.loaded, &evaluation.observed, &found, now);
        let report = StatusReport::new(&self.engine, &self.targets, evaluation, at);
        let minute = crate::status::page::minute;
        let next = self.schedule.next_after(now).map_or_else(|| "none".to_owned(), minute);
        let footer = format!("Evaluated at {} by the worker's clock; next run at {next}.", minute(now));
        self.page.set(crate::status::page::render(&report, &footer));
        self.health.mark_evaluated();
        self.notifier.notify(&found, now).await;
        found
    }

    async fn shut_down(&self, mut due: Due) {
        self.engine.stop().stop();
        let Some((_, handle)) = due.running.take() else {
            info!("worker stopped");
            return;
        };
        info!("shutting down: waiting for the key set in progress to finish its step");
        let limit = self.schedule.shutdown_timeout();
        let abort = handle.abort_handle();
        if tokio::time::timeout(limit, handle).await.is_err() {
            abort.abort();
            let why = "shutdown_timeout passed; the run was stopped mid-step, the next run finishes it";
            warn!(timeout = ?limit, "{why}");
        }
        info!("worker stopped");
    }
}

/// Waits for the running job, if any; never completes otherwise.
async fn job_done(running: &mut Option<(Job, JoinHandle<Option<bool>>)>) -> Option<bool> {
    match running {
        Some((_, handle)) => match handle.await {
            Ok(ok) => ok,
            Err(e) => {
                warn!(error = %e, "a worker job stopped unexpectedly");
                Some(false)
            }
        },
        None => std::future::pending().await,
    }
}

fn summarize(reports: &Result<Vec<SetReport>, StoreError>, finished: DateTime<Utc>) -> RunSummary {
    let errors = match reports {
        Ok(reports) => {
            reports.iter().filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.key_set))).collect()
        }
        Err(e) => vec![e.to_string()],
    };
    RunSummary { finished, ok: errors.is_empty(), errors }
}
