//! Maskinporten's token endpoint (docs.digdir.no `maskinporten_protocol_token`): a JWT grant in,
//! an access token out. Network errors, 429 and 5xx are tried again with a freshly signed grant;
//! a refusal is read for Digdir's MP code and told with what to do about it. `AdminTokens`
//! keeps the admin client's token for the self-service API.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;
use zeroize::Zeroizing;

use super::admin::AdminCredential;
use super::http::{Retry, describe, retry_after, retryable_error, retryable_status};
use super::jwt::{self, AdminAuth, GrantClaims, JwtError};

/// The grant type of a JWT grant (RFC 7523 2.1).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An access token. `Debug` does not show it; [`AccessToken::secret`] does. Zeroed when dropped.
#[derive(Clone)]
pub struct AccessToken(Zeroizing<String>);

impl AccessToken {
    /// Wraps a token as the token endpoint issued it.
    pub fn new(token: String) -> Self {
        AccessToken(Zeroizing::new(token))
    }

    /// The token itself, for an `Authorization: Bearer` header and nothing else.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// What the token endpoint granted.
#[derive(Debug, Clone)]
pub struct Granted {
    pub access_token: AccessToken,
    /// Seconds until the token expires, from when it was issued.
    pub expires_in: u64,
    /// The scopes granted, separated by spaces ("should not be trusted for access control").
    pub scope: String,
    /// `Bearer`.
    pub token_type: String,
}

/// What a refusal means, read from Digdir's MP code or, without one, its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalKind {
    /// "Unknown key identifier (kid) for client": not registered, or not propagated yet.
    UnknownKid,
    /// MP-121: the registered key has expired.
    ExpiredKey,
    /// MP-130 (expired JWT) or a complaint about `iat`/`exp`: the clocks disagree.
    ClockSkew,
    /// MP-012: the grant's `jti` was used before.
    ReusedJti,
    /// MP-124: the signature does not verify with the registered key.
    BadSignature,
    Other,
}

impl RefusalKind {
    /// Reads Digdir's `error_description` and its MP code (from `error_uri`, or the text).
    pub(crate) fn classify(description: &str, code: Option<&str>) -> RefusalKind {
        match code {
            Some("MP-121") => return RefusalKind::ExpiredKey,
            Some("MP-124") => return RefusalKind::BadSignature,
            Some("MP-012") => return RefusalKind::ReusedJti,
            Some("MP-130") => return RefusalKind::ClockSkew,
            _ => {}
        }
        let text = description.to_ascii_lowercase();
        let words: Vec<&str> = text.split(|c: char| !c.is_ascii_alphanumeric()).collect();
        let word = |w: &str| words.contains(&w);
        if text.contains("unknown key identifier") || text.contains("not registered") {
            RefusalKind::UnknownKid
        } else if text.contains("used before") || word("jti") {
            RefusalKind::ReusedJti
        } else if text.contains("signature") {
            RefusalKind::BadSignature
        } else if word("iat")
            || word("exp")
            || text.contains("jwt is expired")
            || text.contains("expired jwt")
            || text.contains("issue time is after now")
        {
            RefusalKind::ClockSkew
        } else if text.contains("expired") && word("key") {
            RefusalKind::ExpiredKey
        } else {
            RefusalKind::Other
        }
    }

    /// What the operator should do.
    pub(crate) fn hint(self) -> &'static str {
        match self {
            RefusalKind::UnknownKid => {
                "the key's kid is not registered on this client, or the change has not reached \
                 Maskinporten yet (Digdir documents 0-2 minutes): publish the key set, wait a few \
                 minutes and try again; check too that the client id (iss) is the one the key is \
                 registered on"
            }
            RefusalKind::ExpiredKey => {
                "the registered key has expired (Maskinporten keeps a key at most a year after it \
                 was posted): rotate to a new key, or post the key set again to renew it"
            }
            RefusalKind::ClockSkew => {
                "this machine's clock differs from Maskinporten's by more than 10 seconds (a grant's \
                 iat must be within 10 s of Digdir's clock): fix the time sync (NTP) and try again"
            }
            RefusalKind::ReusedJti => {
                "the grant (its jti) was used before; every try signs a new grant, so this points to \
                 a replayed request: try again"
            }
            RefusalKind::BadSignature => {
                "the signature does not verify with the public key registered under this kid: the \
                 private key does not match the published one; publish the key set from the store \
                 again, or rotate"
            }
            RefusalKind::Other => {
                "see Digdir's troubleshooting page (docs.digdir.no, maskinporten_feilsoking)"
            }
        }
    }
}

