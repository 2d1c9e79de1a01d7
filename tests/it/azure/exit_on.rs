//! `rotate --exit-on` when the run succeeds but the key sets can not be read right after it
//! (run outcome ok, finding UNKNOWN): the real binary against the fake vault over HTTPS, which
//! throttles every second list call, with no retries left.

use super::fake::{TOKEN, Throttle};
use super::*;

const CONFIG: &str = r#"[store]
kind = "azure-key-vault"
vault_url = "URL"
credential = "static-token"
ca_cert = "vault.pem"
verify_challenge_resource = false
settle = "30ms"

[store.retry]
max_retries = 0

[publish]
dir = "jwks"

[[client]]
name = "testklient"
environments = ["TEST"]
"#;

async fn rotator(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let env = [("JWK_ROTATOR_STATIC_TOKEN", TOKEN), ("JWK_ROTATOR_NOW", "2026-11-21T12:00:00Z")];
    let config = dir.join("jwk-rotator.toml");
    let out = crate::support::run_binary(&config, args, &env, &["AZURE_CLIENT_ID"]).await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_run_whose_store_can_not_be_read_afterwards_exits_13() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let vault = FakeVault::start_tls(&cert_pem, &key_pem).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("vault.pem"), &cert_pem).expect("ca");
    std::fs::write(dir.path().join("jwk-rotator.toml"), CONFIG.replace("URL", &vault.url())).expect("config");
    let (code, _, err) = rotator(dir.path(), &["rotate"]).await;
    assert_eq!(code, 0, "{err}");

    // A run with nothing to do lists the vault once; the load after it is the second list.
    vault.reset_requests();
    vault.set_throttle(Throttle { every: 2, only: Some("/secrets?".to_owned()), retry_after: None });
    let (code, out, err) = rotator(dir.path(), &["rotate", "--exit-on", "unknown", "--format", "json"]).await;
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(doc["ok"], true, "the run itself succeeded\n{out}\n{err}\n{:#?}", vault.log());
    assert_eq!(doc["status"], "UNKNOWN", "{out}");
    assert_eq!(code, 13, "{err}");
    assert!(err.contains("UNKNOWN: testklient-TEST: the store could not be read"), "{err}");
    let lists: Vec<String> =
        vault.log().into_iter().filter(|l| l.contains(" GET /secrets?") && !l.starts_with("401 ")).collect();
    assert_eq!(lists.iter().map(|l| &l[..3]).collect::<Vec<_>>(), ["200", "429"], "{lists:#?}");
}
