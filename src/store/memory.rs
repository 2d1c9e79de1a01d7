//! An in-memory store of key records and, for the key sets given one, consumer secrets; for
//! tests and what-if runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{Consumer, ConsumerSecrets, KeyStore, Loaded, Place, StoreError, StoreLock};
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

/// Keys in a map. Clones share the keys.
#[derive(Default, Clone)]
pub struct MemoryStore {
    keys: Arc<Mutex<BTreeMap<Kid, (KeyRecord, PrivateJwk)>>>,
    /// The consumer secrets, for the key sets that have one.
    consumers: Arc<Mutex<BTreeMap<KeySet, Consumer>>>,
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

    /// Gives `set` a consumer secret that holds `held` (as applications would find it).
    pub(crate) fn set_consumer(&self, set: &KeySet, held: Consumer) {
        if let Ok(mut consumers) = self.consumers.lock() {
            consumers.insert(set.clone(), held);
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<Kid, (KeyRecord, PrivateJwk)>) -> T,
    ) -> Result<T, StoreError> {
        let mut keys = self.keys.lock().map_err(|_| StoreError::Unavailable {
            place: Place::Store(self.describe()),
            message: "memory store poisoned".to_owned(),
        })?;
        Ok(f(&mut keys))
    }

    fn missing(kid: &Kid) -> StoreError {
        StoreError::NotFound {
            place: Place::Key(kid.clone()),
            message: format!("memory store has no key {kid}"),
        }
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
            Err(_) => Err(StoreError::Locked {
                place: Place::Store(self.describe()),
                message: "memory store is held by another run".to_owned(),
            }),
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
        self.with(|keys| keys.get(kid).map(|(_, k)| k.clone()))?.ok_or_else(|| Self::missing(kid))
    }

    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.with(|keys| {
            if keys.contains_key(&record.kid) {
                let message = format!("{} exists already", record.kid);
                return Err(StoreError::Exists { place: Place::Key(record.kid.clone()), message });
            }
            keys.insert(record.kid.clone(), (record.clone(), key.clone()));
            Ok(())
        })?
    }

    /// The lock keeps other runs out, and `write_new` never replaces a key: a written key is
    /// confirmed already.
    async fn confirm_new(&self, _record: &KeyRecord) -> Result<(), StoreError> {
        Ok(())
    }

    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.with(|keys| match keys.get_mut(&record.kid) {
            Some((r, _)) => {
                *r = record.clone();
                Ok(())
            }
            None => Err(Self::missing(&record.kid)),
        })?
    }

    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.with(|keys| keys.remove(kid)).map(|_| ())
    }
}

#[async_trait]
impl ConsumerSecrets for MemoryStore {
    /// Writes `current` into its key set's consumer secret, if the key set has one and the
    /// store holds that key.
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError> {
        let set = current.kid.key_set();
        if self.consumer(set).is_none() {
            return Ok(());
        }
        self.private_key(&current.kid).await?;
        self.set_consumer(set, Consumer::Kid(current.kid.clone()));
        Ok(())
    }

    fn consumer(&self, set: &KeySet) -> Option<Consumer> {
        self.consumers.lock().ok()?.get(set).cloned()
    }
}
