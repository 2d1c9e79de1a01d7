//! The Maskinporten settings of a `[[client]]`: `publish`, `client_id`, `verify_scope` and
//! `prune_unmanaged`. Each is read into a type that can only hold a valid value, with the
//! setting named in its message; what needs the client's environments, its promotion mode or
//! the `[maskinporten.ENV]` tables is checked when the client is resolved.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::super::SettingError;
use super::MaskinportenEnv;
use crate::kid::Environment;

/// Where a client's public key set goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PublishTarget {
    /// `{set}.jwks.json` and `{set}.maskinporten.json` in `[publish] dir`.
    Files,
    /// Digdir's self-service API, for the client's `client_id` in each environment.
    MaskinportenApi,
}

/// `publish`: at least one target, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishTargets(Vec<PublishTarget>);

impl PublishTargets {
    pub(crate) fn into_vec(self) -> Vec<PublishTarget> {
        self.0
    }
}

impl<'de> Deserialize<'de> for PublishTargets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let not_a_list = |value: &dyn std::fmt::Display| {
            D::Error::custom(format!(
                "publish = {value} is not a list of targets: write publish = [\"files\"], [\"maskinporten-api\"] or both"
            ))
        };
        let items = match toml::Value::deserialize(d)? {
            toml::Value::Array(items) => items,
            other => return Err(not_a_list(&other)),
        };
        let names = items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(name) => Ok(name),
                other => Err(not_a_list(&other)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut targets = Vec::new();
        for name in names {
            let target = match name.as_str() {
                "files" => PublishTarget::Files,
                "maskinporten-api" => PublishTarget::MaskinportenApi,
                other => {
                    return Err(D::Error::custom(format!(
                        "publish = [{other:?}] is not a target: use \"files\" ({{set}}.jwks.json in [publish] dir), \"maskinporten-api\" (Digdir's self-service API) or both"
                    )));
                }
            };
            if targets.contains(&target) {
                return Err(D::Error::custom(format!("publish lists {name:?} twice")));
            }
            targets.push(target);
        }
        if targets.is_empty() {
            return Err(D::Error::custom(
                "publish = [] would publish the keys nowhere, so no key could ever be promoted safely: use [\"files\"], [\"maskinporten-api\"] or both",
            ));
        }
        Ok(PublishTargets(targets))
    }
}

/// `client_id`: the client's Maskinporten client id in each environment, none empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientIds(BTreeMap<Environment, String>);

impl<'de> Deserialize<'de> for ClientIds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = match toml::Value::deserialize(d)? {
            toml::Value::Table(table) => table,
            other => {
                return Err(D::Error::custom(format!(
                    "client_id = {other} must be a table of environments, such as client_id = {{ TEST = \"3f1c...\", PROD = \"9a2d...\" }}"
                )));
            }
        };
        let mut ids = BTreeMap::new();
        for (name, id) in table {
            let env: Environment = name
                .parse()
                .map_err(|e: crate::kid::NameError| D::Error::custom(format!("client_id.{name}: {e}")))?;
            match id {
                toml::Value::String(id) if !id.trim().is_empty() => ids.insert(env, id),
                other => {
                    return Err(D::Error::custom(format!(
                        "client_id.{env} = {other} must be the client id as a string"
                    )));
                }
            };
        }
        Ok(ClientIds(ids))
    }
}

/// `verify_scope`: one scope that the client has, asked for when a key is proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifyScope(String);

impl<'de> Deserialize<'de> for VerifyScope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) if !s.trim().is_empty() && !s.contains(' ') => Ok(VerifyScope(s)),
            other => Err(D::Error::custom(format!(
                "verify_scope = {other} must be one scope that the client has, such as \"altinn:serviceowner\""
            ))),
        }
    }
}

/// `prune_unmanaged`: whether keys on the client that this tool does not manage are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PruneUnmanaged(bool);

impl<'de> Deserialize<'de> for PruneUnmanaged {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::Boolean(b) => Ok(PruneUnmanaged(b)),
            other => Err(D::Error::custom(format!("prune_unmanaged = {other} must be true or false"))),
        }
    }
}

/// A client's Maskinporten settings as the `[[client]]` table gives them, each read into its
/// type (the table's policy settings are flattened beside them, which hides unknown keys from
/// serde, so they are taken out of the keys the table has left by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientSettings {
    pub publish: Option<PublishTargets>,
    pub client_id: Option<ClientIds>,
    pub verify_scope: Option<VerifyScope>,
    pub prune_unmanaged: Option<PruneUnmanaged>,
}

