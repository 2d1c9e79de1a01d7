//! `[maskinporten.ENV]` and the Maskinporten settings of a `[[client]]`: where Digdir's
//! self-service API and token endpoint are, the organisation's admin client, and per client its
//! `client_id` in each environment, the scope used to prove a key, and where its public set goes.
//! Everything is checked at load, with the setting named; a password is only ever named by the
//! environment variable that holds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SettingError;
use crate::kid::Environment;
use crate::policy::Span;

mod admin;
mod client;

pub use admin::{AdminCertificate, AdminClient};
pub use client::{ClientMaskinporten, PublishTarget};
pub(crate) use client::{ClientSettings, resolve_client};

/// Digdir's addresses for one environment ("Maskinporten facts", reference/maskinporten.md;
/// docs.digdir.no `oidc_api_admin` and `maskinporten_protocol_token`).
struct Defaults {
    api_url: &'static str,
    issuer: &'static str,
    token_url: &'static str,
}

fn digdir_defaults(env: &Environment) -> Option<Defaults> {
    match env.as_str() {
        "TEST" => Some(Defaults {
            api_url: "https://api.test.samarbeid.digdir.no",
            issuer: "https://test.maskinporten.no/",
            token_url: "https://test.maskinporten.no/token",
        }),
        "PROD" => Some(Defaults {
            api_url: "https://api.samarbeid.digdir.no",
            issuer: "https://maskinporten.no/",
            token_url: "https://maskinporten.no/token",
        }),
        _ => None,
    }
}

/// The Maskinporten issuer of `env`: its `[maskinporten.ENV]` table's, or Digdir's for TEST and
/// PROD; `None` for another environment without a table.
pub fn issuer_of(env: &Environment, tables: &BTreeMap<Environment, MaskinportenEnv>) -> Option<String> {
    match tables.get(env) {
        Some(table) => Some(table.issuer.clone()),
        None => digdir_defaults(env).map(|d| d.issuer.to_owned()),
    }
}

/// How long `verify` (and a verified promotion) keeps trying a key that Maskinporten does not
/// know yet: Digdir documents 0-2 minutes of propagation, and some users saw several.
pub(crate) fn default_verify_wait() -> Span {
    Span::minutes(5)
}

/// `[maskinporten.ENV]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironment {
    api_url: Option<String>,
    issuer: Option<String>,
    token_url: Option<String>,
    ca_cert: Option<PathBuf>,
    admin_client_id: Option<String>,
    admin_scopes: Option<Vec<String>>,
    admin_certificate: Option<PathBuf>,
    admin_certificate_password_env: Option<String>,
    admin_certificate_pem: Option<PathBuf>,
    admin_key_pem: Option<PathBuf>,
    admin_certificate_secret: Option<String>,
    admin_auth: Option<String>,
    admin_kid: Option<String>,
    verify_wait: Option<String>,
    #[serde(default)]
    retry: RetrySettings,
}

/// `[maskinporten.ENV.retry]`: how network errors, 429 and 5xx from Digdir are tried again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Tries after the first (0 to 20).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// The first wait; it doubles for each try after that.
    #[serde(default = "default_initial_delay", deserialize_with = "de_initial_delay")]
    pub initial_delay: Span,
    /// The longest wait, a server's `Retry-After` included.
    #[serde(default = "default_max_delay", deserialize_with = "de_max_delay")]
    pub max_delay: Span,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: default_max_retries(),
            initial_delay: default_initial_delay(),
            max_delay: default_max_delay(),
        }
    }
}

fn default_max_retries() -> u32 {
    5
}

fn default_initial_delay() -> Span {
    Span::seconds(1)
}

fn default_max_delay() -> Span {
    Span::seconds(30)
}

fn de_initial_delay<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    crate::policy::named_span("[maskinporten.ENV.retry] initial_delay", d)
}

fn de_max_delay<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    crate::policy::named_span("[maskinporten.ENV.retry] max_delay", d)
}

/// `[maskinporten.ENV]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskinportenEnv {
    pub env: Environment,
    pub api_url: url::Url,
    /// The `aud` of every grant, with its trailing slash.
    pub issuer: String,
    pub token_url: url::Url,
    pub ca_cert: Option<PathBuf>,
    /// Needed to publish through the API; verification needs only the token endpoint.
    pub admin: Option<AdminClient>,
    pub verify_wait: Span,
    pub retry: RetrySettings,
}

/// A setting that must be an https URL.
fn https_url(setting: &str, text: &str) -> Result<url::Url, SettingError> {
    let url = url::Url::parse(text)
        .map_err(|e| SettingError::new(setting, format!("{setting} = {text:?} is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(SettingError::new(
            setting,
            format!(
                "{setting} = {text:?} must use https: Digdir serves nothing else (for a test double, give its https URL and ca_cert)"
            ),
        ));
    }
    Ok(url)
}

