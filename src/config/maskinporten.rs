//! `[maskinporten.ENV]` and the Maskinporten settings of a `[[client]]`: where Digdir's
//! self-service API and token endpoint are, the organisation's admin client, and per client its
//! `client_id` in each environment, the scope used to prove a key, and where its public set goes.
//! Everything is checked at load, with the setting named; a password is only ever named by the
//! environment variable that holds it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::kid::Environment;
use crate::policy::Span;

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

/// The admin scopes asked for by default: read and replace a client's keys. Digdir also has
/// `idporten:dcr.modify`, which may change existing clients but not create them: the narrowest
/// scope that can replace a key set.
pub const DEFAULT_ADMIN_SCOPES: [&str; 2] = ["idporten:dcr.read", "idporten:dcr.write"];

/// How long `verify` (and a verified promotion) keeps trying a key that Maskinporten does not
/// know yet: Digdir documents 0-2 minutes of propagation, and some users saw several.
pub fn default_verify_wait() -> Span {
    Span::minutes(5)
}

/// `[maskinporten.ENV]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
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

/// Where the admin client's business certificate and key come from.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminCertificate {
    /// A PKCS#12 file; its password is in the environment variable `password_env`.
    Pkcs12 { path: PathBuf, password_env: Option<String> },
    /// A PEM certificate chain (leaf first) and a PEM private key.
    Pem { certificate: PathBuf, key: PathBuf },
    /// A Key Vault certificate, read through its backing secret in the `[store]` vault.
    KeyVaultSecret { name: String },
}

impl std::fmt::Debug for AdminCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminCertificate::Pkcs12 { path, password_env } => {
                f.debug_struct("Pkcs12").field("path", path).field("password_env", password_env).finish()
            }
            AdminCertificate::Pem { certificate, key } => {
                f.debug_struct("Pem").field("certificate", certificate).field("key", key).finish()
            }
            AdminCertificate::KeyVaultSecret { name } => {
                f.debug_struct("KeyVaultSecret").field("name", name).finish()
            }
        }
    }
}

impl AdminCertificate {
    /// The setting that names the certificate, for messages.
    pub fn setting(&self) -> String {
        match self {
            AdminCertificate::Pkcs12 { path, .. } => {
                format!("admin_certificate = {:?}", path.display().to_string())
            }
            AdminCertificate::Pem { certificate, .. } => {
                format!("admin_certificate_pem = {:?}", certificate.display().to_string())
            }
            AdminCertificate::KeyVaultSecret { name } => format!("admin_certificate_secret = {name:?}"),
        }
    }
}

/// The organisation's admin client, which reads and replaces client key sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminClient {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub certificate: AdminCertificate,
    /// `admin_auth = "kid"`: the kid under which Digdir registered the certificate on the admin
    /// client, which its grants then carry instead of the chain (`x5c`, the default: `None`).
    pub kid: Option<String>,
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

/// Where a client's public key set goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PublishTarget {
    /// `{set}.jwks.json` and `{set}.maskinporten.json` in `[publish] dir`.
    Files,
    /// Digdir's self-service API, for the client's `client_id` in each environment.
    MaskinportenApi,
}

/// The Maskinporten settings of one `[[client]]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMaskinporten {
    pub publish: Vec<PublishTarget>,
    /// The client's Maskinporten client id in each environment.
    pub client_id: BTreeMap<Environment, String>,
    /// A scope the client has, asked for when a key is proved.
    pub verify_scope: Option<String>,
    /// Whether keys on the client that this tool does not manage are removed when it uploads.
    pub prune_unmanaged: bool,
}

impl Default for ClientMaskinporten {
    fn default() -> Self {
        ClientMaskinporten {
            publish: vec![PublishTarget::Files],
            client_id: BTreeMap::new(),
            verify_scope: None,
            prune_unmanaged: false,
        }
    }
}

impl ClientMaskinporten {
    pub fn publishes_to(&self, target: PublishTarget) -> bool {
        self.publish.contains(&target)
    }
}

/// A client's Maskinporten settings as written (flattened into `[[client]]`).
#[derive(Debug, Clone, Default)]
pub struct RawClientMaskinporten {
    pub publish: Option<Vec<String>>,
    pub client_id: Option<toml::Value>,
    pub verify_scope: Option<toml::Value>,
    pub prune_unmanaged: Option<toml::Value>,
}

