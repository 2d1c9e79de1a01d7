//! The command line: arguments, and `run`, which the thin `main` calls.

mod audit;
mod commands;
mod export;
mod generate;
mod import;
pub(crate) mod render;
mod rotate;
mod single_key;
mod verify;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

pub use crate::status::StatusReport;
pub use commands::{Exit, engine, run};
pub use rotate::{ExitOn, exit_code};

const EXIT_CODES: &str = "\
Exit codes:
  0  done (status: OK)
  1  a key set failed or the request was refused (status: WARNING)
  2  bad command line or config (status: CRITICAL)
  3  status only: UNKNOWN, the store or config could not be read
  11, 12, 13  rotate --exit-on: a finding at or above the threshold after a successful run
      (11 WARNING, 12 CRITICAL, 13 UNKNOWN); a failed key set exits 1 instead

Config comes from --config, else JWK_ROTATOR_CONFIG, else ./jwk-rotator.toml.
JWK_ROTATOR_NOW (RFC 3339) fixes \"now\" for every command.";

/// Rotates Maskinporten client keys: RSA JWKs in Azure Key Vault or a local directory, public
/// key sets for upload, promotion only after publishing, retirement by the kid's date.
#[derive(Debug, Parser)]
#[command(name = "jwk-rotator", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Config file [default: ./jwk-rotator.toml]
    #[arg(long, global = true, env = "JWK_ROTATOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// The variable that fixes "now" for every command (tests, what-if runs).
pub(crate) const NOW_VAR: &str = "JWK_ROTATOR_NOW";

/// `JWK_ROTATOR_NOW` as a time, if set; the error names the variable and shows a valid value.
pub(crate) fn fixed_now(value: Option<std::ffi::OsString>) -> Result<Option<DateTime<Utc>>, TimeVarError> {
    time_var(NOW_VAR, value)
}

/// An environment variable that must hold an RFC 3339 time and does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?} is not an RFC 3339 time ({cause}), e.g. 2026-11-29T06:00:00Z; fix or unset it")]
pub(crate) struct TimeVarError {
    pub var: &'static str,
    /// The value as it was set.
    pub value: String,
    /// Why it is not a time.
    pub cause: chrono::ParseError,
}

/// A variable's value as an RFC 3339 time, if set; the error names it and shows a valid value.
fn time_var(
    var: &'static str,
    value: Option<std::ffi::OsString>,
) -> Result<Option<DateTime<Utc>>, TimeVarError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.to_string_lossy().into_owned();
    match DateTime::parse_from_rfc3339(value.trim()) {
        Ok(t) => Ok(Some(t.with_timezone(&Utc))),
        Err(cause) => Err(TimeVarError { var, value, cause }),
    }
}

/// Test builds only: the variable that stands in for the host's real clock, so that a test can
/// run a simulated timeline through the binary (real time passing as `JWK_ROTATOR_NOW` does),
/// or a clock that is behind. A release build never reads it: there, the real clock is the
/// system's.
#[cfg(feature = "test-support")]
pub(crate) const TEST_WALL_VAR: &str = "JWK_ROTATOR_TEST_WALL_CLOCK";

