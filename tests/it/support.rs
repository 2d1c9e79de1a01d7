//! Shared test helpers: times, fixture keys, policies and engines over any store.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::engine::Engine;
use jwk_rotator::keygen::FixtureGenerator;
use jwk_rotator::kid::KeySet;
use jwk_rotator::policy::Target;
use jwk_rotator::policy::{Policy, PolicyOverrides, Promotion};
use jwk_rotator::publish::MemoryPublisher;
use jwk_rotator::store::KeyStore;

pub const FIXTURE_KEYS: &str = include_str!("../data/fixture-keys.b64");

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("test time").with_timezone(&Utc)
}

pub fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

pub fn set(name: &str) -> KeySet {
    name.parse().expect("test key set")
}

pub fn policy(promotion: Promotion) -> Policy {
    with(PolicyOverrides { promotion: Some(promotion), ..PolicyOverrides::default() })
}

/// The policy from these settings, as the config loader makes it (and checks it).
pub fn with(settings: PolicyOverrides) -> Policy {
    Policy::new(&settings).expect("a policy the loader accepts")
}

pub fn targets(names: &[&str], policy: &Policy) -> Vec<Target> {
    names.iter().map(|n| Target { key_set: set(n), policy: policy.clone() }).collect()
}

pub fn fixtures() -> Arc<FixtureGenerator> {
    Arc::new(FixtureGenerator::from_lines(FIXTURE_KEYS).expect("fixture keys"))
}

/// An engine over `store` with fixture keys and an in-memory publisher.
pub fn engine(store: Arc<dyn KeyStore>) -> (Engine, MemoryPublisher) {
    let publisher = MemoryPublisher::default();
    let engine = Engine::new(store, fixtures(), Arc::new(publisher.clone()));
    (engine, publisher)
}
