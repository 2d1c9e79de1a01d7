//! The API publisher against the fake Digdir: what is registered, what is kept, what is refused,
//! and what `status` sees when the client's keys were changed by hand.

use chrono::TimeDelta;
use jwk_rotator::findings::{FindingKind, Severity};
use jwk_rotator::planner::Request;
use jwk_rotator::record::{KeyRecord, Stage};

use super::world::{World, foreign_jwk};
use crate::support::at;

fn t0() -> chrono::DateTime<chrono::Utc> {
    at("2026-11-21T06:00:00Z")
}

fn force() -> Request {
    Request { force: true, ..Request::default() }
}

fn ok(reports: &[jwk_rotator::engine::SetReport]) {
    for r in reports {
        assert!(r.ok(), "{}: {:?}", r.key_set, r.error.as_ref().map(ToString::to_string));
    }
}

fn pending(records: &[KeyRecord]) -> KeyRecord {
    records.iter().find(|r| r.stage == Stage::Pending).cloned().expect("a pending key")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_registers_each_key_with_its_exp_and_a_second_run_makes_one_get_per_client() {
    let world = World::start(t0(), &[("a", "manual"), ("b", "manual")]).await;
    ok(&world.run().await);
    for client in ["a", "b"] {
        let keys = world.fake.registered_keys(&format!("{client}-id"));
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_eq!(keys[0].kid, format!("{client}-TEST.2026-11-21"));
        // The kid date + max_age (365d), explicit: not Digdir's default of a year from posting.
        assert_eq!(keys[0].exp, at("2027-11-21T00:00:00Z").timestamp());
        let records = world.records(&format!("{client}-TEST")).await;
        assert!(records.iter().all(|r| r.published == Some(t0())), "{records:?}");
    }
    world.fake.clear_logs();
    ok(&world.run().await);
    assert_eq!(world.fake.request_count("GET"), 2, "{:?}", world.fake.requests());
    assert_eq!(world.fake.request_count("POST"), 0, "{:?}", world.fake.requests());
    assert_eq!(world.fake.deletes(), 0);
}