/// The host's real clock as a test gave it, in test builds; `None` means the system clock.
pub(crate) fn test_wall_clock() -> Result<Option<DateTime<Utc>>, TimeVarError> {
    #[cfg(feature = "test-support")]
    return time_var(TEST_WALL_VAR, std::env::var_os(TEST_WALL_VAR));
    #[cfg(not(feature = "test-support"))]
    Ok(None)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What a command prints on stdout: `table` for people (the default), `json` for programs,
/// `markdown` for a CI job's summary (GitHub's `$GITHUB_STEP_SUMMARY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[value(alias = "text")]
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwksFormat {
    /// `{"keys":[...]}` with `exp`
    Jwks,
    /// The bare array for Samarbeidsportalen's key field
    Maskinporten,
}

/// The shape `export-key` prints a private key in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    // The private JWK.
    Jwk,
    // Standard base64 of the JWK, as Altinn's EncodedJwk setting takes it (same as --base64).
    EncodedJwk,
    // Altinn app-lib's MaskinportenSettings JSON: authority, clientId and jwkBase64.
    AltinnApp,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One run now: make, publish, promote, retire and purge keys as the policy says
    #[command(after_help = "Examples:
  jwk-rotator rotate                          every key set in the config
  jwk-rotator rotate testklient-TEST --force  a new pending key now (emergency)
  jwk-rotator rotate --dry-run                show what would happen, write nothing
  jwk-rotator rotate --exit-on warning        the scheduled job: fail on a failed key set
                                              or on what `status` would report
  jwk-rotator rotate --format json            per key set: steps done, error
  jwk-rotator rotate --format markdown        the steps and the status after the run, for a
                                              CI job's summary ($GITHUB_STEP_SUMMARY)

Exit codes: 0 done; 1 a key set failed (the others still ran) or the store is locked or
unreachable; 2 bad command line or config. With --exit-on LEVEL, after a successful run the
key sets are read again and evaluated as `status` does: 11 WARNING, 12 CRITICAL, 13 UNKNOWN
when the worst finding is at or above LEVEL. A failed key set exits 1 even when findings exist,
so that schedulers that retry failed runs retry it.")]
    Rotate {
        /// Key sets (CLIENT-ENV); all when none are named
        #[arg(value_name = "SET")]
        sets: Vec<String>,
        /// Make a new pending key even if none is due; a waiting pending key is retired
        #[arg(long)]
        force: bool,
        /// Plan and print, write nothing
        #[arg(long)]
        dry_run: bool,
        /// Run as if it were this time (RFC 3339); more than a day ahead needs --allow-future
        #[arg(long, value_name = "TIME")]
        at: Option<DateTime<Utc>>,
        /// Allow --at more than a day ahead of the clock (keys dated in the future)
        #[arg(long, requires = "at")]
        allow_future: bool,
        /// Allow --at or JWK_ROTATOR_NOW more than a day behind the clock (keys dated in the
        /// past; promotion still waits publish_ahead by the real clock)
        #[arg(long)]
        allow_past: bool,
        /// After the run, exit non-zero for a finding at or above this severity
        #[arg(long, value_enum, value_name = "LEVEL", default_value_t = ExitOn::Never)]
        exit_on: ExitOn,
        /// table: one line per step; json: per key set the steps (done or not) and the error,
        /// and the findings with --exit-on
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The actions a run would take and why; writes nothing at all
    #[command(after_help = "Examples:
  jwk-rotator plan
  jwk-rotator plan testklient-PROD --at 2027-03-01T06:00:00Z")]
    Plan {
        #[arg(value_name = "SET")]
        sets: Vec<String>,
        #[arg(long, value_name = "TIME")]
        at: Option<DateTime<Utc>>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Every key with stage, age and expiry, and what needs attention
    #[command(
        after_help = "Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (store unreachable, bad config).

Examples:
  jwk-rotator status
  jwk-rotator status testklient-PROD --format json
  jwk-rotator status --format markdown >> \"$GITHUB_STEP_SUMMARY\"  a CI job's summary"
    )]
    Status {
        #[arg(value_name = "SET")]
        sets: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[arg(long, value_name = "TIME")]
        at: Option<DateTime<Utc>>,
    },
    /// The public key set of a key set, to stdout
    #[command(after_help = "Examples:
  jwk-rotator jwks testklient-TEST
  jwk-rotator jwks testklient-TEST --format maskinporten
      the whole set as altinn-jwks 1.x prints it (for tools; the portal takes one key)
  jwk-rotator jwks testklient-TEST --kid testklient-TEST.2026-11-21 --format maskinporten
      one key, to paste into Samarbeidsportalen's \"add key\" field")]
    Jwks {
        #[arg(value_name = "SET")]
        set: String,
        #[arg(long, value_enum, default_value_t = JwksFormat::Jwks)]
        format: JwksFormat,
        /// Only this published key, as a single JWK object instead of a set
        #[arg(long)]
        kid: Option<String>,
    },
    /// A private JWK (the current key by default) to stdout, for app settings
    #[command(after_help = "Examples:
  jwk-rotator export-key testklient-TEST --base64     the EncodedJwk value
  jwk-rotator export-key testklient-TEST --format altinn-app   with its client id
  jwk-rotator export-key testklient-TEST --kid testklient-TEST.2026-11-21")]
    ExportKey {
        #[arg(value_name = "SET")]
        set: String,
        /// Which key [default: the current one]
        #[arg(long)]
        kid: Option<String>,
        /// Standard base64 of the JSON, as Altinn's EncodedJwk setting takes it
        #[arg(long, conflicts_with = "format")]
        base64: bool,
        /// jwk (the default), encoded-jwk (--base64), or altinn-app (Altinn's MaskinportenSettings)
        #[arg(long, value_enum)]
        format: Option<KeyFormat>,
    },
    /// Promote the pending key now, after its public set was uploaded to Maskinporten
    #[command(after_help = "Example:
  jwk-rotator promote testklient-PROD")]
    Promote {
        #[arg(value_name = "SET")]
        set: String,
        #[arg(long, value_name = "TIME", hide = true)]
        at: Option<DateTime<Utc>>,
        #[arg(long, requires = "at", hide = true)]
        allow_future: bool,
        /// Allow --at or JWK_ROTATOR_NOW more than a day behind the clock
        #[arg(long)]
        allow_past: bool,
    },
    /// Retire a key now (compromise); refuses the only usable key without --force
    #[command(after_help = "Examples:
  jwk-rotator retire testklient-PROD testklient-PROD.2026-08-01
  jwk-rotator retire testklient-PROD testklient-PROD.2026-11-21 --force   the only key, compromised")]
    Retire {
        #[arg(value_name = "SET")]
        set: String,
        #[arg(value_name = "KID")]
        kid: String,
        /// Retire even the only key applications can use (a new current key is made at once)
        #[arg(long)]
        force: bool,
        #[arg(long, value_name = "TIME", hide = true)]
        at: Option<DateTime<Utc>>,
        #[arg(long, requires = "at", hide = true)]
        allow_future: bool,
        /// Allow --at or JWK_ROTATOR_NOW more than a day behind the clock
        #[arg(long)]
        allow_past: bool,
    },
    /// Prove a key with a real Maskinporten token grant (the pending key, else the current one)
    #[command(
        after_help = "Signs a client grant with the key (header kid, iss = the client's client_id for the
environment, scope = verify_scope) and posts it to the environment's token endpoint. A key that
Maskinporten does not know yet is tried again for verify_wait (default 5m). The token is never
printed.

