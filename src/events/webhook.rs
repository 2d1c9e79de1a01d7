//! `[[events.webhook]]`: each event posted as one CloudEvents structured-mode JSON body, with a
//! timeout, retries, an optional HMAC-SHA256 signature header and a type filter.

use std::collections::BTreeSet;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{Event, EventType};

/// The header holding `sha256=<hex HMAC-SHA256 of the body>` when `secret_env` is set.
pub const SIGNATURE_HEADER: &str = "X-Jwk-Rotator-Signature";

/// The CloudEvents HTTP binding's media type for a structured-mode body.
pub const CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";

/// Why an event did not reach a webhook. Never holds the URL: it may carry a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDeliveryError {
    #[error("the request failed: {reason}")]
    Request { reason: String },
    #[error("the webhook answered HTTP {status}")]
    Status { status: u16 },
    #[error("gave up after {attempts} attempts; the last: {last}")]
    GaveUp { attempts: u32, last: Box<EventDeliveryError> },
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// What a webhook needs, read from `[[events.webhook]]` (and the environment) by `app`.
pub struct WebhookSettings {
    /// The name in logs and metrics (never the URL).
    pub name: String,
    pub url: url::Url,
    /// The types sent here; all when `None`.
    pub types: Option<Vec<EventType>>,
    /// The HMAC-SHA256 key that signs each body.
    pub secret: Option<Zeroizing<Vec<u8>>>,
    /// Per attempt.
    pub timeout: Duration,
    pub retries: u32,
}

/// The HTTP client could not be built (the TLS set-up failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhook {name}: cannot build an HTTP client: {reason}")]
pub struct WebhookBuildError {
    pub name: String,
    pub reason: String,
}

/// Posts events to one webhook.
pub struct EventWebhook {
    name: String,
    url: url::Url,
    /// The types sent here; all when `None`.
    types: Option<BTreeSet<EventType>>,
    secret: Option<Zeroizing<Vec<u8>>>,
    retries: u32,
    /// The wait before the first retry; it doubles each time.
    backoff: Duration,
    client: reqwest::Client,
}

impl EventWebhook {
    /// Builds the HTTP client for `settings`.
    pub fn new(settings: WebhookSettings) -> Result<Self, WebhookBuildError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("jwk-rotator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookBuildError { name: settings.name.clone(), reason: e.to_string() })?;
        Ok(EventWebhook {
            name: settings.name,
            url: settings.url,
            types: settings.types.map(|t| t.into_iter().collect()),
            secret: settings.secret,
            retries: settings.retries,
            backoff: Duration::from_millis(500),
            client,
        })
    }

    /// The wait before the first retry (tests shorten it).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The name in logs and metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether events of this type are sent here.
    pub fn wants(&self, kind: EventType) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&kind))
    }

    /// Posts `event`, retrying a failed attempt `retries` times.
    pub async fn deliver(&self, event: &Event) -> Result<(), EventDeliveryError> {
        let body = event.to_json();
        crate::retry::doubling(self.retries, self.backoff, || self.post_once(&body))
            .await
            .map_err(|last| EventDeliveryError::GaveUp { attempts: self.retries + 1, last: Box::new(last) })
    }

    async fn post_once(&self, body: &str) -> Result<(), EventDeliveryError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body.to_owned());
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, body.as_bytes()));
        }
        let response = request
            .send()
            .await
            .map_err(|e| EventDeliveryError::Request { reason: e.without_url().to_string() })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(EventDeliveryError::Status { status: status.as_u16() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
