//! The Key Vault calls the store makes, through the SDK's `SecretClient`, each mapped to a store
//! error that names the vault and the secret.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, HttpClient, RetryOptions, Transport};
use azure_core::time::{Duration, OffsetDateTime};
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SecretClientGetSecretOptions, SecretClientListSecretPropertiesOptions,
    SecretClientListSecretPropertiesVersionsOptions, SecretClientUpdateSecretPropertiesOptions,
    SetSecretParameters, UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use zeroize::Zeroizing;

use super::AzureError;
use super::budget::LimitedTransport;
use super::error::store_error;
use super::layout::Tags;
use super::versions::Version;
use crate::config::azure::AzureConfig;
use crate::store::{Place, StoreError};

const OFFICER: &str = "Key Vault Secrets Officer";
const PURGER: &str = "Key Vault Purge Operator";
/// Key Vault's largest page.
const PAGE: i32 = 25;

/// What a new secret version holds.
pub(crate) struct NewVersion<'a> {
    pub value: &'a str,
    /// The secret's `contentType`.
    pub content_type: &'static str,
    pub tags: Tags,
    pub expires: DateTime<Utc>,
    pub not_before: Option<DateTime<Utc>>,
}

/// A vault and the client that talks to it.
pub(crate) struct Vault {
    client: SecretClient,
    url: String,
}

fn epoch(t: DateTime<Utc>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).ok()
}

/// A span as the SDK's `time::Duration`.
fn sdk_duration(span: crate::policy::Span) -> Duration {
    Duration::milliseconds(span.delta().num_milliseconds())
}

