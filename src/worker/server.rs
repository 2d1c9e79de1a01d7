//! The worker's HTTP endpoint: `/` (the status page), `/healthz` (is the schedule being kept?)
//! and `/metrics`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;

use super::metrics::Metrics;
use super::schedule::Clock;

/// How a finished run went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub finished: DateTime<Utc>,
    pub ok: bool,
    /// Key sets that failed, or the store error that stopped the whole run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Default)]
struct HealthState {
    last_run: Option<RunSummary>,
    last_success: Option<DateTime<Utc>>,
    next_run: Option<DateTime<Utc>>,
    /// Whether the key sets were evaluated once, so that `/metrics` holds their series.
    evaluated: bool,
}

/// Why both endpoints answer 503 right after the start.
const STARTING: &str = "the first evaluation of the key sets has not finished yet";

/// What `/healthz` answers from; the worker loop writes it.
#[derive(Debug)]
pub struct Health {
    state: Mutex<HealthState>,
    /// How late the next run may be before the worker counts as stuck.
    grace: TimeDelta,
}

impl Health {
    pub fn new(grace: Duration) -> Self {
        let grace = TimeDelta::from_std(grace).unwrap_or(TimeDelta::minutes(10));
        Health { state: Mutex::new(HealthState::default()), grace }
    }

    pub(crate) fn set_next_run(&self, at: Option<DateTime<Utc>>) {
        if let Ok(mut s) = self.state.lock() {
            s.next_run = at;
        }
    }

    pub fn record(&self, run: RunSummary) {
        if let Ok(mut s) = self.state.lock() {
            if run.ok {
                s.last_success = Some(run.finished);
            }
            s.last_run = Some(run);
        }
    }

    /// Called after every evaluation: from the first on, `/metrics` holds every key series.
    pub(crate) fn mark_evaluated(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.evaluated = true;
        }
    }

    pub fn evaluated(&self) -> bool {
        self.state.lock().is_ok_and(|s| s.evaluated)
    }

    /// Healthy once the key sets were evaluated, while the last run (if any) succeeded and the
    /// next one is not overdue; the body says why not.
    pub(crate) fn verdict(&self, now: DateTime<Utc>) -> (bool, serde_json::Value) {
        let Ok(s) = self.state.lock() else {
            return (false, json!({"status": "unhealthy", "reasons": ["health state poisoned"]}));
        };
        let mut reasons = Vec::new();
        if !s.evaluated {
            reasons.push(STARTING.to_owned());
        }
        if let Some(run) = s.last_run.as_ref().filter(|r| !r.ok) {
            reasons.push(format!(
                "the last run, finished {}, failed: {}",
                run.finished.to_rfc3339(),
                run.errors.join("; ")
            ));
        }
        match s.next_run {
            Some(next) if now > next + self.grace => {
                reasons.push(format!("the run due at {} has not started", next.to_rfc3339()));
            }
            None => reasons.push("the schedule has no next run".to_owned()),
            Some(_) => {}
        }
        let healthy = reasons.is_empty();
        let body = json!({
            "status": if healthy { "ok" } else { "unhealthy" },
            "reasons": reasons,
            "last_run": s.last_run,
            "last_success": s.last_success,
            "next_run": s.next_run,
        });
        (healthy, body)
    }
}

/// The status page of the last evaluation, rendered once per evaluation and served as is.
#[derive(Debug, Default)]
pub struct FrontPage(Mutex<Option<String>>);

impl FrontPage {
    pub fn set(&self, html: String) {
        if let Ok(mut page) = self.0.lock() {
            *page = Some(html);
        }
    }

    pub fn html(&self) -> Option<String> {
        self.0.lock().ok().and_then(|page| page.clone())
    }
}

/// What the handlers read.
#[derive(Clone)]
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub clock: Arc<dyn Clock>,
    pub page: Arc<FrontPage>,
}

impl ServerState {
    /// What `worker`'s endpoint serves.
    pub fn of(worker: &super::Worker) -> Self {
        ServerState {
            metrics: worker.metrics.clone(),
            health: worker.health.clone(),
            clock: worker.clock.clone(),
            page: worker.page.clone(),
        }
    }
}

pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/", get(front_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The status page of the last evaluation; 503 before the first, like `/metrics`. Its CSP
/// forbids everything but its own inline style: no script, no request anywhere.
async fn front_page(State(state): State<ServerState>) -> Response {
    let Some(html) = state.page.html() else {
        let body = format!("{STARTING}; reload shortly\n");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
    };
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
        (header::CONTENT_SECURITY_POLICY, crate::status::page::content_security_policy()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::REFERRER_POLICY, "no-referrer".to_owned()),
        (header::CACHE_CONTROL, "no-store".to_owned()),
    ];
    (headers, html).into_response()
}

async fn healthz(State(state): State<ServerState>) -> Response {
    let (healthy, body) = state.health.verdict(state.clock.now());
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The metrics, once the first evaluation filled in the key series; 503 before, so that a
/// scrape never sees a worker without keys.
async fn metrics(State(state): State<ServerState>) -> Response {
    if !state.health.evaluated() {
        let body = format!("{STARTING}; scrape again shortly\n");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response();
    }
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], state.metrics.encode()).into_response()
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
