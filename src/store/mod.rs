//! Where keys live: the `KeyStore` port, its errors, and an in-memory store for tests.

pub mod counting;
pub mod disk;
pub mod file;
mod file_errors;
pub mod memory;

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

pub use counting::{CountingStore, StoreObserver};
pub use file::FileStore;
pub use memory::MemoryStore;

/// A store failure, with the place (file, secret, vault) and what to do in its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached, read or written at all.
    #[error("{0}")]
    Unavailable(String),
    /// The store refused this identity (Key Vault 401/403, a file the user may not read).
    #[error("{0}")]
    Denied(String),
    /// The store asked to slow down and its retries ran out (Key Vault 429).
    #[error("{0}")]
    Throttled(String),
    /// One stored key is damaged; its key set is left alone until someone fixes it. `field` is
    /// the record's damaged member where one is known (`stage`, `kid`, `private_jwk`, ...).
    #[error("{message}")]
    Corrupt { message: String, field: Option<&'static str> },
    /// The kid is already taken (a racing run, or a leftover).
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    NotFound(String),
    /// Another run holds the store.
    #[error("{0}")]
    Locked(String),
    /// Any other failure of one operation.
    #[error("{0}")]
    Failed(String),
}

impl StoreError {
    /// A damaged stored key, with no particular field to blame.
    pub fn corrupt(message: String) -> StoreError {
        StoreError::Corrupt { message, field: None }
    }

    /// A stable name for the kind of failure, for JSON output and log pipelines.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "store-unavailable",
            StoreError::Denied(_) => "store-denied",
            StoreError::Throttled(_) => "store-throttled",
            StoreError::Corrupt { .. } => "store-corrupt",
            StoreError::Exists(_) => "store-exists",
            StoreError::NotFound(_) => "store-not-found",
            StoreError::Locked(_) => "store-locked",
            StoreError::Failed(_) => "store-failed",
        }
    }
}

/// Held for a whole run; dropping it lets the next run in.
pub type StoreLock = Box<dyn Any + Send>;

/// What [`KeyStore::load`] found, per key set: one set's damage does not hide the others.
pub type Loaded = BTreeMap<KeySet, Result<Vec<KeyRecord>, StoreError>>;

/// What a key set's consumer secret held at the store's last load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumer {
    /// No such secret, or its latest version is disabled: applications read no key there.
    Empty,
    /// A key this tool wrote there, by its `kid` tag.
    Kid(Kid),
    /// A key this tool did not write (no `kid` tag of its own), such as altinn-jwks's current
    /// key: applications may be signing with it.
    Foreign,
}

impl Consumer {
    /// The kid this tool wrote there, if it wrote the latest version.
    pub fn kid(&self) -> Option<&Kid> {
        match self {
            Consumer::Kid(kid) => Some(kid),
            Consumer::Empty | Consumer::Foreign => None,
        }
    }

    /// Whether applications read a key there.
    pub fn holds_a_key(&self) -> bool {
        !matches!(self, Consumer::Empty)
    }
}

/// For each key set with a consumer secret, what that secret holds.
pub type Consumers = BTreeMap<KeySet, Consumer>;

/// The records of `set` in what a store loaded. A key set that the load left out is an error,
/// never an empty key set: treating it as empty would make a first key current at once.
pub fn records_in<'a>(loaded: &'a Loaded, set: &KeySet) -> Result<&'a [KeyRecord], StoreError> {
    match loaded.get(set) {
        Some(Ok(records)) => Ok(records),
        Some(Err(e)) => Err(e.clone()),
        None => Err(StoreError::Failed(format!(
            "key set {set} is missing from what the store loaded; nothing was written for it. This is a bug: run again, and report it if it repeats"
        ))),
    }
}

/// What the consumer secrets of `sets` held at the store's last load.
pub fn consumers(store: &dyn KeyStore, sets: &[KeySet]) -> Consumers {
    sets.iter().filter_map(|s| store.consumer(s).map(|held| (s.clone(), held))).collect()
}

/// Holds each key's record and private JWK. Object-safe; held as `Arc<dyn KeyStore>`.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The store and its location, for messages: `file store /srv/keys`.
    fn describe(&self) -> String;

    /// Keeps other runs out until the returned value is dropped; waits up to `timeout`.
    async fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError>;

    /// The records of these key sets (every set in the store has an entry if asked for).
    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError>;

    /// One private key.
    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError>;

    /// Stores a new key; fails with [`StoreError::Exists`] if the kid is taken.
    async fn create(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError>;

    /// Writes a new key without waiting to learn whether a racing run wrote the same kid: a run
    /// writes all its new keys first, then calls [`KeyStore::confirm_new`] for each, so that it
    /// waits for racing writers once rather than once per key. A store whose lock keeps other
    /// runs out has nothing to wait for and simply creates the key (the default).
    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.create(record, key).await
    }

    /// Finishes [`KeyStore::write_new`] for `record`: waits until a racing writer of the same kid
    /// can be told apart (Key Vault: `settle` after the write, counted from the write, so a run
    /// that wrote long ago does not wait again), keeps the oldest write, and fails with
    /// [`StoreError::Exists`] if ours lost. Nothing to do by default.
    async fn confirm_new(&self, _record: &KeyRecord) -> Result<(), StoreError> {
        Ok(())
    }

    /// Writes a changed record (stage, timestamps) of a stored key.
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError>;

    /// Deletes a retired key for good.
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError>;

    /// Makes `current` the key that applications of its key set read (a Key Vault consumer
    /// secret), writing only if they read another one. Called when a key is promoted and after
    /// every run, so that an interrupted promotion is finished. Stores without a consumer
    /// secret have nothing to do.
    async fn sync_consumer(&self, _current: &KeyRecord) -> Result<(), StoreError> {
        Ok(())
    }

    /// What the consumer secret of `set` held at the last [`KeyStore::load`]: `None` for a
    /// store or key set without one.
    fn consumer(&self, _set: &KeySet) -> Option<Consumer> {
        None
    }
}
