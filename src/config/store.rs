//! `[store]`: where keys live, the file store's settings, and how the table is read so that an
//! error names the setting (serde's tagged enums lose the key of a bad value: TOML could point
//! only at the table's first line, and the message would not say which setting).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::azure;
use crate::policy::Span;

/// `[store]`: where keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A local directory (`kind = "file"`, the default).
    File { path: PathBuf, lock_timeout: Span },
    /// Azure Key Vault secrets (`kind = "azure-key-vault"`).
    AzureKeyVault(Box<azure::AzureConfig>),
}

/// The file store's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    #[serde(default = "default_store_path")]
    path: PathBuf,
    #[serde(default = "default_lock_timeout", deserialize_with = "de_lock_timeout")]
    lock_timeout: Span,
}

fn default_store_path() -> PathBuf {
    PathBuf::from("keys")
}

fn default_lock_timeout() -> Span {
    Span::seconds(30)
}

/// The longest `lock_timeout`: a run that holds the lock longer than this is stuck, and waiting
/// on it only hides that.
pub(crate) const MAX_LOCK_TIMEOUT: Span = Span::HOUR;

fn de_lock_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    let text = crate::de::named_text("[store] lock_timeout", d)?;
    let span = text.parse::<Span>().map_err(|_| {
        serde::de::Error::custom(format!(
            "[store] lock_timeout = {text:?} is not a duration: write how long a run waits for another run's lock, like \"30s\" or \"5m\" (at most {MAX_LOCK_TIMEOUT})"
        ))
    })?;
    if span > MAX_LOCK_TIMEOUT {
        return Err(serde::de::Error::custom(format!(
            "[store] lock_timeout = {text:?} is longer than {MAX_LOCK_TIMEOUT}: a run that holds the lock that long is stuck, and the waiting run should fail and say so; use at most \"{MAX_LOCK_TIMEOUT}\" (the default is 30s)"
        )));
    }
    Ok(span)
}

/// Reads `[store]` as a table, then its settings by its `kind`, so that an error names the
/// setting (`[store] max_in_flight: invalid type: ...`).
impl<'de> Deserialize<'de> for StoreConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fail = |m: String| <D::Error as serde::de::Error>::custom(m);
        let mut table = toml::Table::deserialize(d)?;
        let kinds = "kind = \"file\" or kind = \"azure-key-vault\"";
        let kind = match table.remove("kind") {
            Some(toml::Value::String(kind)) => kind,
            Some(_) => return Err(fail(format!("[store] kind is not a string: write {kinds}"))),
            None => return Err(fail(format!("[store] has no kind: add {kinds}"))),
        };
        let settings = toml::Value::Table(table);
        match kind.as_str() {
            "file" => {
                let FileSettings { path, lock_timeout } =
                    settings.try_into().map_err(|e| fail(setting_error(&e)))?;
                Ok(StoreConfig::File { path, lock_timeout })
            }
            "azure-key-vault" => Ok(StoreConfig::AzureKeyVault(Box::new(
                settings.try_into().map_err(|e| fail(setting_error(&e)))?,
            ))),
            _ => Err(fail(format!("[store] kind = {kind:?} is not a store: write {kinds}"))),
        }
    }
}

/// An error in one of `[store]`'s settings, naming it. Read from a value, toml's error is its
/// message and then, on a line of its own, "in `KEY`".
fn setting_error(e: &toml::de::Error) -> String {
    let text = e.to_string();
    let text = text.trim_end();
    let (message, key) = match text.rsplit_once("\nin `") {
        Some((message, key)) => (message, Some(key.trim_end_matches('`'))),
        None => (text, None),
    };
    match key {
        _ if message.starts_with("[store") => message.to_owned(),
        Some(key) => format!("[store] {key}: {message}"),
        None => format!("[store]: {message}"),
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig::File { path: default_store_path(), lock_timeout: default_lock_timeout() }
    }
}

impl StoreConfig {
    /// How long a run waits for another run's lock.
    pub fn lock_timeout(&self) -> Duration {
        match self {
            StoreConfig::File { lock_timeout, .. } => lock_timeout.to_std(),
            StoreConfig::AzureKeyVault(_) => Duration::from_secs(30),
        }
    }
}
