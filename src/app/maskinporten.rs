//! The Maskinporten adapters for a config: the publisher of each key set (files, Digdir's
//! self-service API, or both) and the prover of keys by token grant. The admin client's business
//! certificate is read here, from a PKCS#12 file, PEM files, or a Key Vault certificate's secret.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::AppError;
use crate::config::maskinporten::{AdminCertificate, MaskinportenEnv, PublishTarget};
use crate::config::{Config, StoreConfig};
use crate::kid::{Environment, KeySet};
use crate::maskinporten::admin::{AdminCredential, Concerns};
use crate::maskinporten::api::{SelfServiceApi, WallClock};
use crate::maskinporten::http::{Retry, http_client};
use crate::maskinporten::jwt::AdminAuth;
use crate::maskinporten::publisher::{self, ApiPublisher};
use crate::maskinporten::token::{AdminTokens, TokenEndpoint};
use crate::maskinporten::verify::{self, TokenProver};
use crate::proof::{NoProver, Prover};
use crate::publish::{CertificateExpiry, FilePublisher, Publisher, Routed};

/// A key set's publisher and the prover, built from the config.
pub struct Adapters {
    pub publisher: Arc<dyn Publisher>,
    pub prover: Arc<dyn Prover>,
}

fn error(config: &Config, env: &Environment, message: String) -> AppError {
    AppError::Maskinporten { file: config.file.clone(), message: format!("[maskinporten.{env}] {message}") }
}

/// One environment's clients: the token endpoint and, when some key set of the environment
/// is published through the API, the admin client's API.
struct EnvClients {
    endpoint: Arc<TokenEndpoint>,
    api: Option<Arc<SelfServiceApi>>,
    certificate: Option<(String, Arc<AdminCredential>)>,
}

fn retry(table: &MaskinportenEnv) -> Retry {
    Retry {
        initial_delay: table.retry.initial_delay.to_std(),
        max_delay: table.retry.max_delay.to_std(),
        max_retries: table.retry.max_retries,
    }
}

/// Reads the admin client's business certificate. Errors name the setting and the file, the
/// environment variable or the secret, never the password.
pub(crate) async fn admin_credential(
    config: &Config,
    env: &Environment,
    source: &AdminCertificate,
) -> Result<AdminCredential, AppError> {
    let setting = source.setting();
    let fail = |what: String| error(config, env, format!("{setting}: {what}"));
    match source {
        AdminCertificate::Pkcs12 { path, password_env } => {
            let der = std::fs::read(path).map_err(|e| {
                fail(format!(
                    "cannot read {}: {e}; check the path and that this user may read it",
                    path.display()
                ))
            })?;
            let password = match password_env {
                None => String::new(),
                Some(var) => std::env::var(var).map_err(|_| {
                    fail(format!(
                        "the environment variable {var} (admin_certificate_password_env) is not set; set it to the PKCS#12 file's password"
                    ))
                })?,
            };
            let password = zeroize::Zeroizing::new(password);
            AdminCredential::from_pkcs12(&der, &password)
                .map_err(|e| fail(format!("{}: {e}", path.display())))
        }
        AdminCertificate::Pem { certificate, key } => pem_credential(config, env, certificate, key),
        AdminCertificate::KeyVaultSecret { name } => {
            let StoreConfig::AzureKeyVault(azure) = &config.store else {
                return Err(fail(
                    "a Key Vault certificate is read from the [store] vault, and this config's store is a directory; use admin_certificate (PKCS#12) or admin_certificate_pem instead".to_owned(),
                ));
            };
            let vault = super::altinn_vault(config, azure.vault_url.as_str())?;
            let value = vault.value(name).await.map_err(|e| {
                fail(format!(
                    "{e}; the identity needs \"Key Vault Secrets User\" to read a certificate's secret"
                ))
            })?;
            AdminCredential::from_key_vault_secret(&value).map_err(|e| fail(e.to_string()))
        }
    }
}

/// A business certificate from a PEM chain and a PEM key; an error names the setting of the
/// file it is about (`admin_key_pem` for a damaged key, both when they do not belong together).
fn pem_credential(
    config: &Config,
    env: &Environment,
    certificate: &std::path::Path,
    key: &std::path::Path,
) -> Result<AdminCredential, AppError> {
    let certificate_setting = format!("admin_certificate_pem = {:?}", certificate.display().to_string());
    let key_setting = format!("admin_key_pem = {:?}", key.display().to_string());
    let read = |setting: &str, path: &std::path::Path| {
        std::fs::read(path).map(zeroize::Zeroizing::new).map_err(|e| {
            let why =
                format!("cannot read {}: {e}; check the path and that this user may read it", path.display());
            error(config, env, format!("{setting}: {why}"))
        })
    };
    let (chain, key_pem) = (read(&certificate_setting, certificate)?, read(&key_setting, key)?);
    AdminCredential::from_pem(&chain, &key_pem).map_err(|e| {
        let setting = match e.concerns() {
            Concerns::Certificate => certificate_setting.clone(),
            Concerns::Key => key_setting.clone(),
            Concerns::Both => format!("{certificate_setting} and {key_setting}"),
        };
        error(config, env, format!("{setting}: {e}"))
    })
}

