//! An in-memory key store, and a wrapper that makes any store fail from the N-th write on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{KeyStore, Loaded, StoreError, StoreLock};
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

/// Keys in a map; for tests and what-if runs.
#[derive(Default, Clone)]
pub struct MemoryStore {
    keys: Arc<Mutex<BTreeMap<Kid, (KeyRecord, PrivateJwk)>>>,
    run: Arc<tokio::sync::Mutex<()>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record, in kid order.
    pub fn records(&self) -> Vec<KeyRecord> {
        self.keys.lock().map(|k| k.values().map(|(r, _)| r.clone()).collect()).unwrap_or_default()
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<Kid, (KeyRecord, PrivateJwk)>) -> T,
    ) -> Result<T, StoreError> {
        let mut keys =
            self.keys.lock().map_err(|_| StoreError::Unavailable("memory store poisoned".to_owned()))?;
        Ok(f(&mut keys))
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    fn describe(&self) -> String {
        "memory store".to_owned()
    }

    async fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError> {
        match tokio::time::timeout(timeout, self.run.clone().lock_owned()).await {
            Ok(guard) => Ok(Box::new(guard)),
            Err(_) => Err(StoreError::Locked("memory store is held by another run".to_owned())),
        }
    }

    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        self.with(|keys| {
            sets.iter()
                .map(|set| {
                    let recs = keys.values().filter(|(r, _)| r.kid.key_set() == set).map(|(r, _)| r.clone());
                    (set.clone(), Ok(recs.collect()))
                })
                .collect()
        })
    }

    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        self.with(|keys| keys.get(kid).map(|(_, k)| k.clone()))?
            .ok_or_else(|| StoreError::NotFound(format!("memory store has no key {kid}")))
    }

    async fn create(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.with(|keys| {
            if keys.contains_key(&record.kid) {
                return Err(StoreError::Exists(format!("{} exists already", record.kid)));
            }
            keys.insert(record.kid.clone(), (record.clone(), key.clone()));
            Ok(())
        })?
    }

    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.with(|keys| match keys.get_mut(&record.kid) {
            Some((r, _)) => {
                *r = record.clone();
                Ok(())
            }
            None => Err(StoreError::NotFound(format!("memory store has no key {}", record.kid))),
        })?
    }

    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.with(|keys| keys.remove(kid)).map(|_| ())
    }
}

/// Passes everything to `inner`, but every write after the first `budget` fails, as if the
/// process had died there. For crash-consistency tests over any store.
pub struct FlakyStore {
    pub inner: Arc<dyn KeyStore>,
    budget: AtomicUsize,
    writes: AtomicUsize,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn KeyStore>, budget: usize) -> Self {
        FlakyStore { inner, budget: AtomicUsize::new(budget), writes: AtomicUsize::new(0) }
    }

    /// Writes attempted so far (failed ones included).
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn spend(&self) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n >= self.budget.load(Ordering::SeqCst) {
            return Err(StoreError::Failed(format!("injected failure at write {}", n + 1)));
        }
        Ok(())
    }
}

#[async_trait]
impl KeyStore for FlakyStore {
    fn describe(&self) -> String {
        format!("flaky {}", self.inner.describe())
    }
    async fn lock(&self, timeout: Duration) -> Result<StoreLock, StoreError> {
        self.inner.lock(timeout).await
    }
    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        self.inner.load(sets).await
    }
    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        self.inner.private_key(kid).await
    }
    async fn create(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.spend()?;
        self.inner.create(record, key).await
    }
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.spend()?;
        self.inner.update(record).await
    }
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.spend()?;
        self.inner.purge(kid).await
    }
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError> {
        self.spend()?;
        self.inner.sync_consumer(current).await
    }
}
