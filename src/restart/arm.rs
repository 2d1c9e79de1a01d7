//! Restarting Azure apps through Azure Resource Manager with the job's identity:
//! a Container App's serving revision (`ContainerAppsRevisions_RestartRevision`, after reading
//! the app's `latestReadyRevisionName`; azure-rest-api-specs
//! specification/app/resource-manager/Microsoft.App/ContainerApps/stable/2025-01-01/
//! ContainerAppsRevisions.json and ContainerApps.json), and an App Service app
//! (`WebApps_Restart`, learn.microsoft.com/rest/api/appservice/web-apps/restart; api-version
//! 2024-04-01, specification/web/resource-manager/Microsoft.Web/AppService/stable/2024-04-01).

use std::sync::Arc;

use azure_core::credentials::TokenCredential;

use super::ArmSettings;
use super::RestartError;

/// ARM's address in Azure's public cloud.
pub(super) const MANAGEMENT: &str = "https://management.azure.com";
/// The scope of a token for ARM.
pub(super) const SCOPE: &str = "https://management.azure.com/.default";
/// Microsoft.App API version (stable).
pub(super) const CONTAINER_APPS_API: &str = "2025-01-01";
/// Microsoft.Web API version (stable).
pub(super) const WEB_API: &str = "2024-04-01";
const API: &str = "Azure Resource Manager";

/// Why the client for Azure Resource Manager could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmError {
    #[error("[azure_resource_manager] url {url:?} is not a URL ({cause})")]
    NotAUrl { url: String, cause: String },
    #[error("[azure_resource_manager] ca_cert: {0}")]
    CaCert(String),
    #[error("the HTTP client for Azure Resource Manager could not be built: {0}")]
    Build(String),
    /// No credential: the store's could not be made, or the store is not Key Vault.
    #[error("no credential for Azure Resource Manager: {cause}")]
    Credential { cause: String },
}

/// A client for Azure Resource Manager.
pub struct Arm {
    http: reqwest::Client,
    base: url::Url,
    credential: Arc<dyn TokenCredential>,
}

impl Arm {
    /// A client for `settings`' endpoint with `credential` (the store's).
    pub fn open(settings: &ArmSettings, credential: Arc<dyn TokenCredential>) -> Result<Arm, ArmError> {
        let text = settings.url.clone().unwrap_or_else(|| MANAGEMENT.to_owned());
        let base = url::Url::parse(&text)
            .map_err(|e| ArmError::NotAUrl { url: text.clone(), cause: e.to_string() })?;
        let http = match &settings.ca_cert {
            Some(path) => crate::tls::reqwest_trusting(path).map_err(|e| ArmError::CaCert(e.to_string()))?,
            None => crate::tls::reqwest_builder().build().map_err(|e| ArmError::Build(e.to_string()))?,
        };
        Ok(Arm { http, base, credential })
    }

    /// Restarts the revision a Container App serves.
    pub async fn restart_container_app(&self, id: &str) -> Result<(), RestartError> {
        let target = format!("container-app {id}");
        let app = self.call(reqwest::Method::GET, &target, id, CONTAINER_APPS_API).await?;
        let app: serde_json::Value = app.json().await.map_err(|e| self.unreachable(&target, e))?;
        let Some(revision) = app["properties"]["latestReadyRevisionName"].as_str() else {
            return Err(RestartError::Refused {
                target,
                api: API,
                status: 200,
                detail: "the app has no ready revision".to_owned(),
                todo: "check the Container App's revisions in the portal; the next run tries again"
                    .to_owned(),
            });
        };
        let path = format!("{id}/revisions/{revision}/restart");
        self.call(reqwest::Method::POST, &target, &path, CONTAINER_APPS_API).await.map(drop)
    }

    /// Restarts an App Service app.
    pub async fn restart_app_service(&self, id: &str) -> Result<(), RestartError> {
        let target = format!("app-service {id}");
        self.call(reqwest::Method::POST, &target, &format!("{id}/restart"), WEB_API).await.map(drop)
    }

    fn unreachable(&self, target: &str, e: impl std::fmt::Display) -> RestartError {
        RestartError::Unreachable { target: target.to_owned(), api: API, cause: e.to_string() }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        target: &str,
        path: &str,
        version: &str,
    ) -> Result<reqwest::Response, RestartError> {
        let token =
            self.credential.get_token(&[SCOPE], None).await.map_err(|e| RestartError::Credential {
                target: target.to_owned(),
                api: API,
                cause: format!("{e}; the job's identity must be able to get a token for {SCOPE}"),
            })?;
        let mut url = self.base.clone();
        url.set_path(path);
        url.query_pairs_mut().append_pair("api-version", version);
        let mut request = self.http.request(method.clone(), url).bearer_auth(token.token.secret());
        if method == reqwest::Method::POST {
            // The restart actions take no body.
            request = request.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        let response = request.send().await.map_err(|e| self.unreachable(target, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(200).collect());
        let todo = match status.as_u16() {
            401 | 403 => {
                "give the job's identity the restart role on this resource (infra/azure/restart-role.bicep)"
                    .to_owned()
            }
            404 => "no such resource; check [[client.restart]] resource_id".to_owned(),
            _ => "the next run tries again".to_owned(),
        };
        Err(RestartError::Refused {
            target: target.to_owned(),
            api: API,
            status: status.as_u16(),
            detail,
            todo,
        })
    }
}
