//! Restarts against fakes of the Kubernetes API and Azure Resource Manager over HTTPS: the
//! patch `kubectl rollout restart` sends and ARM's restart actions, tokens and bodies checked;
//! and the real binary restarting all three kinds once per promotion beside a Key Vault whose
//! consumer secret is Altinn app-lib's `MaskinportenSettings`.

mod fake;

use std::path::Path;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};
use jwk_rotator::restart::{Arm, ArmSettings, Kubernetes, KubernetesSettings, RestartError, Workload};

use fake::{FakeArm, FakeKube};

const KUBE_TOKEN: &str = "fake-service-account-token";

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().expect("time")
}

/// `[kubernetes]` for `kube`, with the token and CA written into `dir`.
fn kube_settings(dir: &Path, kube: &FakeKube, token: &str) -> KubernetesSettings {
    std::fs::write(dir.join("token"), format!("{token}\n")).expect("token");
    std::fs::write(dir.join("kube-ca.pem"), &kube.ca_pem).expect("ca");
    KubernetesSettings {
        api_url: Some(kube.url.clone()),
        token_file: Some(dir.join("token")),
        ca_cert: Some(dir.join("kube-ca.pem")),
    }
}

#[tokio::test]
async fn a_kubernetes_restart_is_kubectls_patch_and_the_same_promotion_rolls_out_once() {
    let kube = FakeKube::start(KUBE_TOKEN).await;
    kube.add("deployments", "team-a", "batch");
    kube.add("statefulsets", "team-a", "worker");
    let dir = tempfile::tempdir().expect("dir");
    let none = |_: &str| None;
    let client = Kubernetes::open(&kube_settings(dir.path(), &kube, KUBE_TOKEN), &none).expect("client");
    let promoted = at("2026-11-21T12:00:00.750Z");
    client.restart(Workload::Deployment, "team-a", "batch", promoted).await.expect("restart");
    client.restart(Workload::Deployment, "team-a", "batch", promoted).await.expect("again");
    client.restart(Workload::StatefulSet, "team-a", "worker", promoted).await.expect("sts");
    let batch = kube.workload("deployments", "team-a", "batch");
    assert_eq!(batch.annotations["kubectl.kubernetes.io/restartedAt"], "2026-11-21T12:00:00Z");
    assert_eq!(batch.rollouts, 1, "the same promotion again leaves the pod template as it is");
    assert_eq!(kube.workload("statefulsets", "team-a", "worker").rollouts, 1);
    for (content_type, body) in kube.requests() {
        assert_eq!(content_type, "application/strategic-merge-patch+json");
        assert_eq!(
            body,
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-21T12:00:00Z"}}}}}"#
        );
    }
    let e = client.restart(Workload::Deployment, "team-a", "gone", promoted).await.expect_err("missing");
    assert!(matches!(&e, RestartError::Refused { status: 404, .. }), "{e:?}");
    assert!(e.to_string().contains("no kubernetes-deployment gone in namespace team-a"), "{e}");
}

#[tokio::test]
async fn a_kubernetes_token_or_ca_that_does_not_fit_is_an_error_naming_what_to_do() {
    let kube = FakeKube::start(KUBE_TOKEN).await;
    kube.add("deployments", "team-a", "batch");
    let dir = tempfile::tempdir().expect("dir");
    let none = |_: &str| None;
    let settings = kube_settings(dir.path(), &kube, "another-token");
    let client = Kubernetes::open(&settings, &none).expect("client");
    let e = client
        .restart(Workload::Deployment, "team-a", "batch", at("2026-11-21T12:00:00Z"))
        .await
        .expect_err("401");
    assert!(matches!(&e, RestartError::Refused { status: 401, .. }), "{e:?}");
    assert_eq!(kube.workload("deployments", "team-a", "batch").rollouts, 0);
    std::fs::remove_file(dir.path().join("token")).expect("rm");
    let e = client
        .restart(Workload::Deployment, "team-a", "batch", at("2026-11-21T12:00:00Z"))
        .await
        .expect_err("no token");
    assert!(matches!(&e, RestartError::Credential { .. }) && e.to_string().contains("token_file"), "{e}");
    // A server whose certificate the CA file does not sign is not trusted.
    let other = FakeKube::start(KUBE_TOKEN).await;
    let wrong_ca = KubernetesSettings { api_url: Some(other.url.clone()), ..settings };
    std::fs::write(dir.path().join("token"), KUBE_TOKEN).expect("token");
    let client = Kubernetes::open(&wrong_ca, &none).expect("client");
    let e = client
        .restart(Workload::Deployment, "team-a", "batch", at("2026-11-21T12:00:00Z"))
        .await
        .expect_err("tls");
    assert!(matches!(&e, RestartError::Unreachable { .. }), "{e:?}");
}

/// Hands out the fake ARM's token, for ARM's scope only.
#[derive(Debug)]
struct ArmCredential(&'static str);

#[async_trait::async_trait]
impl TokenCredential for ArmCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://management.azure.com/.default"], "ARM's scope");
        Ok(AccessToken::new(Secret::new(self.0), OffsetDateTime::now_utc() + Duration::hours(1)))
    }
}

const APP: &str = "/subscriptions/0000-1111/resourceGroups/rg-a/providers/Microsoft.App/containerApps/batch";
const SITE: &str = "/subscriptions/0000-1111/resourceGroups/rg-a/providers/Microsoft.Web/sites/web";

#[tokio::test]
async fn azure_apps_are_restarted_through_arm_with_the_jobs_token() {
    let arm = FakeArm::start("arm-token").await;
    arm.add(APP);
    arm.add(SITE);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("arm-ca.pem"), &arm.ca_pem).expect("ca");
    let settings = ArmSettings { url: Some(arm.url.clone()), ca_cert: Some(dir.path().join("arm-ca.pem")) };
    let client = Arm::open(&settings, Arc::new(ArmCredential("arm-token"))).expect("client");
    client.restart_container_app(APP).await.expect("container app");
    client.restart_app_service(SITE).await.expect("app service");
    assert_eq!((arm.restarts(APP), arm.restarts(SITE)), (1, 1));
    assert_eq!(
        arm.log(),
        [
            format!("GET {APP}?api-version=2025-01-01"),
            format!("POST {APP}/revisions/batch--rev1/restart?api-version=2025-01-01"),
            format!("POST {SITE}/restart?api-version=2024-04-01"),
        ]
    );
    let missing = SITE.replace("/web", "/gone");
    let e = client.restart_app_service(&missing).await.expect_err("404");
    assert!(e.to_string().contains("check [[client.restart]] resource_id"), "{e}");
    let wrong = Arm::open(&settings, Arc::new(ArmCredential("someone-else"))).expect("client");
    let e = wrong.restart_app_service(SITE).await.expect_err("401");
    assert!(
        matches!(&e, RestartError::Refused { status: 401, .. }) && e.to_string().contains("restart role"),
        "{e}"
    );
    assert_eq!(arm.restarts(SITE), 1);
}

mod cli;
