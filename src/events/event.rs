//! One event: its type, what it says, and its CloudEvents 1.0 structured-mode JSON.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The prefix of every CloudEvents `type` (DESIGN.md: `no.jwk-rotator.<event>`).
pub(super) const TYPE_PREFIX: &str = "no.jwk-rotator.";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    Generated,
    Published,
    /// Maskinporten's self-service API read the key back after it was published.
    Registered,
    Promoted,
    Demoted,
    Retired,
    Purged,
    /// A key set's run failed.
    RunFailed,
    /// An application was restarted after a promotion (`[[client.restart]]`).
    Restarted,
    /// A restart after a promotion failed.
    RestartFailed,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::Generated,
        EventType::Published,
        EventType::Registered,
        EventType::Promoted,
        EventType::Demoted,
        EventType::Retired,
        EventType::Purged,
        EventType::RunFailed,
        EventType::Restarted,
        EventType::RestartFailed,
    ];

    /// The short name, as `types` in `[[events.webhook]]` takes it.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Generated => "key.generated",
            EventType::Published => "key.published",
            EventType::Registered => "key.registered",
            EventType::Promoted => "key.promoted",
            EventType::Demoted => "key.demoted",
            EventType::Retired => "key.retired",
            EventType::Purged => "key.purged",
            EventType::RunFailed => "run.failed",
            EventType::Restarted => "restart.succeeded",
            EventType::RestartFailed => "restart.failed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A name that is not an event type; the message lists those that are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {name:?}; use one of {}", EventType::ALL.map(EventType::name).join(", "))]
pub struct UnknownEventType {
    pub name: String,
}

impl FromStr for EventType {
    type Err = UnknownEventType;

    /// The short name, or the full CloudEvents type.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let short = s.strip_prefix(TYPE_PREFIX).unwrap_or(s);
        EventType::ALL
            .into_iter()
            .find(|t| t.name() == short)
            .ok_or_else(|| UnknownEventType { name: s.to_owned() })
    }
}

/// A JSON document that is not one of our events (read back from the audit log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a jwk-rotator event: {problem}")]
pub struct NotAnEvent {
    pub problem: String,
}

/// Who runs and where the events come from, the same for every event of an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// CloudEvents `source`: `jwk-rotator/<store>`.
    pub source: String,
    /// Who ran it: `worker`, or the OS user of a command.
    pub actor: String,
}

impl Origin {
    /// The origin of a command run by the OS user (from `USER`, `LOGNAME` or `USERNAME`).
    pub fn command(source: String) -> Self {
        let user = ["USER", "LOGNAME", "USERNAME"].iter().find_map(|v| std::env::var(v).ok());
        Origin { source, actor: user.filter(|u| !u.is_empty()).unwrap_or_else(|| "unknown-user".to_owned()) }
    }
}

/// An event's `data`: never a key, a secret or a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    pub key_set: String,
    /// The key it is about (a `run.failed` may have none).
    pub kid: Option<String>,
    /// The stage before (`none` for a new key), or what a restart was for.
    pub from: Option<String>,
    /// The stage after (`gone` once purged), or the application restarted.
    pub to: Option<String>,
    /// Why: the plan's reason, or the error.
    pub reason: String,
    pub actor: String,
    pub run_id: String,
}

/// One event. `id` is stable for a change to a key (`<key_set>/<kid>/<type>`), so that a
/// receiver can drop a second delivery of the same change; a restart's adds the application
/// (`.../<to>`), and a `run.failed` is per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: EventType,
    pub source: String,
    /// The kid, or the key set for an event about no one key.
    pub subject: String,
    /// The run's now.
    pub time: DateTime<Utc>,
    pub data: EventData,
}

