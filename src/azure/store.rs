//! The Key Vault store: one secret per kid, the record in its tags, the private JWK as its
//! value, and the consumer secret that applications read.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::layout::{self, Tags, kid_of_name, record_of, secret_name, tag, tags_of};
use super::vault::{NewVersion, Vault};
use super::versions::{Resolved, Version, latest_is_doubtful, resolve};
use crate::config::azure::AzureConfig;
use crate::jwk::PrivateJwk;
use crate::kid::{KeySet, Kid};
use crate::policy::Policy;
use crate::record::{KeyRecord, Stage, expiry};
use crate::store::{Consumer, ConsumerSecrets, KeyStore, Loaded, Place, StoreError, StoreLock};

/// Version listings run at once while loading.
const CONCURRENT: usize = 8;

/// What the store knows about a configured key set.
#[derive(Debug, Clone)]
pub(crate) struct SetInfo {
    pub policy: Policy,
    /// The consumer secret's name, if the client has one.
    pub consumer: Option<String>,
    /// The shape its value is written in (`consumer_format`).
    pub shape: crate::consumer::ConsumerShape,
}

/// What the last reads showed, so that a no-op run makes no calls beyond the listing.
#[derive(Default)]
struct State {
    /// Key secret names per key set.
    names: HashMap<KeySet, BTreeSet<String>>,
    /// Consumer secret (lower-case name) -> what its latest version holds.
    consumers: HashMap<String, Consumer>,
    /// Consumer secrets (lower-case names) whose latest version is in another shape than the
    /// configured one (`consumer_format`, client id or authority changed): written again.
    reshape: HashSet<String>,
    /// Key sets written since the run began: a reload reads their secrets directly.
    written: HashSet<KeySet>,
    /// Secret (lower-case name) -> its winning version as the vault last showed it in this run,
    /// once no racing version is left to disable: later steps of the run need not list the
    /// versions again. Emptied when a run begins.
    known: HashMap<String, Version>,
    /// New keys written but not yet confirmed: our version id and when it was written.
    unconfirmed: HashMap<Kid, (String, tokio::time::Instant)>,
}

/// Keys as Key Vault secrets.
pub struct VaultStore {
    vault: Vault,
    prefix: String,
    purge: bool,
    /// How long a purge waits after a 409 before trying again (doubling).
    purge_wait: Duration,
    /// How long `create` waits before it checks for racing writers (see `AzureConfig::settle`).
    settle: Duration,
    sets: HashMap<KeySet, SetInfo>,
    state: Mutex<State>,
}

