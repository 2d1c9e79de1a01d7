//! `consumer_format` of a `[[client]]`, resolved against its client ids and the Maskinporten
//! issuers (an `altinn-app` document names both, so each environment must have them), and the
//! check that Azure restarts have the Key Vault store's credential.

use std::collections::BTreeMap;

use super::maskinporten::{self, MaskinportenEnv};
use super::{ClientConfig, Config, SettingError, StoreConfig};
use crate::consumer::{AltinnApp, ConsumerFormat, FormatName};
use crate::kid::{Environment, KeySet};

/// The client's consumer format for each of its environments.
pub(super) fn resolve_format(
    name: Option<FormatName>,
    environments: &[Environment],
    client_ids: &BTreeMap<Environment, String>,
    tables: &BTreeMap<Environment, MaskinportenEnv>,
) -> Result<ConsumerFormat, SettingError> {
    if name.unwrap_or_default() == FormatName::EncodedJwk {
        return Ok(ConsumerFormat::EncodedJwk);
    }
    let mut by_env = BTreeMap::new();
    for env in environments {
        let Some(client_id) = client_ids.get(env) else {
            return Err(SettingError::new(
                format!("client_id.{env}"),
                format!(
                    "consumer_format = \"altinn-app\" writes the client id beside the key, but client_id.{env} is not set: add client_id = {{ {env} = \"...\" }} with the client's id in Maskinporten"
                ),
            ));
        };
        let Some(authority) = maskinporten::issuer_of(env, tables) else {
            return Err(SettingError::new(
                format!("[maskinporten.{env}]"),
                format!(
                    "consumer_format = \"altinn-app\" writes Maskinporten's issuer as the authority, and only TEST and PROD have one built in: add a [maskinporten.{env}] table with issuer (and api_url, token_url)"
                ),
            ));
        };
        by_env.insert(env.clone(), AltinnApp { authority, client_id: client_id.clone() });
    }
    Ok(ConsumerFormat::AltinnApp(by_env))
}

/// The consumer format `name` for the key set `set`, resolved as the loader resolves
/// `consumer_format` (for `export-key --format`, which may ask for a shape the client's secret
/// does not use).
pub fn consumer_format_for(
    config: &Config,
    set: &KeySet,
    name: crate::consumer::FormatName,
) -> Result<crate::consumer::ConsumerFormat, SettingError> {
    let client = set.client();
    let Some(c) = config.clients.iter().find(|c| &c.name == client) else {
        return Err(SettingError::general(format!("client {client} is not in the config")));
    };
    let env = std::slice::from_ref(set.env());
    resolve_format(Some(name), env, &c.maskinporten.client_id, &config.maskinporten)
        .map_err(|e| e.within(format!("client {client}")))
}

/// Azure apps are restarted with the Key Vault store's credential: a config whose store is a
/// directory has none.
pub(super) fn check_azure_restarts(
    clients: &[ClientConfig],
    store: &StoreConfig,
) -> Result<(), SettingError> {
    if matches!(store, StoreConfig::AzureKeyVault(_)) {
        return Ok(());
    }
    let Some((client, target)) =
        clients.iter().find_map(|c| c.restart.iter().find(|t| t.is_azure()).map(|t| (c, t)))
    else {
        return Ok(());
    };
    Err(SettingError::new(
        "kind",
        format!(
            "kind = {:?} restarts the app through Azure Resource Manager with the Key Vault store's credential ([store] credential), and this config's store is a directory; use kind = \"azure-key-vault\" in [store], or restart the app another way",
            target.kind()
        ),
    )
    .within(format!("client {}", client.name))
    .within("[[client.restart]]"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};
    use crate::consumer::{AltinnApp, ConsumerShape};

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/jwk-rotator/config.toml"))
    }

    #[test]
    fn altinn_app_names_each_environments_client_id_and_issuer() {
        let config = load(
            "[[client]]\nname = \"a\"\nconsumer_format = \"altinn-app\"\nclient_id = { TEST = \"t-id\", PROD = \"p-id\" }",
        )
        .expect("config");
        let format = &config.clients[0].consumer_format;
        assert_eq!(
            format.shape(&"PROD".parse().expect("env")),
            ConsumerShape::AltinnApp(AltinnApp {
                authority: "https://maskinporten.no/".to_owned(),
                client_id: "p-id".to_owned()
            })
        );
        let plain = load("[[client]]\nname = \"a\"").expect("config");
        assert_eq!(
            plain.clients[0].consumer_format.shape(&"TEST".parse().expect("env")),
            ConsumerShape::EncodedJwk
        );
    }

    #[test]
    fn altinn_app_without_a_client_id_is_refused_at_load_naming_it() {
        let e = load(
            "[[client]]\nname = \"a\"\nconsumer_format = \"altinn-app\"\nclient_id = { TEST = \"t-id\" }",
        )
        .expect_err("no PROD id");
        assert_eq!(e.setting(), Some("client_id.PROD"), "{e}");
        assert!(
            e.to_string().contains("consumer_format = \"altinn-app\"") && e.to_string().contains("client a"),
            "{e}"
        );
        let e = load("[[client]]\nname = \"a\"\nenvironments = [\"DEV\"]\nconsumer_format = \"altinn-app\"\nclient_id = { DEV = \"d\" }")
            .expect_err("no issuer for DEV");
        assert_eq!(e.setting(), Some("[maskinporten.DEV]"), "{e}");
        let e = load("[[client]]\nname = \"a\"\nconsumer_format = \"jwk\"").expect_err("unknown format");
        assert!(e.to_string().contains("\"altinn-app\""), "{e}");
    }

    #[test]
    fn restarts_are_read_and_azure_ones_need_the_key_vault_credential() {
        let k8s = "[[client]]\nname = \"a\"\n[[client.restart]]\nkind = \"kubernetes-deployment\"\nnamespace = \"team-a\"\nname = \"app\"\n[kubernetes]\napi_url = \"https://10.0.0.1:443\"\ntoken_file = \"token\"";
        let config = load(k8s).expect("config");
        assert_eq!(config.clients[0].restart.len(), 1);
        assert_eq!(config.kubernetes.token_file.as_deref(), Some(Path::new("/etc/jwk-rotator/token")));
        let azure = "[[client]]\nname = \"a\"\n[[client.restart]]\nkind = \"app-service\"\nresource_id = \"/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/w\"";
        let e = load(azure).expect_err("file store");
        assert!(e.to_string().contains("azure-key-vault") && e.to_string().contains("client a"), "{e}");
        let e = load(&k8s.replace("https://10.0.0.1:443", "http://10.0.0.1")).expect_err("http");
        assert!(e.to_string().contains("[kubernetes]") && e.to_string().contains("https"), "{e}");
    }
}
