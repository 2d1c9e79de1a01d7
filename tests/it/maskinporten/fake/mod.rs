//! An in-process fake of Digdir for integration tests: Maskinporten's token endpoint and the
//! self-service API's key-set resource, served over HTTPS on one listener, with one registry
//! behind both, its own clock, and faults to switch on.
//!
//! Written from Digdir's documentation, not from our client: `maskinporten_protocol_jwtgrant`
//! and `maskinporten_protocol_token` (the grant and its answer), `maskinporten_feilsoking`
//! (the refusals and their MP codes), `oidc_api_admin` and `oidc_func_clientreg` (the
//! self-service API, its scopes and its rules for keys). Each rule cites its page where it
//! is implemented.
//!
//! The fake has two certificate authorities: one for its own HTTPS certificate
//! ([`FakeDigdir::ca_pem`], for a client's `ca_cert`), and a "business CA" that issues the
//! business certificates admin clients sign `x5c` grants with
//! ([`FakeDigdir::issue_business_certificate`]).

// Parts of this API serve tests of our Maskinporten client, which live elsewhere.
#![allow(dead_code)]

mod api;
mod certs;
mod clock;
mod errors;
mod grant;
mod http;
mod jwks;
mod jws;
mod model;
mod net;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

pub use certs::{BusinessCa, BusinessCert};
pub use clock::Clock;
pub use grant::GRANT_TYPE;
pub use model::{EmptyJwks, GrantOutcome, GrantRecord, Key, RequestRecord, Storage};

use crate::azure::fake::net::TlsListener;
use crate::support::tls::localhost_certificates;
use model::{Client, Injected, Registry};

/// A running fake. Clones share the same registry and listener.
#[derive(Clone)]
pub struct FakeDigdir {
    registry: Arc<Mutex<Registry>>,
    business_ca: Arc<BusinessCa>,
    reset: Arc<AtomicBool>,
    tls_ca_pem: Arc<str>,
    port: u16,
}

