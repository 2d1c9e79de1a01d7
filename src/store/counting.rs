//! A `KeyStore` decorator that reports every request and whether it failed to an observer
//! (the worker's `/metrics`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{KeyStore, Loaded, StoreError, StoreLock};
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

/// Told of every store request: its operation (`load`, `create`, ...) and whether it failed.
pub trait StoreObserver: Send + Sync {
    fn store_request(&self, operation: &'static str, failed: bool);
}

/// Passes every call to `inner` and reports it to `observer`.
pub struct CountingStore {
    inner: Arc<dyn KeyStore>,
    observer: Arc<dyn StoreObserver>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn KeyStore>, observer: Arc<dyn StoreObserver>) -> Self {
        CountingStore { inner, observer }
    }

    fn count<T>(&self, operation: &'static str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.observer.store_request(operation, result.is_err());
        result
    }
}

#[async_trait]
impl KeyStore for CountingStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError> {
        self.count("lock", self.inner.lock(timeout).await)
    }
    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        self.count("load", self.inner.load(sets).await)
    }
    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        self.count("private_key", self.inner.private_key(kid).await)
    }
    async fn create(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.count("create", self.inner.create(record, key).await)
    }
    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.count("create", self.inner.write_new(record, key).await)
    }
    async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.count("confirm_new", self.inner.confirm_new(record).await)
    }
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.count("update", self.inner.update(record).await)
    }
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.count("purge", self.inner.purge(kid).await)
    }
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError> {
        self.count("sync_consumer", self.inner.sync_consumer(current).await)
    }

    fn consumer(&self, set: &KeySet) -> Option<super::Consumer> {
        self.inner.consumer(set)
    }
}
