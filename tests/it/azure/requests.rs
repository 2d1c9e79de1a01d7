//! Request counts of typical runs, measured at the fake vault (401 challenges and all). Run
//! `cargo test --test it vault_request_counts -- --nocapture` to print the table that
//! `BENCHMARKS.md` shows.

use jwk_rotator::jwk::PrivateJwk;
use jwk_rotator::keygen::KeyGenerator;
use jwk_rotator::kid::Kid;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::{Algorithm, KeySize, Promotion};

use super::*;

fn clients(n: usize) -> Vec<ClientConfig> {
    (1..=n)
        .map(|i| client(&format!("klient{i}"), &["TEST"], Some("{client}-{env}-jwk"), Promotion::Manual))
        .collect()
}

/// Runs once with a fresh store (a new process: the challenge included); returns the requests.
async fn measured(
    vault: &FakeVault,
    clients: &[ClientConfig],
    now: DateTime<Utc>,
    request: &Request,
) -> usize {
    let (engine, _) = engine(store_with(vault, clients, ""));
    vault.reset_requests();
    run_ok(&engine, &targets(clients), now, request).await;
    if std::env::var_os("SHOW_LOG").is_some() && clients.len() == 1 {
        eprintln!("{:#?}", vault.log());
    }
    vault.requests()
}

/// Writes a key straight into the fake vault, as earlier runs would have left it.
fn seed(
    vault: &FakeVault,
    key: &PrivateJwk,
    stage: Stage,
    created: DateTime<Utc>,
    demoted: Option<DateTime<Utc>>,
) {
    let mut record = KeyRecord::new(key.public().clone(), stage, created);
    record.published = Some(created);
    record.activated = Some(created);
    record.demoted = demoted;
    let tags = jwk_rotator::azure::layout::tags_of(&record);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let name = jwk_rotator::azure::layout::secret_name("jwk-", key.kid()).expect("name");
    vault.put(&name, &key.to_base64(), &tags);
}

#[tokio::test]
async fn vault_request_counts() {
    let vault = FakeVault::start("counts").await;
    let one = clients(1);
    let bootstrap = measured(&vault, &one, t0(), &Request::default()).await;
    let rotation = measured(&vault, &one, t0() + days(91), &Request::default()).await;
    let promotion = measured(&vault, &one, t0() + days(92), &promote()).await;
    let noop = measured(&vault, &one, t0() + days(92), &Request::default()).await;
    let retirement = measured(&vault, &one, t0() + days(107), &Request::default()).await;

    // 500 key sets, each with a current and a previous key and a consumer secret.
    let n = 500;
    let many = FakeVault::start("counts-500").await;
    let keys = fixtures();
    let (old, new) = (t0() - days(100), t0() - days(20));
    for c in clients(n) {
        let set = KeySet::new(c.name.clone(), "TEST".parse().expect("env"));
        let previous = Kid::new(set.clone(), old.date_naive());
        let current = Kid::new(set.clone(), new.date_naive());
        let key = |kid: Kid| keys.generate(kid, KeySize::Rsa2048, Algorithm::RS256).expect("key");
        seed(&many, &key(previous), Stage::Previous, old, Some(t0() - days(3)));
        let current_key = key(current.clone());
        seed(&many, &current_key, Stage::Current, new, None);
        many.put(&format!("{set}-jwk"), &current_key.to_base64(), &[("kid", &current.to_string())]);
    }
    let secrets = many.names().len();
    let noop_many = measured(&many, &clients(n), t0(), &Request::default()).await;
    let target = secrets.div_ceil(25) + n / 10;

    println!("| run | key sets | secrets in the vault | requests |");
    println!("|---|---:|---:|---:|");
    println!("| bootstrap (first key, consumer secret) | 1 | 0 | {bootstrap} |");
    println!("| rotation (new pending key, published) | 1 | 2 | {rotation} |");
    println!("| promotion (consumer secret, demotion) | 1 | 3 | {promotion} |");
    println!("| no-op | 1 | 3 | {noop} |");
    println!("| retirement (previous key disabled, old consumer copies disabled) | 1 | 3 | {retirement} |");
    println!("| no-op | {n} | {secrets} | {noop_many} (target ≤ {target}) |");
    assert!(noop <= 3, "no-op of one key set: {noop}");
    // What each step needs (the challenge and the listing are the first 2 of every run):
    // bootstrap: PUT key, its versions after settle, its value, PUT consumer, PATCH published;
    // rotation: PUT key, its versions, the current key's versions (reload), PATCH published;
    // promotion: pending's versions and value, PUT consumer, PATCH it, the old key's versions,
    // PATCH it. Before this count was kept, they took 11, 10 and 11.
    assert!(bootstrap <= 7, "bootstrap: {bootstrap}");
    assert!(rotation <= 6, "rotation: {rotation}");
    assert!(promotion <= 8, "promotion: {promotion}");
    let stages = stages(&records(&*store_with(&vault, &one, ""), &set("klient1-TEST")).await);
    assert!(stages.iter().any(|(_, s)| *s == Stage::Retired), "no retirement was measured: {stages:?}");
    assert!(noop_many <= target, "no-op over {n} key sets: {noop_many} > {target}");
}
