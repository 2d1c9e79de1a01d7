//! Consumer secrets: the one secret per key set that applications read their signing key from
//! (Key Vault only). A port of its own, apart from the key records: a store without them (the
//! file store) does not implement it, and the engine then holds none.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::StoreError;
use crate::kid::{KeySet, Kid};
use crate::record::KeyRecord;

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
    pub(crate) fn holds_a_key(&self) -> bool {
        !matches!(self, Consumer::Empty)
    }
}

/// For each key set with a consumer secret, what that secret holds.
pub(crate) type Consumers = BTreeMap<KeySet, Consumer>;

/// The secrets that applications read the current key from. Object-safe; held as
/// `Arc<dyn ConsumerSecrets>` beside the store's [`super::KeyStore`], over the same store.
#[async_trait]
pub trait ConsumerSecrets: Send + Sync {
    /// Makes `current` the key that applications of its key set read, writing only if they
    /// read another one; nothing to do for a key set without a consumer secret. Called when a
    /// key is promoted and after every run, so that an interrupted promotion is finished.
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError>;

    /// What the consumer secret of `set` held at the store's last load: `None` for a key set
    /// without one.
    fn consumer(&self, set: &KeySet) -> Option<Consumer>;
}

/// What the consumer secrets of `sets` held at the store's last load; nothing for a store
/// without consumer secrets.
pub(crate) fn consumers(secrets: Option<&dyn ConsumerSecrets>, sets: &[KeySet]) -> Consumers {
    let Some(secrets) = secrets else { return Consumers::new() };
    sets.iter().filter_map(|s| secrets.consumer(s).map(|held| (s.clone(), held))).collect()
}
