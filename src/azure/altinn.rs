//! Reading an altinn-jwks Key Vault (secrets `{set}--priv`, `--pub`, `--key`, `--jwks`) for
//! `import`, through the same client code, credential and `ca_cert` as the Key Vault store.
//! Nothing here writes to the vault.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::HttpClient;
use zeroize::Zeroizing;

use super::AzureError;
use super::vault::Vault;
use crate::config::azure::AzureConfig;
use crate::store::StoreError;

/// A vault that altinn-jwks wrote, opened read-only in spirit: only list and get are called.
pub(crate) struct AltinnVault {
    vault: Vault,
}

impl AltinnVault {
    /// Opens `url` with the store's settings (credential, `ca_cert`, challenge check, retries).
    /// Opens the vault at `url` with the store's Key Vault settings and `credential`;
    /// `transport` replaces the SDK's HTTP client (tests).
    pub(crate) fn open_with(
        config: &AzureConfig,
        url: &str,
        credential: Arc<dyn TokenCredential>,
        transport: Option<Arc<dyn HttpClient>>,
    ) -> Result<AltinnVault, AzureError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| AzureError::FromNotAUrl { url: url.to_owned(), cause: e.to_string() })?;
        if parsed.scheme() != "https" {
            return Err(AzureError::FromNotHttps { url: url.to_owned() });
        }
        let vault_url = url.parse().map_err(AzureError::FromNotAVault)?;
        let config = AzureConfig { vault_url, ..config.clone() };
        let vault = Vault::new(&config, credential, transport)?;
        Ok(AltinnVault { vault })
    }

    pub(crate) fn url(&self) -> &str {
        self.vault.url()
    }

    /// The names of the vault's enabled secrets (a listing holds no values).
    pub(crate) async fn names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.vault.list().await?.into_iter().filter(|v| v.enabled).map(|v| v.name).collect())
    }

    /// The value of a secret's latest version.
    pub(crate) async fn value(&self, name: &str) -> Result<Zeroizing<String>, StoreError> {
        self.vault.latest_value(name).await
    }
}
