//! What `rotate` and `plan` print on stdout: run summaries and plans.

use std::io::{self, Write};

use serde::Serialize;

use crate::engine::SetReport;

/// One line per step, grouped by key set; a dry run says what it would do.
pub(crate) fn run_summary(out: &mut impl Write, reports: &[SetReport], dry_run: bool) -> io::Result<()> {
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

/// The steps of a run (or a plan) as a GitHub-flavoured markdown table, for a job summary.
pub(crate) fn run_markdown(out: &mut impl Write, reports: &[SetReport], dry_run: bool) -> io::Result<()> {
    use crate::status::markdown_cell as cell;
    let title = if dry_run { "jwk-rotator plan" } else { "jwk-rotator rotate" };
    writeln!(out, "## {title}\n")?;
    writeln!(out, "| Key set | Step | Reason |")?;
    writeln!(out, "| --- | --- | --- |")?;
    for r in reports {
        let set = cell(&r.key_set.to_string());
        let steps = r.plan.iter().flat_map(|p| p.steps.iter()).enumerate();
        for (i, step) in steps {
            let mark = match () {
                () if dry_run => "would",
                () if i < r.done => "done",
                () => "not done",
            };
            writeln!(out, "| {set} | {mark}: {} | {} |", cell(&step.action.to_string()), cell(&step.reason))?;
        }
        if r.plan.as_ref().is_none_or(|p| p.is_empty()) && r.error.is_none() {
            writeln!(out, "| {set} | nothing to do | |")?;
        }
        if let Some(e) = &r.error {
            writeln!(out, "| {set} | **failed** | {} |", cell(&e.to_string()))?;
        }
    }
    writeln!(out)
}

#[derive(Serialize)]
struct PlanJson<'a> {
    key_set: String,
    steps: Vec<&'a crate::planner::Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub(crate) fn plans_json(out: &mut impl Write, reports: &[SetReport]) -> io::Result<()> {
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
