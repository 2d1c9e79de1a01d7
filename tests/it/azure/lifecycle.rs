//! The key lifecycle against the vault store: layout of the secrets, the consumer secret,
//! idempotent runs, and crash consistency (a run cut off at every write, then finished).

use std::sync::Arc;

use jwk_rotator::jwk::PrivateJwk;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::Promotion;
use jwk_rotator::record::Stage;
use jwk_rotator::store::flaky::FlakyStore;
use jwk_rotator::store::{KeyStore, Opened};

use super::*;

const KID1: &str = "testklient-TEST.2026-11-21";
const NAME1: &str = "jwk-testklient-TEST--2026-11-21";
const CONSUMER: &str = "testklient-TEST-jwk";

fn setup(vault: &FakeVault, extra: &str) -> (Arc<VaultStore>, Vec<ClientConfig>) {
    let clients = vec![client("testklient", &["TEST"], Some("{client}-{env}-jwk"), Promotion::Manual)];
    (store_with(vault, &clients, extra), clients)
}

/// Log lines of requests that wrote something.
fn writes(vault: &FakeVault) -> Vec<String> {
    vault.log().into_iter().filter(|l| !l.contains(" GET ")).collect()
}

#[tokio::test]
async fn vault_bootstrap_writes_one_tagged_secret_per_kid_and_the_consumer_secret() {
    let vault = FakeVault::start("layout").await;
    let (store, clients) = setup(&vault, "");
    let (engine, publisher) = engine(store.clone());
    run_ok(&engine, &targets(&clients), t0(), &Request::default()).await;

    let versions = vault.versions(NAME1);
    assert_eq!(versions.len(), 1, "one version");
    let v = &versions[0];
    for (tag, want) in
        [("kid", KID1), ("key-set", "testklient-TEST"), ("stage", "current"), ("managed-by", "jwk-rotator")]
    {
        assert_eq!(v.tag(tag), Some(want), "tag {tag}");
    }
    for tag in ["created", "published", "activated", "alg", "n", "e"] {
        assert!(v.tag(tag).is_some(), "tag {tag} missing");
    }
    assert_eq!(v.content_type.as_deref(), Some("application/jwk+json; encoding=base64"));
    let kid_date: chrono::DateTime<chrono::Utc> = "2026-11-21T00:00:00Z".parse().expect("time");
    assert_eq!(v.exp, Some((kid_date + days(365)).timestamp()), "exp = kid date + max_age");
    assert_eq!(v.nbf, Some(t0().timestamp()), "nbf = creation");
    let key = PrivateJwk::from_base64(&v.value).expect("value is a base64 private JWK");
    assert_eq!(key.kid().to_string(), KID1);
    assert_eq!(Some(key.public().n.as_str()), v.tag("n"));

    let consumer = vault.versions(CONSUMER);
    assert_eq!(consumer.len(), 1);
    assert_eq!(consumer[0].value, v.value, "the consumer secret holds the current key");
    assert_eq!(consumer[0].tag("kid"), Some(KID1));
    assert_eq!(consumer[0].exp, v.exp);

    let published = publisher.sets.lock().expect("lock")[&set("testklient-TEST")].clone();
    assert_eq!(published.keys.len(), 1);
    assert_eq!(published.keys[0].0, key.public().clone());
    assert_eq!(store.private_key(key.kid()).await.expect("private key"), key);
}

#[tokio::test]
async fn vault_full_lifecycle_rotates_promotes_retires_and_purges() {
    let vault = FakeVault::start("lifecycle").await;
    let (store, clients) = setup(&vault, "purge = true");
    let (engine, publisher) = engine(store.clone());
    let t = targets(&clients);
    let s = set("testklient-TEST");
    run_ok(&engine, &t, t0(), &Request::default()).await;
    let rotated = t0() + days(91);
    run_ok(&engine, &t, rotated, &Request::default()).await;
    let kid2 = "testklient-TEST.2027-02-20";
    let name2 = "jwk-testklient-TEST--2027-02-20";
    assert_eq!(
        stages(&records(&*store, &s).await),
        [(KID1.into(), Stage::Current), (kid2.into(), Stage::Pending)]
    );
    assert_eq!(vault.versions(CONSUMER).len(), 1, "a pending key is not given to applications");

    run_ok(&engine, &t, rotated + days(1), &promote()).await;
    assert_eq!(
        stages(&records(&*store, &s).await),
        [(KID1.into(), Stage::Previous), (kid2.into(), Stage::Current)]
    );
    let consumer = vault.versions(CONSUMER);
    assert_eq!(consumer.len(), 2);
    assert_eq!(consumer[1].tag("kid"), Some(kid2));
    assert_eq!(consumer[1].value, vault.versions(name2)[0].value);

    let retire_at = rotated + days(1) + days(15);
    run_ok(&engine, &t, retire_at, &Request::default()).await;
    assert_eq!(
        stages(&records(&*store, &s).await),
        [(KID1.into(), Stage::Retired), (kid2.into(), Stage::Current)]
    );
    assert!(!vault.versions(NAME1)[0].enabled, "a retired key's version is disabled");
    let e = store.private_key(&KID1.parse().expect("kid")).await.expect_err("disabled");
    assert!(e.to_string().contains("disabled (403 SecretDisabled)"), "{e}");
    let consumer = vault.versions(CONSUMER);
    assert!(!consumer[0].enabled, "the consumer version holding the retired key is disabled");
    assert!(consumer[1].enabled, "the consumer secret's latest version stays enabled");
    let published = publisher.sets.lock().expect("lock")[&s].clone();
    assert_eq!(published.keys.iter().map(|(k, _)| k.kid.to_string()).collect::<Vec<_>>(), [kid2]);

    vault.state().conflicts_after_delete = 2; // purge answers 409 right after the delete
    run_ok(&engine, &t, retire_at + days(31), &Request::default()).await;
    assert_eq!(stages(&records(&*store, &s).await), [(kid2.into(), Stage::Current)]);
    assert!(vault.versions(NAME1).is_empty() && vault.deleted().is_empty(), "deleted and purged");
}

