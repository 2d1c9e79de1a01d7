//! `import altinn-jwks`: adopt the keys that altinn-jwks made (1.x and 2.0, directory and Key
//! Vault) into this tool's store, so that the next rotation simply takes over. It reads the
//! source, plans every key set, writes only clean ones, and never changes the source.

/// Why an import could not read its source or write a key set; each names the directory,
/// vault or key set, and what to do. A `cause` is shown in the message (it is not a
/// [`std::error::Error::source`], which would show it twice).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// `--from` is neither a directory nor a Key Vault URL.
    #[error("--from {from} is not a directory or an https Key Vault URL")]
    NotASource { from: String },
    /// The directory `--from` names could not be listed.
    #[error("--from {}: cannot list it: {cause}; give the directory altinn-jwks wrote to", from.display())]
    Unlisted { from: PathBuf, cause: String },
    /// Listing the directory `--from` names failed part way.
    #[error("--from {}: cannot list it: {cause}", from.display())]
    ListingFailed { from: PathBuf, cause: String },
    /// The vault `--from` names could not be listed.
    #[error("--from {url}: {cause}")]
    Vault { url: String, cause: Box<StoreError> },
    /// `--from` is the store directory.
    #[error(
        "--from {} is the store directory ([store] path); copy the altinn-jwks files to a directory of their own and import from there",
        from.display()
    )]
    StoreDirectory { from: PathBuf },
    /// `--from` is the publish directory.
    #[error(
        "--from {} is the [publish] dir, where {{set}}.jwks.json (altinn-jwks 2.0's private key file name) would be overwritten with the public set; copy the altinn-jwks files to a directory of their own and import from there",
        from.display()
    )]
    PublishDirectory { from: PathBuf },
    /// The source holds no altinn-jwks key set; `place` is `Source::describe`.
    #[error(
        "no altinn-jwks key sets in {place}: expected files {{set}}.json or {{set}}.jwks.json, or secrets {{set}}--priv or {{set}}--jwks"
    )]
    NothingFound { place: String },
    /// A key set named on the command line is not in the source.
    #[error("key set {key_set} is not in {place}; found there: {}", found.join(", "))]
    NotInSource { key_set: KeySet, place: String, found: Vec<String> },
    /// Writing a key set to the store failed.
    #[error("{key_set}: {cause}")]
    Store { key_set: KeySet, cause: Box<StoreError> },
    /// Writing a key set's public outputs failed.
    #[error("{key_set}: {cause}")]
    Publish { key_set: KeySet, cause: Box<PublishError> },
}

pub mod plan;
pub mod read;
mod stages;

use std::path::{Path, PathBuf};

pub use plan::{PlannedKey, SetPlan};
pub use read::{Found, Layout};

use crate::azure::altinn::AltinnVault;
use crate::azure::layout;
use crate::kid::{KeySet, Kid};
use crate::lifecycle;
use crate::moment::Moment;
use crate::policy::Target;
use crate::publish::{PublishError, PublishedSet, Publisher};
use crate::store::{ConsumerSecrets, KeyStore, Loaded, StoreError, create, records_in};

/// Where altinn-jwks keeps its keys.
pub(crate) enum Source {
    Directory(PathBuf),
    Vault(AltinnVault),
}

impl Source {
    /// Every key set in the source.
    pub(crate) async fn read(&self) -> Result<Vec<Found>, ImportError> {
        match self {
            Source::Directory(dir) => read::read_directory(dir),
            Source::Vault(vault) => read::read_vault(vault).await,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Directory(dir) => format!("directory {}", dir.display()),
            Source::Vault(vault) => format!("Key Vault {}", vault.url()),
        }
    }
}

/// What the store side looks like, for the checks that need it.
pub(crate) struct StoreSide<'a> {
    /// For a Key Vault store: its URL, `secret_prefix`, and each key set's consumer secret.
    pub vault: Option<VaultSide<'a>>,
}

pub(crate) struct VaultSide<'a> {
    pub url: &'a str,
    pub prefix: &'a str,
    pub consumer: &'a dyn Fn(&KeySet) -> Option<String>,
}

