//! Racing writers without a lock: the oldest version of a kid wins, the others are disabled,
//! every run agrees, and two engines rotating the same key sets at once converge.

use std::collections::BTreeMap;

use jwk_rotator::engine::RunError;
use jwk_rotator::keygen::KeyGenerator;
use jwk_rotator::kid::Kid;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::{Algorithm, KeySize, Promotion};
use jwk_rotator::publish::PublishedSet;
use jwk_rotator::store::{StoreError, create};

use super::*;

const KID: &str = "testklient-TEST.2026-11-21";
const NAME: &str = "jwk-testklient-TEST--2026-11-21";

fn clients() -> Vec<ClientConfig> {
    vec![client("testklient", &["TEST"], Some("{client}-{env}-jwk"), Promotion::Manual)]
}

/// The same kid with two different keys, as two racing runs would make it.
fn two_keys() -> [(KeyRecord, jwk_rotator::jwk::PrivateJwk); 2] {
    let keys = fixtures();
    let kid: Kid = KID.parse().expect("kid");
    [0, 1].map(|_| {
        let key = keys.generate(kid.clone(), KeySize::Rsa2048, Algorithm::RS256).expect("key");
        (KeyRecord::new(key.public().clone(), Stage::Current, t0()), key)
    })
}

#[tokio::test]
async fn vault_a_second_writer_of_a_kid_loses_to_the_oldest_version_and_is_disabled() {
    let vault = FakeVault::start("race-create").await;
    let (first, second) = (store_with(&vault, &clients(), ""), store_with(&vault, &clients(), ""));
    let [(rec_a, key_a), (rec_b, key_b)] = two_keys();
    create(&*first, &rec_a, &key_a).await.expect("first writer");
    vault.state().clock_offset = 2; // a later second, so that the order is not a tie
    let lost = create(&*second, &rec_b, &key_b).await.expect_err("second writer");
    assert!(matches!(lost, StoreError::Exists { .. }), "{lost}");
    assert_eq!(lost.place(), &jwk_rotator::store::Place::secret(&vault.url(), NAME), "{lost}");
    assert!(lost.to_string().contains("that version was kept and ours disabled"), "{lost}");

    let versions = vault.versions(NAME);
    assert_eq!(versions.len(), 2);
    assert!(versions[0].enabled && !versions[1].enabled);
    assert_eq!(versions[1].tag("duplicate-of"), Some(versions[0].id.as_str()));
    for store in [&first, &second] {
        assert_eq!(store.private_key(&rec_a.kid).await.expect("key"), key_a, "every store agrees");
        assert_eq!(records(&**store, &set("testklient-TEST")).await, std::slice::from_ref(&rec_a));
    }
}

#[tokio::test]
async fn vault_an_unmarked_younger_version_never_hides_the_winner() {
    let vault = FakeVault::start("race-crash").await;
    let store = store_with(&vault, &clients(), "");
    let [(rec_a, key_a), (rec_b, key_b)] = two_keys();
    create(&*store, &rec_a, &key_a).await.expect("create");
    let mut published = rec_a.clone();
    published.published = Some(t0());
    store.update(&published).await.expect("publish");
    // A racing run wrote its own version a second later and died before it could check: it is
    // the latest version, and it has no `published` tag.
    vault.state().clock_offset = 1;
    let tags = jwk_rotator::azure::layout::tags_of(&rec_b);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vault.put(NAME, &key_b.to_base64(), &tags);

    let fresh = store_with(&vault, &clients(), "");
    assert_eq!(records(&*fresh, &set("testklient-TEST")).await, [published.clone()]);
    assert_eq!(fresh.private_key(&rec_a.kid).await.expect("key"), key_a);
    fresh.update(&published).await.expect("update");
    let versions = vault.versions(NAME);
    assert!(versions[0].enabled && !versions[1].enabled, "the next write disables the younger version");
}

#[tokio::test]
async fn vault_versions_written_in_the_same_second_resolve_the_same_way_for_everyone() {
    let vault = FakeVault::start("race-tie").await;
    let [(rec_a, key_a), (rec_b, key_b)] = two_keys();
    for (rec, key) in [(&rec_a, &key_a), (&rec_b, &key_b)] {
        let tags = jwk_rotator::azure::layout::tags_of(rec);
        let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vault.put(NAME, &key.to_base64(), &tags);
    }
    let versions = vault.versions(NAME);
    let created = versions[0].created;
    for v in vault.state().live.values_mut().flat_map(|e| e.versions.iter_mut()) {
        v.created = created;
    }
    let winner = versions.iter().min_by(|a, b| a.id.cmp(&b.id)).expect("versions");
    let want = if winner.value == key_a.to_base64().as_str() { &key_a } else { &key_b };
    for _ in 0..3 {
        let store = store_with(&vault, &clients(), "");
        assert_eq!(&store.private_key(&rec_a.kid).await.expect("key"), want);
    }
}

