//! Proves a key with a real token grant: a client grant signed with the key (`kid` header, the
//! client's `client_id` as `iss`, its `verify_scope`) sent to Maskinporten's token endpoint
//! (docs.digdir.no `maskinporten_protocol_jwtgrant`). The token is never kept or shown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::api::WallClock;
use super::jwt::{self, GrantClaims};
use super::token::{GrantError, RefusalKind, TokenEndpoint};
use crate::jwk::PrivateJwk;
use crate::kid::KeySet;
use crate::proof::{Patience, Proof, ProofError, ProofKind, Prover};

/// One key set's client, as a grant names it.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub client_id: String,
    pub scope: String,
    pub endpoint: Arc<TokenEndpoint>,
    /// How long a key that Maskinporten does not know yet is tried again (`verify_wait`).
    pub wait: Duration,
}

/// Proves keys with token grants at their environment's token endpoint.
pub(crate) struct TokenProver {
    bindings: BTreeMap<KeySet, Binding>,
    clock: WallClock,
    /// The first wait between tries of a key not known yet; it doubles up to 30 s.
    first_pause: Duration,
}

impl TokenProver {
    pub(crate) fn new(bindings: BTreeMap<KeySet, Binding>, clock: WallClock) -> Self {
        TokenProver { bindings, clock, first_pause: Duration::from_secs(5) }
    }
}

/// A stable name for a refusal, for findings and JSON output.
fn kind_of(e: &GrantError) -> ProofKind {
    match e {
        GrantError::Refused { kind, .. } => match kind {
            RefusalKind::UnknownKid => ProofKind::UnknownKid,
            RefusalKind::ExpiredKey => ProofKind::ExpiredKey,
            RefusalKind::ClockSkew => ProofKind::ClockSkew,
            RefusalKind::ReusedJti => ProofKind::ReusedJti,
            RefusalKind::BadSignature => ProofKind::BadSignature,
            RefusalKind::Other => ProofKind::Refused,
        },
        GrantError::Unavailable(_) => ProofKind::Unavailable,
        GrantError::Protocol(_) => ProofKind::Protocol,
        GrantError::Jwt(_) => ProofKind::Signing,
    }
}

fn unknown_kid(e: &GrantError) -> bool {
    matches!(e, GrantError::Refused { kind: RefusalKind::UnknownKid, .. })
}

#[async_trait]
impl Prover for TokenProver {
    fn can_prove(&self, set: &KeySet) -> bool {
        self.bindings.contains_key(set)
    }

    async fn prove(&self, set: &KeySet, key: &PrivateJwk, patience: Patience) -> Result<Proof, ProofError> {
        let Some(b) = self.bindings.get(set) else {
            return crate::proof::NoProver.prove(set, key, patience).await;
        };
        let started = tokio::time::Instant::now();
        let mut pause = self.first_pause;
        loop {
            let grant = b
                .endpoint
                .grant((self.clock)(), |iat| {
                    let claims = GrantClaims {
                        iss: &b.client_id,
                        aud: b.endpoint.issuer(),
                        scope: &b.scope,
                        now: iat,
                    };
                    jwt::client_grant(key, &claims)
                })
                .await;
            let e = match grant {
                Ok(granted) => return Ok(Proof { scope: granted.scope, expires_in: granted.expires_in }),
                Err(e) => e,
            };
            let waited = started.elapsed();
            if patience == Patience::WaitForPropagation && unknown_kid(&e) && waited + pause <= b.wait {
                tracing::info!(%set, kid = %key.kid(), waited = ?waited, "Maskinporten does not know the key yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
                continue;
            }
            let tried = if patience == Patience::WaitForPropagation && unknown_kid(&e) {
                format!(" (tried for {}s)", waited.as_secs())
            } else {
                String::new()
            };
            return Err(ProofError {
                kind: kind_of(&e),
                message: format!(
                    "{} as client {} with scope {}{tried}: {e}",
                    key.kid(),
                    b.client_id,
                    b.scope
                ),
            });
        }
    }
}
