//! Wrappers that make any store fail from the N-th write on, as if the process had died there:
//! for crash-consistency tests. The key records and the consumer secrets share one budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Consumer, ConsumerSecrets, KeyStore, Loaded, Opened, Place, StoreError, StoreLock};
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

/// Writes allowed, and writes attempted so far.
struct Budget {
    allowed: usize,
    writes: AtomicUsize,
}

impl Budget {
    /// One write, about `kid`; fails once the budget is spent.
    fn spend(&self, kid: &Kid) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if n >= self.allowed {
            let message = format!("injected failure at write {}", n + 1);
            return Err(StoreError::Failed { place: Place::Key(kid.clone()), message });
        }
        Ok(())
    }
}

/// Passes everything to `inner`, but every write (`write_new`, `confirm_new`, `update`,
/// `purge`, and `sync_consumer` through [`FlakyStore::consumers`]) after the first `budget`
/// fails.
pub struct FlakyStore {
    pub inner: Arc<dyn KeyStore>,
    budget: Arc<Budget>,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn KeyStore>, budget: usize) -> Self {
        FlakyStore { inner, budget: Arc::new(Budget { allowed: budget, writes: AtomicUsize::new(0) }) }
    }

    /// `opened` made flaky: its key records and consumer secrets (if any) spend one budget.
    pub fn opened(opened: &Opened, budget: usize) -> (Arc<FlakyStore>, Opened) {
        let keys = Arc::new(FlakyStore::new(opened.keys.clone(), budget));
        let consumers =
            opened.consumers.clone().map(|c| -> Arc<dyn ConsumerSecrets> { Arc::new(keys.consumers(c)) });
        (keys.clone(), Opened { keys, consumers })
    }

    /// `inner` failing on the same budget as this store.
    pub(crate) fn consumers(&self, inner: Arc<dyn ConsumerSecrets>) -> FlakyConsumers {
        FlakyConsumers { inner, budget: self.budget.clone() }
    }

    /// Writes attempted so far (failed ones included).
    pub fn writes(&self) -> usize {
        self.budget.writes.load(Ordering::SeqCst)
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
    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.budget.spend(&record.kid)?;
        self.inner.write_new(record, key).await
    }
    async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.budget.spend(&record.kid)?;
        self.inner.confirm_new(record).await
    }
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.budget.spend(&record.kid)?;
        self.inner.update(record).await
    }
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.budget.spend(kid)?;
        self.inner.purge(kid).await
    }
}

/// Consumer secrets that fail once their [`FlakyStore`]'s budget is spent.
pub(crate) struct FlakyConsumers {
    pub inner: Arc<dyn ConsumerSecrets>,
    budget: Arc<Budget>,
}

#[async_trait]
impl ConsumerSecrets for FlakyConsumers {
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError> {
        self.budget.spend(&current.kid)?;
        self.inner.sync_consumer(current).await
    }
    fn consumer(&self, set: &KeySet) -> Option<Consumer> {
        self.inner.consumer(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::recording::{Recording, call_every_method, every_method};
    use crate::testing::{at, fixture_key};

    #[tokio::test]
    async fn flaky_ports_within_their_budget_pass_every_method_on() {
        let recording = Recording::new();
        let (flaky, opened) = FlakyStore::opened(&recording.opened(), 100);
        call_every_method(&opened, &fixture_key("a-TEST.2026-11-21"), at("2026-11-21T06:00:00Z")).await;
        assert_eq!(recording.calls(), every_method(&opened));
        assert_eq!(every_method(&opened).len(), 10);
        // write_new, confirm_new, update, sync_consumer and purge are writes.
        assert_eq!(flaky.writes(), 5);
    }

    #[tokio::test]
    async fn the_records_and_the_consumer_secrets_spend_one_budget() {
        let recording = Recording::new();
        let (flaky, opened) = FlakyStore::opened(&recording.opened(), 2);
        let key = fixture_key("a-TEST.2026-11-21");
        let record =
            KeyRecord::new(key.public().clone(), crate::record::Stage::Current, at("2026-11-21T06:00:00Z"));
        opened.keys.write_new(&record, &key).await.expect("first write");
        opened.keys.confirm_new(&record).await.expect("second write");
        let consumers = opened.consumers.expect("consumer secrets");
        let e = consumers.sync_consumer(&record).await.expect_err("third write");
        assert_eq!(e.to_string(), "injected failure at write 3");
        opened.keys.update(&record).await.expect_err("fourth write");
        assert_eq!(flaky.writes(), 4);
        assert_eq!(recording.calls(), ["confirm_new", "write_new"].into_iter().collect());
    }
}
