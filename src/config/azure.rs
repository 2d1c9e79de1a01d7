//! `[store] kind = "azure-key-vault"`: vault, secret names and the credential, checked at load.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SettingError;
use crate::policy::Span;

/// How the tool authenticates to Key Vault; chosen explicitly, never guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// Azure Container Apps, App Service, VMs (optionally user-assigned by `client_id`).
    ManagedIdentity,
    /// AKS workload identity (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`).
    WorkloadIdentity,
    /// GitHub Actions OIDC: a fresh GitHub ID token for each client assertion.
    GithubOidc,
    /// `az login` on a laptop.
    AzureCli,
    /// Azure CLI or Azure Developer CLI, whichever is signed in.
    Developer,
    /// A service principal from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
    ClientSecret,
    /// Emulators: the bearer token from `JWK_ROTATOR_STATIC_TOKEN`.
    StaticToken,
}

impl CredentialKind {
    /// The name the config gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ManagedIdentity => "managed-identity",
            CredentialKind::WorkloadIdentity => "workload-identity",
            CredentialKind::GithubOidc => "github-oidc",
            CredentialKind::AzureCli => "azure-cli",
            CredentialKind::Developer => "developer",
            CredentialKind::ClientSecret => "client-secret",
            CredentialKind::StaticToken => "static-token",
        }
    }
}

/// A Key Vault URL: `https://{vault}.vault.azure.net/`, or an emulator's https URL. Only https
/// parses (Key Vault and the Azure SDK accept nothing else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultUrl(url::Url);

impl VaultUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl std::str::FromStr for VaultUrl {
    type Err = SettingError;
    fn from_str(s: &str) -> Result<Self, SettingError> {
        let url = url::Url::parse(s)
            .map_err(|e| SettingError::new("vault_url", format!("vault_url {s:?} is not a URL ({e})")))?;
        if url.scheme() != "https" {
            return Err(SettingError::new(
                "vault_url",
                format!(
                    "vault_url {s:?} must use https (Key Vault and the Azure SDK accept nothing else; for an emulator give its https URL and ca_cert)"
                ),
            ));
        }
        Ok(VaultUrl(url))
    }
}

impl std::fmt::Display for VaultUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for VaultUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::de::from_str(d)
    }
}

/// The Key Vault store's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// `https://{vault}.vault.azure.net/`
    pub vault_url: VaultUrl,
    /// Put before every secret name this tool manages.
    #[serde(default = "default_prefix")]
    pub secret_prefix: String,
    pub credential: CredentialKind,
    /// Client id of a user-assigned managed identity, or the app registration for
    /// `workload-identity` / `github-oidc` / `client-secret` when not in the environment.
    pub client_id: Option<String>,
    /// Tenant for `github-oidc` (else `AZURE_TENANT_ID`).
    pub tenant_id: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's (emulators).
    pub ca_cert: Option<PathBuf>,
    /// Whether the vault's challenge resource must match its host (turn off for emulators).
    #[serde(default = "yes")]
    pub verify_challenge_resource: bool,
    /// Purge deleted secrets after deleting them (needs "Key Vault Purge Operator").
    #[serde(default)]
    pub purge: bool,
    /// How long a run waits after writing a new key before it looks for racing writers of the
    /// same kid. Key Vault stamps versions in whole seconds, so that a version written later
    /// can tie with ours only within that second; the wait covers it with a margin.
    #[serde(default = "default_settle", deserialize_with = "de_settle")]
    pub settle: Span,
    /// Requests to the vault in flight at once (1 to 1024).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Requests the tool sends to the vault per 10 seconds at most (a token bucket), below Key
    /// Vault's published limit so that a large run is not throttled in the first place.
    #[serde(default = "default_request_budget")]
    pub request_budget: u32,
    /// `[store.retry]`: how the SDK retries throttled (429) and failed requests.
    #[serde(default)]
    pub retry: RetrySettings,
}

