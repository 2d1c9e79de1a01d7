//! The wiring: builds the application from a loaded [`Config`]: the store adapter (the file
//! store, or Key Vault with its credential), the publisher, the engine and the worker's parts.
//! This is the one module that knows every adapter; the command line calls it, and nothing
//! below it knows the command line.

pub mod maskinporten;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, ConfigError, StoreConfig};
use crate::engine::Engine;
use crate::events::{AuditLog, EventCounts, EventWebhook, Events, Origin};
use crate::keygen::AwsLcGenerator;
use crate::store::{FileStore, Opened};

/// What can stop the application from being built; each message names the file and setting,
/// and never shows a URL's path, query or credentials (see `redact::urls`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened (a credential, a URL, a certificate).
    #[error("config file {}: [store]: {}", file.display(), crate::redact::urls(message))]
    Store { file: PathBuf, message: String },
    /// The worker was asked for without a `[schedule]`.
    #[error(
        "config file {} has no [schedule]; the worker needs one, such as:\n\n[schedule]\ncron = \"0 6 * * *\"    # 06:00 every day\ntimezone = \"Europe/Oslo\"",
        file.display()
    )]
    NoSchedule { file: PathBuf },
    /// An `[alerts]` setting could not be used.
    #[error("config file {}: {}", file.display(), crate::redact::urls(message))]
    Alerts { file: PathBuf, message: String },
    /// An `[events]` setting could not be used (a webhook's URL or signing key).
    #[error("config file {}: {}", file.display(), crate::redact::urls(message))]
    Events { file: PathBuf, message: String },
    /// The worker's endpoint could not listen.
    #[error("cannot listen on {listen}: {cause}; change [server] listen in {}", file.display())]
    Listen { listen: std::net::SocketAddr, file: PathBuf, cause: std::io::Error },
    /// A `[maskinporten.ENV]` setting could not be used (a certificate, a `ca_cert`).
    #[error("config file {}: {}", file.display(), crate::redact::urls(message))]
    Maskinporten { file: PathBuf, message: String },
    /// The worker's endpoint failed while serving.
    #[error("the HTTP endpoint failed: {cause}")]
    Server { cause: std::io::Error },
    /// The task serving the endpoint panicked or was cancelled.
    #[error("the HTTP endpoint stopped: {cause}")]
    ServerStopped { cause: tokio::task::JoinError },
}

/// Loads the config at `path` (`./jwk-rotator.toml` when none is given) and runs the checks
/// that need an adapter's rules, such as Key Vault's secret names, before anything is opened.
pub fn load(path: Option<&Path>) -> Result<Config, AppError> {
    let path = path.map_or_else(|| PathBuf::from("jwk-rotator.toml"), Path::to_path_buf);
    let config = Config::load(&path)?;
    if let StoreConfig::AzureKeyVault(azure) = &config.store {
        crate::azure::check_names(azure, &config.clients).map_err(|message| store_error(&config, message))?;
    }
    Ok(config)
}

fn store_error(config: &Config, e: crate::azure::AzureError) -> AppError {
    AppError::Store { file: config.file.clone(), message: e.to_string() }
}

/// The store named by the config: a directory's key files (no consumer secrets), or a Key
/// Vault's key secrets and consumer secrets.
pub(crate) fn open_store(config: &Config) -> Result<Opened, AppError> {
    match &config.store {
        StoreConfig::File { path, .. } => Ok(Opened::keys_only(Arc::new(FileStore::new(path.clone())))),
        StoreConfig::AzureKeyVault(azure) => {
            let credential =
                crate::azure::credential::credential(azure, &crate::azure::credential::process_env)
                    .map_err(|m| store_error(config, m))?;
            let store = crate::azure::open_store_with(azure, &config.clients, credential, None)
                .map_err(|m| store_error(config, m))?;
            Ok(Opened::with_consumers(Arc::new(store)))
        }
    }
}

