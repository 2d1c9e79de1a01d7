//! Snapshots of what a person reads: `--help` of every command, the `status` and `plan` output
//! on a fixed clock over fixture keys, and the main error messages. A changed text fails here
//! until its snapshot is reviewed (`cargo insta review`; see the README's "Testing").

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::cli::Project;
use crate::support::FIXTURE_KEYS;

/// "Now" for every run here.
const NOW: &str = "2026-11-21T06:00:00Z";

/// The members of a private JWK that no snapshot may hold.
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

/// Where insta keeps this file's snapshots.
fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots")
}

/// Escapes `text` for use in a regular expression (insta's filters are regexes).
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Snapshot settings: this project's temp dir reads `[TMP]`, log timestamps (the wall clock,
/// not `JWK_ROTATOR_NOW`) read `[TIME]`, and snapshot files have no module prefix.
pub(crate) fn settings(p: Option<&Project>) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(snapshot_dir());
    s.set_prepend_module_to_snapshot(false);
    if let Some(p) = p {
        let dir = p.dir.path();
        if let Ok(real) = dir.canonicalize() {
            s.add_filter(&regex_literal(&real.display().to_string()), "[TMP]");
        }
        s.add_filter(&regex_literal(&dir.display().to_string()), "[TMP]");
    }
    s.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z", "[TIME]");
    s
}

/// Exit code, stdout and stderr of one run, as one text to snapshot.
fn transcript(args: &[&str], (code, out, err): (i32, String, String)) -> String {
    format!("$ jwk-rotator {}\nexit: {code}\n--- stdout\n{out}--- stderr\n{err}", args.join(" "))
}

/// Runs the binary in `p` at [`NOW`] and snapshots what it printed as `name`.
fn snap_run(name: &str, p: &Project, args: &[&str]) {
    let text = transcript(args, p.run(NOW, args));
    settings(Some(p)).bind(|| insta::assert_snapshot!(name, text));
}

// --- --help --------------------------------------------------------------------------------

