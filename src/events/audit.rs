//! The audit trail (`[events] audit_log`): an append-only JSON-lines file, one event a line,
//! each line holding the SHA-256 of the line before it, and a head file (`<log>.head`) holding
//! the number and hash of the last line, so that lines cut from the end are found too.
//!
//! Writers take an exclusive lock on the log, so two runs never interleave lines; a batch is
//! one `write` of whole lines, synced before the head moves. A line that a killed writer left
//! without its newline is moved to `<log>.torn` by the next writer, which says so in the log.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use super::Event;

/// The `prev` of the first line.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why the audit log could not be written, read or trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error(
        "audit log {}: {action} failed: {cause}; check that its directory exists and this user may write it ([events] audit_log)",
        path.display()
    )]
    Io { path: PathBuf, action: &'static str, cause: String },
    #[error(
        "audit log {} does not exist: no run has written an event since [events] audit_log was set, or the file was moved; check the setting and the file",
        path.display()
    )]
    Missing { path: PathBuf },
    /// The first line that is not as it was written; `line` counts from 1.
    #[error(
        "audit log {}: line {line} {problem}; the trail was changed after it was written: compare it with a copy (the structured log lines, see docs/events.md)",
        path.display()
    )]
    Broken { path: PathBuf, line: usize, problem: String },
}

/// One line of the log as it is stored.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    seq: usize,
    prev: String,
    event: Value,
}

/// The head file: how many lines the log has, and the hash of the last.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    lines: usize,
    sha256: String,
}

/// One entry read back: its line number and event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub event: Event,
}

/// The audit log at a path.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// Writers in this process take turns before they take the file lock.
    turn: std::sync::Mutex<()>,
}

