//! The TOML config: store, publish directory, policy defaults and clients, checked at load.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod azure;
mod consumer;
pub mod restart;
pub use consumer::consumer_format_for;
mod error;
pub mod events;
pub mod maskinporten;
mod store;
pub mod worker;

pub use error::{ConfigError, SettingError};
pub use store::StoreConfig;

use self::worker::{AlertsConfig, ScheduleConfig, ServerConfig};
use crate::kid::{ClientName, Environment, KeySet};
use crate::policy::Target;
use crate::policy::{Policy, PolicyOverrides};

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
    events: Option<events::EventsConfig>,
    /// `[maskinporten.ENV]`: Digdir's addresses and the admin client, per environment.
    #[serde(default)]
    maskinporten: BTreeMap<String, maskinporten::RawEnvironment>,
    /// `[kubernetes]`: overrides of the in-cluster API settings, for restarts.
    #[serde(default)]
    kubernetes: restart::KubernetesSettings,
    /// `[azure_resource_manager]`: another ARM endpoint, for restarts.
    #[serde(default)]
    azure_resource_manager: restart::ArmSettings,
}

#[derive(Debug, Deserialize)]
struct RawClient {
    name: String,
    #[serde(default = "default_environments")]
    environments: Vec<String>,
    consumer_secret: Option<String>,
    consumer_format: Option<crate::consumer::FormatName>,
    /// `[[client.restart]]`, each read by [`restart::parse`].
    #[serde(default)]
    restart: Vec<toml::Value>,
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
    /// The shape its consumer secret and `export-key --format altinn-app` give the key in.
    pub consumer_format: crate::consumer::ConsumerFormat,
    /// The applications to restart after one of its keys is promoted.
    pub restart: Vec<restart::RestartTarget>,
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
    /// `[events]`: the audit trail and the event webhooks; without it, no events at all.
    pub events: Option<events::EventsConfig>,
    /// `[maskinporten.ENV]`, resolved: Digdir's addresses and the admin client.
    pub maskinporten: BTreeMap<Environment, maskinporten::MaskinportenEnv>,
    /// `[kubernetes]`, with paths anchored at the config file's directory.
    pub kubernetes: restart::KubernetesSettings,
    /// `[azure_resource_manager]`, with `ca_cert` anchored at the config file's directory.
    pub azure_resource_manager: restart::ArmSettings,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            file: path.to_path_buf(),
            cause: e.to_string(),
            missing: e.kind() == std::io::ErrorKind::NotFound,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` names the file in messages and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut raw: RawConfig = toml::from_str(text).map_err(|e| {
            let problem = crate::redact::toml_problem(text, &e);
            SettingError {
                line: problem.line,
                setting: problem.key,
                ..SettingError::general(problem.message)
            }
            .in_file(path)
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let in_file = |e: SettingError| e.in_file(path);
        let tables =
            maskinporten::resolve_all(std::mem::take(&mut raw.maskinporten), &base).map_err(in_file)?;
        raw.defaults.resolve().map_err(|e| in_file(SettingError::from(e).within("[defaults]")))?;
        if raw.client.is_empty() {
            return Err(ConfigError::NoClient { file: path.to_path_buf() });
        }
        Self::resolve(raw, tables, path).map_err(|e| in_file(e).into())
    }

    /// Checks what the types of [`RawConfig`] can not (the clients, settings that depend on
    /// each other), and makes paths relative to the config file's directory.
    fn resolve(
        raw: RawConfig,
        tables: BTreeMap<Environment, maskinporten::MaskinportenEnv>,
        path: &Path,
    ) -> Result<Config, SettingError> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let clients = resolve_clients(raw.client, &raw.defaults, &tables)?;
        if raw.publish.dir.as_os_str().is_empty() {
            return Err(SettingError::new(
                "[publish] dir",
                "[publish] dir is empty; name the directory for the public key sets, such as dir = \"jwks\"",
            ));
        }
        let publish = PublishConfig { dir: base.join(raw.publish.dir) };
        let store = match raw.store {
            StoreConfig::File { path, lock_timeout } => {
                StoreConfig::File { path: file_store_path(&base, &path, &publish.dir)?, lock_timeout }
            }
            StoreConfig::AzureKeyVault(azure) => {
                StoreConfig::AzureKeyVault(Box::new(azure.resolve(&base).map_err(|e| e.within("[store]"))?))
            }
        };
        if let Some(schedule) = &raw.schedule {
            schedule.check()?;
        }
        for hook in &raw.alerts.webhook {
            hook.check()?;
        }
        consumer::check_azure_restarts(&clients, &store)?;
        Ok(Config {
            file: path.to_path_buf(),
            store,
            publish,
            clients,
            schedule: raw.schedule,
            server: raw.server,
            alerts: raw.alerts,
            events: raw.events.map(|e| e.resolve(&base)).transpose()?,
            maskinporten: tables,
            kubernetes: raw.kubernetes.resolve(&base)?,
            azure_resource_manager: raw.azure_resource_manager.resolve(&base)?,
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
                by_name.get(n).map(|t| (*t).clone()).ok_or_else(|| ConfigError::UnknownKeySet {
                    file: self.file.clone(),
                    name: n.clone(),
                    known: all.iter().map(|t| t.key_set.to_string()).collect(),
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
fn file_store_path(base: &Path, path: &Path, publish: &Path) -> Result<PathBuf, SettingError> {
    let refused = |message: String| Err(SettingError::new("[store] path", message));
    if path.as_os_str().is_empty() {
        return refused("[store] path is empty, which would make the config file's directory the key store; name a directory of its own, such as path = \"keys\"".to_owned());
    }
    let store = base.join(path);
    let (store_at, publish_at, base_at) = (resolved(&store), resolved(publish), resolved(base));
    let shown = path.display();
    if store_at == base_at {
        return refused(format!(
            "[store] path = \"{shown}\" is the config file's own directory; keys need a directory of their own, such as path = \"keys\""
        ));
    }
    let separate = "private keys and the public outputs need separate directories, such as [store] path = \"keys\" and [publish] dir = \"jwks\"";
    if publish_at == store_at {
        return refused(format!(
            "[publish] dir is the same directory as [store] path = \"{shown}\": {separate}"
        ));
    }
    if publish_at.starts_with(&store_at) {
        return refused(format!(
            "[publish] dir is inside the store directory [store] path = \"{shown}\": {separate}"
        ));
    }
    if store_at.starts_with(&publish_at) {
        return refused(format!(
            "[store] path = \"{shown}\" is inside the [publish] dir, which is meant to be shared: {separate}"
        ));
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

/// Every `[[client]]`, each name once; an error says which client (by number, and by name once
/// that is known).
fn resolve_clients(
    raw: Vec<RawClient>,
    defaults: &PolicyOverrides,
    tables: &BTreeMap<Environment, maskinporten::MaskinportenEnv>,
) -> Result<Vec<ClientConfig>, SettingError> {
    let mut clients = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in raw.into_iter().enumerate() {
        let client = resolve_client(c, defaults, tables)
            .map_err(|e| e.within(format!("[[client]] number {}", i + 1)))?;
        if !names.insert(client.name.clone()) {
            return Err(SettingError::new("name", format!("client {} is listed twice", client.name)));
        }
        clients.push(client);
    }
    Ok(clients)
}

/// One `[[client]]`: its name, environments, policy (over `[defaults]`), consumer secret and
/// Maskinporten settings.
fn resolve_client(
    mut c: RawClient,
    defaults: &PolicyOverrides,
    tables: &BTreeMap<Environment, maskinporten::MaskinportenEnv>,
) -> Result<ClientConfig, SettingError> {
    let name: ClientName =
        c.name.parse().map_err(|e: crate::kid::NameError| SettingError::new("name", e.to_string()))?;
    let at = |e: SettingError| e.within(format!("client {name}"));
    let settings = maskinporten::ClientSettings::take(&mut c.unknown).map_err(at)?;
    if let Some(key) = c.unknown.keys().next() {
        return Err(at(SettingError::new(
            key.clone(),
            format!(
                "unknown setting `{key}`; a client takes name, environments, consumer_secret, consumer_format, restart, {} and the policy settings of [defaults]",
                maskinporten::ClientSettings::NAMES.join(", ")
            ),
        )));
    }
    let environments = environments(&c.environments).map_err(at)?;
    let policy = c.policy.over(defaults).resolve().map_err(|e| at(e.into()))?;
    if let Some(template) = &c.consumer_secret {
        azure::check_consumer_template(template).map_err(at)?;
    }
    let verified = policy.promotion() == crate::policy::Promotion::Verified;
    let maskinporten = maskinporten::resolve_client(settings, &environments, verified, tables).map_err(at)?;
    let consumer_format =
        consumer::resolve_format(c.consumer_format, &environments, &maskinporten.client_id, tables)
            .map_err(at)?;
    let restart = (c.restart.into_iter().enumerate())
        .map(|(i, t)| restart::parse(t, i + 1))
        .collect::<Result<_, _>>()
        .map_err(at)?;
    Ok(ClientConfig {
        name,
        environments,
        policy,
        consumer_secret: c.consumer_secret,
        consumer_format,
        restart,
        maskinporten,
    })
}

/// A client's `environments`: at least one, each once.
fn environments(names: &[String]) -> Result<Vec<Environment>, SettingError> {
    let refused = |message: String| SettingError::new("environments", message);
    if names.is_empty() {
        return Err(refused(
            "environments is empty; list at least one, such as [\"TEST\", \"PROD\"]".to_owned(),
        ));
    }
    let mut environments = Vec::new();
    for env in names {
        let env: Environment = env.parse().map_err(|e: crate::kid::NameError| refused(e.to_string()))?;
        if environments.contains(&env) {
            return Err(refused(format!("environment {env} is listed twice")));
        }
        environments.push(env);
    }
    Ok(environments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> ConfigError {
        Config::parse(text, Path::new("/etc/jwk-rotator/jwk-rotator.toml")).expect_err("refused")
    }

    #[test]
    fn errors_say_where_they_are_and_which_setting() {
        let client = "[[client]]\nname = \"a\"\n";
        let e = refused(&format!("[defaults]\nmax_age = \"400d\"\n{client}"));
        assert_eq!(e.setting(), Some("max_age"));
        let ConfigError::Setting(setting) = &e else { panic!("{e:?}") };
        assert_eq!(setting.place, ["[defaults]"]);
        assert_eq!(setting.file.as_deref(), Some(Path::new("/etc/jwk-rotator/jwk-rotator.toml")));
        assert!(
            e.to_string()
                .starts_with("config file /etc/jwk-rotator/jwk-rotator.toml: [defaults]: max_age = "),
            "{e}"
        );

        let e = refused(&format!("{client}[[client]]\nname = \"b\"\nenvironments = []\n"));
        let ConfigError::Setting(setting) = &e else { panic!("{e:?}") };
        assert_eq!(
            (setting.setting.as_deref(), &setting.place[..]),
            (Some("environments"), &["[[client]] number 2".to_owned(), "client b".to_owned()][..])
        );

        let e = refused(&format!("{client}{client}"));
        assert_eq!(e.setting(), Some("name"));
        assert!(e.to_string().ends_with(": client a is listed twice"), "{e}");

        let e = refused(&format!("[publish]\ndir = \"keys\"\n{client}"));
        assert_eq!(e.setting(), Some("[store] path"));

        let e = refused("[store]\nkind = \"file\"\npath = 7\n");
        let ConfigError::Setting(setting) = &e else { panic!("{e:?}") };
        assert_eq!((setting.line, setting.setting.as_deref()), (Some(1), Some("[store]")));

        assert_eq!(
            refused("[publish]\ndir = \"jwks\"\n"),
            ConfigError::NoClient { file: "/etc/jwk-rotator/jwk-rotator.toml".into() }
        );
    }

    #[test]
    fn a_key_set_not_in_the_config_is_named_with_those_that_are() {
        let config = Config::parse("[[client]]\nname = \"a\"\n", Path::new("j.toml")).expect("loads");
        let e = config.select(&["a-STAGE".to_owned()]).expect_err("not configured");
        assert_eq!(
            e,
            ConfigError::UnknownKeySet {
                file: "j.toml".into(),
                name: "a-STAGE".to_owned(),
                known: vec!["a-TEST".to_owned(), "a-PROD".to_owned()]
            }
        );
    }
}
