//! Outputs for operators and packagers: `jwks --kid` (one key for Samarbeidsportalen),
//! `completions`, the man page, and the log variables the binary reads.

use serde_json::Value;

use crate::cli::{Project, T0};

const KID: &str = "testklient-TEST.2026-11-21";

#[test]
fn jwks_kid_prints_exactly_that_public_key() {
    let p = Project::new("");
    p.ok(T0, &["rotate"]);
    p.ok(T0, &["rotate", "--force", "testklient-TEST"]);
    let whole: Value =
        serde_json::from_str(&p.ok(T0, &["jwks", "testklient-TEST", "--format", "maskinporten"]))
            .expect("array");
    assert_eq!(whole.as_array().map(Vec::len), Some(2), "a current and a pending key: {whole}");

    let one = p.ok(
        T0,
        &["jwks", "testklient-TEST", "--kid", "testklient-TEST.2026-11-21-2", "--format", "maskinporten"],
    );
    let pending =
        whole.as_array().and_then(|a| a.iter().find(|k| k["kid"] == "testklient-TEST.2026-11-21-2"));
    assert_eq!(serde_json::from_str::<Value>(&one).ok().as_ref(), pending, "{one}");
    assert!(one.starts_with(r#"{"alg":"RS256","e":"AQAB","key_ops":[],"kid":"#), "altinn-jwks order: {one}");

    let jwk: Value =
        serde_json::from_str(&p.ok(T0, &["jwks", "testklient-TEST", "--kid", KID])).expect("object");
    assert_eq!(jwk["kid"], KID);
    assert!(jwk["exp"].is_i64() && jwk["n"].is_string(), "{jwk}");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(jwk.get(private).is_none(), "{private} in {jwk}");
    }
}

#[test]
fn jwks_kid_refuses_unknown_and_retired_keys() {
    let p = Project::new("");
    p.ok(T0, &["rotate"]);
    let (code, out, err) = p.run(T0, &["jwks", "testklient-TEST", "--kid", "testklient-TEST.2026-11-22"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("key set testklient-TEST has no key testklient-TEST.2026-11-22"), "{err}");
    p.ok(T0, &["retire", "testklient-TEST", KID, "--force"]);
    let (code, out, err) = p.run(T0, &["jwks", "testklient-TEST", "--kid", KID]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("is retired, not published: do not add it to Maskinporten"), "{err}");
    let (code, _, err) = p.run(T0, &["jwks", "testklient-TEST", "--kid", "not a kid"]);
    assert_ne!(code, 0, "{err}");
}

#[test]
fn completions_for_every_shell_and_a_man_page_without_a_config() {
    let p = Project::new("");
    std::fs::remove_file(p.path("jwk-rotator.toml")).expect("no config needed");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef jwk-rotator"),
        ("fish", "complete -c jwk-rotator"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let script = p.ok(T0, &["completions", shell]);
        assert!(
            script.contains(marker) && script.contains("exit-on"),
            "{shell}: {}",
            &script[..200.min(script.len())]
        );
    }
    let man = p.ok(T0, &["man"]);
    assert!(
        man.contains(".TH jwk-rotator 1") && man.contains("completions"),
        "{}",
        &man[..300.min(man.len())]
    );
}

#[test]
fn rust_log_is_read_when_jwk_rotator_log_is_not_set() {
    let p = Project::new("");
    let err = |vars: &[(&str, &str)]| {
        let mut cmd = p.cmd(T0, &["status"]);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        String::from_utf8_lossy(&cmd.output().expect("run").stderr).into_owned()
    };
    assert!(err(&[]).contains("INFO"), "info by default");
    assert!(!err(&[("RUST_LOG", "error")]).contains("INFO"), "RUST_LOG=error is read");
    assert!(
        err(&[("RUST_LOG", "error"), ("JWK_ROTATOR_LOG", "info")]).contains("INFO"),
        "JWK_ROTATOR_LOG wins"
    );
}
