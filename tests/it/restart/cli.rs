//! The real binary: a Key Vault store whose consumer secret is `altinn-app`, and a client
//! that restarts a Deployment, a Container App and an App Service app after each promotion.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::fake::{FakeArm, FakeKube};
use super::{APP, KUBE_TOKEN, SITE, kube_settings};
use crate::azure::fake::FakeVault;
use crate::azure::fake::TOKEN;

fn write_config(dir: &Path, vault: &str, kube: &FakeKube, arm: &FakeArm) -> std::path::PathBuf {
    kube_settings(dir, kube, KUBE_TOKEN);
    std::fs::write(dir.join("arm-ca.pem"), &arm.ca_pem).expect("arm ca");
    let path = dir.join("jwk-rotator.toml");
    let text = format!(
        r#"[store]
kind = "azure-key-vault"
vault_url = "{vault}"
credential = "static-token"
ca_cert = "vault-ca.pem"
verify_challenge_resource = false
settle = "30ms"

[publish]
dir = "jwks"

[kubernetes]
api_url = "{kube}"
token_file = "token"
ca_cert = "kube-ca.pem"

[azure_resource_manager]
url = "{arm}"
ca_cert = "arm-ca.pem"

[[client]]
name = "testklient"
environments = ["TEST"]
consumer_secret = "{{client}}-{{env}}-jwk"
consumer_format = "altinn-app"
client_id = {{ TEST = "3f1c6a0e-client" }}

[[client.restart]]
kind = "kubernetes-deployment"
namespace = "team-a"
name = "batch"

[[client.restart]]
kind = "container-app"
resource_id = "{APP}"

[[client.restart]]
kind = "app-service"
resource_id = "{SITE}"
"#,
        kube = kube.url,
        arm = arm.url,
    );
    std::fs::write(&path, text).expect("config");
    path
}

async fn rotator(config: &Path, now: &str, args: &[&str]) -> std::process::Output {
    let env = [("JWK_ROTATOR_STATIC_TOKEN", TOKEN), ("JWK_ROTATOR_NOW", now)];
    let out = crate::support::run_binary(config, args, &env, &[]).await;
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_promotion_writes_maskinporten_settings_and_restarts_every_application_once() {
    let (ca, cert, key) = crate::support::tls::localhost_certificates("fake vault test CA");
    let vault = FakeVault::start_tls(&cert, &key).await;
    let kube = FakeKube::start(KUBE_TOKEN).await;
    kube.add("deployments", "team-a", "batch");
    let arm = FakeArm::start(TOKEN).await;
    arm.add(APP);
    arm.add(SITE);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("vault-ca.pem"), ca).expect("ca");
    let config = write_config(dir.path(), &vault.url(), &kube, &arm);

    let first = "2026-11-21T12:00:00Z";
    let out = rotator(&config, first, &["rotate"]).await;
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(
            "testklient-TEST: restarted kubernetes-deployment team-a/batch for testklient-TEST.2026-11-21"
        ),
        "{summary}"
    );
    let out = rotator(&config, first, &["rotate"]).await;
    assert!(!String::from_utf8_lossy(&out.stdout).contains("restarted"), "nothing more to restart");
    let restarts =
        || (kube.workload("deployments", "team-a", "batch").rollouts, arm.restarts(APP), arm.restarts(SITE));
    assert_eq!(restarts(), (1, 1, 1), "once for the first key, not again");

    let latest = vault.versions("testklient-TEST-jwk").last().cloned().expect("consumer secret");
    assert_eq!(latest.content_type.as_deref(), Some("application/json"));
    assert_eq!(latest.tag("consumer-format"), Some("altinn-app"));
    let settings: serde_json::Value = serde_json::from_str(&latest.value).expect("MaskinportenSettings");
    assert_eq!(settings["authority"], "https://test.maskinporten.no/");
    assert_eq!(settings["clientId"], "3f1c6a0e-client");
    let jwk: serde_json::Value = serde_json::from_slice(
        &STANDARD.decode(settings["jwkBase64"].as_str().expect("b64")).expect("base64"),
    )
    .expect("jwk");
    assert_eq!(jwk["kid"], "testklient-TEST.2026-11-21");
    let exported =
        rotator(&config, first, &["export-key", "testklient-TEST", "--format", "altinn-app"]).await;
    assert_eq!(String::from_utf8_lossy(&exported.stdout).trim(), latest.value, "export-key prints the same");

    let status = rotator(&config, first, &["status"]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(
            "Restarts:\n  testklient: last restart 2026-11-21T12:00:00+00:00 for testklient-TEST.2026-11-21"
        ),
        "{text}"
    );

    // Three months on: a pending key restarts nothing; its promotion restarts each app once.
    rotator(&config, "2027-02-19T12:00:00Z", &["rotate"]).await;
    assert_eq!(restarts(), (1, 1, 1));
    rotator(&config, "2027-02-20T12:00:00Z", &["promote", "testklient-TEST"]).await;
    rotator(&config, "2027-02-20T13:00:00Z", &["rotate"]).await;
    assert_eq!(restarts(), (2, 2, 2));
    let annotation = kube.workload("deployments", "team-a", "batch").annotations;
    assert_eq!(annotation["kubectl.kubernetes.io/restartedAt"], "2027-02-20T12:00:00Z");
    let status = rotator(&config, "2027-02-20T13:00:00Z", &["status", "--format", "json"]).await;
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(doc["restarts"][0]["kid"], "testklient-TEST.2027-02-19", "{doc:#}");
}

/// A workload that is not there: the rotation succeeds, the summary says the restart was not
/// done, and an hour on `status` warns (`restart-pending`) until a run restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restart_never_fails_the_rotation_and_is_a_finding_until_done() {
    let kube = FakeKube::start(KUBE_TOKEN).await;
    let dir = tempfile::tempdir().expect("dir");
    kube_settings(dir.path(), &kube, KUBE_TOKEN);
    let config = dir.path().join("jwk-rotator.toml");
    let text = format!(
        "[store]\nkind = \"file\"\npath = \"keys\"\n[publish]\ndir = \"jwks\"\n[kubernetes]\napi_url = \"{}\"\ntoken_file = \"token\"\nca_cert = \"kube-ca.pem\"\n\n[[client]]\nname = \"a\"\nenvironments = [\"TEST\"]\n[[client.restart]]\nkind = \"kubernetes-deployment\"\nnamespace = \"team-a\"\nname = \"batch\"\n",
        kube.url
    );
    std::fs::write(&config, text).expect("config");
    let run = |now: &'static str, args: &'static [&'static str]| {
        let config = config.clone();
        async move { crate::support::run_binary(&config, args, &[("JWK_ROTATOR_NOW", now)], &[]).await }
    };
    let out = run("2026-11-21T12:00:00Z", &["rotate"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("a-TEST: restart not done (the next run tries again)") && summary.contains("404"),
        "{summary}"
    );
    let out = run("2026-11-21T14:00:00Z", &["status"]).await;
    assert_eq!(out.status.code(), Some(1), "a WARNING");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("were not restarted for the current key a-TEST.2026-11-21")
            && text.contains("a: no restart yet"),
        "{text}"
    );
    kube.add("deployments", "team-a", "batch");
    let out = run("2026-11-21T15:00:00Z", &["rotate"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("a-TEST: restarted"), "tried again");
    let out = run("2026-11-21T16:00:00Z", &["status"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(kube.workload("deployments", "team-a", "batch").rollouts, 1);
}
