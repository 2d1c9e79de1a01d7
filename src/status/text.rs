//! `status` as a table and as JSON on stdout.

use std::io::{self, Write};

use super::{KeyRow, StatusReport};
use crate::findings;
use crate::lifecycle::{self, PortalStep};

impl StatusReport {
    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let rows: Vec<(String, Vec<KeyRow>)> = self
            .sets
            .iter()
            .filter_map(|(t, recs)| recs.as_ref().ok().map(|r| (t.key_set.to_string(), self.rows(t, r))))
            .collect();
        let width = rows.iter().flat_map(|(_, r)| r.iter().map(|k| k.kid.len())).max().unwrap_or(0).max(24);
        writeln!(
            out,
            "{:<width$}  {:<8}  {:>5}  {:<10}  {:>9}",
            "KID", "STAGE", "AGE", "EXPIRES", "DAYS LEFT"
        )?;
        for (set, keys) in &rows {
            if keys.is_empty() {
                writeln!(out, "{set:<width$}  (no keys)")?;
            }
            for row in keys {
                let (age, expires) = (format!("{}d", row.age_days), row.expires.date_naive().to_string());
                writeln!(
                    out,
                    "{:<width$}  {:<8}  {age:>5}  {expires:<10}  {:>9}",
                    row.kid, row.stage, row.days_left
                )?;
            }
        }
        self.write_next(out)?;
        self.write_portal(out)?;
        self.write_restarts(out)?;
        writeln!(out)?;
        let worst = findings::worst(&self.findings);
        if self.findings.is_empty() {
            writeln!(out, "OK: {} key sets, nothing needs attention", self.sets.len())?;
        }
        for f in &self.findings {
            writeln!(out, "{}: {}", f.severity, f.message)?;
        }
        if !self.findings.is_empty() {
            writeln!(out, "status: {worst}")?;
        }
        Ok(())
    }

    /// Each key set's next event, or what a person must do: one line each.
    fn write_next(&self, out: &mut impl Write) -> io::Result<()> {
        if self.outlooks.is_empty() {
            return Ok(());
        }
        writeln!(out, "\nNext:")?;
        for (t, _) in self.sets.iter().filter(|(_, r)| r.is_ok()) {
            if let Some(line) = self.next_line(&t.key_set) {
                writeln!(out, "  {}: {line}", t.key_set)?;
            }
        }
        Ok(())
    }

    /// The Samarbeidsportalen steps of every key set, one line each; nothing when none.
    fn write_portal(&self, out: &mut impl Write) -> io::Result<()> {
        let mut lines = Vec::new();
        for (t, records) in &self.sets {
            let Ok(records) = records else { continue };
            let set = &t.key_set;
            if self.through_api.contains(set) {
                continue; // registered through Digdir's API: nothing to do by hand
            }
            for step in lifecycle::portal_steps(records, &t.policy, self.now) {
                lines.push(match step {
                    PortalStep::Add { kid } => format!(
                        "  {set}: add {kid} (`jwk-rotator jwks {set} --kid {kid}`), then `jwk-rotator promote {set}`"
                    ),
                    PortalStep::Remove { kid, after } if after <= self.now => {
                        format!("  {set}: remove {kid} now, if it is still registered")
                    }
                    PortalStep::Remove { kid, after } => {
                        format!("  {set}: remove {kid} after {} (its overlap ends)", after.date_naive())
                    }
                });
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        writeln!(out, "\nSamarbeidsportalen:")?;
        lines.iter().try_for_each(|l| writeln!(out, "{l}"))
    }

    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let sets: Vec<serde_json::Value> = self
            .sets
            .iter()
            .map(|(t, records)| match records {
                Ok(records) => serde_json::json!({
                    "key_set": t.key_set.to_string(),
                    "keys": self.rows(t, records),
                    "next": self.outlooks.get(&t.key_set).and_then(|o| o.next.as_ref()),
                    "person": self.outlooks.get(&t.key_set).and_then(|o| o.person.as_ref()),
                    "portal": if self.through_api.contains(&t.key_set) {
                        Vec::new()
                    } else {
                        lifecycle::portal_steps(records, &t.policy, self.now)
                    },
                }),
                Err(e) => serde_json::json!({ "key_set": t.key_set.to_string(), "error": e.to_string(), "error_kind": e.kind() }),
            })
            .collect();
        let mut doc = serde_json::json!({
            "now": self.now,
            "status": findings::worst(&self.findings),
            "key_sets": sets,
            "findings": self.findings,
        });
        let restarts = self.last_restarts();
        if !restarts.is_empty() {
            doc["restarts"] = serde_json::to_value(restarts).map_err(io::Error::other)?;
        }
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)
    }
}
