//! `[events]`: the audit trail and the webhooks that receive every change to a key.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SettingError;
use super::worker::webhook_url;
use crate::events::EventType;
use crate::policy::Span;

/// `[events]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The append-only, hash-chained JSON-lines file (relative to the config file).
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    #[serde(default)]
    pub webhook: Vec<EventWebhookConfig>,
}

impl EventsConfig {
    /// Checks every setting, and makes `audit_log` relative to the config file's directory.
    pub(super) fn resolve(mut self, base: &Path) -> Result<Self, SettingError> {
        if let Some(path) = &self.audit_log {
            if path.as_os_str().is_empty() {
                return Err(SettingError::new(
                    "audit_log",
                    "audit_log is empty; name a file, such as audit_log = \"audit.jsonl\", or leave the setting out",
                )
                .within("[events]"));
            }
            self.audit_log = Some(base.join(path));
        }
        for hook in &self.webhook {
            hook.check()?;
        }
        Ok(self)
    }
}

/// One `[[events.webhook]]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventWebhookConfig {
    /// A name for logs and metrics; the URL may hold a secret and is never logged.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "de_url")]
    pub url: Option<url::Url>,
    /// The environment variable that holds the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// The event types sent here (`key.promoted`, ...); every type when not set.
    #[serde(default, deserialize_with = "de_types")]
    pub types: Option<Vec<EventType>>,
    /// The environment variable holding the HMAC-SHA256 key that signs each body.
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    #[serde(default = "default_retries")]
    pub retries: u32,
}

impl fmt::Debug for EventWebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWebhookConfig")
            .field("name", &self.name)
            .field("url_env", &self.url_env)
            .field("types", &self.types)
            .field("secret_env", &self.secret_env)
            .finish_non_exhaustive()
    }
}

fn default_timeout() -> Span {
    Span::seconds(10)
}

fn default_retries() -> u32 {
    2
}

fn de_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    let s = crate::de::named_text("[[events.webhook]] url", d)?;
    webhook_url(&s).map(Some).map_err(|e| serde::de::Error::custom(format!("[[events.webhook]] url {e}")))
}

fn de_types<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<EventType>>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    let types = names
        .iter()
        .map(|n| n.parse().map_err(|e| serde::de::Error::custom(format!("[[events.webhook]] types: {e}"))))
        .collect::<Result<Vec<EventType>, _>>()?;
    Ok(Some(types))
}

impl EventWebhookConfig {
    /// A name for logs and metrics: `name`, else the URL's host or `url_env`.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let host = self.url.as_ref().and_then(|u| u.host_str().map(str::to_owned));
        host.or_else(|| self.url_env.clone()).unwrap_or_default()
    }

    /// How messages name this webhook's table.
    pub fn table(&self) -> String {
        format!("[[events.webhook]] {}", self.label())
    }

    fn check(&self) -> Result<(), SettingError> {
        let refused =
            |setting: &str, message: &str| Err(SettingError::new(setting, message).within(self.table()));
        if self.url.is_some() == self.url_env.is_some() {
            return refused(
                "url",
                "set exactly one of url and url_env (the environment variable holding the URL)",
            );
        }
        if self.types.as_ref().is_some_and(Vec::is_empty) {
            return refused(
                "types",
                "types is empty, so nothing would be sent; list event types, such as [\"key.promoted\"], or leave the setting out for every type",
            );
        }
        if self.secret_env.as_ref().is_some_and(String::is_empty) {
            return refused(
                "secret_env",
                "secret_env is empty; name the environment variable that holds the signing key, or leave the setting out",
            );
        }
        Ok(())
    }

    /// The URL to post to, read from the environment when `url_env` is set.
    pub fn resolve_url(&self) -> Result<url::Url, SettingError> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        let var = self.url_env.clone().unwrap_or_default();
        let refused = |problem: String| SettingError::new("url_env", problem).within(self.table());
        let value = std::env::var(&var).map_err(|_| {
            refused(format!("environment variable {var} is not set; set it to the webhook's URL"))
        })?;
        webhook_url(&value).map_err(|e| refused(format!("environment variable {var} {e}")))
    }

    /// What the webhook needs: the URL and the signing key read from the environment now.
    pub fn settings(&self) -> Result<crate::events::webhook::WebhookSettings, SettingError> {
        Ok(crate::events::webhook::WebhookSettings {
            name: self.label(),
            url: self.resolve_url()?,
            types: self.types.clone(),
            secret: self.resolve_secret()?,
            timeout: self.timeout.to_std(),
            retries: self.retries,
        })
    }

    /// The signing key from `secret_env`, if set; an unset or empty variable is an error.
    pub fn resolve_secret(&self) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, SettingError> {
        let Some(var) = &self.secret_env else { return Ok(None) };
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(Some(zeroize::Zeroizing::new(value.into_bytes()))),
            _ => Err(SettingError::new(
                "secret_env",
                format!("environment variable {var} is not set or is empty; set it to the webhook's signing key, or remove secret_env"),
            )
            .within(self.table())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(text: &str) -> EventsConfig {
        let config: EventsConfig = toml::from_str(text).expect("parses");
        config.resolve(Path::new("/etc/j")).expect("resolves")
    }

    /// The message of a config that is refused, when parsed or when resolved.
    fn refused(text: &str) -> String {
        match toml::from_str::<EventsConfig>(text) {
            Err(e) => e.to_string(),
            Ok(config) => config.resolve(Path::new("/etc/j")).expect_err("refused").to_string(),
        }
    }

    #[test]
    fn the_design_example_loads_and_paths_follow_the_config_file() {
        let config = loads(
            "audit_log = \"audit.jsonl\"\n[[webhook]]\nurl_env = \"E\"\ntypes = [\"key.promoted\", \"key.retired\"]\nsecret_env = \"S\"\n",
        );
        assert_eq!(config.audit_log.as_deref(), Some(Path::new("/etc/j/audit.jsonl")));
        assert_eq!(config.webhook[0].types, Some(vec![EventType::Promoted, EventType::Retired]));
    }

    #[test]
    fn bad_settings_are_named() {
        let e = refused("[[webhook]]\nurl = \"https://h/x\"\ntypes = [\"key.rotated\"]\n");
        assert!(e.contains("unknown event type \"key.rotated\""), "{e}");
        let e = refused("[[webhook]]\nurl = \"https://h/x\"\ntypes = []\n");
        assert!(e.contains("types is empty"), "{e}");
        let e = refused("[[webhook]]\ntypes = [\"key.promoted\"]\n");
        assert!(e.contains("set exactly one of url and url_env"), "{e}");
        let e = refused("[[webhook]]\nurl = \"http://example.com/\"\n");
        assert!(e.contains("must be https"), "{e}");
        let e = refused("audit_log = \"\"\n");
        assert!(e.contains("audit_log is empty"), "{e}");
    }
}
