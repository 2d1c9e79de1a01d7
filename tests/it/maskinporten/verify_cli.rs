//! `rotate` and `verify` through the real binary, over HTTPS against the fake Digdir on the
//! real clock (the binary signs grants with the system clock), and the admin certificate as a
//! PKCS#12 file whose password is in an environment variable.

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::{TimeDelta, Utc};

use super::fake::FakeDigdir;
use super::world::{ADMIN, ADMIN_CN, SCOPE, api_client, maskinporten_table, write_credentials};

const PASSWORD_ENV: &str = "JWK_ROTATOR_IT_P12_PASSWORD";
const PASSWORD: &str = "p12-Pass-phrase-4f0c9e";

/// Client `b` has neither `client_id` nor `verify_scope`: its keys go to files only.
const FILES_ONLY: &str = r#"
[[client]]
name = "b"
environments = ["TEST"]
"#;

/// The fake on the real clock, with the admin client and client `a-id`.
async fn fake() -> FakeDigdir {
    let fake = FakeDigdir::start().await;
    fake.add_admin_client(ADMIN, ADMIN_CN, &["idporten:dcr.read", "idporten:dcr.write"]);
    fake.add_client("a-id", &[SCOPE]);
    fake
}

/// `jwk-rotator.toml` in `dir` with `[maskinporten.TEST]` (PEM admin certificate, verify_wait
/// 1s), client `a` (verified, through the API) and client `b` (files only).
fn write_config(fake: &FakeDigdir, dir: &Path) -> PathBuf {
    write_credentials(fake, dir, Utc::now() + TimeDelta::days(365));
    let text = format!(
        "[store]\nkind = \"file\"\npath = \"keys\"\n\n{}{}{FILES_ONLY}",
        maskinporten_table(fake),
        api_client("a", "verified")
    );
    let path = dir.join("jwk-rotator.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// Runs the binary with `args` and the environment `env` on a blocking thread, so that the
/// fake keeps serving; the password variable is set only when `env` sets it. Logs are traced
/// down to the HTTP client, so that a token or password in them would show.
async fn rotator(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut set = vec![("JWK_ROTATOR_LOG", "trace")];
    set.extend_from_slice(env);
    crate::support::run_binary(config, args, &set, &["JWK_ROTATOR_NOW", PASSWORD_ENV]).await
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_exit(out: &Output, code: i32) {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(code), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

/// No token the fake issued is in any of `outputs`.
fn assert_no_token(fake: &FakeDigdir, outputs: &[&Output]) {
    let tokens = fake.issued_tokens();
    assert!(!tokens.is_empty());
    for out in outputs {
        let (stdout, stderr) = text(out);
        for token in &tokens {
            assert!(!stdout.contains(token) && !stderr.contains(token), "a token was shown");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_after_rotate_prints_the_granted_scope_and_never_the_token() {
    let fake = fake().await;
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(&fake, dir.path());

    let rotated = rotator(&config, &["rotate"], &[]).await;
    assert_exit(&rotated, 0);
    let registered = fake.registered_keys("a-id");
    assert_eq!(registered.len(), 1, "{registered:?}");
    let kid = registered[0].kid.clone();
    assert!(kid.starts_with("a-TEST."), "{kid}");

    let verified = rotator(&config, &["verify", "a-TEST"], &[]).await;
    assert_exit(&verified, 0);
    let (stdout, _) = text(&verified);
    assert!(stdout.starts_with(&format!("verified {kid} (current) of a-TEST")), "{stdout}");
    assert!(stdout.contains(&format!("granted a token with scope \"{SCOPE}\"")), "{stdout}");
    let granted: Vec<_> = fake.grants().into_iter().filter(|g| g.kid.as_deref() == Some(&kid)).collect();
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert!(granted[0].granted());
    assert!(text(&verified).1.contains("TRACE"), "trace logging is on");
    assert_no_token(&fake, &[&rotated, &verified]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_a_key_maskinporten_does_not_know_exits_1_and_a_client_without_settings_exits_2() {
    let fake = fake().await;
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(&fake, dir.path());
    assert_exit(&rotator(&config, &["rotate"], &[]).await, 0);
    // A new pending key, registered through the API, that the token endpoint learns of in an hour.
    fake.set_propagation(TimeDelta::hours(1));
    let before = fake.registered_keys("a-id");
    assert_exit(&rotator(&config, &["rotate", "--force", "a-TEST"], &[]).await, 0);
    let pending = fake.registered_keys("a-id").into_iter().find(|k| !before.contains(k)).expect("new").kid;

    let refused = rotator(&config, &["verify", "a-TEST", "--kid", &pending], &[]).await;
    assert_exit(&refused, 1);
    let (stdout, stderr) = text(&refused);
    assert_eq!(stdout, "");
    for part in [
        &format!("error: a-TEST: {pending} (pending) was not verified"),
        "Unknown key identifier (kid) for client",
        "tried for 0s",
    ] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }

    let unknown = rotator(&config, &["verify", "a-TEST", "--kid", "a-TEST.2020-01-01"], &[]).await;
    assert_exit(&unknown, 1);
    assert!(text(&unknown).1.contains("key set a-TEST has no key a-TEST.2020-01-01"), "{}", text(&unknown).1);

    let unset = rotator(&config, &["verify", "b-TEST"], &[]).await;
    assert_exit(&unset, 2);
    let (_, stderr) = text(&unset);
    for part in ["b-TEST can not be verified", "client_id for TEST", "verify_scope", "[maskinporten.TEST]"] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pkcs12_admin_certificate_needs_its_password_variable_and_the_password_is_never_shown() {
    let fake = fake().await;
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(&fake, dir.path());
    let now = Utc::now();
    let cert =
        fake.issue_business_certificate(ADMIN_CN, now - TimeDelta::days(1), now + TimeDelta::days(365));
    std::fs::write(dir.path().join("admin.p12"), cert.pkcs12_der(PASSWORD)).expect("p12");
    let pem = "admin_certificate_pem = \"admin-chain.pem\"\nadmin_key_pem = \"admin-key.pem\"\n";
    let p12 =
        format!("admin_certificate = \"admin.p12\"\nadmin_certificate_password_env = \"{PASSWORD_ENV}\"\n");
    let text_before = std::fs::read_to_string(&config).expect("config");
    assert!(text_before.contains(pem));
    std::fs::write(&config, text_before.replace(pem, &p12)).expect("config");

    let unset = rotator(&config, &["rotate"], &[]).await;
    assert_exit(&unset, 2);
    let (_, stderr) = text(&unset);
    for part in [
        "[maskinporten.TEST] admin_certificate = ",
        &format!("the environment variable {PASSWORD_ENV} (admin_certificate_password_env) is not set"),
    ] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
    assert!(fake.registered_keys("a-id").is_empty());

    let wrong = rotator(&config, &["rotate"], &[(PASSWORD_ENV, "not-the-password")]).await;
    assert_exit(&wrong, 2);
    assert!(text(&wrong).1.contains("admin.p12"), "{}", text(&wrong).1);

    let set = [(PASSWORD_ENV, PASSWORD)];
    let rotated = rotator(&config, &["rotate"], &set).await;
    assert_exit(&rotated, 0);
    assert_eq!(fake.registered_keys("a-id").len(), 1);
    let admin_grants = fake.grants().into_iter().filter(|g| g.certificate.as_deref() == Some(ADMIN_CN));
    assert!(admin_grants.clone().count() >= 1 && admin_grants.into_iter().all(|g| g.granted()));
    let verified = rotator(&config, &["verify", "a-TEST"], &set).await;
    assert_exit(&verified, 0);

    for out in [&unset, &wrong, &rotated, &verified] {
        let (stdout, stderr) = text(out);
        assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD), "the password was shown");
    }
    assert_no_token(&fake, &[&unset, &wrong, &rotated, &verified]);
}
