//! Restarting a Deployment or StatefulSet as `kubectl rollout restart` does: a strategic
//! merge patch of `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]`
//! (kubernetes/kubectl pkg/polymorphichelpers/objectrestarter.go, and the PATCH in
//! pkg/cmd/rollout/rollout_restart.go with types.StrategicMergePatchType, at commit
//! dee3483a3d6a64c07fdf746caf80af446dee99ac). The API server, token and CA come from the pod
//! ("Accessing the Kubernetes API from a Pod", kubernetes.io/docs/tasks/run-application/
//! access-api-from-pod/) unless `[kubernetes]` names others.

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};

use super::KubernetesSettings;
use super::{RestartError, Workload};
use crate::azure::credential::Env;

/// Where a pod's service account credentials are mounted.
const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The annotation `kubectl rollout restart` sets on the pod template.
pub(super) const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The content type of a strategic merge patch.
pub(super) const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
const API: &str = "the Kubernetes API";

/// A client for the cluster's API server.
pub struct Kubernetes {
    http: reqwest::Client,
    api: url::Url,
    token_file: PathBuf,
}

/// Why the Kubernetes client could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubernetesError {
    #[error(
        "the Kubernetes API address is not known: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (run in a pod), and [kubernetes] api_url is not given"
    )]
    NoAddress,
    #[error("[kubernetes] api_url {url:?} is not a URL ({cause})")]
    NotAUrl { url: String, cause: String },
    #[error("[kubernetes] ca_cert: {0}")]
    CaCert(String),
}

impl Kubernetes {
    /// The client `settings` and the pod's environment describe.
    pub fn open(settings: &KubernetesSettings, env: Env<'_>) -> Result<Kubernetes, KubernetesError> {
        let text = match &settings.api_url {
            Some(url) => url.clone(),
            None => {
                let (Some(host), Some(port)) =
                    (env("KUBERNETES_SERVICE_HOST"), env("KUBERNETES_SERVICE_PORT"))
                else {
                    return Err(KubernetesError::NoAddress);
                };
                // An IPv6 service address needs brackets in a URL.
                let host = if host.contains(':') { format!("[{host}]") } else { host };
                format!("https://{host}:{port}")
            }
        };
        let api = url::Url::parse(&text)
            .map_err(|e| KubernetesError::NotAUrl { url: text.clone(), cause: e.to_string() })?;
        let ca = settings.ca_cert.clone().unwrap_or_else(|| PathBuf::from(SERVICE_ACCOUNT).join("ca.crt"));
        let http = crate::tls::reqwest_trusting(&ca).map_err(|e| KubernetesError::CaCert(e.to_string()))?;
        let token_file =
            settings.token_file.clone().unwrap_or_else(|| PathBuf::from(SERVICE_ACCOUNT).join("token"));
        Ok(Kubernetes { http, api, token_file })
    }

    /// Sets the restart annotation of the workload's pod template to `at`. The same `at` a
    /// second time leaves the template as it is, so a retried restart rolls nothing out again.
    pub async fn restart(
        &self,
        workload: Workload,
        namespace: &str,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<(), RestartError> {
        let target = format!("{} {namespace}/{name}", kind(workload));
        // Read each time: projected service account tokens are rotated by the kubelet.
        let token = std::fs::read_to_string(&self.token_file).map_err(|e| RestartError::Credential {
            target: target.clone(),
            api: API,
            cause: format!("token file {} can not be read ({e}); mount the service account token or set [kubernetes] token_file", self.token_file.display()),
        })?;
        let path = format!("apis/apps/v1/namespaces/{namespace}/{}/{name}", workload.resource());
        let url = self.api.join(&path).map_err(|e| RestartError::Unreachable {
            target: target.clone(),
            api: API,
            cause: e.to_string(),
        })?;
        let response = self
            .http
            .patch(url)
            .bearer_auth(token.trim())
            .header(reqwest::header::CONTENT_TYPE, STRATEGIC_MERGE_PATCH)
            .header(reqwest::header::ACCEPT, "application/json")
            .body(patch(at))
            .send()
            .await
            .map_err(|e| RestartError::Unreachable {
                target: target.clone(),
                api: API,
                cause: e.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = status_message(response).await;
        let todo = todo(status.as_u16(), workload, namespace, name);
        Err(RestartError::Refused { target, api: API, status: status.as_u16(), detail, todo })
    }
}

/// What to do about an error status of the API server.
fn todo(status: u16, workload: Workload, namespace: &str, name: &str) -> String {
    match status {
        401 => "the service account token was not accepted; check the pod's service account".to_owned(),
        403 => format!(
            "give the job's service account patch on {} {name} in {namespace} (a Role with resourceNames, see infra/kubernetes/restart-rbac.yaml)",
            workload.resource()
        ),
        404 => format!(
            "no {} {name} in namespace {namespace}; check [[client.restart]] namespace and name",
            kind(workload)
        ),
        _ => "the next run tries again".to_owned(),
    }
}

fn kind(workload: Workload) -> &'static str {
    match workload {
        Workload::Deployment => "kubernetes-deployment",
        Workload::StatefulSet => "kubernetes-statefulset",
    }
}

/// The strategic merge patch body: the annotation, as RFC 3339 to the second (kubectl formats
/// `time.Now()` with `time.RFC3339`).
pub(super) fn patch(at: DateTime<Utc>) -> String {
    serde_json::json!({
        "spec": { "template": { "metadata": { "annotations": {
            RESTARTED_AT: at.to_rfc3339_opts(SecondsFormat::Secs, true)
        } } } }
    })
    .to_string()
}

/// The `message` of a Kubernetes `Status` body, else the start of the body.
async fn status_message(response: reqwest::Response) -> String {
    let body = response.text().await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_is_the_one_kubectl_sends() {
        let at = crate::testing::at("2026-11-21T12:00:00.250Z");
        assert_eq!(
            patch(at),
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-21T12:00:00Z"}}}}}"#
        );
    }

    #[test]
    fn the_address_comes_from_the_pod_or_the_setting() {
        let none = |_: &str| None;
        let e = Kubernetes::open(&KubernetesSettings::default(), &none).err().expect("no address");
        assert_eq!(e, KubernetesError::NoAddress);
        assert!(e.to_string().contains("KUBERNETES_SERVICE_HOST"), "{e}");
        let ipv6 = |name: &str| match name {
            "KUBERNETES_SERVICE_HOST" => Some("fd00::1".to_owned()),
            "KUBERNETES_SERVICE_PORT" => Some("443".to_owned()),
            _ => None,
        };
        // Outside a pod the CA file is missing: the error names it.
        let e = Kubernetes::open(&KubernetesSettings::default(), &ipv6).err().expect("no CA here");
        assert!(matches!(&e, KubernetesError::CaCert(m) if m.contains("ca.crt")), "{e}");
    }
}
