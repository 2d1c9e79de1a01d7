//! What the real API does that a lenient fake would not: keys registered before Digdir made
//! `use` mandatory, a client of another organisation, an admin client whose certificate Digdir
//! registered under a kid, the last key removed, a set stored another way than it was sent, a kid
//! another client holds, and the run's clock against the wall clock.

use std::sync::Arc;

use chrono::TimeDelta;
use jwk_rotator::engine::Engine;
use jwk_rotator::findings::{FindingKind, Severity};
use jwk_rotator::keygen::FailingGenerator;
use jwk_rotator::planner::{Request, Retire};
use jwk_rotator::record::Stage;
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

use super::super::fake::{FakeDigdir, Storage};
use super::super::world::{ADMIN, World, config_text, foreign_jwk};
use super::{
    assert_contains, day, failure, grants_with, kid, kinds, ok, only, record, run_on, state, t0, uploads,
};

/// The keys posted in the fake's log since it was last cleared.
fn posted(world: &World) -> Vec<Value> {
    world.fake.posted().into_iter().flat_map(|(_, keys)| keys).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_registered_before_use_was_required_is_sent_with_use_and_nothing_else_changed() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    ok(&run_on(&world, 0).await);
    let mut legacy = foreign_jwk(1, "legacy-no-use");
    legacy.as_object_mut().expect("object").remove("use");
    world.fake.add_key("a-id", &legacy);
    // Nothing of ours changed: no upload just to add `use`.
    ok(&run_on(&world, 1).await);
    assert_eq!(uploads(&world.fake), 0);

    // The rotation's upload carries the legacy key with `use` added, every other member as GET
    // returned it; Digdir takes it.
    let as_read = world.fake.registered_keys("a-id").into_iter().find(|k| k.kid == "legacy-no-use");
    let as_read = serde_json::to_value(as_read.expect("registered")).expect("json");
    ok(&run_on(&world, 90).await);
    let sent = posted(&world).into_iter().find(|k| k["kid"] == "legacy-no-use").expect("sent");
    let mut expected = as_read;
    expected["use"] = "sig".into();
    assert_eq!(sent, expected);
    assert_eq!(world.registered("a-id"), [kid("a", 0), kid("a", 90), "legacy-no-use".to_owned()]);
    assert_eq!(state(&world.records("a-TEST").await, &kid("a", 90)), (Stage::Pending, Some(day(90))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_of_another_organisation_is_refused_with_what_to_check() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    // a-id belongs to another organisation than the admin client's certificate.
    world.fake.add_client_in_org("a-id", &[super::super::world::SCOPE], "920000002");
    let reports = run_on(&world, 0).await;
    let error = failure(&reports, "a-TEST");
    assert_eq!(error.kind(), "publish");
    assert_contains(
        &error.to_string(),
        &[
            "Digdir's self-service API refused reading the keys of client a-id (HTTP 403)",
            "is not bound to organisation",
            "quote it to Digdir's service desk",
            "An admin client reaches only the clients of its own organisation",
            "check that client_id for this environment",
        ],
    );
    assert_eq!(world.registered("a-id"), Vec::<String>::new());
    assert_eq!(state(&world.records("a-TEST").await, &kid("a", 0)), (Stage::Current, None));
    let status = world.status().await;
    assert_contains(
        &only(&status, FindingKind::MaskinportenUnreachable).message,
        &["HTTP 403", "its own organisation"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_client_with_its_certificate_registered_signs_with_admin_kid() {
    let fake = FakeDigdir::start().await;
    fake.set_now(day(0));
    let text = config_text(&fake, &[("a", "verified")], "").replace(
        "verify_wait = \"1s\"\n",
        "verify_wait = \"1s\"\nadmin_auth = \"kid\"\nadmin_kid = \"org-business-cert\"\n",
    );
    let world = World::with_config(fake, &text, day(1000)).await;
    let key_pem = std::fs::read(world.dir.path().join("admin-key.pem")).expect("key");
    let key = PrivatePkcs8KeyDer::from_pem_slice(&key_pem).expect("pkcs8");
    world.fake.register_certificate(ADMIN, "org-business-cert", key.secret_pkcs8_der());

    ok(&run_on(&world, 0).await);
    assert_eq!(world.registered("a-id"), [kid("a", 0)]);
    let admin: Vec<_> =
        world.fake.grants().into_iter().filter(|g| g.client_id.as_deref() == Some(ADMIN)).collect();
    assert!(!admin.is_empty() && admin.iter().all(|g| g.granted()), "{admin:?}");
    assert!(
        admin.iter().all(|g| g.kid.as_deref() == Some("org-business-cert") && g.certificate.is_none()),
        "kid, no x5c: {admin:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_keys_are_removed_with_delete_when_a_compromised_key_is_retired() {
    let world = World::start_with(day(0), &[("a", "manual")], "prune_unmanaged = true\n", day(1000)).await;
    let first = kid("a", 0);
    ok(&run_on(&world, 0).await);
    world.fake.add_key("a-id", &foreign_jwk(1, "portal-1"));
    // `retire --force` of the only key while no new key can be made: nothing of ours is left
    // to register, and prune_unmanaged removes the rest.
    let adapters = jwk_rotator::app::maskinporten::adapters(&world.config, {
        let fake = world.fake.clone();
        Arc::new(move || fake.now())
    })
    .await
    .expect("adapters");
    let failing = Arc::new(FailingGenerator { calls: Default::default() });
    let engine = Engine::new(world.store.clone(), failing, adapters.publisher).with_prover(adapters.prover);
    world.set_now(day(1));
    world.fake.clear_logs();
    let retire = Request {
        retire: Some(Retire { kid: first.parse().expect("kid"), force: true }),
        ..Request::default()
    };
    let reports = engine.run(&world.targets(), day(1), &retire).await.expect("run");
    assert_eq!(failure(&reports, "a-TEST").kind(), "keygen");
    assert_eq!(record(&world.records("a-TEST").await, &first).stage, Stage::Retired);
    assert_eq!(world.fake.deletes(), 1);
    assert_eq!(uploads(&world.fake), 0, "no empty POST");
    assert_eq!(world.registered("a-id"), Vec::<String>::new());

    // With a working generator, the next run makes a new key and registers it.
    let reports = world.engine.run(&world.targets(), day(1), &Request::default()).await.expect("run");
    ok(&reports);
    assert_eq!(world.registered("a-id"), [kid("a", 1)]);
    assert_eq!(state(&world.records("a-TEST").await, &kid("a", 1)), (Stage::Pending, Some(day(1))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_set_stored_another_way_is_compared_by_value_and_the_earlier_exp_reported() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    // Digdir keeps a key 300 days at most, and writes n with a sign byte.
    world.fake.set_storage(Storage { exp_clamp: Some(TimeDelta::days(300)), n_sign_byte: true });
    ok(&run_on(&world, 0).await);
    assert_eq!(uploads(&world.fake), 1, "one upload, read back and taken");
    let registered = world.fake.registered_keys("a-id");
    assert_eq!(registered[0].exp, (day(0) + TimeDelta::days(300)).timestamp());

    // The exp Digdir keeps for the one sent is remembered: no upload again for it.
    ok(&run_on(&world, 1).await);
    assert_eq!(uploads(&world.fake), 0);
    let status = world.status().await;
    assert_eq!(kinds(&status), [(FindingKind::RegisteredExpiry, Severity::Warning)]);
    assert_contains(
        &only(&status, FindingKind::RegisteredExpiry).message,
        &[&format!("has {} registered until 2027-09-17", kid("a", 0)), "jwk-rotator until 2027-11-21"],
    );
    // The rotation goes through: the new key is registered (with a sign byte), proved, promoted.
    for n in [90, 97] {
        ok(&run_on(&world, n).await);
    }
    let records = world.records("a-TEST").await;
    assert_eq!(record(&records, &kid("a", 90)).stage, Stage::Current);
    assert!(grants_with(&world.fake, &kid("a", 90))[0].granted());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kid_another_client_holds_is_told_with_how_to_rename() {
    let world = World::start(day(0), &[("a", "manual")]).await;
    ok(&run_on(&world, 0).await);
    // Another organisation has a client of the same name, and rotated on the same day.
    world.fake.add_client_in_org("theirs", &[super::super::world::SCOPE], "920000002");
    world.fake.add_key("theirs", &foreign_jwk(2, &kid("a", 90)));
    let reports = run_on(&world, 90).await;
    let error = failure(&reports, "a-TEST").to_string();
    assert_contains(
        &error,
        &[
            &format!("kid {} is already in use", kid("a", 90)),
            &format!("another client holds {}", kid("a", 90)),
            "`jwk-rotator rotate --force a-TEST` makes a new one under a new kid",
            "organisation number",
        ],
    );
    assert_eq!(state(&world.records("a-TEST").await, &kid("a", 90)), (Stage::Pending, None));
    // The way out the message gives: a new kid the same day.
    world.fake.clear_logs();
    let force = Request { force: true, ..Request::default() };
    ok(&world.run_with(&force).await);
    let renamed = format!("{}-2", kid("a", 90));
    assert_eq!(world.registered("a-id"), [kid("a", 0), renamed.clone()]);
    assert_eq!(record(&world.records("a-TEST").await, &kid("a", 90)).stage, Stage::Retired);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_s_now_not_the_wall_clock_decides_which_keys_have_expired() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    ok(&run_on(&world, 0).await);
    let mut foreign = foreign_jwk(1, "portal-1");
    foreign["exp"] = day(10).timestamp().into();
    world.fake.add_key("a-id", &foreign);
    // `rotate --at` a month ahead, or JWK_ROTATOR_NOW: Digdir (and the wall clock) are still on
    // day 0. The run judges the foreign key expired by its own now, as everything else.
    world.fake.clear_logs();
    let reports = world.engine.run(&world.targets(), day(30), &Request::default()).await.expect("run");
    ok(&reports);
    assert_eq!(world.fake.now(), t0());
    assert_eq!(world.registered("a-id"), [kid("a", 0)]);
    assert_eq!(uploads(&world.fake), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_dated_years_ahead_never_takes_a_key_that_still_works_off_the_client() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    ok(&run_on(&world, 0).await);
    // `rotate --at` two years ahead with --allow-future (or JWK_ROTATOR_NOW), while Digdir's
    // clock is on day 1: the run calls the first key expired, but Digdir still takes it.
    world.set_now(day(1));
    world.fake.clear_logs();
    let reports = world.engine.run(&world.targets(), day(730), &Request::default()).await.expect("run");
    ok(&reports);
    let registered = world.registered("a-id");
    assert!(registered.contains(&kid("a", 0)), "the working key stays registered: {registered:?}");
    assert_eq!(world.fake.deletes(), 0);
    let first = world.fake.registered_keys("a-id").into_iter().find(|k| k.kid == kid("a", 0));
    assert_eq!(first.map(|k| k.exp), Some(super::exp(0)), "with its own exp");
}
