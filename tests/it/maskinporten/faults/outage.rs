//! Digdir unavailable, slow or refusing: an outage of days holds the rotation back and
//! `status` escalates; bursts of 5xx and 429 are retried; a refused upload stops only its key set.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwk_rotator::findings::{FindingKind, Severity};
use jwk_rotator::record::Stage;

use super::super::world::{World, foreign_jwk};
use super::{
    api_requests, assert_contains, day, failure, grants_with, kid, kinds, ok, only, record, run_on, state,
    token_statuses, uploads,
};

#[tokio::test(flavor = "multi_thread")]
async fn while_the_api_is_down_the_new_key_waits_unregistered_and_status_escalates() {
    // max_age 135d: the first key expires on 2027-04-05, within warn_before (30d) from day 105.
    let world = World::start_with(day(0), &[("a", "verified")], "max_age = \"135d\"\n", day(1000)).await;
    let (first, second) = (kid("a", 0), kid("a", 90));
    ok(&run_on(&world, 0).await);

    world.fake.set_down(true);
    for n in 90..=109 {
        let reports = run_on(&world, n).await;
        let error = failure(&reports, "a-TEST");
        assert_eq!(error.kind(), "publish", "day {n}: {error}");
        assert_contains(
            &error.to_string(),
            &["a-TEST: the admin client got no token for Digdir's self-service API", "503"],
        );
        assert!(world.fake.requests().iter().all(|r| r.status == 503), "{:?}", world.fake.requests());
        let records = world.records("a-TEST").await;
        assert_eq!(records.len(), 2, "day {n}: one new key, made once: {records:?}");
        assert_eq!(state(&records, &first), (Stage::Current, Some(day(0))), "day {n}");
        assert_eq!(state(&records, &second), (Stage::Pending, None), "day {n}");
        assert_eq!(world.registered("a-id"), [first.as_str()], "day {n}");

        let status = world.status().await;
        let mut want = vec![(FindingKind::MaskinportenUnreachable, Severity::Warning)];
        if n >= 100 {
            // publish_ahead + alert_grace (9d) after the key was made
            want.push((FindingKind::PendingNotPromoted, Severity::Warning));
        }
        if n >= 105 {
            want.push((FindingKind::Expiring, Severity::Warning));
        }
        want.sort();
        assert_eq!(kinds(&status), want, "day {n}: {:#?}", status.findings);
        let unreachable = only(&status, FindingKind::MaskinportenUnreachable);
        assert_contains(
            &unreachable.message,
            &[
                "could not be read",
                "Digdir's self-service API",
                "new keys are not registered and not promoted",
            ],
        );
    }
    let status = world.status().await;
    let expiring = only(&status, FindingKind::Expiring);
    assert_eq!((expiring.kid.map(|k| k.to_string()), expiring.days_left), (Some(first.clone()), Some(25)));
    assert_contains(&only(&status, FindingKind::PendingNotPromoted).message, &[&second, "waited 19 days"]);

    // Back on day 110: registered now, and promoted seven days later, not before.
    world.fake.set_down(false);
    ok(&run_on(&world, 110).await);
    assert_eq!(state(&world.records("a-TEST").await, &second), (Stage::Pending, Some(day(110))));
    assert_eq!(world.registered("a-id"), [first.clone(), second.clone()]);
    assert_eq!(kinds(&world.status().await), [(FindingKind::Expiring, Severity::Warning)]);
    for n in 111..=116 {
        ok(&run_on(&world, n).await);
        assert_eq!(record(&world.records("a-TEST").await, &second).stage, Stage::Pending, "day {n}");
        assert_eq!(grants_with(&world.fake, &second), [], "day {n}");
    }
    ok(&run_on(&world, 117).await);
    assert!(grants_with(&world.fake, &second)[0].granted());
    assert_eq!(record(&world.records("a-TEST").await, &second).stage, Stage::Current);
    assert_eq!(world.status().await.findings, []);
}

