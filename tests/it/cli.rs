//! The real binary, run with a fixed clock (`JWK_ROTATOR_NOW`) on the file store.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use base64::Engine as _;

/// A config and its directories in a temp dir.
pub struct Project {
    pub dir: tempfile::TempDir,
}

pub const T0: &str = "2026-11-21T06:00:00Z";

impl Project {
    pub fn new(extra: &str) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            "[store]\nkind = \"file\"\npath = \"keys\"\n\n[publish]\ndir = \"jwks\"\n\n{extra}\n\n[[client]]\nname = \"testklient\"\nenvironments = [\"TEST\", \"PROD\"]\n"
        );
        fs::write(dir.path().join("jwk-rotator.toml"), config).expect("config");
        Project { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The binary with this project's config and `now` fixed, for the run's time and for the
    /// real clock: a simulated timeline.
    pub fn cmd(&self, now: &str, args: &[&str]) -> Command {
        let mut cmd = self.cmd_at(Some(now), Some(now));
        cmd.args(args);
        cmd
    }

    /// The binary with this project's config, `JWK_ROTATOR_NOW` at `now` and the real clock at
    /// `wall` (the system's own when `None`).
    pub fn cmd_at(&self, now: Option<&str>, wall: Option<&str>) -> Command {
        let mut cmd = Command::cargo_bin("jwk-rotator").expect("binary");
        cmd.env_remove("JWK_ROTATOR_NOW").env_remove(crate::support::WALL);
        if let Some(now) = now {
            cmd.env("JWK_ROTATOR_NOW", now);
        }
        if let Some(wall) = wall {
            cmd.env(crate::support::WALL, wall);
        }
        cmd.env("JWK_ROTATOR_CONFIG", self.path("jwk-rotator.toml"))
            .env_remove("JWK_ROTATOR_LOG")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Runs with `JWK_ROTATOR_NOW` at `now` and the real clock at `wall` (the system's when
    /// `None`): (exit code, stdout, stderr).
    pub fn run_at(&self, now: Option<&str>, wall: Option<&str>, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd_at(now, wall).args(args).output().expect("run");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    /// Runs and returns (exit code, stdout, stderr).
    pub fn run(&self, now: &str, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd(now, args).output().expect("run");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    pub fn ok(&self, now: &str, args: &[&str]) -> String {
        let (code, out, err) = self.run(now, args);
        assert_eq!(code, 0, "{args:?} failed\nstdout: {out}\nstderr: {err}");
        out
    }

    /// Every file under the project with its mode and content.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Vec<u8>)>) {
            let Ok(entries) = fs::read_dir(dir) else { return };
            for e in entries.flatten() {
                let path = e.path();
                let meta = e.metadata().expect("metadata");
                if meta.is_dir() {
                    out.insert(path.clone(), (meta.permissions().mode(), Vec::new()));
                    walk(&path, out);
                } else {
                    out.insert(path.clone(), (meta.permissions().mode(), fs::read(&path).expect("read")));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

fn day(n: i64) -> String {
    let t0 = chrono::DateTime::parse_from_rfc3339(T0).expect("t0");
    (t0 + chrono::TimeDelta::days(n)).to_rfc3339()
}

fn stage_of(status: &str, kid: &str) -> Option<String> {
    status
        .lines()
        .find(|l| l.starts_with(kid) && l[kid.len()..].starts_with(' '))
        .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_owned())
}

#[test]
fn bootstrap_writes_0600_keys_and_public_outputs() {
    let p = Project::new("");
    let out = p.ok(T0, &["rotate"]);
    assert!(out.contains("testklient-TEST: done: generate testklient-TEST.2026-11-21 as current"), "{out}");
    let key = p.path("keys/testklient-TEST.2026-11-21.json");
    assert_eq!(fs::metadata(&key).expect("key file").permissions().mode() & 0o777, 0o600);
    let jwks = fs::read_to_string(p.path("jwks/testklient-TEST.jwks.json")).expect("jwks");
    let doc: serde_json::Value = serde_json::from_str(&jwks).expect("json");
    let first = &doc["keys"][0];
    assert_eq!(first["kid"], "testklient-TEST.2026-11-21");
    assert_eq!(first["use"], "sig");
    assert_eq!(first["exp"], 1_826_755_200, "kid date 2026-11-21 + 365d = 2027-11-21T00:00:00Z");
    let mp = fs::read_to_string(p.path("jwks/testklient-TEST.maskinporten.json")).expect("maskinporten");
    assert!(mp.starts_with(
        "[{\"alg\":\"RS256\",\"e\":\"AQAB\",\"key_ops\":[],\"kid\":\"testklient-TEST.2026-11-21\""
    ));
    for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
        assert!(!jwks.contains(private) && !mp.contains(private));
    }
    assert_eq!(p.ok(T0, &["jwks", "testklient-TEST", "--format", "maskinporten"]), mp);
    let (code, status, _) = p.run(T0, &["status"]);
    assert_eq!(code, 0, "{status}");
    assert_eq!(stage_of(&status, "testklient-PROD.2026-11-21").as_deref(), Some("current"));
}

#[test]
fn manual_rotation_waits_for_promote_then_retires_after_overlap() {
    let p = Project::new("");
    p.ok(T0, &["rotate"]);
    let out = p.ok(&day(89), &["rotate"]);
    assert!(out.contains("nothing to do"), "{out}");
    let out = p.ok(&day(90), &["rotate"]);
    assert!(out.contains("generate testklient-TEST.2027-02-19 as pending"), "{out}");
    assert!(out.contains("90 days old; rotate_after is 90d"), "{out}");
    let mp = fs::read_to_string(p.path("jwks/testklient-TEST.maskinporten.json")).expect("outputs");
    assert!(mp.contains("testklient-TEST.2027-02-19") && mp.contains("testklient-TEST.2026-11-21"));
    p.ok(&day(100), &["rotate"]);
    let status = p.run(&day(100), &["status"]).1;
    assert_eq!(stage_of(&status, "testklient-TEST.2027-02-19").as_deref(), Some("pending"), "{status}");

    let out = p.ok(&day(100), &["promote", "testklient-TEST"]);
    assert!(out.contains("promote testklient-TEST.2027-02-19 to current"), "{out}");
    let status = p.run(&day(100), &["status", "testklient-TEST"]).1;
    assert_eq!(stage_of(&status, "testklient-TEST.2027-02-19").as_deref(), Some("current"));
    assert_eq!(stage_of(&status, "testklient-TEST.2026-11-21").as_deref(), Some("previous"));

    let out = p.ok(&day(114), &["rotate"]);
    assert!(out.contains("retire testklient-TEST.2026-11-21"), "{out}");
    let jwks = p.ok(&day(114), &["jwks", "testklient-TEST"]);
    assert!(!jwks.contains("testklient-TEST.2026-11-21"), "retired key still published: {jwks}");
}

#[test]
fn after_delay_promotes_after_publish_ahead() {
    let p = Project::new("[defaults]\npromotion = \"after-delay\"\n");
    p.ok(T0, &["rotate"]);
    p.ok(&day(90), &["rotate"]);
    let out = p.ok(&day(96), &["rotate"]);
    assert!(out.contains("nothing to do"), "{out}");
    let out = p.ok(&day(97), &["rotate", "testklient-TEST"]);
    assert!(out.contains("promote testklient-TEST.2027-02-19 to current (published 7 days ago"), "{out}");
    assert!(!out.contains("testklient-PROD"), "only the named key set runs: {out}");
    let key = p.ok(&day(97), &["export-key", "testklient-TEST", "--base64"]);
    let json = base64::engine::general_purpose::STANDARD.decode(key.trim()).expect("standard base64");
    let jwk: serde_json::Value = serde_json::from_slice(&json).expect("jwk");
    assert_eq!(jwk["kid"], "testklient-TEST.2027-02-19");
    assert!(jwk["d"].is_string());
}

#[test]
fn force_twice_on_one_day_counts_up() {
    let p = Project::new("");
    p.ok(T0, &["rotate", "--force", "testklient-TEST"]);
    let out = p.ok(T0, &["rotate", "--force", "testklient-TEST"]);
    assert!(out.contains("generate testklient-TEST.2026-11-21-2 as pending"), "{out}");
    assert!(p.path("keys/testklient-TEST.2026-11-21.json").exists());
    assert!(p.path("keys/testklient-TEST.2026-11-21-2.json").exists());
}

#[test]
fn plan_and_dry_run_change_nothing() {
    let p = Project::new("");
    let empty = p.snapshot();
    let out = p.ok(T0, &["plan"]);
    assert!(out.contains("would: generate testklient-TEST.2026-11-21 as current"), "{out}");
    p.ok(T0, &["rotate", "--dry-run"]);
    assert_eq!(p.snapshot(), empty, "plan or --dry-run wrote on a fresh store");

    p.ok(T0, &["rotate"]);
    let before = p.snapshot();
    for args in [
        &["plan"][..],
        &["rotate", "--dry-run"],
        &["plan", "--format", "json"],
        &["rotate", "--dry-run", "--force"],
    ] {
        p.ok(&day(200), args);
    }
    let json = p.ok(&day(200), &["plan", "--format", "json"]);
    let plans: serde_json::Value = serde_json::from_str(&json).expect("plan json");
    assert_eq!(plans[0]["steps"][0]["action"], "generate");
    assert_eq!(p.snapshot(), before, "plan or --dry-run changed the store");
}

#[test]
fn status_exit_codes() {
    let p = Project::new("");
    let (code, out, _) = p.run(T0, &["status"]);
    assert_eq!(code, 2, "no current key is CRITICAL: {out}");
    assert!(out.contains("has no current key"), "{out}");
    p.ok(T0, &["rotate"]);
    assert_eq!(p.run(&day(10), &["status"]).0, 0);
    let (code, out, _) = p.run(&day(93), &["status"]);
    assert_eq!(code, 1, "rotation overdue is WARNING: {out}");
    assert!(
        out.contains("WARNING: testklient-TEST: current key testklient-TEST.2026-11-21 is 93 days old"),
        "{out}"
    );
    let (code, out, _) = p.run(&day(340), &["status", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("status json");
    assert_eq!(doc["status"], "WARNING");
    assert!(
        doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["kind"] == "expiring" && f["days_left"] == 24)
    );
    let (code, out, _) = p.run(&day(360), &["status"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("CRITICAL: testklient-TEST: current key testklient-TEST.2026-11-21 expires on 2027-11-21, in 4 days"), "{out}");

    let broken = Project::new("");
    fs::write(broken.path("keys"), "a file where the store directory should be").expect("write");
    let (code, out, _) = broken.run(T0, &["status"]);
    assert_eq!(code, 3, "unreadable store is UNKNOWN: {out}");
    assert!(out.contains("UNKNOWN"), "{out}");
    let (code, _, err) = p.run(T0, &["--config", "/nonexistent/jwk-rotator.toml", "status"]);
    assert_eq!(code, 3, "bad config is UNKNOWN: {err}");
}

#[test]
fn retiring_the_only_usable_key_needs_force() {
    let p = Project::new("");
    p.ok(T0, &["rotate"]);
    let before = p.snapshot();
    let (code, _, err) = p.run(T0, &["retire", "testklient-TEST", "testklient-TEST.2026-11-21"]);
    assert_eq!(code, 1);
    assert!(err.contains("only key applications of testklient-TEST can use"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(p.snapshot(), before);
    let out = p.ok(T0, &["retire", "testklient-TEST", "testklient-TEST.2026-11-21", "--force"]);
    assert!(out.contains("retire testklient-TEST.2026-11-21 (retired on request)"), "{out}");
    // Never current in the run that made it: the new key waits for its upload and `promote`.
    assert!(out.contains("generate testklient-TEST.2026-11-21-2 as pending"), "{out}");
    let (code, out, _) = p.run(T0, &["status"]);
    assert_eq!(code, 2, "no current key is CRITICAL: {out}");
    assert!(out.contains("add testklient-TEST.2026-11-21-2 in Samarbeidsportalen"), "{out}");
}

#[test]
fn every_command_help_shows_an_example() {
    for cmd in ["rotate", "plan", "status", "jwks", "export-key", "promote", "retire"] {
        let out =
            Command::cargo_bin("jwk-rotator").expect("bin").args([cmd, "--help"]).output().expect("help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("jwk-rotator "), "{cmd}: {text}");
        assert!(text.contains("Example"), "{cmd} --help has no example: {text}");
    }
    let out = Command::cargo_bin("jwk-rotator").expect("bin").arg("--help").output().expect("help");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
}

#[test]
fn logs_go_to_stderr_and_never_hold_key_material() {
    let p = Project::new("");
    let mut cmd = p.cmd(T0, &["--log-format", "json", "rotate"]);
    let out = cmd.env("JWK_ROTATOR_LOG", "trace").output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    let first: serde_json::Value =
        serde_json::from_str(err.lines().next().expect("a log line")).expect("json log");
    assert!(first["fields"]["message"].as_str().is_some_and(|m| m.contains("JWK_ROTATOR_NOW")), "{first}");
    let key = p.ok(T0, &["export-key", "testklient-TEST"]);
    let jwk: serde_json::Value = serde_json::from_str(&key).expect("private jwk");
    let b64 = p.ok(T0, &["export-key", "testklient-TEST", "--base64"]);
    for secret in ["d", "p", "q", "dp", "dq", "qi"] {
        let value = jwk[secret].as_str().expect("member");
        assert!(!err.contains(&value[..40]), "{secret} in the logs");
    }
    assert!(!err.contains(&b64[..60]));
}

#[test]
fn a_second_run_waits_for_the_lock_then_gives_up_clearly() {
    let p = Project::new("");
    let cfg = fs::read_to_string(p.path("jwk-rotator.toml")).expect("config");
    fs::write(
        p.path("jwk-rotator.toml"),
        cfg.replace("path = \"keys\"", "path = \"keys\"\nlock_timeout = \"1s\""),
    )
    .expect("cfg");
    p.ok(T0, &["rotate"]);
    let lock = fs::OpenOptions::new().write(true).open(p.path("keys/.lock")).expect("lock file");
    lock.lock().expect("hold the lock");
    let before = p.snapshot();
    let (code, _, err) = p.run(&day(200), &["rotate"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another jwk-rotator run holds") && err.contains("waited 1s"), "{err}");
    assert_eq!(p.snapshot(), before);
    lock.unlock().expect("unlock");
    p.ok(&day(200), &["rotate"]);
}
