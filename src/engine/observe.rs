//! What `status` and the worker see besides a run: the store's records, the consumer secrets,
//! what Maskinporten has registered, the last proof of each due pending key and the admin
//! certificates, evaluated into findings.

use std::collections::BTreeMap;

use futures::StreamExt;

use super::{Engine, proof_due};
use crate::findings::{self, Finding};
use crate::kid::KeySet;
use crate::moment::Moment;
use crate::planner::Request;
use crate::policy::Target;
use crate::proof::{Attempt, Patience, ProofError, ProofKind};
use crate::publish::PublishError;
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
