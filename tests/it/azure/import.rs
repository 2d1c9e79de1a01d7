//! `import altinn-jwks` with Key Vault: altinn-jwks's 1.x and 2.0 vault layouts, built here from
//! the documented formats in the fake vault, read over real HTTPS with the store's `ca_cert` and
//! credential, and written into the same vault with this tool's layout and tags.

use std::path::PathBuf;

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::FakeVault;
use super::fake::TOKEN;
use crate::import::{VECTOR_B64, VECTOR_PUBLIC, altinn, assert_no_secrets};

const NOW: &str = "2025-08-10T08:00:00Z";

struct Setup {
    vault: FakeVault,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new(store_extra: &str, client_extra: &str) -> Setup {
        let (ca, cert, key) = super::https::certificates();
        let vault = FakeVault::start_tls(&cert, &key).await;
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("ca.pem"), ca).expect("ca");
        let text = format!(
            r#"[store]
kind = "azure-key-vault"
vault_url = "{}"
credential = "static-token"
ca_cert = "ca.pem"
verify_challenge_resource = false
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
{client_extra}
"#,
            vault.url()
        );
        std::fs::write(dir.path().join("jwk-rotator.toml"), text).expect("config");
        Setup { vault, dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("jwk-rotator.toml")
    }

    /// Runs the binary on a blocking thread (the fake keeps serving): (code, stdout, stderr).
    async fn run(&self, now: &str, args: &[&str]) -> (i32, String, String) {
        let (config, now) = (self.config(), now.to_owned());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::cargo_bin("jwk-rotator")
                .expect("binary")
                .arg("--config")
                .arg(config)
                .args(args)
                .env("JWK_ROTATOR_STATIC_TOKEN", TOKEN)
                .env("JWK_ROTATOR_NOW", &now)
                .env(crate::support::WALL, &now)
                // Traced down to the SDK and HTTP client: no key material may show up there.
                .env("JWK_ROTATOR_LOG", "trace")
                .env_remove("RUST_LOG")
                .output()
                .expect("run")
        })
        .await
        .expect("join");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    async fn ok(&self, now: &str, args: &[&str]) -> String {
        let (code, out, err) = self.run(now, args).await;
        assert_eq!(code, 0, "{args:?}\n{out}\n{err}");
        out
    }

    async fn import(&self, now: &str) -> (i32, String, String) {
        let url = self.vault.url();
        self.run(now, &["import", "altinn-jwks", "--from", &url]).await
    }

    /// Every version of every secret: (name, value, tags), to show what an import left alone.
    fn contents(&self, names: &[&str]) -> Vec<(String, String, String)> {
        names
            .iter()
            .flat_map(|n| {
                self.vault
                    .versions(n)
                    .into_iter()
                    .map(move |v| (n.to_string(), v.value, format!("{:?}", v.tags)))
            })
            .collect()
    }
}

