//! Key sets for the findings' unit tests: records made at given times, and the context of one
//! key set at one moment over them.

use chrono::{DateTime, Utc};

use super::{Context, Finding, FindingKind, Severity};
use crate::jwk::PublicJwk;
use crate::kid::KeySet;
use crate::policy::{Algorithm, Policy};
use crate::publish::{Registered, RegisteredKey};
use crate::record::{KeyRecord, Stage};
use crate::store::Consumer;

/// A time from RFC 3339 text.
pub(super) fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().expect("test time")
}

/// The key set of every case.
pub(super) const SET: &str = "a-TEST";

/// A record of `a-TEST.{date}` in `stage`, made at `date` 06:00 and, unless pending and
/// unpublished (`published: false`), published then; current keys were activated then too.
pub(super) fn record(date: &str, stage: Stage, published: bool) -> KeyRecord {
    let kid = format!("{SET}.{date}").parse().expect("test kid");
    let made = at(&format!("{date}T06:00:00Z"));
    let public = PublicJwk { kid, alg: Algorithm::RS256, n: "n".to_owned(), e: "AQAB".to_owned() };
    let mut r = KeyRecord::new(public, stage, made);
    r.published = published.then_some(made);
    r
}

/// What Maskinporten holds: `kid`s with their `exp`.
pub(super) fn registered(keys: &[(&str, Option<DateTime<Utc>>)]) -> Registered {
    let keys = keys
        .iter()
        .map(|(kid, exp)| RegisteredKey { kid: (*kid).to_owned(), exp: *exp, jwk: serde_json::Value::Null })
        .collect();
    Registered { client_id: "client-id".to_owned(), keys }
}

/// One key set at one moment, owning what its [`Context`] borrows.
pub(crate) struct Case {
    pub set: KeySet,
    pub records: Vec<KeyRecord>,
    pub policy: Policy,
    pub now: DateTime<Utc>,
    pub wall: DateTime<Utc>,
    pub registered: Option<Registered>,
    pub consumer: Option<Consumer>,
}

impl Case {
    /// `records` at `now` (the real clock agreeing), with the default policy.
    pub(super) fn new(records: Vec<KeyRecord>, now: &str) -> Case {
        let now = at(now);
        Case {
            set: SET.parse().expect("test key set"),
            records,
            policy: Policy::default(),
            now,
            wall: now,
            registered: None,
            consumer: None,
        }
    }

    pub(crate) fn ctx(&self) -> Context<'_> {
        Context {
            set: &self.set,
            records: &self.records,
            policy: &self.policy,
            now: self.now,
            wall: self.wall,
            registered: self.registered.as_ref(),
            consumer: self.consumer.as_ref(),
        }
    }
}

/// The one finding in `found`, with its kind and severity checked.
pub(super) fn only(
    found: impl IntoIterator<Item = Finding>,
    kind: FindingKind,
    severity: Severity,
) -> Finding {
    let found: Vec<Finding> = found.into_iter().collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found.into_iter().next().expect("one finding");
    assert_eq!((f.kind, f.severity), (kind, severity), "{}", f.message);
    f
}
