//! What each command does, from loaded config to stdout and an exit code.

use std::io::{IsTerminal, Write};

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};

use super::render;
use super::rotate::RotateArgs;
use super::single_key::jwks_key;
use super::{Cli, Command, Format, JwksFormat};
use crate::config::Config;
use crate::engine::{Engine, SetReport};
use crate::findings::{self, Severity};
use crate::kid::Kid;
use crate::lifecycle::CLOCK_SKEW;
use crate::moment::Moment;
use crate::planner::{Request, Retire};
use crate::policy::Target;
use crate::publish::PublishedSet;

/// The process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

impl Exit {
    pub const OK: Exit = Exit(0);
    pub const FAILED: Exit = Exit(1);
    pub(crate) const USAGE: Exit = Exit(2);
}

/// Runs one command. Errors are printed to stderr here, so the caller only exits.
pub async fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Completions { shell } => return super::generate::completions(shell),
        Command::Man => return super::generate::man_page(),
        _ => {}
    }
    let is_status = matches!(cli.command, Command::Status { .. });
    let bad_input = if is_status { Exit(Severity::Unknown.exit_code()) } else { Exit::USAGE };
    let clocks = match super::fixed_now(std::env::var_os(super::NOW_VAR)).and_then(|fixed| {
        let test_wall = super::test_wall_clock()?;
        Ok(Clocks { fixed, real: test_wall.unwrap_or_else(Utc::now), test_wall })
    }) {
        Ok(clocks) => clocks,
        Err(e) => {
            eprintln!("error: {e}");
            return bad_input;
        }
    };
    let config = match crate::app::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e:#}");
            return bad_input;
        }
    };
    dispatch(cli.command, &config, clocks).await.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        // A `[maskinporten.ENV]` setting that can not be used (a certificate that can not be
        // read, a password variable that is not set) is bad config, like a load error.
        match e.downcast_ref::<crate::app::AppError>() {
            Some(crate::app::AppError::Maskinporten { .. }) => bad_input,
            _ => Exit::FAILED,
        }
    })
}

/// One command over the loaded config.
async fn dispatch(command: Command, config: &Config, clocks: Clocks) -> anyhow::Result<Exit> {
    let what_if = |at: Option<DateTime<Utc>>| clocks.what_if(at);
    match command {
        Command::Rotate { sets, force, dry_run, at, allow_future, allow_past, exit_on, format } => {
            let at = if dry_run { Ok(what_if(at)) } else { clocks.writing(at, allow_future, allow_past) };
            let Ok(at) = at else { return Ok(Exit::USAGE) };
            let request = Request { force, ..Request::default() };
            let args = RotateArgs { sets: &sets, at, request, dry_run, exit_on, format };
            super::rotate::rotate(config, args).await
        }
        Command::Plan { sets, at, format } => rotate_plan(config, &sets, what_if(at), format).await,
        Command::Status { sets, format, at } => Ok(status(config, &sets, what_if(at), format).await),
        Command::Jwks { set, format, kid: None } => jwks(config, &set, format, what_if(None).now).await,
        Command::Jwks { set, format, kid: Some(kid) } => jwks_key(config, &set, &kid, format).await,
        Command::ExportKey { set, kid, base64, format } => {
            let format = if base64 { Some(super::KeyFormat::EncodedJwk) } else { format };
            let format = format.unwrap_or(super::KeyFormat::Jwk);
            super::export::export_key(config, &set, kid.as_deref(), format, what_if(None).now).await
        }
        Command::Promote { set, at, allow_future, allow_past } => {
            let Ok(at) = clocks.writing(at, allow_future, allow_past) else { return Ok(Exit::USAGE) };
            rotate(config, &[set], at, &Request { promote: true, ..Request::default() }, false).await
        }
        Command::Retire { set, kid, force, at, allow_future, allow_past } => {
            let kid: Kid = match kid.parse() {
                Ok(kid) => kid,
                Err(e) => return Ok(usage(anyhow!("{e}"))),
            };
            let Ok(at) = clocks.writing(at, allow_future, allow_past) else { return Ok(Exit::USAGE) };
            let request = Request { retire: Some(Retire { kid, force }), ..Request::default() };
            rotate(config, &[set], at, &request, false).await
        }
        Command::Verify { set, kid } => {
            super::verify::verify(config, &set, kid.as_deref(), what_if(None).now).await
        }
        Command::Audit { sets, verify, format } => super::audit::audit(config, &sets, verify, format),
        Command::Import { source } => {
            let at = match source.writes().map(|allow_past| clocks.writing(None, false, allow_past)) {
                Some(Ok(at)) => at,
                Some(Err(exit)) => return Ok(exit),
                None => what_if(None),
            };
            super::import::import(config, source, at).await
        }
        Command::Worker { allow_past } => {
            // The worker's clock starts at JWK_ROTATOR_NOW when it is set; its runs write.
            if clocks.writing(None, false, allow_past).is_err() {
                return Ok(Exit::USAGE);
            }
            crate::app::worker::run(config, clocks.fixed, clocks.test_wall)
                .await
                .map(|()| Exit::OK)
                .map_err(anyhow::Error::from)
        }
        // Answered before the config is read; here only to keep the match total.
        Command::Completions { shell } => Ok(super::generate::completions(shell)),
        Command::Man => Ok(super::generate::man_page()),
    }
}

