//! Digdir's self-service API for a client's key set: `GET` and `POST`
//! `{api}/api/v1/clients/{client_id}/jwks` with the admin client's token (docs.digdir.no
//! `oidc_api_admin`). `POST` replaces the whole set; `DELETE` removes every key, which an empty
//! `POST` can not do (okdata-maskinporten-api: "When deleting the last key, we need to DELETE
//! instead of POST-ing an empty `keys` object").

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use super::http::{Retry, describe, retry_after, retryable_error, retryable_status};
use super::token::{AdminTokens, GrantError};
use crate::publish::RegisteredKey;

/// The time used to sign grants: the wall clock, or a simulated one in tests.
pub(crate) type WallClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub(crate) fn system_clock() -> WallClock {
    Arc::new(Utc::now)
}

/// Why a request to the self-service API failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// Digdir refused the request (4xx): its own words, with the correlation id to quote.
    #[error("Digdir's self-service API refused {action} (HTTP {status}): {messages}{}{}", correlation(.correlation_id), refusal_hint(*.status))]
    Refused { action: String, status: u16, messages: String, correlation_id: Option<String> },
    /// No usable answer after every retry.
    #[error("Digdir's self-service API is unavailable ({action}): {reason}; tried {tries} times")]
    Unavailable { action: String, reason: String, tries: u32 },
    /// The admin client got no token.
    #[error("the admin client got no token for Digdir's self-service API: {0}")]
    Token(#[from] GrantError),
    /// An answer this tool does not understand.
    #[error("Digdir's self-service API gave an answer this tool does not understand ({action}): {reason}")]
    Protocol { action: String, reason: String },
}

/// What a refusal's status means for this tool's requests. Digdir's `dcr` scopes reach only the
/// clients "bundet mot samme org.nr. som gitt i access_token" (`oidc_api_admin`, "Bruk av
/// Oauth2"): a client id of another organisation is refused (403), or not found (404).
fn refusal_hint(status: u16) -> &'static str {
    match status {
        403 => {
            ". An admin client reaches only the clients of its own organisation, with the scopes Digdir gave it: check that client_id for this environment is a client of the organisation whose business certificate signs, and admin_scopes"
        }
        404 => {
            ". Check that client_id for this environment is right: a client of another organisation or environment is not found"
        }
        _ => "",
    }
}

fn correlation(id: &Option<String>) -> String {
    id.as_deref()
        .map(|id| format!(" (correlation id {id}; quote it to Digdir's service desk)"))
        .unwrap_or_default()
}

/// The self-service API of one environment, as its admin client.
pub(crate) struct SelfServiceApi {
    http: reqwest::Client,
    base: url::Url,
    retry: Retry,
    tokens: Arc<AdminTokens>,
    clock: WallClock,
}

impl std::fmt::Debug for SelfServiceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfServiceApi").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

/// One try's outcome.
enum Try {
    Done(Result<(StatusCode, String), ApiError>),
    Again { reason: String, retry_after: Option<std::time::Duration> },
}

impl SelfServiceApi {
    pub(crate) fn new(
        http: reqwest::Client,
        base: url::Url,
        retry: Retry,
        tokens: Arc<AdminTokens>,
        clock: WallClock,
    ) -> Self {
        SelfServiceApi { http, base, retry, tokens, clock }
    }

