//! The worker's settings: `[schedule]`, `[server]` and `[alerts]`, checked when the config loads.

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

use super::SettingError;
pub use crate::cron::CronSpec;
use crate::cron::Ticks;
use crate::policy::Span;
use crate::severity::Severity;

fn de_zone<'de, D: serde::Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "timezone {s:?} is not an IANA time zone name; write it like \"Europe/Oslo\" or \"UTC\""
        ))
    })
}

/// `[schedule]`: when the worker runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(deserialize_with = "crate::de::from_str")]
    pub cron: CronSpec,
    /// The zone the cron expression is read in; UTC unless set.
    #[serde(default = "utc", deserialize_with = "de_zone")]
    pub timezone: chrono_tz::Tz,
    /// Run once as soon as the worker starts, then follow the schedule.
    #[serde(default)]
    pub run_at_start: bool,
    /// Each run starts after a random delay of up to this much.
    #[serde(default = "zero")]
    pub jitter: Span,
    /// Retries of a failed run before the next tick.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry's delay; each later one waits twice as long.
    #[serde(default = "default_backoff")]
    pub retry_backoff: Span,
    /// How long shutdown waits for the key set in progress.
    #[serde(default = "default_shutdown")]
    pub shutdown_timeout: Span,
}

impl ScheduleConfig {
    /// Refuses a `jitter` that is not shorter than the shortest time between two ticks (over a
    /// year of ticks, daylight saving included): a run would start after the next tick.
    pub fn check(&self) -> Result<(), SettingError> {
        let ticks = Ticks { cron: &self.cron, tz: self.timezone };
        let from = chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_454); // 2026-01-01
        let Some(gap) = ticks.shortest_gap(from, 400) else { return Ok(()) };
        if self.jitter.delta() >= gap {
            let gap = crate::policy::Span::seconds(gap.num_seconds());
            return Err(SettingError::new(
                "[schedule] jitter",
                format!(
                    "[schedule] jitter = \"{}\" is not shorter than the shortest time between two runs of cron = \"{}\" ({gap}): a run would start after the next one was due, and ticks would be skipped; shorten jitter",
                    self.jitter, self.cron
                ),
            ));
        }
        Ok(())
    }
}

fn utc() -> chrono_tz::Tz {
    chrono_tz::UTC
}
fn zero() -> Span {
    Span::days(0)
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> Span {
    Span::minutes(1)
}
fn default_shutdown() -> Span {
    Span::seconds(30)
}

/// `[server]`: the HTTP endpoint with `/healthz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: default_listen() }
    }
}

/// `[alerts]`: how findings are delivered besides the log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// An unchanged finding is sent again after this long.
    #[serde(default = "default_reminder")]
    pub reminder: Span,
    /// Findings are evaluated this often between runs too, as keys age.
    #[serde(default = "default_check_every")]
    pub check_every: Span,
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
}

fn default_reminder() -> Span {
    Span::hours(24)
}
fn default_check_every() -> Span {
    Span::hours(1)
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { reminder: default_reminder(), check_every: default_check_every(), webhook: Vec::new() }
    }
}

/// The payload a webhook takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Slack incoming webhook: `{"text": ..., "blocks": [...]}`.
    Slack,
    /// Microsoft Teams (Workflows "post to a channel when a webhook request is received"):
    /// a message with an Adaptive Card attachment.
    Teams,
    /// The notifications as JSON, for anything else.
    Json,
}

/// One `[[alerts.webhook]]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for logs and metrics; the URL is a secret and is never logged.
    #[serde(default)]
    pub name: Option<String>,
    /// The URL, or `url_env`: the environment variable that holds it.
    #[serde(default, deserialize_with = "de_url")]
    pub url: Option<url::Url>,
    #[serde(default)]
    pub url_env: Option<String>,
    pub format: WebhookFormat,
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    #[serde(default = "default_webhook_retries")]
    pub retries: u32,
    /// Findings below this severity are not sent here.
    #[serde(default = "default_min_severity", deserialize_with = "de_severity")]
    pub min_severity: Severity,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url_env", &self.url_env)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

fn default_timeout() -> Span {
    Span::seconds(10)
}
fn default_webhook_retries() -> u32 {
    2
}
fn default_min_severity() -> Severity {
    Severity::Warning
}

fn de_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    let s = crate::de::named_text("[[alerts.webhook]] url", d)?;
    webhook_url(&s).map(Some).map_err(|e| serde::de::Error::custom(format!("[[alerts.webhook]] url {e}")))
}

