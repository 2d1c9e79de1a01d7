//! What commands print on stdout: run summaries, plans, and the status table or JSON.

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::{Engine, SetReport};
use crate::findings::{self, Finding};
use crate::lifecycle::{self, PortalStep};
use crate::policy::Target;
use crate::record::KeyRecord;
use crate::store::StoreError;

/// One line per step, grouped by key set; a dry run says what it would do.
pub fn run_summary(out: &mut impl Write, reports: &[SetReport], dry_run: bool) -> io::Result<()> {
    for r in reports {
        match (&r.plan, &r.error) {
            (None, Some(e)) => writeln!(out, "{}: failed: {e}", r.key_set)?,
            (Some(plan), error) => {
                if plan.is_empty() {
                    writeln!(out, "{}: nothing to do", r.key_set)?;
                }
                for (i, step) in plan.steps.iter().enumerate() {
                    let mark = if dry_run {
                        "would"
                    } else if i < r.done {
                        "done"
                    } else {
                        "not done"
                    };
                    writeln!(out, "{}: {mark}: {} ({})", r.key_set, step.action, step.reason)?;
                }
                if let Some(kid) = &r.raced {
                    writeln!(
                        out,
                        "{}: another run made {kid} at the same moment and carries out the rest; its key was kept (not a failure)",
                        r.key_set
                    )?;
                }
                if let Some(e) = error {
                    writeln!(out, "{}: failed: {e}", r.key_set)?;
                }
            }
            (None, None) => writeln!(out, "{}: nothing to do", r.key_set)?,
        }
        if let Some(outcome) = &r.restart {
            restart_lines(out, outcome)?;
        }
    }
    Ok(())
}

/// One line per application restarted (or not) for a promotion.
fn restart_lines(out: &mut impl Write, outcome: &crate::restart::RestartOutcome) -> io::Result<()> {
    for result in &outcome.results {
        match &result.error {
            None => writeln!(out, "{}: restarted {} for {}", outcome.key_set, result.target, outcome.kid)?,
            Some(e) => {
                writeln!(out, "{}: restart not done (the next run tries again): {e}", outcome.key_set)?
            }
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct PlanJson<'a> {
    key_set: String,
    steps: Vec<&'a crate::planner::Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn plans_json(out: &mut impl Write, reports: &[SetReport]) -> io::Result<()> {
    let plans: Vec<PlanJson<'_>> = reports
        .iter()
        .map(|r| PlanJson {
            key_set: r.key_set.to_string(),
            steps: r.plan.iter().flat_map(|p| p.steps.iter()).collect(),
            error: r.error.as_ref().map(ToString::to_string),
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &plans)?;
    writeln!(out)
}

/// Keys and findings of every key set asked for, at one moment.
pub struct StatusReport {
    pub now: DateTime<Utc>,
    pub sets: Vec<(Target, Result<Vec<KeyRecord>, StoreError>)>,
    pub findings: Vec<Finding>,
    /// Key sets registered through Digdir's API, which need no steps in Samarbeidsportalen.
    pub through_api: std::collections::BTreeSet<crate::kid::KeySet>,
    /// Key sets whose client names applications to restart (`[[client.restart]]`).
    pub restarts: std::collections::BTreeSet<crate::kid::KeySet>,
}

/// A client's last restart: when, and for which key (`None` before the first).
#[derive(Serialize)]
struct LastRestart {
    client: String,
    at: Option<DateTime<Utc>>,
    kid: Option<String>,
}

#[derive(Serialize)]
struct KeyRow {
    kid: String,
    stage: &'static str,
    created: DateTime<Utc>,
    age_days: i64,
    expires: DateTime<Utc>,
    days_left: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<DateTime<Utc>>,
}

impl StatusReport {
    /// Loads the key sets in one store call and evaluates each, as the worker does.
    pub async fn gather(engine: &Engine, targets: &[Target], at: crate::moment::Moment) -> StatusReport {
        let now = at.now;
        let crate::engine::Evaluation { loaded, findings, observed } = engine.evaluate(targets, at).await;
        let sets = targets
            .iter()
            .map(|t| (t.clone(), findings::records_of(&loaded, &t.key_set).map(<[KeyRecord]>::to_vec)))
            .collect();
        let through_api = observed.registered.into_keys().collect();
        StatusReport { now, sets, findings, through_api, restarts: observed.restarts }
    }

    /// The last restart of each client that names applications, over its key sets' records.
    fn last_restarts(&self) -> Vec<LastRestart> {
        let mut by_client: std::collections::BTreeMap<String, Option<(DateTime<Utc>, String)>> =
            Default::default();
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
    fn write_restarts(&self, out: &mut impl Write) -> io::Result<()> {
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

    fn rows(&self, target: &Target, records: &[KeyRecord]) -> Vec<KeyRow> {
        let mut recs: Vec<&KeyRecord> = records.iter().collect();
        recs.sort_by(|a, b| b.kid.cmp(&a.kid));
        recs.into_iter()
            .map(|r| {
                let expires = r.expires(&target.policy);
                KeyRow {
                    kid: r.kid.to_string(),
                    stage: r.stage.as_str(),
                    created: r.created,
                    age_days: (self.now - r.created).num_days(),
                    expires,
                    days_left: (expires - self.now).num_days(),
                    published: r.published,
                }
            })
            .collect()
    }

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