    /// `{base}/api/v1/clients/{client_id}/jwks`, with the client id as one path segment.
    fn jwks_url(&self, client_id: &str) -> Result<url::Url, ApiError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ApiError::Protocol {
                action: "building the URL".to_owned(),
                reason: format!("api_url {} can not have a path", self.base),
            })?
            .pop_if_empty()
            .extend(["api", "v1", "clients", client_id, "jwks"]);
        Ok(url)
    }

    /// The keys registered on `client_id`. A client without keys may answer 404 or leave
    /// `keys` out: both are an empty set. An unknown client is a 404 too, which the caller
    /// can not tell from "no keys"; the publisher's read-back catches a wrong client id.
    pub(crate) async fn get(&self, client_id: &str) -> Result<Vec<RegisteredKey>, ApiError> {
        let action = format!("reading the keys of client {client_id}");
        let url = self.jwks_url(client_id)?;
        let (status, body) = match self.send(&action, || self.http.get(url.clone())).await {
            Err(ApiError::Refused { status: 404, .. }) => return Ok(Vec::new()),
            other => other?,
        };
        if status == StatusCode::NO_CONTENT || body.trim().is_empty() {
            return Ok(Vec::new());
        }
        parse_keys(&body).map_err(|e| ApiError::Protocol { action, reason: e.to_string() })
    }

    /// Replaces the whole key set of `client_id` with `keys` (public JWKs, each with `exp`).
    pub(crate) async fn replace(&self, client_id: &str, keys: &[Value]) -> Result<(), ApiError> {
        let action = format!("replacing the keys of client {client_id}");
        let url = self.jwks_url(client_id)?;
        let body = serde_json::json!({ "keys": keys });
        self.send(&action, || self.http.post(url.clone()).json(&body)).await.map(|_| ())
    }

    /// Removes every key of `client_id`: the way to leave a client without keys.
    pub(crate) async fn delete_all(&self, client_id: &str) -> Result<(), ApiError> {
        let action = format!("removing the last keys of client {client_id}");
        let url = self.jwks_url(client_id)?;
        self.send(&action, || self.http.delete(url.clone())).await.map(|_| ())
    }

    /// Sends a request with the admin token, retrying network errors, 429 and 5xx with backoff;
    /// a 401 fetches a new token once (the cached one may have been revoked).
    async fn send(
        &self,
        action: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, String), ApiError> {
        let mut last = String::new();
        let mut renewed = false;
        let mut attempt = 0;
        while attempt <= self.retry.max_retries {
            let token = self.tokens.token((self.clock)()).await?;
            let sent =
                request().bearer_auth(token.secret()).header("Accept", "application/json").send().await;
            let outcome = match sent {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !renewed => {
                    renewed = true;
                    self.tokens.forget().await;
                    continue;
                }
                Ok(response) => answer(action, response).await,
                Err(e) if retryable_error(&e) => Try::Again { reason: describe(&e), retry_after: None },
                Err(e) => Try::Done(Err(ApiError::Unavailable {
                    action: action.to_owned(),
                    reason: describe(&e),
                    tries: attempt + 1,
                })),
            };
            match outcome {
                Try::Done(result) => return result,
                Try::Again { reason, retry_after } => {
                    tracing::warn!(action, attempt = attempt + 1, %reason, "self-service API request failed");
                    if attempt < self.retry.max_retries {
                        tokio::time::sleep(self.retry.delay_after(attempt, retry_after)).await;
                    }
                    last = reason;
                }
            }
            attempt += 1;
        }
        Err(ApiError::Unavailable {
            action: action.to_owned(),
            reason: last,
            tries: self.retry.max_retries + 1,
        })
    }
}

/// Reads an answer: success, a refusal in Digdir's shape, or a reason to try again.
async fn answer(action: &str, response: reqwest::Response) -> Try {
    let status = response.status();
    let wait = retry_after(response.headers());
    let body = match response.text().await {
        Ok(body) => body,
        Err(e) => return Try::Again { reason: describe(&e), retry_after: None },
    };
    if status.is_success() {
        return Try::Done(Ok((status, body)));
    }
    if retryable_status(status) {
        return Try::Again { reason: format!("HTTP {status}"), retry_after: wait };
    }
    let (messages, correlation_id) = digdir_error(&body);
    Try::Done(Err(ApiError::Refused {
        action: action.to_owned(),
        status: status.as_u16(),
        messages,
        correlation_id,
    }))
}

