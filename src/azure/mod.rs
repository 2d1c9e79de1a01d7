//! The Azure Key Vault store: configuration, credentials, secret layout and the store itself.

pub mod altinn;
mod budget;
pub mod credential;
mod error;
pub mod layout;
mod store;
pub(crate) mod tls;
mod vault;
pub mod versions;

pub use store::{SetInfo, VaultStore};

/// A Key Vault setting, credential or name that can not work; the message names the setting
/// and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AzureError(pub String);

impl From<String> for AzureError {
    fn from(message: String) -> Self {
        AzureError(message)
    }
}

impl From<&str> for AzureError {
    fn from(message: &str) -> Self {
        AzureError(message.to_owned())
    }
}

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::HttpClient;

use crate::config::ClientConfig;
use crate::config::azure::AzureConfig;
use crate::kid::KeySet;

/// Opens the store with a credential, and an HTTP client instead of the SDK's (tests inject one
/// that reaches an in-process fake vault). The names were checked when the config loaded
/// ([`check_names`]); they are checked again here for callers that skip the loader.
pub fn open_store_with(
    config: &AzureConfig,
    clients: &[ClientConfig],
    credential: Arc<dyn TokenCredential>,
    transport: Option<Arc<dyn HttpClient>>,
) -> Result<VaultStore, AzureError> {
    check_names(config, clients)?;
    let vault = vault::Vault::new(config, credential, transport)?;
    Ok(VaultStore::new(vault, config, key_sets(clients)))
}

/// The consumer secret name of `set` from its client's template.
fn consumer_name(client: &ClientConfig, set: &KeySet) -> Option<String> {
    let template = client.consumer_secret.as_ref()?;
    Some(template.replace("{client}", set.client().as_str()).replace("{env}", set.env().as_str()))
}

/// Checks every secret name the configured key sets can get against Key Vault's name rules
/// and each other; run when the config loads, before any store is opened.
pub fn check_names(config: &AzureConfig, clients: &[ClientConfig]) -> Result<(), AzureError> {
    let prefix = &config.secret_prefix;
    let mut consumers: HashMap<String, KeySet> = HashMap::new();
    for client in clients {
        for env in &client.environments {
            let set = KeySet::new(client.name.clone(), env.clone());
            if layout::longest_name(prefix, &set) > layout::MAX_NAME {
                return Err(AzureError(format!(
                    "secret names for key set {set} would pass Key Vault's {} characters with secret_prefix {prefix:?}; use a shorter prefix or client name",
                    layout::MAX_NAME
                )));
            }
            let Some(name) = consumer_name(client, &set) else { continue };
            if layout::kid_of_name(prefix, &name).is_some() {
                return Err(AzureError(format!(
                    "consumer_secret {name:?} of client {} looks like a key secret name (secret_prefix {prefix:?} and a kid); choose another name",
                    client.name
                )));
            }
            if let Some(other) = consumers.insert(name.to_ascii_lowercase(), set.clone()) {
                return Err(AzureError(format!(
                    "consumer_secret {name:?} is the same for key sets {other} and {set}; put {{env}} (and {{client}}) in the template, or give each environment its own vault and config"
                )));
            }
        }
    }
    Ok(())
}

/// The configured key sets with their policies and consumer secret names.
fn key_sets(clients: &[ClientConfig]) -> HashMap<KeySet, SetInfo> {
    let mut sets = HashMap::new();
    for client in clients {
        for env in &client.environments {
            let set = KeySet::new(client.name.clone(), env.clone());
            let consumer = consumer_name(client, &set);
            sets.insert(set, SetInfo { policy: client.policy.clone(), consumer });
        }
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn config(prefix: &str) -> AzureConfig {
        let text = format!(
            "vault_url = \"https://v.vault.azure.net/\"\ncredential = \"static-token\"\nsecret_prefix = \"{prefix}\""
        );
        toml::from_str(&text).expect("config")
    }

    fn client(name: &str, envs: &[&str], consumer: Option<&str>) -> ClientConfig {
        ClientConfig {
            name: name.parse().expect("name"),
            environments: envs.iter().map(|e| e.parse().expect("env")).collect(),
            policy: Policy::default(),
            consumer_secret: consumer.map(str::to_owned),
            maskinporten: Default::default(),
        }
    }

    #[test]
    fn one_consumer_secret_for_two_key_sets_is_refused() {
        let clients = [client("a", &["TEST", "PROD"], Some("MaskinportenSettings--EncodedJwk"))];
        let e = check_names(&config("jwk-"), &clients).expect_err("shared");
        assert!(e.0.contains("is the same for key sets a-TEST and a-PROD") && e.0.contains("{env}"), "{e}");
        let clients = [client("a", &["TEST", "PROD"], Some("{client}-{env}-jwk"))];
        check_names(&config("jwk-"), &clients).expect("names");
        let sets = key_sets(&clients);
        assert_eq!(sets[&"a-PROD".parse().expect("set")].consumer.as_deref(), Some("a-PROD-jwk"));
    }

    #[test]
    fn names_that_can_not_work_are_refused_at_start() {
        let e =
            check_names(&config("jwk-"), &[client("a", &["TEST"], Some("jwk-{client}-{env}--2026-01-01"))])
                .expect_err("looks like a key");
        assert!(e.0.contains("looks like a key secret name"), "{e}");
        let long = "c".repeat(64);
        let e = check_names(&config(&"p".repeat(40)), &[client(&long, &["ABCDEFGHIJKLMNOP"], None)])
            .expect_err("long");
        assert!(e.0.contains("127 characters"), "{e}");
    }
}