#[tokio::test(flavor = "multi_thread")]
async fn bursts_of_5xx_and_429_on_the_api_and_the_token_endpoint_are_retried() {
    let world = World::start(day(0), &[("a", "verified")]).await;
    let second = kid("a", 90);
    // max_retries = 3 in the world: three failures, then the fourth try succeeds.
    world.fake.fail_next_on("/token", 3, 503);
    world.fake.fail_next_on("/jwks", 3, 502);
    ok(&run_on(&world, 0).await);
    assert_eq!(token_statuses(&world.fake), [503, 503, 503, 200]);
    let get = |status: u16| ("GET".to_owned(), status);
    // A client without keys answers 404: no keys. The last read is the run's closing write
    // of the outputs, which finds nothing to change.
    assert_eq!(
        api_requests(&world.fake),
        [get(502), get(502), get(502), get(404), get(404), ("POST".to_owned(), 201), get(200), get(200)]
    );
    assert_eq!(world.registered("a-id"), [kid("a", 0)]);

    // 429 with Retry-After: 1 (waited for max_delay, 20ms, at most).
    world.fake.throttle_next(2, 1);
    world.fake.fail_next_on("/jwks", 2, 500);
    ok(&run_on(&world, 90).await);
    assert_eq!(token_statuses(&world.fake), [429, 429, 200]);
    assert_eq!(&api_requests(&world.fake)[..3], [get(500), get(500), get(200)]);
    assert_eq!(state(&world.records("a-TEST").await, &second), (Stage::Pending, Some(day(90))));

    // The grant that proves the new key, then the API, each through a burst.
    world.fake.fail_next_on("/token", 3, 503);
    world.fake.fail_next_on("/jwks", 3, 429);
    ok(&run_on(&world, 97).await);
    assert_eq!(token_statuses(&world.fake), [503, 503, 503, 200, 200]);
    assert_eq!(grants_with(&world.fake, &second).len(), 1, "503s are answered before a grant is judged");
    // The read before the promotion (the client must still hold the key), then the publish's.
    assert_eq!(api_requests(&world.fake), [get(429), get(429), get(429), get(200), get(200)]);
    assert_eq!(record(&world.records("a-TEST").await, &second).stage, Stage::Current);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_digdir_refuses_shows_its_message_and_correlation_id_and_stops_only_that_key_set() {
    let world = World::start(day(0), &[("a", "verified"), ("b", "verified")]).await;
    ok(&run_on(&world, 0).await);
    // A 1024-bit key someone registered by hand long ago; it is kept as Digdir returns it, and
    // Digdir refuses it in the next upload (it takes 2048 bits and more).
    let mut legacy = foreign_jwk(1, "legacy-1024");
    let n = URL_SAFE_NO_PAD.decode(legacy["n"].as_str().expect("n")).expect("base64url");
    legacy["n"] = URL_SAFE_NO_PAD.encode(&n[..128]).into();
    world.fake.add_key("a-id", &legacy);
    ok(&run_on(&world, 1).await);
    assert_eq!(uploads(&world.fake), 0);

    let reports = run_on(&world, 90).await;
    let error = failure(&reports, "a-TEST");
    assert_eq!(error.kind(), "publish");
    let text = error.to_string();
    assert_contains(
        &text,
        &[
            "Digdir's self-service API refused replacing the keys of client a-id (HTTP 400)",
            "keys[2].n: RSA keys must have at least 2048 bits, this one has 1024",
            "quote it to Digdir's service desk",
        ],
    );
    let correlation = text.split("(correlation id ").nth(1).and_then(|rest| rest.split(';').next());
    let shape: Option<Vec<usize>> = correlation.map(|id| id.split('-').map(str::len).collect());
    assert_eq!(shape, Some(vec![8, 4, 4, 4, 12]), "{text}");
    let a_posts: Vec<u16> = world
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.client_id.as_deref() == Some("a-id") && r.path.ends_with("/jwks"))
        .map(|r| r.status)
        .collect();
    // A refusal is not retried, and the run's closing write does not try the same set again.
    assert_eq!(a_posts, [400]);
    assert_eq!(state(&world.records("a-TEST").await, &kid("a", 90)), (Stage::Pending, None));
    assert_eq!(world.registered("a-id"), [kid("a", 0), "legacy-1024".to_owned()]);

    // The other client in the same run.
    assert!(reports.iter().find(|r| r.key_set.to_string() == "b-TEST").is_some_and(|r| r.ok()));
    assert_eq!(state(&world.records("b-TEST").await, &kid("b", 90)), (Stage::Pending, Some(day(90))));
    assert_eq!(world.registered("b-id"), [kid("b", 0), kid("b", 90)]);
}
