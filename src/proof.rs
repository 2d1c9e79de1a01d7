//! Proof that Maskinporten knows a key: a real token grant signed with it. With
//! `promotion = "verified"` a pending key becomes current only in a run whose grant with it
//! succeeded; `verify` runs the same grant on request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};

/// A token was granted for a grant signed with the key. The token itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The scopes Maskinporten granted.
    pub scope: String,
    /// How long the token would have lived, in seconds.
    pub expires_in: u64,
}

/// Why a key could not be proved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProofError {
    /// A stable name: `unknown-kid`, `expired-key`, `clock-skew`, `refused`, `unavailable`,
    /// `not-configured`, ...
    pub kind: &'static str,
    /// Digdir's error and MP code with what to do; never a token or key material.
    pub message: String,
}

/// How hard a proof tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Try a key that Maskinporten does not know yet again, up to `verify_wait`: a run about to
    /// promote, and `verify`.
    WaitForPropagation,
    /// One grant (network failures are still retried): `status` and the worker's checks.
    Once,
}

/// Proves keys with token grants.
#[async_trait]
pub trait Prover: Send + Sync {
    /// Whether keys of `set` can be proved: its client id, scope and token endpoint are set.
    fn can_prove(&self, set: &KeySet) -> bool;

    /// Signs a client grant with `key` as `set`'s client and asks for a token.
    async fn prove(&self, set: &KeySet, key: &PrivateJwk, patience: Patience) -> Result<Proof, ProofError>;
}

/// No proofs: for configs without `promotion = "verified"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProver;

#[async_trait]
impl Prover for NoProver {
    fn can_prove(&self, _set: &KeySet) -> bool {
        false
    }

    async fn prove(&self, set: &KeySet, _key: &PrivateJwk, _: Patience) -> Result<Proof, ProofError> {
        Err(ProofError {
            kind: "not-configured",
            message: format!(
                "{set} can not be proved: give the client a client_id for {} and a verify_scope, and add [maskinporten.{}]",
                set.env(),
                set.env()
            ),
        })
    }
}

/// The last proof attempted for a key set in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub kid: Kid,
    pub at: DateTime<Utc>,
    pub outcome: Result<Proof, ProofError>,
}

/// The last proof per key set, shared by the engine's runs and its evaluations, so that the
/// worker reports a pending key whose proof keeps failing without asking Maskinporten again.
#[derive(Debug, Clone, Default)]
pub struct Attempts(Arc<Mutex<BTreeMap<KeySet, Attempt>>>);

impl Attempts {
    pub fn record(&self, set: &KeySet, attempt: Attempt) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(set.clone(), attempt);
        }
    }

    pub fn last(&self, set: &KeySet) -> Option<Attempt> {
        self.0.lock().ok().and_then(|map| map.get(set).cloned())
    }
}
