//! The token endpoint client against an in-process fake Maskinporten that checks the form and
//! answers from a script; grants are checked against the public key, not the signing code.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;
use crate::jwk::PrivateJwk;
use crate::maskinporten::http::http_client;
use crate::maskinporten::jwt::check;
use crate::testing::{FIXTURE_KEYS, at};

const ISSUER: &str = "https://test.maskinporten.no/";

struct Reply {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply { status, headers: Vec::new(), body: body.into() }
}

fn token_reply(token: &str, expires_in: u64) -> Reply {
    let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "scope": "altinn:serviceowner"});
    reply(200, body.to_string())
}

fn digdir_error(description: &str) -> Reply {
    reply(400, json!({"error": "invalid_grant", "error_description": description}).to_string())
}

/// A request as the fake saw it.
struct Seen {
    content_type: String,
    form: HashMap<String, String>,
}

#[derive(Clone)]
struct Fake {
    replies: Arc<StdMutex<VecDeque<Reply>>>,
    seen: Arc<StdMutex<Vec<Seen>>>,
}

impl Fake {
    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The assertions posted, in order, after checking each request's form.
    fn assertions(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .map(|s| {
                assert_eq!(s.content_type, "application/x-www-form-urlencoded");
                assert_eq!(s.form.len(), 2, "grant_type and assertion only");
                assert_eq!(s.form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
                s.form["assertion"].clone()
            })
            .collect()
    }
}

async fn answer(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    let content_type =
        headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let form = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    fake.seen.lock().unwrap().push(Seen { content_type, form });
    let next = fake.replies.lock().unwrap().pop_front().unwrap_or_else(|| reply(500, "no more replies"));
    let mut response = (StatusCode::from_u16(next.status).unwrap(), next.body).into_response();
    for (name, value) in next.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A fake token endpoint on a free local port that answers with `replies` in turn.
async fn fake(replies: Vec<Reply>) -> (Url, Fake) {
    let fake = Fake { replies: Arc::new(StdMutex::new(replies.into())), seen: Arc::default() };
    let app = axum::Router::new().route("/token", axum::routing::post(answer)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

fn fast_retry() -> Retry {
    Retry { initial_delay: Duration::from_millis(1), max_delay: Duration::from_millis(5), max_retries: 3 }
}

fn endpoint(url: Url, retry: Retry) -> TokenEndpoint {
    TokenEndpoint::new(http_client(None).unwrap(), url, ISSUER, retry)
}

fn client_key() -> PrivateJwk {
    let key = PrivateJwk::from_base64(FIXTURE_KEYS.lines().next().unwrap()).unwrap();
    key.relabel("testklient-TEST.2024-07-10".parse().unwrap(), crate::policy::Algorithm::RS256)
}

fn now() -> DateTime<Utc> {
    at("2025-03-01T12:00:00Z")
}

/// A grant with the client key, as `verify` makes one.
async fn client_grant(endpoint: &TokenEndpoint, key: &PrivateJwk) -> Result<Granted, GrantError> {
    endpoint
        .grant(now(), |iat| {
            let claims = GrantClaims {
                iss: "3f1c-client",
                aud: endpoint.issuer(),
                scope: "altinn:serviceowner",
                now: iat,
            };
            jwt::client_grant(key, &claims)
        })
        .await
}

#[tokio::test]
async fn a_granted_token_comes_back_for_a_signed_grant_in_the_form() {
    let (url, fake) = fake(vec![token_reply("eyJ.token.value", 119)]).await;
    let key = client_key();
    let granted = client_grant(&endpoint(url, fast_retry()), &key).await.unwrap();
    assert_eq!(granted.access_token.secret(), "eyJ.token.value");
    assert_eq!(
        (granted.expires_in, granted.scope.as_str(), granted.token_type.as_str()),
        (119, "altinn:serviceowner", "Bearer")
    );
    let assertions = fake.assertions();
    assert_eq!(assertions.len(), 1);
    let (header, claims) = check::with_jwk(&assertions[0], &key);
    assert_eq!(header["kid"], "testklient-TEST.2024-07-10");
    assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some("3f1c-client"), Some(ISSUER)));
    assert_eq!(claims["iat"], now().timestamp());
}

#[tokio::test]
async fn an_unknown_kid_is_refused_once_and_told_as_not_registered_or_not_propagated() {
    let text = "Invalid assertion. Client authentication failed. Unknown key identifier (kid) for client 3f1c-client. (correlation id: 023510ad)";
    let (url, fake) = fake(vec![digdir_error(text)]).await;
    let e = client_grant(&endpoint(url, fast_retry()), &client_key()).await.unwrap_err();
    let GrantError::Refused { status, error, description, code, kind } = &e else { panic!("{e}") };
    assert_eq!((*status, error.as_str(), description.as_str()), (400, "invalid_grant", text));
    assert_eq!((code, kind), (&None, &RefusalKind::UnknownKid));
    let shown = e.to_string();
    assert!(
        shown.starts_with("Maskinporten refused the grant (HTTP 400 invalid_grant): Invalid assertion."),
        "{shown}"
    );
    assert!(shown.contains("0-2 minutes"), "{shown}");
    assert_eq!(fake.requests(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn an_expired_key_is_told_by_its_mp_code() {
    let (url, _) =
        fake(vec![digdir_error("Invalid assertion. Client authentication failed. (MP-121) Key is expired")])
            .await;
    let e = client_grant(&endpoint(url, fast_retry()), &client_key()).await.unwrap_err();
    assert!(
        matches!(&e, GrantError::Refused { code: Some(c), kind: RefusalKind::ExpiredKey, .. } if c == "MP-121"),
        "{e}"
    );
    let shown = e.to_string();
    assert!(shown.contains("(HTTP 400 invalid_grant, MP-121): Invalid assertion."), "{shown}");
    assert!(shown.contains("rotate"), "{shown}");
}

/// Maskinporten puts the MP code in `error_uri`, not in the text (`maskinporten_feilsoking`).
#[tokio::test]
async fn the_mp_code_is_read_from_error_uri() {
    let body = json!({
        "error": "invalid_grant",
        "error_description": "Invalid assertion. Client authentication failed. Expired key. (trace_id: 3566ab)",
        "error_uri": "https://maskinporten.no/errors/MP-121",
    });
    let (url, _) = fake(vec![reply(400, body.to_string())]).await;
    let e = client_grant(&endpoint(url, fast_retry()), &client_key()).await.unwrap_err();
    assert!(
        matches!(&e, GrantError::Refused { code: Some(c), kind: RefusalKind::ExpiredKey, .. } if c == "MP-121"),
        "{e}"
    );
    assert!(e.to_string().contains("(HTTP 400 invalid_grant, MP-121): Invalid assertion."), "{e}");
}

#[tokio::test]
async fn a_503_is_retried_with_a_newly_signed_grant() {
    let (url, fake) = fake(vec![reply(503, "busy"), token_reply("second", 120)]).await;
    let key = client_key();
    let granted = client_grant(&endpoint(url, fast_retry()), &key).await.unwrap();
    assert_eq!(granted.access_token.secret(), "second");
    let claims: Vec<Value> = fake.assertions().iter().map(|a| check::with_jwk(a, &key).1).collect();
    assert_eq!(claims.len(), 2);
    assert_ne!(claims[0]["jti"], claims[1]["jti"], "a grant is single use");
    assert!(claims[1]["iat"].as_i64() >= claims[0]["iat"].as_i64());
}

#[tokio::test]
async fn a_429_waits_as_retry_after_says_up_to_max_delay() {
    let mut busy = reply(429, "slow down");
    busy.headers.push(("retry-after", "1"));
    let (url, fake) = fake(vec![busy, token_reply("after-wait", 120)]).await;
    let retry = Retry { max_delay: Duration::from_millis(60), ..fast_retry() };
    let started = std::time::Instant::now();
    let granted = client_grant(&endpoint(url, retry), &client_key()).await.unwrap();
    assert_eq!(granted.access_token.secret(), "after-wait");
    assert!(started.elapsed() >= Duration::from_millis(60), "waited {:?}", started.elapsed());
    assert_eq!(fake.requests(), 2);
}

#[tokio::test]
async fn endless_5xx_end_as_unavailable_naming_the_url_tries_and_last_answer() {
    let (url, fake) = fake(vec![]).await;
    let e = client_grant(&endpoint(url.clone(), fast_retry()), &client_key()).await.unwrap_err();
    let GrantError::Unavailable(text) = &e else { panic!("{e}") };
    assert!(text.starts_with(&format!("{url}: no token after 4 tries; the last: HTTP 500")), "{text}");
    assert!(text.contains("no more replies"), "{text}");
    assert_eq!(fake.requests(), 4);
}

#[tokio::test]
async fn a_closed_port_is_retried_then_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let e = client_grant(&endpoint(url, fast_retry()), &client_key()).await.unwrap_err();
    assert!(matches!(&e, GrantError::Unavailable(t) if t.contains("no token after 4 tries")), "{e}");
}

#[tokio::test]
async fn garbage_answers_are_protocol_errors_that_never_quote_a_token() {
    let (url, _) = fake(vec![reply(200, "<html>not json</html>")]).await;
    let e = client_grant(&endpoint(url, fast_retry()), &client_key()).await.unwrap_err();
    assert!(matches!(&e, GrantError::Protocol(t) if t.contains("is not JSON")), "{e}");

    let no_expiry = reply(200, json!({"access_token": "SECRET-TOKEN", "expires_in": "soon"}).to_string());
    let missing = reply(200, json!({"access_token": "SECRET-TOKEN"}).to_string());
    let (url, _) = fake(vec![no_expiry, missing]).await;
    let ep = endpoint(url, fast_retry());
    for _ in 0..2 {
        let e = client_grant(&ep, &client_key()).await.unwrap_err();
        assert!(matches!(e, GrantError::Protocol(_)), "{e}");
        assert!(!format!("{e} {e:?}").contains("SECRET-TOKEN"), "{e}");
    }

    let long_html = format!("<html>{}</html>", "x".repeat(500));
    let (url, _) = fake(vec![reply(400, long_html)]).await;
    let e = client_grant(&endpoint(url, fast_retry()), &client_key()).await.unwrap_err();
    let GrantError::Protocol(text) = &e else { panic!("{e}") };
    assert!(text.starts_with("HTTP 400 Bad Request without an OAuth error: <html>xxx"), "{text}");
    assert!(text.len() < 260, "{text}");
}

#[test]
fn an_access_token_never_shows_in_debug() {
    let granted = Granted {
        access_token: AccessToken::new("SECRET-TOKEN".to_owned()),
        expires_in: 1,
        scope: String::new(),
        token_type: "Bearer".to_owned(),
    };
    assert!(!format!("{granted:?}").contains("SECRET-TOKEN"));
    assert_eq!(format!("{:?}", granted.access_token), "AccessToken(<redacted>)");
}

#[test]
fn refusals_are_read_by_mp_code_first_then_by_text() {
    let cases = [
        (
            "Invalid assertion. Client authentication failed. Unknown key identifier (kid) for client x",
            RefusalKind::UnknownKid,
        ),
        ("the kid is not registered", RefusalKind::UnknownKid),
        ("something MP-121 something", RefusalKind::ExpiredKey),
        ("MP-124 Invalid signature", RefusalKind::BadSignature),
        ("MP-012 jti reused", RefusalKind::ReusedJti),
        ("MP-130 expired JWT", RefusalKind::ClockSkew),
        ("Grant is used before", RefusalKind::ReusedJti),
        ("JWT is expired", RefusalKind::ClockSkew),
        ("Invalid JWT claim iat: issued in the future", RefusalKind::ClockSkew),
        ("The key has expired", RefusalKind::ExpiredKey),
        ("Invalid assertion. Client authentication failed. Invalid JWT claim aud", RefusalKind::Other),
        ("Token request contains invalid scopes for client", RefusalKind::Other),
    ];
    for (text, kind) in cases {
        assert_eq!(RefusalKind::classify(text, mp_code(text).as_deref()), kind, "{text}");
    }
    assert_eq!(mp_code("a (MP-121) b MP-124"), Some("MP-121".to_owned()));
    assert_eq!(mp_code("MP- and MP-x"), None);
}

#[test]
fn a_clock_skew_refusal_says_to_fix_ntp() {
    let e = GrantError::Refused {
        status: 400,
        error: "invalid_grant".to_owned(),
        description: "expired JWT (MP-130)".to_owned(),
        code: Some("MP-130".to_owned()),
        kind: RefusalKind::ClockSkew,
    };
    let shown = e.to_string();
    assert!(shown.contains("more than 10 seconds") && shown.contains("NTP"), "{shown}");
}

fn admin_credential() -> Arc<AdminCredential> {
    let der = include_bytes!("../../../tests/data/admin/business-aes.p12");
    Arc::new(AdminCredential::from_pkcs12(der, "fixture-password").unwrap())
}

fn admin_tokens(url: Url) -> AdminTokens {
    let scopes = vec!["idporten:dcr.read".to_owned(), "idporten:dcr.write".to_owned()];
    AdminTokens::new(endpoint(url, fast_retry()), admin_credential(), AdminAuth::X5c, "admin-client", scopes)
}

#[tokio::test]
async fn the_admin_token_is_kept_until_a_minute_before_it_expires() {
    let (url, fake) = fake(vec![token_reply("first", 120), token_reply("second", 120)]).await;
    let tokens = admin_tokens(url);
    assert_eq!(tokens.token(now()).await.unwrap().secret(), "first");
    assert_eq!(tokens.token(now() + TimeDelta::seconds(59)).await.unwrap().secret(), "first");
    assert_eq!(fake.requests(), 1, "the cached token is still good for over a minute");
    assert_eq!(tokens.token(now() + TimeDelta::seconds(60)).await.unwrap().secret(), "second");
    assert_eq!(fake.requests(), 2);

    let assertions = fake.assertions();
    let (header, claims) = check::with_x5c(&assertions[0]);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["iss"], "admin-client");
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["scope"], "idporten:dcr.read idporten:dcr.write");
    assert_eq!(claims["iat"], now().timestamp());
    assert_eq!(check::with_x5c(&assertions[1]).1["iat"], (now() + TimeDelta::seconds(60)).timestamp());
    assert!(tokens.certificate().subject().contains("TEST BUSINESS CERT"));
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let (url, fake) = fake(vec![token_reply("only", 600), token_reply("extra", 600)]).await;
    let tokens = admin_tokens(url);
    let (a, b, c) = tokio::join!(tokens.token(now()), tokens.token(now()), tokens.token(now()));
    for t in [a, b, c] {
        assert_eq!(t.unwrap().secret(), "only");
    }
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn an_admin_refusal_is_not_cached() {
    let (url, fake) = fake(vec![digdir_error("Client not found"), token_reply("later", 120)]).await;
    let tokens = admin_tokens(url);
    assert!(matches!(tokens.token(now()).await, Err(GrantError::Refused { kind: RefusalKind::Other, .. })));
    assert_eq!(tokens.token(now()).await.unwrap().secret(), "later");
    assert_eq!(fake.requests(), 2);
}