/// Why a webhook URL can not be used. It never holds the URL: webhook URLs carry their secret
/// in the path. Shown after the name of what held the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WebhookUrlError {
    #[error("is not a URL: {0}")]
    NotAUrl(url::ParseError),
    #[error(
        "is a {scheme}:// URL{}: a webhook must be https, since it carries the findings and, in its path, its own secret (http only to localhost, for a local receiver)",
        if scheme == "http" { " to another host" } else { "" }
    )]
    NotHttps { scheme: String },
}

/// A webhook URL: https, or http to this host only (a local receiver).
pub(crate) fn webhook_url(text: &str) -> Result<url::Url, WebhookUrlError> {
    let url: url::Url = text.parse().map_err(WebhookUrlError::NotAUrl)?;
    let local = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if local => Ok(url),
        scheme => Err(WebhookUrlError::NotHttps { scheme: scheme.to_owned() }),
    }
}

fn de_severity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Severity, D::Error> {
    let s = String::deserialize(d)?;
    match s.to_ascii_lowercase().as_str() {
        "warning" => Ok(Severity::Warning),
        "critical" => Ok(Severity::Critical),
        "unknown" => Ok(Severity::Unknown),
        _ => Err(serde::de::Error::custom(format!(
            "min_severity {s:?} is not one of \"warning\", \"critical\", \"unknown\""
        ))),
    }
}

impl WebhookConfig {
    /// The name shown in logs and metrics: `name`, else the format and the URL's host.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let host = self.url.as_ref().and_then(|u| u.host_str().map(str::to_owned));
        let place = host.or_else(|| self.url_env.clone()).unwrap_or_default();
        format!("{:?}:{place}", self.format).to_lowercase()
    }

    /// Checks that exactly one of `url` and `url_env` is set.
    pub fn check(&self) -> Result<(), SettingError> {
        match (&self.url, &self.url_env) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(SettingError::new(
                "url",
                "set exactly one of url and url_env (the environment variable holding the URL)",
            )
            .within(self.table())),
        }
    }

    /// The URL to post to, read from the environment when `url_env` is set.
    pub(crate) fn resolve_url(&self) -> Result<url::Url, SettingError> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        let var = self.url_env.clone().unwrap_or_default();
        let refused = |problem: String| SettingError::new("url_env", problem).within(self.table());
        let value =
            std::env::var(&var).map_err(|_| refused(format!("environment variable {var} is not set")))?;
        webhook_url(&value).map_err(|e| refused(format!("environment variable {var} {e}")))
    }

    /// How messages name this webhook's table.
    pub fn table(&self) -> String {
        format!("[[alerts.webhook]] {}", self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        schedule: ScheduleConfig,
        #[serde(default)]
        alerts: AlertsConfig,
    }

    #[test]
    fn schedule_parses_with_defaults() {
        let doc: Doc =
            toml::from_str("[schedule]\ncron = \"30 2 * * *\"\ntimezone = \"Europe/Oslo\"").unwrap();
        assert_eq!(doc.schedule.cron.to_string(), "30 2 * * *");
        assert_eq!(doc.schedule.timezone, chrono_tz::Europe::Oslo);
        assert_eq!(doc.schedule.retries, 3);
        assert_eq!(doc.schedule.retry_backoff.to_string(), "1m");
        assert_eq!(doc.alerts.reminder.to_string(), "1d");
    }

    #[test]
    fn bad_schedules_name_the_setting() {
        let six = toml::from_str::<Doc>("[schedule]\ncron = \"0 30 2 * * *\"").unwrap_err().to_string();
        assert!(six.contains("5-field"), "{six}");
        let zone = toml::from_str::<Doc>("[schedule]\ncron = \"0 6 * * *\"\ntimezone = \"Oslo\"")
            .unwrap_err()
            .to_string();
        assert!(zone.contains("IANA"), "{zone}");
        let unknown =
            toml::from_str::<Doc>("[schedule]\ncron = \"0 6 * * *\"\ncorn = 1").unwrap_err().to_string();
        assert!(unknown.contains("corn"), "{unknown}");
    }

    #[test]
    fn webhooks_need_one_url_and_hide_it() {
        let text = "[schedule]\ncron = \"0 6 * * *\"\n[[alerts.webhook]]\nurl = \"https://hooks.slack.com/services/T/B/secret\"\nformat = \"slack\"\nmin_severity = \"critical\"";
        let doc: Doc = toml::from_str(text).unwrap();
        let hook = &doc.alerts.webhook[0];
        hook.check().unwrap();
        assert_eq!(hook.min_severity, Severity::Critical);
        assert_eq!(hook.label(), "slack:hooks.slack.com");
        assert!(!format!("{hook:?}").contains("secret"));
        let both = WebhookConfig { url_env: Some("X".to_owned()), ..hook.clone() };
        assert!(both.check().is_err());
    }
}
