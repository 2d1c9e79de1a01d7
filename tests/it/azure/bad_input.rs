//! Bad input and failures users must act on: corrupt secrets, a kid tag that disagrees with
//! the name, soft-deleted names, missing roles, unreachable vaults, non-https URLs. Each gives
//! a clear error and nothing is overwritten.

use std::sync::Arc;

use jwk_rotator::azure::open_store_with;
use jwk_rotator::engine::RunError;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::Promotion;
use jwk_rotator::store::StoreError;

use super::fake::Failure;
use super::fake::net::FakeCredential;
use super::*;

fn two_clients() -> Vec<ClientConfig> {
    vec![
        client("klienta", &["TEST"], Some("{client}-{env}-jwk"), Promotion::Manual),
        client("klientb", &["TEST"], Some("{client}-{env}-jwk"), Promotion::Manual),
    ]
}

/// Runs once over both clients: klienta must fail with `expect`, klientb must succeed, and
/// nothing of klienta's may have been written.
async fn klienta_fails(vault: &FakeVault, expect: &[&str]) {
    let clients = two_clients();
    let before: Vec<_> = vault.names().into_iter().map(|n| (n.clone(), vault.versions(&n).len())).collect();
    let (engine, _) = engine(store_with(vault, &clients, ""));
    let reports = engine.run(&targets(&clients), t0(), &Request::default()).await.expect("run");
    let error = reports[0].error.clone().expect("klienta fails").to_string();
    for text in expect {
        assert!(error.contains(text), "{text:?} not in: {error}");
    }
    assert!(reports[1].ok(), "klientb proceeds: {:?}", reports[1].error);
    for (name, count) in before {
        assert_eq!(vault.versions(&name).len(), count, "{name} was written");
    }
    assert!(!vault.names().iter().any(|n| n.starts_with("klienta-TEST")), "no consumer secret for klienta");
}

#[tokio::test]
async fn vault_a_secret_with_our_prefix_and_corrupt_tags_stops_only_its_key_set() {
    let vault = FakeVault::start("corrupt-tags").await;
    vault.put(
        "jwk-klienta-TEST--2026-11-20",
        "eyJ9",
        &[("managed-by", "jwk-rotator"), ("kid", "klienta-TEST.2026-11-20"), ("stage", "live")],
    );
    klienta_fails(
        &vault,
        &["secret jwk-klienta-TEST--2026-11-20", "has no `key-set` tag", "fix or delete that secret"],
    )
    .await;
}

#[tokio::test]
async fn vault_a_secret_whose_kid_tag_disagrees_with_its_name_is_refused() {
    let vault = FakeVault::start("kid-mismatch").await;
    let key = fixtures().generate_for("klienta-TEST.2026-11-19");
    let record = KeyRecord::new(key.public().clone(), Stage::Current, t0());
    let tags = jwk_rotator::azure::layout::tags_of(&record);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vault.put("jwk-klienta-TEST--2026-11-20", &key.to_base64(), &tags);
    klienta_fails(
        &vault,
        &["is named for kid klienta-TEST.2026-11-20 but its `kid` tag says klienta-TEST.2026-11-19"],
    )
    .await;
}

#[tokio::test]
async fn vault_a_corrupt_value_fails_the_promotion_and_the_consumer_secret_is_kept() {
    let vault = FakeVault::start("corrupt-value").await;
    let clients = [client("klienta", &["TEST"], Some("{client}-{env}-jwk"), Promotion::Manual)];
    let store = store_with(&vault, &clients, "");
    let (engine, _) = engine(store.clone());
    let t = targets(&clients);
    run_ok(&engine, &t, t0(), &Request::default()).await;
    run_ok(&engine, &t, t0() + days(91), &Request::default()).await;
    let pending = "jwk-klienta-TEST--2027-02-20";
    for v in vault.state().live.values_mut().filter(|e| e.name == pending).flat_map(|e| e.versions.iter_mut())
    {
        v.value = "bm90IGEga2V5".into(); // "not a key"
    }
    let consumer_before = vault.versions("klienta-TEST-jwk");
    let reports = engine.run(&t, t0() + days(92), &promote()).await.expect("run");
    let error = reports[0].error.clone().expect("promotion fails");
    assert!(matches!(error, RunError::Store(StoreError::Corrupt { .. })), "{error:?}");
    let error = error.to_string();
    assert!(
        error.contains(&format!("secret {pending}")) && error.contains("not a base64 private JWK"),
        "{error}"
    );
    assert!(!error.contains("bm90IGEga2V5"), "the value is not in the message: {error}");
    assert_eq!(vault.versions("klienta-TEST-jwk").len(), consumer_before.len(), "consumer secret untouched");
    let recs = records(&*store, &set("klienta-TEST")).await;
    assert_eq!(stages(&recs).iter().map(|(_, s)| *s).collect::<Vec<_>>(), [Stage::Current, Stage::Pending]);
}