/// Checks the vault after racing runs: one live version per kid, consumer secrets hold the
/// current kid, and what each engine published matches the store.
async fn assert_converged(
    vault: &FakeVault,
    store: &dyn KeyStore,
    all: &[Target],
    published: &[&MemoryPublisher],
) {
    let loaded = store.load(&all.iter().map(|t| t.key_set.clone()).collect::<Vec<_>>()).await.expect("load");
    for t in all {
        let recs = loaded[&t.key_set].clone().expect("records");
        let current: Vec<_> = recs.iter().filter(|r| r.stage == Stage::Current).collect();
        assert_eq!(current.len(), 1, "{}: {:?}", t.key_set, stages(&recs));
        let consumer = vault.versions(&format!("{}-jwk", t.key_set));
        assert_eq!(consumer.last().and_then(|v| v.tag("kid")), Some(current[0].kid.to_string().as_str()));
        for p in published {
            let got = p.sets.lock().expect("lock").get(&t.key_set).cloned().expect("published");
            let expected = PublishedSet::from_records(&t.key_set, &recs, &t.policy, got.at);
            assert_eq!(got, expected, "{}", t.key_set);
        }
    }
    for name in vault.names().iter().filter(|n| n.starts_with("jwk-")) {
        let versions = vault.versions(name);
        let live = versions.iter().filter(|v| v.enabled).count();
        let retired = versions[0].tag("stage") == Some("retired");
        assert_eq!(live, usize::from(!retired), "{name}: {versions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vault_two_engines_rotating_the_same_key_sets_at_once_converge() {
    let vault = FakeVault::start("race-engines").await;
    let clients: Vec<ClientConfig> = (1..=4)
        .map(|i| {
            client(&format!("klient{i}"), &["TEST", "PROD"], Some("{client}-{env}-jwk"), Promotion::Manual)
        })
        .collect();
    let all = targets(&clients);
    let (store_a, store_b) = (store_with(&vault, &clients, ""), store_with(&vault, &clients, ""));
    let (engine_a, pub_a) = engine(store_a.clone());
    let (engine_b, pub_b) = engine(store_b.clone());
    let phases =
        [(t0(), Request::default()), (t0() + days(91), Request::default()), (t0() + days(92), promote())];
    let (mut lost, mut raced) = (BTreeMap::new(), 0);
    for (now, request) in phases {
        let (a, b) = tokio::join!(engine_a.run(&all, now, &request), engine_b.run(&all, now, &request));
        for r in a.expect("run a").into_iter().chain(b.expect("run b")) {
            raced += usize::from(r.raced.is_some());
            if let Some(e) = r.error {
                *lost.entry(now).or_insert(0) += 1;
                // A key written by both runs is a race resolved, not a failure (the issue saw
                // 31 of 80 runs exit 1 for it); a promote asked for twice is refused once.
                assert!(matches!(e, RunError::Refused(_)), "{}: {e}", r.key_set);
            }
        }
        // Whoever lost a race finishes on its next run; the one after that has nothing to do.
        engine_a.run(&all, now, &Request::default()).await.expect("settle a");
        engine_b.run(&all, now, &Request::default()).await.expect("settle b");
        vault.reset_requests();
        run_ok(&engine_a, &all, now, &Request::default()).await;
        let writes: Vec<String> = vault.log().into_iter().filter(|l| !l.contains(" GET ")).collect();
        assert_eq!(writes, Vec::<String>::new(), "converged runs write nothing at {now}");
        assert_converged(&vault, &*store_a, &all, &[&pub_a, &pub_b]).await;
    }
    eprintln!("key sets whose promote lost a race, per phase: {lost:?}; new keys made by both: {raced}");
    assert!(raced > 0, "the engines raced for no new key: the test exercises nothing");
}

/// Eight `rotate`s at once, the real binary, on one vault (no lock): the runs that lost the
/// race for a new key exit 0 and say another run carries out the rest. Before, 31 of 80 such
/// runs exited 1 with "exists already ... written by another run", though the end state was
/// right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_binaries_racing_on_one_vault_all_exit_0() {
    let (ca, cert, key) = super::https::certificates();
    let vault = FakeVault::start_tls(&cert, &key).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("ca.pem"), ca).expect("ca");
    let config = dir.path().join("jwk-rotator.toml");
    let text = format!(
        "[store]\nkind = \"azure-key-vault\"\nvault_url = \"{}\"\ncredential = \"static-token\"\nca_cert = \"ca.pem\"\nverify_challenge_resource = false\nsettle = \"200ms\"\n\n[publish]\ndir = \"jwks\"\n\n[[client]]\nname = \"a\"\nenvironments = [\"TEST\", \"PROD\"]\nconsumer_secret = \"{{client}}-{{env}}-jwk\"\n",
        vault.url()
    );
    std::fs::write(&config, text).expect("config");
    let env = [("JWK_ROTATOR_STATIC_TOKEN", super::fake::TOKEN), ("JWK_ROTATOR_NOW", "2026-11-21T12:00:00Z")];
    let runs = (0..8).map(|_| crate::support::run_binary(&config, &["rotate"], &env, &[]));
    let outs = futures::future::join_all(runs).await;
    let mut raced = 0;
    for out in &outs {
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        raced += stdout.matches("at the same moment and carries out the rest").count();
    }
    eprintln!("key sets whose new key another run made first: {raced} of 16");
    for set in ["a-TEST", "a-PROD"] {
        let live: Vec<_> =
            vault.versions(&format!("jwk-{set}--2026-11-21")).into_iter().filter(|v| v.enabled).collect();
        assert_eq!(live.len(), 1, "{set}: one live version");
        let consumer = vault.versions(&format!("{set}-jwk"));
        assert_eq!(consumer.last().and_then(|v| v.tag("kid")), Some(format!("{set}.2026-11-21").as_str()));
    }
}