#[tokio::test]
async fn vault_a_second_run_at_the_same_time_writes_nothing() {
    let vault = FakeVault::start("idempotent").await;
    let (store, clients) = setup(&vault, "");
    let (engine, _) = engine(store.clone());
    let t = targets(&clients);
    let steps =
        [(t0(), Request::default()), (t0() + days(91), Request::default()), (t0() + days(92), promote())];
    for (now, request) in steps {
        run_ok(&engine, &t, now, &request).await;
        vault.reset_requests();
        run_ok(&engine, &t, now, &Request::default()).await;
        assert_eq!(writes(&vault), Vec::<String>::new(), "second run at {now} wrote");
    }
}

/// Cuts a rotation and a promotion off at every write in turn: the new key's `write_new` and
/// `confirm_new` (the two passes a run makes), each update, and the consumer secret's write,
/// through the same ports the application wires. The next run finishes the job and leaves
/// exactly one current key, which the consumer secret holds.
#[tokio::test]
async fn vault_runs_cut_off_at_any_write_are_finished_by_the_next_run() {
    let mut uncut = None;
    for budget in 0..30 {
        let vault = FakeVault::start(&format!("crash{budget}")).await;
        let (store, clients) = setup(&vault, "");
        let t = targets(&clients);
        let s = set("testklient-TEST");
        let (healthy, publisher) = engine(store.clone());
        run_ok(&healthy, &t, t0(), &Request::default()).await;
        let (flaky, ports) = FlakyStore::opened(&Opened::with_consumers(store.clone()), budget);
        let (crashing, _) = crate::support::engine_over(ports);
        assert!(crashing.consumer_secrets().is_some(), "the crashing run sees the consumer secret");
        let rotated = t0() + days(91);
        let _ = crashing.run(&t, rotated, &Request::default()).await;
        run_ok(&healthy, &t, rotated, &Request::default()).await;
        let now = t0() + days(92);
        let _ = crashing.run(&t, now, &promote()).await;
        let cut = flaky.writes() > budget;
        if !cut {
            // Every write went through the flaky ports, the consumer secret's included.
            let consumer = vault.versions(CONSUMER);
            assert_eq!(consumer.last().and_then(|v| v.tag("kid")), Some("testklient-TEST.2027-02-20"));
        }
        let still_pending = records(&*store, &s).await.iter().any(|r| r.stage == Stage::Pending);
        let request = if still_pending { promote() } else { Request::default() };
        run_ok(&healthy, &t, now, &request).await;
        let recs = records(&*store, &s).await;
        let current: Vec<_> = recs.iter().filter(|r| r.stage == Stage::Current).collect();
        assert_eq!(current.len(), 1, "budget {budget}: {:?}", stages(&recs));
        assert_eq!(current[0].kid.to_string(), "testklient-TEST.2027-02-20", "budget {budget}");
        let consumer = vault.versions(CONSUMER);
        assert_eq!(consumer.last().and_then(|v| v.tag("kid")), Some(current[0].kid.to_string().as_str()));
        let published = publisher.sets.lock().expect("lock")[&s].clone();
        assert!(published.keys.iter().any(|(k, _)| k.kid == current[0].kid), "budget {budget}");
        for name in vault.names() {
            let live = vault.versions(&name).iter().filter(|v| v.enabled).count();
            assert!(name == CONSUMER || live <= 1, "budget {budget}: {name} has {live} enabled versions");
        }
        if !cut {
            uncut = Some(budget);
            break;
        }
    }
    // The rotation writes the key, confirms it, and marks it published; the promotion writes
    // the consumer secret and two records: at least six places to be cut off.
    let uncut = uncut.expect("a budget large enough for both runs");
    assert!(uncut >= 6, "too few writes to test: {uncut}");
}

