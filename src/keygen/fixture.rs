//! Key generators for tests: committed fixture keys handed out in turn, and one that always
//! fails. Compiled for tests and the `test-support` feature only.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{KeyGenError, KeyGenerator};
use crate::jwk::{JwkError, PrivateJwk};
use crate::kid::Kid;
use crate::policy::{Algorithm, KeySize};

/// Hands out committed test keys in turn, relabelled with the requested kid; for tests only.
pub struct FixtureGenerator {
    keys: Vec<PrivateJwk>,
    next: AtomicUsize,
}

impl FixtureGenerator {
    /// `text` holds one base64 private JWK per line (`tests/data/fixture-keys.b64`).
    pub fn from_lines(text: &str) -> Result<Self, JwkError> {
        let keys = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(PrivateJwk::from_base64)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FixtureGenerator { keys, next: AtomicUsize::new(0) })
    }

    /// How many keys it has handed out.
    pub fn issued(&self) -> usize {
        self.next.load(Ordering::SeqCst)
    }
}

impl KeyGenerator for FixtureGenerator {
    fn generate(&self, kid: Kid, size: KeySize, alg: Algorithm) -> Result<PrivateJwk, KeyGenError> {
        if self.keys.is_empty() {
            return Err(KeyGenError { bits: size.bits(), reason: "no fixture keys".to_owned() });
        }
        let i = self.next.fetch_add(1, Ordering::SeqCst) % self.keys.len();
        Ok(self.keys[i].relabel(kid, alg))
    }
}

/// A generator that always fails, to show that a failed generation leaves the current key alone.
#[derive(Debug, Default)]
pub struct FailingGenerator {
    pub calls: Mutex<u32>,
}

impl KeyGenerator for FailingGenerator {
    fn generate(&self, _: Kid, size: KeySize, _: Algorithm) -> Result<PrivateJwk, KeyGenError> {
        if let Ok(mut calls) = self.calls.lock() {
            *calls += 1;
        }
        Err(KeyGenError { bits: size.bits(), reason: "failing on purpose (test)".to_owned() })
    }
}