/// Why no token was granted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GrantError {
    /// Maskinporten answered with an OAuth error (4xx).
    #[error("Maskinporten refused the grant (HTTP {status} {error}{}): {description}. What to do: {}", code_suffix(.code), .kind.hint())]
    Refused { status: u16, error: String, description: String, code: Option<String>, kind: RefusalKind },
    /// No answer worth having after every retry, or a request that could not be sent.
    #[error("Maskinporten's token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// An answer this client does not understand.
    #[error("Maskinporten's token endpoint gave an answer this tool does not understand: {0}")]
    Protocol(String),
    /// The grant could not be signed.
    #[error(transparent)]
    Jwt(#[from] JwtError),
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(", {c}")).unwrap_or_default()
}

/// The first `MP-<digits>` in Digdir's text.
pub(crate) fn mp_code(text: &str) -> Option<String> {
    text.match_indices("MP-").find_map(|(at, _)| {
        let digits: String = text[at + 3..].chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty()).then(|| format!("MP-{digits}"))
    })
}

/// One environment's token endpoint.
#[derive(Debug, Clone)]
pub(crate) struct TokenEndpoint {
    http: reqwest::Client,
    token_url: Url,
    issuer: String,
    retry: Retry,
}

/// What one try came to.
enum Attempt {
    Done(Result<Granted, GrantError>),
    Again { reason: String, retry_after: Option<std::time::Duration> },
}

impl TokenEndpoint {
    /// The endpoint at `token_url` of the Maskinporten whose issuer (the `aud` of grants) is
    /// `issuer`, for example `https://test.maskinporten.no/token` and `https://test.maskinporten.no/`.
    pub(crate) fn new(
        http: reqwest::Client,
        token_url: Url,
        issuer: impl Into<String>,
        retry: Retry,
    ) -> Self {
        TokenEndpoint { http, token_url, issuer: issuer.into(), retry }
    }

    /// Maskinporten's issuer: the `aud` of every grant.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Asks for a token with a grant from `assertion`, which is called once per try with the
    /// time to sign with: `now`, plus the time spent on earlier tries (a grant is single use, so
    /// a retry needs a new one, and its `iat` must stay within 10 s of Maskinporten's clock).
    pub(crate) async fn grant(
        &self,
        now: DateTime<Utc>,
        assertion: impl Fn(DateTime<Utc>) -> Result<String, JwtError>,
    ) -> Result<Granted, GrantError> {
        let started = tokio::time::Instant::now();
        let mut last = String::new();
        for attempt in 0..=self.retry.max_retries {
            let iat = now + TimeDelta::from_std(started.elapsed()).unwrap_or_default();
            let grant = Zeroizing::new(assertion(iat)?);
            match self.attempt(&grant).await {
                Attempt::Done(result) => return result,
                Attempt::Again { reason, retry_after } => {
                    tracing::warn!(url = %self.token_url, attempt = attempt + 1, %reason, "token request failed");
                    if attempt < self.retry.max_retries {
                        tokio::time::sleep(self.retry.delay_after(attempt, retry_after)).await;
                    }
                    last = reason;
                }
            }
        }
        let tries = self.retry.max_retries + 1;
        Err(GrantError::Unavailable(format!(
            "{}: no token after {tries} tries; the last: {last}",
            self.token_url
        )))
    }

    async fn attempt(&self, grant: &str) -> Attempt {
        let form = Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", JWT_BEARER)
                .append_pair("assertion", grant)
                .finish(),
        );
        let request = self
            .http
            .post(self.token_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.as_str().to_owned());
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if retryable_error(&e) => {
                return Attempt::Again { reason: describe(&e), retry_after: None };
            }
            Err(e) => return Attempt::Done(Err(self.unsendable(&e))),
        };
        let (status, retry_after) = (response.status(), retry_after(response.headers()));
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Attempt::Again { reason: describe(&e), retry_after: None },
        };
        if status.is_success() {
            Attempt::Done(granted(&body))
        } else if retryable_status(status) {
            Attempt::Again { reason: format!("HTTP {status}: {}", excerpt(&body)), retry_after }
        } else {
            Attempt::Done(Err(refusal(status, &body)))
        }
    }

    fn unsendable(&self, e: &reqwest::Error) -> GrantError {
        GrantError::Unavailable(format!("{}: the request could not be sent: {}", self.token_url, describe(e)))
    }
}

/// The token answer; `Option`s so that a missing member is named rather than failing the parse.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<Zeroizing<String>>,
    expires_in: Option<u64>,
    scope: Option<String>,
    token_type: Option<String>,
}