/// The clocks a command starts with, read once: `JWK_ROTATOR_NOW` and the host's real clock.
#[derive(Debug, Clone, Copy)]
struct Clocks {
    /// `JWK_ROTATOR_NOW`.
    fixed: Option<DateTime<Utc>>,
    /// The host's real clock when the command started.
    real: DateTime<Utc>,
    /// Test builds: the real clock as a test gave it (`JWK_ROTATOR_TEST_WALL_CLOCK`).
    test_wall: Option<DateTime<Utc>>,
}

impl Clocks {
    /// A command that only reads, or a dry run: at `--at`, else `JWK_ROTATOR_NOW`, else the real
    /// clock, and as if the real clock read the same: `plan --at` shows what a run would do then.
    fn what_if(self, at: Option<DateTime<Utc>>) -> Moment {
        Moment::from(clock(at, self.fixed, self.real))
    }

    /// A command that writes: at `--at`, else `JWK_ROTATOR_NOW`, else the real clock, and with
    /// the real clock recorded beside it on every write. More than a day ahead of the clock,
    /// `--at` would date keys in the future, where they block rotation until then: it takes
    /// `--allow-future`. More than a day behind the real clock, a fixed time would date keys and
    /// their publication in the past: it takes `--allow-past` (and promotion still waits by
    /// the real clock).
    fn writing(
        self,
        at: Option<DateTime<Utc>>,
        allow_future: bool,
        allow_past: bool,
    ) -> Result<Moment, Exit> {
        let base = self.fixed.unwrap_or(self.real);
        if let Some(at) = at.filter(|at| *at > base + CLOCK_SKEW && !allow_future) {
            return Err(usage(anyhow!(
                "--at {} is more than a day ahead of the clock ({}): keys made now would be dated in the future and block rotation until then. Use `jwk-rotator plan --at ...` to see what would happen, or add --allow-future on a copy of the store",
                at.to_rfc3339(),
                base.to_rfc3339()
            )));
        }
        let now = at.or(self.fixed).unwrap_or(self.real);
        if now < self.real - CLOCK_SKEW && !allow_past {
            let source = if at.is_some() { "--at" } else { "JWK_ROTATOR_NOW" };
            return Err(usage(anyhow!(
                "{source} {} is more than a day behind this host's clock ({}): keys made and published now would be dated then. Use `jwk-rotator plan --at ...` to see what a run did then, or add --allow-past to write at that time (a key still becomes current only after publish_ahead by this host's clock)",
                now.to_rfc3339(),
                self.real.to_rfc3339()
            )));
        }
        Ok(Moment::new(clock(at, self.fixed, self.real), self.real))
    }
}

/// "Now" for a command: `--at`, else `JWK_ROTATOR_NOW`, else the real clock; a fixed time is
/// logged with where it came from.
fn clock(at: Option<DateTime<Utc>>, fixed: Option<DateTime<Utc>>, real: DateTime<Utc>) -> DateTime<Utc> {
    match (at, fixed) {
        (Some(at), _) => {
            log_fixed_now("--at is given", at);
            at
        }
        (None, Some(now)) => {
            log_fixed_now("JWK_ROTATOR_NOW is set", now);
            now
        }
        (None, None) => real,
    }
}

fn log_fixed_now(source: &str, now: DateTime<Utc>) {
    tracing::info!(now = %now.to_rfc3339(), "{source}; using it as the current time");
}

pub(super) fn usage(e: anyhow::Error) -> Exit {
    eprintln!("error: {e:#}");
    Exit::USAGE
}

pub use crate::app::engine;
pub(crate) use crate::app::open_store;

fn select(config: &Config, sets: &[String]) -> Result<Vec<Target>, Exit> {
    config.select(sets).map_err(|e| usage(e.into()))
}