impl RawClientMaskinporten {
    /// Takes this client's Maskinporten settings out of the table's other keys.
    pub fn take(rest: &mut BTreeMap<String, toml::Value>) -> Result<Self, ConfigError> {
        let publish = match rest.remove("publish") {
            None => None,
            Some(toml::Value::Array(items)) => Some(
                items
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s),
                        other => Err(publish_error(&other.to_string())),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => return Err(publish_error(&other.to_string())),
        };
        Ok(RawClientMaskinporten {
            publish,
            client_id: rest.remove("client_id"),
            verify_scope: rest.remove("verify_scope"),
            prune_unmanaged: rest.remove("prune_unmanaged"),
        })
    }
}

fn publish_error(value: &str) -> ConfigError {
    ConfigError(format!(
        "publish = {value} is not a list of targets: write publish = [\"files\"], [\"maskinporten-api\"] or both"
    ))
}

/// A setting that must be an https URL.
fn https_url(setting: &str, text: &str) -> Result<url::Url, ConfigError> {
    let url =
        url::Url::parse(text).map_err(|e| ConfigError(format!("{setting} = {text:?} is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(ConfigError(format!(
            "{setting} = {text:?} must use https: Digdir serves nothing else (for a test double, give its https URL and ca_cert)"
        )));
    }
    Ok(url)
}

impl RawEnvironment {
    /// Checks `[maskinporten.ENV]` and anchors its files at the config file's directory.
    pub fn resolve(self, env: &Environment, base: &Path) -> Result<MaskinportenEnv, ConfigError> {
        let table = format!("[maskinporten.{env}]");
        let at = |e: ConfigError| ConfigError(format!("{table}: {}", e.0));
        let defaults = digdir_defaults(env);
        let pick = |given: Option<String>, setting: &str, default: Option<&'static str>| {
            given.or_else(|| default.map(str::to_owned)).ok_or_else(|| {
                ConfigError(format!(
                    "{table}: {setting} is missing; Digdir's addresses are built in only for TEST and PROD, so {env} must give api_url, issuer and token_url"
                ))
            })
        };
        let api_url = pick(self.api_url.clone(), "api_url", defaults.as_ref().map(|d| d.api_url))?;
        let issuer = pick(self.issuer.clone(), "issuer", defaults.as_ref().map(|d| d.issuer))?;
        let token_url = pick(self.token_url.clone(), "token_url", defaults.as_ref().map(|d| d.token_url))?;
        let api_url = https_url("api_url", &api_url).map_err(at)?;
        https_url("issuer", &issuer).map_err(at)?;
        if !issuer.ends_with('/') {
            return Err(at(ConfigError(format!(
                "issuer = {issuer:?} must end with '/': it is the `aud` of every grant, which Maskinporten compares exactly (TEST: \"https://test.maskinporten.no/\")"
            ))));
        }
        let token_url = https_url("token_url", &token_url).map_err(at)?;
        let verify_wait = match &self.verify_wait {
            None => default_verify_wait(),
            Some(text) => text.parse::<Span>().map_err(|_| {
                at(ConfigError(format!(
                    "verify_wait = {text:?} is not a duration: write how long a key that Maskinporten does not know yet is tried again, like \"5m\""
                )))
            })?,
        };
        if verify_wait > Span::HOUR {
            return Err(at(ConfigError(format!(
                "verify_wait = {verify_wait} is longer than an hour; Digdir documents 0-2 minutes of propagation, so use a few minutes (the default is {})",
                default_verify_wait()
            ))));
        }
        if self.retry.max_retries > 20 || self.retry.initial_delay > self.retry.max_delay {
            return Err(at(ConfigError(format!(
                "[maskinporten.{env}.retry]: max_retries = {} must be at most 20 and initial_delay ({}) at most max_delay ({})",
                self.retry.max_retries, self.retry.initial_delay, self.retry.max_delay
            ))));
        }
        let admin = admin_client(&self, base).map_err(at)?;
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
}

