//! The real binary against the fake vault over real HTTPS, as a user of an emulator such as
//! Lowkey Vault would run it: `ca_cert`, `verify_challenge_resource = false` and the
//! `static-token` credential, through the SDK's own TLS transport.

use std::path::Path;

use super::fake::TOKEN;
use super::*;

/// A CA, and a certificate for `localhost` signed by it: (CA PEM, leaf PEM, leaf key PEM).
pub(super) fn certificates() -> (String, String, String) {
    crate::support::tls::localhost_certificates("fake vault test CA")
}

fn write_config(dir: &Path, url: &str, store_extra: &str) -> std::path::PathBuf {
    let path = dir.join("jwk-rotator.toml");
    let text = format!(
        r#"[store]
kind = "azure-key-vault"
vault_url = "{url}"
credential = "static-token"
settle = "30ms"
{store_extra}

[store.retry]
initial_delay = "5ms"
max_retries = 2

[publish]
dir = "jwks"

[[client]]
name = "testklient"
environments = ["TEST"]
consumer_secret = "{{client}}-{{env}}-jwk"
"#
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// Runs the binary with `args` on a blocking thread, so that the fake keeps serving.
async fn rotator(config: &Path, args: &[&str]) -> std::process::Output {
    let env = [
        ("JWK_ROTATOR_STATIC_TOKEN", TOKEN),
        ("JWK_ROTATOR_NOW", "2026-11-21T12:00:00Z"),
        ("JWK_ROTATOR_LOG", "trace"),
    ];
    crate::support::run_binary(config, args, &env, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_over_https_with_ca_cert_static_token_and_no_challenge_check() {
    let (ca, cert, key) = certificates();
    let vault = FakeVault::start_tls(&cert, &key).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("ca.pem"), ca).expect("ca");
    let url = vault.url();
    let ok = write_config(dir.path(), &url, "ca_cert = \"ca.pem\"\nverify_challenge_resource = false");

    let out = rotator(&ok, &["rotate"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(vault.versions("jwk-testklient-TEST--2026-11-21").len(), 1);
    assert_eq!(vault.versions("testklient-TEST-jwk").len(), 1);
    // Traced down to the SDK and HTTP client, the logs hold no key material.
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("TRACE") || logs.contains("trace"), "trace logging is on");
    let value = vault.versions("testklient-TEST-jwk")[0].value.clone();
    assert!(!logs.contains(&value[..60]), "the base64 key is in the logs");
    let jwk: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &value).expect("base64"),
    )
    .expect("jwk");
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        let secret = jwk[member].as_str().expect("member");
        assert!(!logs.contains(&secret[..40]), "{member} is in the logs");
    }
    let jwks = std::fs::read_to_string(dir.path().join("jwks/testklient-TEST.jwks.json")).expect("jwks");
    assert!(jwks.contains("testklient-TEST.2026-11-21"), "{jwks}");
    let out = rotator(&ok, &["status"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = rotator(&ok, &["export-key", "testklient-TEST", "--base64"]).await;
    let consumer = vault.versions("testklient-TEST-jwk")[0].value.clone();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), consumer, "export-key reads the vault");
    let out = rotator(&ok, &["rotate", "--force", "testklient-TEST"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Promoted by a later run than the one that published it: an hour on, by both clocks.
    let env = [
        ("JWK_ROTATOR_STATIC_TOKEN", TOKEN),
        ("JWK_ROTATOR_NOW", "2026-11-21T13:00:00Z"),
        (crate::support::WALL, "2026-11-21T13:00:00Z"),
    ];
    let out = crate::support::run_binary(&ok, &["promote", "testklient-TEST"], &env, &[]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let consumer = vault.versions("testklient-TEST-jwk");
    assert_eq!(consumer.last().and_then(|v| v.tag("kid")), Some("testklient-TEST.2026-11-21-2"));
    assert!(vault.log().iter().any(|l| l.starts_with("401 ")), "the challenge was made");

    // The same vault without the emulator settings: clear errors naming the URL or the setting.
    let no_ca = write_config(dir.path(), &url, "verify_challenge_resource = false");
    let out = rotator(&no_ca, &["rotate"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&format!("cannot reach Key Vault at {url}")),
        "{stderr}"
    );
    let checked = write_config(dir.path(), &url, "ca_cert = \"ca.pem\"");
    let out = rotator(&checked, &["rotate"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("verify_challenge_resource = false in [store]"),
        "{stderr}"
    );
}

#[test]
fn vault_missing_credential_settings_are_named() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), "https://v.vault.azure.net/", "");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("jwk-rotator"))
        .arg("--config")
        .arg(&config)
        .arg("rotate")
        .env_remove("JWK_ROTATOR_STATIC_TOKEN")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("JWK_ROTATOR_STATIC_TOKEN"), "{stderr}");
    let text = std::fs::read_to_string(&config).expect("config").replace("static-token", "client-secret");
    std::fs::write(&config, text).expect("config");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("jwk-rotator"))
        .arg("--config")
        .arg(&config)
        .arg("rotate")
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("AZURE_TENANT_ID"), "{stderr}");
}

