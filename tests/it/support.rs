//! Shared test helpers: the library's `testing` module (times, fixture keys, engines over any
//! store, shared with the unit tests), policies made the way the config loader makes them, and
//! HTTPS for the in-process fakes ([`tls`]).

pub mod tls;

use jwk_rotator::policy::{Policy, PolicyOverrides, Promotion};
pub use jwk_rotator::testing::{FIXTURE_KEYS, at, days, engine, fixtures, set, targets};

pub fn policy(promotion: Promotion) -> Policy {
    with(PolicyOverrides { promotion: Some(promotion), ..PolicyOverrides::default() })
}

/// The policy from these settings, as the config loader makes it (and checks it).
pub fn with(settings: PolicyOverrides) -> Policy {
    Policy::new(&settings).expect("a policy the loader accepts")
}
