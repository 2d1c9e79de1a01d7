//! The events a run hands to the sink: one for each change to a key, in the order made, and a
//! `run.failed` for a key set that failed.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::*;
use crate::events::Origin;
use crate::events::{EventType, RecordingSink};
use crate::planner::Request;
use crate::policy::Policy;
use crate::policy::Target;
use crate::store::MemoryStore;
use crate::testing::{at, days};
use std::sync::Arc;

fn engine_with_sink(store: Arc<MemoryStore>) -> (Engine, RecordingSink) {
    let sink = RecordingSink::default();
    let origin = Origin { source: "jwk-rotator/test".to_owned(), actor: "tester".to_owned() };
    let engine = crate::testing::engine(store).0.with_events(Arc::new(sink.clone()), origin);
    (engine, sink)
}

#[tokio::test]
async fn a_year_of_daily_runs_gives_each_key_its_changes_once_in_order() {
    let store = Arc::new(MemoryStore::new());
    let (engine, sink) = engine_with_sink(store.clone());
    let settings = crate::policy::PolicyOverrides {
        promotion: Some(crate::policy::Promotion::AfterDelay),
        retain_retired: Some(crate::policy::Span::days(10)),
        ..Default::default()
    };
    let policy = Policy::new(&settings).expect("policy");
    let target = Target { key_set: "a-TEST".parse().expect("set"), policy };
    let t0 = at("2026-01-05T06:00:00Z");
    let mut reported = Vec::new();
    for day in 0..400 {
        let reports = engine
            .run(std::slice::from_ref(&target), t0 + days(day), &Request::default())
            .await
            .expect("run");
        assert!(reports[0].ok(), "day {day}: {:?}", reports[0].error);
        reported.extend(reports[0].events.clone());
    }
    let events = sink.events();
    assert_eq!(events, reported, "the sink got what the reports say");
    let ids: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "an id twice");
    let mut by_kid: BTreeMap<String, Vec<EventType>> = BTreeMap::new();
    for e in &events {
        assert_eq!((e.source.as_str(), e.data.actor.as_str()), ("jwk-rotator/test", "tester"));
        assert_eq!(e.subject, e.data.kid.clone().expect("a key's event names its kid"));
        assert!(!e.data.reason.is_empty(), "{e:?}");
        by_kid.entry(e.subject.clone()).or_default().push(e.kind);
    }
    use EventType::*;
    let full = [Generated, Published, Promoted, Demoted, Retired, Purged];
    let first = by_kid.values().next().expect("a first key");
    assert_eq!(first[..2], [Generated, Published], "the first key: {first:?}");
    assert!(by_kid.len() >= 3, "{by_kid:?}");
    let purged = by_kid.values().filter(|kinds| kinds.ends_with(&[Retired, Purged])).count();
    assert!(purged >= 1, "no key went all the way in a year: {by_kid:?}");
    for kinds in by_kid.values().skip(1) {
        assert!(full.starts_with(kinds), "out of order: {kinds:?}");
    }
    // Every change the store shows is in the events.
    for record in store.records() {
        let kinds = &by_kid[&record.kid.to_string()];
        let expected = match record.stage {
            crate::record::Stage::Pending => Published,
            crate::record::Stage::Current => Promoted,
            crate::record::Stage::Previous => Demoted,
            crate::record::Stage::Retired => Retired,
        };
        assert_eq!(kinds.last(), Some(&expected), "{}: {kinds:?}", record.kid);
    }
}

#[tokio::test]
async fn a_failed_key_set_is_run_failed_and_a_run_that_changes_nothing_is_silent() {
    let store = Arc::new(MemoryStore::new());
    let (engine, sink) = engine_with_sink(store.clone());
    let target = Target { key_set: "a-TEST".parse().expect("set"), policy: Policy::default() };
    let now = at("2026-01-05T06:00:00Z");
    let targets = std::slice::from_ref(&target);
    engine.run(targets, now, &Request::default()).await.expect("run");
    let before = sink.events().len();
    engine.run(targets, now, &Request::default()).await.expect("run");
    assert_eq!(sink.events().len(), before, "a second run at the same time changed nothing");
    let promote = Request { promote: true, ..Request::default() };
    let reports = engine.run(targets, now, &promote).await.expect("run");
    assert!(!reports[0].ok());
    let events = sink.events();
    let failed = events.last().expect("run.failed");
    assert_eq!((failed.kind, failed.subject.as_str()), (EventType::RunFailed, "a-TEST"));
    assert!(failed.data.reason.starts_with("refused: "), "{}", failed.data.reason);
    assert_eq!(events.len(), before + 1);
}