impl FakeDigdir {
    /// Serves HTTPS on 127.0.0.1 with a certificate for `localhost` from the fake's own CA.
    pub async fn start() -> FakeDigdir {
        let (ca, cert, key) = localhost_certificates("fake Digdir TLS CA");
        let inner = TlsListener::bind(&cert, &key).await;
        let reset = Arc::new(AtomicBool::new(false));
        let fake = FakeDigdir {
            registry: Arc::new(Mutex::new(Registry::default())),
            business_ca: Arc::new(BusinessCa::generate("fake business CA")),
            reset: reset.clone(),
            tls_ca_pem: ca.into(),
            port: inner.addr.port(),
        };
        let listener = net::ResettableListener { inner, reset };
        let app = http::router(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        fake
    }

    /// The CA of the fake's HTTPS certificate, PEM: what a client's `ca_cert` holds.
    pub fn ca_pem(&self) -> String {
        self.tls_ca_pem.to_string()
    }

    /// The self-service API's base: `https://localhost:PORT`.
    pub fn api_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Maskinporten's issuer, the `aud` of grants: `https://localhost:PORT/`.
    pub fn issuer(&self) -> String {
        format!("https://localhost:{}/", self.port)
    }

    pub fn token_url(&self) -> String {
        format!("https://localhost:{}/token", self.port)
    }

    /// The registry, locked.
    fn state(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().expect("fake Digdir lock")
    }

    // The clock.

    pub fn now(&self) -> DateTime<Utc> {
        self.state().now()
    }

    pub fn set_clock(&self, clock: Clock) {
        self.state().clock = clock;
    }

    /// Fixes the clock at `at`.
    pub fn set_now(&self, at: DateTime<Utc>) {
        self.set_clock(Clock::Fixed(at));
    }

    /// Moves the clock on (a real clock becomes a fixed one).
    pub fn advance(&self, by: TimeDelta) {
        self.state().clock.advance(by);
    }

    // Clients and keys.

    /// Registers an ordinary Maskinporten client that may ask for `scopes`.
    pub fn add_client(&self, client_id: &str, scopes: &[&str]) {
        let mut registry = self.state();
        let client = Client::new(client_id, scopes, None, registry.now());
        registry.clients.insert(client_id.to_owned(), client);
    }

    /// Registers an ordinary client of another organisation than the admin clients' ([`ORG`]).
    pub fn add_client_in_org(&self, client_id: &str, scopes: &[&str], org: &str) {
        let mut registry = self.state();
        let mut client = Client::new(client_id, scopes, None, registry.now());
        client.org = org.to_owned();
        registry.clients.insert(client_id.to_owned(), client);
    }

    /// Registers a business certificate on `client_id` (an admin client) as a key under `kid`,
    /// from its private key (PKCS#8 DER): like any client with a registered key, the client must
    /// then sign with `kid`, and a grant with `x5c` is refused (`maskinporten_protocol_jwtgrant`:
    /// "'kid' can and must be used by clients having a pre-registered certificate / asymmetric
    /// key").
    pub fn register_certificate(&self, client_id: &str, kid: &str, key_der: &[u8]) {
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(key_der).expect("business key");
        let public = aws_lc_rs::signature::KeyPair::public_key(&pair);
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let jwk = serde_json::json!({
            "kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        self.add_key(client_id, &jwk);
    }

    /// Registers an organisation's self-service client, bound to the business certificate
    /// whose subject CN is `subject_cn`, with `scopes` such as `idporten:dcr.read`.
    pub fn add_admin_client(&self, client_id: &str, subject_cn: &str, scopes: &[&str]) {
        let mut registry = self.state();
        let client = Client::new(client_id, scopes, Some(subject_cn), registry.now());
        registry.clients.insert(client_id.to_owned(), client);
    }

    /// A business certificate from the CA the fake trusts (RSA 2048, chain leaf first).
    pub fn issue_business_certificate(
        &self,
        subject_cn: &str,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> BusinessCert {
        self.business_ca.issue(subject_cn, not_before, not_after)
    }

    /// The trusted business CA, PEM.
    pub fn business_ca_pem(&self) -> String {
        self.business_ca.pem()
    }

    /// The keys registered now, as the API stores them.
    pub fn registered_keys(&self, client_id: &str) -> Vec<Key> {
        self.state().clients.get(client_id).map(|c| c.keys().to_vec()).unwrap_or_default()
    }

    /// The keys the token endpoint knows now (the registered set as it was `propagation` ago).
    pub fn propagated_keys(&self, client_id: &str) -> Vec<Key> {
        self.state().propagated_keys(client_id).to_vec()
    }

    /// Adds a key to a client's set as someone else would (the portal, another tool),
    /// bypassing the API and its checks; `exp` is now + 1 year when the JWK has none. A key
    /// registered with the same kid is replaced (a kid is unique on a client): adding a key
    /// again with a later `exp` is how its owner renews it.
    pub fn add_key(&self, client_id: &str, jwk: &Value) {
        let mut registry = self.state();
        let now = registry.now();
        let client = registry.clients.get_mut(client_id).expect("add_key: no such client");
        let key = Key::from_jwk(jwk, now);
        let mut keys = client.keys().to_vec();
        keys.retain(|k| k.kid != key.kid);
        keys.push(key);
        client.set_keys(now, keys);
    }

    /// How the API stores what it is sent (`exp` clamped, `n` with a sign byte).
    pub fn set_storage(&self, storage: Storage) {
        self.state().storage = storage;
    }

    /// How GET answers for a client without keys.
    pub fn set_empty_jwks(&self, answer: EmptyJwks) {
        self.state().empty_jwks = answer;
    }

    /// How long a change to a key set takes to reach the token endpoint (default 0;
    /// `oidc_api_admin` shows "0-2 minutter").
    pub fn set_propagation(&self, delay: TimeDelta) {
        self.state().propagation = delay;
    }

    // Faults.

    /// Every request answers 503 while down.
    pub fn set_down(&self, down: bool) {
        self.state().faults.down = down;
    }

    /// Every connection, new or kept alive, is cut while set.
    pub fn set_connection_reset(&self, reset: bool) {
        self.reset.store(reset, Ordering::SeqCst);
    }

    /// The next `n` requests answer `status` (a 5xx, say).
    pub fn fail_next(&self, n: u32, status: u16) {
        self.inject(Injected { remaining: n, status, retry_after: None, path_contains: None });
    }

    /// The next `n` requests whose path contains `path_part` answer `status`.
    pub fn fail_next_on(&self, path_part: &str, n: u32, status: u16) {
        let path_contains = Some(path_part.to_owned());
        self.inject(Injected { remaining: n, status, retry_after: None, path_contains });
    }

    /// The next `n` requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        self.inject(Injected {
            remaining: n,
            status: 429,
            retry_after: Some(retry_after_secs),
            path_contains: None,
        });
    }

    fn inject(&self, injected: Injected) {
        self.state().faults.injected.push(injected);
    }

    /// GETs leave out `kid` from now on, although it stays registered.
    pub fn drop_from_readback(&self, kid: &str) {
        self.state().faults.dropped_from_readback.insert(kid.to_owned());
    }

    /// Changes `client_id`'s registered keys right after the next GET of them has been
    /// answered, as a person in the portal might between our GET and our POST.
    pub fn edit_after_next_get(&self, client_id: &str, edit: impl FnOnce(&mut Vec<Key>) + Send + 'static) {
        let mut registry = self.state();
        registry.faults.after_next_get.entry(client_id.to_owned()).or_default().push(Box::new(edit));
    }

    /// Adds `jwk` to `client_id`'s registered keys right after the next GET of them.
    pub fn add_after_next_get(&self, client_id: &str, jwk: &Value) {
        let key = Key::from_jwk(jwk, self.now());
        self.edit_after_next_get(client_id, move |keys| keys.push(key));
    }

    // Logs.

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().requests.clone()
    }

