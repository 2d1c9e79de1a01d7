//! The shapes a consumer secret (and `export-key`) gives a key in: `encoded-jwk`, the base64 of
//! the private JWK, or `altinn-app`, the JSON of Altinn app-lib's `MaskinportenSettings` with the
//! client id and authority beside the key, so that applications take both from one place.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::Error as _;
use zeroize::Zeroizing;

use crate::jwk::PrivateJwk;
use crate::kid::Environment;

/// `contentType` of an `encoded-jwk` value (and of key secrets, which hold the same).
pub const ENCODED_JWK_CONTENT_TYPE: &str = "application/jwk+json; encoding=base64";

/// Tag on a consumer secret version: which shape its value has (absent: `encoded-jwk`, as every
/// version written before the setting existed).
pub const FORMAT_TAG: &str = "consumer-format";
/// Tag on an `altinn-app` consumer secret version: the client id its value names.
pub const CLIENT_ID_TAG: &str = "client-id";
/// Tag on an `altinn-app` consumer secret version: the authority its value names.
pub const AUTHORITY_TAG: &str = "authority";

/// `consumer_format` as the `[[client]]` table gives it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FormatName {
    #[default]
    EncodedJwk,
    AltinnApp,
}

impl FormatName {
    pub fn as_str(self) -> &'static str {
        match self {
            FormatName::EncodedJwk => "encoded-jwk",
            FormatName::AltinnApp => "altinn-app",
        }
    }
}

impl<'de> Deserialize<'de> for FormatName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) if s == "encoded-jwk" => Ok(FormatName::EncodedJwk),
            toml::Value::String(s) if s == "altinn-app" => Ok(FormatName::AltinnApp),
            other => Err(D::Error::custom(format!(
                "consumer_format = {other} is not a format: use \"encoded-jwk\" (base64 of the private JWK, Altinn's EncodedJwk) or \"altinn-app\" (Altinn app-lib's MaskinportenSettings JSON: authority, clientId, jwkBase64)"
            ))),
        }
    }
}

/// What an `altinn-app` document names beside the key, for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AltinnApp {
    /// The environment's Maskinporten issuer (`MaskinportenSettings.authority`).
    pub authority: String,
    /// The client's Maskinporten client id there (`MaskinportenSettings.clientId`).
    pub client_id: String,
}

/// A client's consumer format, resolved for each of its environments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConsumerFormat {
    #[default]
    EncodedJwk,
    AltinnApp(BTreeMap<Environment, AltinnApp>),
}

impl ConsumerFormat {
    /// The shape of the key set of `env` (an environment the client does not have gets
    /// `encoded-jwk`; the loader resolved every one it has).
    pub fn shape(&self, env: &Environment) -> ConsumerShape {
        match self {
            ConsumerFormat::AltinnApp(by_env) => {
                by_env.get(env).cloned().map_or(ConsumerShape::EncodedJwk, ConsumerShape::AltinnApp)
            }
            ConsumerFormat::EncodedJwk => ConsumerShape::EncodedJwk,
        }
    }

    pub fn name(&self) -> FormatName {
        match self {
            ConsumerFormat::EncodedJwk => FormatName::EncodedJwk,
            ConsumerFormat::AltinnApp(_) => FormatName::AltinnApp,
        }
    }
}

/// The shape one key set's consumer secret holds its key in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerShape {
    EncodedJwk,
    AltinnApp(AltinnApp),
}

impl ConsumerShape {
    /// The value applications read: the key in this shape.
    pub fn render(&self, key: &PrivateJwk) -> Zeroizing<String> {
        match self {
            ConsumerShape::EncodedJwk => key.to_base64(),
            ConsumerShape::AltinnApp(app) => {
                // Member names from app-lib's MaskinportenSettings (JsonPropertyName attributes).
                let encoded = key.to_base64();
                Zeroizing::new(format!(
                    r#"{{"authority":{},"clientId":{},"jwkBase64":"{}"}}"#,
                    json_string(&app.authority),
                    json_string(&app.client_id),
                    encoded.as_str()
                ))
            }
        }
    }

    /// The secret's `contentType`.
    pub fn content_type(&self) -> &'static str {
        match self {
            ConsumerShape::EncodedJwk => ENCODED_JWK_CONTENT_TYPE,
            ConsumerShape::AltinnApp(_) => "application/json",
        }
    }

    pub fn name(&self) -> FormatName {
        match self {
            ConsumerShape::EncodedJwk => FormatName::EncodedJwk,
            ConsumerShape::AltinnApp(_) => FormatName::AltinnApp,
        }
    }

    /// The tags that say which shape (and for `altinn-app`, which client id and authority) a
    /// version's value has; none of them is secret.
    pub fn tags(&self) -> Vec<(&'static str, String)> {
        let mut tags = vec![(FORMAT_TAG, self.name().as_str().to_owned())];
        if let ConsumerShape::AltinnApp(app) = self {
            tags.push((CLIENT_ID_TAG, app.client_id.clone()));
            tags.push((AUTHORITY_TAG, app.authority.clone()));
        }
        tags
    }

    /// Whether a version with these tags holds its key in this shape; a version without a
    /// format tag holds `encoded-jwk`.
    pub fn written_as(&self, tags: &std::collections::HashMap<String, String>) -> bool {
        let format = tags.get(FORMAT_TAG).map_or(FormatName::EncodedJwk.as_str(), String::as_str);
        format == self.name().as_str()
            && self.tags().iter().skip(1).all(|(k, v)| tags.get(*k).is_some_and(|t| t == v))
    }
}

/// A JSON string literal of `text` (a URL or client id; never key material).
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests;
