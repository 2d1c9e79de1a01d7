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
    pub kind: ProofKind,
    /// Digdir's error and MP code with what to do; never a token or key material.
    pub message: String,
}

/// What kind of failure kept a key from being proved; shown (logs, JSON) by its stable name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProofKind {
    /// Maskinporten does not know the kid: not registered, or not propagated yet.
    UnknownKid,
    /// MP-121: the registered key has expired.
    ExpiredKey,
    /// The clocks disagree (an expired grant, or `iat` in the future).
    ClockSkew,
    /// MP-012: the grant's `jti` was used before.
    ReusedJti,
    /// MP-124: the signature does not verify with the registered key.
    BadSignature,
    /// Any other refusal by Maskinporten.
    Refused,
    /// Maskinporten could not be reached.
    Unavailable,
    /// Maskinporten answered something that could not be read.
    Protocol,
    /// The grant could not be signed with the key.
    Signing,
    /// The key set has no client id, scope or token endpoint to prove with.
    NotConfigured,
    /// The private key could not be read from the store.
    Store,
}

impl ProofKind {
    /// The stable name, as JSON and the logs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProofKind::UnknownKid => "unknown-kid",
            ProofKind::ExpiredKey => "expired-key",
            ProofKind::ClockSkew => "clock-skew",
            ProofKind::ReusedJti => "reused-jti",
            ProofKind::BadSignature => "bad-signature",
            ProofKind::Refused => "refused",
            ProofKind::Unavailable => "unavailable",
            ProofKind::Protocol => "protocol",
            ProofKind::Signing => "signing",
            ProofKind::NotConfigured => "not-configured",
            ProofKind::Store => "store",
        }
    }
}

impl std::fmt::Display for ProofKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
pub(crate) struct NoProver;

#[async_trait]
impl Prover for NoProver {
    fn can_prove(&self, _set: &KeySet) -> bool {
        false
    }

    async fn prove(&self, set: &KeySet, _key: &PrivateJwk, _: Patience) -> Result<Proof, ProofError> {
        Err(ProofError {
            kind: ProofKind::NotConfigured,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_kinds_keep_their_stable_names_in_json_and_text() {
        let kinds = [
            (ProofKind::UnknownKid, "unknown-kid"),
            (ProofKind::ExpiredKey, "expired-key"),
            (ProofKind::ClockSkew, "clock-skew"),
            (ProofKind::ReusedJti, "reused-jti"),
            (ProofKind::BadSignature, "bad-signature"),
            (ProofKind::Refused, "refused"),
            (ProofKind::Unavailable, "unavailable"),
            (ProofKind::Protocol, "protocol"),
            (ProofKind::Signing, "signing"),
            (ProofKind::NotConfigured, "not-configured"),
            (ProofKind::Store, "store"),
        ];
        for (kind, name) in kinds {
            assert_eq!(kind.to_string(), name);
            assert_eq!(serde_json::to_value(kind).expect("json"), serde_json::json!(name));
        }
    }
}