    /// The keys of every POST (or PUT) on a key set so far, as sent, with the fake's time then.
    pub fn posted(&self) -> Vec<(DateTime<Utc>, Vec<Value>)> {
        self.state().posted.clone()
    }

    /// Requests answered so far with `method` (`"GET"`, `"POST"`, `"DELETE"`).
    pub fn request_count(&self, method: &str) -> usize {
        self.state().requests.iter().filter(|r| r.method == method).count()
    }

    /// DELETE requests on a key set: our tool sends one only to remove a client's last keys.
    pub fn deletes(&self) -> usize {
        self.request_count("DELETE")
    }

    /// Every grant judged so far, over HTTP or in process, oldest first.
    pub fn grants(&self) -> Vec<GrantRecord> {
        self.state().grants.clone()
    }

    /// Every access token issued so far, for tests that check a token is never shown.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state().tokens.keys().cloned().collect()
    }

    pub fn clear_logs(&self) {
        let mut registry = self.state();
        registry.requests.clear();
        registry.posted.clear();
        registry.grants.clear();
    }

    // Grants.

    /// Judges `assertion` as `POST /token` does, without HTTP: the token response body, or
    /// the error body Maskinporten would send with 400.
    pub fn grant_in_process(&self, assertion: &str) -> Result<Value, Value> {
        self.judge(assertion).map_err(|refusal| refusal.body(&self.issuer()))
    }

    fn judge(&self, assertion: &str) -> Result<Value, errors::Refusal> {
        grant::judge(&mut self.state(), &self.business_ca, &self.issuer(), assertion)
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    bytes
}

/// `n` random bytes, base64url: access tokens.
fn random_id(n: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(n))
}

/// `n` random bytes, hex: trace ids.
fn random_hex(n: usize) -> String {
    random_bytes(n).iter().map(|b| format!("{b:02x}")).collect()
}

/// A random UUID (version 4 form): correlation ids.
fn correlation_id() -> String {
    let hex = random_hex(16);
    format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}
