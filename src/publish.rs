//! The public outputs: `{set}.jwks.json` and `{set}.maskinporten.json`, derived from records,
//! and the `Publisher` port that puts them where Maskinporten's key set is kept up to date.
//!
//! The file publisher creates the publish directory and its missing parents `0755` and writes
//! the outputs `0644`, whatever the umask. An existing publish directory that group or others
//! may write (`0777` from an old umask) is set `go-w`, with a warning: whoever can write there
//! can replace the public set that is uploaded to Maskinporten. At the start of each run, under
//! the store's lock, it removes the temp files (`.{set}.jwks.json.{pid}.tmp`) that a killed run
//! left, unless their writer still runs; nothing else in the directory is touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::disk;
use crate::jwk::{PublicJwk, maskinporten_array};
use crate::kid::{KeySet, Kid};
use crate::policy::Policy;
use crate::record::{KeyRecord, Stage};

#[cfg(any(test, feature = "test-support"))]
mod memory;
#[cfg(any(test, feature = "test-support"))]
pub use memory::MemoryPublisher;

/// The keys of one key set that Maskinporten must know: current, then pending, then previous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedSet {
    pub key_set: KeySet,
    /// Each public key with its expiry.
    pub keys: Vec<(PublicJwk, DateTime<Utc>)>,
    /// Every kid the store holds for the key set, published or not: a key registered in
    /// Maskinporten under one of these is this tool's to remove; any other is left alone.
    pub managed: Vec<Kid>,
    /// The run's now (`--at`, `JWK_ROTATOR_NOW`, else the clock): Digdir's API publisher judges
    /// the keys it does not manage expired by it, and caps `exp` from it, as every other decision
    /// of the run (and by the wall clock too, by which Digdir judges an `exp` it is sent).
    pub at: DateTime<Utc>,
}

impl PublishedSet {
    /// The set of `records` as a run at `at` publishes it.
    pub fn from_records(key_set: &KeySet, records: &[KeyRecord], policy: &Policy, at: DateTime<Utc>) -> Self {
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
            managed: records.iter().map(|r| r.kid.clone()).collect(),
            at,
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

/// Why publishing failed: where (the directory or file, the key set and its Maskinporten
/// client), what went wrong, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// `[publish] dir` could not be made.
    #[error(
        "cannot create [publish] dir {}: {cause}; create it, or check that its parent is writable by this user",
        dir.display()
    )]
    CreateDir { dir: PathBuf, cause: String },
    /// `[publish] dir` is writable by others, and that could not be changed.
    #[error(
        "[publish] dir {} is writable by group or others (mode {mode:04o}), so another user could replace the public key set that goes to Maskinporten, and it could not be changed: {cause}; run `chmod go-w {}`",
        dir.display(),
        dir.display()
    )]
    OpenDir { dir: PathBuf, mode: u32, cause: String },
    /// An output file could not be written.
    #[error("cannot write {}: {cause}; check that [publish] dir is writable by this user", path.display())]
    Write { path: PathBuf, cause: String },
    /// A temp file that an interrupted run left could not be removed.
    #[error(
        "cannot remove a temp file that an interrupted run left in [publish] dir {}: {cause}; remove it by hand",
        dir.display()
    )]
    Tidy { dir: PathBuf, cause: String },
    /// A key set that no publisher was set up for.
    #[error("{key_set} has no publisher; this is a bug")]
    NoPublisher { key_set: KeySet },
    /// A key set that is not published through the API was given to the API's publisher.
    #[error("{key_set} is not published through Digdir's self-service API; this is a bug")]
    NotThroughApi { key_set: KeySet },
    /// Digdir's self-service API failed or refused (`cause` is its error).
    #[error("{key_set}: {cause}")]
    Api { key_set: KeySet, cause: String },
    /// Digdir refused the upload because another client holds some of the kids.
    #[error(
        "{key_set}: {cause}. Digdir takes a kid only once across all its customers, and another client holds {}: give the key another kid. A pending key: `jwk-rotator rotate --force {key_set}` makes a new one under a new kid, which supersedes it. A current key (Maskinporten never had it, so nothing signs with it there): `jwk-rotator retire {key_set} KID --force` retires it and makes a new pending key. Kids are CLIENT-ENV.DATE: a client name of your own (with your organisation number in it, say) keeps a new client's kids apart from another organisation's",
        kids.join(", ")
    )]
    KidTaken { key_set: KeySet, cause: String, kids: Vec<String> },
    /// The client would hold more keys than Maskinporten allows; nothing was sent.
    #[error(
        "{key_set} would have {} keys on Maskinporten client {client_id}, and Maskinporten allows {max}: this tool's {} and {} that it does not manage ({}). Nothing was sent. Remove keys that are no longer used in Samarbeidsportalen, or set prune_unmanaged = true for this client to remove the keys it does not manage",
        ours.len() + unmanaged.len(),
        ours.join(", "),
        unmanaged.len(),
        unmanaged.join(", ")
    )]
    TooManyKeys {
        key_set: KeySet,
        client_id: String,
        max: usize,
        /// The kids of this tool's keys.
        ours: Box<[String]>,
        /// The kids of the keys on the client that this tool does not manage.
        unmanaged: Box<[String]>,
    },
    /// The client lacks keys after repeated uploads: someone else changes its keys too.
    #[error(
        "{key_set}: Maskinporten client {client_id} does not hold {} after repeated uploads and read-backs: someone is changing the client's keys at the same time (Samarbeidsportalen or another tool). The keys do not count as published; find out who, then run again",
        lacking.join(", ")
    )]
    NotHeld { key_set: KeySet, client_id: String, lacking: Vec<String> },
    /// A key about to be promoted is no longer registered on the client.
    #[error(
        "{kid} was not promoted: it is not registered on Maskinporten client {client_id} any more (removed in Samarbeidsportalen or by another tool); this run registers it again, and a later run promotes it"
    )]
    Unregistered { kid: Kid, client_id: String },
    /// A test double's lock was poisoned by a panic.
    #[error("poisoned")]
    Poisoned,
}