impl ClientSettings {
    /// The settings' names, for the message that refuses an unknown one.
    pub(crate) const NAMES: [&'static str; 4] = ["publish", "client_id", "verify_scope", "prune_unmanaged"];

    /// Takes this client's Maskinporten settings out of the table's other keys.
    pub(crate) fn take(rest: &mut BTreeMap<String, toml::Value>) -> Result<Self, SettingError> {
        Ok(ClientSettings {
            publish: take(rest, "publish")?,
            client_id: take(rest, "client_id")?,
            verify_scope: take(rest, "verify_scope")?,
            prune_unmanaged: take(rest, "prune_unmanaged")?,
        })
    }
}

/// The setting `key` out of `rest`, read as `T`, if it is there.
fn take<T: serde::de::DeserializeOwned>(
    rest: &mut BTreeMap<String, toml::Value>,
    key: &str,
) -> Result<Option<T>, SettingError> {
    rest.remove(key).map(|v| T::deserialize(v).map_err(|e| SettingError::new(key, e.message()))).transpose()
}

/// The Maskinporten settings of one `[[client]]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMaskinporten {
    pub publish: Vec<PublishTarget>,
    /// The client's Maskinporten client id in each environment.
    pub client_id: BTreeMap<Environment, String>,
    /// A scope the client has, asked for when a key is proved.
    pub verify_scope: Option<String>,
    /// Whether keys on the client that this tool does not manage are removed when it uploads.
    pub prune_unmanaged: bool,
}

impl Default for ClientMaskinporten {
    fn default() -> Self {
        ClientMaskinporten {
            publish: vec![PublishTarget::Files],
            client_id: BTreeMap::new(),
            verify_scope: None,
            prune_unmanaged: false,
        }
    }
}

impl ClientMaskinporten {
    pub(crate) fn publishes_to(&self, target: PublishTarget) -> bool {
        self.publish.contains(&target)
    }
}

/// Checks a client's Maskinporten settings against its environments, its promotion mode and
/// the `[maskinporten.ENV]` tables.
pub(crate) fn resolve_client(
    settings: ClientSettings,
    environments: &[Environment],
    verified: bool,
    tables: &BTreeMap<Environment, MaskinportenEnv>,
) -> Result<ClientMaskinporten, SettingError> {
    let client_id = settings.client_id.unwrap_or_default().0;
    if let Some(env) = client_id.keys().find(|env| !environments.contains(env)) {
        return Err(SettingError::new(
            format!("client_id.{env}"),
            format!("client_id.{env} is given, but {env} is not one of this client's environments"),
        ));
    }
    let out = ClientMaskinporten {
        publish: settings
            .publish
            .map_or_else(|| ClientMaskinporten::default().publish, PublishTargets::into_vec),
        client_id,
        verify_scope: settings.verify_scope.map(|s| s.0),
        prune_unmanaged: settings.prune_unmanaged.is_some_and(|p| p.0),
    };
    for env in environments {
        check_environment(&out, env, verified, tables)?;
    }
    if verified && out.verify_scope.is_none() {
        return Err(SettingError::new(
            "verify_scope",
            "promotion = \"verified\" needs verify_scope: a scope the client has in Maskinporten, such as \"altinn:serviceowner\", asked for when a key is proved",
        ));
    }
    Ok(out)
}

/// What publishing through the API, or a verified promotion, needs in `env`: the client's id
/// there, the `[maskinporten.ENV]` table, and for the API the organisation's admin client.
fn check_environment(
    client: &ClientMaskinporten,
    env: &Environment,
    verified: bool,
    tables: &BTreeMap<Environment, MaskinportenEnv>,
) -> Result<(), SettingError> {
    let api = client.publishes_to(PublishTarget::MaskinportenApi);
    if !(api || verified) {
        return Ok(());
    }
    let needs = |what: &str| {
        if api && verified {
            format!("publish = [\"maskinporten-api\"] and promotion = \"verified\" need {what}")
        } else if api {
            format!("publish = [\"maskinporten-api\"] needs {what}")
        } else {
            format!("promotion = \"verified\" needs {what}")
        }
    };
    if !client.client_id.contains_key(env) {
        return Err(SettingError::new(
            "client_id",
            format!(
                "{}: add client_id = {{ {env} = \"...\" }} with the client's id in Maskinporten",
                needs(&format!("the client's Maskinporten client_id for {env}"))
            ),
        ));
    }
    let Some(table) = tables.get(env) else {
        return Err(SettingError::new(
            format!("[maskinporten.{env}]"),
            format!(
                "{}: add a [maskinporten.{env}] table (TEST and PROD need no addresses; api publishing needs admin_client_id and a business certificate)",
                needs(&format!("[maskinporten.{env}]"))
            ),
        ));
    };
    if api && table.admin.is_none() {
        return Err(SettingError::new(
            "admin_client_id",
            format!(
                "{}: set admin_client_id and a business certificate in [maskinporten.{env}]",
                needs("the organisation's admin client")
            ),
        ));
    }
    Ok(())
}
