//! An in-process fake Azure Key Vault (secrets), following the real protocol closely enough
//! that the real `SecretClient` drives it: the 401 challenge, versions with their own tags,
//! paging with `nextLink`, disabled versions, soft delete, purge, recover, and throttling.

mod http;
mod model;
pub mod net;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub use model::{Budget, Failure, Throttle, Ver};

/// The bearer token the fake accepts.
pub const TOKEN: &str = "fake-vault-token";

/// A running fake vault. Clones share the same vault.
#[derive(Clone)]
pub struct FakeVault {
    inner: Arc<Mutex<model::Vault>>,
    /// The vault's public URL as clients use it, without a trailing slash.
    pub base: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl FakeVault {
    /// Serves plain HTTP on 127.0.0.1; clients reach it as `https://{name}.vault.azure.net`
    /// through [`net::RewriteTransport`].
    pub async fn start(name: &str) -> FakeVault {
        let inner = Arc::new(Mutex::new(model::Vault::default()));
        let base = format!("https://{name}.vault.azure.net");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let vault = FakeVault { inner, base, addr };
        let app = http::router(vault.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        vault
    }

    /// Serves HTTPS on 127.0.0.1 with `cert`/`key` (PEM) for the name `localhost`.
    pub async fn start_tls(cert_pem: &str, key_pem: &str) -> FakeVault {
        let inner = Arc::new(Mutex::new(model::Vault::default()));
        let listener = net::TlsListener::bind(cert_pem, key_pem).await;
        let addr = listener.addr;
        let vault = FakeVault { inner, base: format!("https://localhost:{}", addr.port()), addr };
        let app = http::router(vault.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        vault
    }

    pub fn url(&self) -> String {
        format!("{}/", self.base)
    }

    /// The vault's state, for setting up and checking tests.
    pub fn state(&self) -> MutexGuard<'_, model::Vault> {
        self.inner.lock().expect("fake vault lock")
    }

    /// Requests answered so far (401 challenges and 429s included).
    pub fn requests(&self) -> usize {
        self.state().log.len()
    }

    /// Forgets the request log.
    pub fn reset_requests(&self) {
        self.state().log.clear();
    }

    /// The request log, one `STATUS METHOD PATH` line per request.
    pub fn log(&self) -> Vec<String> {
        self.state().log.clone()
    }

    pub fn set_throttle(&self, throttle: Throttle) {
        self.state().throttle = throttle;
    }

    /// Every answer takes this long, as a network round trip would.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.state().latency = latency;
    }

    /// At most `limit` requests per `window`; more get 429 with `Retry-After`.
    pub fn set_budget(&self, limit: u32, window: std::time::Duration) {
        self.state().budget = Some(Budget::new(limit, window));
    }

    /// Answers 429 because the budget was spent, so far.
    pub fn over_budget(&self) -> u64 {
        self.state().over_budget
    }

    /// Every live version of a secret, oldest first.
    pub fn versions(&self, name: &str) -> Vec<Ver> {
        self.state().live.get(&name.to_ascii_lowercase()).map(|e| e.versions.clone()).unwrap_or_default()
    }

    /// Names of live secrets.
    pub fn names(&self) -> Vec<String> {
        self.state().live.values().map(|e| e.name.clone()).collect()
    }

    /// Names of soft-deleted secrets.
    pub fn deleted(&self) -> Vec<String> {
        self.state().deleted.values().map(|e| e.name.clone()).collect()
    }

    /// Writes a version directly (as another tool or a person would), returning its id.
    pub fn put(&self, name: &str, value: &str, tags: &[(&str, &str)]) -> String {
        let tags = tags.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
        self.state().put(name, value.to_owned(), None, Some(tags), true, None, None)
    }
}
