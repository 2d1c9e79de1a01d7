//! The fake's HTTP side: `POST /token` and `/api/v1/clients/{client_id}/jwks` on one
//! router, behind a layer that injects outages, failures and throttling and logs every
//! request.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::errors::{Refusal, api_error, token_endpoint_error};
use super::grant::GRANT_TYPE;
use super::model::RequestRecord;
use super::{FakeDigdir, api};

const JWKS_PATH: &str = "/api/v1/clients/{client_id}/jwks";

pub fn router(fake: FakeDigdir) -> Router {
    Router::new()
        .route("/token", post(token))
        .route(JWKS_PATH, get(jwks).post(jwks).put(jwks).delete(jwks))
        .layer(middleware::from_fn_with_state(fake.clone(), faults_and_log))
        .with_state(fake)
}

/// The client a response was about, for the request log.
#[derive(Clone)]
struct AboutClient(String);

/// `POST /token` (`maskinporten_protocol_token`): a form with `grant_type` and `assertion`.
async fn token(State(fake): State<FakeDigdir>, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let issuer = fake.issuer();
    let answer = match (field("grant_type"), field("assertion")) {
        (Some(GRANT_TYPE), Some(assertion)) => fake.judge(assertion).map_err(|r| r.body(&issuer)),
        (Some(GRANT_TYPE), None) => Err(Refusal::parameter("no assertion").body(&issuer)),
        (other, _) => {
            let description = format!("Unsupported grant type {}", other.unwrap_or("(none)"));
            Err(token_endpoint_error("unsupported_grant_type", &description))
        }
    };
    let mut response = match answer {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(body) => json_response(StatusCode::BAD_REQUEST, &body),
    };
    response.headers_mut().insert("cache-control", HeaderValue::from_static("no-store"));
    if let Some(iss) = field("assertion").and_then(unverified_issuer) {
        response.extensions_mut().insert(AboutClient(iss));
    }
    response
}

/// The `iss` of an assertion, unverified, for the log.
fn unverified_issuer(assertion: &str) -> Option<String> {
    let claims = assertion.split('.').nth(1)?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some(claims["iss"].as_str()?.to_owned())
}

async fn jwks(
    State(fake): State<FakeDigdir>,
    Path(client_id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer =
        headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let answer = api::handle(&mut fake.state(), method.as_str(), &client_id, bearer, &body);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &answer.body {
        Some(body) => json_response(status, body),
        None => status.into_response(),
    };
    if answer.challenge {
        let challenge = HeaderValue::from_static(r#"Bearer error="invalid_token""#);
        response.headers_mut().insert("www-authenticate", challenge);
    }
    response.extensions_mut().insert(AboutClient(client_id));
    response
}

/// Answers for the fake being down or for injected faults before the request reaches its
/// handler, and logs every request with its status.
async fn faults_and_log(State(fake): State<FakeDigdir>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = match fault(&fake, &path) {
        Some(response) => response,
        None => next.run(request).await,
    };
    let client_id =
        response.extensions().get::<AboutClient>().map(|c| c.0.clone()).or_else(|| client_in_path(&path));
    let status = response.status().as_u16();
    fake.state().requests.push(RequestRecord { method, path, client_id, status });
    response
}

fn fault(fake: &FakeDigdir, path: &str) -> Option<Response> {
    let mut registry = fake.state();
    let (status, retry_after) = if registry.faults.down {
        (503, None)
    } else {
        let injected = registry.faults.take_injected(path)?;
        (injected.status, injected.retry_after)
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let reason = status.canonical_reason().unwrap_or("failure");
    let body = if path == "/token" {
        let error =
            if status == StatusCode::TOO_MANY_REQUESTS { "temporarily_unavailable" } else { "server_error" };
        token_endpoint_error(error, reason)
    } else {
        api_error(status.as_u16(), "server_error", reason, &[], registry.now())
    };
    let mut response = json_response(status, &body);
    if let Some(seconds) = retry_after {
        response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
    }
    Some(response)
}

fn client_in_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v1/clients/")?;
    Some(rest.split('/').next()?.to_owned())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/json;charset=UTF-8"));
    response
}