/// `--help` with no config, no fixed time and a fixed width, as a person's terminal shows it.
fn help(args: &[&str]) -> String {
    let mut cmd = Command::cargo_bin("jwk-rotator").expect("binary");
    for var in [
        "JWK_ROTATOR_CONFIG",
        "JWK_ROTATOR_NOW",
        crate::support::WALL,
        "JWK_ROTATOR_LOG",
        "RUST_LOG",
        "LINES",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.env("COLUMNS", "100").args(args).arg("--help").output().expect("run");
    assert_eq!(out.status.code(), Some(0), "--help exits 0: {args:?}");
    assert!(out.stderr.is_empty(), "--help writes to stdout only: {args:?}");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

#[test]
fn help_of_the_top_level_and_every_command() {
    let commands = [
        "rotate",
        "plan",
        "status",
        "jwks",
        "export-key",
        "promote",
        "retire",
        "worker",
        "completions",
        "import",
    ];
    settings(None).bind(|| {
        insta::assert_snapshot!("help", help(&[]));
        for command in commands {
            insta::assert_snapshot!(format!("help_{}", command.replace('-', "_")), help(&[command]));
        }
        insta::assert_snapshot!("help_import_altinn_jwks", help(&["import", "altinn-jwks"]));
    });
}

// --- status and plan over fixture keys -----------------------------------------------------

/// One key file to write: kid, stage and its timestamps (days in 2025-2026 at 06:00 UTC).
struct Key {
    kid: &'static str,
    stage: &'static str,
    created: &'static str,
    activated: Option<&'static str>,
    demoted: Option<&'static str>,
    retired: Option<&'static str>,
}

const fn key(kid: &'static str, stage: &'static str, created: &'static str) -> Key {
    Key { kid, stage, created, activated: None, demoted: None, retired: None }
}

fn at(day: &str) -> String {
    format!("{day}T06:00:00Z")
}

/// The fixture private JWK of line `i`, renamed to `kid`, as a JSON object.
fn fixture_jwk(i: usize, kid: &str) -> serde_json::Map<String, serde_json::Value> {
    let line = FIXTURE_KEYS.lines().nth(i).expect("enough fixture keys");
    let json = STANDARD.decode(line.trim()).expect("fixture base64");
    let serde_json::Value::Object(mut jwk) = serde_json::from_slice(&json).expect("fixture json") else {
        panic!("fixture key {i} is not a JSON object");
    };
    jwk.insert("kid".into(), kid.into());
    jwk
}

/// Writes `keys` into the project's file store as a run would have left them, with fixture
/// key material (key `i` is fixture line `i`).
fn seed(p: &Project, keys: &[Key]) {
    let dir = p.path("keys");
    fs::create_dir_all(&dir).expect("store dir");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod store");
    for (i, k) in keys.iter().enumerate() {
        let jwk = fixture_jwk(i, k.kid);
        let private = serde_json::to_string(&jwk).expect("jwk json");
        let mut file = serde_json::json!({
            "kid": k.kid,
            "stage": k.stage,
            "created": at(k.created),
            "published": at(k.created),
            "public": { "kid": k.kid, "alg": jwk["alg"], "n": jwk["n"], "e": jwk["e"] },
            "private_jwk": STANDARD.encode(private),
        });
        for (field, day) in [("activated", k.activated), ("demoted", k.demoted), ("retired", k.retired)] {
            if let Some(day) = day {
                file[field] = at(day).into();
            }
        }
        // Written last at its latest time, by a host whose clock was right.
        let last = [Some(k.created), k.activated, k.demoted, k.retired].into_iter().flatten().max();
        file["written"] = at(last.unwrap_or(k.created)).into();
        let path = dir.join(format!("{}.json", k.kid));
        fs::write(&path, serde_json::to_vec_pretty(&file).expect("key file")).expect("write key");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod key");
    }
}

/// Both key sets mid-life on 2026-11-21 under the default policy: testklient-TEST has a
/// pending key nobody promoted and a retired key due for purging; testklient-PROD's current
/// key expires in 19 days with no pending key, and its previous key's overlap is over.
fn mid_life() -> Project {
    mid_life_with("")
}

/// [`mid_life`] with `extra` in the config (`[server]`, `[schedule]`).
pub(crate) fn mid_life_with(extra: &str) -> Project {
    let p = Project::new(extra);
    seed(
        &p,
        &[
            Key {
                activated: Some("2026-05-20"),
                ..key("testklient-TEST.2026-05-01", "current", "2026-05-01")
            },
            key("testklient-TEST.2026-08-05", "pending", "2026-08-05"),
            Key {
                activated: Some("2026-02-20"),
                demoted: Some("2026-05-20"),
                retired: Some("2026-06-05"),
                ..key("testklient-TEST.2026-02-10", "retired", "2026-02-10")
            },
            Key {
                activated: Some("2025-12-20"),
                ..key("testklient-PROD.2025-12-10", "current", "2025-12-10")
            },
            Key {
                activated: Some("2025-09-10"),
                demoted: Some("2025-12-20"),
                ..key("testklient-PROD.2025-09-01", "previous", "2025-09-01")
            },
        ],
    );
    p
}

#[test]
fn status_table_and_json() {
    let p = mid_life();
    let before = p.snapshot();
    snap_run("status_table", &p, &["status"]);
    snap_run("status_json", &p, &["status", "--format", "json"]);
    snap_run("status_markdown", &p, &["status", "--format", "markdown"]);
    assert_eq!(p.snapshot(), before, "status wrote something");
}

/// `rotate --format markdown`: the steps, then the status after the run, as a job summary.
#[test]
fn rotate_markdown() {
    let p = mid_life();
    snap_run("rotate_markdown", &p, &["rotate", "--format", "markdown"]);
}

#[test]
fn plan_table() {
    let p = mid_life();
    let before = p.snapshot();
    snap_run("plan_table", &p, &["plan"]);
    assert_eq!(p.snapshot(), before, "plan wrote something");
}

// --- error messages ------------------------------------------------------------------------

fn with_config(text: &str) -> Project {
    let p = Project::new("");
    fs::write(p.path("jwk-rotator.toml"), text).expect("config");
    p
}

#[test]
fn error_missing_config_file() {
    let p = Project::new("");
    fs::remove_file(p.path("jwk-rotator.toml")).expect("rm config");
    snap_run("error_missing_config_file", &p, &["rotate"]);
}

#[test]
fn error_toml_syntax() {
    let p = with_config("[store]\nkind = \"file\"\npath = keys\n");
    snap_run("error_toml_syntax", &p, &["rotate"]);
}

#[test]
fn error_unknown_setting() {
    let p = Project::new("[defaults]\nrotate_afterr = \"90d\"");
    snap_run("error_unknown_setting", &p, &["rotate"]);
}

#[test]
fn error_unknown_key_set() {
    snap_run("error_unknown_key_set", &Project::new(""), &["rotate", "testklient-STAGING"]);
}

#[test]
fn error_bad_jwk_rotator_now() {
    let p = Project::new("");
    let args = ["rotate"];
    let text = transcript(&args, p.run("2026-11-31T06:00:00Z", &args));
    settings(Some(&p)).bind(|| insta::assert_snapshot!("error_bad_jwk_rotator_now", text));
}

#[test]
fn error_locked_store() {
    let p = mid_life();
    let config = fs::read_to_string(p.path("jwk-rotator.toml")).expect("config");
    let config = config.replace("path = \"keys\"", "path = \"keys\"\nlock_timeout = \"1s\"");
    fs::write(p.path("jwk-rotator.toml"), config).expect("config");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p.path("keys/.lock"))
        .expect("lock file");
    lock.lock().expect("hold the lock");
    snap_run("error_locked_store", &p, &["rotate"]);
    lock.unlock().expect("unlock");
}

#[test]
fn error_corrupt_key_file() {
    let p = mid_life();
    let file = p.path("keys/testklient-TEST.2026-05-01.json");
    let text = fs::read_to_string(&file).expect("key file");
    fs::write(&file, text.replacen('{', "{{", 1)).expect("damage");
    snap_run("error_corrupt_key_file", &p, &["rotate", "testklient-TEST"]);
}

#[test]
fn error_promote_without_a_pending_key() {
    snap_run("error_promote_without_a_pending_key", &mid_life(), &["promote", "testklient-PROD"]);
}

// --- what no snapshot may hold -------------------------------------------------------------

#[test]
fn no_snapshot_holds_private_key_material() {
    let snaps: Vec<(PathBuf, String)> = fs::read_dir(snapshot_dir())
        .expect("committed snapshots in tests/it/snapshots")
        .map(|e| e.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "snap" || x == "new"))
        .map(|path| {
            let text = fs::read_to_string(&path).expect("snapshot");
            (path, text)
        })
        .collect();
    assert!(snaps.len() >= 21, "the snapshots of this file are committed: {} found", snaps.len());
    let secrets: Vec<String> = (0..FIXTURE_KEYS.lines().count())
        .flat_map(|i| {
            let jwk = fixture_jwk(i, "any");
            PRIVATE_MEMBERS.map(|m| jwk[m].as_str().expect("private member").to_owned())
        })
        .collect();
    for (path, text) in &snaps {
        for m in PRIVATE_MEMBERS {
            assert!(!text.contains(&format!("\"{m}\"")), "{} holds a \"{m}\" member", path.display());
        }
        for secret in &secrets {
            // A prefix is enough to catch a whole or wrapped value; 16 base64url characters
            // do not turn up by chance.
            assert!(!text.contains(&secret[..16]), "{} holds a fixture key's private value", path.display());
        }
    }
}
