//! Webhook alerts: the Slack, Teams and JSON payloads, posted with a timeout and retries.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::alerts::{Alerter, DeliveryError, Notification};
use crate::config::SettingError;
use crate::config::worker::{WebhookConfig, WebhookFormat};
use crate::severity::Severity;

/// Lines shown in a chat message; the rest are counted ("and 12 more").
const MAX_LINES: usize = 20;

/// Posts notifications to one webhook.
pub(crate) struct WebhookAlerter {
    name: String,
    url: url::Url,
    format: WebhookFormat,
    retries: u32,
    min_severity: Severity,
    client: reqwest::Client,
}

impl WebhookAlerter {
    /// Reads the URL (from the environment for `url_env`) and builds the HTTP client.
    pub(crate) fn new(config: &WebhookConfig) -> Result<Self, SettingError> {
        let url = config.resolve_url()?;
        let timeout = config.timeout.to_std();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("jwk-rotator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                SettingError::general(format!("cannot build an HTTP client: {e}")).within(config.table())
            })?;
        Ok(WebhookAlerter {
            name: config.label(),
            url,
            format: config.format,
            retries: config.retries,
            min_severity: config.min_severity,
            client,
        })
    }

    async fn post_once(&self, body: &Value) -> Result<(), DeliveryError> {
        let response = self.client.post(self.url.clone()).json(body).send().await.map_err(|e| {
            // reqwest's message names the URL, which holds the webhook's secret.
            DeliveryError::Request { reason: e.without_url().to_string() }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(DeliveryError::Status(status.as_u16()))
    }
}

#[async_trait]
impl Alerter for WebhookAlerter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn min_severity(&self) -> Severity {
        self.min_severity
    }

    async fn deliver(&self, batch: &[Notification]) -> Result<(), DeliveryError> {
        let body = payload(self.format, batch);
        crate::retry::doubling(self.retries, Duration::from_millis(500), || self.post_once(&body))
            .await
            .map_err(|last| DeliveryError::GaveUp { attempts: self.retries + 1, last: Box::new(last) })
    }
}

/// The body for a batch in the given format.
pub fn payload(format: WebhookFormat, batch: &[Notification]) -> Value {
    match format {
        WebhookFormat::Slack => slack(batch),
        WebhookFormat::Teams => teams(batch),
        WebhookFormat::Json => json!({
            "source": "jwk-rotator",
            "worst": batch.iter().map(Notification::weight).max().unwrap_or(Severity::Ok),
            "notifications": batch,
        }),
    }
}

fn headline(batch: &[Notification]) -> String {
    let worst = batch.iter().map(|n| n.finding.severity).max().unwrap_or(Severity::Ok);
    let sets: std::collections::BTreeSet<String> =
        batch.iter().map(|n| n.finding.key_set.to_string()).collect();
    format!("jwk-rotator: {worst}: {} alert(s) for {} key set(s)", batch.len(), sets.len())
}

fn lines(batch: &[Notification]) -> Vec<String> {
    let mut out: Vec<String> = batch.iter().take(MAX_LINES).map(Notification::line).collect();
    if batch.len() > MAX_LINES {
        out.push(format!("… and {} more", batch.len() - MAX_LINES));
    }
    out
}

/// A Slack incoming-webhook message: `text` for notifications, a section per line.
fn slack(batch: &[Notification]) -> Value {
    let head = headline(batch);
    let mut blocks = vec![json!({"type": "header", "text": {"type": "plain_text", "text": head}})];
    for line in lines(batch) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": line}}));
    }
    json!({ "text": head, "blocks": blocks })
}

/// A Teams message with an Adaptive Card, as a Workflows webhook takes it.
fn teams(batch: &[Notification]) -> Value {
    let head = headline(batch);
    let mut body =
        vec![json!({"type": "TextBlock", "text": head, "weight": "Bolder", "size": "Medium", "wrap": true})];
    for line in lines(batch) {
        body.push(json!({"type": "TextBlock", "text": line, "wrap": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}
