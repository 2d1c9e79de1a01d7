//! The client's registered keys against ours: the 5-key limit and `prune_unmanaged`, a
//! read-back that misses a key, and changes made by hand in Samarbeidsportalen.

use jwk_rotator::findings::{FindingKind, Severity};
use jwk_rotator::record::Stage;

use super::super::world::{World, foreign_jwk};
use super::{
    api_requests, assert_contains, day, exp, failure, grants_with, kid, kinds, ok, only, run_on, state,
    uploads,
};

/// Four keys jwk-rotator does not manage on client `a-id`.
fn add_foreign_keys(world: &World) -> Vec<String> {
    let kids: Vec<String> = (1..=4).map(|i| format!("legacy-{i}")).collect();
    for (i, kid) in kids.iter().enumerate() {
        world.fake.add_key("a-id", &foreign_jwk(i + 1, kid));
    }
    kids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sixth_key_is_refused_before_anything_is_sent_naming_the_keys_not_managed() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    ok(&run_on(&world, 0).await);
    let foreign = add_foreign_keys(&world);
    ok(&run_on(&world, 1).await);
    assert_eq!(uploads(&world.fake), 0, "five keys, and the client holds them already");

    let reports = run_on(&world, 90).await;
    let error = failure(&reports, "a-TEST");
    assert_eq!(error.kind(), "publish");
    let text = error.to_string();
    assert_contains(
        &text,
        &["6 keys on Maskinporten client a-id", "allows 5", "Nothing was sent", "prune_unmanaged"],
    );
    assert_contains(&text, &[&kid("a", 0), &kid("a", 90)]);
    assert_contains(&text, &foreign.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(uploads(&world.fake), 0);
    assert!(api_requests(&world.fake).iter().all(|(method, _)| method == "GET"));
    assert_eq!(state(&world.records("a-TEST").await, &kid("a", 90)), (Stage::Pending, None));
    let mut registered = vec![kid("a", 0)];
    registered.extend(foreign.iter().cloned());
    assert_eq!(world.registered("a-id"), registered);

    let status = world.status().await;
    let unmanaged: Vec<_> = status.findings.iter().filter(|f| f.kind == FindingKind::UnmanagedKey).collect();
    assert_eq!(unmanaged.len(), 4, "{:#?}", status.findings);
    for (finding, kid) in unmanaged.iter().zip(&foreign) {
        assert_eq!(finding.severity, Severity::Ok);
        assert_contains(
            &finding.message,
            &[&format!("{kid:?}"), "does not manage", "prune_unmanaged = true"],
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_unmanaged_removes_the_keys_not_managed_and_registers_ours() {
    let world = World::start_with(day(0), &[("a", "verified")], "prune_unmanaged = true\n", day(1000)).await;
    ok(&run_on(&world, 0).await);
    add_foreign_keys(&world);
    ok(&run_on(&world, 90).await);
    assert_eq!(world.registered("a-id"), [kid("a", 0), kid("a", 90)]);
    assert_eq!(state(&world.records("a-TEST").await, &kid("a", 90)), (Stage::Pending, Some(day(90))));
    assert_eq!(uploads(&world.fake), 1);
    assert_eq!(world.fake.deletes(), 0);
    assert_eq!(world.status().await.findings, []);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_missing_from_the_read_back_is_not_published_and_never_promoted() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let second = kid("a", 90);
    ok(&run_on(&world, 0).await);
    world.fake.drop_from_readback(&second);
    for n in 90..=100 {
        let reports = run_on(&world, n).await;
        let error = failure(&reports, "a-TEST");
        assert_eq!(error.kind(), "publish", "day {n}: {error}");
        assert_contains(
            &error.to_string(),
            &[
                &format!("client a-id does not hold {second} after repeated uploads and read-backs"),
                "do not count as published",
            ],
        );
        // Three uploads, each read back; the run's closing write does not try again.
        assert_eq!(uploads(&world.fake), 3, "day {n}");
        let records = world.records("a-TEST").await;
        assert_eq!(state(&records, &second), (Stage::Pending, None), "day {n}");
        assert_eq!(state(&records, &kid("a", 0)), (Stage::Current, Some(day(0))), "day {n}");
        assert_eq!(grants_with(&world.fake, &second), [], "day {n}");
    }
    // Digdir holds it; only its answers leave it out.
    assert_eq!(world.registered("a-id"), [kid("a", 0), second]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_added_in_the_portal_between_our_read_and_our_write_survives_the_upload() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    ok(&run_on(&world, 0).await);
    world.set_now(day(90));
    world.fake.add_after_next_get("a-id", &foreign_jwk(1, "portal-1"));
    ok(&run_on(&world, 90).await);
    assert_eq!(world.registered("a-id"), [kid("a", 0), kid("a", 90), "portal-1".to_owned()]);
    let get = |status: u16| ("GET".to_owned(), status);
    // The re-read before writing saw the new key; the upload kept it. The last read is the
    // run's closing write of the outputs, which finds nothing to change.
    let post = ("POST".to_owned(), 201);
    assert_eq!(api_requests(&world.fake), [get(200), get(200), post, get(200), get(200)]);
    assert_eq!(state(&world.records("a-TEST").await, &kid("a", 90)), (Stage::Pending, Some(day(90))));
    let status = world.status().await;
    assert_eq!(kinds(&status), [(FindingKind::UnmanagedKey, Severity::Ok)]);
    assert_contains(&status.findings[0].message, &["\"portal-1\""]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_current_key_removed_by_hand_is_critical_and_the_next_run_registers_it_again() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let first = kid("a", 0);
    ok(&run_on(&world, 0).await);
    world.set_now(day(1));
    let removed = first.clone();
    world.fake.edit_after_next_get("a-id", move |keys| keys.retain(|k| k.kid != removed));
    assert_eq!(world.status().await.findings, [], "the edit follows this status's read");
    assert_eq!(world.registered("a-id"), Vec::<String>::new());

    let status = world.status().await;
    assert_eq!(kinds(&status), [(FindingKind::RegistrationDrift, Severity::Critical)]);
    let drift = only(&status, FindingKind::RegistrationDrift);
    assert_eq!(drift.kid.map(|k| k.to_string()), Some(first.clone()));
    assert_contains(
        &drift.message,
        &[
            &format!("current key {first} is not registered on Maskinporten client a-id"),
            "token requests signed with it fail",
            "`jwk-rotator rotate a-TEST` registers it again",
        ],
    );

    ok(&run_on(&world, 1).await);
    assert_eq!(world.registered("a-id"), [first]);
    assert_eq!(uploads(&world.fake), 1);
    assert_eq!(world.status().await.findings, []);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exp_shortened_by_hand_is_reported_and_expiry_alerts_use_digdirs_date() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let first = kid("a", 0);
    ok(&run_on(&world, 0).await);
    world.set_now(day(1));
    let earlier = day(21);
    let edited = first.clone();
    world.fake.edit_after_next_get("a-id", move |keys| {
        keys.iter_mut().filter(|k| k.kid == edited).for_each(|k| k.exp = earlier.timestamp());
    });
    assert_eq!(world.status().await.findings, []);

    let status = world.status().await;
    assert_eq!(
        kinds(&status),
        [(FindingKind::Expiring, Severity::Warning), (FindingKind::RegisteredExpiry, Severity::Warning)]
    );
    let expiring = only(&status, FindingKind::Expiring);
    assert_eq!((expiring.kid.map(|k| k.to_string()), expiring.days_left), (Some(first.clone()), Some(20)));
    assert_contains(&expiring.message, &[&format!("current key {first} expires on 2026-12-12, in 20 days")]);
    let changed = only(&status, FindingKind::RegisteredExpiry);
    assert_contains(
        &changed.message,
        &[
            &format!("has {first} registered until 2026-12-12T06:00:00+00:00"),
            "jwk-rotator until 2027-11-21T00:00:00+00:00",
            "changed by hand",
            "expiry alerts use Maskinporten's date",
        ],
    );

    // The next upload sets it back.
    ok(&run_on(&world, 1).await);
    assert_eq!(uploads(&world.fake), 1);
    assert_eq!(world.fake.registered_keys("a-id")[0].exp, exp(0));
    assert_eq!(world.status().await.findings, []);
}
