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

/// Keys someone else registered are kept on every upload (a rotation, a promotion, a
/// retirement), reported as `unmanaged-key` (informational), and never counted as ours.
#[tokio::test(flavor = "multi_thread")]
async fn unmanaged_keys_survive_every_upload_and_are_reported_by_name() {
    let world = World::start(t0(), &[("a", "after-delay")]).await;
    world.fake.add_key("a-id", &foreign_jwk(0, "legacy-app-key"));
    ok(&world.run().await);
    let mut registered = vec!["a-TEST.2026-11-21".to_owned(), "legacy-app-key".to_owned()];
    assert_eq!(world.registered("a-id"), registered);
    // Rotation (+90 d), promotion (+97 d), retirement of the old key (+111 d).
    for (day, kid) in [(90, Some("a-TEST.2027-02-19")), (97, None), (111, None)] {
        world.set_now(t0() + TimeDelta::days(day));
        ok(&world.run().await);
        if let Some(kid) = kid {
            registered.insert(1, kid.to_owned());
        }
        if day == 111 {
            registered.retain(|k| k != "a-TEST.2026-11-21");
        }
        assert_eq!(world.registered("a-id"), registered, "day {day}");
    }
    let status = world.status().await;
    let unmanaged: Vec<_> = status.findings.iter().filter(|f| f.kind == FindingKind::UnmanagedKey).collect();
    assert_eq!(unmanaged.len(), 1, "{:?}", status.findings);
    assert_eq!(unmanaged[0].severity, Severity::Ok);
    assert!(unmanaged[0].message.contains("\"legacy-app-key\""), "{}", unmanaged[0].message);
    assert!(status.findings.iter().all(|f| f.severity == Severity::Ok), "{:?}", status.findings);
    assert_eq!(world.fake.deletes(), 0);
}

/// A client that answers without `keys` (or 404) is an empty client, not an error.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_keys_answering_either_way_gets_the_first_key() {
    for answer in [super::fake::EmptyJwks::NotFound, super::fake::EmptyJwks::OmitKeys] {
        let world = World::start(t0(), &[("a", "manual")]).await;
        world.fake.set_empty_jwks(answer);
        ok(&world.run().await);
        assert_eq!(world.registered("a-id"), ["a-TEST.2026-11-21"]);
    }
}

/// A run dated ahead of the wall clock (`rotate --at`, within the day allowed) makes a key whose
/// kid date + max_age is more than a year ahead of now: its registered `exp` is held to a year
/// from the upload, which Digdir accepts.
#[tokio::test(flavor = "multi_thread")]
async fn exp_is_never_more_than_a_year_ahead_of_the_upload() {
    let world = World::start(t0(), &[("a", "manual")]).await;
    let ahead = t0() + TimeDelta::hours(20); // the kid is dated 2026-11-22
    let reports = world.engine.run(&world.targets(), ahead, &Request::default()).await.expect("run");
    ok(&reports);
    let keys = world.fake.registered_keys("a-id");
    assert_eq!(keys[0].kid, "a-TEST.2026-11-22");
    assert_eq!(keys[0].exp, (t0() + TimeDelta::days(365)).timestamp(), "held to the upload + 365 days");
}

/// `rotate --force` twice in a day: both new keys are registered, with `-2` and `-3` kids, and
/// the superseded one is removed from the client; five keys at most whatever is asked.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_forced_rotations_never_register_more_than_five_keys() {
    let world = World::start(t0(), &[("a", "manual")]).await;
    ok(&world.run().await);
    for i in 0..6 {
        world.set_now(t0() + TimeDelta::minutes(i + 1));
        ok(&world.run_with(&force()).await);
        let kids = world.registered("a-id");
        assert!(kids.len() <= 5, "{kids:?}");
        let records = world.records("a-TEST").await;
        let published: Vec<String> =
            records.iter().filter(|r| r.stage.is_published()).map(|r| r.kid.to_string()).collect();
        let mut published = published;
        published.sort();
        assert_eq!(kids, published, "the client holds exactly the published keys");
        assert!(pending(&records).published.is_some());
    }
}

/// A pending key removed from the client by hand after it was published is not promoted (by
/// `after-delay` here): the run says why and registers it again, and a later run promotes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_key_removed_by_hand_is_registered_again_before_it_is_promoted() {
    let world = World::start(t0(), &[("a", "after-delay")]).await;
    ok(&world.run().await);
    world.set_now(t0() + TimeDelta::days(90));
    ok(&world.run().await);
    let kid = "a-TEST.2027-02-19";
    assert!(world.registered("a-id").contains(&kid.to_owned()));
    world.set_now(t0() + TimeDelta::days(97));
    world.fake.edit_after_next_get("a-id", move |keys| keys.retain(|k| k.kid != kid));
    let _ = world.status().await; // the GET after which someone removes it in the portal
    assert!(!world.registered("a-id").contains(&kid.to_owned()));
    let reports = world.run().await;
    let error = reports[0].error.as_ref().expect("promotion refused").to_string();
    assert!(error.contains(kid) && error.contains("not registered on Maskinporten client a-id"), "{error}");
    assert_eq!(pending(&world.records("a-TEST").await).kid.to_string(), kid);
    assert!(world.registered("a-id").contains(&kid.to_owned()), "registered again by the same run");
    world.set_now(t0() + TimeDelta::days(98));
    ok(&world.run().await);
    let records = world.records("a-TEST").await;
    let current = jwk_rotator::lifecycle::current(&records, world.now()).expect("current");
    assert_eq!(current.kid.to_string(), kid);
}