impl Vault {
    /// A client for `config.vault_url`; `transport` replaces the HTTP client (tests), else a
    /// `reqwest` client that also trusts `ca_cert` when one is set.
    pub(crate) fn new(
        config: &AzureConfig,
        credential: Arc<dyn TokenCredential>,
        transport: Option<Arc<dyn HttpClient>>,
    ) -> Result<Vault, AzureError> {
        let transport = match transport {
            Some(t) => t,
            None => match &config.ca_cert {
                Some(ca) => Arc::new(crate::tls::reqwest_trusting(ca)?),
                None => azure_core::http::new_http_client(None),
            },
        };
        let transport: Arc<dyn HttpClient> =
            Arc::new(LimitedTransport::new(transport, config.max_in_flight, config.request_budget));
        let retry = &config.retry;
        let client_options = ClientOptions {
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: sdk_duration(retry.initial_delay),
                max_retries: retry.max_retries,
                max_total_elapsed: sdk_duration(retry.max_elapsed),
                max_delay: sdk_duration(retry.max_delay),
            }),
            transport: Some(Transport::new(transport)),
            ..Default::default()
        };
        let options = SecretClientOptions {
            client_options,
            verify_challenge_resource: Some(config.verify_challenge_resource),
            ..Default::default()
        };
        let client =
            SecretClient::new(config.vault_url.as_str(), credential, Some(options)).map_err(|e| {
                AzureError::VaultClient { vault_url: config.vault_url.to_string(), cause: e.to_string() }
            })?;
        Ok(Vault { client, url: config.vault_url.to_string() })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// An SDK error of `action` on `secret` (none: the vault as a whole).
    fn fail(&self, action: &str, secret: Option<&str>, e: &azure_core::Error) -> StoreError {
        store_error(&self.url, secret, action, OFFICER, e)
    }

    /// Every secret's latest version, page by page.
    pub(crate) async fn list(&self) -> Result<Vec<Version>, StoreError> {
        let options =
            SecretClientListSecretPropertiesOptions { maxresults: Some(PAGE), ..Default::default() };
        let items: Vec<_> = self
            .client
            .list_secret_properties(Some(options))
            .map_err(|e| self.fail("list secrets", None, &e))?
            .try_collect()
            .await
            .map_err(|e| self.fail("list secrets", None, &e))?;
        Ok(items.into_iter().filter_map(Version::from_properties).collect())
    }

    /// Every version of one secret; none if it does not exist.
    pub(crate) async fn versions(&self, name: &str) -> Result<Vec<Version>, StoreError> {
        let action = format!("list the versions of secret {name}");
        let options =
            SecretClientListSecretPropertiesVersionsOptions { maxresults: Some(PAGE), ..Default::default() };
        let listed = match self.client.list_secret_properties_versions(name, Some(options)) {
            Ok(pager) => pager.try_collect::<Vec<_>>().await,
            Err(e) => Err(e),
        };
        match listed {
            Ok(items) => Ok(items.into_iter().filter_map(Version::from_properties).collect()),
            Err(e) if matches!(self.fail(&action, Some(name), &e), StoreError::NotFound { .. }) => {
                Ok(Vec::new())
            }
            Err(e) => Err(self.fail(&action, Some(name), &e)),
        }
    }

    /// The value of one version.
    pub(crate) async fn value(&self, name: &str, version: &str) -> Result<Zeroizing<String>, StoreError> {
        self.read_value(name, Some(version)).await
    }

    /// The value of a secret's latest version.
    pub(crate) async fn latest_value(&self, name: &str) -> Result<Zeroizing<String>, StoreError> {
        self.read_value(name, None).await
    }

    /// The value of `version`, or of the latest version when none is named.
    async fn read_value(&self, name: &str, version: Option<&str>) -> Result<Zeroizing<String>, StoreError> {
        let action = match version {
            Some(version) => format!("read secret {name} version {version}"),
            None => format!("read secret {name}"),
        };
        let options = version.map(|v| SecretClientGetSecretOptions {
            secret_version: Some(v.to_owned()),
            ..Default::default()
        });
        let secret = self
            .client
            .get_secret(name, options)
            .await
            .and_then(|r| r.into_model())
            .map_err(|e| self.fail(&action, Some(name), &e))?;
        secret.value.map(Zeroizing::new).ok_or_else(|| {
            StoreError::corrupt(Place::secret(&self.url, name), format!("secret {name} has no value"))
        })
    }

    /// The id of a secret's latest version, read with its value (which is dropped at once);
    /// `None` if the secret is missing or its latest version is disabled.
    pub(crate) async fn latest_version(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.client.get_secret(name, None).await.and_then(|r| r.into_model()) {
            Ok(secret) => {
                let id = secret.resource_id().ok().and_then(|id| id.version);
                drop(secret.value.map(Zeroizing::new));
                Ok(id)
            }
            Err(e) => match self.fail(&format!("read secret {name}"), Some(name), &e) {
                StoreError::NotFound { .. } => Ok(None),
                StoreError::Failed { .. }
                    if e.http_status() == Some(azure_core::http::StatusCode::Forbidden) =>
                {
                    Ok(None)
                }
                other => Err(other),
            },
        }
    }

    /// Writes a new version; returns its version id.
    pub(crate) async fn put(&self, name: &str, new: NewVersion<'_>) -> Result<String, StoreError> {
        let action = format!("write secret {name}");
        let params = SetSecretParameters {
            content_type: Some(new.content_type.to_owned()),
            secret_attributes: Some(SecretAttributes {
                enabled: Some(true),
                expires: epoch(new.expires),
                not_before: new.not_before.and_then(epoch),
                ..Default::default()
            }),
            tags: Some(new.tags),
            value: Some(new.value.to_owned()),
        };
        let content = params.try_into().map_err(|e| self.fail(&action, Some(name), &e))?;
        let secret = self
            .client
            .set_secret(name, content, None)
            .await
            .and_then(|r| r.into_model())
            .map_err(|e| self.fail(&action, Some(name), &e))?;
        // The response echoes the value; only the id is kept.
        let id = secret.resource_id().ok().and_then(|id| id.version);
        drop(secret.value.map(Zeroizing::new));
        id.ok_or_else(|| StoreError::Failed {
            place: Place::secret(&self.url, name),
            message: format!("Key Vault {}: {action}: no version id in the answer", self.url),
        })
    }

    /// Replaces one version's tags and sets whether it is enabled (and its dates, if given).
    pub(crate) async fn patch(
        &self,
        name: &str,
        version: &str,
        tags: Tags,
        enabled: bool,
        dates: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<(), StoreError> {
        let action = format!("update secret {name} version {version}");
        let params = UpdateSecretPropertiesParameters {
            content_type: None,
            secret_attributes: Some(SecretAttributes {
                enabled: Some(enabled),
                expires: dates.and_then(|(exp, _)| epoch(exp)),
                not_before: dates.and_then(|(_, nbf)| epoch(nbf)),
                ..Default::default()
            }),
            tags: Some(tags),
        };
        let content = params.try_into().map_err(|e| self.fail(&action, Some(name), &e))?;
        let options = SecretClientUpdateSecretPropertiesOptions {
            secret_version: Some(version.to_owned()),
            ..Default::default()
        };
        self.client
            .update_secret_properties(name, content, Some(options))
            .await
            .map_err(|e| self.fail(&action, Some(name), &e))
            .map(drop)
    }

    /// Soft-deletes a secret with all its versions; a secret that is gone already is fine.
    pub(crate) async fn delete(&self, name: &str) -> Result<(), StoreError> {
        match self.client.delete_secret(name, None).await {
            Ok(_) => Ok(()),
            Err(e) => match self.fail(&format!("delete secret {name}"), Some(name), &e) {
                StoreError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Purges a soft-deleted secret. Right after a delete Key Vault can answer 409 for a
    /// while, so this waits and tries again, `tries` times, starting at `wait`.
    pub(crate) async fn purge(
        &self,
        name: &str,
        tries: u32,
        wait: std::time::Duration,
    ) -> Result<(), StoreError> {
        let action = format!("purge deleted secret {name}");
        let mut delay = wait;
        for attempt in 1..=tries.max(1) {
            match self.client.purge_deleted_secret(name, None).await {
                Ok(_) => return Ok(()),
                Err(e) if e.http_status() == Some(azure_core::http::StatusCode::NotFound) => return Ok(()),
                Err(e)
                    if e.http_status() == Some(azure_core::http::StatusCode::Conflict) && attempt < tries =>
                {
                    tracing::debug!(secret = name, attempt, "purge answered 409; waiting");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    let err = store_error(&self.url, Some(name), &action, PURGER, &e);
                    return Err(StoreError::Failed {
                        place: err.place().clone(),
                        message: format!(
                            "secret {name} was deleted (soft delete keeps it recoverable) but could not be purged: {err}"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
