//! A test world: the fake Digdir over HTTPS, a config that points at it, and the production
//! Maskinporten adapters (`app::maskinporten::adapters`) over a memory store, with one simulated
//! clock that both the fake and the grants follow.

#![allow(dead_code)] // helpers shared by the Maskinporten tests; not every test file uses all

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::config::Config;
use jwk_rotator::engine::{Engine, Evaluation, SetReport};
use jwk_rotator::keygen::AwsLcGenerator;
use jwk_rotator::kid::KeySet;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::Target;
use jwk_rotator::record::KeyRecord;
use jwk_rotator::store::{KeyStore, MemoryStore};

use super::fake::{Clock, FakeDigdir};

/// The admin client's id and its certificate's subject in every world.
pub const ADMIN: &str = "admin-client";
pub const ADMIN_CN: &str = "jwk-rotator test org";
pub const SCOPE: &str = "test:scope";

/// The fake, the config and an engine built the way the binary builds it.
pub struct World {
    pub fake: FakeDigdir,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub store: Arc<MemoryStore>,
    pub engine: Engine,
}

/// `[maskinporten.TEST]` for `fake`, with the admin certificate files in the config's directory.
pub fn maskinporten_table(fake: &FakeDigdir) -> String {
    format!(
        r#"[maskinporten.TEST]
api_url = "{api}"
issuer = "{issuer}"
token_url = "{token}"
ca_cert = "digdir-ca.pem"
admin_client_id = "{ADMIN}"
admin_certificate_pem = "admin-chain.pem"
admin_key_pem = "admin-key.pem"
verify_wait = "1s"

[maskinporten.TEST.retry]
max_retries = 3
initial_delay = "5ms"
max_delay = "20ms"
"#,
        api = fake.api_url(),
        issuer = fake.issuer(),
        token = fake.token_url(),
    )
}

/// A client published through the API, with its Maskinporten client id `{name}-id`.
pub fn api_client(name: &str, promotion: &str) -> String {
    format!(
        r#"
[[client]]
name = "{name}"
environments = ["TEST"]
publish = ["files", "maskinporten-api"]
client_id = {{ TEST = "{name}-id" }}
verify_scope = "{SCOPE}"
promotion = "{promotion}"
"#
    )
}

/// A whole config over `fake` (a file store in `keys`, `[maskinporten.TEST]`, and one
/// [`api_client`] per `(name, promotion)` with `extra` appended to its table), with the admin
/// client and every client (`{name}-id`, scope [`SCOPE`]) registered at the fake.
pub fn config_text(fake: &FakeDigdir, clients: &[(&str, &str)], extra: &str) -> String {
    fake.add_admin_client(ADMIN, ADMIN_CN, &["idporten:dcr.read", "idporten:dcr.write"]);
    let mut text = String::from("[store]\nkind = \"file\"\npath = \"keys\"\n\n");
    text.push_str(&maskinporten_table(fake));
    for (name, promotion) in clients {
        fake.add_client(&format!("{name}-id"), &[SCOPE]);
        text.push_str(&api_client(name, promotion));
        text.push_str(extra);
    }
    text
}

/// Writes the fake's CA and an admin certificate valid until `admin_until` into `dir`.
pub fn write_credentials(fake: &FakeDigdir, dir: &Path, admin_until: DateTime<Utc>) {
    let cert = fake.issue_business_certificate(ADMIN_CN, fake.now() - TimeDelta::days(1), admin_until);
    std::fs::write(dir.join("digdir-ca.pem"), fake.ca_pem()).expect("ca");
    std::fs::write(dir.join("admin-chain.pem"), &cert.chain_pem).expect("chain");
    std::fs::write(dir.join("admin-key.pem"), &cert.key_pem).expect("key");
}

impl World {
    /// A world at `t0` with `clients` (TOML `[[client]]` tables, see [`api_client`]); every
    /// client is registered at the fake as `{name}-id`.
    pub async fn start(t0: DateTime<Utc>, clients: &[(&str, &str)]) -> World {
        World::start_with(t0, clients, "", t0 + TimeDelta::days(3 * 365)).await
    }

    /// [`World::start`] with `extra` lines (policy settings, `prune_unmanaged`) in every
    /// `[[client]]`, and an admin certificate valid until `admin_until`.
    pub async fn start_with(
        t0: DateTime<Utc>,
        clients: &[(&str, &str)],
        extra: &str,
        admin_until: DateTime<Utc>,
    ) -> World {
        let fake = FakeDigdir::start().await;
        fake.set_clock(Clock::Fixed(t0));
        let text = config_text(&fake, clients, extra);
        World::with_config(fake, &text, admin_until).await
    }

    /// A world over `config_text`, whose admin certificate is valid until `admin_until`.
    pub async fn with_config(fake: FakeDigdir, config_text: &str, admin_until: DateTime<Utc>) -> World {
        let dir = tempfile::tempdir().expect("dir");
        write_credentials(&fake, dir.path(), admin_until);
        let path = dir.path().join("jwk-rotator.toml");
        std::fs::write(&path, config_text).expect("config");
        let config = Config::load(&path).expect("config loads");
        let store = Arc::new(MemoryStore::new());
        let engine = World::engine(&fake, &config, store.clone()).await;
        World { fake, dir, config, store, engine }
    }

    /// The engine with the production adapters for `config`, signing grants at the fake's time.
    pub async fn engine(fake: &FakeDigdir, config: &Config, store: Arc<MemoryStore>) -> Engine {
        let clock = fake.clone();
        let adapters = jwk_rotator::app::maskinporten::adapters(config, Arc::new(move || clock.now()))
            .await
            .expect("adapters");
        Engine::new(store, Arc::new(AwsLcGenerator), adapters.publisher).with_prover(adapters.prover)
    }

    pub fn targets(&self) -> Vec<Target> {
        self.config.targets()
    }

    pub fn target(&self, set: &str) -> Target {
        self.config.select(&[set.to_owned()]).expect("set").remove(0)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.fake.now()
    }

    pub fn set_now(&self, at: DateTime<Utc>) {
        self.fake.set_now(at);
    }

    /// One run over every key set at the fake's time.
    pub async fn run(&self) -> Vec<SetReport> {
        self.run_with(&Request::default()).await
    }

    pub async fn run_with(&self, request: &Request) -> Vec<SetReport> {
        self.engine.run(&self.targets(), self.now(), request).await.expect("run")
    }

    /// `status` at the fake's time.
    pub async fn status(&self) -> Evaluation {
        self.engine.evaluate(&self.targets(), self.now()).await
    }

    /// The store's records of `set`.
    pub async fn records(&self, set: &str) -> Vec<KeyRecord> {
        let set: KeySet = set.parse().expect("set");
        let loaded = self.store.load(std::slice::from_ref(&set)).await.expect("load");
        jwk_rotator::store::records_in(&loaded, &set).expect("records").to_vec()
    }

    /// The kids the fake has registered on `client_id`, sorted.
    pub fn registered(&self, client_id: &str) -> Vec<String> {
        let mut kids: Vec<String> = self.fake.registered_keys(client_id).into_iter().map(|k| k.kid).collect();
        kids.sort();
        kids
    }
}

/// A public RSA JWK that someone else registered (not made by jwk-rotator): key `i` of the
/// fake's tests, as `kid`.
pub fn foreign_jwk(i: usize, kid: &str) -> serde_json::Value {
    super::fake_tests::jwk(super::fake_tests::rsa(i), kid)
}
