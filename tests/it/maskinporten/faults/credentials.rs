//! The organisation's side of the grants: the admin client's business certificate nearing its
//! end, and a host clock that differs from Maskinporten's.

use std::sync::Arc;

use chrono::TimeDelta;
use jwk_rotator::app::maskinporten::adapters;
use jwk_rotator::findings::{FindingKind, Severity};
use jwk_rotator::kid::{KeySet, Kid};
use jwk_rotator::planner::Request;
use jwk_rotator::proof::Patience;
use jwk_rotator::record::Stage;
use jwk_rotator::store::KeyStore;

use super::super::fake::FakeDigdir;
use super::super::world::{ADMIN_CN, World};
use super::{assert_contains, day, kid, ok, only, record, run_on};

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_certificate_is_a_warning_within_warn_before_and_critical_within_critical_before() {
    let world = World::start_with(day(0), &[("a", "verified")], "", day(40)).await;
    ok(&run_on(&world, 0).await);
    let certificate = |f: &&jwk_rotator::findings::Finding| f.kind == FindingKind::AdminCertificate;
    assert_eq!(world.status().await.findings.iter().filter(certificate).count(), 0, "40 days left");

    let setting = world.dir.path().join("admin-chain.pem").display().to_string();
    for (n, severity, left) in [(20, Severity::Warning, 20), (35, Severity::Critical, 5)] {
        world.set_now(day(n));
        let found = only(&world.status().await, FindingKind::AdminCertificate);
        assert_eq!((found.severity, found.days_left), (severity, Some(left)), "day {n}");
        assert_eq!(found.key_set.to_string(), "a-TEST");
        assert_contains(
            &found.message,
            &[
                &format!("business certificate CN={ADMIN_CN}"),
                &format!("[maskinporten.TEST] admin_certificate_pem = {setting:?}"),
                &format!("expires on 2026-12-31, in {left} days"),
                "order a new one",
            ],
        );
    }
}

/// Adapters whose grants are signed `skew_secs` away from the fake's clock.
async fn skewed(world: &World, skew_secs: i64) -> jwk_rotator::app::maskinporten::Adapters {
    let fake: FakeDigdir = world.fake.clone();
    let clock = Arc::new(move || fake.now() + TimeDelta::seconds(skew_secs));
    adapters(&world.config, clock).await.expect("adapters")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_refused_for_clock_skew_says_the_clocks_differ_and_to_fix_ntp() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    ok(&run_on(&world, 0).await);
    let set: KeySet = "a-TEST".parse().expect("set");
    let first: Kid = kid("a", 0).parse().expect("kid");
    let key = world.store.private_key(&first).await.expect("key");
    // Digdir's texts: iat more than 10 s ahead of its clock, or more than 10 s behind (MP-130).
    for (skew, digdir, code) in
        [(30, "Issue time is after now", None), (-30, "JWT is expired", Some("MP-130"))]
    {
        let prover = skewed(&world, skew).await.prover;
        world.fake.clear_logs();
        let error = prover.prove(&set, &key, Patience::Once).await.expect_err("refused");
        assert_eq!(error.kind.as_str(), "clock-skew", "{skew}: {error}");
        assert_contains(
            &error.message,
            &[
                digdir,
                "this machine's clock differs from Maskinporten's by more than 10 seconds",
                "fix the time sync (NTP)",
            ],
        );
        let grants = world.fake.grants();
        assert_eq!(grants.len(), 1, "a refusal is not retried: {grants:?}");
        assert_eq!((grants[0].kid.clone(), grants[0].code()), (Some(first.to_string()), code));
        let reason = if skew > 0 { "s ahead of the clock" } else { "s behind the clock" };
        assert!(grants[0].reason().contains(reason), "{grants:?}");
        if let Some(code) = code {
            assert!(error.message.contains(&format!("invalid_grant, {code})")), "{error}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verified_promotion_with_the_clock_ahead_leaves_the_key_pending() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let second = kid("a", 90);
    ok(&run_on(&world, 0).await);
    ok(&run_on(&world, 90).await);

    let ahead = skewed(&world, 30).await;
    let engine = jwk_rotator::engine::Engine::new(
        world.store.clone(),
        Arc::new(jwk_rotator::keygen::AwsLcGenerator),
        ahead.publisher,
    )
    .with_prover(ahead.prover);
    world.set_now(day(97));
    let reports = engine.run(&world.targets(), day(97), &Request::default()).await.expect("run");
    // The admin client's grant is refused too, so the run fails on reading the client's keys.
    let error = super::failure(&reports, "a-TEST");
    assert_eq!(error.kind(), "publish");
    assert_contains(&error.to_string(), &["Issue time is after now", "NTP"]);
    let set: KeySet = "a-TEST".parse().expect("set");
    let attempt = engine.attempts().last(&set).expect("the pending key was tried");
    assert_eq!(attempt.kid.to_string(), second);
    assert_eq!(attempt.outcome.expect_err("refused").kind.as_str(), "clock-skew");
    assert_eq!(record(&world.records("a-TEST").await, &second).stage, Stage::Pending);
    assert_eq!(record(&world.records("a-TEST").await, &kid("a", 0)).stage, Stage::Current);
}

/// A damaged `admin_key_pem` is reported against that setting and file, not against
/// `admin_certificate_pem`; a key of another certificate against both.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_admin_key_names_admin_key_pem_and_its_file() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let dir = world.dir.path();
    let (chain, key) = (dir.join("admin-chain.pem"), dir.join("admin-key.pem"));
    let key_setting = format!("[maskinporten.TEST] admin_key_pem = {:?}", key.display().to_string());
    let error_of = |world: &World| {
        let config = world.config.clone();
        async move {
            match adapters(&config, Arc::new(chrono::Utc::now)).await {
                Ok(_) => panic!("the adapters were built"),
                Err(e) => e.to_string(),
            }
        }
    };
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n")
        .expect("damage the key");
    let error = error_of(&world).await;
    assert_contains(&error, &[&key_setting, "damaged"]);
    assert!(!error.contains("admin_certificate_pem"), "{error}");
    std::fs::remove_file(&key).expect("remove the key");
    let error = error_of(&world).await;
    assert_contains(&error, &[&key_setting, "cannot read"]);
    let other = world.fake.issue_business_certificate("Other AS", day(-1), day(300));
    std::fs::write(&key, &other.key_pem).expect("another certificate's key");
    let error = error_of(&world).await;
    let chain_setting = format!("admin_certificate_pem = {:?}", chain.display().to_string());
    assert_contains(
        &error,
        &[&chain_setting, &key_setting["[maskinporten.TEST] ".len()..], "does not belong"],
    );
}
