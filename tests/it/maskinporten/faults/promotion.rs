//! `promotion = "verified"` over simulated months: a new key is registered, waits
//! `publish_ahead`, and becomes current only in a run whose token grant with it succeeds; a
//! key that has not reached the token endpoint stays pending until it has.

use chrono::TimeDelta;
use jwk_rotator::engine::RunError;
use jwk_rotator::findings::{FindingKind, Severity};
use jwk_rotator::record::Stage;

use super::super::fake::GrantOutcome;
use super::super::world::{SCOPE, World};
use super::{assert_contains, day, exp, grants_with, kid, kinds, ok, only, record, run_on, state, uploads};

#[tokio::test(flavor = "multi_thread")]
async fn a_new_key_is_registered_and_promoted_after_publish_ahead_in_a_run_whose_grant_succeeds() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let (first, second) = (kid("a", 0), kid("a", 90));
    ok(&run_on(&world, 0).await);
    ok(&run_on(&world, 89).await);
    assert_eq!(world.registered("a-id"), [first.as_str()]);

    // Day 90: rotate_after (90d) has passed; the new key is made and registered, read back.
    ok(&run_on(&world, 90).await);
    let records = world.records("a-TEST").await;
    assert_eq!(state(&records, &first), (Stage::Current, Some(day(0))));
    assert_eq!(state(&records, &second), (Stage::Pending, Some(day(90))));
    assert_eq!(world.registered("a-id"), [first.clone(), second.clone()]);
    let registered = world.fake.registered_keys("a-id");
    assert_eq!(registered.iter().find(|k| k.kid == second).map(|k| k.exp), Some(exp(90)));
    assert_eq!(uploads(&world.fake), 1);

    // Days 91-96: publish_ahead (7d) has not passed; no grant is even tried.
    for n in 91..=96 {
        ok(&run_on(&world, n).await);
        assert_eq!(
            state(&world.records("a-TEST").await, &second),
            (Stage::Pending, Some(day(90))),
            "day {n}"
        );
        assert!(world.fake.grants().iter().all(|g| g.kid.is_none()), "day {n}: {:?}", world.fake.grants());
        assert_eq!(world.status().await.findings, [], "day {n}");
    }

    // Day 97, seven days after it was published: a grant signed with it, then the promotion.
    ok(&run_on(&world, 97).await);
    let grants = grants_with(&world.fake, &second);
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].client_id.as_deref(), Some("a-id"));
    assert_eq!(grants[0].outcome, GrantOutcome::Granted { scope: SCOPE.to_owned() });
    let records = world.records("a-TEST").await;
    assert_eq!(record(&records, &second).stage, Stage::Current);
    assert_eq!(record(&records, &second).activated, Some(day(97)));
    assert_eq!(record(&records, &first).stage, Stage::Previous);
    assert_eq!(record(&records, &first).demoted, Some(day(97)));
    assert_eq!(world.registered("a-id"), [first.clone(), second.clone()]);

    // The old key stays registered for overlap (14d), then is removed from the client.
    for n in 98..=110 {
        ok(&run_on(&world, n).await);
        assert_eq!(record(&world.records("a-TEST").await, &first).stage, Stage::Previous, "day {n}");
        assert_eq!(world.registered("a-id"), [first.clone(), second.clone()], "day {n}");
    }
    ok(&run_on(&world, 111).await);
    assert_eq!(record(&world.records("a-TEST").await, &first).stage, Stage::Retired);
    assert_eq!(world.registered("a-id"), [second.as_str()]);
    assert_eq!(uploads(&world.fake), 1);
    assert_eq!(world.fake.deletes(), 0);
    assert_eq!(world.status().await.findings, []);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_has_not_reached_the_token_endpoint_stays_pending_until_it_has() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let second = kid("a", 90);
    ok(&run_on(&world, 0).await);
    // Far beyond verify_wait (1s in the world): the token endpoint learns of changes 30 days late.
    world.fake.set_propagation(TimeDelta::days(30));
    for n in 90..=96 {
        ok(&run_on(&world, n).await);
    }
    assert_eq!(world.registered("a-id"), [kid("a", 0), second.clone()]);
    assert_eq!(world.fake.propagated_keys("a-id").len(), 1);

    for n in 97..=119 {
        let reports = run_on(&world, n).await;
        let error = super::failure(&reports, "a-TEST");
        assert_eq!(error.kind(), "unproven", "day {n}: {error}");
        let RunError::Unproven { kid: unproven, error: proof } = error else { panic!("{error}") };
        assert_eq!(unproven.to_string(), second);
        assert_eq!(proof.kind.as_str(), "unknown-kid");
        assert_contains(
            &proof.message,
            &[&second, "Unknown key identifier (kid) for client", "tried for 0s", "0-2 minutes"],
        );
        let grants = grants_with(&world.fake, &second);
        assert_eq!(grants.len(), 1, "day {n}: {grants:?}");
        assert!(grants[0].reason().contains("not (yet) known"), "{grants:?}");
        let records = world.records("a-TEST").await;
        assert_eq!(state(&records, &second), (Stage::Pending, Some(day(90))), "day {n}");
        assert_eq!(record(&records, &kid("a", 0)).stage, Stage::Current);

        let status = world.status().await;
        let mut want = vec![(FindingKind::VerificationFailing, Severity::Warning)];
        if n >= 100 {
            // publish_ahead + alert_grace (9d) after it was published
            want.insert(0, (FindingKind::PendingNotPromoted, Severity::Warning));
        }
        assert_eq!(kinds(&status), want, "day {n}: {:#?}", status.findings);
        let failing = only(&status, FindingKind::VerificationFailing);
        assert_eq!(failing.kid.map(|k| k.to_string()), Some(second.clone()));
        assert_contains(&failing.message, &[&proof.message, "stays pending"]);
        // status reuses the run's attempt rather than signing another grant
        assert_eq!(grants_with(&world.fake, &second).len(), 1);
    }

    // Day 120: the key set registered on day 90 has reached the token endpoint.
    ok(&run_on(&world, 120).await);
    assert!(grants_with(&world.fake, &second)[0].granted());
    assert_eq!(record(&world.records("a-TEST").await, &second).stage, Stage::Current);
    assert_eq!(world.status().await.findings, []);
}