/// Exponential back-off of the Azure SDK, applied to 408, 429, 5xx and I/O errors; a
/// `Retry-After` from the vault is honoured when it is longer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    #[serde(default = "default_initial_delay", deserialize_with = "de_initial_delay")]
    pub initial_delay: Span,
    #[serde(default = "default_max_delay", deserialize_with = "de_max_delay")]
    pub max_delay: Span,
    /// Give up on one request after this long, retries included.
    #[serde(default = "default_max_elapsed", deserialize_with = "de_max_elapsed")]
    pub max_elapsed: Span,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: default_max_retries(),
            initial_delay: default_initial_delay(),
            max_delay: default_max_delay(),
            max_elapsed: default_max_elapsed(),
        }
    }
}

fn default_max_retries() -> u32 {
    8
}

// Spans named in their errors: inside the tagged `[store]` table TOML shows only its first line.
fn de_settle<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    crate::policy::named_span("[store] settle", d)
}
fn de_initial_delay<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    crate::policy::named_span("[store.retry] initial_delay", d)
}
fn de_max_delay<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    crate::policy::named_span("[store.retry] max_delay", d)
}
fn de_max_elapsed<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    crate::policy::named_span("[store.retry] max_elapsed", d)
}

fn default_settle() -> Span {
    Span::seconds(2)
}

fn default_max_in_flight() -> usize {
    32
}

/// Key Vault allows 4,000 secret transactions per 10 seconds per vault and region ("Azure Key
/// Vault service limits", <https://learn.microsoft.com/en-us/azure/key-vault/general/service-limits>);
/// 3,000 leaves room for the applications that read the same vault.
pub(crate) const DEFAULT_REQUEST_BUDGET: u32 = 3000;

fn default_request_budget() -> u32 {
    DEFAULT_REQUEST_BUDGET
}

fn default_initial_delay() -> Span {
    Span::millis(800)
}

fn default_max_delay() -> Span {
    Span::seconds(30)
}

fn default_max_elapsed() -> Span {
    Span::minutes(2)
}

fn default_prefix() -> String {
    "jwk-".to_owned()
}

fn yes() -> bool {
    true
}

impl AzureConfig {
    /// Checks the settings and anchors `ca_cert` at the config file's directory.
    pub(crate) fn resolve(mut self, base: &Path) -> Result<AzureConfig, SettingError> {
        let prefix_ok = self.secret_prefix.len() <= 40
            && self.secret_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !prefix_ok {
            return Err(SettingError::new(
                "secret_prefix",
                format!(
                    "secret_prefix {:?} may hold only letters, digits and '-' (at most 40)",
                    self.secret_prefix
                ),
            ));
        }
        if !(1..=1024).contains(&self.max_in_flight) {
            return Err(SettingError::new(
                "[store] max_in_flight",
                format!(
                    "[store] max_in_flight = {} must be between 1 and 1024 (the default, 32, suits Key Vault)",
                    self.max_in_flight
                ),
            ));
        }
        if self.request_budget < 10 {
            return Err(SettingError::new(
                "[store] request_budget",
                format!(
                    "[store] request_budget = {} is requests per 10 seconds and must be at least 10 (the default, {DEFAULT_REQUEST_BUDGET}, stays below Key Vault's 4,000)",
                    self.request_budget
                ),
            ));
        }
        self.ca_cert = self.ca_cert.map(|p| base.join(p));
        Ok(self)
    }
}

/// Checks a consumer secret name template such as `{client}-{env}-jwk`.
pub(crate) fn check_consumer_template(template: &str) -> Result<(), SettingError> {
    let sample = template.replace("{client}", "c").replace("{env}", "E");
    let ok = !sample.is_empty()
        && sample.len() <= 127
        && sample.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SettingError::new(
            "consumer_secret",
            format!(
                "consumer_secret {template:?} is not a Key Vault secret name: use letters, digits, '-' and the placeholders {{client}} and {{env}}"
            ),
        ))
    }
}
