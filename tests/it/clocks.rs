//! Clocks that are wrong for one run, through the real binary: a run's time fixed in the past
//! (`JWK_ROTATOR_NOW`, `--at`) needs `--allow-past`, and neither it nor a host clock that was
//! behind can make a key current before it was published for `publish_ahead` of real time.
//! The real clock is given with `JWK_ROTATOR_TEST_WALL_CLOCK` (test builds only), so that the
//! tests do not depend on today's date.

use std::fs;
use std::time::SystemTime;

use chrono::{DateTime, TimeDelta, Utc};

use crate::cli::Project;
use crate::support::at;

/// The real clock's "today" in these tests.
const W: &str = "2027-03-01T06:00:00Z";

fn w(offset: TimeDelta) -> String {
    (at(W) + offset).to_rfc3339()
}

fn stage_lines(status: &str) -> Vec<String> {
    status.lines().filter(|l| l.starts_with("testklient-TEST.")).map(str::to_owned).collect()
}

/// The history: a run 60 days back, a forced key 30 days back, then the clock is right
/// again seconds later. Before, the third run promoted the forced key "published 30 days ago".
#[test]
fn a_run_time_in_the_past_needs_allow_past_and_never_shortens_publish_ahead() {
    let p = Project::new("[defaults]\npromotion = \"after-delay\"");
    let past60 = w(-TimeDelta::days(60));
    let past30 = w(-TimeDelta::days(30));
    let before = p.snapshot();
    let (code, _, err) = p.run_at(Some(&past60), Some(W), &["rotate", "testklient-TEST"]);
    assert_eq!(code, 2, "a time 60 days back is refused without --allow-past: {err}");
    assert!(err.contains("JWK_ROTATOR_NOW") && err.contains("more than a day behind"), "{err}");
    assert!(err.contains("--allow-past"), "{err}");
    assert_eq!(p.snapshot(), before, "a refused run wrote something");
    let (code, _, err) = p.run_at(None, Some(W), &["rotate", "testklient-TEST", "--at", &past30]);
    assert_eq!(code, 2, "--at 30 days back is refused too: {err}");
    assert!(err.contains("--at") && err.contains("more than a day behind"), "{err}");
    assert_eq!(p.snapshot(), before);

    let (code, _, err) = p.run_at(Some(&past60), Some(W), &["rotate", "testklient-TEST", "--allow-past"]);
    assert_eq!(code, 0, "{err}");
    let later = w(TimeDelta::seconds(10));
    let args = ["rotate", "--force", "testklient-TEST", "--allow-past"];
    let (code, out, err) = p.run_at(Some(&past30), Some(&later), &args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("as pending"), "{out}");
    // The clock is right again, seconds later: 30 days by the runs' time, seconds by the real
    // clock. The key waits.
    let now = w(TimeDelta::seconds(40));
    let (code, out, err) = p.run_at(None, Some(&now), &["rotate", "testklient-TEST"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("promote"), "promoted seconds after it was really published: {out}");
    let (_, status, _) = p.run_at(None, Some(&now), &["status", "testklient-TEST"]);
    let pending: Vec<_> = stage_lines(&status).into_iter().filter(|l| l.contains(" pending ")).collect();
    assert_eq!(pending.len(), 1, "{status}");
    // publish_ahead (7d) of real time later, it is promoted.
    let week = w(TimeDelta::days(7) + TimeDelta::seconds(10));
    let (code, out, err) = p.run_at(None, Some(&week), &["rotate", "testklient-TEST"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("done: promote testklient-TEST."), "{out}");
}

/// `promote` in the run after the one that published, by the runs' time but not by the real
/// clock (the same real instant, `--at` an hour on), is refused.
#[test]
fn promote_needs_an_earlier_run_by_the_real_clock_too() {
    let p = Project::new("");
    p.run_at(Some(W), Some(W), &["rotate", "testklient-TEST"]);
    let (code, _, err) = p.run_at(Some(W), Some(W), &["rotate", "--force", "testklient-TEST"]);
    assert_eq!(code, 0, "{err}");
    let hour = w(TimeDelta::hours(1));
    let before = p.snapshot();
    let (code, _, err) = p.run_at(Some(W), Some(W), &["promote", "testklient-TEST", "--at", &hour]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("by this host's real clock") && err.contains("not before this run"), "{err}");
    assert_eq!(p.snapshot(), before, "a refused promote wrote something");
    let (code, _, err) = p.run_at(Some(&hour), Some(&hour), &["promote", "testklient-TEST"]);
    assert_eq!(code, 0, "{err}");
}

/// A host whose clock went back after a write: `status` says so (CRITICAL), though no time on
/// the records lies after the run's own time.
#[test]
fn a_store_write_after_this_hosts_real_clock_is_a_finding() {
    let p = Project::new("");
    let past60 = w(-TimeDelta::days(60));
    let (code, _, err) = p.run_at(Some(&past60), Some(W), &["rotate", "testklient-TEST", "--allow-past"]);
    assert_eq!(code, 0, "{err}");
    let back = w(-TimeDelta::days(30));
    let (code, out, _) = p.run_at(None, Some(&back), &["status", "testklient-TEST"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("clock went back"), "{out}");
    let (code, out, _) = p.run_at(None, Some(W), &["status", "testklient-TEST"]);
    assert_eq!(code, 0, "the clock is right again: {out}");
}

fn file_time(t: &str) -> SystemTime {
    SystemTime::from(t.parse::<DateTime<Utc>>().expect("time"))
}

/// A key file an older version wrote has no `written`: the file's modification time stands in
/// for it, never "long ago". (Both clocks read the same here, as for a release before this one.)
#[test]
fn a_key_file_without_written_counts_from_its_modification_time() {
    let p = Project::new("[defaults]\npromotion = \"after-delay\"");
    p.ok(&w(-TimeDelta::days(20)), &["rotate", "testklient-TEST"]);
    let out = p.ok(&w(-TimeDelta::days(19)), &["rotate", "--force", "testklient-TEST"]);
    let kid = out.lines().find_map(|l| l.split("generate ").nth(1)?.split(' ').next()).expect("kid");
    let path = p.path(&format!("keys/{kid}.json"));
    let mut file: serde_json::Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    file.as_object_mut().expect("object").remove("written");
    fs::write(&path, serde_json::to_vec_pretty(&file).expect("json")).expect("write");
    // As if an older version had last written it a day ago, though it says it was published
    // 19 days ago (a run whose time was fixed in the past).
    let written = fs::File::options().write(true).open(&path).expect("open");
    written.set_modified(file_time(&w(-TimeDelta::days(1)))).expect("mtime");
    let out = p.ok(W, &["rotate", "testklient-TEST"]);
    assert!(!out.contains("promote"), "a day of real time is not publish_ahead: {out}");
    let out = p.ok(&w(TimeDelta::days(6)), &["rotate", "testklient-TEST"]);
    assert!(out.contains(&format!("done: promote {kid}")), "{out}");
}

/// A host whose clock went back a day and a half: no time on the records lies after the run's
/// own time by more than a day (so nothing is dated in the future), but a write does, by the
/// real clock. `status` says so.
#[test]
fn a_clock_that_went_back_a_day_and_a_half_is_a_finding() {
    let p = Project::new("");
    // Within a day behind the real clock: allowed without --allow-past.
    let (code, _, err) = p.run_at(Some(&w(-TimeDelta::hours(23))), Some(W), &["rotate", "testklient-TEST"]);
    assert_eq!(code, 0, "{err}");
    let back = w(-TimeDelta::hours(36));
    let (code, out, _) = p.run_at(Some(&back), Some(&back), &["status", "testklient-TEST"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("clock went back"), "{out}");
    assert!(!out.contains("was made at"), "not dated in the future: {out}");
}
