//! A publisher that keeps the last set published per key set in memory. Compiled for tests and
//! the `test-support` feature only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{PublishError, PublishedSet, Publisher};
use crate::kid::KeySet;

/// Keeps the last set published per key set in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryPublisher {
    pub sets: Arc<Mutex<BTreeMap<KeySet, PublishedSet>>>,
}

#[async_trait]
impl Publisher for MemoryPublisher {
    fn describe(&self) -> String {
        "memory publisher".to_owned()
    }

    fn registers(&self, _set: &crate::kid::KeySet) -> bool {
        false
    }

    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError> {
        let mut sets = self.sets.lock().map_err(|_| PublishError::Poisoned)?;
        sets.insert(set.key_set.clone(), set.clone());
        Ok(())
    }
}
