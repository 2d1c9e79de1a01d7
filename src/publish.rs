//! The public outputs: `{set}.jwks.json` and `{set}.maskinporten.json`, derived from records,
//! and the `Publisher` port that puts them where Maskinporten's key set is kept up to date.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jwk::{PublicJwk, maskinporten_array};
use crate::kid::KeySet;
use crate::policy::Policy;
use crate::record::{KeyRecord, Stage};
use crate::store::file::write_atomic;

/// The keys of one key set that Maskinporten must know: current, then pending, then previous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedSet {
    pub key_set: KeySet,
    /// Each public key with its expiry.
    pub keys: Vec<(PublicJwk, DateTime<Utc>)>,
}

impl PublishedSet {
    pub fn from_records(key_set: &KeySet, records: &[KeyRecord], policy: &Policy) -> Self {
        let mut recs: Vec<&KeyRecord> = records.iter().filter(|r| r.stage.is_published()).collect();
        let rank = |s: Stage| match s {
            Stage::Current => 0,
            Stage::Pending => 1,
            _ => 2,
        };
        recs.sort_by(|a, b| rank(a.stage).cmp(&rank(b.stage)).then(b.kid.cmp(&a.kid)));
        PublishedSet {
            key_set: key_set.clone(),
            keys: recs.into_iter().map(|r| (r.public.clone(), r.expires(policy))).collect(),
        }
    }

    /// `{"keys":[...]}` with `kty, kid, alg, use, n, e, exp`, pretty-printed, newline at the end.
    pub fn jwks_json(&self) -> String {
        let keys: Vec<serde_json::Value> =
            self.keys.iter().map(|(k, exp)| k.to_jwks_member(exp.timestamp())).collect();
        let mut out = serde_json::to_string_pretty(&serde_json::json!({ "keys": keys })).unwrap_or_default();
        out.push('\n');
        out
    }

    /// The bare array for Samarbeidsportalen's key field, as altinn-jwks 1.x prints it.
    pub fn maskinporten_json(&self) -> String {
        maskinporten_array(self.keys.iter().map(|(k, _)| k))
    }
}

/// Why publishing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

/// Puts a key set's public keys where they get to Maskinporten.
#[async_trait]
pub trait Publisher: Send + Sync {
    fn describe(&self) -> String;
    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError>;
}

/// Writes the two output files per key set into a directory, atomically, only when changed.
#[derive(Debug, Clone)]
pub struct FilePublisher {
    dir: PathBuf,
}

impl FilePublisher {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FilePublisher { dir: dir.into() }
    }

    pub fn paths(&self, set: &KeySet) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("{set}.jwks.json")), self.dir.join(format!("{set}.maskinporten.json")))
    }

    fn write(&self, path: &Path, content: &str) -> Result<(), PublishError> {
        write_atomic(path, content.as_bytes(), 0o644).map(|_| ()).map_err(|e| {
            PublishError(format!(
                "cannot write {}: {e}; check that [publish] dir is writable by this user",
                path.display()
            ))
        })
    }
}

#[async_trait]
impl Publisher for FilePublisher {
    fn describe(&self) -> String {
        format!("publish directory {}", self.dir.display())
    }

    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| PublishError(format!("cannot create [publish] dir {}: {e}", self.dir.display())))?;
        let (jwks, maskinporten) = self.paths(&set.key_set);
        self.write(&jwks, &set.jwks_json())?;
        self.write(&maskinporten, &set.maskinporten_json())
    }
}

/// Keeps the last set published per key set in memory; for tests.
#[derive(Debug, Default, Clone)]
pub struct MemoryPublisher {
    pub sets: Arc<Mutex<BTreeMap<KeySet, PublishedSet>>>,
}

#[async_trait]
impl Publisher for MemoryPublisher {
    fn describe(&self) -> String {
        "memory publisher".to_owned()
    }

    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError> {
        let mut sets = self.sets.lock().map_err(|_| PublishError("poisoned".to_owned()))?;
        sets.insert(set.key_set.clone(), set.clone());
        Ok(())
    }
}
