//! A store that notes which of its methods were called, over a memory store: it shows that a
//! wrapper passes every method of the store ports on, rather than answering for its inner store.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{Consumer, ConsumerSecrets, KeyStore, Loaded, MemoryStore, Opened, StoreError, StoreLock};
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::{KeyRecord, Stage};

/// Every method of [`KeyStore`], by name.
pub(crate) const KEY_STORE_METHODS: [&str; 8] =
    ["describe", "lock", "load", "private_key", "write_new", "confirm_new", "update", "purge"];

/// Every method of [`ConsumerSecrets`], by name.
pub(crate) const CONSUMER_METHODS: [&str; 2] = ["sync_consumer", "consumer"];

/// A memory store whose key sets all have a consumer secret, noting each method called.
#[derive(Default)]
pub struct Recording {
    inner: MemoryStore,
    calls: Mutex<BTreeSet<&'static str>>,
}

impl Recording {
    pub fn new() -> Arc<Self> {
        Arc::new(Recording::default())
    }

    /// Both ports over this one store.
    pub fn opened(self: &Arc<Self>) -> Opened {
        Opened::with_consumers(self.clone())
    }

    /// The methods called so far.
    pub fn calls(&self) -> BTreeSet<&'static str> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn note(&self, method: &'static str) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(method);
        }
    }
}

#[async_trait]
impl KeyStore for Recording {
    fn describe(&self) -> String {
        self.note("describe");
        self.inner.describe()
    }
    async fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError> {
        self.note("lock");
        self.inner.lock(timeout).await
    }
    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        self.note("load");
        self.inner.load(sets).await
    }
    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        self.note("private_key");
        self.inner.private_key(kid).await
    }
    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.note("write_new");
        self.inner.write_new(record, key).await?;
        let set = record.kid.key_set();
        if self.inner.consumer(set).is_none() {
            self.inner.set_consumer(set, Consumer::Empty);
        }
        Ok(())
    }
    async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.note("confirm_new");
        self.inner.confirm_new(record).await
    }
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.note("update");
        self.inner.update(record).await
    }
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.note("purge");
        self.inner.purge(kid).await
    }
}

#[async_trait]
impl ConsumerSecrets for Recording {
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError> {
        self.note("sync_consumer");
        self.inner.sync_consumer(current).await
    }
    fn consumer(&self, set: &KeySet) -> Option<Consumer> {
        self.note("consumer");
        self.inner.consumer(set)
    }
}

/// Calls every method of `opened`'s ports once, with `key` as a new current key, and checks
/// that each answered as a store holding it would. The methods of a [`Recording`] store under
/// `opened` are then all noted, if every wrapper in between passed them on.
pub async fn call_every_method(opened: &Opened, key: &PrivateJwk, now: chrono::DateTime<chrono::Utc>) {
    let (keys, kid) = (opened.keys.as_ref(), key.kid().clone());
    let set = kid.key_set().clone();
    let record = KeyRecord::new(key.public().clone(), Stage::Current, now);
    assert!(!keys.describe().is_empty());
    let lock = keys.lock(Duration::from_secs(1)).await.expect("lock");
    keys.write_new(&record, key).await.expect("write_new");
    keys.confirm_new(&record).await.expect("confirm_new");
    assert_eq!(keys.private_key(&kid).await.expect("private_key"), *key);
    let mut updated = record.clone();
    updated.stage = Stage::Previous;
    keys.update(&updated).await.expect("update");
    if let Some(consumers) = &opened.consumers {
        consumers.sync_consumer(&record).await.expect("sync_consumer");
        assert_eq!(consumers.consumer(&set), Some(Consumer::Kid(kid.clone())));
    }
    let loaded = keys.load(std::slice::from_ref(&set)).await.expect("load");
    assert_eq!(super::records_in(&loaded, &set).expect("records"), [updated]);
    keys.purge(&kid).await.expect("purge");
    drop(lock);
}

/// The methods that [`call_every_method`] reaches through `opened`: those of [`KeyStore`],
/// and of [`ConsumerSecrets`] when `opened` has consumer secrets.
pub fn every_method(opened: &Opened) -> BTreeSet<&'static str> {
    let consumers = if opened.consumers.is_some() { &CONSUMER_METHODS[..] } else { &[] };
    KEY_STORE_METHODS.iter().chain(consumers).copied().collect()
}
