//! The Azure Key Vault store: configuration, credentials, secret layout and the store itself.

pub mod altinn;
mod budget;
pub mod credential;
mod error;
pub mod layout;
mod store;
mod vault;
pub mod versions;

pub(crate) use store::SetInfo;
pub use store::VaultStore;

/// A Key Vault setting, credential or name that can not work; each says which and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AzureError {
    /// The credential needs a `[store]` setting (when `setting` is given) or an environment
    /// variable that is not set.
    #[error("credential = {:?} needs {}", credential.as_str(), needs(*credential, setting, var))]
    Missing { credential: CredentialKind, setting: Option<&'static str>, var: &'static str },
    /// The Azure SDK would not build the credential.
    #[error("credential {}: {cause}", credential.as_str())]
    Credential { credential: CredentialKind, cause: String },
    /// An environment variable that must hold a URL does not.
    #[error("{var} is not a URL: {cause}")]
    VariableNotAUrl { var: &'static str, cause: String },
    /// A key set's secret names would be too long for Key Vault.
    #[error(
        "secret names for key set {key_set} would pass Key Vault's {} characters with secret_prefix {prefix:?}; use a shorter prefix or client name",
        layout::MAX_NAME
    )]
    NamesTooLong { key_set: KeySet, prefix: String },
    /// A kid's secret name would be too long for Key Vault.
    #[error(
        "secret name {name} for kid {kid} is longer than Key Vault's {} characters; use a shorter secret_prefix or client name",
        layout::MAX_NAME
    )]
    NameTooLong { name: String, kid: Kid },
    /// A consumer secret's name could be taken for a key's.
    #[error(
        "consumer_secret {name:?} of client {client} looks like a key secret name (secret_prefix {prefix:?} and a kid); choose another name"
    )]
    ConsumerLikeKey { name: String, client: ClientName, prefix: String },
    /// Two key sets would share one consumer secret.
    #[error(
        "consumer_secret {name:?} is the same for key sets {first} and {second}; put {{env}} (and {{client}}) in the template, or give each environment its own vault and config"
    )]
    ConsumerShared { name: String, first: KeySet, second: KeySet },
    /// `ca_cert` can not be used.
    #[error(transparent)]
    CaCert(#[from] crate::tls::CaCertError),
    /// The Azure SDK would not make a client for the vault.
    #[error("vault_url {vault_url:?}: {cause}")]
    VaultClient { vault_url: String, cause: String },
    /// `--from` is not a URL.
    #[error("--from {url:?} is not a directory or a URL ({cause})")]
    FromNotAUrl { url: String, cause: String },
    /// `--from` is a URL, but not an https one.
    #[error("--from {url:?}: a Key Vault URL must use https, such as https://my-vault.vault.azure.net/")]
    FromNotHttps { url: String },
    /// `--from` is not a Key Vault URL.
    #[error("--from: {0}")]
    FromNotAVault(SettingError),
}

/// What a credential needs: `setting` in `[store]` or `var`, or `var` alone, with where it
/// comes from.
fn needs(credential: CredentialKind, setting: &Option<&'static str>, var: &str) -> String {
    if let Some(setting) = setting {
        return format!("{setting} in [store] or the environment variable {var}");
    }
    let hint = match credential {
        CredentialKind::WorkloadIdentity => {
            " (set by AKS workload identity: label the pod azure.workload.identity/use=true)"
        }
        CredentialKind::GithubOidc => {
            ", which GitHub Actions sets only when the workflow or job has `permissions: id-token: write`"
        }
        CredentialKind::StaticToken => " (any token your emulator accepts)",
        _ => "",
    };
    format!("the environment variable {var}{hint}")
}

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::HttpClient;

use crate::config::azure::{AzureConfig, CredentialKind};
use crate::config::{ClientConfig, SettingError};
use crate::kid::{ClientName, KeySet, Kid};

/// Opens the store with a credential, and an HTTP client instead of the SDK's (tests inject one
/// that reaches an in-process fake vault). The names were checked when the config loaded
/// (`check_names`); they are checked again here for callers that skip the loader.
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
pub(crate) fn check_names(config: &AzureConfig, clients: &[ClientConfig]) -> Result<(), AzureError> {
    let prefix = &config.secret_prefix;
    let mut consumers: HashMap<String, KeySet> = HashMap::new();
    for client in clients {
        for env in &client.environments {
            let set = KeySet::new(client.name.clone(), env.clone());
            if layout::longest_name(prefix, &set) > layout::MAX_NAME {
                return Err(AzureError::NamesTooLong { key_set: set, prefix: prefix.clone() });
            }
            let Some(name) = consumer_name(client, &set) else { continue };
            if layout::kid_of_name(prefix, &name).is_some() {
                return Err(AzureError::ConsumerLikeKey {
                    name,
                    client: client.name.clone(),
                    prefix: prefix.clone(),
                });
            }
            if let Some(other) = consumers.insert(name.to_ascii_lowercase(), set.clone()) {
                return Err(AzureError::ConsumerShared { name, first: other, second: set });
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
            let shape = client.consumer_format.shape(set.env());
            sets.insert(set, SetInfo { policy: client.policy.clone(), consumer, shape });
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
            consumer_format: Default::default(),
            restart: Vec::new(),
            maskinporten: Default::default(),
        }
    }

    #[test]
    fn one_consumer_secret_for_two_key_sets_is_refused() {
        let clients = [client("a", &["TEST", "PROD"], Some("MaskinportenSettings--EncodedJwk"))];
        let e = check_names(&config("jwk-"), &clients).expect_err("shared");
        let set = |s: &str| s.parse::<KeySet>().expect("set");
        assert_eq!(
            e,
            AzureError::ConsumerShared {
                name: "MaskinportenSettings--EncodedJwk".to_owned(),
                first: set("a-TEST"),
                second: set("a-PROD")
            }
        );
        let shown = e.to_string();
        assert!(
            shown.contains("is the same for key sets a-TEST and a-PROD") && shown.contains("{env}"),
            "{e}"
        );
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
        assert!(
            matches!(&e, AzureError::ConsumerLikeKey { name, .. } if name == "jwk-a-TEST--2026-01-01"),
            "{e:?}"
        );
        assert!(e.to_string().contains("looks like a key secret name"), "{e}");
        let long = "c".repeat(64);
        let e = check_names(&config(&"p".repeat(40)), &[client(&long, &["ABCDEFGHIJKLMNOP"], None)])
            .expect_err("long");
        assert!(matches!(&e, AzureError::NamesTooLong { prefix, .. } if prefix.len() == 40), "{e:?}");
        assert!(e.to_string().contains("127 characters"), "{e}");
    }
}