async fn rotate(
    config: &Config,
    sets: &[String],
    at: Moment,
    request: &Request,
    dry_run: bool,
) -> anyhow::Result<Exit> {
    let targets = match select(config, sets) {
        Ok(t) => t,
        Err(exit) => return Ok(exit),
    };
    let engine = engine(config).await?;
    let reports = if dry_run {
        engine.plan(&targets, at, request).await?
    } else {
        engine.run(&targets, at, request).await?
    };
    let mut out = std::io::stdout().lock();
    render::run_summary(&mut out, &reports, dry_run)?;
    Ok(failures(&reports))
}

/// Prints every failed key set's error to stderr, the one place run errors are printed, and
/// gives the exit code: 1 if any failed.
pub(super) fn failures(reports: &[SetReport]) -> Exit {
    let failed: Vec<String> = reports.iter().filter(|r| !r.ok()).map(|r| r.key_set.to_string()).collect();
    if failed.is_empty() {
        return Exit::OK;
    }
    for r in reports.iter().filter(|r| !r.ok()) {
        if let Some(e) = &r.error {
            eprintln!("error: {}: {e}", r.key_set);
        }
    }
    eprintln!("error: {} of {} key sets failed: {}", failed.len(), reports.len(), failed.join(", "));
    Exit::FAILED
}

async fn rotate_plan(config: &Config, sets: &[String], at: Moment, format: Format) -> anyhow::Result<Exit> {
    let targets = match select(config, sets) {
        Ok(t) => t,
        Err(exit) => return Ok(exit),
    };
    let reports = engine(config).await?.plan(&targets, at, &Request::default()).await?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => render::run_summary(&mut out, &reports, true)?,
        Format::Json => render::plans_json(&mut out, &reports)?,
        Format::Markdown => render::run_markdown(&mut out, &reports, true)?,
    }
    Ok(failures(&reports))
}

async fn status(config: &Config, sets: &[String], at: Moment, format: Format) -> Exit {
    let targets = match config.select(sets) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit(Severity::Unknown.exit_code());
        }
    };
    let report = match engine(config).await {
        Ok(engine) => crate::status::StatusReport::gather(&engine, &targets, at).await,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Exit(Severity::Unknown.exit_code());
        }
    };
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Table => report.write_table(&mut out),
        Format::Json => report.write_json(&mut out),
        Format::Markdown => report.write_markdown(&mut out),
    };
    if let Err(e) = written {
        eprintln!("error: cannot write to stdout: {e}");
        return Exit(Severity::Unknown.exit_code());
    }
    Exit(findings::worst(&report.findings).exit_code())
}

/// The records of one key set named on the command line (selected with [`select_one`]).
pub(super) async fn records_of(
    config: &Config,
    target: Target,
) -> anyhow::Result<(Target, Engine, Vec<crate::record::KeyRecord>)> {
    let engine = engine(config).await?;
    let loaded = engine.load(std::slice::from_ref(&target)).await?;
    let records = crate::store::records_in(&loaded, &target.key_set)?.to_vec();
    Ok((target, engine, records))
}

/// The key set a command names and its `--kid`, if given; or the usage error (exit 2) for a
/// key set that is not configured or a kid that does not parse.
pub(super) fn select_with_kid(
    config: &Config,
    set: &str,
    kid: Option<&str>,
) -> Result<(Target, Option<Kid>), Exit> {
    let target = select_one(config, set)?;
    let kid = kid.map(str::parse).transpose().map_err(|e| usage(anyhow!("--kid: {e}")))?;
    Ok((target, kid))
}

/// The one key set a command names, or the usage error (exit 2) that it is not configured.
pub(super) fn select_one(config: &Config, set: &str) -> Result<Target, Exit> {
    select(config, &[set.to_owned()]).map(|mut targets| targets.remove(0))
}

async fn jwks(config: &Config, set: &str, format: JwksFormat, now: DateTime<Utc>) -> anyhow::Result<Exit> {
    let target = match select_one(config, set) {
        Ok(target) => target,
        Err(exit) => return Ok(exit),
    };
    let (target, _, records) = records_of(config, target).await?;
    if records.iter().all(|r| !r.stage.is_published()) {
        bail!("key set {set} has no published keys yet: run `jwk-rotator rotate {set}` first");
    }
    let published = PublishedSet::from_records(&target.key_set, &records, &target.policy, now);
    let text = match format {
        JwksFormat::Jwks => published.jwks_json(),
        JwksFormat::Maskinporten => published.maskinporten_json(),
    };
    print_data(&text)?;
    Ok(Exit::OK)
}

/// Data to stdout as the tools it replaces print it: no newline, unless a person is reading.
pub(super) fn print_data(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if std::io::stdout().is_terminal() && !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
