//! Tests of the fake Digdir, driven the way a client would drive Digdir: a plain `reqwest`
//! client that trusts the fake's CA, and grants signed here with aws-lc-rs. The clock is the
//! fake's settable one, so nothing sleeps.

mod api;
mod faults;
mod token;

use std::sync::LazyLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::fake::{BusinessCert, FakeDigdir, GRANT_TYPE};
use crate::support::at;

pub const ADMIN: &str = "admin-client";
pub const ADMIN_CN: &str = "ACME AS test business certificate";
pub const CLIENT: &str = "client-1";
pub const CLIENT_SCOPE: &str = "altinn:serviceowner";
pub const DCR_READ: &str = "idporten:dcr.read";
pub const DCR_WRITE: &str = "idporten:dcr.write";

pub fn t0() -> DateTime<Utc> {
    at("2026-11-21T12:00:00Z")
}

/// RSA keys made once for all tests (generating them is the slow part).
static KEYS: LazyLock<Vec<KeyPair>> =
    LazyLock::new(|| (0..7).map(|_| KeyPair::generate(KeySize::Rsa2048).expect("rsa key")).collect());

pub fn rsa(i: usize) -> &'static KeyPair {
    &KEYS[i]
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public JWK of `pair`, as a client posts it.
pub fn jwk(pair: &KeyPair, kid: &str) -> Value {
    let public = pair.public_key();
    json!({
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": kid,
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    })
}

/// A compact RS256 JWS of `header` and `claims`.
pub fn sign(pair: &KeyPair, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).expect("sign");
    format!("{input}.{}", b64(signature))
}

/// Valid grant claims for `client_id` asking for `scope`, at the fake's clock.
pub fn claims(fake: &FakeDigdir, client_id: &str, scope: &str) -> Value {
    let now = fake.now().timestamp();
    json!({
        "aud": fake.issuer(),
        "iss": client_id,
        "scope": scope,
        "iat": now,
        "exp": now + 120,
        "jti": jti(),
    })
}

/// A fresh random `jti`.
pub fn jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("random");
    b64(bytes)
}

/// A grant signed with a registered key.
pub fn kid_grant(pair: &KeyPair, kid: &str, claims: &Value) -> String {
    sign(pair, &json!({"alg": "RS256", "kid": kid}), claims)
}

/// A grant signed with a business certificate, carrying its chain in `x5c`.
pub fn x5c_grant(cert: &BusinessCert, claims: &Value) -> String {
    let pair = KeyPair::from_pkcs8(&cert.key_der).expect("business key");
    sign(&pair, &json!({"alg": "RS256", "x5c": cert.x5c}), claims)
}

/// A running fake at [`t0`] with an admin client (read and write) and an ordinary client,
/// and a `reqwest` client that trusts the fake's CA.
pub struct Setup {
    pub fake: FakeDigdir,
    pub http: reqwest::Client,
}

impl Setup {
    pub async fn new() -> Setup {
        let fake = FakeDigdir::start().await;
        fake.set_now(t0());
        fake.add_admin_client(ADMIN, ADMIN_CN, &[DCR_READ, DCR_WRITE]);
        fake.add_client(CLIENT, &[CLIENT_SCOPE]);
        let ca = reqwest::Certificate::from_pem(fake.ca_pem().as_bytes()).expect("ca");
        let http = reqwest::Client::builder().tls_certs_only([ca]).build().expect("http client");
        Setup { fake, http }
    }

    /// A business certificate for the admin client, valid around [`t0`].
    pub fn admin_certificate(&self) -> BusinessCert {
        self.fake.issue_business_certificate(
            ADMIN_CN,
            t0() - TimeDelta::days(30),
            t0() + TimeDelta::days(365),
        )
    }

    /// `POST /token` with `assertion`: (status, body).
    pub async fn token(&self, assertion: &str) -> (u16, Value) {
        read(self.post_form(&[("grant_type", GRANT_TYPE), ("assertion", assertion)]).await).await
    }

    /// `POST /token` with a form of `fields`, as `application/x-www-form-urlencoded`.
    pub async fn post_form(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let request =
            self.http.post(self.fake.token_url()).header("content-type", "application/x-www-form-urlencoded");
        request.body(body).send().await.expect("token request")
    }

    /// An access token for the admin client with `scope`.
    pub async fn admin_token(&self, scope: &str) -> String {
        let grant = x5c_grant(&self.admin_certificate(), &claims(&self.fake, ADMIN, scope));
        let (status, body) = self.token(&grant).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().expect("access_token").to_owned()
    }

    /// A request on `client_id`'s key set: (status, body, or `Null` for an empty body).
    pub async fn jwks(
        &self,
        method: &str,
        client_id: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("{}/api/v1/clients/{client_id}/jwks", self.fake.api_url());
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        read(request.send().await.expect("api request")).await
    }

    /// POSTs `keys` for `client_id` with a write token, expecting success.
    pub async fn register(&self, client_id: &str, keys: Vec<Value>) -> Value {
        let token = self.admin_token(DCR_WRITE).await;
        let (status, body) = self.jwks("POST", client_id, Some(&token), Some(&json!({"keys": keys}))).await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
    (status, body)
}

/// The Digdir API error shape, and its first field error's identifier.
pub fn assert_api_error(body: &Value, status: u16) -> Option<String> {
    assert_eq!(body["status"], status, "{body}");
    for member in ["timestamp", "correlation_id", "error", "error_description"] {
        assert!(body[member].is_string(), "{member} in {body}");
    }
    let errors = body["errors"].as_array().expect("errors array");
    errors.first().map(|e| {
        assert!(e["errorMessage"].is_string(), "{body}");
        e["fieldIdentifier"].as_str().expect("fieldIdentifier").to_owned()
    })
}

/// A token-endpoint refusal: `error`, the MP code in `error_uri` (if any), and the
/// description without its trace id.
pub fn refusal(body: &Value) -> (String, Option<String>, String) {
    let error = body["error"].as_str().expect("error").to_owned();
    let code = body["error_uri"].as_str().map(|uri| uri.rsplit('/').next().unwrap_or_default().to_owned());
    let description = body["error_description"].as_str().expect("error_description");
    let (text, trace) = description.split_once(" (trace_id: ").expect("a trace id");
    assert!(trace.ends_with(')') && trace.len() == 33, "{description}");
    (error, code, text.to_owned())
}
