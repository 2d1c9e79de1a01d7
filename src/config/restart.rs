//! The restart settings: each `[[client.restart]]` (which application to restart, parsed into a
//! type that can only name a Kubernetes workload by namespace and name, or an Azure app by its
//! resource id), and `[kubernetes]` and `[azure_resource_manager]`, where the APIs that restart
//! applications are when not the usual places (a pod's in-cluster settings; Azure's public cloud).

use std::fmt;

use serde::Deserialize;

use std::path::{Path, PathBuf};

use super::SettingError;

/// A Kubernetes workload kind that `kubectl rollout restart` restarts and this tool does too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Deployment,
    StatefulSet,
}

impl Workload {
    /// The resource's plural name in the `apps/v1` API path (and in an RBAC rule).
    pub fn resource(self) -> &'static str {
        match self {
            Workload::Deployment => "deployments",
            Workload::StatefulSet => "statefulsets",
        }
    }
}

/// An application to restart after a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartTarget {
    Kubernetes {
        workload: Workload,
        namespace: String,
        name: String,
    },
    /// `/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.App/containerApps/{name}`.
    ContainerApp {
        resource_id: String,
    },
    /// `/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Web/sites/{name}`.
    AppService {
        resource_id: String,
    },
}

impl RestartTarget {
    /// The `kind` setting that names this target.
    pub fn kind(&self) -> &'static str {
        match self {
            RestartTarget::Kubernetes { workload: Workload::Deployment, .. } => "kubernetes-deployment",
            RestartTarget::Kubernetes { workload: Workload::StatefulSet, .. } => "kubernetes-statefulset",
            RestartTarget::ContainerApp { .. } => "container-app",
            RestartTarget::AppService { .. } => "app-service",
        }
    }

    pub fn is_azure(&self) -> bool {
        !matches!(self, RestartTarget::Kubernetes { .. })
    }
}

impl fmt::Display for RestartTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartTarget::Kubernetes { namespace, name, .. } => {
                write!(f, "{} {namespace}/{name}", self.kind())
            }
            RestartTarget::ContainerApp { resource_id } | RestartTarget::AppService { resource_id } => {
                write!(f, "{} {resource_id}", self.kind())
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    kind: String,
    namespace: Option<String>,
    name: Option<String>,
    resource_id: Option<String>,
}

/// Reads `[[client.restart]]` number `number` (from 1), naming the setting in every error.
pub fn parse(value: toml::Value, number: usize) -> Result<RestartTarget, SettingError> {
    let place = format!("[[client.restart]] number {number}");
    let raw = RawTarget::deserialize(value).map_err(|e| {
        SettingError::new(
            "restart",
            format!(
                "{}; a restart takes kind, namespace and name (Kubernetes) or kind and resource_id (Azure)",
                e.message()
            ),
        )
        .within(&place)
    })?;
    resolve(raw).map_err(|e| e.within(&place))
}

fn resolve(raw: RawTarget) -> Result<RestartTarget, SettingError> {
    let workload = match raw.kind.as_str() {
        "kubernetes-deployment" => Some(Workload::Deployment),
        "kubernetes-statefulset" => Some(Workload::StatefulSet),
        "container-app" | "app-service" => None,
        other => {
            return Err(SettingError::new(
                "kind",
                format!(
                    "kind = {other:?} is not a restart kind: use \"kubernetes-deployment\", \"kubernetes-statefulset\", \"container-app\" or \"app-service\""
                ),
            ));
        }
    };
    match workload {
        Some(workload) => kubernetes(workload, raw),
        None => azure(raw),
    }
}

fn kubernetes(workload: Workload, raw: RawTarget) -> Result<RestartTarget, SettingError> {
    if raw.resource_id.is_some() {
        return Err(SettingError::new(
            "resource_id",
            format!("kind = {:?} names its workload by namespace and name; remove resource_id", raw.kind),
        ));
    }
    let needed = |setting: &str, value: Option<String>| {
        value.ok_or_else(|| {
            SettingError::new(
                setting,
                format!("kind = {:?} needs {setting}: the workload's {setting} in the cluster", raw.kind),
            )
        })
    };
    let namespace = needed("namespace", raw.namespace.clone())?;
    let name = needed("name", raw.name.clone())?;
    // Kubernetes object names: namespaces are RFC 1123 labels, workloads DNS subdomains.
    check_dns("namespace", &namespace, 63, false)?;
    check_dns("name", &name, 253, true)?;
    Ok(RestartTarget::Kubernetes { workload, namespace, name })
}

/// An RFC 1123 label (or, with `dots`, subdomain) as Kubernetes names objects: lower-case
/// letters, digits and '-', starting and ending with a letter or digit.
fn check_dns(setting: &str, value: &str, max: usize, dots: bool) -> Result<(), SettingError> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    let ok = value.len() <= max && if dots { value.split('.').all(part_ok) } else { part_ok(value) };
    if ok {
        return Ok(());
    }
    Err(SettingError::new(
        setting,
        format!(
            "{setting} = {value:?} is not a Kubernetes {setting}: lower-case letters, digits and '-' (at most {max} characters), as `kubectl get` shows it"
        ),
    ))
}