/// Lowercase hex of the SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl AuditLog {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog { path: path.into(), turn: std::sync::Mutex::new(()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_suffix(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    }

    /// Where the number and hash of the last line are kept.
    pub fn head_path(&self) -> PathBuf {
        self.with_suffix(".head")
    }

    /// Where an interrupted write's half line is moved.
    pub fn torn_path(&self) -> PathBuf {
        self.with_suffix(".torn")
    }

    fn io(&self, action: &'static str) -> impl Fn(std::io::Error) -> AuditError + '_ {
        move |e| AuditError::Io { path: self.path.clone(), action, cause: e.to_string() }
    }

    /// Appends `events`, one line each, after the last whole line; under the file lock. With no
    /// events it only sets a torn last line aside, so that every run leaves a whole trail.
    pub fn append(&self, events: &[Event]) -> Result<(), AuditError> {
        let _turn = self.turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .map_err(self.io("opening"))?;
        if !file.metadata().map_err(self.io("opening"))?.is_file() {
            let cause = "it is not a regular file (a directory, FIFO or device)".to_owned();
            return Err(AuditError::Io { path: self.path.clone(), action: "opening", cause });
        }
        file.lock().map_err(self.io("locking"))?;
        self.set_torn_aside(&mut file)?;
        if events.is_empty() {
            return Ok(());
        }
        let (mut seq, mut prev) = match last_line(&mut file).map_err(self.io("reading"))? {
            Some(last) => (self.parsed(&last, 0)?.seq, sha256_hex(&last)),
            None => (0, GENESIS.to_owned()),
        };
        let mut out = Vec::new();
        for event in events {
            seq += 1;
            let line = Line { seq, prev, event: event.to_value() };
            let text = serde_json::to_string(&line).unwrap_or_default();
            prev = sha256_hex(text.as_bytes());
            info!(target: "jwk_rotator::audit", seq, sha256 = %prev, id = %event.id, "audit line written");
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
        }
        file.write_all(&out).map_err(self.io("writing"))?;
        file.sync_data().map_err(self.io("syncing"))?;
        self.write_head(&Head { lines: seq, sha256: prev })
    }

    /// A last line without its newline (a writer killed mid-write) is moved to the torn file
    /// and cut off, so that the chain goes on from the last whole line.
    fn set_torn_aside(&self, file: &mut File) -> Result<(), AuditError> {
        let len = file.metadata().map_err(self.io("reading"))?.len();
        if len == 0 || last_byte(file).map_err(self.io("reading"))? == Some(b'\n') {
            return Ok(());
        }
        let whole = last_newline_end(file, len).map_err(self.io("reading"))?;
        let mut torn = vec![0; usize::try_from(len - whole).unwrap_or(0)];
        file.seek(SeekFrom::Start(whole)).map_err(self.io("reading"))?;
        file.read_exact(&mut torn).map_err(self.io("reading"))?;
        torn.push(b'\n');
        let aside = self.torn_path();
        let mut out = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&aside)
            .map_err(self.io("setting a torn line aside"))?;
        out.write_all(&torn).and_then(|()| out.sync_data()).map_err(self.io("setting a torn line aside"))?;
        file.set_len(whole).map_err(self.io("cutting a torn line"))?;
        warn!(
            log = %self.path.display(), moved_to = %aside.display(), bytes = torn.len() - 1,
            "the audit log's last line was incomplete (a write was interrupted); it was moved aside and the chain goes on from the last whole line"
        );
        Ok(())
    }

    fn write_head(&self, head: &Head) -> Result<(), AuditError> {
        let path = self.head_path();
        let temp = self.with_suffix(".head.tmp");
        let text = serde_json::to_string(head).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
            f.write_all(text.as_bytes())?;
            f.sync_data()?;
            std::fs::rename(&temp, &path)
        };
        write().map_err(self.io("writing the head file"))
    }

    fn broken(&self, line: usize, problem: impl Into<String>) -> AuditError {
        AuditError::Broken { path: self.path.clone(), line, problem: problem.into() }
    }

    fn parsed(&self, bytes: &[u8], line: usize) -> Result<Line, AuditError> {
        serde_json::from_slice(bytes).map_err(|e| self.broken(line, format!("is not an audit line ({e})")))
    }

    /// Every entry, after checking the whole chain and the head: the first line that is not as
    /// it was written is an error naming it.
    pub fn verify(&self) -> Result<Vec<Entry>, AuditError> {
        let (entries, checked) = self.read()?;
        checked.map(|()| entries)
    }

    /// The entries up to the first line that is not as it was written, and whether the whole
    /// log checked out. Fails only when the log can not be read at all.
    pub fn read(&self) -> Result<(Vec<Entry>, Result<(), AuditError>), AuditError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(head) = self.head()? else {
                    return Err(AuditError::Missing { path: self.path.clone() });
                };
                let gone = format!(
                    "is missing: the file is gone, and its head file says it had {} lines",
                    head.lines
                );
                return Ok((Vec::new(), Err(self.broken(1, gone))));
            }
            Err(e) => return Err(self.io("reading")(e)),
        };
        let mut entries = Vec::new();
        let checked = self.chain(&bytes, &mut entries).and_then(|()| self.check_head(&bytes, entries.len()));
        Ok((entries, checked))
    }

    /// Checks each line against the one before it, keeping the entries that check out.
    fn chain(&self, bytes: &[u8], entries: &mut Vec<Entry>) -> Result<(), AuditError> {
        let mut prev = GENESIS.to_owned();
        for (i, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let n = i + 1;
            let Some(text) = raw.strip_suffix(b"\n") else {
                return Err(self.broken(n, "is incomplete (no newline at its end): a write was interrupted, or the file was cut; the next run moves it to the .torn file"));
            };
            let line = self.parsed(text, n)?;
            if line.seq != n {
                let moved =
                    format!("has number {}: lines before it were deleted, added or reordered", line.seq);
                return Err(self.broken(n, moved));
            }
            if line.prev != prev {
                let before = n - 1;
                return Err(self.broken(n, format!("does not follow line {before}: line {before} is not the line that was there when line {n} was written (changed, deleted or moved)")));
            }
            let event = Event::from_value(&line.event)
                .map_err(|e| self.broken(n, format!("holds no event ({e})")))?;
            prev = sha256_hex(text);
            entries.push(Entry { line: n, event });
        }
        Ok(())
    }

    fn head(&self) -> Result<Option<Head>, AuditError> {
        match std::fs::read(self.head_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| AuditError::Io {
                path: self.head_path(),
                action: "reading the head file",
                cause: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("reading the head file")(e)),
        }
    }

    /// The head file must name a line the log has, with that line's hash: lines cut from the
    /// end, or a changed last line, are found here. Lines after the head's are those of a
    /// writer killed before it moved the head.
    fn check_head(&self, bytes: &[u8], count: usize) -> Result<(), AuditError> {
        let Some(head) = self.head()? else {
            if count == 0 {
                return Ok(());
            }
            return Err(self.broken(count, format!("may not be the last: the head file {} is missing, so lines cut from the end can not be found", self.head_path().display())));
        };
        if head.lines > count {
            return Err(self.broken(count + 1, format!("is missing: the head file says the log had {} lines and it has {count}; lines were cut from its end", head.lines)));
        }
        if head.lines == 0 {
            return Ok(());
        }
        let last = bytes.split(|b| *b == b'\n').nth(head.lines - 1).unwrap_or_default();
        if sha256_hex(last) != head.sha256 {
            return Err(self.broken(head.lines, "is not the line the head file recorded: it was changed"));
        }
        Ok(())
    }
}

/// The file's last byte, if any.
fn last_byte(file: &mut File) -> std::io::Result<Option<u8>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut byte)?;
    Ok(Some(byte[0]))
}

/// The offset just after the last newline before `end` (0 when there is none).
fn last_newline_end(file: &mut File, end: u64) -> std::io::Result<u64> {
    let mut pos = end;
    let mut chunk = vec![0u8; 8192];
    while pos > 0 {
        let start = pos.saturating_sub(chunk.len() as u64);
        let n = usize::try_from(pos - start).unwrap_or(0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}

/// The last whole line (without its newline) of a file that ends in one, if any.
fn last_line(file: &mut File) -> std::io::Result<Option<Vec<u8>>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let start = last_newline_end(file, len - 1)?;
    let mut line = vec![0u8; usize::try_from(len - 1 - start).unwrap_or(0)];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut line)?;
    Ok(Some(line))
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
