//! `import altinn-jwks` from a directory into the file store, through the real binary: the 1.x
//! and 2.0 directory layouts, built here from the documented formats (and the published 1.x
//! sample key), then `status`, `jwks`, `export-key` and the next `rotate` on what was imported.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use jwk_rotator::jwk::PrivateJwk;
use jwk_rotator::kid::encode_minutes;
use jwk_rotator::policy::Algorithm;

use crate::cli::Project;

pub const VECTOR_B64: &str = include_str!("../data/testklient-TEST.2024-07-10.key.b64");
pub const VECTOR_PUBLIC: &str = include_str!("../data/testklient-TEST.2024-07-10.maskinporten.json");

/// What altinn-jwks writes, built from the formats in its documentation.
pub mod altinn {
    use super::*;

    /// The published 1.x sample key, `testklient-TEST.2024-07-10`.
    pub fn vector() -> PrivateJwk {
        PrivateJwk::from_base64(VECTOR_B64).expect("vector")
    }

    /// Fixture key `i` under `kid`.
    pub fn key(i: usize, kid: &str) -> PrivateJwk {
        let line = crate::support::FIXTURE_KEYS.lines().nth(i).expect("fixture line");
        PrivateJwk::from_base64(line).expect("fixture").relabel(kid.parse().expect("kid"), Algorithm::RS256)
    }

    /// A 2.0 kid of `set` made at `minutes` after 2025-01-01 00:00.
    pub fn kid2(set: &str, minutes: u32) -> String {
        format!("{set}.{}", encode_minutes(minutes))
    }

    /// The private set `{"keys":[...]}`, compact, members in altinn-jwks order.
    pub fn private_set(keys: &[&PrivateJwk]) -> String {
        let members: Vec<String> = keys.iter().map(|k| k.to_json().as_str().to_owned()).collect();
        format!("{{\"keys\":[{}]}}", members.join(","))
    }

    /// The public set `{"keys":[...]}` in the 1.x public member order.
    pub fn public_set(keys: &[&PrivateJwk]) -> String {
        let members: Vec<String> = keys.iter().map(|k| k.public().to_altinn_json()).collect();
        format!("{{\"keys\":[{}]}}", members.join(","))
    }

    /// 1.x: `{set}.json`, `{set}.pub.json`, `{set}.key.json` (the last key is current).
    pub fn write_v1(dir: &Path, set: &str, keys: &[&PrivateJwk]) {
        fs::create_dir_all(dir).expect("dir");
        fs::write(dir.join(format!("{set}.json")), private_set(keys)).expect("priv");
        fs::write(dir.join(format!("{set}.pub.json")), public_set(keys)).expect("pub");
        let last = keys.last().expect("a key");
        fs::write(dir.join(format!("{set}.key.json")), last.to_json().as_bytes()).expect("key");
    }

    /// 2.0: `{set}.jwks.json`.
    pub fn write_v2(dir: &Path, set: &str, keys: &[&PrivateJwk]) {
        fs::create_dir_all(dir).expect("dir");
        fs::write(dir.join(format!("{set}.jwks.json")), private_set(keys)).expect("jwks");
    }

    /// Every file in `dir` with its content, to show that an import left them alone.
    pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).expect("read")))
            .collect();
        out.sort();
        out
    }
}

/// No private member of `keys` in `text`.
pub fn assert_no_secrets(text: &str, keys: &[&PrivateJwk]) {
    for key in keys {
        let json: serde_json::Value = serde_json::from_str(&key.to_json()).expect("json");
        for member in ["d", "p", "q", "dp", "dq", "qi"] {
            let value = json[member].as_str().expect("member");
            assert!(!text.contains(&value[..24]), "private member {member} in output:\n{text}");
        }
        assert!(!text.contains(&key.to_base64()[..60]), "a base64 private key in output");
    }
}

const NOW: &str = "2024-08-01T12:00:00Z";

