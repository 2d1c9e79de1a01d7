//! Restarting the applications that read a client's key, once per promotion, so that they
//! pick up the new key long before the previous one is retired: Kubernetes workloads through
//! the API server (the patch `kubectl rollout restart` sends), Azure Container Apps and App
//! Service through Azure Resource Manager. A restart that fails is reported, never a failed
//! rotation; the engine records a finished restart on the key's record.

mod arm;
mod kubernetes;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use crate::config::restart::{ArmSettings, KubernetesSettings, RestartTarget, Workload};
pub use arm::{Arm, ArmError};
pub use kubernetes::{Kubernetes, KubernetesError};

use crate::kid::{ClientName, KeySet, Kid};

/// Why one application could not be restarted; each says which and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestartError {
    /// The API could not be reached, or answered with something that is not HTTP.
    #[error("{target}: {api} could not be reached ({cause}); check the address and the network policy")]
    Unreachable { target: String, api: &'static str, cause: String },
    /// The API answered with an error status.
    #[error("{target}: {api} answered {status} ({detail}); {todo}")]
    Refused { target: String, api: &'static str, status: u16, detail: String, todo: String },
    /// No credential for the API: a token file that can not be read, or an Azure token that
    /// could not be had.
    #[error("{target}: no credential for {api}: {cause}")]
    Credential { target: String, api: &'static str, cause: String },
    /// The kind of application needs a client that this configuration does not make.
    #[error("{target}: {cause}")]
    NotConfigured { target: String, cause: String },
}

/// One application and how its restart went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartResult {
    pub target: RestartTarget,
    pub error: Option<RestartError>,
}

/// What restarting a client's applications for one promotion did: the value the engine
/// reports (and that becomes a `restart.*` event and, when one failed, a finding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartOutcome {
    pub key_set: KeySet,
    /// The key that was promoted and that the consumer secret holds.
    pub kid: Kid,
    /// When it was made (the run's now).
    pub at: DateTime<Utc>,
    pub results: Vec<RestartResult>,
}

impl RestartOutcome {
    /// Whether every application was restarted.
    pub fn succeeded(&self) -> bool {
        self.results.iter().all(|r| r.error.is_none())
    }

    /// The restarts that failed.
    pub fn failures(&self) -> impl Iterator<Item = &RestartError> {
        self.results.iter().filter_map(|r| r.error.as_ref())
    }
}

/// Restarts the applications of a key set's client. Object-safe; held by the engine as
/// `Arc<dyn Restarter>`.
#[async_trait]
pub trait Restarter: Send + Sync {
    /// Whether the client of `set` names applications to restart.
    fn restarts(&self, set: &KeySet) -> bool;

    /// Restarts them for the promotion of `kid`, which became current at `activated`; `now` is
    /// the run's time. Restarting again for the same promotion is harmless for Kubernetes (the
    /// annotation holds `activated`, so the pod template does not change again).
    async fn restart(&self, kid: &Kid, activated: DateTime<Utc>, now: DateTime<Utc>) -> RestartOutcome;
}

/// The production restarter: each client's `[[client.restart]]` targets, and the clients for
/// the APIs they need (made only when a target needs one).
pub struct Restarts {
    targets: BTreeMap<ClientName, Vec<RestartTarget>>,
    kubernetes: Option<Result<Kubernetes, KubernetesError>>,
    arm: Option<Result<Arm, ArmError>>,
}

impl Restarts {
    /// `kubernetes` and `arm` are `None` when no target needs them, or the reason they could
    /// not be made (reported on each restart that needs them, never failing a rotation).
    pub fn new(
        targets: BTreeMap<ClientName, Vec<RestartTarget>>,
        kubernetes: Option<Result<Kubernetes, KubernetesError>>,
        arm: Option<Result<Arm, ArmError>>,
    ) -> Self {
        Restarts { targets, kubernetes, arm }
    }

    async fn one(&self, target: &RestartTarget, activated: DateTime<Utc>) -> Result<(), RestartError> {
        let missing = |cause: Option<String>, what: &str| RestartError::NotConfigured {
            target: target.to_string(),
            cause: cause.unwrap_or_else(|| format!("no {what} client")),
        };
        match target {
            RestartTarget::Kubernetes { workload, namespace, name } => match &self.kubernetes {
                Some(Ok(k)) => k.restart(*workload, namespace, name, activated).await,
                other => Err(missing(
                    other.as_ref().and_then(|r| r.as_ref().err()).map(ToString::to_string),
                    "Kubernetes",
                )),
            },
            RestartTarget::ContainerApp { resource_id } => match &self.arm {
                Some(Ok(arm)) => arm.restart_container_app(resource_id).await,
                other => Err(missing(
                    other.as_ref().and_then(|r| r.as_ref().err()).map(ToString::to_string),
                    "Azure Resource Manager",
                )),
            },
            RestartTarget::AppService { resource_id } => match &self.arm {
                Some(Ok(arm)) => arm.restart_app_service(resource_id).await,
                other => Err(missing(
                    other.as_ref().and_then(|r| r.as_ref().err()).map(ToString::to_string),
                    "Azure Resource Manager",
                )),
            },
        }
    }
}

#[async_trait]
impl Restarter for Restarts {
    fn restarts(&self, set: &KeySet) -> bool {
        self.targets.get(set.client()).is_some_and(|t| !t.is_empty())
    }

    async fn restart(&self, kid: &Kid, activated: DateTime<Utc>, now: DateTime<Utc>) -> RestartOutcome {
        let mut results = Vec::new();
        for target in self.targets.get(kid.key_set().client()).into_iter().flatten() {
            let error = self.one(target, activated).await.err();
            match &error {
                None => tracing::info!(%kid, %target, "application restarted for the promoted key"),
                Some(e) => {
                    tracing::warn!(%kid, %target, error = %e, "restart failed; the next run tries again")
                }
            }
            results.push(RestartResult { target: target.clone(), error });
        }
        RestartOutcome { key_set: kid.key_set().clone(), kid: kid.clone(), at: now, results }
    }
}

/// Restarts nothing: for engines whose clients name no applications.
pub struct NoRestarts;

#[async_trait]
impl Restarter for NoRestarts {
    fn restarts(&self, _: &KeySet) -> bool {
        false
    }

    async fn restart(&self, kid: &Kid, _: DateTime<Utc>, now: DateTime<Utc>) -> RestartOutcome {
        RestartOutcome { key_set: kid.key_set().clone(), kid: kid.clone(), at: now, results: Vec::new() }
    }
}

/// The restarter for these clients: `None` when none names an application.
pub fn restarter(
    clients: &[crate::config::ClientConfig],
    kubernetes: &KubernetesSettings,
    arm: &ArmSettings,
    credential: impl FnOnce() -> Result<Arc<dyn azure_core::credentials::TokenCredential>, ArmError>,
) -> Option<Arc<dyn Restarter>> {
    let targets: BTreeMap<ClientName, Vec<RestartTarget>> = clients
        .iter()
        .filter(|c| !c.restart.is_empty())
        .map(|c| (c.name.clone(), c.restart.clone()))
        .collect();
    let all = || targets.values().flatten();
    if targets.is_empty() {
        return None;
    }
    let kube = all()
        .any(|t| !t.is_azure())
        .then(|| Kubernetes::open(kubernetes, &crate::azure::credential::process_env));
    let arm = all().any(RestartTarget::is_azure).then(|| credential().and_then(|c| Arm::open(arm, c)));
    Some(Arc::new(Restarts::new(targets, kube, arm)))
}
