//! `rotate --exit-on` and `rotate --format json` through the real binary: every run outcome
//! (all key sets ok, one failed) with every worst finding (OK, WARNING, CRITICAL, UNKNOWN).

use std::fs;

use serde_json::Value;

use crate::cli::{Project, T0};

/// 20 days before the first keys (made at T0) expire: WARNING (warn_before 30d).
const WARN_AT: &str = "2027-11-01T06:00:00Z";
/// 5 days before they expire: CRITICAL (critical_before 7d).
const CRITICAL_AT: &str = "2027-11-16T06:00:00Z";

/// A project whose key sets got their first keys at T0.
fn rotated() -> Project {
    let p = Project::new("");
    p.ok(T0, &["rotate"]);
    p
}

/// Makes publishing testklient-TEST fail: its output path is a directory.
fn block_publishing_of_test(p: &Project) {
    let path = p.path("jwks/testklient-TEST.jwks.json");
    let _ = fs::remove_file(&path);
    fs::create_dir_all(path.join("in-the-way")).expect("block the output path");
}

/// `rotate --exit-on LEVEL --format json` at `now`: (exit code, the JSON document, stderr).
fn rotate_json(p: &Project, now: &str, exit_on: &str) -> (i32, Value, String) {
    let (code, out, err) = p.run(now, &["rotate", "--exit-on", exit_on, "--format", "json"]);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: not JSON:\n{out}\n{err}"));
    assert_eq!(doc["exit_code"], code, "the document names the exit code\n{out}");
    (code, doc, err)
}

fn set<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["key_sets"].as_array().and_then(|s| s.iter().find(|s| s["key_set"] == name)).expect(name)
}

#[test]
fn ok_run_and_no_finding_exits_0() {
    let p = Project::new("");
    let (code, doc, err) = rotate_json(&p, T0, "warning");
    assert_eq!(code, 0, "{err}");
    assert_eq!((doc["ok"].clone(), doc["status"].clone()), (Value::Bool(true), "OK".into()));
    let steps = set(&doc, "testklient-TEST")["steps"].as_array().expect("steps").clone();
    assert_eq!(steps[0]["action"], "generate");
    assert_eq!(steps[0]["kid"], "testklient-TEST.2026-11-21");
    assert_eq!(steps[0]["done"], true);
    assert!(steps[0]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(err.contains("status after the run: OK (2 key sets)"), "{err}");
}

#[test]
fn ok_run_with_a_warning_fails_from_warning_up_only() {
    let p = rotated();
    for (level, want) in [("never", 0), ("unknown", 0), ("critical", 0), ("warning", 11)] {
        let (code, doc, err) = rotate_json(&p, WARN_AT, level);
        assert_eq!(code, want, "--exit-on {level}\n{err}");
        assert_eq!(doc["ok"], true);
        if level != "never" {
            assert_eq!(doc["status"], "WARNING", "--exit-on {level}");
        }
    }
    let (_, _, err) = p.run(WARN_AT, &["rotate", "--exit-on", "warning"]);
    assert!(
        err.contains("WARNING: testklient-TEST: current key testklient-TEST.2026-11-21 expires"),
        "{err}"
    );
    assert!(err.contains("status after the run: WARNING (2 key sets; --exit-on warning)"), "{err}");
}

#[test]
fn ok_run_with_a_critical_finding_fails_from_critical_down() {
    let p = rotated();
    for (level, want) in [("unknown", 0), ("critical", 12), ("warning", 12), ("never", 0)] {
        let (code, doc, err) = rotate_json(&p, CRITICAL_AT, level);
        assert_eq!(code, want, "--exit-on {level}\n{err}");
        assert_eq!(doc["ok"], true);
    }
    let (code, out, _) = p.run(CRITICAL_AT, &["rotate", "--exit-on", "critical"]);
    assert_eq!(code, 12);
    assert!(out.contains("testklient-TEST: nothing to do"), "the table summary stays the default\n{out}");
}

#[test]
fn a_failed_key_set_exits_1_whatever_the_findings() {
    // OK: a rotation's new pending key is stored, only its publishing failed; the current key
    // is published and young enough. (A first key that can not be published is CRITICAL:
    // `current-not-published`.)
    let p = rotated();
    block_publishing_of_test(&p);
    let (code, doc, err) = rotate_json(&p, "2027-02-19T06:00:00Z", "warning");
    assert_eq!(code, 1, "{err}");
    assert_eq!((doc["ok"].clone(), doc["status"].clone()), (Value::Bool(false), "OK".into()));
    let test = set(&doc, "testklient-TEST");
    assert_eq!(test["ok"], false);
    assert!(test["error"].as_str().is_some_and(|e| e.contains("testklient-TEST.jwks.json")), "{test}");
    assert_eq!(set(&doc, "testklient-PROD")["ok"], true);
    assert!(err.contains("error: 1 of 2 key sets failed: testklient-TEST"), "{err}");

    // WARNING and CRITICAL
    for (now, severity) in [(WARN_AT, "WARNING"), (CRITICAL_AT, "CRITICAL")] {
        let p = rotated();
        block_publishing_of_test(&p);
        let (code, doc, err) = rotate_json(&p, now, "warning");
        assert_eq!(code, 1, "{severity}: {err}");
        assert_eq!((doc["ok"].clone(), doc["status"].clone()), (Value::Bool(false), severity.into()));
        let steps = set(&doc, "testklient-TEST")["steps"].as_array().expect("steps").clone();
        assert_eq!((steps[0]["action"].clone(), steps[0]["done"].clone()), ("generate".into(), true.into()));
    }

    // UNKNOWN: a damaged key file makes the key set unreadable, in the run and after it.
    let p = rotated();
    fs::write(p.path("keys/testklient-TEST.2026-11-21.json"), "{ not json").expect("damage");
    let (code, doc, err) = rotate_json(&p, T0, "unknown");
    assert_eq!(code, 1, "{err}");
    assert_eq!((doc["ok"].clone(), doc["status"].clone()), (Value::Bool(false), "UNKNOWN".into()));
    assert!(err.contains("UNKNOWN: testklient-TEST: the store could not be read"), "{err}");
}

#[test]
fn never_is_the_default_and_evaluates_nothing() {
    let p = rotated();
    let (code, out, err) = p.run(CRITICAL_AT, &["rotate", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert!(doc.get("status").is_none() && doc.get("findings").is_none(), "{out}");
    assert!(!err.contains("status after the run"), "{err}");
}

#[test]
fn dry_run_json_marks_no_step_done() {
    let p = Project::new("");
    let (code, out, _) = p.run(T0, &["rotate", "--dry-run", "--format", "json"]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["dry_run"], true);
    let steps = set(&doc, "testklient-TEST")["steps"].as_array().expect("steps").clone();
    assert!(!steps.is_empty() && steps.iter().all(|s| s["done"] == false), "{out}");
    assert!(!p.path("keys/testklient-TEST.2026-11-21.json").exists());
}

#[test]
fn help_documents_the_exit_codes() {
    let p = Project::new("");
    let out = p.ok(T0, &["rotate", "--help"]);
    for text in ["--exit-on", "11 WARNING, 12 CRITICAL, 13 UNKNOWN", "A failed key set exits 1"] {
        assert!(out.contains(text), "{text} missing from rotate --help:\n{out}");
    }
}

#[test]
fn text_is_another_name_for_the_table_format() {
    let p = rotated();
    let table = p.ok(T0, &["rotate", "--format", "table"]);
    assert_eq!(p.ok(T0, &["rotate", "--format", "text"]), table);
    assert!(table.contains("testklient-TEST: nothing to do"), "{table}");
}
