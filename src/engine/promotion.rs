//! The checks before a promotion that Maskinporten must agree with: a key set registered
//! through Digdir's API holds the key, and the key had time to reach Maskinporten (or a token
//! grant signed with it succeeded).

use chrono::TimeDelta;
use tracing::info;

use super::PROPAGATION_MARGIN;
use super::report::RunError;
use super::set_run::SetRun;
use crate::kid::Kid;
use crate::lifecycle;
use crate::planner::{Refusal, RefusedBecause};
use crate::proof::{Patience, ProofError, ProofKind};
use crate::publish::PublishError;

impl SetRun<'_> {
    /// Before a promotion: a key set registered through Digdir's API must hold the key there
    /// now. A key removed by hand since it was published is not promoted; the outputs written
    /// at the end of the run register it again, and a later run promotes it.
    pub(super) async fn check_registered(&self, kid: &Kid) -> Result<(), RunError> {
        let set = &self.target.key_set;
        let Some(found) = self.engine.publisher.registered(set).await else { return Ok(()) };
        let registered = found?;
        if registered.get(&kid.to_string()).is_some() {
            return self.check_propagated(kid).await;
        }
        Err(RunError::Publish(PublishError::Unregistered {
            kid: kid.clone(),
            client_id: registered.client_id,
        }))
    }

    /// A key registered through the API moments ago may not have reached Maskinporten yet
    /// (Digdir documents 0-2 minutes): it is promoted once a token grant signed with it
    /// succeeds (in this run, or here when the key set can be proved), or without a proof once
    /// [`PROPAGATION_MARGIN`] has passed since it was registered, by the run's time and by the
    /// host's real clock.
    async fn check_propagated(&self, kid: &Kid) -> Result<(), RunError> {
        if self.proven.as_ref() == Some(kid) {
            return Ok(());
        }
        let Some(record) = self.records.iter().find(|r| r.kid == *kid) else { return Ok(()) };
        let waited = lifecycle::published_for(record, self.at).unwrap_or_default().max(TimeDelta::zero());
        if waited >= PROPAGATION_MARGIN {
            return Ok(());
        }
        let ready = self.at.now + (PROPAGATION_MARGIN - waited);
        let set = &self.target.key_set;
        let failed = match self.prove_now(kid).await {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => format!("; a token grant signed with it failed: {e}"),
            None => String::new(),
        };
        let message = format!(
            "{kid} was registered on Maskinporten at {} ({}s ago by this host's real clock), and Digdir documents up to 2 minutes before Maskinporten knows a new key{failed}; promote it once `jwk-rotator verify {set}` succeeds, or after {} without a proof",
            record.published.map(|t| t.to_rfc3339()).unwrap_or_default(),
            waited.num_seconds(),
            ready.to_rfc3339(),
        );
        Err(RunError::Refused(Refusal::new(Some(kid), RefusedBecause::NotPropagated, message)))
    }

    /// A token grant signed with `kid`, when the key set can be proved.
    async fn prove_now(&self, kid: &Kid) -> Option<Result<(), ProofError>> {
        let set = &self.target.key_set;
        if !self.engine.prover.can_prove(set) {
            return None;
        }
        let key = match self.engine.store.private_key(kid).await {
            Ok(key) => key,
            Err(e) => return Some(Err(ProofError { kind: ProofKind::Store, message: e.to_string() })),
        };
        let outcome = self.engine.prover.prove(set, &key, Patience::WaitForPropagation).await;
        if let Ok(proof) = &outcome {
            info!(%kid, scope = %proof.scope, "token grant with the key to promote succeeded");
        }
        Some(outcome.map(|_| ()))
    }
}