/// How far two `exp` values of one registered key may be apart and still be the same: a service
/// that keeps `exp` at a coarser resolution (minutes, days) than it was sent. Far below the days
/// that expiry alerts work in (`critical_before` is 7 days by default), so no alert comes late.
pub(crate) const EXP_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// A key whose `exp` comes within this of now is not sent to Maskinporten: Digdir refuses an
/// `exp` that has passed (MP-121 "Expired key" in every grant), an upload takes time, and Digdir's
/// clock differs from ours by seconds; a key that expires in minutes is no use anyway.
pub(crate) const EXPIRY_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Whether two `exp` values (epoch seconds) are the same within [`EXP_TOLERANCE`].
pub(crate) fn same_exp(a: Option<i64>, b: Option<i64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.abs_diff(b) <= EXP_TOLERANCE.num_seconds().unsigned_abs(),
        (None, None) => true,
        _ => false,
    }
}

/// One key as Maskinporten has it registered on a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredKey {
    /// As registered; a key this tool did not make may have any kid.
    pub kid: String,
    /// When Maskinporten stops accepting it (Digdir sets one for every key).
    pub exp: Option<DateTime<Utc>>,
    /// The public JWK as Maskinporten returned it.
    pub jwk: serde_json::Value,
}

/// A client's key set as Maskinporten has it registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The Maskinporten client id.
    pub client_id: String,
    pub keys: Vec<RegisteredKey>,
}

impl Registered {
    pub fn get(&self, kid: &str) -> Option<&RegisteredKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

/// A certificate a publisher signs with (the admin client's business certificate), whose
/// expiry is reported like a key's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateExpiry {
    /// The environment whose admin client uses it.
    pub environment: crate::kid::Environment,
    /// Where it is configured, for messages: `[maskinporten.TEST] admin_certificate = "..."`.
    pub setting: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    /// The key sets published with it.
    pub key_sets: Vec<KeySet>,
}

/// Puts a key set's public keys where they get to Maskinporten.
#[async_trait]
pub trait Publisher: Send + Sync {
    fn describe(&self) -> String;

    /// Puts the set in place. `Ok` means it is there: for Maskinporten's API, that a read-back
    /// holds every key sent, so that the keys count as published.
    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError>;

    /// Whether an `Ok` from [`Publisher::publish`] for `set` means that Maskinporten's API read
    /// the keys back (the `key.registered` event). No request is made for it.
    fn registers(&self, set: &KeySet) -> bool;

    /// What Maskinporten has registered for `set`, when this publisher can tell (`None` when
    /// it does not register the set itself, such as the file outputs).
    async fn registered(&self, _set: &KeySet) -> Option<Result<Registered, PublishError>> {
        None
    }

    /// The certificates this publisher signs with.
    fn certificates(&self) -> Vec<CertificateExpiry> {
        Vec::new()
    }

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

