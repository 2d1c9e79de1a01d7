//! The audit log's chain: what it writes, and each way of changing it after that is caught.

use super::*;
use crate::events::{EventData, EventType, Origin};

fn event(n: usize) -> Event {
    let origin = Origin { source: "jwk-rotator/file".to_owned(), actor: "tester".to_owned() };
    let data = EventData {
        key_set: "a-TEST".to_owned(),
        kid: Some(format!("a-TEST.2026-01-{n:02}")),
        from: Some("none".to_owned()),
        to: Some("pending".to_owned()),
        reason: "due".to_owned(),
        actor: "tester".to_owned(),
        run_id: "run".to_owned(),
    };
    Event::new(EventType::Generated, &origin, "2026-01-01T06:00:00Z".parse().expect("time"), data)
}

/// A log of five lines, written in three batches.
fn five() -> (tempfile::TempDir, AuditLog) {
    let dir = tempfile::tempdir().expect("dir");
    let log = AuditLog::new(dir.path().join("audit.jsonl"));
    log.append(&[event(1)]).expect("1");
    log.append(&[event(2), event(3)]).expect("2, 3");
    log.append(&[event(4), event(5)]).expect("4, 5");
    (dir, log)
}

fn lines(log: &AuditLog) -> Vec<String> {
    std::fs::read_to_string(log.path()).expect("read").lines().map(str::to_owned).collect()
}

fn write_lines(log: &AuditLog, lines: &[String]) {
    std::fs::write(log.path(), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
}

fn broken_at(log: &AuditLog) -> (usize, String) {
    match log.verify() {
        Err(AuditError::Broken { line, problem, .. }) => (line, problem),
        other => panic!("not broken: {other:?}"),
    }
}

#[test]
fn a_written_log_verifies_and_reads_back_in_order() {
    let (_dir, log) = five();
    let entries = log.verify().expect("intact");
    let kids: Vec<_> = entries.iter().map(|e| e.event.data.kid.clone().expect("kid")).collect();
    assert_eq!(kids, (1..=5).map(|n| format!("a-TEST.2026-01-{n:02}")).collect::<Vec<_>>());
    assert_eq!(entries[4].event, event(5));
    let mode = std::fs::metadata(log.path()).expect("meta").permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
}

#[test]
fn an_edited_line_is_named() {
    for n in 0..5 {
        let (_dir, log) = five();
        let mut all = lines(&log);
        all[n] = all[n].replace("\"due\"", "\"by hand\"");
        write_lines(&log, &all);
        let (line, problem) = broken_at(&log);
        // A changed line is found by the next line's hash, the last by the head file.
        let expected = if n == 4 { 5 } else { n + 2 };
        assert_eq!(line, expected, "edited line {}: {problem}", n + 1);
    }
}

#[test]
fn a_deleted_line_is_named() {
    for n in 0..5 {
        let (_dir, log) = five();
        let mut all = lines(&log);
        all.remove(n);
        write_lines(&log, &all);
        let (line, problem) = broken_at(&log);
        let expected = if n == 4 { 5 } else { n + 1 };
        assert_eq!(line, expected, "deleted line {}: {problem}", n + 1);
    }
}

#[test]
fn reordered_lines_are_named() {
    let (_dir, log) = five();
    let mut all = lines(&log);
    all.swap(1, 3);
    write_lines(&log, &all);
    assert_eq!(broken_at(&log).0, 2);
}

#[test]
fn a_log_cut_short_is_named_whether_at_a_line_or_within_one() {
    let (_dir, log) = five();
    let all = lines(&log);
    write_lines(&log, &all[..3]);
    let (line, problem) = broken_at(&log);
    assert_eq!(line, 4, "{problem}");
    assert!(problem.contains("head file says the log had 5 lines"), "{problem}");

    let (_dir, log) = five();
    let text = std::fs::read_to_string(log.path()).expect("read");
    std::fs::write(log.path(), &text[..text.len() - 10]).expect("cut");
    let (line, problem) = broken_at(&log);
    assert_eq!(line, 5, "{problem}");
    assert!(problem.contains("incomplete"), "{problem}");
}

#[test]
fn a_missing_log_or_head_is_never_an_empty_trail() {
    let (_dir, log) = five();
    std::fs::remove_file(log.head_path()).expect("rm head");
    assert!(broken_at(&log).1.contains("head file"));
    let (_dir, log) = five();
    std::fs::remove_file(log.path()).expect("rm log");
    assert_eq!(broken_at(&log).0, 1);
    let dir = tempfile::tempdir().expect("dir");
    let never = AuditLog::new(dir.path().join("audit.jsonl"));
    assert!(matches!(never.verify(), Err(AuditError::Missing { .. })));
}

#[test]
fn a_torn_last_line_is_set_aside_by_the_next_writer_and_the_chain_goes_on() {
    let (_dir, log) = five();
    let half = &event(6).to_json()[..40];
    let mut f = OpenOptions::new().append(true).open(log.path()).expect("open");
    f.write_all(format!("{{\"seq\":6,{half}").as_bytes()).expect("half line");
    drop(f);
    assert!(broken_at(&log).1.contains("incomplete"));
    log.append(&[]).expect("a run without events");
    assert_eq!(log.verify().expect("intact again").len(), 5);
    log.append(&[event(7)]).expect("append after a torn line");
    let entries = log.verify().expect("intact again");
    assert_eq!(entries.len(), 6);
    assert_eq!(entries[5].event, event(7));
    let torn = std::fs::read_to_string(log.torn_path()).expect("torn file");
    assert!(torn.starts_with("{\"seq\":6,") && torn.ends_with('\n'), "{torn}");
}

#[test]
fn writers_at_once_never_interleave() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("audit.jsonl");
    // Separate AuditLog values: only the file lock keeps them apart, as for two processes.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let log = AuditLog::new(&path);
            std::thread::spawn(move || {
                for i in 0..25 {
                    log.append(&[event(w * 25 + i), event(100 + w * 25 + i)]).expect("append");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let entries = AuditLog::new(&path).verify().expect("intact");
    assert_eq!(entries.len(), 200);
}

#[test]
fn a_fifo_or_a_symlink_is_refused_and_named() {
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo").success());
    let e = AuditLog::new(&fifo).append(&[event(1)]).expect_err("a FIFO");
    assert!(e.to_string().contains("not a regular file") && e.to_string().contains("fifo"), "{e}");
    let target = dir.path().join("elsewhere.jsonl");
    let link = dir.path().join("audit.jsonl");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let e = AuditLog::new(&link).append(&[event(1)]).expect_err("a symlink");
    assert!(e.to_string().contains("audit.jsonl"), "{e}");
    assert!(!target.exists(), "written through a symlink");
}
