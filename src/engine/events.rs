//! The engine's one hook for events: a key set's run records an event for each change it
//! made to a key (in the order it made them), and when the key set is done the engine hands
//! them, with a `run.failed` if it failed, to the event sink.

use chrono::{DateTime, Utc};

use super::set_run::SetRun;
use super::{Engine, RunError, SetReport};
use crate::events::{Event, EventData, EventType};
use crate::kid::Kid;
use crate::planner::Action;

/// A new run's id: a random UUID (version 4).
pub(super) fn new_run_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The event of a stored key's change of stage (or of its publication).
pub(super) fn kind_of(action: &Action) -> EventType {
    match action {
        Action::Generate { .. } => EventType::Generated,
        Action::Publish { .. } => EventType::Published,
        Action::Promote { .. } => EventType::Promoted,
        Action::Demote { .. } => EventType::Demoted,
        Action::Retire { .. } => EventType::Retired,
        Action::Purge { .. } => EventType::Purged,
    }
}

impl SetRun<'_> {
    /// Records that this run changed `kid` from stage `from` to `to`: called right after the
    /// store took the change.
    pub(super) fn changed(&mut self, kind: EventType, kid: &Kid, from: &str, to: &str) {
        let data = EventData {
            key_set: self.target.key_set.to_string(),
            kid: Some(kid.to_string()),
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            reason: self.reason.clone(),
            actor: self.engine.origin.actor.clone(),
            run_id: self.run_id.clone(),
        };
        self.changes.push(Event::new(kind, &self.engine.origin, self.at.now, data));
    }

    /// After the outputs with newly published keys were written: for a key set registered
    /// through Maskinporten's API, whose publication succeeds only once a read-back holds every
    /// key sent, each of `kids` is `key.registered` (no request is made for it).
    pub(super) fn read_back(&mut self, kids: &[Kid]) {
        if self.engine.publisher.registers(&self.target.key_set) {
            for kid in kids {
                self.changed(EventType::Registered, kid, "published", "registered");
            }
        }
    }
}

impl Engine {
    /// Hands a finished key set's events to the sink, with a `run.failed` when it failed (a
    /// shutdown is not a failure), and keeps them in its report.
    pub(super) async fn emit_for(&self, report: &mut SetReport, run_id: &str, at: DateTime<Utc>) {
        if let Some(error) = &report.error
            && !matches!(error, RunError::Stopped { .. } | RunError::NotStarted)
        {
            let data = EventData {
                key_set: report.key_set.to_string(),
                kid: None,
                from: None,
                to: None,
                reason: format!("{}: {error}", error.kind()),
                actor: self.origin.actor.clone(),
                run_id: run_id.to_owned(),
            };
            report.events.push(Event::new(EventType::RunFailed, &self.origin, at, data));
        }
        self.events.emit(&report.events).await;
    }
}