#[tokio::test]
async fn vault_a_consumer_secret_that_does_not_hold_the_current_key_is_rewritten() {
    let vault = FakeVault::start("consumer-drift").await;
    let (store, clients) = setup(&vault, "");
    let (engine, _) = engine(store.clone());
    let t = targets(&clients);
    run_ok(&engine, &t, t0(), &Request::default()).await;
    let current = vault.versions(NAME1)[0].value.clone();
    vault.put(CONSUMER, "c29tZXRoaW5nIGVsc2U=", &[("kid", "testklient-TEST.2025-01-01")]);
    let (next, _) = super::engine(store_with(&vault, &clients, ""));
    // `status` sees the drift before any run repairs it: CRITICAL, naming both kids.
    let found = next.evaluate(&t, t0()).await.findings;
    let drift = found.iter().find(|f| f.kind == jwk_rotator::findings::FindingKind::ConsumerNotCurrent);
    let drift = drift.unwrap_or_else(|| panic!("no consumer-not-current finding: {found:?}"));
    assert_eq!(drift.severity, jwk_rotator::findings::Severity::Critical);
    assert!(
        drift.message.contains("holds key testklient-TEST.2025-01-01") && drift.message.contains(KID1),
        "{}",
        drift.message
    );
    run_ok(&next, &t, t0(), &Request::default()).await;
    let found = next.evaluate(&t, t0()).await.findings;
    assert!(
        found.iter().all(|f| f.kind != jwk_rotator::findings::FindingKind::ConsumerNotCurrent),
        "{found:?}"
    );
    let consumer = vault.versions(CONSUMER);
    assert_eq!(consumer.len(), 3);
    assert_eq!(consumer[2].value, current);
    assert_eq!(consumer[2].tag("kid"), Some(KID1));
    assert!(consumer[1].enabled, "versions written by others are left alone");
}

/// A version an older release tagged without `written`: Key Vault's own `updated` stands in for
/// it, so the wait for an after-delay promotion counts from when the vault last changed the
/// version, never from "long ago".
#[tokio::test]
async fn a_version_without_a_written_tag_counts_from_the_vaults_updated_time() {
    let vault = FakeVault::start("no-written").await;
    let clients = vec![client("testklient", &["TEST"], None, Promotion::AfterDelay)];
    let store = store_with(&vault, &clients, "");
    let (engine, _) = engine(store.clone());
    run_ok(&engine, &targets(&clients), t0(), &Request::default()).await;
    run_ok(&engine, &targets(&clients), t0() + days(1), &Request { force: true, ..Request::default() }).await;
    let name = "jwk-testklient-TEST--2026-11-22";
    {
        let mut state = vault.state();
        let entry = state.live.get_mut(&name.to_lowercase()).expect("pending key's secret");
        let v = entry.versions.last_mut().expect("version");
        assert_eq!(v.tag("stage"), Some("pending"));
        v.tags.as_mut().expect("tags").remove("written");
        // As if the vault last changed it on day 5, though it says it was published on day 1.
        v.updated = (t0() + days(5)).timestamp();
    }
    let at = |d| t0() + days(d) + chrono::TimeDelta::hours(1);
    run_ok(&engine, &targets(&clients), at(9), &Request::default()).await;
    let pending = vault.versions(name);
    assert_eq!(pending.last().and_then(|v| v.tag("stage")), Some("pending"), "4 days since `updated`");
    run_ok(&engine, &targets(&clients), at(12), &Request::default()).await;
    let promoted = vault.versions(name);
    assert_eq!(promoted.last().and_then(|v| v.tag("stage")), Some("current"), "7 days since `updated`");
}

/// A consumer secret written as `encoded-jwk` is written again, once, when the client's
/// `consumer_format` becomes `altinn-app` (and again when its client id changes), with the
/// same key; applications read the new shape from the next run on.
#[tokio::test]
async fn vault_a_consumer_secret_in_another_format_is_written_again_in_the_configured_one() {
    use jwk_rotator::consumer::{AltinnApp, ConsumerFormat};
    let vault = FakeVault::start("reshape").await;
    let (store, clients) = setup(&vault, "");
    run_ok(&engine(store).0, &targets(&clients), t0(), &Request::default()).await;
    assert_eq!(vault.versions(CONSUMER).len(), 1);
    let altinn = |client_id: &str| {
        let mut c = clients.clone();
        let app = AltinnApp {
            authority: "https://test.maskinporten.no/".to_owned(),
            client_id: client_id.to_owned(),
        };
        c[0].consumer_format = ConsumerFormat::AltinnApp([("TEST".parse().expect("env"), app)].into());
        c
    };
    for (client_id, versions) in [("id-1", 2), ("id-1", 2), ("id-2", 3)] {
        let clients = altinn(client_id);
        let store = store_with(&vault, &clients, "");
        run_ok(&engine(store).0, &targets(&clients), t0(), &Request::default()).await;
        let written = vault.versions(CONSUMER);
        assert_eq!(written.len(), versions, "written again only when its shape changed");
        let latest = written.last().expect("latest");
        let doc: serde_json::Value = serde_json::from_str(&latest.value).expect("MaskinportenSettings");
        assert_eq!((doc["clientId"].as_str(), latest.tag("kid")), (Some(client_id), Some(KID1)));
    }
}