/// Emulators often serve a self-signed certificate: that certificate itself works as `ca_cert`.
#[tokio::test]
async fn vault_over_https_trusts_a_self_signed_certificate_given_as_ca_cert() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let vault = FakeVault::start_tls(&cert_pem, &key_pem).await;
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("self-signed.pem");
    std::fs::write(&ca, cert_pem).expect("cert");
    let extra = format!("ca_cert = {:?}\nverify_challenge_resource = false", ca.display().to_string());
    let config = azure_config(&vault.url(), &extra);
    let credential = jwk_rotator::azure::credential::StaticToken(azure_core::credentials::Secret::new(TOKEN));
    let clients = [client("testklient", &["TEST"], None, jwk_rotator::policy::Promotion::Manual)];
    let store = jwk_rotator::azure::open_store_with(&config, &clients, std::sync::Arc::new(credential), None)
        .expect("store");
    assert_eq!(records(&store, &set("testklient-TEST")).await, Vec::new());
    assert_eq!(vault.log().len(), 2, "challenge and one page: {:?}", vault.log());
}

/// A self-signed certificate and its key made by the `openssl` command line (see the README there).
fn openssl_fixture(name: &str) -> (String, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/emulator-tls");
    let read = |file: String| std::fs::read_to_string(dir.join(file)).expect("fixture");
    (read(format!("{name}-cert.pem")), read(format!("{name}-key.pem")))
}

/// An emulator certificate made the usual way (`openssl req -x509`, which marks it `CA:TRUE`)
/// works as `ca_cert` itself; one for another name, an expired one, or a server that shows
/// another certificate than the pinned one is refused, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_over_https_trusts_an_openssl_self_signed_certificate_given_as_ca_cert() {
    let cases = [
        ("localhost", "localhost", None),
        ("other-name", "other-name", Some("certificate not valid for name \"localhost\"")),
        ("expired", "expired", Some("certificate is not valid after 1609459200")),
        ("other-name", "localhost", Some("invalid peer certificate")),
    ];
    for (served, pinned, refused) in cases {
        let (cert, key) = openssl_fixture(served);
        let vault = FakeVault::start_tls(&cert, &key).await;
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("ca.pem"), openssl_fixture(pinned).0).expect("ca");
        let config =
            write_config(dir.path(), &vault.url(), "ca_cert = \"ca.pem\"\nverify_challenge_resource = false");
        let out = rotator(&config, &["rotate"]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match refused {
            None => {
                assert!(out.status.success(), "{served}: {stderr}");
                assert_eq!(vault.versions("jwk-testklient-TEST--2026-11-21").len(), 1);
                assert!(rotator(&config, &["status"]).await.status.success());
            }
            Some(why) => {
                assert!(!out.status.success(), "{served} pinned {pinned} was accepted");
                assert!(
                    stderr.contains("cannot reach Key Vault at") && stderr.contains(why),
                    "{served}: {stderr}"
                );
                assert!(stderr.contains("the server's TLS certificate was refused"), "{stderr}");
                assert!(vault.names().is_empty(), "{served}: something was written");
            }
        }
    }
}

/// A private value pasted into a key secret's `stage` or `kid` tag (or the consumer secret's
/// `kid` tag): every command names the secret and the tag, and none prints any part of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_a_private_value_in_a_tag_is_never_printed() {
    let (ca, cert, key) = certificates();
    let vault = FakeVault::start_tls(&cert, &key).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("ca.pem"), ca).expect("ca");
    let config =
        write_config(dir.path(), &vault.url(), "ca_cert = \"ca.pem\"\nverify_challenge_resource = false");
    let out = rotator(&config, &["rotate"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value = vault.versions("testklient-TEST-jwk")[0].value.clone();
    let jwk: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &value).expect("base64"),
    )
    .expect("jwk");
    let d = jwk["d"].as_str().expect("d").to_owned();
    let key_secret = "jwk-testklient-TEST--2026-11-21";
    for (secret, tag, named) in
        [(key_secret, "stage", true), (key_secret, "kid", true), ("testklient-TEST-jwk", "kid", false)]
    {
        let original = set_tag(&vault, secret, tag, &d);
        for args in [&["rotate"][..], &["plan"], &["status"], &["jwks", "testklient-TEST"]] {
            let out = rotator(&config, args).await;
            let (stdout, stderr) =
                (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            for piece in crate::cli_errors::pieces(&d) {
                assert!(
                    !stdout.contains(piece) && !stderr.contains(piece),
                    "{tag} {args:?}: {stdout}{stderr}"
                );
            }
            if named {
                assert!(!out.status.success(), "{tag} {args:?}");
                let message = format!("secret {key_secret} in Key Vault");
                let both = format!("{stdout}{stderr}");
                assert!(
                    both.contains(&message) && both.contains(&format!("`{tag}` tag that is not")),
                    "{both}"
                );
            }
        }
        set_tag(&vault, secret, tag, &original);
    }
}

/// Sets one tag of a secret's first version; returns what it held.
fn set_tag(vault: &FakeVault, secret: &str, tag: &str, value: &str) -> String {
    let mut state = vault.state();
    let entry = state.live.get_mut(&secret.to_ascii_lowercase()).expect("secret");
    let tags = entry.versions[0].tags.as_mut().expect("tags");
    let old = tags.insert(tag.to_owned(), serde_json::Value::from(value)).expect("tag");
    old.as_str().expect("string").to_owned()
}
