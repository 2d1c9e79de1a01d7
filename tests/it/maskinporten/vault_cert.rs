//! The admin client's business certificate kept in Key Vault as a certificate, read through its
//! backing secret (base64 PKCS#12 with an empty password) by the real binary, with the fake
//! vault and the fake Digdir over HTTPS.

use std::path::Path;

use base64::Engine as _;
use chrono::{TimeDelta, Utc};

use super::fake::FakeDigdir;
use super::world::{ADMIN, ADMIN_CN, SCOPE};
use crate::azure::fake::{FakeVault, TOKEN};
use crate::support::tls::localhost_certificates;

fn config(dir: &Path, vault: &FakeVault, fake: &FakeDigdir, secret: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[store]
kind = "azure-key-vault"
vault_url = "{vault}"
credential = "static-token"
ca_cert = "vault-ca.pem"
verify_challenge_resource = false
settle = "20ms"

[maskinporten.TEST]
api_url = "{api}"
issuer = "{issuer}"
token_url = "{token}"
ca_cert = "digdir-ca.pem"
admin_client_id = "{ADMIN}"
admin_certificate_secret = "{secret}"

[[client]]
name = "a"
environments = ["TEST"]
consumer_secret = "{{client}}-{{env}}-jwk"
publish = ["files", "maskinporten-api"]
client_id = {{ TEST = "a-id" }}
verify_scope = "{SCOPE}"
"#,
        vault = vault.url(),
        api = fake.api_url(),
        issuer = fake.issuer(),
        token = fake.token_url(),
    );
    let path = dir.join(format!("{secret}.toml"));
    std::fs::write(&path, text).expect("config");
    path
}

async fn rotator(config: &Path, args: &[&str]) -> std::process::Output {
    crate::support::run_binary(config, args, &[("JWK_ROTATOR_STATIC_TOKEN", TOKEN)], &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_certificate_is_read_from_a_key_vault_certificate_secret() {
    let (vault_ca, cert, key) = localhost_certificates("fake vault test CA");
    let vault = FakeVault::start_tls(&cert, &key).await;
    let fake = FakeDigdir::start().await; // the real clock: the binary signs with it
    fake.add_admin_client(ADMIN, ADMIN_CN, &["idporten:dcr.read", "idporten:dcr.write"]);
    fake.add_client("a-id", &[SCOPE]);
    let business = fake.issue_business_certificate(
        ADMIN_CN,
        Utc::now() - TimeDelta::days(1),
        Utc::now() + TimeDelta::days(400),
    );
    // What Key Vault keeps for an imported certificate: its PKCS#12, base64, no password.
    let p12 = base64::engine::general_purpose::STANDARD.encode(business.pkcs12_der(""));
    vault.put("business-cert", &p12, &[]);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("vault-ca.pem"), vault_ca).expect("ca");
    std::fs::write(dir.path().join("digdir-ca.pem"), fake.ca_pem()).expect("ca");

    let good = config(dir.path(), &vault, &fake, "business-cert");
    let out = rotator(&good, &["rotate"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let kids: Vec<String> = fake.registered_keys("a-id").into_iter().map(|k| k.kid).collect();
    assert_eq!(kids.len(), 1, "{kids:?}");
    assert!(!stderr.contains(&p12[..40]), "the certificate's secret is in the logs");
    let out = rotator(&good, &["verify", "a-TEST"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let missing = config(dir.path(), &vault, &fake, "no-such-cert");
    let out = rotator(&missing, &["status"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("[maskinporten.TEST] admin_certificate_secret = \"no-such-cert\""), "{stderr}");

    vault.put("not-a-cert", "aGVsbG8=", &[]);
    let garbage = config(dir.path(), &vault, &fake, "not-a-cert");
    let out = rotator(&garbage, &["status"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("admin_certificate_secret = \"not-a-cert\""),
        "{stderr}"
    );
}
