//! Faults over simulated time: the test world (fake Digdir, the production adapters, a memory
//! store) run day by day through rotations while Digdir is down, slow, edited by hand or
//! refusing. Each test asserts the records, what the fake holds and logged, and what `status`
//! finds.

mod credentials;
mod edges;
mod outage;
mod promotion;
mod registration;
mod rescue;

use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::engine::{Evaluation, RunError, SetReport};
use jwk_rotator::findings::{Finding, FindingKind, Severity};
use jwk_rotator::record::{KeyRecord, Stage};

use super::fake::{FakeDigdir, GrantRecord};
use super::world::World;
use crate::support::at;

/// Day 0 of every test: a first key is made and registered.
pub fn t0() -> DateTime<Utc> {
    at("2026-11-21T06:00:00Z")
}

/// Day `n`, at the time of day of [`t0`] (the daily run).
pub fn day(n: i64) -> DateTime<Utc> {
    t0() + TimeDelta::days(n)
}

/// The kid a run on day `n` makes for `client` in TEST.
pub fn kid(client: &str, n: i64) -> String {
    format!("{client}-TEST.{}", day(n).date_naive())
}

/// The exp jwk-rotator registers for a key made on day `n`: its kid date + max_age (365d).
pub fn exp(n: i64) -> i64 {
    (day(n).date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc() + TimeDelta::days(365)).timestamp()
}

/// The daily run on day `n`, with the fake's logs cleared first so they hold this run only.
pub async fn run_on(world: &World, n: i64) -> Vec<SetReport> {
    world.set_now(day(n));
    world.fake.clear_logs();
    world.run().await
}

pub fn ok(reports: &[SetReport]) {
    for r in reports {
        assert!(r.ok(), "{}: {:?}", r.key_set, r.error.as_ref().map(ToString::to_string));
    }
}

/// The error of `set`'s report, which must have failed.
pub fn failure<'r>(reports: &'r [SetReport], set: &str) -> &'r RunError {
    let report = reports.iter().find(|r| r.key_set.to_string() == set).expect("a report for the set");
    report.error.as_ref().unwrap_or_else(|| panic!("{set} did not fail: {:?}", report.records))
}

/// The stage of `kid` and when it was published.
pub fn state(records: &[KeyRecord], kid: &str) -> (Stage, Option<DateTime<Utc>>) {
    let r = record(records, kid);
    (r.stage, r.published)
}

pub fn record(records: &[KeyRecord], kid: &str) -> KeyRecord {
    records.iter().find(|r| r.kid.to_string() == kid).cloned().unwrap_or_else(|| panic!("{kid}: {records:?}"))
}

/// The grants in the fake's log signed with `kid`.
pub fn grants_with(fake: &FakeDigdir, kid: &str) -> Vec<GrantRecord> {
    fake.grants().into_iter().filter(|g| g.kid.as_deref() == Some(kid)).collect()
}

/// The requests on key sets (`/jwks`) in the fake's log, as (method, status).
pub fn api_requests(fake: &FakeDigdir) -> Vec<(String, u16)> {
    let on_jwks = fake.requests().into_iter().filter(|r| r.path.ends_with("/jwks"));
    on_jwks.map(|r| (r.method, r.status)).collect()
}

/// How many times the key sets were replaced (`POST .../jwks`).
pub fn uploads(fake: &FakeDigdir) -> usize {
    api_requests(fake).iter().filter(|(method, _)| method == "POST").count()
}

/// The statuses the token endpoint answered.
pub fn token_statuses(fake: &FakeDigdir) -> Vec<u16> {
    fake.requests().into_iter().filter(|r| r.path == "/token").map(|r| r.status).collect()
}

/// The findings' kinds and severities, sorted.
pub fn kinds(evaluation: &Evaluation) -> Vec<(FindingKind, Severity)> {
    let mut found: Vec<_> = evaluation.findings.iter().map(|f| (f.kind, f.severity)).collect();
    found.sort();
    found
}

/// The one finding of `kind`.
pub fn only(evaluation: &Evaluation, kind: FindingKind) -> Finding {
    let found: Vec<&Finding> = evaluation.findings.iter().filter(|f| f.kind == kind).collect();
    assert_eq!(found.len(), 1, "{kind:?}: {:#?}", evaluation.findings);
    found[0].clone()
}

pub fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} is not in: {text}");
    }
}
