//! `[kubernetes]` and `[azure_resource_manager]`: where the APIs that restart applications
//! are, when not the usual places (a pod's in-cluster settings; Azure's public cloud).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::SettingError;

/// `[kubernetes]`: overrides of the in-cluster API address, token and CA.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSettings {
    /// The API server, such as `https://10.0.0.1:443`; default from `KUBERNETES_SERVICE_HOST`
    /// and `KUBERNETES_SERVICE_PORT`.
    pub api_url: Option<String>,
    /// The bearer token file; default the pod's service account token.
    pub token_file: Option<PathBuf>,
    /// The CA of the API server's certificate; default the pod's service account `ca.crt`.
    pub ca_cert: Option<PathBuf>,
}

/// `[azure_resource_manager]`: another ARM endpoint (a sovereign cloud, or a test double).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmSettings {
    /// Default `https://management.azure.com`.
    pub url: Option<String>,
    /// Extra PEM certificates to trust (a test double's).
    pub ca_cert: Option<PathBuf>,
}

/// An https URL setting, checked.
pub(crate) fn https_url(table: &str, setting: &str, text: &str) -> Result<url::Url, SettingError> {
    let refused = |why: String| SettingError::new(setting, why).within(table);
    let url =
        url::Url::parse(text).map_err(|e| refused(format!("{setting} = {text:?} is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(refused(format!(
            "{setting} = {text:?} must use https: the token it carries must not travel in clear"
        )));
    }
    Ok(url)
}

impl KubernetesSettings {
    /// Checks the URL and anchors the files at the config file's directory.
    pub fn resolve(self, base: &Path) -> Result<Self, SettingError> {
        if let Some(url) = &self.api_url {
            https_url("[kubernetes]", "api_url", url)?;
        }
        Ok(KubernetesSettings {
            api_url: self.api_url,
            token_file: self.token_file.map(|p| base.join(p)),
            ca_cert: self.ca_cert.map(|p| base.join(p)),
        })
    }
}

impl ArmSettings {
    /// Checks the URL and anchors `ca_cert` at the config file's directory.
    pub fn resolve(self, base: &Path) -> Result<Self, SettingError> {
        if let Some(url) = &self.url {
            https_url("[azure_resource_manager]", "url", url)?;
        }
        Ok(ArmSettings { url: self.url, ca_cert: self.ca_cert.map(|p| base.join(p)) })
    }
}
