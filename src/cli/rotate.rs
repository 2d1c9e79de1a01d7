//! `rotate`: one run, its summary as a table or JSON, and with `--exit-on` an exit code from
//! what `status` would report right after the run, so a scheduler needs one command only.

use std::io::{self, Write};

use clap::ValueEnum;
use serde::Serialize;

use super::commands::{Exit, engine};
use super::{Format, render};
use crate::config::Config;
use crate::engine::SetReport;
use crate::findings::{self, Finding, Severity};
use crate::planner::{Request, Step};
use crate::policy::Target;
use crate::status::StatusReport;

/// The lowest finding severity that makes `rotate` exit non-zero after a successful run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExitOn {
    /// Only the run's own outcome counts; findings are not evaluated
    Never,
    /// WARNING, CRITICAL or UNKNOWN
    Warning,
    /// CRITICAL or UNKNOWN
    Critical,
    /// UNKNOWN: the key sets could not be read after the run
    Unknown,
}

impl ExitOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            ExitOn::Never => None,
            ExitOn::Warning => Some(Severity::Warning),
            ExitOn::Critical => Some(Severity::Critical),
            ExitOn::Unknown => Some(Severity::Unknown),
        }
    }
}

/// Exit code of a finding that fails `rotate --exit-on`: 10 + `status`'s code, so that it
/// never reads as "a key set failed" (1) or "bad config" (2).
const FINDING_EXIT_BASE: u8 = 10;

/// The exit code of `rotate`: 1 when a key set failed (a retry may fix it, so it wins);
/// otherwise 11, 12 or 13 for the worst finding when it is at or above `exit_on`; else 0.
pub fn exit_code(run_ok: bool, worst: Severity, exit_on: ExitOn) -> Exit {
    if !run_ok {
        return Exit::FAILED;
    }
    match exit_on.threshold() {
        Some(threshold) if worst >= threshold => Exit(FINDING_EXIT_BASE + worst.exit_code()),
        _ => Exit::OK,
    }
}

/// What `rotate` was asked to do.
pub(super) struct RotateArgs<'a> {
    pub sets: &'a [String],
    pub at: crate::moment::Moment,
    pub request: Request,
    pub dry_run: bool,
    pub exit_on: ExitOn,
    pub format: Format,
}

/// Runs (or plans), then evaluates the findings on a fresh load when `exit_on` asks for it.
pub(super) async fn rotate(config: &Config, args: RotateArgs<'_>) -> anyhow::Result<Exit> {
    let targets = match config.select(args.sets) {
        Ok(targets) => targets,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::USAGE);
        }
    };
    let engine = engine(config).await?;
    let reports = if args.dry_run {
        engine.plan(&targets, args.at, &args.request).await?
    } else {
        engine.run(&targets, args.at, &args.request).await?
    };
    // The status after the run: for --exit-on, and as the markdown summary's closing section.
    let status = match (args.exit_on, args.format) {
        (ExitOn::Never, Format::Table | Format::Json) => None,
        _ => Some(StatusReport::gather(&engine, &targets, args.at).await),
    };
    let findings = status.as_ref().filter(|_| args.exit_on != ExitOn::Never).map(|s| s.findings.clone());
    let run_ok = reports.iter().all(SetReport::ok);
    let worst = findings.as_deref().map_or(Severity::Ok, findings::worst);
    let exit = exit_code(run_ok, worst, args.exit_on);
    let mut out = io::stdout().lock();
    match args.format {
        Format::Table => render::run_summary(&mut out, &reports, args.dry_run)?,
        Format::Json => write_json(&mut out, &RunJson::new(&reports, findings.as_deref(), &args, exit))?,
        Format::Markdown => {
            render::run_markdown(&mut out, &reports, args.dry_run)?;
            if let Some(status) = &status {
                status.write_markdown(&mut out)?;
            }
        }
    }
    report_to_stderr(&reports, findings.as_deref(), &targets, args.exit_on);
    Ok(exit)
}

