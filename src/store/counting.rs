//! Decorators that report every store request and whether it failed to an observer (the
//! worker's `/metrics`): one for the key records, one for the consumer secrets.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Consumer, ConsumerSecrets, KeyStore, Loaded, Opened, StoreError, StoreLock};
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

/// Told of every store request: its operation (`load`, `create`, ...) and whether it failed.
pub trait StoreObserver: Send + Sync {
    fn store_request(&self, operation: &'static str, failed: bool);
}

fn count<T>(
    observer: &dyn StoreObserver,
    operation: &'static str,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    observer.store_request(operation, result.is_err());
    result
}

/// `opened` with every request of its key records and of its consumer secrets (if it has
/// them) reported to `observer`.
pub fn counted(opened: Opened, observer: Arc<dyn StoreObserver>) -> Opened {
    let consumers = opened.consumers.map(|inner| -> Arc<dyn ConsumerSecrets> {
        Arc::new(CountingConsumers::new(inner, observer.clone()))
    });
    Opened { keys: Arc::new(CountingStore::new(opened.keys, observer)), consumers }
}

/// Passes every call to `inner` and reports it to `observer`.
pub(crate) struct CountingStore {
    inner: Arc<dyn KeyStore>,
    observer: Arc<dyn StoreObserver>,
}

impl CountingStore {
    pub(crate) fn new(inner: Arc<dyn KeyStore>, observer: Arc<dyn StoreObserver>) -> Self {
        CountingStore { inner, observer }
    }

    fn count<T>(&self, operation: &'static str, result: Result<T, StoreError>) -> Result<T, StoreError> {
        count(self.observer.as_ref(), operation, result)
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
}

/// Passes every call to `inner` and reports each write to `observer`.
pub(crate) struct CountingConsumers {
    inner: Arc<dyn ConsumerSecrets>,
    observer: Arc<dyn StoreObserver>,
}

impl CountingConsumers {
    pub(crate) fn new(inner: Arc<dyn ConsumerSecrets>, observer: Arc<dyn StoreObserver>) -> Self {
        CountingConsumers { inner, observer }
    }
}

#[async_trait]
impl ConsumerSecrets for CountingConsumers {
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError> {
        count(self.observer.as_ref(), "sync_consumer", self.inner.sync_consumer(current).await)
    }

    /// What the last load saw: no request of its own, so nothing to count.
    fn consumer(&self, set: &KeySet) -> Option<Consumer> {
        self.inner.consumer(set)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::recording::{Recording, call_every_method, every_method};
    use crate::testing::{at, fixture_key};

    /// Notes each request: its operation, and whether it failed.
    #[derive(Default)]
    struct Noted(Mutex<Vec<(&'static str, bool)>>);

    impl StoreObserver for Noted {
        fn store_request(&self, operation: &'static str, failed: bool) {
            self.0.lock().expect("noted").push((operation, failed));
        }
    }

    #[tokio::test]
    async fn counted_ports_pass_every_method_on_and_count_each_request() {
        let recording = Recording::new();
        let noted = Arc::new(Noted::default());
        let opened = counted(recording.opened(), noted.clone());
        assert!(opened.consumers.is_some());
        call_every_method(&opened, &fixture_key("a-TEST.2026-11-21"), at("2026-11-21T06:00:00Z")).await;
        assert_eq!(recording.calls(), every_method(&opened));
        assert_eq!(every_method(&opened).len(), 10);
        let noted = noted.0.lock().expect("noted").clone();
        let operations: Vec<&str> = noted.iter().map(|(op, _)| *op).collect();
        assert_eq!(
            operations,
            ["lock", "create", "confirm_new", "private_key", "update", "sync_consumer", "load", "purge"]
        );
        assert!(noted.iter().all(|(_, failed)| !failed), "{noted:?}");
    }

    #[tokio::test]
    async fn a_failed_request_is_counted_as_failed() {
        let noted = Arc::new(Noted::default());
        let store = CountingStore::new(Arc::new(crate::store::MemoryStore::new()), noted.clone());
        let kid = "a-TEST.2026-11-21".parse().expect("kid");
        store.private_key(&kid).await.expect_err("no such key");
        assert_eq!(*noted.0.lock().expect("noted"), [("private_key", true)]);
    }

    #[test]
    fn a_store_without_consumer_secrets_gets_none_to_count() {
        let noted: Arc<dyn StoreObserver> = Arc::new(Noted::default());
        let opened = counted(Opened::keys_only(Arc::new(crate::store::MemoryStore::new())), noted);
        assert!(opened.consumers.is_none());
    }
}
