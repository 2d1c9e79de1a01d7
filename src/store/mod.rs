//! Where keys live: the `KeyStore` port for the key records, the `ConsumerSecrets` port for the
//! secrets applications read, their errors, and (for tests) an in-memory store.

pub mod consumer;
pub mod counting;
mod error;
pub mod file;
mod file_errors;
#[cfg(any(test, feature = "test-support"))]
pub mod flaky;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
#[cfg(any(test, feature = "test-support"))]
pub mod recording;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

pub use consumer::{Consumer, ConsumerSecrets};
pub(crate) use consumer::{Consumers, consumers};
pub use counting::{StoreObserver, counted};
pub use error::{Place, StoreError};
pub use file::FileStore;
#[cfg(any(test, feature = "test-support"))]
pub use memory::MemoryStore;

/// Held for a whole run; dropping it lets the next run in.
pub type StoreLock = Box<dyn Any + Send>;

/// What [`KeyStore::load`] found, per key set: one set's damage does not hide the others.
pub type Loaded = BTreeMap<KeySet, Result<Vec<KeyRecord>, StoreError>>;

/// The records of `set` in what a store loaded. A key set that the load left out is an error,
/// never an empty key set: treating it as empty would make a first key current at once.
pub fn records_in<'a>(loaded: &'a Loaded, set: &KeySet) -> Result<&'a [KeyRecord], StoreError> {
    match loaded.get(set) {
        Some(Ok(records)) => Ok(records),
        Some(Err(e)) => Err(e.clone()),
        None => Err(StoreError::Failed {
            place: Place::KeySet(set.clone()),
            message: format!(
                "key set {set} is missing from what the store loaded; nothing was written for it. This is a bug: run again, and report it if it repeats"
            ),
        }),
    }
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

    /// Writes a new key; fails with [`StoreError::Exists`] if the kid is taken. A run writes
    /// all its new keys first, then calls [`KeyStore::confirm_new`] for each, so that a store
    /// that must wait to learn whether a racing run wrote the same kid (Key Vault, which has no
    /// lock) waits once rather than once per key. [`create`] does both for one key.
    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError>;

    /// Finishes [`KeyStore::write_new`] for `record`: waits until a racing writer of the same kid
    /// can be told apart (Key Vault: `settle` after the write, counted from the write, so a run
    /// that wrote long ago does not wait again), keeps the oldest write, and fails with
    /// [`StoreError::Exists`] if ours lost. A store whose lock keeps other runs out has nothing
    /// to wait for.
    async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError>;

    /// Writes a changed record (stage, timestamps) of a stored key.
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError>;

    /// Deletes a retired key for good.
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError>;
}

/// Stores one new key: [`KeyStore::write_new`], then [`KeyStore::confirm_new`]. Fails with
/// [`StoreError::Exists`] if the kid is taken (or a racing run's write of it won).
pub async fn create(store: &dyn KeyStore, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
    store.write_new(record, key).await?;
    store.confirm_new(record).await
}

/// A store as opened: its key records, and its consumer secrets where it has them (Key Vault;
/// the file store has none).
#[derive(Clone)]
pub struct Opened {
    pub keys: Arc<dyn KeyStore>,
    pub consumers: Option<Arc<dyn ConsumerSecrets>>,
}

impl Opened {
    /// A store without consumer secrets.
    pub fn keys_only(keys: Arc<dyn KeyStore>) -> Self {
        Opened { keys, consumers: None }
    }

    /// A store that keeps both the key records and the consumer secrets.
    pub fn with_consumers<S: KeyStore + ConsumerSecrets + 'static>(store: Arc<S>) -> Self {
        Opened { keys: store.clone(), consumers: Some(store) }
    }
}