/// Digdir's three addresses for one environment, checked.
struct Addresses {
    api_url: url::Url,
    issuer: String,
    token_url: url::Url,
}

impl RawEnvironment {
    /// Checks `[maskinporten.ENV]` and anchors its files at the config file's directory.
    pub(crate) fn resolve(self, env: &Environment, base: &Path) -> Result<MaskinportenEnv, SettingError> {
        let table = format!("[maskinporten.{env}]");
        let Addresses { api_url, issuer, token_url } = self.addresses(env).map_err(|e| e.within(&table))?;
        let verify_wait = self.verify_wait().map_err(|e| e.within(&table))?;
        self.check_retry(env).map_err(|e| e.within(&table))?;
        let admin = admin::admin_client(&self, base).map_err(|e| e.within(&table))?;
        Ok(MaskinportenEnv {
            env: env.clone(),
            api_url,
            issuer,
            token_url,
            ca_cert: self.ca_cert.map(|p| base.join(p)),
            admin,
            verify_wait,
            retry: self.retry,
        })
    }

    /// `api_url`, `issuer` and `token_url`, as given or Digdir's for TEST and PROD.
    fn addresses(&self, env: &Environment) -> Result<Addresses, SettingError> {
        let defaults = digdir_defaults(env);
        let pick = |given: &Option<String>, setting: &str, default: Option<&'static str>| {
            given.clone().or_else(|| default.map(str::to_owned)).ok_or_else(|| {
                SettingError::new(
                    setting,
                    format!(
                        "{setting} is missing; Digdir's addresses are built in only for TEST and PROD, so {env} must give api_url, issuer and token_url"
                    ),
                )
            })
        };
        let api_url = pick(&self.api_url, "api_url", defaults.as_ref().map(|d| d.api_url))?;
        let issuer = pick(&self.issuer, "issuer", defaults.as_ref().map(|d| d.issuer))?;
        let token_url = pick(&self.token_url, "token_url", defaults.as_ref().map(|d| d.token_url))?;
        let api_url = https_url("api_url", &api_url)?;
        https_url("issuer", &issuer)?;
        if !issuer.ends_with('/') {
            return Err(SettingError::new(
                "issuer",
                format!(
                    "issuer = {issuer:?} must end with '/': it is the `aud` of every grant, which Maskinporten compares exactly (TEST: \"https://test.maskinporten.no/\")"
                ),
            ));
        }
        let token_url = https_url("token_url", &token_url)?;
        Ok(Addresses { api_url, issuer, token_url })
    }

    /// `verify_wait`: a duration of at most an hour.
    fn verify_wait(&self) -> Result<Span, SettingError> {
        let Some(text) = &self.verify_wait else { return Ok(default_verify_wait()) };
        let wait = text.parse::<Span>().map_err(|_| {
            SettingError::new(
                "verify_wait",
                format!(
                    "verify_wait = {text:?} is not a duration: write how long a key that Maskinporten does not know yet is tried again, like \"5m\""
                ),
            )
        })?;
        if wait > Span::HOUR {
            return Err(SettingError::new(
                "verify_wait",
                format!(
                    "verify_wait = {wait} is longer than an hour; Digdir documents 0-2 minutes of propagation, so use a few minutes (the default is {})",
                    default_verify_wait()
                ),
            ));
        }
        Ok(wait)
    }

    /// `[maskinporten.ENV.retry]`: at most 20 retries, and a first wait no longer than the last.
    fn check_retry(&self, env: &Environment) -> Result<(), SettingError> {
        let retry = &self.retry;
        if retry.max_retries > 20 || retry.initial_delay > retry.max_delay {
            let setting = if retry.max_retries > 20 { "max_retries" } else { "initial_delay" };
            return Err(SettingError::new(
                setting,
                format!(
                    "max_retries = {} must be at most 20 and initial_delay ({}) at most max_delay ({})",
                    retry.max_retries, retry.initial_delay, retry.max_delay
                ),
            )
            .within(format!("[maskinporten.{env}.retry]")));
        }
        Ok(())
    }
}

/// Reads `[maskinporten]`: one table per environment.
pub(crate) fn resolve_all(
    raw: BTreeMap<String, RawEnvironment>,
    base: &Path,
) -> Result<BTreeMap<Environment, MaskinportenEnv>, SettingError> {
    let mut out = BTreeMap::new();
    for (name, table) in raw {
        let env: Environment = name.parse().map_err(|e: crate::kid::NameError| {
            SettingError::general(e.to_string()).within(format!("[maskinporten.{name}]"))
        })?;
        out.insert(env.clone(), table.resolve(&env, base)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