fn azure(raw: RawTarget) -> Result<RestartTarget, SettingError> {
    if raw.namespace.is_some() || raw.name.is_some() {
        return Err(SettingError::new(
            if raw.namespace.is_some() { "namespace" } else { "name" },
            format!("kind = {:?} names its app by resource_id; remove namespace and name", raw.kind),
        ));
    }
    let (provider, example) = match raw.kind.as_str() {
        "container-app" => (
            "Microsoft.App/containerApps",
            "/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.App/containerApps/NAME",
        ),
        _ => {
            ("Microsoft.Web/sites", "/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Web/sites/NAME")
        }
    };
    let id = raw.resource_id.ok_or_else(|| {
        SettingError::new(
            "resource_id",
            format!("kind = {:?} needs resource_id, such as {example}", raw.kind),
        )
    })?;
    if !resource_id_ok(&id, provider) {
        return Err(SettingError::new(
            "resource_id",
            format!(
                "resource_id = {id:?} is not the id of a {provider} resource: write it as {example} (`az resource show --query id` prints it)"
            ),
        ));
    }
    Ok(match raw.kind.as_str() {
        "container-app" => RestartTarget::ContainerApp { resource_id: id },
        _ => RestartTarget::AppService { resource_id: id },
    })
}

/// `/subscriptions/{s}/resourceGroups/{g}/providers/{provider}/{name}`, each part plain.
fn resource_id_ok(id: &str, provider: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    let [empty, subs, sub, groups, group, providers, ns, kind, name] = parts.as_slice() else {
        return false;
    };
    // No part of only dots: a URL path reads `..` as the parent.
    let plain = |p: &str| {
        p.bytes().any(|b| b != b'.') && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.()".contains(&b))
    };
    empty.is_empty()
        && subs.eq_ignore_ascii_case("subscriptions")
        && groups.eq_ignore_ascii_case("resourceGroups")
        && providers.eq_ignore_ascii_case("providers")
        && format!("{ns}/{kind}").eq_ignore_ascii_case(provider)
        && [sub, group, name].iter().all(|p| plain(p))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Result<RestartTarget, SettingError> {
        parse(toml::from_str::<toml::Value>(text).expect("toml"), 1)
    }

    #[test]
    fn each_kind_is_read() {
        let t = target("kind = \"kubernetes-statefulset\"\nnamespace = \"team-a\"\nname = \"batch.v2\"")
            .expect("sts");
        assert_eq!(t.to_string(), "kubernetes-statefulset team-a/batch.v2");
        let id = "/subscriptions/0000/resourceGroups/rg-a/providers/Microsoft.App/containerApps/batch";
        let t = target(&format!("kind = \"container-app\"\nresource_id = \"{id}\"")).expect("app");
        assert_eq!(t, RestartTarget::ContainerApp { resource_id: id.to_owned() });
        let id = "/subscriptions/0000/resourceGroups/rg-a/providers/Microsoft.Web/sites/web";
        assert!(target(&format!("kind = \"app-service\"\nresource_id = \"{id}\"")).expect("web").is_azure());
    }

    #[test]
    fn a_target_that_can_not_work_is_refused_naming_the_setting() {
        let cases = [
            ("kind = \"pod\"\nname = \"x\"", "kind"),
            ("kind = \"kubernetes-deployment\"\nname = \"x\"", "namespace"),
            ("kind = \"kubernetes-deployment\"\nnamespace = \"Team\"\nname = \"x\"", "namespace"),
            ("kind = \"kubernetes-deployment\"\nnamespace = \"a\"\nname = \"x/../y\"", "name"),
            (
                "kind = \"container-app\"\nresource_id = \"/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/x\"",
                "resource_id",
            ),
            ("kind = \"app-service\"", "resource_id"),
            (
                "kind = \"app-service\"\nresource_id = \"/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/..\"",
                "resource_id",
            ),
            ("kind = \"app-service\"\nnamespace = \"a\"", "namespace"),
            (
                "kind = \"kubernetes-deployment\"\nnamespace = \"a\"\nname = \"b\"\nresource_id = \"/x\"",
                "resource_id",
            ),
        ];
        for (text, setting) in cases {
            let e = target(text).expect_err(text);
            assert_eq!(e.setting.as_deref(), Some(setting), "{text}: {e}");
            assert!(e.to_string().contains("[[client.restart]] number 1"), "{e}");
        }
        let e = target("kind = \"app-service\"\nurl = \"x\"").expect_err("unknown");
        assert!(e.to_string().contains("url"), "{e}");
    }
}