#[tokio::test]
async fn vault_a_soft_deleted_name_that_blocks_a_write_says_how_to_recover_or_purge() {
    let vault = FakeVault::start("soft-deleted").await;
    let clients = two_clients();
    let (engine, _) = engine(store_with(&vault, &clients, ""));
    run_ok(&engine, &targets(&clients), t0(), &Request::default()).await;
    vault.state().delete("jwk-klienta-TEST--2026-11-21");
    vault.state().delete("klienta-TEST-jwk");
    klienta_fails(
        &vault,
        &["409 ObjectIsDeletedButRecoverable", "az keyvault secret recover", "az keyvault secret purge"],
    )
    .await;
}

#[tokio::test]
async fn vault_a_missing_role_is_named() {
    let vault = FakeVault::start("forbidden").await;
    let fail = |path: &str, status, code: &str, inner: Option<&str>| Failure {
        path_contains: path.into(),
        status,
        code: code.into(),
        inner: inner.map(str::to_owned),
    };
    vault.state().fail = Some(fail("jwk-klienta-", 403, "Forbidden", Some("ForbiddenByRbac")));
    klienta_fails(
        &vault,
        &["403 Forbidden/ForbiddenByRbac", "needs the role \"Key Vault Secrets Officer\" on the vault"],
    )
    .await;

    vault.state().fail = Some(fail("/secrets?", 404, "NotFound", None));
    let (engine, _) = engine(store_with(&vault, &two_clients(), ""));
    let error =
        engine.run(&targets(&two_clients()), t0(), &Request::default()).await.expect_err("no listing");
    assert!(error.to_string().contains("https://forbidden.vault.azure.net/ answered 404"), "{error}");
}

#[tokio::test]
async fn vault_an_unreachable_vault_is_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("https://127.0.0.1:{}/", listener.local_addr().expect("addr").port());
    drop(listener);
    let config = azure_config(&url, "");
    let store = open_store_with(&config, &two_clients(), Arc::new(FakeCredential), None).expect("store");
    let error = store.load(&[set("klienta-TEST")]).await.expect_err("unreachable");
    assert!(error.to_string().contains(&format!("cannot reach Key Vault at {url}")), "{error}");
}

#[tokio::test]
async fn vault_a_name_that_does_not_resolve_is_named() {
    let url = "https://nonexistent-vault.invalid/";
    let store = open_store_with(&azure_config(url, ""), &two_clients(), Arc::new(FakeCredential), None)
        .expect("store");
    let error = store.load(&[set("klienta-TEST")]).await.expect_err("no such host").to_string();
    assert!(error.contains(&format!("cannot reach Key Vault at {url}")) && error.contains("dns"), "{error}");
}

#[tokio::test]
async fn vault_urls_that_are_not_https_are_refused() {
    // A URL that is not https does not even parse as a vault_url.
    let error =
        "http://127.0.0.1:8443/".parse::<jwk_rotator::config::azure::VaultUrl>().expect_err("refused");
    assert!(error.to_string().contains("must use https"), "{error}");
    let text = "[store]\nkind = \"azure-key-vault\"\nvault_url = \"http://v.vault.azure.net/\"\ncredential = \"managed-identity\"\n[[client]]\nname = \"a\"\n";
    let error =
        jwk_rotator::config::Config::parse(text, std::path::Path::new("x.toml")).expect_err("refused");
    assert!(error.to_string().contains("must use https"), "{error}");
}

/// Generates a fixture key for a kid given as text.
trait GenerateFor {
    fn generate_for(&self, kid: &str) -> jwk_rotator::jwk::PrivateJwk;
}

impl GenerateFor for jwk_rotator::keygen::FixtureGenerator {
    fn generate_for(&self, kid: &str) -> jwk_rotator::jwk::PrivateJwk {
        use jwk_rotator::keygen::KeyGenerator;
        use jwk_rotator::policy::{Algorithm, KeySize};
        self.generate(kid.parse().expect("kid"), KeySize::Rsa2048, Algorithm::RS256).expect("key")
    }
}
