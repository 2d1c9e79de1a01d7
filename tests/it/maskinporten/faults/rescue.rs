//! Getting out of an expired current key, the incident this tool exists to prevent: rotation
//! stopped for longer than a key lives. The expired key is never sent to Digdir (its `exp` has
//! passed, and Digdir refuses it), so its replacement is registered; the replacement becomes
//! current as soon as Maskinporten grants a token signed with it, not `publish_ahead` later;
//! and `status` says what to do at each step.

use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::findings::{FindingKind, Severity};
use jwk_rotator::lifecycle;
use jwk_rotator::maskinporten::jwt::{GrantClaims, client_grant};
use jwk_rotator::planner::Request;
use jwk_rotator::record::Stage;
use jwk_rotator::store::KeyStore;

use super::super::world::{SCOPE, World};
use super::{assert_contains, day, exp, grants_with, kid, kinds, ok, only, record, run_on, state, uploads};

fn promote() -> Request {
    Request { promote: true, ..Request::default() }
}

/// A run of `set` alone at `at`, asked for with `request`.
async fn run_set(world: &World, set: &str, at: DateTime<Utc>, request: &Request) {
    world.set_now(at);
    let reports = world.engine.run(&[world.target(set)], at, request).await.expect("run");
    ok(&reports);
}

/// Whether Maskinporten grants a token for a grant signed with `set`'s current key now, or
/// the MP code of its refusal.
async fn current_key_works(world: &World, set: &str, client_id: &str) -> Result<(), Option<String>> {
    let records = world.records(set).await;
    let current = lifecycle::current(&records, world.now()).expect("a current key");
    let key = world.store.private_key(&current.kid).await.expect("private key");
    let issuer = world.fake.issuer();
    let claims = GrantClaims { iss: client_id, aud: &issuer, scope: SCOPE, now: world.now() };
    let grant = client_grant(&key, &claims).expect("sign");
    world.fake.grant_in_process(&grant).map(|_| ()).map_err(|_| {
        let last = world.fake.grants().pop().expect("judged");
        last.code().map(str::to_owned)
    })
}

