//! Bad input through the real binary: each gets a clear message naming the thing, a non-zero
//! exit, and nothing is written or lost.

use std::fs;

use base64::Engine as _;

use crate::cli::{Project, T0};

fn config_error(p: &Project, want: &[&str]) {
    let before = p.snapshot();
    let (code, out, err) = p.run(T0, &["rotate"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    for w in want {
        assert!(err.contains(w), "{w:?} not in: {err}");
    }
    assert_eq!(p.snapshot(), before, "a bad config wrote something");
}

fn with_config(text: &str) -> Project {
    let p = Project::new("");
    fs::write(p.path("jwk-rotator.toml"), text).expect("config");
    p
}

#[test]
fn missing_or_unreadable_config() {
    let p = Project::new("");
    fs::remove_file(p.path("jwk-rotator.toml")).expect("rm");
    config_error(&p, &["jwk-rotator.toml", "--config", "JWK_ROTATOR_CONFIG"]);
    fs::create_dir(p.path("jwk-rotator.toml")).expect("dir");
    config_error(&p, &["cannot read config file", "jwk-rotator.toml"]);
}

#[test]
fn toml_syntax_error_shows_the_line() {
    let p = with_config("[store]\nkind = \"file\"\npath = keys\n");
    config_error(&p, &["jwk-rotator.toml", "line 3"]);
}

#[test]
fn unknown_settings_are_named() {
    let client = "\n[[client]]\nname = \"a\"\n";
    config_error(&with_config(&format!("[defaults]\nrotate_afterr = \"90d\"\n{client}")), &["rotate_afterr"]);
    config_error(&with_config(&format!("[sotre]\nkind = \"file\"\n{client}")), &["sotre"]);
    config_error(&with_config(&format!("[store]\nkind = \"file\"\ndir = \"x\"\n{client}")), &["dir"]);
    config_error(
        &with_config(&format!("{client}colour = \"red\"\n")),
        &["client a", "unknown setting `colour`"],
    );
    config_error(&with_config(&format!("[store]\nkind = \"s3\"\n{client}")), &["s3"]);
}

#[test]
fn bad_names_are_refused() {
    config_error(
        &with_config("[[client]]\nname = \"test_klient\"\n"),
        &["client name \"test_klient\" is not valid"],
    );
    config_error(
        &with_config("[[client]]\nname = \"a\"\nenvironments = [\"test\"]\n"),
        &["client a", "environment \"test\" is not valid"],
    );
    config_error(
        &with_config("[[client]]\nname = \"a\"\n[[client]]\nname = \"a\"\n"),
        &["client a is listed twice"],
    );
    config_error(&with_config("[store]\nkind = \"file\"\n"), &["no [[client]]"]);
}

#[test]
fn inconsistent_policy_is_refused_at_load() {
    config_error(
        &with_config("[defaults]\nrotate_after = \"14d\"\n[[client]]\nname = \"a\"\n"),
        &["[defaults]", "publish_ahead + overlap (7d + 14d) must be shorter than rotate_after (14d)"],
    );
    config_error(
        &with_config("[[client]]\nname = \"a\"\nmax_age = \"400d\"\n"),
        &["client a", "max_age = \"400d\" is longer than 365d"],
    );
    config_error(
        &with_config("[[client]]\nname = \"a\"\npromotion = \"verified\"\n"),
        &["client a", "promotion = \"verified\" needs the client's Maskinporten client_id for TEST"],
    );
    config_error(&with_config("[[client]]\nname = \"a\"\nkey_size = 1024\n"), &["key size 1024"]);
    config_error(
        &with_config("[defaults]\noverlap = \"two weeks\"\n[[client]]\nname = \"a\"\n"),
        &["\"two weeks\" is not a duration"],
    );
}

#[test]
fn unknown_key_set_on_the_command_line() {
    let p = Project::new("");
    let (code, _, err) = p.run(T0, &["rotate", "testklient-STAGING"]);
    assert_eq!(code, 2);
    assert!(err.contains("key set \"testklient-STAGING\" is not in"), "{err}");
    assert!(err.contains("testklient-TEST, testklient-PROD"), "{err}");
    // Every command that takes a key set agrees: a set that is not configured is exit 2.
    for args in [&["export-key", "nope-TEST"][..], &["jwks", "nope-TEST"], &["promote", "nope-TEST"]] {
        let (code, _, err) = p.run(T0, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("key set \"nope-TEST\" is not in"), "{err}");
    }
    let (code, _, err) = p.run(T0, &["export-key", "testklient-TEST", "--kid", "nope"]);
    assert_eq!(code, 2, "a bad --kid is a bad command line: {err}");
    assert!(err.contains("--kid: kid \"nope\" is not valid"), "{err}");
    assert!(!p.path("keys").exists(), "nothing written");
}

#[test]
fn a_bad_jwk_rotator_now_names_the_variable() {
    let p = Project::new("");
    let before = p.snapshot();
    let (code, _, err) = p.run("2026-11-31T06:00:00Z", &["rotate"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("JWK_ROTATOR_NOW=\"2026-11-31T06:00:00Z\" is not an RFC 3339 time")
            && err.contains("e.g. 2026-11-29T06:00:00Z"),
        "{err}"
    );
    assert!(!err.contains("--now"), "a hidden flag is named: {err}");
    let (code, _, err) = p.run("tomorrow", &["status"]);
    assert_eq!(code, 3, "status: UNKNOWN, {err}");
    assert!(err.contains("JWK_ROTATOR_NOW=\"tomorrow\""), "{err}");
    assert_eq!(p.snapshot(), before);
}

#[test]
fn the_log_says_which_fixed_time_was_used() {
    let p = Project::new("");
    let (code, _, err) = p.run(T0, &["plan", "--at", "2027-01-01T00:00:00Z"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("--at is given; using it as the current time"), "{err}");
    assert!(err.contains("2027-01-01T00:00:00+00:00") && !err.contains("JWK_ROTATOR_NOW is set"), "{err}");
    let (_, _, err) = p.run(T0, &["plan"]);
    assert!(err.contains("JWK_ROTATOR_NOW is set; using it as the current time"), "{err}");
    assert!(err.contains("2026-11-21T06:00:00+00:00"), "{err}");
}

/// `[store]` and `[publish]` with a policy that can work, so only the settings under test fail.
fn store_config(store: &str, publish: &str) -> Project {
    with_config(&format!(
        "[store]\nkind = \"file\"\n{store}\n[publish]\n{publish}\n[[client]]\nname = \"a\"\n"
    ))
}

#[test]
fn directories_that_can_not_work_are_refused_at_load() {
    let separate = "[store] path = \"keys\" and [publish] dir = \"jwks\"";
    config_error(&store_config("path = \"\"", ""), &["[store] path is empty", "path = \"keys\""]);
    config_error(
        &store_config("path = \".\"", ""),
        &["[store] path = \".\" is the config file's own directory"],
    );
    config_error(&store_config("path = \"keys/../\"", ""), &["is the config file's own directory"]);
    config_error(
        &store_config("path = \"keys\"", "dir = \"keys\""),
        &["[publish] dir is the same directory as [store] path = \"keys\"", separate],
    );
    config_error(
        &store_config("path = \"keys\"", "dir = \"./keys/public\""),
        &["[publish] dir is inside the store directory [store] path = \"keys\"", separate],
    );
    config_error(
        &store_config("path = \"out/keys\"", "dir = \"out\""),
        &["[store] path = \"out/keys\" is inside the [publish] dir", separate],
    );
    config_error(&store_config("", "dir = \"\""), &["[publish] dir is empty"]);
    // The default publish dir ("jwks") next to a store that is not its parent is fine.
    let p = store_config("path = \"state/keys\"", "dir = \"state/jwks\"");
    p.ok(T0, &["rotate"]);
    assert!(p.path("state/jwks/a-TEST.jwks.json").exists());
}

#[test]
fn lock_timeouts_that_can_not_work_are_refused_naming_the_setting() {
    config_error(
        &store_config("lock_timeout = \"-1s\"", ""),
        &["[store] lock_timeout = \"-1s\" is not a duration", "like \"30s\" or \"5m\" (at most 1h)"],
    );
    config_error(
        &store_config("lock_timeout = \"30d\"", ""),
        &["[store] lock_timeout = \"30d\" is longer than 1h", "at most \"1h\""],
    );
    store_config("lock_timeout = \"1h\"", "").ok(T0, &["plan"]);
    store_config("lock_timeout = \"0s\"", "").ok(T0, &["plan"]);
}

#[test]
fn policies_that_can_not_work_are_refused_naming_the_client() {
    config_error(
        &with_config("[[client]]\nname = \"a\"\nwarn_before = \"300d\"\n"),
        &["client a", "rotate_after + publish_ahead + warn_before (90d + 7d + 300d)", "shorten warn_before"],
    );
    config_error(
        &with_config("[[client]]\nname = \"a\"\npromotion = \"after-delay\"\npublish_ahead = \"0d\"\n"),
        &["client a", "publish_ahead = \"0s\" is too short for promotion = \"after-delay\"", "at least 1h"],
    );
    config_error(
        &with_config(
            "[defaults]\npromotion = \"after-delay\"\npublish_ahead = \"10m\"\n[[client]]\nname = \"a\"\n",
        ),
        &["[defaults]", "publish_ahead = \"10m\" is too short"],
    );
}

/// Damages one key file; the run fails for that key set only and leaves the file as it was.
fn corrupt(edit: impl Fn(&str) -> String, want: &str) {
    let p = Project::new("");
    p.ok(T0, &["rotate"]);
    let file = p.path("keys/testklient-TEST.2026-11-21.json");
    let damaged = edit(&fs::read_to_string(&file).expect("key file"));
    fs::write(&file, &damaged).expect("write");
    let (code, out, err) = p.run("2027-02-20T06:00:00Z", &["rotate"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("testklient-TEST.2026-11-21.json") && err.contains(want), "{want:?} not in {err}");
    assert!(err.contains("restore it from a backup"), "{err}");
    assert!(
        out.contains("testklient-PROD: done: generate testklient-PROD.2027-02-20 as pending"),
        "others go on: {out}"
    );
    assert_eq!(fs::read_to_string(&file).expect("still there"), damaged, "the damaged file was touched");
    assert!(!p.path("keys/testklient-TEST.2027-02-20.json").exists());
    let (code, status, _) = p.run("2027-02-20T06:00:00Z", &["status", "testklient-TEST"]);
    assert_eq!(code, 3, "{status}");
}

fn field(text: &str, name: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(text).expect("json");
    doc[name].as_str().expect("string field").to_owned()
}

#[test]
fn corrupt_key_files() {
    corrupt(|t| t.replace(&field(t, "private_jwk")[..8], "!!!!!!!!"), "not standard base64");
    corrupt(|t| t.replacen('{', "{{", 1), "is not a valid key file");
    corrupt(
        |t| t.replace("\"kid\": \"testklient-TEST.2026-11-21\"", "\"kid\": \"testklient-TEST.2026-11-20\""),
        "holds kid testklient-TEST.2026-11-20 but is named for testklient-TEST.2026-11-21",
    );
    corrupt(
        |t| {
            let doc: serde_json::Value = serde_json::from_str(t).expect("json");
            let n = doc["public"]["n"].as_str().expect("n").to_owned();
            let mut other = n.clone().into_bytes();
            other[10] = if other[10] == b'A' { b'B' } else { b'A' };
            t.replace(&n, &String::from_utf8(other).expect("ascii"))
        },
        "public half that does not match its private key",
    );
    corrupt(
        |t| {
            let b64 = field(t, "private_jwk");
            let json = base64::engine::general_purpose::STANDARD.decode(&b64).expect("b64");
            let json = String::from_utf8(json).expect("utf8").replace("\"kty\":\"RSA\"", "\"kty\":\"EC\"");
            t.replace(&b64, &base64::engine::general_purpose::STANDARD.encode(json))
        },
        "kty must be \"RSA\"",
    );
}

#[test]
fn store_directory_not_writable() {
    let p = Project::new("");
    fs::write(p.path("keys"), "a file, not a directory").expect("write");
    let (code, _, err) = p.run(T0, &["rotate"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("file store") && err.contains("keys"), "{err}");
    assert!(err.contains("writable"), "{err}");
    assert!(!p.path("jwks").exists(), "outputs written without a store");
    assert_eq!(fs::read_to_string(p.path("keys")).expect("file"), "a file, not a directory");
}

#[test]
fn a_private_key_whose_members_disagree_is_not_exported() {
    let p = Project::new("");
    p.ok(T0, &["rotate"]);
    let file = p.path("keys/testklient-TEST.2026-11-21.json");
    let text = fs::read_to_string(&file).expect("key file");
    let b64 = field(&text, "private_jwk");
    let json = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&b64).expect("b64"))
        .expect("utf8");
    let mut jwk: serde_json::Value = serde_json::from_str(&json).expect("jwk");
    let dp = jwk["dp"].take();
    jwk["dp"] = jwk["dq"].take();
    jwk["dq"] = dp;
    let swapped = serde_json::to_string(&jwk).expect("json");
    fs::write(&file, text.replace(&b64, &base64::engine::general_purpose::STANDARD.encode(swapped)))
        .expect("write");
    let (code, out, err) = p.run(T0, &["export-key", "testklient-TEST", "--base64"]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "a bad key was printed");
    assert!(err.contains("testklient-TEST.2026-11-21.json has a private key that is not usable"), "{err}");
}

#[test]
fn durations_in_tables_toml_can_not_point_into_are_named() {
    config_error(
        &with_config("[[client]]\nname = \"a\"\noverlap = \"two weeks\"\n"),
        &["overlap: \"two weeks\" is not a duration"],
    );
    let vault = "[store]\nkind = \"azure-key-vault\"\nvault_url = \"https://v.vault.azure.net/\"\ncredential = \"static-token\"\n";
    config_error(
        &with_config(&format!("{vault}settle = \"soon\"\n[[client]]\nname = \"a\"\n")),
        &["[store] settle: \"soon\" is not a duration"],
    );
    config_error(
        &with_config(&format!("{vault}[store.retry]\nmax_delay = \"-5s\"\n[[client]]\nname = \"a\"\n")),
        &["[store.retry] max_delay: \"-5s\" is not a duration"],
    );
}

#[test]
fn a_jitter_as_long_as_the_schedule_is_refused() {
    config_error(
        &with_config("[schedule]\ncron = \"0 * * * *\"\njitter = \"1h\"\n[[client]]\nname = \"a\"\n"),
        &["[schedule] jitter = \"1h\" is not shorter than", "cron = \"0 * * * *\" (1h)", "shorten jitter"],
    );
    // Daylight saving makes one day in Oslo 23 hours long.
    config_error(
        &with_config(
            "[schedule]\ncron = \"0 6 * * *\"\ntimezone = \"Europe/Oslo\"\njitter = \"23h\"\n[[client]]\nname = \"a\"\n",
        ),
        &["(23h)"],
    );
    let p = with_config("[schedule]\ncron = \"0 * * * *\"\njitter = \"59m\"\n[[client]]\nname = \"a\"\n");
    p.ok(T0, &["plan"]);
}

/// Every 12-character piece of `secret`, for "no part of it was printed".
pub fn pieces(secret: &str) -> Vec<&str> {
    (0..=secret.len().saturating_sub(12)).map(|i| &secret[i..i + 12]).collect()
}

/// The private exponent `d` of a key file's private JWK.
pub fn private_d(key_file: &str) -> String {
    let b64 = field(key_file, "private_jwk");
    let json = base64::engine::general_purpose::STANDARD.decode(&b64).expect("b64");
    let jwk: serde_json::Value = serde_json::from_slice(&json).expect("jwk");
    jwk["d"].as_str().expect("d").to_owned()
}

/// A private value pasted into `stage` or `kid` of a key file: every command names the file
/// and the field, and no command prints any part of the value.
#[test]
fn a_private_value_in_a_key_file_field_is_never_printed() {
    for member in ["stage", "kid"] {
        let p = Project::new("");
        p.ok(T0, &["rotate"]);
        let file = p.path("keys/testklient-TEST.2026-11-21.json");
        let text = fs::read_to_string(&file).expect("key file");
        let d = private_d(&text);
        let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        doc[member] = serde_json::Value::from(d.clone());
        fs::write(&file, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
        for args in [
            &["rotate"][..],
            &["rotate", "--dry-run"],
            &["plan"],
            &["plan", "--format", "json"],
            &["status"],
            &["status", "--format", "json"],
            &["jwks", "testklient-TEST"],
            &["export-key", "testklient-TEST"],
            &["promote", "testklient-TEST"],
        ] {
            let (code, out, err) = p.run("2027-02-20T06:00:00Z", args);
            assert_ne!(code, 0, "{member} {args:?}: {out}{err}");
            for piece in pieces(&d) {
                assert!(
                    !out.contains(piece) && !err.contains(piece),
                    "{member} {args:?} printed d: {out}{err}"
                );
            }
            let named =
                format!("testklient-TEST.2026-11-21.json is not a valid key file (field `{member}` (line ");
            assert!(out.contains(&named) || err.contains(&named), "{member} {args:?}: {out}{err}");
        }
    }
}

#[test]
fn vault_request_limits_out_of_range_are_named() {
    let vault = "[store]\nkind = \"azure-key-vault\"\nvault_url = \"https://v.vault.azure.net/\"\ncredential = \"static-token\"\n";
    config_error(
        &with_config(&format!("{vault}max_in_flight = 0\n[[client]]\nname = \"a\"\n")),
        &["[store] max_in_flight = 0 must be between 1 and 1024"],
    );
    config_error(
        &with_config(&format!("{vault}request_budget = 5\n[[client]]\nname = \"a\"\n")),
        &["[store] request_budget = 5 is requests per 10 seconds and must be at least 10"],
    );
}