fn b64(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

fn stages(out: &str) -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(out).expect("status json");
    let mut got: Vec<(String, String)> = doc["key_sets"][0]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| (k["kid"].as_str().unwrap_or("").to_owned(), k["stage"].as_str().unwrap_or("").to_owned()))
        .collect();
    got.sort();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_key_vault_is_imported_into_the_same_vault_and_left_alone() {
    let s = Setup::new("", "consumer_secret = \"{client}-{env}-jwk\"").await;
    let (old, cur) = (altinn::key(0, "testklient-TEST.2024-09-02"), altinn::vector());
    s.vault.put("testklient-TEST--priv", &b64(&altinn::private_set(&[&old, &cur])), &[]);
    s.vault.put("testklient-TEST--pub", &b64(&altinn::public_set(&[&old, &cur])), &[]);
    s.vault.put("testklient-TEST--key", VECTOR_B64, &[]);
    let altinn_names = ["testklient-TEST--priv", "testklient-TEST--pub", "testklient-TEST--key"];
    let before = s.contents(&altinn_names);
    let now = "2024-09-10T08:00:00Z";
    let (code, out, err) = s.import(now).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("testklient-TEST (altinn-jwks 1.x Key Vault): clean"), "{out}");
    assert!(
        err.contains(
            "secret testklient-TEST--priv, secret testklient-TEST--pub, secret testklient-TEST--key"
        ),
        "{err}"
    );
    assert!(err.contains("TRACE"), "trace logs are on");
    assert_no_secrets(&(out + &err), &[&old, &cur]);
    assert_eq!(s.contents(&altinn_names), before, "altinn-jwks's secrets are untouched");

    let key_secret = s.vault.versions("jwk-testklient-TEST--2024-07-10");
    assert_eq!(key_secret.len(), 1);
    assert_eq!(key_secret[0].tag("stage"), Some("current"));
    assert_eq!(key_secret[0].tag("managed-by"), Some("jwk-rotator"));
    assert_eq!(s.vault.versions("jwk-testklient-TEST--2024-09-02")[0].tag("stage"), Some("previous"));
    let consumer = s.vault.versions("testklient-TEST-jwk");
    assert_eq!(consumer.len(), 1);
    assert_eq!(
        (consumer[0].value.as_str(), consumer[0].tag("kid")),
        (VECTOR_B64, Some("testklient-TEST.2024-07-10"))
    );

    let status = s.ok(now, &["status", "testklient-TEST", "--format", "json"]).await;
    assert_eq!(
        stages(&status),
        [
            ("testklient-TEST.2024-07-10".to_owned(), "current".to_owned()),
            ("testklient-TEST.2024-09-02".to_owned(), "previous".to_owned())
        ]
    );
    assert_eq!(
        s.ok(now, &["export-key", "testklient-TEST", "--base64"]).await,
        VECTOR_B64,
        "the 1.x --key secret"
    );
    let published = s.ok(now, &["jwks", "testklient-TEST", "--format", "maskinporten"]).await;
    assert_eq!(
        published,
        format!("[{},{}]", &VECTOR_PUBLIC[1..VECTOR_PUBLIC.len() - 1], old.public().to_altinn_json())
    );

    // A second import reads, and writes nothing.
    s.vault.reset_requests();
    let (code, out, err) = s.import(now).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("was imported already"), "{out}");
    let log = s.vault.log();
    assert!(log.iter().any(|l| l.contains(" GET /secrets/testklient-TEST--priv")), "{log:?}");
    let writes: Vec<String> = log.into_iter().filter(|l| !l.contains(" GET ")).collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_key_vault_kids_with_underscores_get_hex_secret_names() {
    let s = Setup::new("", "").await;
    let first = altinn::key(2, "testklient-TEST.BKBQ");
    let code = (303_184 + 1440..).find(|m| jwk_rotator::kid::encode_minutes(*m).contains('_')).expect("code");
    let second_kid = altinn::kid2("testklient-TEST", code);
    let second = altinn::key(3, &second_kid);
    // Each `create` adds a version holding the whole set.
    s.vault.put("testklient-TEST--jwks", &b64(&altinn::private_set(&[&first])), &[]);
    s.vault.put("testklient-TEST--jwks", &b64(&altinn::private_set(&[&first, &second])), &[]);
    let before = s.contents(&["testklient-TEST--jwks"]);
    let (code_, out, err) = s.import(NOW).await;
    assert_eq!(code_, 0, "{out}\n{err}");
    assert!(out.contains("(altinn-jwks 2.0 Key Vault): clean") && out.contains(&second_kid), "{out}");
    assert_eq!(s.contents(&["testklient-TEST--jwks"]), before);
    let hex = format!("jwk-testklient-TEST--x{code:06x}");
    assert_eq!(s.vault.versions(&hex)[0].tag("kid"), Some(second_kid.as_str()), "{:?}", s.vault.names());
    assert_eq!(s.vault.versions("jwk-testklient-TEST--BKBQ")[0].tag("kid"), Some("testklient-TEST.BKBQ"));
    let status = s.ok(NOW, &["status", "testklient-TEST", "--format", "json"]).await;
    let mut want = vec![
        ("testklient-TEST.BKBQ".to_owned(), "previous".to_owned()),
        (second_kid.clone(), "current".to_owned()),
    ];
    want.sort();
    assert_eq!(stages(&status), want);
    assert_eq!(s.ok(NOW, &["export-key", "testklient-TEST", "--base64"]).await, second.to_base64().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_directory_goes_into_the_vault_store_too() {
    let s = Setup::new("", "").await;
    let from = s.dir.path().join("altinn");
    let key = altinn::key(4, "testklient-TEST.BKBQ");
    altinn::write_v2(&from, "testklient-TEST", &[&key]);
    let from = from.to_str().expect("path").to_owned();
    let out = s.ok(NOW, &["import", "altinn-jwks", "--from", &from]).await;
    assert!(out.contains("(altinn-jwks 2.0 directory): clean"), "{out}");
    assert_eq!(s.vault.versions("jwk-testklient-TEST--BKBQ")[0].tag("stage"), Some("current"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altinn_secrets_the_store_would_take_for_keys_are_refused() {
    let s = Setup::new("secret_prefix = \"\"", "").await;
    s.vault.put(
        "testklient-TEST--jwks",
        &b64(&altinn::private_set(&[&altinn::key(2, "testklient-TEST.BKBQ")])),
        &[],
    );
    let (code, out, err) = s.import(NOW).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("altinn-jwks secret testklient-TEST--jwks would be read as key testklient-TEST.jwks"),
        "{out}"
    );
    assert_eq!(s.vault.names(), ["testklient-TEST--jwks"], "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_secret_that_is_the_1x_key_secret_is_left_alone() {
    let s = Setup::new("", "consumer_secret = \"{client}-{env}--key\"").await;
    let cur = altinn::vector();
    s.vault.put("testklient-TEST--priv", &b64(&altinn::private_set(&[&cur])), &[]);
    s.vault.put("testklient-TEST--pub", &b64(&altinn::public_set(&[&cur])), &[]);
    s.vault.put("testklient-TEST--key", VECTOR_B64, &[]);
    let (code, out, err) = s.import("2024-09-10T08:00:00Z").await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("consumer secret testklient-TEST--key is altinn-jwks's current-key secret"),
        "{out}"
    );
    assert_eq!(s.vault.versions("testklient-TEST--key").len(), 1, "no version added");
    // Another key in the --key secret than the set's last one is a problem, not an overwrite.
    let s = Setup::new("", "consumer_secret = \"{client}-{env}--priv\"").await;
    s.vault.put("testklient-TEST--priv", &b64(&altinn::private_set(&[&cur])), &[]);
    s.vault.put("testklient-TEST--pub", &b64(&altinn::public_set(&[&cur])), &[]);
    s.vault.put("testklient-TEST--key", VECTOR_B64, &[]);
    let (code, out, _) = s.import("2024-09-10T08:00:00Z").await;
    assert_eq!(code, 1);
    assert!(
        out.contains("consumer_secret testklient-TEST--priv of testklient-TEST is an altinn-jwks secret"),
        "{out}"
    );
    assert_eq!(s.vault.names().len(), 3, "nothing written");
}

/// The schedule ran before the import, and applications read altinn-jwks's key from the
/// consumer secret: the first key of the "empty" key set must not take its place. It waits as
/// pending, `status` says to import (or promote), and the import adopts altinn-jwks's keys over
/// it. Before, `rotate` made its key current and wrote it into the consumer secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_key_leaves_a_consumer_secret_that_holds_another_key_alone() {
    let s = Setup::new("", "consumer_secret = \"{client}-{env}--key\"").await;
    let cur = altinn::vector();
    s.vault.put("testklient-TEST--priv", &b64(&altinn::private_set(&[&cur])), &[]);
    s.vault.put("testklient-TEST--pub", &b64(&altinn::public_set(&[&cur])), &[]);
    s.vault.put("testklient-TEST--key", VECTOR_B64, &[]);
    let out = s.ok("2024-09-10T08:00:00Z", &["rotate"]).await;
    assert!(out.contains("done: generate testklient-TEST.2024-09-10 as pending"), "{out}");
    assert!(out.contains("consumer secret holds a key that applications read"), "{out}");
    let consumer = s.vault.versions("testklient-TEST--key");
    assert_eq!(consumer.len(), 1, "the consumer secret is left alone");
    assert_eq!(consumer[0].value, VECTOR_B64);
    let (code, status, _) = s.run("2024-09-10T09:00:00Z", &["status"]).await;
    assert_eq!(code, 2, "{status}");
    assert!(
        status.contains("no current key, and its consumer secret holds a key jwk-rotator did not write")
            && status.contains("import altinn-jwks"),
        "{status}"
    );
    let (code, out, err) = s.import("2024-09-10T10:00:00Z").await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("made by rotate before the import: becomes retired"), "{out}");
    // The import leaves altinn-jwks's --key secret as it is; the next rotate tags it.
    s.ok("2024-09-10T10:00:00Z", &["rotate"]).await;
    let (code, status, _) = s.run("2024-09-10T10:00:00Z", &["status"]).await;
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("testklient-TEST.2024-07-10  current"), "{status}");
    let consumer = s.vault.versions("testklient-TEST--key");
    let latest = consumer.last().expect("a version");
    assert_eq!(latest.value.trim(), VECTOR_B64.trim(), "applications still read altinn-jwks's key");
}
