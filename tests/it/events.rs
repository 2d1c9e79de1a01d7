//! Events end to end, through the real binary over simulated months: every change reaches the
//! webhook once (signed, some on a retry), the type filter holds, no secret is in a body, the
//! audit log verifies, and each way of tampering with it is caught and named.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};

use crate::support::run_binary;

const SECRET: &str = "a-signing-key-for-the-test";

/// What the fake receiver saw: per hook, each accepted body in order, and attempts per id.
#[derive(Default)]
struct Seen {
    accepted: BTreeMap<String, Vec<(String, String)>>,
    attempts: BTreeMap<String, usize>,
    problems: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn hmac_hex(body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
    aws_lc_rs::hmac::sign(&key, body).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses the first attempt of every fourth event (so that retries are used), checks the
/// media type and, on the `all` hook, the signature.
async fn receive(
    State(seen): State<Shared>,
    UrlPath(hook): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut seen = seen.lock().expect("lock");
    let text = String::from_utf8_lossy(&body).into_owned();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = doc["id"].as_str().unwrap_or_default().to_owned();
    let content_type =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if !content_type.starts_with("application/cloudevents+json") {
        seen.problems.push(format!("{id}: content type {content_type}"));
    }
    let signature = headers.get("x-jwk-rotator-signature").and_then(|v| v.to_str().ok());
    let expected = format!("sha256={}", hmac_hex(&body));
    match (hook.as_str(), signature) {
        ("all", Some(s)) if s == expected => {}
        ("promoted", None) => {}
        (hook, s) => seen.problems.push(format!("{hook} {id}: signature {s:?}")),
    }
    let n = seen.attempts.len();
    let attempts = seen.attempts.entry(format!("{hook}/{id}")).or_insert(0);
    *attempts += 1;
    if hook == "all" && *attempts == 1 && n % 4 == 3 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    seen.accepted.entry(hook).or_default().push((content_type, text));
    StatusCode::OK
}

async fn receiver() -> (Shared, u16) {
    let seen: Shared = Arc::default();
    let app = axum::Router::new().route("/{hook}", axum::routing::post(receive)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (seen, port)
}

fn config(dir: &Path, port: u16) -> std::path::PathBuf {
    let text = format!(
        r#"[store]
kind = "file"
path = "keys"

[publish]
dir = "jwks"

[defaults]
promotion = "after-delay"
retain_retired = "10d"

[events]
audit_log = "audit.jsonl"

[[events.webhook]]
name = "all"
url = "http://127.0.0.1:{port}/all"
secret_env = "EVENTS_TEST_SECRET"

[[events.webhook]]
name = "promoted"
url = "http://127.0.0.1:{port}/promoted"
types = ["key.promoted"]

[[client]]
name = "app"
environments = ["TEST", "PROD"]
"#
    );
    let path = dir.join("jwk-rotator.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// The stored private JWK (base64) and its `d` for every key in the file store.
fn private_exponents(keys: &Path) -> Vec<String> {
    use base64::Engine as _;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(keys).expect("keys dir").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let Some(private) = doc["private_jwk"].as_str() else { continue };
        found.push(private.to_owned());
        let jwk = base64::engine::general_purpose::STANDARD.decode(private).expect("base64 JWK");
        let jwk: serde_json::Value = serde_json::from_slice(&jwk).expect("JWK");
        found.push(jwk["d"].as_str().expect("d").to_owned());
    }
    found
}

async fn verify(config: &Path) -> std::process::Output {
    run_binary(config, &["audit", "--verify"], &[], &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn months_of_runs_deliver_every_event_once_and_the_audit_log_catches_tampering() {
    let (seen, port) = receiver().await;
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), port);
    let start = crate::support::at("2026-01-05T06:00:00Z");
    let mut keys_seen = Vec::new();
    for week in 0..60 {
        let now = (start + crate::support::days(7 * week)).to_rfc3339();
        let env = [("JWK_ROTATOR_NOW", now.as_str()), ("EVENTS_TEST_SECRET", SECRET)];
        let out = run_binary(&config, &["rotate"], &env, &[]).await;
        assert!(out.status.success(), "week {week}: {}", String::from_utf8_lossy(&out.stderr));
        keys_seen.extend(private_exponents(&dir.path().join("keys")));
    }
    assert!(!keys_seen.is_empty(), "no private key read from the store");
    let audit = run_binary(&config, &["audit", "--format", "json"], &[], &[]).await;
    assert!(audit.status.success(), "{}", String::from_utf8_lossy(&audit.stderr));
    let logged: Vec<serde_json::Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let seen = std::mem::take(&mut *seen.lock().expect("lock"));
    assert!(seen.problems.is_empty(), "{:?}", seen.problems);
    let all = &seen.accepted["all"];
    let ids = |bodies: &[(String, String)]| -> Vec<String> {
        bodies
            .iter()
            .map(|(_, b)| {
                serde_json::from_str::<serde_json::Value>(b).expect("json")["id"]
                    .as_str()
                    .expect("id")
                    .to_owned()
            })
            .collect()
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let logged_ids: Vec<String> = logged.iter().map(|e| e["id"].as_str().expect("id").to_owned()).collect();
    let unique: std::collections::BTreeSet<&String> = logged_ids.iter().collect();
    assert_eq!(unique.len(), logged_ids.len(), "an event twice in the audit log");
    // Key sets run at once and a retried event arrives late, so only the set of ids compares.
    assert_eq!(sorted(ids(all)), sorted(logged_ids.clone()), "the webhook got each logged event once");
    assert!(seen.attempts.values().any(|n| *n == 2), "no delivery needed a retry");
    let types: std::collections::BTreeSet<&str> =
        logged.iter().map(|e| e["type"].as_str().expect("type")).collect();
    for kind in ["generated", "published", "promoted", "demoted", "retired", "purged"] {
        assert!(types.contains(format!("no.jwk-rotator.key.{kind}").as_str()), "no key.{kind} in {types:?}");
    }
    let promoted: Vec<String> = logged
        .iter()
        .filter(|e| e["type"] == "no.jwk-rotator.key.promoted")
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        sorted(ids(&seen.accepted["promoted"])),
        sorted(promoted),
        "the filtered hook got the promotions only"
    );
    for (_, body) in all {
        assert!(!body.contains(SECRET), "the signing key in a body");
        assert!(keys_seen.iter().all(|d| !body.contains(d.as_str())), "a private key in a body");
    }
    if let Some(samples) = std::env::var_os("JWK_ROTATOR_EVENT_SAMPLES") {
        let lines: String = all
            .iter()
            .map(|(ct, body)| format!("{}\n", serde_json::json!({"content_type": ct, "body": body})))
            .collect();
        std::fs::write(samples, lines).expect("samples");
    }
    let out = verify(&config).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tampering_is_caught(&config, &dir.path().join("audit.jsonl")).await;
}

/// Each way of changing the log after it was written makes `audit --verify` exit 1 naming the
/// first line that is not as written; the log is put back after each.
async fn tampering_is_caught(config: &Path, log: &Path) {
    let original = std::fs::read_to_string(log).expect("log");
    let lines: Vec<&str> = original.lines().collect();
    let n = lines.len();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let mut edited = lines.clone();
    let changed = lines[2].replace("\"actor\":\"", "\"actor\":\"someone-else-");
    edited[2] = &changed;
    let mut swapped = lines.clone();
    swapped.swap(4, 5);
    let mut deleted = lines.clone();
    deleted.remove(6);
    let last_edited =
        lines[n - 1].replace("after-delay", "by-hand").replace("\"reason\":\"", "\"reason\":\"x");
    let mut last = lines.clone();
    last[n - 1] = &last_edited;
    let cases: Vec<(&str, String, usize)> = vec![
        ("edited line 3", join(&edited), 4),
        ("lines 5 and 6 swapped", join(&swapped), 5),
        ("line 7 deleted", join(&deleted), 7),
        ("the last line edited", join(&last), n),
        ("the last two lines cut", join(&lines[..n - 2]), n - 1),
        ("cut within the last line", original[..original.len() - 20].to_owned(), n),
    ];
    for (what, text, line) in cases {
        std::fs::write(log, &text).expect("tamper");
        let out = verify(config).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(&format!(": line {line} ")), "{what}: expected line {line}: {stderr}");
    }
    std::fs::write(log, &original).expect("restore");
    assert!(verify(config).await.status.success());
}
