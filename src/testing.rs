//! Test support shared by the unit tests under `src/` and the integration tests under
//! `tests/`: times, key sets, the committed fixture keys and an engine over them. Compiled for
//! tests only: `cfg(test)`, or the `test-support` feature that the integration tests turn on.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::engine::Engine;
use crate::jwk::PrivateJwk;
use crate::keygen::{FixtureGenerator, KeyGenerator};
use crate::kid::KeySet;
use crate::policy::{Policy, Target};
use crate::publish::MemoryPublisher;
use crate::store::{KeyStore, Opened};

/// Eight committed RSA test keys, one standard-base64 private JWK a line.
pub const FIXTURE_KEYS: &str = include_str!("../tests/data/fixture-keys.b64");

/// A time from RFC 3339 text.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("test time").with_timezone(&Utc)
}

pub fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

/// A key set from `CLIENT-ENV`.
pub fn set(name: &str) -> KeySet {
    name.parse().expect("test key set")
}

/// Targets for these key sets, all with `policy`.
pub fn targets(names: &[&str], policy: &Policy) -> Vec<Target> {
    names.iter().map(|n| Target { key_set: set(n), policy: policy.clone() }).collect()
}

/// A generator that hands out the fixture keys in turn.
pub fn fixtures() -> Arc<FixtureGenerator> {
    Arc::new(FixtureGenerator::from_lines(FIXTURE_KEYS).expect("fixture keys"))
}

/// The first fixture key, as the key `kid` (`CLIENT-ENV.YYYY-MM-DD`).
pub fn fixture_key(kid: &str) -> PrivateJwk {
    let policy = Policy::default();
    let kid = kid.parse().expect("test kid");
    fixtures().generate(kid, policy.key_size(), policy.algorithm()).expect("fixture key")
}

/// An engine over `store` (key records only, no consumer secrets) with fixture keys and an
/// in-memory publisher.
pub fn engine(store: Arc<dyn KeyStore>) -> (Engine, MemoryPublisher) {
    engine_over(Opened::keys_only(store))
}

/// An engine over both ports of `store` with fixture keys and an in-memory publisher.
pub fn engine_over(store: Opened) -> (Engine, MemoryPublisher) {
    let publisher = MemoryPublisher::default();
    let engine = Engine::over(store, fixtures(), Arc::new(publisher.clone()));
    (engine, publisher)
}
