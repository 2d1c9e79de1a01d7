//! Events: every change a run makes to a key, as a CloudEvents 1.0 structured-mode JSON
//! document, written to the audit trail and posted to `[[events.webhook]]` endpoints.
//!
//! The engine holds an [`EventSink`] and hands it, once per key set, the events of the changes
//! that key set's run made (see `engine::set_run`). [`Events`] is the production sink: the
//! audit log first, then every webhook; neither ever fails a run.

pub mod audit;
mod event;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tracing::{error, info};

pub use audit::{AuditError, AuditLog};
pub use event::{Event, EventData, EventType, NotAnEvent, Origin, UnknownEventType};
pub use webhook::EventWebhook;

/// Where the events of a run go. Small on purpose: the engine (and the restarts after a
/// promotion) call `emit`; how and where an event is kept or delivered is the sink's business.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Records and delivers `events`, in order. Never fails: a sink that can not deliver says
    /// so in the log and its counters, and the run goes on.
    async fn emit(&self, events: &[Event]);
}

/// The sink of an engine without `[events]`: events are dropped.
pub struct NoEvents;

#[async_trait]
impl EventSink for NoEvents {
    async fn emit(&self, _events: &[Event]) {}
}

/// Labels of `jwk_rotator_event_deliveries_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventDeliveryLabels {
    pub sink: String,
    pub outcome: String,
}

/// What the worker's `/metrics` shows of events: deliveries by sink and outcome, and failed
/// writes of the audit log. Clones share their values.
#[derive(Clone, Debug, Default)]
pub struct EventCounts {
    pub deliveries: Family<EventDeliveryLabels, Counter>,
    pub audit_write_failures: Counter,
}

impl EventCounts {
    fn delivered(&self, sink: &str, ok: bool) {
        let outcome = if ok { "delivered" } else { "failed" };
        self.deliveries
            .get_or_create(&EventDeliveryLabels { sink: sink.to_owned(), outcome: outcome.to_owned() })
            .inc();
    }
}

/// The production sink: the audit log (if configured), then each webhook.
pub struct Events {
    audit: Option<Arc<AuditLog>>,
    webhooks: Vec<EventWebhook>,
    counts: EventCounts,
}

impl Events {
    pub fn new(audit: Option<AuditLog>, webhooks: Vec<EventWebhook>, counts: EventCounts) -> Self {
        Events { audit: audit.map(Arc::new), webhooks, counts }
    }

    /// Appends `events` to the audit log on the blocking pool (it takes a file lock and syncs).
    async fn append(&self, events: &[Event]) {
        let Some(audit) = self.audit.clone() else { return };
        let batch = events.to_vec();
        let written = tokio::task::spawn_blocking(move || audit.append(&batch)).await;
        let failed = match written {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("the audit log writer stopped: {e}"),
        };
        self.counts.audit_write_failures.inc();
        error!(error = %failed, events = events.len(), "audit log not written; the events are in this log only");
    }
}

#[async_trait]
impl EventSink for Events {
    /// Called once per key set of a run, also with no events: the audit log then only sets a
    /// torn last line aside (a writer killed mid-line), so that a run leaves a whole trail.
    async fn emit(&self, events: &[Event]) {
        for event in events {
            // The structured log line is the trail's second copy (Log Analytics), see
            // docs/events.md.
            info!(target: "jwk_rotator::events", event = %event.to_json(), "event");
        }
        self.append(events).await;
        let deliveries = self.webhooks.iter().map(|hook| async move {
            for event in events.iter().filter(|e| hook.wants(e.kind)) {
                let ok = match hook.deliver(event).await {
                    Ok(()) => true,
                    Err(e) => {
                        error!(sink = hook.name(), id = %event.id, error = %e, "event not delivered");
                        false
                    }
                };
                self.counts.delivered(hook.name(), ok);
            }
        });
        futures::future::join_all(deliveries).await;
    }
}

/// A sink that keeps what it is given, for tests.
#[cfg(any(test, feature = "test-support"))]
#[derive(Clone, Default)]
pub struct RecordingSink(pub Arc<std::sync::Mutex<Vec<Event>>>);

#[cfg(any(test, feature = "test-support"))]
impl RecordingSink {
    /// Every event emitted so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

#[cfg(any(test, feature = "test-support"))]
#[async_trait]
impl EventSink for RecordingSink {
    async fn emit(&self, events: &[Event]) {
        if let Ok(mut held) = self.0.lock() {
            held.extend_from_slice(events);
        }
    }
}