/// The failed key sets and the findings, on stderr, as `status` words them.
fn report_to_stderr(reports: &[SetReport], found: Option<&[Finding]>, targets: &[Target], exit_on: ExitOn) {
    super::commands::failures(reports);
    let Some(found) = found else { return };
    for f in found {
        eprintln!("{}: {}", f.severity, f.message);
    }
    let worst = findings::worst(found);
    match exit_on.threshold() {
        Some(threshold) if worst >= threshold => eprintln!(
            "status after the run: {worst} ({} key sets; --exit-on {})",
            targets.len(),
            exit_on.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
        ),
        _ => eprintln!("status after the run: {worst} ({} key sets)", targets.len()),
    }
}

/// `rotate --format json`: one object per key set with the worker's log field names
/// (`key_set`, `action`, `kid`, `reason`, `error`), and the findings when `--exit-on` is set.
#[derive(Serialize)]
pub(super) struct RunJson<'a> {
    dry_run: bool,
    ok: bool,
    key_sets: Vec<SetJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    findings: Option<&'a [Finding]>,
    exit_code: u8,
}

#[derive(Serialize)]
struct SetJson<'a> {
    key_set: String,
    ok: bool,
    steps: Vec<StepJson<'a>>,
    error: Option<String>,
    /// What kind of failure: `store`, `refused`, `keygen`, `publish`, ... (see `RunError`).
    #[serde(skip_serializing_if = "Option::is_none")]
    error_kind: Option<&'static str>,
    /// A new key that another run made at the same moment; it carries out the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    raced: Option<String>,
}

#[derive(Serialize)]
struct StepJson<'a> {
    #[serde(flatten)]
    step: &'a Step,
    /// Carried out; false for a dry run and for the steps after a failure.
    done: bool,
}

impl<'a> RunJson<'a> {
    fn new(
        reports: &'a [SetReport],
        found: Option<&'a [Finding]>,
        args: &RotateArgs<'_>,
        exit: Exit,
    ) -> Self {
        let key_sets = reports
            .iter()
            .map(|r| SetJson {
                key_set: r.key_set.to_string(),
                ok: r.ok(),
                steps: r
                    .plan
                    .iter()
                    .flat_map(|p| p.steps.iter())
                    .enumerate()
                    .map(|(i, step)| StepJson { step, done: !args.dry_run && i < r.done })
                    .collect(),
                error: r.error.as_ref().map(ToString::to_string),
                error_kind: r.error.as_ref().map(crate::engine::RunError::kind),
                raced: r.raced.as_ref().map(ToString::to_string),
            })
            .collect();
        RunJson {
            dry_run: args.dry_run,
            ok: reports.iter().all(SetReport::ok),
            key_sets,
            status: found.map(findings::worst),
            findings: found,
            exit_code: exit.0,
        }
    }
}

fn write_json(out: &mut impl Write, doc: &RunJson<'_>) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_key_set_wins_over_any_finding() {
        for worst in [Severity::Ok, Severity::Warning, Severity::Critical, Severity::Unknown] {
            for exit_on in [ExitOn::Never, ExitOn::Warning, ExitOn::Critical, ExitOn::Unknown] {
                assert_eq!(exit_code(false, worst, exit_on), Exit::FAILED, "{worst:?} {exit_on:?}");
            }
        }
    }

    #[test]
    fn findings_fail_a_good_run_from_the_threshold_up() {
        use Severity::*;
        let table = [
            (ExitOn::Never, [0, 0, 0, 0]),
            (ExitOn::Warning, [0, 11, 12, 13]),
            (ExitOn::Critical, [0, 0, 12, 13]),
            (ExitOn::Unknown, [0, 0, 0, 13]),
        ];
        for (exit_on, codes) in table {
            for (worst, code) in [Ok, Warning, Critical, Unknown].into_iter().zip(codes) {
                assert_eq!(exit_code(true, worst, exit_on), Exit(code), "{worst:?} {exit_on:?}");
            }
        }
    }
}
