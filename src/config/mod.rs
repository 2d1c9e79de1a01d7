//! The TOML config: store, publish directory, policy defaults and clients, checked at load.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod azure;
pub mod maskinporten;
mod store;
pub mod worker;

pub use store::{MAX_LOCK_TIMEOUT, StoreConfig};

use self::worker::{AlertsConfig, ScheduleConfig, ServerConfig};
use crate::kid::{ClientName, Environment, KeySet};
use crate::policy::Target;
use crate::policy::{Policy, PolicyOverrides};

/// A config that can not be used, with the file and setting in its message. Shown, it never
/// holds a URL's path, query or credentials (see [`crate::redact::urls`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", crate::redact::urls(.0))]
pub struct ConfigError(pub String);

/// `[publish]`: where the public outputs go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    #[serde(default = "default_publish_dir")]
    pub dir: PathBuf,
}

fn default_publish_dir() -> PathBuf {
    PathBuf::from("jwks")
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig { dir: default_publish_dir() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    publish: PublishConfig,
    #[serde(default)]
    defaults: PolicyOverrides,
    #[serde(default)]
    client: Vec<RawClient>,
    schedule: Option<ScheduleConfig>,
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    alerts: AlertsConfig,
    /// `[maskinporten.ENV]`: Digdir's addresses and the admin client, per environment.
    #[serde(default)]
    maskinporten: BTreeMap<String, maskinporten::RawEnvironment>,
}

#[derive(Debug, Deserialize)]
struct RawClient {
    name: String,
    #[serde(default = "default_environments")]
    environments: Vec<String>,
    consumer_secret: Option<String>,
    #[serde(flatten)]
    policy: PolicyOverrides,
    /// Whatever else the table holds: refused by name (serde's flatten hides unknown keys).
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

fn default_environments() -> Vec<String> {
    vec!["TEST".to_owned(), "PROD".to_owned()]
}

/// One `[[client]]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub name: ClientName,
    pub environments: Vec<Environment>,
    pub policy: Policy,
    /// Name template of the Key Vault secret applications read (`{client}`, `{env}`).
    pub consumer_secret: Option<String>,
    /// Where its public set goes, its Maskinporten client ids and how a key is proved.
    pub maskinporten: maskinporten::ClientMaskinporten,
}

/// The whole config, with relative paths made relative to the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub file: PathBuf,
    pub store: StoreConfig,
    pub publish: PublishConfig,
    pub clients: Vec<ClientConfig>,
    /// `[schedule]`, which the worker needs.
    pub schedule: Option<ScheduleConfig>,
    pub server: ServerConfig,
    pub alerts: AlertsConfig,
    /// `[maskinporten.ENV]`, resolved: Digdir's addresses and the admin client.
    pub maskinporten: BTreeMap<Environment, maskinporten::MaskinportenEnv>,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "; pass --config FILE, set JWK_ROTATOR_CONFIG, or copy examples/jwk-rotator.toml to ./jwk-rotator.toml"
            } else {
                "; check that the file is readable by this user"
            };
            ConfigError(format!("cannot read config file {}: {e}{hint}", path.display()))
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` names the file in messages and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display();
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            ConfigError(format!("config file {shown}: {}", crate::redact::toml_error(text, &e)))
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let defaults = raw.defaults;
        let tables = maskinporten::resolve_all(raw.maskinporten, &base)
            .map_err(|e| ConfigError(format!("config file {shown}: {}", e.0)))?;
        defaults.resolve().map_err(|e| ConfigError(format!("config file {shown}: [defaults]: {e}")))?;
        if raw.client.is_empty() {
            return Err(ConfigError(format!(
                "config file {shown} has no [[client]]: add one with name = \"...\" and environments = [\"TEST\", \"PROD\"]"
            )));
        }
        let mut clients = Vec::new();
        let mut names = BTreeSet::new();
        for (i, c) in raw.client.into_iter().enumerate() {
            let client = resolve_client(c, &defaults, &tables).map_err(|e| {
                ConfigError(format!("config file {shown}: [[client]] number {}: {}", i + 1, e.0))
            })?;
            if !names.insert(client.name.clone()) {
                return Err(ConfigError(format!(
                    "config file {shown}: client {} is listed twice",
                    client.name
                )));
            }
            clients.push(client);
        }
        if raw.publish.dir.as_os_str().is_empty() {
            return Err(ConfigError(format!(
                "config file {shown}: [publish] dir is empty; name the directory for the public key sets, such as dir = \"jwks\""
            )));
        }
        let publish = PublishConfig { dir: base.join(raw.publish.dir) };
        let store = match raw.store {
            StoreConfig::File { path, lock_timeout } => {
                let path = file_store_path(&base, &path, &publish.dir)
                    .map_err(|e| ConfigError(format!("config file {shown}: {e}")))?;
                StoreConfig::File { path, lock_timeout }
            }
            StoreConfig::AzureKeyVault(azure) => StoreConfig::AzureKeyVault(Box::new(
                azure
                    .resolve(&base)
                    .map_err(|e| ConfigError(format!("config file {shown}: [store]: {e}")))?,
            )),
        };
        if let Some(schedule) = &raw.schedule {
            schedule.check().map_err(|e| ConfigError(format!("config file {shown}: {e}")))?;
        }
        for hook in &raw.alerts.webhook {
            hook.check().map_err(|e| ConfigError(format!("config file {shown}: {e}")))?;
        }
        Ok(Config {
            file: path.to_path_buf(),
            store,
            publish,
            clients,
            schedule: raw.schedule,
            server: raw.server,
            alerts: raw.alerts,
            maskinporten: tables,
        })
    }

    /// Every key set, in config order.
    pub fn targets(&self) -> Vec<Target> {
        self.clients
            .iter()
            .flat_map(|c| {
                c.environments.iter().map(|env| Target {
                    key_set: KeySet::new(c.name.clone(), env.clone()),
                    policy: c.policy.clone(),
                })
            })
            .collect()
    }

    /// The key sets named on the command line (all when none), each checked against the config.
    /// A key set named more than once is selected once, where it was first named.
    pub fn select(&self, names: &[String]) -> Result<Vec<Target>, ConfigError> {
        let all = self.targets();
        if names.is_empty() {
            return Ok(all);
        }
        let by_name: BTreeMap<String, &Target> = all.iter().map(|t| (t.key_set.to_string(), t)).collect();
        let mut seen = std::collections::BTreeSet::new();
        names
            .iter()
            .filter(|n| seen.insert(n.as_str()))
            .map(|n| {
                by_name.get(n).map(|t| (*t).clone()).ok_or_else(|| {
                    let known: Vec<String> = all.iter().map(|t| t.key_set.to_string()).collect();
                    ConfigError(format!(
                        "key set {n:?} is not in {}; configured key sets: {}",
                        self.file.display(),
                        known.join(", ")
                    ))
                })
            })
            .collect()
    }

    /// The client config of a key set.
    pub fn client(&self, set: &KeySet) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.name == *set.client())
    }
}

/// The file store's directory, refused when it is the config file's own directory or shares
/// a directory tree with the public outputs.
fn file_store_path(base: &Path, path: &Path, publish: &Path) -> Result<PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError("[store] path is empty, which would make the config file's directory the key store; name a directory of its own, such as path = \"keys\"".to_owned()));
    }
    let store = base.join(path);
    let (store_at, publish_at, base_at) = (resolved(&store), resolved(publish), resolved(base));
    let shown = path.display();
    if store_at == base_at {
        return Err(ConfigError(format!(
            "[store] path = \"{shown}\" is the config file's own directory; keys need a directory of their own, such as path = \"keys\""
        )));
    }
    let separate = "private keys and the public outputs need separate directories, such as [store] path = \"keys\" and [publish] dir = \"jwks\"";
    if publish_at == store_at {
        return Err(ConfigError(format!(
            "[publish] dir is the same directory as [store] path = \"{shown}\": {separate}"
        )));
    }
    if publish_at.starts_with(&store_at) {
        return Err(ConfigError(format!(
            "[publish] dir is inside the store directory [store] path = \"{shown}\": {separate}"
        )));
    }
    if store_at.starts_with(&publish_at) {
        return Err(ConfigError(format!(
            "[store] path = \"{shown}\" is inside the [publish] dir, which is meant to be shared: {separate}"
        )));
    }
    Ok(store)
}

/// A path made absolute, with `.` and `..` worked out, and symlinks followed as far as it
/// exists, so that two spellings of one directory compare equal.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut lexical = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    let mut rest = Vec::new();
    let mut existing = lexical.as_path();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return lexical,
        }
    }
}

fn resolve_client(
    mut c: RawClient,
    defaults: &PolicyOverrides,
    tables: &BTreeMap<Environment, maskinporten::MaskinportenEnv>,
) -> Result<ClientConfig, ConfigError> {
    let name: ClientName = c.name.parse().map_err(|e: crate::kid::NameError| ConfigError(e.to_string()))?;
    let at = |e: String| ConfigError(format!("client {name}: {e}"));
    let raw_maskinporten = maskinporten::RawClientMaskinporten::take(&mut c.unknown).map_err(|e| at(e.0))?;
    if let Some(key) = c.unknown.keys().next() {
        return Err(at(format!(
            "unknown setting `{key}`; a client takes name, environments, consumer_secret, publish, client_id, verify_scope, prune_unmanaged and the policy settings of [defaults]"
        )));
    }
    if c.environments.is_empty() {
        return Err(at("environments is empty; list at least one, such as [\"TEST\", \"PROD\"]".to_owned()));
    }
    let mut environments = Vec::new();
    for env in &c.environments {
        let env: Environment = env.parse().map_err(|e: crate::kid::NameError| at(e.to_string()))?;
        if environments.contains(&env) {
            return Err(at(format!("environment {env} is listed twice")));
        }
        environments.push(env);
    }
    let policy = c.policy.over(defaults).resolve().map_err(|e| at(e.to_string()))?;
    if let Some(template) = &c.consumer_secret {
        azure::check_consumer_template(template).map_err(|e| at(e.0))?;
    }
    let verified = policy.promotion() == crate::policy::Promotion::Verified;
    let maskinporten = maskinporten::resolve_client(raw_maskinporten, &environments, verified, tables)
        .map_err(|e| at(e.0))?;
    Ok(ClientConfig { name, environments, policy, consumer_secret: c.consumer_secret, maskinporten })
}
