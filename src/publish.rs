//! The public outputs: `{set}.jwks.json` and `{set}.maskinporten.json`, derived from records,
//! and the `Publisher` port that puts them where Maskinporten's key set is kept up to date.
//!
//! The file publisher creates the publish directory and its missing parents `0755` and writes
//! the outputs `0644`, whatever the umask. At the start of each run, under the store's lock,
//! it removes the temp files (`.{set}.jwks.json.{pid}.tmp`) that a killed run left, unless
//! their writer still runs; nothing else in the directory is touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::jwk::{PublicJwk, maskinporten_array};
use crate::kid::KeySet;
use crate::policy::Policy;
use crate::record::{KeyRecord, Stage};
use crate::store::disk;

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

    /// Clears what an interrupted run left behind; called once per run, under the store's lock,
    /// before any key set is worked on.
    async fn tidy(&self) -> Result<(), PublishError> {
        Ok(())
    }
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

    /// Whether `name` is one of this publisher's outputs: `{set}.jwks.json`, `{set}.maskinporten.json`.
    fn is_output(name: &str) -> bool {
        let set = name.strip_suffix(".jwks.json").or_else(|| name.strip_suffix(".maskinporten.json"));
        set.is_some_and(|s| s.parse::<KeySet>().is_ok())
    }

    fn write(&self, path: &Path, content: &str) -> Result<(), PublishError> {
        disk::write_atomic(path, content.as_bytes(), 0o644).map(|_| ()).map_err(|e| {
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
        let created = disk::create_dirs(&self.dir, 0o755).map_err(|e| {
            PublishError(format!(
                "cannot create [publish] dir {}: {e}; create it, or check that its parent is writable by this user",
                self.dir.display()
            ))
        })?;
        for dir in created {
            tracing::info!(dir = %dir.display(), "created the publish directory (0755)");
        }
        let (jwks, maskinporten) = self.paths(&set.key_set);
        self.write(&jwks, &set.jwks_json())?;
        self.write(&maskinporten, &set.maskinporten_json())
    }

    async fn tidy(&self) -> Result<(), PublishError> {
        let removed = disk::remove_stale_temps(&self.dir, Self::is_output, true).map_err(|e| {
            PublishError(format!(
                "cannot remove a temp file that an interrupted run left in [publish] dir {}: {e}; remove it by hand",
                self.dir.display()
            ))
        })?;
        for name in removed {
            tracing::warn!(file = %name, dir = %self.dir.display(), "removed a temp file that an interrupted run left");
        }
        Ok(())
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