Exit codes: 0 a token was granted; 1 refused (Digdir's error and MP code are printed) or the
token endpoint could not be reached; 2 bad command line or config.

Examples:
  jwk-rotator verify testklient-TEST
  jwk-rotator verify testklient-PROD --kid testklient-PROD.2026-11-21"
    )]
    Verify {
        #[arg(value_name = "SET")]
        set: String,
        /// Which key [default: the pending key, else the current one]
        #[arg(long)]
        kid: Option<String>,
    },
    /// Adopt keys that altinn-jwks made (1.x or 2.0, directory or Key Vault) into the store
    Import {
        #[command(subcommand)]
        source: import::ImportSource,
    },
    #[command(about = "Changes to keys from the [events] audit_log; --verify checks the hash chain")]
    #[command(
        after_help = "Exit codes: 0 the history was printed, or --verify found every line as it was written;
1 a line was changed, deleted, reordered or cut off (the first such line is named; the history
before it is still printed), or the log can not be read; 2 bad command line, or no
[events] audit_log in the config.

Examples:
  jwk-rotator audit                         every change, oldest first
  jwk-rotator audit testklient-PROD          one key set's changes
  jwk-rotator audit --format json            one CloudEvents JSON document a line
  jwk-rotator audit --verify                 check the hash chain and the head file"
    )]
    Audit {
        #[arg(value_name = "SET")]
        sets: Vec<String>,
        /// Check that every line is as it was written; print no history
        #[arg(long)]
        verify: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run on the config's schedule, serve /healthz and /metrics, send alerts
    #[command(
        after_help = "Runs until SIGTERM or Ctrl-C, then lets the key set in progress finish its step and
exits 0. Needs [schedule] in the config, for example:

  [schedule]
  cron = \"0 6 * * 1-5\"        # 06:00 on weekdays
  timezone = \"Europe/Oslo\"    # UTC unless set

Example:
  jwk-rotator --log-format json worker"
    )]
    Worker {
        /// Allow JWK_ROTATOR_NOW more than a day behind the clock
        #[arg(long)]
        allow_past: bool,
    },
    /// A shell completion script, to stdout
    #[command(after_help = "Examples:
  jwk-rotator completions bash > /etc/bash_completion.d/jwk-rotator
  jwk-rotator completions zsh > \"${fpath[1]}/_jwk-rotator\"
  jwk-rotator completions fish > ~/.config/fish/completions/jwk-rotator.fish
  jwk-rotator completions powershell >> $PROFILE")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The man page (roff), to stdout; the release archives ship it as jwk-rotator.1
    #[command(hide = true)]
    Man,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_fixed_now_names_the_variable_and_shows_a_valid_value() {
        let err = fixed_now(Some("2026-13-01".into())).unwrap_err();
        assert_eq!((err.var, err.value.as_str()), (NOW_VAR, "2026-13-01"));
        let err = err.to_string();
        assert!(err.starts_with("JWK_ROTATOR_NOW=\"2026-13-01\" is not an RFC 3339 time"), "{err}");
        assert!(err.contains("e.g. 2026-11-29T06:00:00Z") && !err.contains("--now"), "{err}");
        let now = fixed_now(Some("2026-11-29T07:00:00+01:00".into())).unwrap();
        assert_eq!(now, Some("2026-11-29T06:00:00Z".parse().unwrap()));
        assert_eq!(fixed_now(None), Ok(None));
    }
}