/// Digdir's error answer: `errors[].errorMessage` (with `fieldIdentifier`), else
/// `error_description` or `error`, and the `correlation_id`. A body of another shape is quoted,
/// shortened.
pub(crate) fn digdir_error(body: &str) -> (String, Option<String>) {
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        let short: String = body.chars().take(200).collect();
        return (if short.trim().is_empty() { "no details".to_owned() } else { short }, None);
    };
    let correlation_id = json.get("correlation_id").and_then(Value::as_str).map(str::to_owned);
    let listed: Vec<String> = json
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let message = e.get("errorMessage").and_then(Value::as_str)?;
            Some(match e.get("fieldIdentifier").and_then(Value::as_str) {
                Some(field) if !field.is_empty() => format!("{field}: {message}"),
                _ => message.to_owned(),
            })
        })
        .collect();
    let messages = if listed.is_empty() {
        ["error_description", "error", "message"]
            .iter()
            .find_map(|k| json.get(*k).and_then(Value::as_str))
            .unwrap_or("no details")
            .to_owned()
    } else {
        listed.join("; ")
    };
    (messages, correlation_id)
}

/// Why the answer to `GET .../jwks` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeysAnswerError {
    #[error("not JSON ({0})")]
    NotJson(String),
    #[error("`keys` is not a list")]
    NotAList,
    #[error("a key has no kid")]
    NoKid,
    #[error("key {kid:?} has exp {exp}, not epoch seconds")]
    BadExp { kid: String, exp: String },
}

/// The keys of a `GET .../jwks` answer; `keys` may be missing (no keys).
fn parse_keys(body: &str) -> Result<Vec<RegisteredKey>, KeysAnswerError> {
    let json: Value = serde_json::from_str(body).map_err(|e| KeysAnswerError::NotJson(e.to_string()))?;
    let Some(keys) = json.get("keys") else { return Ok(Vec::new()) };
    let keys = keys.as_array().ok_or(KeysAnswerError::NotAList)?;
    keys.iter()
        .map(|k| {
            let kid = k.get("kid").and_then(Value::as_str).ok_or(KeysAnswerError::NoKid)?.to_owned();
            let exp = match k.get("exp") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_i64()
                        .and_then(|s| DateTime::from_timestamp(s, 0))
                        .ok_or_else(|| KeysAnswerError::BadExp { kid: kid.clone(), exp: v.to_string() })?,
                ),
            };
            Ok(RegisteredKey { kid, exp, jwk: k.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digdir_errors_are_read_with_their_field_and_correlation_id() {
        let body = r#"{"status":400,"timestamp":"2026-11-29T10:00:00Z","correlation_id":"c-123",
            "errors":[{"errorMessage":"Too many keys","fieldIdentifier":"keys"}],
            "error":"invalid_request","error_description":"Too many keys"}"#;
        assert_eq!(digdir_error(body), ("keys: Too many keys".to_owned(), Some("c-123".to_owned())));
        let body = r#"{"error":"invalid_token","error_description":"expired"}"#;
        assert_eq!(digdir_error(body), ("expired".to_owned(), None));
        assert_eq!(digdir_error("<html>bad gateway</html>").0, "<html>bad gateway</html>");
        assert_eq!(digdir_error("").0, "no details");
    }

    #[test]
    fn a_get_answer_without_keys_is_an_empty_set_and_exp_is_epoch_seconds() {
        assert!(parse_keys(r#"{"created":"x","last_updated":"y"}"#).expect("empty").is_empty());
        let keys =
            parse_keys(r#"{"keys":[{"kid":"a","exp":1800000000,"kty":"RSA"},{"kid":"b"}]}"#).expect("keys");
        assert_eq!(keys[0].exp.map(|e| e.timestamp()), Some(1_800_000_000));
        assert_eq!(keys[1].exp, None);
        let e = parse_keys(r#"{"keys":[{"kid":"a","exp":"soon"}]}"#).unwrap_err();
        assert_eq!(e, KeysAnswerError::BadExp { kid: "a".to_owned(), exp: "\"soon\"".to_owned() });
        assert_eq!(e.to_string(), "key \"a\" has exp \"soon\", not epoch seconds");
        assert_eq!(parse_keys(r#"{"keys":[{"exp":1}]}"#), Err(KeysAnswerError::NoKid));
        assert_eq!(parse_keys(r#"{"keys":{}}"#), Err(KeysAnswerError::NotAList));
    }
}