/// Reads a 2xx answer. Messages never quote it: it may hold a token.
fn granted(body: &[u8]) -> Result<Granted, GrantError> {
    let protocol = |what: &str| GrantError::Protocol(format!("the token answer {what}"));
    let answer: TokenAnswer = serde_json::from_slice(body)
        .map_err(|_| protocol("is not JSON with access_token, expires_in, scope and token_type"))?;
    let token =
        answer.access_token.filter(|t| !t.is_empty()).ok_or_else(|| protocol("has no access_token"))?;
    let expires_in = answer.expires_in.ok_or_else(|| protocol("has no expires_in (seconds)"))?;
    Ok(Granted {
        access_token: AccessToken(token),
        expires_in,
        scope: answer.scope.unwrap_or_default(),
        token_type: answer.token_type.unwrap_or_else(|| "Bearer".to_owned()),
    })
}

/// Reads a 4xx answer: an OAuth error (`error`, `error_description`), else a protocol error.
/// Maskinporten names the MP code in `error_uri` (`https://maskinporten.no/errors/MP-121`,
/// `maskinporten_feilsoking`, "Format"); a code in the text is read too.
fn refusal(status: StatusCode, body: &[u8]) -> GrantError {
    #[derive(Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
        error_uri: Option<String>,
    }
    match serde_json::from_slice::<OAuthError>(body) {
        Ok(OAuthError { error: Some(error), error_description, error_uri }) => {
            let description = error_description.unwrap_or_default();
            let code = mp_code(&description).or_else(|| error_uri.as_deref().and_then(mp_code));
            let kind = RefusalKind::classify(&description, code.as_deref());
            GrantError::Refused { status: status.as_u16(), error, description, code, kind }
        }
        _ => GrantError::Protocol(format!("HTTP {status} without an OAuth error: {}", excerpt(body))),
    }
}

/// At most 200 characters of an error answer, on one line.
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "(empty body)".to_owned();
    }
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// The admin client's access token for Digdir's self-service API, fetched with a grant signed
/// by the business certificate and kept until a minute before it expires.
#[derive(Debug)]
pub(crate) struct AdminTokens {
    endpoint: TokenEndpoint,
    credential: Arc<AdminCredential>,
    /// `x5c` or `kid` in the grant's header.
    auth: AdminAuth,
    client_id: String,
    scopes: Vec<String>,
    cache: Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    token: AccessToken,
    expires_at: DateTime<Utc>,
}

/// A cached token is fetched again this long before it expires.
const REFRESH_BEFORE: TimeDelta = TimeDelta::seconds(60);

impl AdminTokens {
    /// Tokens for the admin client `client_id` with `scopes` (typically `idporten:dcr.read` and
    /// `idporten:dcr.write`), from `endpoint`, with grants signed by `credential` that name it
    /// as `auth` says.
    pub(crate) fn new(
        endpoint: TokenEndpoint,
        credential: Arc<AdminCredential>,
        auth: AdminAuth,
        client_id: impl Into<String>,
        scopes: Vec<String>,
    ) -> Self {
        AdminTokens {
            endpoint,
            credential,
            auth,
            client_id: client_id.into(),
            scopes,
            cache: Mutex::new(None),
        }
    }

    /// The business certificate the grants are signed with.
    #[cfg(test)]
    pub(crate) fn certificate(&self) -> &AdminCredential {
        &self.credential
    }

    /// Drops the cached token, so that the next call fetches a new one (after a 401: Digdir
    /// may have revoked it).
    pub(crate) async fn forget(&self) {
        *self.cache.lock().await = None;
    }

    /// A token valid at `now` for at least another minute: the cached one, or a new one.
    /// Concurrent callers wait for one fetch rather than each making their own.
    pub(crate) async fn token(&self, now: DateTime<Utc>) -> Result<AccessToken, GrantError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref().filter(|c| now < c.expires_at - REFRESH_BEFORE) {
            return Ok(cached.token.clone());
        }
        let scope = self.scopes.join(" ");
        let granted = self
            .endpoint
            .grant(now, |iat| {
                let claims = GrantClaims {
                    iss: &self.client_id,
                    aud: self.endpoint.issuer(),
                    scope: &scope,
                    now: iat,
                };
                jwt::admin_grant(&self.credential, &self.auth, &claims)
            })
            .await?;
        let lifetime = TimeDelta::try_seconds(i64::try_from(granted.expires_in).unwrap_or(i64::MAX));
        let expires_at = lifetime.and_then(|d| now.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC);
        *cache = Some(Cached { token: granted.access_token.clone(), expires_at });
        Ok(granted.access_token)
    }
}

#[cfg(test)]
mod tests;
