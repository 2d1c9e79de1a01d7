//! Each client's last restart of its applications (`[[client.restart]]`), over its key sets'
//! records: the table's "Restarts:" lines and the JSON's `restarts`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StatusReport;

/// A client's last restart: when, and for which key (`None` before the first).
#[derive(Debug, Serialize)]
pub(super) struct LastRestart {
    client: String,
    at: Option<DateTime<Utc>>,
    kid: Option<String>,
}

impl StatusReport {
    /// The last restart of each client that names applications, over its key sets' records.
    pub(super) fn last_restarts(&self) -> Vec<LastRestart> {
        let mut by_client: BTreeMap<String, Option<(DateTime<Utc>, String)>> = BTreeMap::new();
        for (t, records) in &self.sets {
            if !self.restarts.contains(&t.key_set) {
                continue;
            }
            let last = by_client.entry(t.key_set.client().to_string()).or_default();
            for r in records.iter().flatten() {
                if let Some(at) = r.restarted.filter(|at| last.as_ref().is_none_or(|(l, _)| at > l)) {
                    *last = Some((at, r.kid.to_string()));
                }
            }
        }
        by_client
            .into_iter()
            .map(|(client, last)| {
                let (at, kid) = last.map_or((None, None), |(at, kid)| (Some(at), Some(kid)));
                LastRestart { client, at, kid }
            })
            .collect()
    }

    /// Each client's last restart, one line each; nothing when no client names applications.
    pub(super) fn write_restarts(&self, out: &mut impl Write) -> io::Result<()> {
        let restarts = self.last_restarts();
        if restarts.is_empty() {
            return Ok(());
        }
        writeln!(out, "\nRestarts:")?;
        for r in restarts {
            match (r.at, r.kid) {
                (Some(at), Some(kid)) => {
                    writeln!(out, "  {}: last restart {} for {kid}", r.client, at.to_rfc3339())?
                }
                _ => writeln!(out, "  {}: no restart yet", r.client)?,
            }
        }
        Ok(())
    }
}