/// Every key posted so far carried an `exp` after the time it was posted, and every POST was
/// taken.
fn no_exp_in_the_past(world: &World) -> usize {
    let posted = world.fake.posted();
    for (at, keys) in &posted {
        for key in keys {
            let exp = key["exp"].as_i64().unwrap_or(i64::MAX);
            assert!(exp > at.timestamp(), "{} was posted at {at} with exp {exp}", key["kid"]);
        }
    }
    let refused: Vec<_> =
        world.fake.requests().into_iter().filter(|r| r.method != "GET" && r.status >= 400).collect();
    assert_eq!(refused, [], "refused writes");
    posted.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_year_without_runs_the_expired_key_is_left_out_and_its_replacement_promoted_once_proved() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let (first, second) = (kid("a", 0), kid("a", 400));
    ok(&run_on(&world, 0).await);

    // Day 400: the first key expired on day 365 (kid date + max_age), and Maskinporten says so.
    world.set_now(day(400));
    assert_eq!(current_key_works(&world, "a-TEST", "a-id").await, Err(Some("MP-121".to_owned())));
    let status = world.status().await;
    let expected =
        [(FindingKind::Expired, Severity::Critical), (FindingKind::RotationOverdue, Severity::Warning)];
    assert_eq!(kinds(&status), expected);
    assert_contains(
        &only(&status, FindingKind::Expired).message,
        &[
            &format!("current key {first} expired on 2027-11-21"),
            "1. `jwk-rotator rotate a-TEST` makes a new key and registers it through Digdir's API (the expired key is not sent)",
            "2. `jwk-rotator promote a-TEST` makes it current as soon as Maskinporten grants a token signed with it",
        ],
    );

    // The run registers the new key, and only it: the expired key is not sent.
    ok(&run_on(&world, 400).await);
    let posted = world.fake.posted();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let kids: Vec<&str> = posted[0].1.iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids, [second.as_str()]);
    assert_eq!(posted[0].1[0]["exp"], exp(400));
    assert_eq!(world.registered("a-id"), [second.as_str()]);
    let records = world.records("a-TEST").await;
    assert_eq!(state(&records, &first), (Stage::Current, Some(day(0))));
    assert_eq!(state(&records, &second), (Stage::Pending, Some(day(400))));
    let status = world.status().await;
    assert_eq!(kinds(&status), [(FindingKind::Expired, Severity::Critical)], "{:#?}", status.findings);
    assert_contains(
        &only(&status, FindingKind::Expired).message,
        &[&format!("Pending key {second} is registered through Digdir's API: `jwk-rotator promote a-TEST`")],
    );

    // A minute later the next run proves it and promotes it: publish_ahead (7 days) is not
    // waited for when no current key works.
    let later = day(400) + TimeDelta::minutes(1);
    world.fake.clear_logs();
    run_set(&world, "a-TEST", later, &Request::default()).await;
    assert!(grants_with(&world.fake, &second)[0].granted());
    let records = world.records("a-TEST").await;
    assert_eq!(
        (record(&records, &second).stage, record(&records, &second).activated),
        (Stage::Current, Some(later))
    );
    assert_eq!(record(&records, &first).stage, Stage::Retired, "expired: retired at once");
    assert_eq!(current_key_works(&world, "a-TEST", "a-id").await, Ok(()));
    assert_eq!(world.status().await.findings, []);
    assert_eq!(uploads(&world.fake), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_right_after_the_upload_proves_the_key_and_waits_only_until_maskinporten_knows_it() {
    // manual: only `promote` promotes. Without a proof it would wait 10 minutes after the
    // registration; with one it goes ahead as soon as the token endpoint knows the key.
    let world = World::start(day(0), &[("a", "manual")]).await;
    let second = kid("a", 400);
    ok(&run_on(&world, 0).await);
    world.fake.set_propagation(TimeDelta::minutes(3));
    ok(&run_on(&world, 400).await);
    let soon = day(400) + TimeDelta::minutes(1);
    world.set_now(soon);
    let reports = world.engine.run(&[world.target("a-TEST")], soon, &promote()).await.expect("run");
    let error = super::failure(&reports, "a-TEST").to_string();
    assert_contains(
        &error,
        &[
            &format!("{second} was registered on Maskinporten at {}", day(400).to_rfc3339()),
            "a token grant signed with it failed",
            "Unknown key identifier",
            "promote it once `jwk-rotator verify a-TEST` succeeds",
        ],
    );
    assert_eq!(record(&world.records("a-TEST").await, &second).stage, Stage::Pending);
    // Once Maskinporten knows it, `promote` proves it and promotes it, 4 minutes after the upload.
    let known = day(400) + TimeDelta::minutes(4);
    run_set(&world, "a-TEST", known, &promote()).await;
    assert_eq!(record(&world.records("a-TEST").await, &second).stage, Stage::Current);
    assert!(grants_with(&world.fake, &second).iter().any(|g| g.granted()));
    assert_eq!(current_key_works(&world, "a-TEST", "a-id").await, Ok(()));
}

/// The incident end to end: three clients, one per promotion mode, rotate for four months;
/// then nothing runs for 400 days, and every current key expires. `rotate`, then `promote` for
/// the manual client and the next scheduled run for the others, give each a current key that
/// Maskinporten grants tokens for, minutes after the outage ends; no request ever carried an
/// `exp` in the past.
#[tokio::test(flavor = "multi_thread")]
async fn a_400_day_outage_ends_with_working_keys_minutes_after_rotate_and_promote() {
    let clients = [("a", "manual"), ("b", "verified"), ("c", "after-delay")];
    let world = World::start(day(0), &clients).await;
    world.fake.set_propagation(TimeDelta::minutes(2));
    let run = |at: DateTime<Utc>, request: Request| {
        let world = &world;
        async move {
            world.set_now(at);
            let reports = world.engine.run(&world.targets(), at, &request).await.expect("run");
            ok(&reports);
        }
    };
    for n in 0..=120 {
        run(day(n), Request::default()).await;
        if n == 98 {
            run_set(&world, "a-TEST", day(n) + TimeDelta::hours(1), &promote()).await;
        }
    }
    for (name, _) in clients {
        let set = format!("{name}-TEST");
        let current =
            lifecycle::current(&world.records(&set).await, world.now()).expect("current").kid.to_string();
        assert_eq!(current, kid(name, 90), "{set} rotated once before the outage");
    }

    // Nothing runs from day 121 to day 520; the keys made on day 90 expired on day 455.
    let back = day(521);
    world.set_now(back);
    for (name, _) in clients {
        let (set, client) = (format!("{name}-TEST"), format!("{name}-id"));
        assert_eq!(current_key_works(&world, &set, &client).await, Err(Some("MP-121".to_owned())), "{set}");
    }
    let status = world.status().await;
    let expired = status.findings.iter().filter(|f| f.kind == FindingKind::Expired);
    assert_eq!(expired.filter(|f| f.severity == Severity::Critical).count(), 3, "{:#?}", status.findings);

    // `rotate`: every new key is registered at once.
    run(back, Request::default()).await;
    for (name, _) in clients {
        let records = world.records(&format!("{name}-TEST")).await;
        assert_eq!(state(&records, &kid(name, 521)), (Stage::Pending, Some(back)), "{name}");
        assert_eq!(world.registered(&format!("{name}-id")), [kid(name, 521)], "{name}: only the new key");
    }
    // Three minutes on (Digdir's propagation takes two here): `promote` for the manual client,
    // the scheduled run for the others. Each proves its key first.
    let soon = back + TimeDelta::minutes(3);
    run_set(&world, "a-TEST", soon, &promote()).await;
    run(soon, Request::default()).await;
    for (name, _) in clients {
        let (set, client) = (format!("{name}-TEST"), format!("{name}-id"));
        let records = world.records(&set).await;
        assert_eq!(record(&records, &kid(name, 521)).stage, Stage::Current, "{set}");
        assert_eq!(current_key_works(&world, &set, &client).await, Ok(()), "{set}");
    }
    assert_eq!(world.status().await.findings, []);
    let posts = no_exp_in_the_past(&world);
    assert!(posts >= 9, "{posts} uploads");
    assert_eq!(world.fake.deletes(), 0);
}
