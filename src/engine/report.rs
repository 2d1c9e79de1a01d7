//! How a key set's run ended: its report, and the typed error when it did not finish.

use crate::events::Event;
use crate::keygen::KeyGenError;
use crate::kid::{KeySet, Kid};
use crate::planner::{Plan, Refusal};
use crate::proof::ProofError;
use crate::publish::PublishError;
use crate::record::KeyRecord;
use crate::store::StoreError;

/// Why a key set's run did not finish; the report keeps it typed, so that callers can tell a
/// refusal from a store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The store failed (its message names the file, secret or vault and what to do).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The planner would not carry out the request (`promote` without a pending key, ...).
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A step that would make a key current before Maskinporten can know it; nothing was
    /// written for it.
    #[error(
        "refused to make {kid} current: {why}. Nothing was written for this step; this is a bug, please report it"
    )]
    Unsafe { kid: Kid, why: &'static str },
    /// The worker is shutting down.
    #[error("stopped after {done} of {total} steps: shutting down")]
    Stopped { done: usize, total: usize },
    #[error("not started: the worker is shutting down")]
    NotStarted,
    /// The key generation thread for `kid` ended without a key (it panicked, or the runtime
    /// shut down).
    #[error("key generation stopped: {reason}")]
    Interrupted { kid: Kid, reason: String },
    /// `promotion = "verified"`: the pending key is due, but no token grant with it succeeded,
    /// so it stays pending (the rest of the run was carried out).
    #[error("pending key {kid} was not promoted: a token grant signed with it failed: {error}")]
    Unproven { kid: Kid, error: ProofError },
}

impl RunError {
    /// A stable name for the kind of failure, for JSON output and log pipelines.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::Store(e) => e.kind(),
            RunError::Refused(_) => "refused",
            RunError::KeyGen(_) => "keygen",
            RunError::Publish(_) => "publish",
            RunError::Unsafe { .. } => "unsafe-step",
            RunError::Stopped { .. } | RunError::NotStarted => "stopped",
            RunError::Interrupted { .. } => "interrupted",
            RunError::Unproven { .. } => "unproven",
        }
    }
}

/// The outcome for one key set.
#[derive(Debug, Clone)]
pub struct SetReport {
    pub key_set: KeySet,
    /// The plan, when one could be made.
    pub plan: Option<Plan>,
    /// How many of its steps were carried out.
    pub done: usize,
    /// The records after the run (as loaded, for a dry run).
    pub records: Vec<KeyRecord>,
    pub error: Option<RunError>,
    /// A new key that another run wrote at the same moment (Key Vault, no lock): its version was
    /// kept and ours disabled, and this run left the rest of the key set to it. Not a failure.
    pub raced: Option<Kid>,
    /// The changes this run made to the key set's keys, in order, and its failure: what the
    /// event sink was given.
    pub events: Vec<Event>,
    /// The applications restarted for the current key's promotion in this run, if any were
    /// due: a failure here is reported, never a failed run.
    pub restart: Option<crate::restart::RestartOutcome>,
}

impl SetReport {
    pub(super) fn new(key_set: &KeySet) -> Self {
        SetReport {
            key_set: key_set.clone(),
            plan: None,
            done: 0,
            records: Vec::new(),
            error: None,
            raced: None,
            events: Vec::new(),
            restart: None,
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}