impl VaultStore {
    /// A store over `vault` for these key sets (names checked by the caller).
    pub(crate) fn new(vault: Vault, config: &AzureConfig, sets: HashMap<KeySet, SetInfo>) -> Self {
        let std = crate::policy::Span::to_std;
        VaultStore {
            vault,
            prefix: config.secret_prefix.clone(),
            purge: config.purge,
            purge_wait: std(config.retry.initial_delay),
            settle: std(config.settle),
            sets,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves only a cache behind; keep using it.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn name(&self, kid: &Kid) -> Result<String, StoreError> {
        secret_name(&self.prefix, kid)
            .map_err(|e| StoreError::Failed { place: Place::vault(self.vault.url()), message: e.to_string() })
    }

    fn corrupt(&self, name: &str, what: &str) -> StoreError {
        let message = format!(
            "secret {name} in Key Vault {} {what}; fix or delete that secret (its key set is left alone until then)",
            self.vault.url()
        );
        StoreError::corrupt(Place::secret(self.vault.url(), name), message)
    }

    fn expires(&self, kid: &Kid) -> chrono::DateTime<chrono::Utc> {
        let policy = self.sets.get(kid.key_set()).map(|s| s.policy.clone()).unwrap_or_default();
        expiry(kid, &policy)
    }

    /// The key set info of the consumer secret `name`, if it is one.
    fn consumer_info(&self, name: &str) -> Option<&SetInfo> {
        self.sets.values().find(|s| s.consumer.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(name)))
    }

    fn note_written(&self, kid: &Kid, name: &str) {
        let mut state = self.state();
        state.written.insert(kid.key_set().clone());
        state.names.entry(kid.key_set().clone()).or_default().insert(name.to_owned());
    }

    /// The versions of a key's secret and which one counts: from what this run saw already
    /// when that leaves nothing to disable, else from the vault.
    async fn resolved(&self, name: &str) -> Result<Option<Resolved>, StoreError> {
        let known = self.state().known.get(&name.to_ascii_lowercase()).cloned();
        match known {
            Some(winner) => Ok(Some(Resolved { winner, to_disable: Vec::new() })),
            None => self.listed(name).await,
        }
    }

    /// The versions of a key's secret as the vault lists them now.
    async fn listed(&self, name: &str) -> Result<Option<Resolved>, StoreError> {
        let resolved = resolve(self.vault.versions(name).await?);
        if let Some(r) = resolved.as_ref().filter(|r| r.to_disable.is_empty()) {
            self.remember(name, r.winner.clone());
        }
        Ok(resolved)
    }

    fn remember(&self, name: &str, winner: Version) {
        self.state().known.insert(name.to_ascii_lowercase(), winner);
    }

    /// Disables and marks the versions that lost a race.
    async fn disable_losers(&self, kid: &Kid, resolved: &Resolved) -> Result<(), StoreError> {
        for loser in &resolved.to_disable {
            tracing::warn!(%kid, version = %loser.id, winner = %resolved.winner.id, "disabling a duplicate version written by a racing run");
            let tags = layout::duplicate_tags(kid, &resolved.winner.id);
            self.vault.patch(&loser.name, &loser.id, tags, false, None).await?;
        }
        if !resolved.to_disable.is_empty() {
            self.remember(&resolved.winner.name, resolved.winner.clone());
        }
        Ok(())
    }

    /// A key's record from all versions of its secret.
    async fn record_by_versions(&self, kid: &Kid, name: &str) -> Result<Option<KeyRecord>, StoreError> {
        let Some(resolved) = self.resolved(name).await? else { return Ok(None) };
        self.record_from(kid, &resolved.winner).map(Some)
    }

    /// A key's record from the version that counts. A record that an older version of this
    /// tool wrote has no `written` tag: the version's `updated` (Key Vault's own clock) is when
    /// it was last written, and stands in for it.
    fn record_from(&self, kid: &Kid, version: &Version) -> Result<KeyRecord, StoreError> {
        let mut record =
            record_of(kid, &version.tags).map_err(|m| self.corrupt(&version.name, &m.to_string()))?;
        if record.written.is_none() {
            record.written =
                chrono::DateTime::from_timestamp(version.updated, 0).filter(|_| version.updated > 0);
        }
        Ok(record)
    }

    /// Every requested set from one paged listing of the vault.
    async fn load_listing(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        let listed = self.vault.list().await?;
        let mut loaded: Loaded = sets.iter().map(|s| (s.clone(), Ok(Vec::new()))).collect();
        let mut names: HashMap<KeySet, BTreeSet<String>> = HashMap::new();
        let mut consumers = HashMap::new();
        let mut reshape = HashSet::new();
        let mut doubtful = Vec::new();
        for item in listed {
            if let Some(info) = self.consumer_info(&item.name) {
                if !info.shape.written_as(&item.tags) {
                    reshape.insert(item.name.to_ascii_lowercase());
                }
                let kid = item.tags.get(tag::KID).and_then(|k| k.parse().ok());
                let held = match kid {
                    _ if !item.enabled => Consumer::Empty,
                    Some(kid) => Consumer::Kid(kid),
                    None => Consumer::Foreign,
                };
                consumers.insert(item.name.to_ascii_lowercase(), held);
                continue;
            }
            let Some(kid) = kid_of_name(&self.prefix, &item.name) else {
                if item.name.to_ascii_lowercase().starts_with(&self.prefix.to_ascii_lowercase()) {
                    tracing::warn!(secret = %item.name, "secret has the key prefix but its name is not a kid; ignored");
                }
                continue;
            };
            names.entry(kid.key_set().clone()).or_default().insert(item.name.clone());
            if !matches!(loaded.get(kid.key_set()), Some(Ok(_))) {
                continue;
            }
            if latest_is_doubtful(item.enabled, &item.tags) {
                doubtful.push((kid, item.name));
            } else {
                let record = self.record_from(&kid, &item).map(Some);
                add(&mut loaded, kid.key_set(), record);
            }
        }
        {
            let mut state = self.state();
            state.names = names;
            state.consumers = consumers;
            state.reshape = reshape;
        }
        self.add_by_versions(doubtful, &mut loaded).await;
        Ok(sorted(loaded))
    }

    /// A set this run wrote to, from the versions of its known secrets (no full listing).
    async fn load_written(&self, sets: &[KeySet]) -> Loaded {
        let mut loaded: Loaded = sets.iter().map(|s| (s.clone(), Ok(Vec::new()))).collect();
        let wanted: Vec<(Kid, String)> = {
            let state = self.state();
            sets.iter()
                .flat_map(|s| state.names.get(s).into_iter().flatten())
                .filter_map(|name| kid_of_name(&self.prefix, name).map(|kid| (kid, name.clone())))
                .collect()
        };
        self.add_by_versions(wanted, &mut loaded).await;
        sorted(loaded)
    }

    /// Reads these keys' records from their versions, several at once, into `loaded`.
    async fn add_by_versions(&self, keys: Vec<(Kid, String)>, loaded: &mut Loaded) {
        let found: Vec<_> = futures::stream::iter(keys)
            .map(|(kid, name)| async move {
                let record = self.record_by_versions(&kid, &name).await;
                (kid, record)
            })
            .buffer_unordered(CONCURRENT)
            .collect()
            .await;
        for (kid, record) in found {
            add(loaded, kid.key_set(), record);
        }
    }

    /// Disables older consumer secret versions that hold a retired key (never the latest).
    async fn disable_consumer_copies(&self, kid: &Kid) -> Result<(), StoreError> {
        let Some(name) = self.sets.get(kid.key_set()).and_then(|s| s.consumer.clone()) else { return Ok(()) };
        let wanted = kid.to_string();
        let versions = self.vault.versions(&name).await?;
        let copies: Vec<_> =
            versions.into_iter().filter(|v| v.enabled && v.tags.get(tag::KID) == Some(&wanted)).collect();
        if copies.is_empty() {
            return Ok(());
        }
        // Only the latest version tells which one it is; if it can not be read, leave all.
        let Some(latest) = self.vault.latest_version(&name).await? else { return Ok(()) };
        for v in copies.iter().filter(|v| v.id != latest) {
            self.vault.patch(&name, &v.id, v.tags.clone(), false, None).await?;
        }
        Ok(())
    }
}

fn add(loaded: &mut Loaded, set: &KeySet, record: Result<Option<KeyRecord>, StoreError>) {
    match (loaded.get_mut(set), record) {
        (Some(Ok(records)), Ok(Some(r))) => records.push(r),
        (Some(Ok(_)), Err(e)) => {
            loaded.insert(set.clone(), Err(e));
        }
        _ => {}
    }
}

fn sorted(mut loaded: Loaded) -> Loaded {
    for records in loaded.values_mut().flatten() {
        records.sort_by(|a, b| a.kid.cmp(&b.kid));
    }
    loaded
}

#[async_trait]
impl KeyStore for VaultStore {
    fn describe(&self) -> String {
        format!("Azure Key Vault {} (secrets {}*)", self.vault.url(), self.prefix)
    }