fn admin_client(raw: &RawEnvironment, base: &Path) -> Result<Option<AdminClient>, ConfigError> {
    let sources = [
        raw.admin_certificate.is_some(),
        raw.admin_certificate_pem.is_some() || raw.admin_key_pem.is_some(),
        raw.admin_certificate_secret.is_some(),
    ];
    let given = sources.iter().filter(|s| **s).count();
    let Some(client_id) = &raw.admin_client_id else {
        if given > 0 || raw.admin_scopes.is_some() || raw.admin_auth.is_some() || raw.admin_kid.is_some() {
            return Err(ConfigError(
                "an admin certificate is set but admin_client_id is missing: give the organisation's self-service client id, as Digdir's service desk issued it".to_owned(),
            ));
        }
        return Ok(None);
    };
    if client_id.trim().is_empty() {
        return Err(ConfigError("admin_client_id is empty".to_owned()));
    }
    if given != 1 {
        return Err(ConfigError(format!(
            "admin_client_id = {client_id:?} needs exactly one business certificate: admin_certificate (PKCS#12) with admin_certificate_password_env, admin_certificate_pem with admin_key_pem, or admin_certificate_secret (a Key Vault certificate); {given} are set"
        )));
    }
    let certificate = if let Some(path) = &raw.admin_certificate {
        if let Some(var) = &raw.admin_certificate_password_env
            && (var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(ConfigError(format!(
                "admin_certificate_password_env = {var:?} must name an environment variable (letters, digits, '_'), not hold the password"
            )));
        }
        AdminCertificate::Pkcs12 {
            path: base.join(path),
            password_env: raw.admin_certificate_password_env.clone(),
        }
    } else if let Some(name) = &raw.admin_certificate_secret {
        if raw.admin_certificate_password_env.is_some() {
            return Err(ConfigError(
                "admin_certificate_password_env goes with admin_certificate (a PKCS#12 file); a Key Vault certificate's secret has no password".to_owned(),
            ));
        }
        let ok = !name.is_empty()
            && name.len() <= 127
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(ConfigError(format!(
                "admin_certificate_secret = {name:?} is not a Key Vault certificate name: use letters, digits and '-'"
            )));
        }
        AdminCertificate::KeyVaultSecret { name: name.clone() }
    } else {
        match (&raw.admin_certificate_pem, &raw.admin_key_pem) {
            (Some(cert), Some(key)) => {
                AdminCertificate::Pem { certificate: base.join(cert), key: base.join(key) }
            }
            (Some(_), None) => {
                return Err(ConfigError(
                    "admin_certificate_pem is set without admin_key_pem: give the PEM file of the certificate's private key too".to_owned(),
                ));
            }
            _ => {
                return Err(ConfigError(
                    "admin_key_pem is set without admin_certificate_pem: give the PEM certificate chain (leaf first) too".to_owned(),
                ));
            }
        }
    };
    let scopes = match &raw.admin_scopes {
        None => DEFAULT_ADMIN_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        Some(scopes)
            if scopes.is_empty() || scopes.iter().any(|s| s.trim().is_empty() || s.contains(' ')) =>
        {
            return Err(ConfigError(format!(
                "admin_scopes = {scopes:?} must list scopes, one per string, such as [\"idporten:dcr.read\", \"idporten:dcr.write\"]"
            )));
        }
        Some(scopes) => scopes.clone(),
    };
    let kid = admin_kid(raw)?;
    Ok(Some(AdminClient { client_id: client_id.clone(), scopes, certificate, kid }))
}

/// `admin_auth` and `admin_kid`: whether the admin client's grants carry the certificate chain
/// (`x5c`, the default) or the kid under which Digdir registered the certificate on the admin
/// client, which such a client "can and must" use (docs.digdir.no `maskinporten_protocol_jwtgrant`).
fn admin_kid(raw: &RawEnvironment) -> Result<Option<String>, ConfigError> {
    let kid_ok = |kid: &str| !kid.is_empty() && kid.len() <= 200 && kid.bytes().all(|b| b.is_ascii_graphic());
    match (raw.admin_auth.as_deref(), &raw.admin_kid) {
        (None | Some("x5c"), None) => Ok(None),
        (Some("kid"), Some(kid)) if kid_ok(kid) => Ok(Some(kid.clone())),
        (Some("kid"), Some(kid)) => Err(ConfigError(format!(
            "admin_kid = {kid:?} is not a kid: give the key id Digdir registered the business certificate under, without spaces"
        ))),
        (Some("kid"), None) => Err(ConfigError(
            "admin_auth = \"kid\" needs admin_kid: the key id under which Digdir registered the business certificate on the admin client (ask the service desk), or leave admin_auth out to send the certificate chain (x5c)".to_owned(),
        )),
        (None | Some("x5c"), Some(kid)) => Err(ConfigError(format!(
            "admin_kid = {kid:?} is set but admin_auth is not \"kid\": set admin_auth = \"kid\" when Digdir registered the business certificate on the admin client, or remove admin_kid"
        ))),
        (Some(other), _) => Err(ConfigError(format!(
            "admin_auth = {other:?} is not \"x5c\" (send the business certificate's chain, the default) or \"kid\" (name the certificate Digdir registered on the admin client, with admin_kid)"
        ))),
    }
}

/// Reads `[maskinporten]`: one table per environment.
pub fn resolve_all(
    raw: BTreeMap<String, RawEnvironment>,
    base: &Path,
) -> Result<BTreeMap<Environment, MaskinportenEnv>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, table) in raw {
        let env: Environment = name
            .parse()
            .map_err(|e: crate::kid::NameError| ConfigError(format!("[maskinporten.{name}]: {e}")))?;
        out.insert(env.clone(), table.resolve(&env, base)?);
    }
    Ok(out)
}