/// Plans every found key set against its config target and what the store holds.
pub(crate) fn plan_all(
    found: &[Found],
    targets: &[Target],
    loaded: &Loaded,
    side: &StoreSide<'_>,
    source: &Source,
    at: Moment,
) -> Vec<SetPlan> {
    let name_of = side.vault.as_ref().map(|v| {
        let prefix = v.prefix.to_owned();
        move |kid: &Kid| layout::secret_name(&prefix, kid)
    });
    found
        .iter()
        .map(|f| {
            let Some(target) = targets.iter().find(|t| t.key_set == f.key_set) else {
                return unconfigured(f);
            };
            let ctx = plan::Context {
                policy: &target.policy,
                client: format!("[[client]] {}", f.key_set.client()),
                existing: records_in(loaded, &f.key_set),
                secret_name: name_of.as_ref().map(|f| f as &plan::SecretName<'_>),
                at,
            };
            let mut plan = plan::plan(f, &ctx);
            if let (Some(vault), Source::Vault(src)) = (&side.vault, source) {
                check_shared_vault(&mut plan, f, found, vault, src);
            }
            plan
        })
        .collect()
}

fn unconfigured(f: &Found) -> SetPlan {
    SetPlan {
        key_set: f.key_set.clone(),
        layout: f.layout,
        sources: f.sources.clone(),
        keys: Vec::new(),
        left_out: Vec::new(),
        notes: Vec::new(),
        superseded: Vec::new(),
        problems: vec![format!(
            "key set {} is not in the config: add a [[client]] named {} with environment {}, or name the key sets to import",
            f.key_set,
            f.key_set.client(),
            f.key_set.env()
        )],
        leave_consumer: false,
    }
}

fn same_vault(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// When altinn-jwks's secrets live in the store's own vault: the import must never write to
/// one of them, and the store must never take one of them for a key of its own.
fn check_shared_vault(
    plan: &mut SetPlan,
    found: &Found,
    all: &[Found],
    vault: &VaultSide<'_>,
    src: &AltinnVault,
) {
    if !same_vault(vault.url, src.url()) {
        return;
    }
    let altinn: Vec<String> = all
        .iter()
        .flat_map(|f| &f.sources)
        .filter_map(|s| s.strip_prefix("secret "))
        .map(str::to_owned)
        .collect();
    for name in &altinn {
        if let Some(kid) = layout::kid_of_name(vault.prefix, name) {
            plan.problems.push(format!(
                "altinn-jwks secret {name} would be read as key {kid} with secret_prefix {:?}; set a secret_prefix (such as \"jwk-\") that no altinn-jwks secret starts with",
                vault.prefix
            ));
        }
    }
    let clashes: Vec<String> = plan
        .to_write()
        .filter_map(|k| layout::secret_name(vault.prefix, &k.record.kid).ok().map(|n| (&k.record.kid, n)))
        .filter(|(_, name)| altinn.iter().any(|a| a.eq_ignore_ascii_case(name)))
        .map(|(kid, name)| {
            format!("kid {kid} would be written to altinn-jwks secret {name}; set another secret_prefix")
        })
        .collect();
    plan.problems.extend(clashes);
    let Some(consumer) = (vault.consumer)(&found.key_set) else { return };
    if !altinn.iter().any(|a| a.eq_ignore_ascii_case(&consumer)) {
        return;
    }
    let holds_current = consumer.eq_ignore_ascii_case(&format!("{}--key", found.key_set))
        && matches!((&found.current, plan.keys.first()), (Some(Ok(c)), Some(k)) if c.public() == k.key.public());
    if holds_current {
        plan.leave_consumer = true;
        plan.notes.push(format!(
            "consumer secret {consumer} is altinn-jwks's current-key secret and holds the current key already: the import leaves it as it is; the next rotate tags it, and promotions add versions to it"
        ));
    } else {
        plan.problems.push(format!(
            "consumer_secret {consumer} of {} is an altinn-jwks secret that does not hold the current key alone; the import never writes to altinn-jwks secrets: choose another consumer_secret",
            found.key_set
        ));
    }
}

/// Refuses a source directory that the store or the public outputs use: altinn-jwks 2.0's
/// `{set}.jwks.json` is the name of this tool's public output, and would be overwritten.
pub(crate) fn check_directory(
    from: &Path,
    store_dir: Option<&Path>,
    publish_dir: &Path,
) -> Result<(), ImportError> {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let from_at = real(from);
    if store_dir.is_some_and(|s| real(s) == from_at) {
        return Err(ImportError::StoreDirectory { from: from.to_path_buf() });
    }
    if real(publish_dir) == from_at {
        return Err(ImportError::PublishDirectory { from: from.to_path_buf() });
    }
    Ok(())
}

/// Writes one clean plan: first the keys that `rotate` made before the import are moved out of
/// the way (so that an interrupted import never leaves one of them current beside the imported
/// key), then the current key, so that an interrupted import leaves a working key set, then the
/// others; then the public outputs and the consumer secret (for a store with `consumers`).
/// Returns how many keys it wrote. Running it again finishes an interrupted one.
pub async fn write(
    plan: &SetPlan,
    target: &Target,
    store: &dyn KeyStore,
    consumers: Option<&dyn ConsumerSecrets>,
    publisher: &dyn Publisher,
    at: Moment,
) -> Result<usize, ImportError> {
    let set = &plan.key_set;
    let stored = |cause| ImportError::Store { key_set: set.clone(), cause: Box::new(cause) };
    for record in &plan.superseded {
        store.update(record).await.map_err(stored)?;
        tracing::info!(key_set = %set, kid = %record.kid, stage = %record.stage, "made before the import; moved aside");
    }
    let mut written = 0;
    for key in plan.to_write() {
        create(store, &key.record, &key.key).await.map_err(stored)?;
        tracing::info!(key_set = %set, kid = %key.record.kid, stage = %key.record.stage, "imported");
        written += 1;
    }
    let loaded = store.load(std::slice::from_ref(set)).await.map_err(stored)?;
    let records = records_in(&loaded, set).map_err(stored)?;
    let published = PublishedSet::from_records(set, records, &target.policy, at.now);
    publisher
        .publish(&published)
        .await
        .map_err(|cause| ImportError::Publish { key_set: set.clone(), cause: Box::new(cause) })?;
    let current = lifecycle::current(records, at.now).filter(|_| !plan.leave_consumer);
    if let (Some(current), Some(consumers)) = (current, consumers) {
        consumers.sync_consumer(current).await.map_err(stored)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_and_publish_directories_are_refused_as_sources() {
        let dir = tempfile::tempdir().expect("dir");
        let (keys, jwks, from) =
            (dir.path().join("keys"), dir.path().join("jwks"), dir.path().join("altinn"));
        for d in [&keys, &jwks, &from] {
            std::fs::create_dir(d).expect("mkdir");
        }
        assert_eq!(check_directory(&from, Some(&keys), &jwks), Ok(()));
        assert_eq!(
            check_directory(&keys.join("."), Some(&keys), &jwks),
            Err(ImportError::StoreDirectory { from: keys.join(".") })
        );
        let e = check_directory(&jwks, None, &jwks).expect_err("publish dir");
        assert_eq!(e, ImportError::PublishDirectory { from: jwks.clone() });
        assert!(e.to_string().contains("is the [publish] dir, where {set}.jwks.json"), "{e}");
    }
}
