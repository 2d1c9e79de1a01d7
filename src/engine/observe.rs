//! What `status` and the worker see besides a run: the store's records, the consumer secrets,
//! what Maskinporten has registered, the last proof of each due pending key and the admin
//! certificates, evaluated into findings.

use std::collections::BTreeMap;

use futures::StreamExt;

use super::{Engine, proof_due};
use crate::findings::{self, Finding};
use crate::kid::KeySet;
use crate::lifecycle;
use crate::moment::Moment;
use crate::outlook::Seen;
use crate::planner::Request;
use crate::policy::Target;
use crate::proof::{Attempt, Patience, ProofError, ProofKind};
use crate::publish::PublishError;
use crate::record::KeyRecord;
use crate::store::StoreError;

/// What `status` and the worker see at one moment.
#[derive(Debug)]
pub struct Evaluation {
    /// The store's records, or why they could not be read.
    pub loaded: Result<crate::store::Loaded, StoreError>,
    /// What was seen besides the store (Maskinporten's registered keys, proofs, certificates).
    pub observed: findings::Observed,
    pub findings: Vec<Finding>,
}

impl Engine {
    /// Loads `targets` and evaluates their findings at `at`, as `status` and the worker do.
    pub async fn evaluate(&self, targets: &[Target], at: impl Into<Moment>) -> Evaluation {
        let at = at.into();
        let loaded = self.load(targets).await;
        let observed = self.observe(targets, &loaded, at).await;
        let findings = findings::evaluate_all(targets, &loaded, &observed, at);
        Evaluation { loaded, observed, findings }
    }

    /// What a run of `target` at `at` would find besides its records, given what
    /// [`Engine::evaluate`] observed: the planner request it would make, whether the key set is
    /// registered through Digdir's API, and why its pending key's token grant fails, if it does.
    /// [`outlook`](crate::outlook) predicts from it.
    pub fn seen(
        &self,
        target: &Target,
        records: &[KeyRecord],
        observed: &findings::Observed,
        at: Moment,
    ) -> Seen {
        let pending = lifecycle::pending(records, at.now).map(|p| &p.kid);
        let proof = observed.proofs.get(&target.key_set).filter(|a| Some(&a.kid) == pending);
        let request = Request {
            proven: proof.filter(|a| a.outcome.is_ok()).map(|a| a.kid.clone()),
            consumer_in_use: self.consumer_in_use(target, records),
            ..Request::default()
        };
        Seen {
            request,
            through_api: observed.registered.contains_key(&target.key_set),
            proof_failing: proof.and_then(|a| a.outcome.as_ref().err()).map(|e| e.kind.as_str().to_owned()),
        }
    }

    async fn registered(
        &self,
        set: &KeySet,
    ) -> Option<(KeySet, Result<crate::publish::Registered, PublishError>)> {
        Some((set.clone(), self.publisher.registered(set).await?))
    }

    /// What findings need besides the records: the consumer secrets, what Maskinporten has
    /// registered, the last proof of each due pending key (one grant for a key this process has
    /// not tried yet), and the admin certificates.
    async fn observe(
        &self,
        targets: &[Target],
        loaded: &Result<crate::store::Loaded, StoreError>,
        at: Moment,
    ) -> findings::Observed {
        let sets: Vec<KeySet> = targets.iter().map(|t| t.key_set.clone()).collect();
        let consumers = crate::store::consumers(self.consumers.as_deref(), &sets);
        // Collected first, as in `run`, so that the future stays `Send` for the worker.
        let reads: Vec<_> = sets.iter().map(|set| self.registered(set)).collect();
        let registered: Vec<_> = futures::stream::iter(reads).buffer_unordered(16).collect().await;
        let registered = registered.into_iter().flatten().collect();
        let mut proofs = BTreeMap::new();
        for t in targets {
            let Ok(records) = findings::records_of(loaded, &t.key_set) else { continue };
            let Some(pending) = proof_due(t, records, at, &Request::default()) else { continue };
            let last = self.attempts.last(&t.key_set).filter(|a| a.kid == pending.kid);
            let attempt = match last {
                Some(a) => a,
                None if self.prover.can_prove(&t.key_set) => {
                    let outcome = match self.store.private_key(&pending.kid).await {
                        Ok(key) => self.prover.prove(&t.key_set, &key, Patience::Once).await,
                        Err(e) => Err(ProofError { kind: ProofKind::Store, message: e.to_string() }),
                    };
                    let a = Attempt { kid: pending.kid.clone(), at: at.now, outcome };
                    self.attempts.record(&t.key_set, a.clone());
                    a
                }
                None => continue,
            };
            proofs.insert(t.key_set.clone(), attempt);
        }
        let restarts = match &self.restarter {
            Some(r) => sets.iter().filter(|s| r.restarts(s)).cloned().collect(),
            None => Default::default(),
        };
        let certificates = self.publisher.certificates();
        findings::Observed { consumers, registered, proofs, certificates, restarts }
    }
}