/// Checks a client's Maskinporten settings against its environments, its promotion mode and
/// the `[maskinporten.ENV]` tables.
pub fn resolve_client(
    raw: RawClientMaskinporten,
    environments: &[Environment],
    verified: bool,
    tables: &BTreeMap<Environment, MaskinportenEnv>,
) -> Result<ClientMaskinporten, ConfigError> {
    let mut out = ClientMaskinporten::default();
    if let Some(publish) = raw.publish {
        let mut targets = Vec::new();
        for name in &publish {
            let target = match name.as_str() {
                "files" => PublishTarget::Files,
                "maskinporten-api" => PublishTarget::MaskinportenApi,
                other => {
                    return Err(ConfigError(format!(
                        "publish = [{other:?}] is not a target: use \"files\" ({{set}}.jwks.json in [publish] dir), \"maskinporten-api\" (Digdir's self-service API) or both"
                    )));
                }
            };
            if targets.contains(&target) {
                return Err(ConfigError(format!("publish lists {name:?} twice")));
            }
            targets.push(target);
        }
        if targets.is_empty() {
            return Err(ConfigError(
                "publish = [] would publish the keys nowhere, so no key could ever be promoted safely: use [\"files\"], [\"maskinporten-api\"] or both".to_owned(),
            ));
        }
        out.publish = targets;
    }
    out.client_id = client_ids(raw.client_id, environments)?;
    out.verify_scope = match raw.verify_scope {
        None => None,
        Some(toml::Value::String(s)) if !s.trim().is_empty() && !s.contains(' ') => Some(s),
        Some(other) => {
            return Err(ConfigError(format!(
                "verify_scope = {other} must be one scope that the client has, such as \"altinn:serviceowner\""
            )));
        }
    };
    out.prune_unmanaged = match raw.prune_unmanaged {
        None => false,
        Some(toml::Value::Boolean(b)) => b,
        Some(other) => return Err(ConfigError(format!("prune_unmanaged = {other} must be true or false"))),
    };
    let api = out.publishes_to(PublishTarget::MaskinportenApi);
    for env in environments {
        let needs = |what: &str| {
            if api && verified {
                format!("publish = [\"maskinporten-api\"] and promotion = \"verified\" need {what}")
            } else if api {
                format!("publish = [\"maskinporten-api\"] needs {what}")
            } else {
                format!("promotion = \"verified\" needs {what}")
            }
        };
        if !(api || verified) {
            continue;
        }
        if !out.client_id.contains_key(env) {
            return Err(ConfigError(format!(
                "{}: add client_id = {{ {env} = \"...\" }} with the client's id in Maskinporten",
                needs(&format!("the client's Maskinporten client_id for {env}"))
            )));
        }
        let Some(table) = tables.get(env) else {
            return Err(ConfigError(format!(
                "{}: add a [maskinporten.{env}] table (TEST and PROD need no addresses; api publishing needs admin_client_id and a business certificate)",
                needs(&format!("[maskinporten.{env}]"))
            )));
        };
        if api && table.admin.is_none() {
            return Err(ConfigError(format!(
                "{}: set admin_client_id and a business certificate in [maskinporten.{env}]",
                needs("the organisation's admin client")
            )));
        }
    }
    if verified && out.verify_scope.is_none() {
        return Err(ConfigError(
            "promotion = \"verified\" needs verify_scope: a scope the client has in Maskinporten, such as \"altinn:serviceowner\", asked for when a key is proved".to_owned(),
        ));
    }
    Ok(out)
}

fn client_ids(
    value: Option<toml::Value>,
    environments: &[Environment],
) -> Result<BTreeMap<Environment, String>, ConfigError> {
    let Some(value) = value else { return Ok(BTreeMap::new()) };
    let toml::Value::Table(table) = value else {
        return Err(ConfigError(format!(
            "client_id = {value} must be a table of environments, such as client_id = {{ TEST = \"3f1c...\", PROD = \"9a2d...\" }}"
        )));
    };
    let mut out = BTreeMap::new();
    for (name, id) in table {
        let env: Environment =
            name.parse().map_err(|e: crate::kid::NameError| ConfigError(format!("client_id.{name}: {e}")))?;
        if !environments.contains(&env) {
            return Err(ConfigError(format!(
                "client_id.{env} is given, but {env} is not one of this client's environments"
            )));
        }
        match id {
            toml::Value::String(s) if !s.trim().is_empty() => {
                out.insert(env, s);
            }
            other => {
                return Err(ConfigError(format!(
                    "client_id.{env} = {other} must be the client id as a string"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
