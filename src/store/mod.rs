//! Where keys live: the `KeyStore` port, its errors, and an in-memory store for tests.

pub mod disk;
pub mod file;
pub mod memory;

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

pub use file::FileStore;
pub use memory::MemoryStore;

/// A store failure, with the place (file, secret, vault) and what to do in its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached, read or written at all.
    #[error("{0}")]
    Unavailable(String),
    /// One stored key is damaged; its key set is left alone until someone fixes it.
    #[error("{0}")]
    Corrupt(String),
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

/// Held for a whole run; dropping it lets the next run in.
pub type StoreLock = Box<dyn Any + Send>;

/// What [`KeyStore::load`] found, per key set: one set's damage does not hide the others.
pub type Loaded = BTreeMap<KeySet, Result<Vec<KeyRecord>, StoreError>>;

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
}
