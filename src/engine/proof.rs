//! Proofs before a promotion: which pending key a run must prove (`proof_due`), and the token
//! grant that proves it, kept per key set for findings between runs.

use tracing::{info, warn};

use super::Engine;
use crate::lifecycle;
use crate::moment::Moment;
use crate::planner::Request;
use crate::policy::{Promotion, Target};
use crate::proof::{Attempt, Attempts, Patience, ProofError, ProofKind};
use crate::record::KeyRecord;

impl Engine {
    /// With `promotion = "verified"`, proves the pending key when this run could promote it:
    /// published by an earlier run, and due (waited `publish_ahead`) or asked for (`promote`, or
    /// `retire` of the current key). Returns the attempt, also kept for findings.
    pub(super) async fn prove_if_due(
        &self,
        target: &Target,
        records: &[KeyRecord],
        at: Moment,
        request: &Request,
    ) -> Option<Attempt> {
        let pending = proof_due(target, records, at, request)?;
        let verified = target.policy.promotion() == Promotion::Verified;
        if !verified && !self.prover.can_prove(&target.key_set) {
            return None; // `after-delay` proves only where it can; it needs no proof otherwise
        }
        // A key that can not be read is not proved; the rest of the run still goes ahead.
        let outcome = match self.store.private_key(&pending.kid).await {
            Ok(key) => self.prover.prove(&target.key_set, &key, Patience::WaitForPropagation).await,
            Err(e) => Err(ProofError {
                kind: ProofKind::Store,
                message: format!("its private key could not be read: {e}"),
            }),
        };
        match &outcome {
            Ok(proof) => {
                info!(kid = %pending.kid, scope = %proof.scope, "token grant with the pending key succeeded")
            }
            Err(e) => {
                warn!(kid = %pending.kid, error = %e, kind = %e.kind, "token grant with the pending key failed")
            }
        }
        let attempt = Attempt { kid: pending.kid.clone(), at: at.now, outcome };
        self.attempts.record(&target.key_set, attempt.clone());
        Some(attempt)
    }

    /// The last proof attempted per key set in this process.
    pub fn attempts(&self) -> &Attempts {
        &self.attempts
    }
}

/// The pending key that a run at `at` must prove before it may promote it, if any: with
/// `verified`, when it is due or asked for; with `after-delay`, when no current key works any
/// more and `publish_ahead` has not passed ([`lifecycle::needs_rescue`]: a proof promotes it at
/// once). `manual` proves on `promote` only, in the engine's check before the promotion.
pub(crate) fn proof_due<'r>(
    target: &Target,
    records: &'r [KeyRecord],
    at: Moment,
    request: &Request,
) -> Option<&'r KeyRecord> {
    let pending = lifecycle::pending(records, at.now).filter(|p| lifecycle::published_before(p, at))?;
    let current = lifecycle::current(records, at.now);
    let hand_over = request.retire.as_ref().is_some_and(|r| current.is_some_and(|c| c.kid == r.kid));
    let waited = lifecycle::published_at_least(pending, at, target.policy.publish_ahead().delta());
    let rescue = lifecycle::needs_rescue(records, &target.policy, at.now);
    match target.policy.promotion() {
        Promotion::Verified => (request.promote || hand_over || waited || rescue).then_some(pending),
        Promotion::AfterDelay => (rescue && !waited).then_some(pending),
        Promotion::Manual => None,
    }
}
