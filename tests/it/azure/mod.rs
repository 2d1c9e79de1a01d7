//! The Azure Key Vault store against an in-process fake vault, through the real `SecretClient`.

mod bad_input;
mod exit_on;
/// Shared: the Maskinporten fake serves HTTPS with its `net::TlsListener`.
pub mod fake;
mod https;
mod import;
mod lifecycle;
mod protocol;
mod races;
mod requests;
mod scale;
mod throttling;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jwk_rotator::azure::{VaultStore, open_store_with};
use jwk_rotator::config::ClientConfig;
use jwk_rotator::config::azure::AzureConfig;
use jwk_rotator::engine::{Engine, SetReport};
use jwk_rotator::kid::KeySet;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::Promotion;
use jwk_rotator::policy::Target;
use jwk_rotator::publish::MemoryPublisher;
use jwk_rotator::record::{KeyRecord, Stage};
use jwk_rotator::store::{KeyStore, Opened};

pub use crate::support::{days, fixtures, set};
pub use fake::FakeVault;

/// The token the fake vault accepts, for tests elsewhere that run the binary against it.
pub use fake::TOKEN as FAKE_TOKEN;
use fake::net::{FakeCredential, RewriteTransport};

/// A fixed "now" for every test.
pub fn t0() -> DateTime<Utc> {
    "2026-11-21T12:00:00Z".parse().expect("time")
}

/// `[store]` settings for `url`, with quick retries so that throttling tests stay fast, and a
/// settle time that outlasts one second of the fake vault's clock (unless `extra` sets one).
pub fn azure_config(url: &str, extra: &str) -> AzureConfig {
    // `extra` may set its own settle.
    let settle = if extra.contains("settle") { "" } else { "settle = \"30ms\"\n" };
    let text = format!(
        "vault_url = \"{url}\"\ncredential = \"static-token\"\n{settle}{extra}\n[retry]\ninitial_delay = \"5ms\"\nmax_delay = \"20ms\"\nmax_retries = 4\n"
    );
    toml::from_str(&text).expect("azure config")
}

/// A client with `envs`, the default policy in `mode`, and a consumer secret template.
pub fn client(name: &str, envs: &[&str], consumer: Option<&str>, mode: Promotion) -> ClientConfig {
    let policy = crate::support::policy(mode);
    ClientConfig {
        name: name.parse().expect("client name"),
        environments: envs.iter().map(|e| e.parse().expect("env")).collect(),
        policy,
        consumer_secret: consumer.map(str::to_owned),
        consumer_format: Default::default(),
        restart: Vec::new(),
        maskinporten: Default::default(),
    }
}

pub fn targets(clients: &[ClientConfig]) -> Vec<Target> {
    clients
        .iter()
        .flat_map(|c| {
            c.environments
                .iter()
                .map(|e| Target { key_set: KeySet::new(c.name.clone(), e.clone()), policy: c.policy.clone() })
        })
        .collect()
}

/// The vault store for `clients`, reaching `vault` through the SDK with an injected transport.
pub fn store_with(vault: &FakeVault, clients: &[ClientConfig], extra: &str) -> Arc<VaultStore> {
    let config = azure_config(&vault.url(), extra);
    let transport = RewriteTransport::new(vault.addr);
    let store = open_store_with(&config, clients, Arc::new(FakeCredential), Some(transport)).expect("store");
    Arc::new(store)
}

/// An engine over both ports of the vault store (its key secrets and its consumer secrets),
/// with fixture keys and an in-memory publisher, as the application wires it.
pub fn engine(store: Arc<VaultStore>) -> (Engine, MemoryPublisher) {
    crate::support::engine_over(Opened::with_consumers(store))
}

/// Runs once and insists that every key set succeeded.
pub async fn run_ok(
    engine: &Engine,
    targets: &[Target],
    now: DateTime<Utc>,
    request: &Request,
) -> Vec<SetReport> {
    let reports = engine.run(targets, now, request).await.expect("run");
    for r in &reports {
        assert!(r.ok(), "{}: {:?}", r.key_set, r.error);
    }
    reports
}

/// The records of one key set as the store loads them.
pub async fn records(store: &dyn KeyStore, set: &KeySet) -> Vec<KeyRecord> {
    let mut loaded = store.load(std::slice::from_ref(set)).await.expect("load");
    loaded.remove(set).expect("set").expect("records")
}

pub fn stages(records: &[KeyRecord]) -> Vec<(String, Stage)> {
    records.iter().map(|r| (r.kid.to_string(), r.stage)).collect()
}

pub fn promote() -> Request {
    Request { promote: true, ..Request::default() }
}

/// The shared store suite's key sets, each client with a consumer secret.
fn suite_clients() -> Vec<ClientConfig> {
    [
        ("testklient", &["TEST", "PROD"][..]),
        ("other", &["PROD"]),
        ("crashy", &["TEST"]),
        ("promo", &["TEST"]),
        ("fresh", &["TEST"]),
    ]
    .into_iter()
    .map(|(name, envs)| client(name, envs, Some("{client}-{env}-jwk"), Promotion::Manual))
    .collect()
}

/// The vault store for the shared suite: every `store()` is a new store (a new process) over
/// the same fake vault.
struct VaultBackend(FakeVault);

impl crate::store_suite::Backend for VaultBackend {
    fn open(&self) -> Opened {
        Opened::with_consumers(store_with(&self.0, &suite_clients(), "purge = true"))
    }
}

async fn vault_backend() -> Box<dyn crate::store_suite::Backend> {
    Box::new(VaultBackend(FakeVault::start("suite").await))
}

crate::store_suite!(vault_store, vault_backend().await);