fn status_json(p: &Project, now: &str) -> serde_json::Value {
    let (_, out, err) = p.run(now, &["status", "testklient-TEST", "--format", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("status json: {e}\n{out}\n{err}"))
}

fn stages(status: &serde_json::Value) -> Vec<(String, String)> {
    let keys = status["key_sets"][0]["keys"].as_array().cloned().unwrap_or_default();
    keys.iter()
        .map(|k| (k["kid"].as_str().unwrap_or("").to_owned(), k["stage"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[test]
fn v1_directory_sample_key_status_jwks_export_key_and_the_next_rotation() {
    let p = Project::new("");
    let from = p.path("altinn");
    let key = altinn::vector();
    altinn::write_v1(&from, "testklient-TEST", &[&key]);
    let before = altinn::files(&from);
    let (code, out, err) =
        p.run(NOW, &["import", "altinn-jwks", "--from", from.to_str().expect("path"), "testklient-TEST"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("testklient-TEST (altinn-jwks 1.x directory): clean"), "{out}");
    assert!(
        out.contains("testklient-TEST.2024-07-10")
            && out.contains("current")
            && out.contains("expires 2025-07-10"),
        "{out}"
    );
    assert!(err.contains("you may delete") && err.contains("testklient-TEST.key.json"), "{err}");
    assert_no_secrets(&(out.clone() + &err), &[&key]);
    assert_eq!(altinn::files(&from), before, "the altinn-jwks files are untouched");
    let file = p.path("keys/testklient-TEST.2024-07-10.json");
    assert_eq!(fs::metadata(&file).expect("key file").permissions().mode() & 0o777, 0o600);

    let status = status_json(&p, NOW);
    assert_eq!(stages(&status), [("testklient-TEST.2024-07-10".to_owned(), "current".to_owned())]);
    let (code, _, _) = p.run(NOW, &["status", "testklient-TEST"]);
    assert_eq!(code, 0, "a key of 22 days is OK");
    assert_eq!(p.ok(NOW, &["jwks", "testklient-TEST", "--format", "maskinporten"]), VECTOR_PUBLIC);
    assert_eq!(
        fs::read_to_string(p.path("jwks/testklient-TEST.maskinporten.json")).expect("published"),
        VECTOR_PUBLIC
    );
    assert_eq!(p.ok(NOW, &["export-key", "testklient-TEST", "--base64"]), VECTOR_B64);

    // rotate_after (90d) runs from the kid's date, 2024-07-10, as if this tool had made it.
    let quiet = p.ok("2024-10-07T23:59:00Z", &["plan", "testklient-TEST"]);
    assert_eq!(quiet.trim(), "testklient-TEST: nothing to do");
    let due = p.ok("2024-10-08T00:00:00Z", &["plan", "testklient-TEST"]);
    assert!(
        due.contains("would: generate testklient-TEST.2024-10-08 as pending") && due.contains("90 days old"),
        "{due}"
    );
    p.ok("2024-10-08T00:00:00Z", &["rotate", "testklient-TEST"]);
    let mut got = stages(&status_json(&p, "2024-10-08T00:00:00Z"));
    got.sort();
    let want = [("testklient-TEST.2024-07-10", "current"), ("testklient-TEST.2024-10-08", "pending")];
    assert_eq!(got, want.map(|(k, s)| (k.to_owned(), s.to_owned())));
    assert_eq!(p.ok("2024-10-08T00:00:00Z", &["export-key", "testklient-TEST", "--base64"]), VECTOR_B64);
}

#[test]
fn a_second_import_changes_nothing() {
    let p = Project::new("");
    let from = p.path("altinn");
    let (old, cur) = (altinn::key(0, "testklient-TEST.2024-05-02"), altinn::vector());
    altinn::write_v1(&from, "testklient-TEST", &[&old, &cur]);
    p.ok(NOW, &["import", "altinn-jwks", "--from", from.to_str().expect("path"), "testklient-TEST"]);
    let store = snapshot(&p);
    let (code, out, err) =
        p.run(NOW, &["import", "altinn-jwks", "--from", from.to_str().expect("path"), "testklient-TEST"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("in store already") && out.contains("was imported already; nothing to write"),
        "{out}"
    );
    assert!(err.contains("imported 0 keys"), "{err}");
    assert!(snapshot(&p) == store, "nothing changed");
}

#[test]
fn v1_directory_keys_become_current_previous_and_retired() {
    let p = Project::new("");
    let from = p.path("altinn");
    let expired = altinn::key(0, "testklient-TEST.2023-06-01");
    let older = altinn::key(1, "testklient-TEST.2024-04-01");
    let current = altinn::vector();
    altinn::write_v1(&from, "testklient-TEST", &[&expired, &older, &current]);
    let out = p.ok(NOW, &["import", "altinn-jwks", "--from", from.to_str().expect("path")]);
    assert!(out.contains("testklient-TEST.2023-06-01") && out.contains("retired"), "{out}");
    let status = status_json(&p, NOW);
    let mut got = stages(&status);
    got.sort();
    assert_eq!(
        got,
        [
            ("testklient-TEST.2023-06-01".to_owned(), "retired".to_owned()),
            ("testklient-TEST.2024-04-01".to_owned(), "previous".to_owned()),
            ("testklient-TEST.2024-07-10".to_owned(), "current".to_owned()),
        ]
    );
    // The published keys are altinn-jwks's public members byte for byte, current first.
    let published = p.ok(NOW, &["jwks", "testklient-TEST", "--format", "maskinporten"]);
    let expected = format!("[{},{}]", current.public().to_altinn_json(), older.public().to_altinn_json());
    assert_eq!(published, expected);
    assert_no_secrets(&(out + &published), &[&expired, &older, &current]);
}

#[test]
fn v2_directory_kids_are_kept_exactly_and_dated_by_their_minutes() {
    let p = Project::new("");
    let from = p.path("altinn");
    // 2025-07-30 13:04 (BKBQ), and a key a week later whose code holds '_' and '-'.
    let first = altinn::key(2, "testklient-TEST.BKBQ");
    let code =
        (0..).map(|m| 303_184 + 7 * 1440 + m).find(|m| encode_minutes(*m).contains('_')).expect("code");
    let second_kid = altinn::kid2("testklient-TEST", code);
    let second = altinn::key(3, &second_kid);
    altinn::write_v2(&from, "testklient-TEST", &[&first, &second]);
    let before = altinn::files(&from);
    let now = "2025-08-10T08:00:00Z";
    let out =
        p.ok(now, &["import", "altinn-jwks", "--from", from.to_str().expect("path"), "testklient-TEST"]);
    assert!(out.contains("(altinn-jwks 2.0 directory): clean"), "{out}");
    assert!(
        out.contains("testklient-TEST.BKBQ")
            && out.contains("2025-07-30")
            && out.contains("expires 2026-07-30"),
        "{out}"
    );
    assert_eq!(altinn::files(&from), before);
    let mut got = stages(&status_json(&p, now));
    got.sort();
    let mut want = vec![
        ("testklient-TEST.BKBQ".to_owned(), "previous".to_owned()),
        (second_kid.clone(), "current".to_owned()),
    ];
    want.sort();
    assert_eq!(got, want);
    let exported = p.ok(now, &["export-key", "testklient-TEST", "--base64"]);
    assert_eq!(exported, second.to_base64().as_str());
    let jwks: serde_json::Value =
        serde_json::from_str(&p.ok(now, &["jwks", "testklient-TEST"])).expect("jwks");
    assert_eq!(jwks["keys"][0]["kid"], second_kid.as_str());
    // Rotation is due 90 days after the current key's day (2025-08-06 + 90d = 2025-11-04).
    let day = jwk_rotator::kid::minutes_time(code).date();
    assert_eq!(day, chrono::NaiveDate::from_ymd_opt(2025, 8, 6).expect("day"));
    let quiet = p.ok("2025-11-03T23:00:00Z", &["plan", "testklient-TEST"]);
    assert!(!quiet.contains("generate"), "{quiet}");
    assert!(
        p.ok("2025-11-04T00:00:00Z", &["plan", "testklient-TEST"])
            .contains("would: generate testklient-TEST.2025-11-04 as pending")
    );
}

/// The project's files with their mode and a hash of their content (never the content: key
/// files hold private keys), but for the store's lock file and the directory made for it.
fn snapshot(p: &Project) -> Vec<(std::path::PathBuf, u32, u64)> {
    use std::hash::{Hash, Hasher};
    let keys = p.path("keys");
    p.snapshot()
        .into_iter()
        .filter(|(path, _)| *path != keys && *path != keys.join(".lock"))
        .map(|(path, (mode, bytes))| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            (path, mode, h.finish())
        })
        .collect()
}

/// Runs an import expected to be refused, and returns its stdout and stderr.
fn refused(p: &Project, args: &[&str], code: i32) -> String {
    let before = snapshot(p);
    let (got, out, err) = p.run(NOW, args);
    assert_eq!(got, code, "{out}\n{err}");
    assert_eq!(snapshot(p), before, "a refused import writes nothing");
    out + &err
}

fn import_args(p: &Project) -> Vec<String> {
    ["import", "altinn-jwks", "--from", p.path("altinn").to_str().expect("path")].map(str::to_owned).to_vec()
}

fn run_refused(p: &Project, extra: &[&str], code: i32) -> String {
    let mut args = import_args(p);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused(p, &args, code)
}

#[test]
fn a_public_set_that_does_not_match_the_private_set_is_refused() {
    let p = Project::new("");
    let dir = p.path("altinn");
    let key = altinn::vector();
    altinn::write_v1(&dir, "testklient-TEST", &[&key]);
    let other = altinn::key(0, "testklient-TEST.2024-07-10");
    fs::write(dir.join("testklient-TEST.pub.json"), altinn::public_set(&[&other])).expect("pub");
    let text = run_refused(&p, &[], 1);
    assert!(text.contains("problem: the public set of testklient-TEST has another public key for kid testklient-TEST.2024-07-10"), "{text}");
    assert!(text.contains("nothing was imported"), "{text}");
    assert_no_secrets(&text, &[&key, &other]);
}

#[test]
fn duplicated_kids_are_refused() {
    let p = Project::new("");
    let (a, b) = (altinn::key(0, "testklient-TEST.2024-07-01"), altinn::key(1, "testklient-TEST.2024-07-01"));
    altinn::write_v2(&p.path("altinn"), "testklient-TEST", &[&a, &b]);
    let text = run_refused(&p, &[], 1);
    assert!(text.contains("kid testklient-TEST.2024-07-01 is in the set 2 times"), "{text}");
}

#[test]
fn a_key_size_or_algorithm_the_policy_does_not_allow_is_refused_naming_the_setting() {
    let p = Project::new("[defaults]\nkey_size = 3072");
    altinn::write_v1(&p.path("altinn"), "testklient-TEST", &[&altinn::vector()]);
    let text = run_refused(&p, &[], 1);
    assert!(
        text.contains(
            "is an RSA-2048 key, but key_size of [[client]] testklient is 3072; set key_size = 2048"
        ),
        "{text}"
    );
    let p = Project::new("[defaults]\nalgorithm = \"RS512\"");
    altinn::write_v1(&p.path("altinn"), "testklient-TEST", &[&altinn::vector()]);
    let text = run_refused(&p, &[], 1);
    assert!(
        text.contains(
            "has alg RS256, but algorithm of [[client]] testklient is RS512; set algorithm = \"RS256\""
        ),
        "{text}"
    );
}

#[test]
fn a_set_larger_than_max_published_imports_the_newest_and_reports_the_rest() {
    let p = Project::new("[defaults]\nmax_published = 3");
    let kids: Vec<String> = (0..5).map(|i| altinn::kid2("testklient-TEST", 303_184 + i * 1440)).collect();
    let keys: Vec<PrivateJwk> = kids.iter().enumerate().map(|(i, k)| altinn::key(i, k)).collect();
    altinn::write_v2(&p.path("altinn"), "testklient-TEST", &keys.iter().collect::<Vec<_>>());
    let now = "2025-08-10T08:00:00Z";
    let (code, out, err) = p.run(now, &import_args(&p).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}\n{err}");
    for old in &kids[..2] {
        assert!(
            out.contains(&format!(
                "{old:<40} not imported: 5 keys of testklient-TEST would be published and max_published is 3"
            )),
            "{out}"
        );
        assert!(!p.path(&format!("keys/{old}.json")).exists());
    }
    let mut got = stages(&status_json(&p, now));
    got.sort();
    let mut want: Vec<(String, String)> = vec![
        (kids[2].clone(), "previous".into()),
        (kids[3].clone(), "previous".into()),
        (kids[4].clone(), "current".into()),
    ];
    want.sort();
    assert_eq!(got, want);
}

fn hours(n: i64) -> String {
    (crate::support::at(NOW) + chrono::TimeDelta::hours(n)).to_rfc3339()
}

/// Keys that someone promoted (or a previous import brought in) may be in use: the import does
/// not go over them.
#[test]
fn an_import_into_a_key_set_that_holds_other_keys_is_refused() {
    let p = Project::new("");
    p.ok(NOW, &["rotate", "testklient-TEST"]);
    p.ok(&hours(1), &["rotate", "--force", "testklient-TEST"]);
    p.ok(&hours(2), &["promote", "testklient-TEST"]);
    altinn::write_v1(&p.path("altinn"), "testklient-TEST", &[&altinn::vector()]);
    let text = run_refused(&p, &[], 1);
    assert!(
        text.contains(
            "the store holds testklient-TEST.2024-08-01-2 already, which this import does not have"
        ),
        "{text}"
    );
    let p = Project::new("");
    let from = p.path("altinn");
    altinn::write_v1(&from, "testklient-TEST", &[&altinn::vector()]);
    p.ok(NOW, &["import", "altinn-jwks", "--from", from.to_str().expect("path")]);
    altinn::write_v1(&from, "testklient-TEST", &[&altinn::key(0, "testklient-TEST.2024-07-10")]);
    let text = run_refused(&p, &[], 1);
    assert!(text.contains("the store holds testklient-TEST.2024-07-10 already, with another key"), "{text}");
}

#[test]
fn a_suffix_of_neither_form_is_refused_naming_the_kid() {
    let p = Project::new("");
    let key = altinn::vector();
    let json = altinn::private_set(&[&key]).replace("testklient-TEST.2024-07-10", "testklient-TEST.prod-key");
    fs::create_dir_all(p.path("altinn")).expect("dir");
    fs::write(p.path("altinn/testklient-TEST.jwks.json"), json).expect("jwks");
    let text = run_refused(&p, &[], 1);
    assert!(text.contains("kid testklient-TEST.prod-key has a suffix that is neither a date (YYYY-MM-DD) nor altinn-jwks 2.0's 4 characters"), "{text}");
    assert_no_secrets(&text, &[&key]);
}

#[test]
fn a_current_key_that_is_not_the_last_of_the_set_is_refused() {
    let p = Project::new("");
    let dir = p.path("altinn");
    let (old, cur) = (altinn::key(0, "testklient-TEST.2024-05-02"), altinn::vector());
    altinn::write_v1(&dir, "testklient-TEST", &[&old, &cur]);
    fs::write(dir.join("testklient-TEST.key.json"), old.to_json().as_bytes()).expect("key");
    let text = run_refused(&p, &[], 1);
    assert!(text.contains("the current key of testklient-TEST (testklient-TEST.2024-05-02) is not the last key of its private set (testklient-TEST.2024-07-10)"), "{text}");
}

#[test]
fn the_publish_or_store_directory_as_source_is_refused() {
    let p = Project::new("");
    altinn::write_v2(&p.path("jwks"), "testklient-TEST", &[&altinn::vector()]);
    let text = refused(&p, &["import", "altinn-jwks", "--from", p.path("jwks").to_str().expect("path")], 2);
    assert!(text.contains("is the [publish] dir, where {set}.jwks.json"), "{text}");
    altinn::write_v2(&p.path("keys"), "testklient-TEST", &[&altinn::vector()]);
    let text = refused(&p, &["import", "altinn-jwks", "--from", p.path("keys").to_str().expect("path")], 2);
    assert!(text.contains("is the store directory"), "{text}");
}

#[test]
fn dry_run_writes_nothing_and_skip_bad_imports_the_clean_sets() {
    let p = Project::new("");
    let dir = p.path("altinn");
    altinn::write_v1(&dir, "testklient-TEST", &[&altinn::vector()]);
    altinn::write_v2(
        &dir,
        "testklient-PROD",
        &[&altinn::key(0, "testklient-PROD.2024-07-10"), &altinn::key(0, "testklient-PROD.2024-07-11")],
    );
    altinn::write_v2(&dir, "unknown-TEST", &[&altinn::key(1, "unknown-TEST.2024-07-10")]);
    let text = run_refused(&p, &["--dry-run"], 1);
    assert!(text.contains("testklient-TEST (altinn-jwks 1.x directory): clean"), "{text}");
    assert!(text.contains("testklient-PROD (altinn-jwks 2.0 directory): NOT IMPORTED"), "{text}");
    assert!(
        text.contains("kids testklient-PROD.2024-07-10 and testklient-PROD.2024-07-11 hold the same key"),
        "{text}"
    );
    assert!(text.contains("key set unknown-TEST is not in the config"), "{text}");
    assert!(text.contains("dry run: nothing was written"), "{text}");
    let clean = run_refused(&p, &["testklient-TEST", "--dry-run"], 0);
    assert!(!clean.contains("testklient-PROD"), "{clean}");
    let mut args = import_args(&p);
    args.push("--skip-bad".into());
    let (code, out, err) = p.run(NOW, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("not imported, with problems: testklient-PROD, unknown-TEST"), "{err}");
    assert!(p.path("keys/testklient-TEST.2024-07-10.json").exists());
    assert!(!p.path("keys/testklient-PROD.2024-07-11.json").exists());
}

#[test]
fn altinn_2_kids_are_retired_by_their_decoded_date() {
    use jwk_rotator::planner::{Action, Request, plan};
    use jwk_rotator::policy::Policy;
    use jwk_rotator::record::{KeyRecord, Stage};
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().expect("time");
    let record = |kid: &str, stage: Stage, created: &str| {
        let key = altinn::key(0, kid);
        let mut r = KeyRecord::new(key.public().clone(), stage, at(created));
        r.published = Some(at(created));
        r
    };
    // BKBQ is 2025-07-30: with max_age 365d it expires 2026-07-30 00:00 UTC.
    let mut previous = record("testklient-TEST.BKBQ", Stage::Previous, "2025-07-30T00:00:00Z");
    previous.demoted = Some(at("2026-07-25T00:00:00Z"));
    let current = record("testklient-TEST.2026-07-25", Stage::Current, "2026-07-25T00:00:00Z");
    let records = [previous, current];
    let set = "testklient-TEST".parse().expect("set");
    let before = plan(&set, &records, &Policy::default(), at("2026-07-29T23:00:00Z"), &Request::default())
        .expect("plan");
    assert!(before.steps.is_empty(), "{:?}", before.steps);
    let after = plan(&set, &records, &Policy::default(), at("2026-07-30T00:00:00Z"), &Request::default())
        .expect("plan");
    let retired: Vec<String> = after
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Retire { .. }))
        .map(|s| format!("{} ({})", s.action.kid(), s.reason))
        .collect();
    assert_eq!(retired, ["testklient-TEST.BKBQ (expired on 2026-07-30 (kid date + max_age 365d))"]);
}

/// The schedule ran before the import (clients added to the config first): the keys `rotate`
/// made were never promoted, so the import adopts altinn-jwks's keys over them. Before, it
/// refused ("an import goes only into an empty key set") and left a key Maskinporten does not
/// know as the current one.
#[test]
fn keys_the_schedule_made_before_the_import_give_way_to_the_imported_ones() {
    let p = Project::new("");
    let from = p.path("altinn");
    altinn::write_v1(&from, "testklient-TEST", &[&altinn::vector()]);
    let made = p.ok(NOW, &["rotate"]);
    assert!(made.contains("done: generate testklient-TEST.2024-08-01 as current"), "{made}");
    let later = hours(1);
    let (code, out, err) = p.run(&later, &["import", "altinn-jwks", "--from", from.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("testklient-TEST (altinn-jwks 1.x directory): clean"), "{out}");
    assert!(out.contains("made by rotate before the import: becomes previous"), "{out}");
    let status = status_json(&p, &later);
    let mut got = stages(&status);
    got.sort();
    assert_eq!(
        got,
        [
            ("testklient-TEST.2024-07-10".to_owned(), "current".to_owned()),
            ("testklient-TEST.2024-08-01".to_owned(), "previous".to_owned())
        ]
    );
    let exported = p.ok(&later, &["export-key", "testklient-TEST", "--base64"]);
    assert_eq!(exported.trim(), altinn::vector().to_base64().as_str(), "applications get altinn-jwks's key");
    // The rest of the schedule goes on from there: the previous key leaves after overlap.
    let out = p.ok(&hours(24 * 15), &["rotate", "testklient-TEST"]);
    assert!(out.contains("done: retire testklient-TEST.2024-08-01"), "{out}");
    // An import killed before it reached a key set leaves the same state: the schedule makes a
    // key there, and the next import adopts over it too.
    let q = Project::new("");
    let from = q.path("altinn");
    altinn::write_v1(&from, "testklient-TEST", &[&altinn::vector()]);
    altinn::write_v1(&from, "testklient-PROD", &[&altinn::key(1, "testklient-PROD.2024-07-01")]);
    let dir = from.to_str().expect("path");
    q.ok(NOW, &["import", "altinn-jwks", "--from", dir, "testklient-TEST"]);
    q.ok(&hours(1), &["rotate"]);
    let (code, out, err) = q.run(&hours(2), &["import", "altinn-jwks", "--from", dir]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (_, status, _) = q.run(&hours(2), &["status", "testklient-PROD"]);
    assert!(status.contains("testklient-PROD.2024-07-01  current"), "{status}");
}

/// A FIFO named like an altinn-jwks file stops only its key set, and never hangs the import
/// (before, even `--dry-run` waited on it forever).
#[test]
fn a_fifo_in_the_source_is_refused_for_its_key_set_only() {
    let p = Project::new("");
    let from = p.path("altinn");
    altinn::write_v2(&from, "testklient-TEST", &[&altinn::vector()]);
    let fifo = from.join("testklient-PROD.jwks.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let dir = from.to_str().expect("path");
    for extra in [&["--dry-run"][..], &["--skip-bad"][..]] {
        let mut args = vec!["import", "altinn-jwks", "--from", dir];
        args.extend_from_slice(extra);
        let out = p.cmd(NOW, &args).timeout(std::time::Duration::from_secs(60)).output().expect("run");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("testklient-PROD (altinn-jwks 2.0 directory): NOT IMPORTED")
                && stdout.contains("testklient-PROD.jwks.json: it is a FIFO, not a regular file"),
            "{stdout}"
        );
        assert!(stdout.contains("testklient-TEST (altinn-jwks 2.0 directory): clean"), "{stdout}");
    }
    let (_, status, _) = p.run(NOW, &["status", "testklient-TEST"]);
    assert!(status.contains("testklient-TEST.2024-07-10  current"), "imported with --skip-bad: {status}");
}
