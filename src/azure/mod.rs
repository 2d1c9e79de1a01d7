//! The Azure Key Vault store: configuration, credentials, secret layout and the store itself.

pub mod altinn;
mod config;
pub mod credential;
mod error;
pub mod layout;
mod store;
mod tls;
mod vault;
pub mod versions;

pub use config::{AzureConfig, CredentialKind, RetrySettings, check_consumer_template};
pub use store::{SetInfo, VaultStore};

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::HttpClient;

use crate::config::ClientConfig;
use crate::kid::KeySet;
use crate::store::KeyStore;

/// Opens the Key Vault store for these clients, with the credential the config names.
pub fn open_store(config: &AzureConfig, clients: &[ClientConfig]) -> anyhow::Result<Arc<dyn KeyStore>> {
    let credential = credential::credential(config, &credential::process_env).map_err(anyhow::Error::msg)?;
    let store = open_store_with(config, clients, credential, None).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(store))
}

/// Opens the store with a given credential, and an HTTP client instead of the SDK's (tests
/// inject one that reaches an in-process fake vault).
pub fn open_store_with(
    config: &AzureConfig,
    clients: &[ClientConfig],
    credential: Arc<dyn TokenCredential>,
    transport: Option<Arc<dyn HttpClient>>,
) -> Result<VaultStore, String> {
    let url = url::Url::parse(&config.vault_url)
        .map_err(|e| format!("vault_url {:?} is not a URL ({e})", config.vault_url))?;
    if url.scheme() != "https" {
        return Err(format!(
            "vault_url {:?} must use https (Key Vault and the Azure SDK accept nothing else; for an emulator give its https URL and ca_cert)",
            config.vault_url
        ));
    }
    let sets = key_sets(config, clients)?;
    let vault = vault::Vault::new(config, credential, transport)?;
    Ok(VaultStore::new(vault, config, sets))
}

/// The configured key sets with their policies and consumer secret names, checked against
/// Key Vault's name rules and each other.
fn key_sets(config: &AzureConfig, clients: &[ClientConfig]) -> Result<HashMap<KeySet, SetInfo>, String> {
    let prefix = &config.secret_prefix;
    let mut sets = HashMap::new();
    let mut consumers: HashMap<String, KeySet> = HashMap::new();
    for client in clients {
        for env in &client.environments {
            let set = KeySet::new(client.name.clone(), env.clone());
            if layout::longest_name(prefix, &set) > layout::MAX_NAME {
                return Err(format!(
                    "secret names for key set {set} would pass Key Vault's {} characters with secret_prefix {prefix:?}; use a shorter prefix or client name",
                    layout::MAX_NAME
                ));
            }
            let consumer = client
                .consumer_secret
                .as_ref()
                .map(|t| t.replace("{client}", client.name.as_str()).replace("{env}", env.as_str()));
            if let Some(name) = &consumer {
                if layout::kid_of_name(prefix, name).is_some() {
                    return Err(format!(
                        "consumer_secret {name:?} of client {} looks like a key secret name (secret_prefix {prefix:?} and a kid); choose another name",
                        client.name
                    ));
                }
                if let Some(other) = consumers.insert(name.to_ascii_lowercase(), set.clone()) {
                    return Err(format!(
                        "consumer_secret {name:?} is the same for key sets {other} and {set}; put {{env}} (and {{client}}) in the template, or give each environment its own vault and config"
                    ));
                }
            }
            sets.insert(set, SetInfo { policy: client.policy.clone(), consumer });
        }
    }
    Ok(sets)
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
        }
    }

    #[test]
    fn one_consumer_secret_for_two_key_sets_is_refused() {
        let clients = [client("a", &["TEST", "PROD"], Some("MaskinportenSettings--EncodedJwk"))];
        let e = key_sets(&config("jwk-"), &clients).expect_err("shared");
        assert!(e.contains("is the same for key sets a-TEST and a-PROD") && e.contains("{env}"), "{e}");
        let clients = [client("a", &["TEST", "PROD"], Some("{client}-{env}-jwk"))];
        let sets = key_sets(&config("jwk-"), &clients).expect("sets");
        assert_eq!(sets[&"a-PROD".parse().expect("set")].consumer.as_deref(), Some("a-PROD-jwk"));
    }

    #[test]
    fn names_that_can_not_work_are_refused_at_start() {
        let e = key_sets(&config("jwk-"), &[client("a", &["TEST"], Some("jwk-{client}-{env}--2026-01-01"))])
            .expect_err("looks like a key");
        assert!(e.contains("looks like a key secret name"), "{e}");
        let long = "c".repeat(64);
        let e = key_sets(&config(&"p".repeat(40)), &[client(&long, &["ABCDEFGHIJKLMNOP"], None)])
            .expect_err("long");
        assert!(e.contains("127 characters"), "{e}");
    }
}