async fn env_clients(
    config: &Config,
    table: &MaskinportenEnv,
    needs_api: bool,
    clock: &WallClock,
) -> Result<EnvClients, AppError> {
    let env = &table.env;
    let http = http_client(table.ca_cert.as_deref()).map_err(|e| error(config, env, e.to_string()))?;
    let endpoint = Arc::new(TokenEndpoint::new(
        http.clone(),
        table.token_url.clone(),
        table.issuer.clone(),
        retry(table),
    ));
    let Some(admin) = table.admin.as_ref().filter(|_| needs_api) else {
        return Ok(EnvClients { endpoint, api: None, certificate: None });
    };
    let credential = Arc::new(admin_credential(config, env, &admin.certificate).await?);
    let admin_endpoint =
        TokenEndpoint::new(http.clone(), table.token_url.clone(), table.issuer.clone(), retry(table));
    let tokens = Arc::new(AdminTokens::new(
        admin_endpoint,
        credential.clone(),
        admin.kid.clone().map_or(AdminAuth::X5c, AdminAuth::Kid),
        admin.client_id.clone(),
        admin.scopes.clone(),
    ));
    let api = Arc::new(SelfServiceApi::new(http, table.api_url.clone(), retry(table), tokens, clock.clone()));
    let setting = format!("[maskinporten.{env}] {}", admin.certificate.setting());
    Ok(EnvClients { endpoint, api: Some(api), certificate: Some((setting, credential)) })
}

/// The publisher and prover for `config`, signing grants at `clock`'s time.
pub async fn adapters(config: &Config, clock: WallClock) -> Result<Adapters, AppError> {
    let mut clients = BTreeMap::new();
    for (env, table) in &config.maskinporten {
        let needs_api = config.clients.iter().any(|c| {
            c.environments.contains(env) && c.maskinporten.publishes_to(PublishTarget::MaskinportenApi)
        });
        clients.insert(env.clone(), env_clients(config, table, needs_api, &clock).await?);
    }
    let Bindings { mut routed, api, prove, api_sets } = bindings(config, &clients);
    if !api.is_empty() {
        let certificates = certificates(&clients, &api_sets);
        let publisher: Arc<dyn Publisher> =
            Arc::new(ApiPublisher::new(api.clone(), certificates, clock.clone()));
        for set in api.keys() {
            routed.route(set.clone(), publisher.clone());
        }
    }
    let prover: Arc<dyn Prover> =
        if prove.is_empty() { Arc::new(NoProver) } else { Arc::new(TokenProver::new(prove, clock)) };
    Ok(Adapters { publisher: Arc::new(routed), prover })
}

/// Where each key set goes: its files (routed now), its Maskinporten client through the API,
/// and the grant that proves its keys.
struct Bindings {
    routed: Routed,
    api: BTreeMap<KeySet, publisher::Binding>,
    prove: BTreeMap<KeySet, verify::Binding>,
    /// The key sets published through each environment's API.
    api_sets: BTreeMap<Environment, Vec<KeySet>>,
}

/// Every key set's bindings, over each environment's `clients`.
fn bindings(config: &Config, clients: &BTreeMap<Environment, EnvClients>) -> Bindings {
    let files: Arc<dyn Publisher> = Arc::new(FilePublisher::new(config.publish.dir.clone()));
    let mut b = Bindings {
        routed: Routed::new(),
        api: BTreeMap::new(),
        prove: BTreeMap::new(),
        api_sets: BTreeMap::new(),
    };
    for c in &config.clients {
        let mp = &c.maskinporten;
        for env in &c.environments {
            let set = KeySet::new(c.name.clone(), env.clone());
            let (client_id, env_clients) = (mp.client_id.get(env), clients.get(env));
            if mp.publishes_to(PublishTarget::Files) {
                b.routed.route(set.clone(), files.clone());
            }
            if let (Some(client_id), Some(EnvClients { api: Some(api), .. })) = (client_id, env_clients)
                && mp.publishes_to(PublishTarget::MaskinportenApi)
            {
                let binding = publisher::Binding {
                    client_id: client_id.clone(),
                    api: api.clone(),
                    prune_unmanaged: mp.prune_unmanaged,
                };
                b.api.insert(set.clone(), binding);
                b.api_sets.entry(env.clone()).or_default().push(set.clone());
            }
            if let (Some(client_id), Some(scope), Some(env_clients), Some(table)) =
                (client_id, &mp.verify_scope, env_clients, config.maskinporten.get(env))
            {
                let binding = verify::Binding {
                    client_id: client_id.clone(),
                    scope: scope.clone(),
                    endpoint: env_clients.endpoint.clone(),
                    wait: table.verify_wait.to_std(),
                };
                b.prove.insert(set, binding);
            }
        }
    }
    b
}

/// The admin clients' business certificates, each with the key sets published with it.
fn certificates(
    clients: &BTreeMap<Environment, EnvClients>,
    api_sets: &BTreeMap<Environment, Vec<KeySet>>,
) -> Vec<CertificateExpiry> {
    clients
        .iter()
        .filter_map(|(env, c)| {
            let (setting, credential) = c.certificate.as_ref()?;
            Some(CertificateExpiry {
                environment: env.clone(),
                setting: setting.clone(),
                subject: credential.subject().to_owned(),
                not_after: credential.not_after(),
                key_sets: api_sets.get(env).cloned().unwrap_or_default(),
            })
        })
        .collect()
}