/// `promote` right after a key was registered through the API: a client that can be proved
/// (`client_id` and `verify_scope`) is promoted as soon as a token grant signed with the key
/// succeeds; one that can not is refused until Digdir's propagation (0-2 minutes, with a
/// margin) has surely passed, and then goes ahead.
#[tokio::test(flavor = "multi_thread")]
async fn promote_waits_for_propagation_after_the_api_registered_the_key_unless_it_proves_it() {
    let promote = Request { promote: true, ..Request::default() };
    let proved = World::start(t0(), &[("a", "manual")]).await;
    let fake = super::fake::FakeDigdir::start().await;
    fake.set_now(t0());
    let text = super::world::config_text(&fake, &[("a", "manual")], "");
    let unproved = World::with_config(
        fake,
        &text.replace("verify_scope = \"test:scope\"\n", ""),
        t0() + TimeDelta::days(900),
    )
    .await;
    for world in [&proved, &unproved] {
        ok(&world.run().await);
        world.set_now(t0() + TimeDelta::hours(1));
        ok(&world.run_with(&force()).await);
        world.set_now(t0() + TimeDelta::hours(1) + TimeDelta::minutes(1));
    }
    ok(&proved.run_with(&promote).await);
    assert_eq!(
        current_kid(&proved).await,
        "a-TEST.2026-11-21-2",
        "proved, so promoted a minute after the upload"
    );

    let reports = unproved.run_with(&promote).await;
    let error = reports[0].error.as_ref().expect("refused").to_string();
    assert!(
        error.contains("up to 2 minutes")
            && error.contains("or after 2026-11-21T07:10:00+00:00 without a proof"),
        "{error}"
    );
    assert!(!error.contains("failed"), "no grant was tried: {error}");
    assert_eq!(pending(&unproved.records("a-TEST").await).kid.to_string(), "a-TEST.2026-11-21-2");
    unproved.set_now(t0() + TimeDelta::hours(1) + TimeDelta::minutes(10));
    ok(&unproved.run_with(&promote).await);
    assert_eq!(current_kid(&unproved).await, "a-TEST.2026-11-21-2");
}

async fn current_kid(world: &World) -> String {
    let records = world.records("a-TEST").await;
    jwk_rotator::lifecycle::current(&records, world.now()).expect("current").kid.to_string()
}

/// A key registered through the API by a run whose time was fixed 30 days back is not
/// promoted a minute later, while Digdir takes 2 minutes to know it: without a `verify_scope`
/// to prove it, the propagation guard waits by the real clock too (the issue's "Unknown key
/// identifier" after a time in the past).
#[tokio::test(flavor = "multi_thread")]
async fn the_propagation_guard_waits_by_the_real_clock_too() {
    use jwk_rotator::moment::Moment;
    let fake = super::fake::FakeDigdir::start().await;
    fake.set_clock(super::fake::Clock::Fixed(t0()));
    let text = super::world::config_text(&fake, &[("a", "manual")], "");
    let text: String =
        text.lines().filter(|l| !l.starts_with("verify_scope")).map(|l| format!("{l}\n")).collect();
    let world = World::with_config(fake, &text, t0() + TimeDelta::days(400)).await;
    ok(&world.run().await);
    world.fake.set_propagation(TimeDelta::minutes(2));
    let real = t0() + TimeDelta::hours(1);
    world.set_now(real);
    let targets = world.targets();
    let back = Moment::new(real - TimeDelta::days(30), real);
    ok(&world.engine.run(&targets, back, &force()).await.expect("run"));
    let kid = pending(&world.records("a-TEST").await).kid;
    assert!(world.registered("a-id").contains(&kid.to_string()), "registered");
    let promote = Request { promote: true, ..Request::default() };
    let minute = Moment::from(real + TimeDelta::minutes(1));
    world.set_now(minute.now);
    let reports = world.engine.run(&targets, minute, &promote).await.expect("run");
    let error = reports[0].error.as_ref().expect("refused").to_string();
    assert!(
        error.contains("up to 2 minutes") && error.contains("60s ago by this host's real clock"),
        "{error}"
    );
    assert_eq!(pending(&world.records("a-TEST").await).kid, kid);
    let later = Moment::from(real + TimeDelta::minutes(10));
    world.set_now(later.now);
    ok(&world.engine.run(&targets, later, &promote).await.expect("run"));
    let records = world.records("a-TEST").await;
    assert_eq!(jwk_rotator::lifecycle::current(&records, later.now).map(|r| &r.kid), Some(&kid));
}

/// A key that Digdir's API read back after it was published is `key.registered`, once: a run
/// that publishes nothing new announces nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_the_api_read_back_is_announced_as_registered_once() {
    use jwk_rotator::events::EventType;
    let world = World::start(t0(), &[("a", "manual")]).await;
    let reports = world.run().await;
    ok(&reports);
    let kinds: Vec<(EventType, String)> =
        reports[0].events.iter().map(|e| (e.kind, e.subject.clone())).collect();
    let kid = "a-TEST.2026-11-21".to_owned();
    assert_eq!(
        kinds,
        [
            (EventType::Generated, kid.clone()),
            (EventType::Published, kid.clone()),
            (EventType::Registered, kid)
        ]
    );
    let registered = &reports[0].events[2];
    assert_eq!(
        (registered.data.from.as_deref(), registered.data.to.as_deref()),
        (Some("published"), Some("registered"))
    );
    let again = world.run().await;
    ok(&again);
    assert!(again[0].events.is_empty(), "{:?}", again[0].events);
}