/// The engine with the production adapters for this config, over `store`; grants to
/// Maskinporten are signed at `clock`'s time, and events go to `[events]` as coming from
/// `origin`, counted in `counts`.
pub async fn engine_over(
    config: &Config,
    store: Opened,
    clock: crate::maskinporten::api::WallClock,
    counts: EventCounts,
    origin: Origin,
) -> Result<Engine, AppError> {
    let adapters = maskinporten::adapters(config, clock).await?;
    let engine = Engine::over(store, Arc::new(AwsLcGenerator), adapters.publisher)
        .with_prover(adapters.prover)
        .with_lock_timeout(config.store.lock_timeout());
    let engine = match restarter(config) {
        Some(restarter) => engine.with_restarter(restarter),
        None => engine,
    };
    Ok(match events(config, counts)? {
        Some(events) => engine.with_events(Arc::new(events), origin),
        None => engine,
    })
}

/// The restarter for the config's `[[client.restart]]` targets; Azure apps are restarted with
/// the Key Vault store's credential (the loader refused them for a file store).
fn restarter(config: &Config) -> Option<Arc<dyn crate::restart::Restarter>> {
    let credential = || match &config.store {
        StoreConfig::AzureKeyVault(azure) => {
            crate::azure::credential::credential(azure, &crate::azure::credential::process_env)
                .map_err(|e| crate::restart::ArmError::Credential { cause: e.to_string() })
        }
        StoreConfig::File { .. } => Err(crate::restart::ArmError::Credential {
            cause:
                "Azure apps are restarted with the Key Vault store's credential, and the store is a directory"
                    .to_owned(),
        }),
    };
    crate::restart::restarter(&config.clients, &config.kubernetes, &config.azure_resource_manager, credential)
}

/// The engine with the production adapters for this config; its events' actor is the OS user.
pub async fn engine(config: &Config) -> Result<Engine, AppError> {
    let origin = Origin::command(event_source(config));
    let clock = crate::maskinporten::api::system_clock();
    engine_over(config, open_store(config)?, clock, EventCounts::default(), origin).await
}

/// The events' `source`: `jwk-rotator/file`, or `jwk-rotator/` and the vault's host name.
pub fn event_source(config: &Config) -> String {
    match &config.store {
        StoreConfig::File { .. } => "jwk-rotator/file".to_owned(),
        StoreConfig::AzureKeyVault(azure) => {
            format!("jwk-rotator/{}", azure.vault_url.url().host_str().unwrap_or("azure-key-vault"))
        }
    }
}

/// The sink of `[events]`, if the config has it: the structured log lines, its audit log and
/// webhooks (the signing keys read from the environment now, so that a missing one stops the
/// command before it changes anything).
pub fn events(config: &Config, counts: EventCounts) -> Result<Option<Events>, AppError> {
    let Some(settings) = &config.events else { return Ok(None) };
    let mut hooks = Vec::new();
    for hook in &settings.webhook {
        let refused = |message: String| AppError::Events { file: config.file.clone(), message };
        let settings = hook.settings().map_err(|e| refused(e.to_string()))?;
        let hook = EventWebhook::new(settings).map_err(|e| refused(e.to_string()))?;
        hooks.push(hook);
    }
    Ok(Some(Events::new(settings.audit_log.as_ref().map(AuditLog::new), hooks, counts)))
}

/// A Key Vault that altinn-jwks wrote to, read with the `[store]` Key Vault's credential and
/// settings (`import altinn-jwks --from VAULT_URL`).
pub(crate) fn altinn_vault(
    config: &Config,
    url: &str,
) -> Result<crate::azure::altinn::AltinnVault, AppError> {
    let StoreConfig::AzureKeyVault(azure) = &config.store else {
        return Err(AppError::Store {
            file: config.file.clone(),
            message: format!(
                "--from {url} is a Key Vault, which is read with the credential and ca_cert of [store]; this config's store is a directory (kind = \"file\"): copy the keys to a directory, or import with a config whose [store] is kind = \"azure-key-vault\""
            ),
        });
    };
    let credential = crate::azure::credential::credential(azure, &crate::azure::credential::process_env)
        .map_err(|e| store_error(config, e))?;
    crate::azure::altinn::AltinnVault::open_with(azure, url, credential, None)
        .map_err(|e| store_error(config, e))
}