    /// Key Vault has no lock; racing runs converge instead (see `versions`). A new run
    /// forgets which sets the last one wrote.
    async fn lock(&self, _timeout: Duration) -> Result<StoreLock, StoreError> {
        {
            let mut state = self.state();
            state.written.clear();
            state.known.clear();
        }
        Ok(Box::new(()))
    }

    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        // The engine reloads one key set after writing to it: read that set's secrets directly
        // instead of listing the whole vault again. Anything else is a fresh listing.
        let reload = match sets {
            [set] => self.state().written.contains(set),
            _ => false,
        };
        if reload { Ok(self.load_written(sets).await) } else { self.load_listing(sets).await }
    }

    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        let name = self.name(kid)?;
        let resolved = self.resolved(&name).await?.ok_or_else(|| StoreError::NotFound {
            place: Place::secret(self.vault.url(), &name),
            message: format!("Key Vault {} has no secret {name} for {kid}", self.vault.url()),
        })?;
        let record =
            record_of(kid, &resolved.winner.tags).map_err(|m| self.corrupt(&name, &m.to_string()))?;
        let value = self.vault.value(&name, &resolved.winner.id).await?;
        let key = PrivateJwk::from_base64(&value).map_err(|e| {
            self.corrupt(&name, &format!("has a value that is not a base64 private JWK ({e})"))
        })?;
        if key.public() != &record.public {
            return Err(
                self.corrupt(&name, "holds a private key whose kid or public half does not match its tags")
            );
        }
        // Before a key is handed to applications, aws-lc checks that its members agree.
        key.to_key_pair()
            .map_err(|e| self.corrupt(&name, &format!("holds a private key that is not valid ({e})")))?;
        Ok(key)
    }

    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        let name = self.name(&record.kid)?;
        self.note_written(&record.kid, &name);
        let value = key.to_base64();
        let new = NewVersion {
            value: &value,
            content_type: layout::CONTENT_TYPE,
            tags: tags_of(record),
            expires: self.expires(&record.kid),
            not_before: Some(record.created),
        };
        let ours = self.vault.put(&name, new).await?;
        self.state().unconfirmed.insert(record.kid.clone(), (ours, tokio::time::Instant::now()));
        Ok(())
    }

    async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let name = self.name(&record.kid)?;
        let Some((ours, written)) = self.state().unconfirmed.remove(&record.kid) else {
            return Err(StoreError::Failed {
                place: Place::secret(self.vault.url(), &name),
                message: format!(
                    "{} was not written by this run, so it can not be confirmed; this is a bug, please report it",
                    record.kid
                ),
            });
        };
        // Another run may have written this kid too: the oldest version wins. Versions are
        // stamped in whole seconds, so wait until no later write can tie with ours, then look.
        // The wait counts from our write: a run that wrote many keys waits once in all.
        tokio::time::sleep_until(written + self.settle).await;
        let resolved = self.listed(&name).await?.ok_or_else(|| StoreError::Failed {
            place: Place::secret(self.vault.url(), &name),
            message: format!("secret {name} vanished right after it was written; run again"),
        })?;
        self.disable_losers(&record.kid, &resolved).await?;
        if resolved.winner.id != ours {
            return Err(StoreError::Exists {
                place: Place::secret(self.vault.url(), &name),
                message: format!(
                    "{} exists already in Key Vault {} (secret {name}, written by another run): that version was kept and ours disabled",
                    record.kid,
                    self.vault.url()
                ),
            });
        }
        Ok(())
    }

    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let name = self.name(&record.kid)?;
        let resolved = self.resolved(&name).await?.ok_or_else(|| StoreError::NotFound {
            place: Place::secret(self.vault.url(), &name),
            message: format!("Key Vault {} has no secret {name} for {}", self.vault.url(), record.kid),
        })?;
        self.note_written(&record.kid, &name);
        let enabled = record.stage != Stage::Retired;
        let dates = Some((self.expires(&record.kid), record.created));
        let tags = tags_of(record);
        self.vault.patch(&name, &resolved.winner.id, tags.clone(), enabled, dates).await?;
        self.disable_losers(&record.kid, &resolved).await?;
        // The vault took the new tags and state: that is what the version holds now.
        self.remember(&name, Version { tags, enabled, ..resolved.winner });
        if record.stage == Stage::Retired {
            self.disable_consumer_copies(&record.kid).await?;
        }
        Ok(())
    }

    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        let name = self.name(kid)?;
        self.note_written(kid, &name);
        self.vault.delete(&name).await?;
        {
            let mut state = self.state();
            state.known.remove(&name.to_ascii_lowercase());
            if let Some(names) = state.names.get_mut(kid.key_set()) {
                names.remove(&name);
            }
        }
        if self.purge {
            self.vault.purge(&name, 6, self.purge_wait).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ConsumerSecrets for VaultStore {
    async fn sync_consumer(&self, current: &KeyRecord) -> Result<(), StoreError> {
        let Some(info) = self.sets.get(current.kid.key_set()) else { return Ok(()) };
        let Some(name) = info.consumer.clone() else { return Ok(()) };
        let lower = name.to_ascii_lowercase();
        let (holds, reshape) = {
            let state = self.state();
            (state.consumers.get(&lower).cloned(), state.reshape.contains(&lower))
        };
        if holds.as_ref().and_then(Consumer::kid) == Some(&current.kid) && !reshape {
            return Ok(());
        }
        let key = self.private_key(&current.kid).await?;
        if key.public() != &current.public {
            return Err(StoreError::Failed {
                place: Place::Key(current.kid.clone()),
                message: format!(
                    "{} in Key Vault {} is not the key this run loaded; run again",
                    current.kid,
                    self.vault.url()
                ),
            });
        }
        let tags: Tags = [
            (tag::MANAGED_BY, layout::MANAGED_BY.to_owned()),
            (tag::KID, current.kid.to_string()),
            (tag::KEY_SET, current.kid.key_set().to_string()),
        ]
        .into_iter()
        .chain(info.shape.tags())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let value = info.shape.render(&key);
        let new = NewVersion {
            value: &value,
            content_type: info.shape.content_type(),
            tags,
            expires: self.expires(&current.kid),
            not_before: None,
        };
        self.vault.put(&name, new).await?;
        let format = info.shape.name().as_str();
        tracing::info!(secret = %name, kid = %current.kid, format, "consumer secret now holds the current key");
        let mut state = self.state();
        state.consumers.insert(lower.clone(), Consumer::Kid(current.kid.clone()));
        state.reshape.remove(&lower);
        Ok(())
    }

    fn consumer(&self, set: &KeySet) -> Option<Consumer> {
        let name = self.sets.get(set)?.consumer.as_ref()?.to_ascii_lowercase();
        Some(self.state().consumers.get(&name).cloned().unwrap_or(Consumer::Empty))
    }
}
