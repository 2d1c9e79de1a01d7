//! Builds the production worker from the config and runs it until SIGTERM or Ctrl-C.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::info;

use super::AppError;
use crate::config::Config;
use crate::events::Origin;
use crate::store::counted;
use crate::worker::Worker;
use crate::worker::alerts::{Alerter, LogAlerter, Notifier};
use crate::worker::metrics::Metrics;
use crate::worker::schedule::{Clock, Schedule, SystemClock, TokioClock};
use crate::worker::server::{self, ServerState};
use crate::worker::webhook::WebhookAlerter;

/// The worker for `config`, with the real store (counted) and key generator. Its clock is the
/// system's, or, when `start` is given (`JWK_ROTATOR_NOW`), one that starts there and runs on.
/// The real clock that every write records is the system's (in test builds, one that starts at
/// `real_start` when a test gives it).
pub(crate) async fn from_config(
    config: &Config,
    start: Option<DateTime<Utc>>,
    real_start: Option<DateTime<Utc>>,
) -> Result<Worker, AppError> {
    let schedule_config =
        config.schedule.clone().ok_or_else(|| AppError::NoSchedule { file: config.file.clone() })?;
    let running_from = |start: Option<DateTime<Utc>>| -> Arc<dyn Clock> {
        match start {
            Some(start) => Arc::new(TokioClock::starting_at(start)),
            None => Arc::new(SystemClock),
        }
    };
    let clock = running_from(start);
    let metrics = Arc::new(Metrics::new(clock.now()));
    let store = counted(super::open_store(config)?, metrics.clone());
    let wall = clock.clone();
    let origin = Origin { source: super::event_source(config), actor: "worker".to_owned() };
    let counts = metrics.events.clone();
    let engine = super::engine_over(config, store, Arc::new(move || wall.now()), counts, origin).await?;
    let mut sinks: Vec<Arc<dyn Alerter>> = vec![Arc::new(LogAlerter)];
    for hook in &config.alerts.webhook {
        let alerter = WebhookAlerter::new(hook)
            .map_err(|e| AppError::Alerts { file: config.file.clone(), message: e.to_string() })?;
        sinks.push(Arc::new(alerter));
    }
    let reminder = config.alerts.reminder.delta();
    let notifier = Notifier::new(sinks, reminder, metrics.clone());
    let check_every = config.alerts.check_every.to_std();
    let worker = Worker::new(
        engine,
        config.targets(),
        Schedule::new(schedule_config),
        clock,
        metrics,
        notifier,
        check_every.max(std::time::Duration::from_secs(60)),
    );
    Ok(worker.with_real_clock(running_from(real_start)))
}

/// `jwk-rotator worker`: serves HTTP and runs the schedule until a signal, then exits cleanly.
pub async fn run(
    config: &Config,
    start: Option<DateTime<Utc>>,
    real_start: Option<DateTime<Utc>>,
) -> Result<(), AppError> {
    let worker = Arc::new(from_config(config, start, real_start).await?);
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|cause| AppError::Listen {
        listen,
        file: config.file.clone(),
        cause,
    })?;
    // The bound address, so that `listen = "127.0.0.1:0"` (any free port) tells where it is.
    let bound = listener.local_addr().unwrap_or(listen);
    info!(listen = %bound, "serving the status page at /, /healthz and /metrics");
    let state = ServerState::of(&worker);
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(listener, state, async {
        let _ = server_stopped.await;
    }));
    worker.run(shutdown_signal()).await;
    let _ = stop_server.send(());
    match server.await {
        Ok(result) => result.map_err(|cause| AppError::Server { cause }),
        Err(cause) => Err(AppError::ServerStopped { cause }),
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C: shutting down"),
        () = term => info!("SIGTERM: shutting down"),
    }
}