    /// Takes write permission from group and others on the publish directory, with a warning:
    /// whoever may write there can replace the public set that is uploaded to Maskinporten.
    fn tighten_dir(&self) -> Result<(), PublishError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&self.dir).map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o022 == 0 {
            return Ok(());
        }
        let tight = std::fs::Permissions::from_mode(mode & 0o7755);
        std::fs::set_permissions(&self.dir, tight).map_err(|e| PublishError::OpenDir {
            dir: self.dir.clone(),
            mode: mode & 0o7777,
            cause: e.to_string(),
        })?;
        tracing::warn!(
            dir = %self.dir.display(),
            mode = %format!("{:04o}", mode & 0o7777),
            "the publish directory was writable by group or others, who could have replaced a public set in it; write permission taken from them (go-w), and every output this tool writes there is rewritten from the store"
        );
        Ok(())
    }

    fn write(&self, path: &Path, content: &str) -> Result<(), PublishError> {
        disk::write_atomic(path, content.as_bytes(), 0o644)
            .map(|_| ())
            .map_err(|e| PublishError::Write { path: path.to_path_buf(), cause: e.to_string() })
    }
}

#[async_trait]
impl Publisher for FilePublisher {
    fn describe(&self) -> String {
        format!("publish directory {}", self.dir.display())
    }

    fn registers(&self, _set: &KeySet) -> bool {
        false
    }

    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError> {
        let created = disk::create_dirs(&self.dir, 0o755)
            .map_err(|e| PublishError::CreateDir { dir: self.dir.clone(), cause: e.to_string() })?;
        for dir in created {
            tracing::info!(dir = %dir.display(), "created the publish directory (0755)");
        }
        self.tighten_dir()?;
        let (jwks, maskinporten) = self.paths(&set.key_set);
        self.write(&jwks, &set.jwks_json())?;
        self.write(&maskinporten, &set.maskinporten_json())
    }

    async fn tidy(&self) -> Result<(), PublishError> {
        let removed = disk::remove_stale_temps(&self.dir, Self::is_output, true)
            .map_err(|e| PublishError::Tidy { dir: self.dir.clone(), cause: e.to_string() })?;
        for name in removed {
            tracing::warn!(file = %name, dir = %self.dir.display(), "removed a temp file that an interrupted run left");
        }
        Ok(())
    }
}

/// Each key set's publishers, in order: the files first, so that an operator has them even when
/// Digdir's API is down. A key set counts as published only when every one of its publishers
/// succeeded.
#[derive(Clone, Default)]
pub(crate) struct Routed {
    routes: BTreeMap<KeySet, Vec<Arc<dyn Publisher>>>,
    /// Every distinct publisher, for `tidy`.
    all: Vec<Arc<dyn Publisher>>,
}

impl Routed {
    pub(crate) fn new() -> Self {
        Routed::default()
    }

    /// Adds `publisher` to `set`'s route; a publisher shared by several key sets is added once
    /// to the list that `tidy` walks (compared by address).
    pub(crate) fn route(&mut self, set: KeySet, publisher: Arc<dyn Publisher>) {
        if !self.all.iter().any(|p| Arc::ptr_eq(p, &publisher)) {
            self.all.push(publisher.clone());
        }
        self.routes.entry(set).or_default().push(publisher);
    }
}

#[async_trait]
impl Publisher for Routed {
    fn describe(&self) -> String {
        let names: Vec<String> = self.all.iter().map(|p| p.describe()).collect();
        names.join(" and ")
    }

    async fn publish(&self, set: &PublishedSet) -> Result<(), PublishError> {
        let Some(route) = self.routes.get(&set.key_set) else {
            return Err(PublishError::NoPublisher { key_set: set.key_set.clone() });
        };
        for publisher in route {
            publisher.publish(set).await?;
        }
        Ok(())
    }

    fn registers(&self, set: &KeySet) -> bool {
        self.routes.get(set).is_some_and(|route| route.iter().any(|p| p.registers(set)))
    }

    async fn registered(&self, set: &KeySet) -> Option<Result<Registered, PublishError>> {
        for publisher in self.routes.get(set)? {
            if let Some(found) = publisher.registered(set).await {
                return Some(found);
            }
        }
        None
    }

    fn certificates(&self) -> Vec<CertificateExpiry> {
        self.all.iter().flat_map(|p| p.certificates()).collect()
    }

    async fn tidy(&self) -> Result<(), PublishError> {
        for publisher in &self.all {
            publisher.tidy().await?;
        }
        Ok(())
    }
}
