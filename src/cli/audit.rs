//! `audit [SET...] [--verify]`: the history of changes to keys from the `[events] audit_log`,
//! and the check of its hash chain.

use std::io::Write;

use anyhow::anyhow;

use super::Format;
use super::commands::{Exit, usage};
use crate::config::Config;
use crate::events::AuditLog;
use crate::events::audit::Entry;
use crate::kid::KeySet;

/// Prints the history (of `sets`, or every key set), or with `verify` checks the whole log.
/// A log that does not check out exits 1 and names its first broken or missing line; the
/// history before that line is still printed.
pub(super) fn audit(config: &Config, sets: &[String], verify: bool, format: Format) -> anyhow::Result<Exit> {
    let Some(path) = config.events.as_ref().and_then(|e| e.audit_log.as_ref()) else {
        return Ok(usage(anyhow!(
            "config file {} has no [events] audit_log, so there is no audit trail to read; set audit_log = \"audit.jsonl\" under [events]",
            config.file.display()
        )));
    };
    let mut wanted = Vec::new();
    for name in sets {
        match name.parse::<KeySet>() {
            Ok(set) => wanted.push(set.to_string()),
            Err(e) => return Ok(usage(anyhow!("{e}"))),
        }
    }
    let log = AuditLog::new(path);
    let (entries, checked) = log.read()?;
    if verify {
        checked?;
        println!(
            "audit log {}: {} lines; every line follows the one before it, and the last is the one the head file recorded",
            path.display(),
            entries.len()
        );
        return Ok(Exit::OK);
    }
    let shown = entries.iter().filter(|e| wanted.is_empty() || wanted.contains(&e.event.data.key_set));
    print(shown, format)?;
    checked?;
    Ok(Exit::OK)
}

fn print<'a>(entries: impl Iterator<Item = &'a Entry>, format: Format) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if format == Format::Table {
        writeln!(
            out,
            "{:<5} {:<20} {:<16} {:<18} {:<34} {:<19} {:<12} REASON",
            "LINE", "TIME", "KEY SET", "EVENT", "KID", "FROM -> TO", "ACTOR"
        )?;
    }
    for entry in entries {
        let event = &entry.event;
        if format == Format::Json {
            writeln!(out, "{}", event.to_json())?;
            continue;
        }
        let d = &event.data;
        let change = match (&d.from, &d.to) {
            (Some(from), Some(to)) => format!("{from} -> {to}"),
            _ => "-".to_owned(),
        };
        writeln!(
            out,
            "{:<5} {:<20} {:<16} {:<18} {:<34} {:<19} {:<12} {}",
            entry.line,
            event.time.format("%Y-%m-%dT%H:%M:%SZ"),
            d.key_set,
            event.kind,
            d.kid.as_deref().unwrap_or("-"),
            change,
            d.actor,
            d.reason
        )?;
    }
    Ok(())
}