impl Event {
    /// An event about `data.kid` (or the key set), with the stable id of that change.
    pub fn new(kind: EventType, origin: &Origin, time: DateTime<Utc>, data: EventData) -> Self {
        let subject = data.kid.clone().unwrap_or_else(|| data.key_set.clone());
        let id = match kind {
            EventType::RunFailed => format!("{}/{}/{kind}", data.run_id, data.key_set),
            EventType::Restarted | EventType::RestartFailed => {
                format!("{}/{subject}/{kind}/{}", data.key_set, data.to.as_deref().unwrap_or_default())
            }
            _ => format!("{}/{subject}/{kind}", data.key_set),
        };
        Event { id, kind, source: origin.source.clone(), subject, time, data }
    }

    /// The CloudEvents 1.0 structured-mode JSON document.
    pub fn to_value(&self) -> Value {
        json!({
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": format!("{TYPE_PREFIX}{}", self.kind),
            "subject": self.subject,
            "time": self.time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            "datacontenttype": "application/json",
            "data": self.data,
        })
    }

    /// [`Event::to_value`] as compact JSON.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// An event read back from its JSON document (the audit log).
    pub fn from_value(value: &Value) -> Result<Self, NotAnEvent> {
        let not = |problem: String| NotAnEvent { problem };
        let text = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| not(format!("no {name}")))
        };
        if text("specversion")? != "1.0" {
            return Err(not("specversion is not 1.0".to_owned()));
        }
        let kind: EventType = text("type")?.parse().map_err(|e: UnknownEventType| not(e.to_string()))?;
        let time = DateTime::parse_from_rfc3339(&text("time")?).map_err(|e| not(format!("time: {e}")))?;
        let data = value.get("data").cloned().ok_or_else(|| not("no data".to_owned()))?;
        let data: EventData = serde_json::from_value(data).map_err(|e| not(format!("data: {e}")))?;
        Ok(Event {
            id: text("id")?,
            kind,
            source: text("source")?,
            subject: text("subject")?,
            time: time.with_timezone(&Utc),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> EventData {
        EventData {
            key_set: "a-TEST".to_owned(),
            kid: Some("a-TEST.2026-01-01".to_owned()),
            from: Some("pending".to_owned()),
            to: Some("current".to_owned()),
            reason: "due".to_owned(),
            actor: "worker".to_owned(),
            run_id: "r1".to_owned(),
        }
    }

    #[test]
    fn a_document_has_the_required_attributes_and_reads_back() {
        let origin = Origin { source: "jwk-rotator/file".to_owned(), actor: "worker".to_owned() };
        let at = "2026-01-02T06:00:00Z".parse().expect("time");
        let event = Event::new(EventType::Promoted, &origin, at, data());
        let doc = event.to_value();
        assert_eq!(doc["specversion"], "1.0");
        assert_eq!(doc["type"], "no.jwk-rotator.key.promoted");
        assert_eq!(doc["id"], "a-TEST/a-TEST.2026-01-01/key.promoted");
        assert_eq!(doc["subject"], "a-TEST.2026-01-01");
        assert_eq!(doc["time"], "2026-01-02T06:00:00Z");
        assert_eq!(doc["data"]["to"], "current");
        assert_eq!(Event::from_value(&doc), Ok(event));
    }

    #[test]
    fn restarts_of_two_applications_after_one_promotion_have_ids_of_their_own() {
        let origin = Origin { source: "jwk-rotator/file".to_owned(), actor: "worker".to_owned() };
        let at = "2026-01-02T06:00:00Z".parse().expect("time");
        let restart = |app: &str| {
            let data = EventData { to: Some(app.to_owned()), ..data() };
            Event::new(EventType::Restarted, &origin, at, data).id
        };
        assert_eq!(restart("team-a/api"), "a-TEST/a-TEST.2026-01-01/restart.succeeded/team-a/api");
        assert_ne!(restart("team-a/api"), restart("team-a/batch"));
    }

    #[test]
    fn types_parse_by_short_or_full_name_and_a_wrong_one_lists_them() {
        for kind in EventType::ALL {
            assert_eq!(kind.name().parse(), Ok(kind));
            assert_eq!(format!("{TYPE_PREFIX}{kind}").parse(), Ok(kind));
        }
        let e = "key.rotated".parse::<EventType>().expect_err("unknown");
        assert!(e.to_string().contains("key.generated, key.published"), "{e}");
    }
}
