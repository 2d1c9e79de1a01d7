//! Faults tests switch on: outages, injected failures, throttling, a read-back that misses a
//! key, a person editing keys between our GET and POST, and keys added outside the API; and
//! the request log that shows what a client did.

use chrono::TimeDelta;
use serde_json::json;

use super::*;
use crate::maskinporten::fake::RequestRecord;

#[tokio::test]
async fn down_answers_503_everywhere_until_it_is_up() {
    let s = Setup::new().await;
    let token = s.admin_token(DCR_READ).await;
    s.fake.set_down(true);
    let (status, body) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(status, 503);
    assert_api_error(&body, 503);
    let (status, body) = s.token("anything").await;
    assert_eq!((status, body["error"].as_str()), (503, Some("server_error")));
    s.fake.set_down(false);
    assert_eq!(s.jwks("GET", CLIENT, Some(&token), None).await.0, 404);
}

#[tokio::test]
async fn connection_resets_break_new_and_kept_alive_connections() {
    let s = Setup::new().await;
    let token = s.admin_token(DCR_READ).await;
    s.fake.set_connection_reset(true);
    let url = format!("{}/api/v1/clients/{CLIENT}/jwks", s.fake.api_url());
    let kept_alive = s.http.get(&url).bearer_auth(&token).send().await;
    assert!(kept_alive.is_err(), "{kept_alive:?}");
    let ca = reqwest::Certificate::from_pem(s.fake.ca_pem().as_bytes()).expect("ca");
    let fresh = reqwest::Client::builder().tls_certs_only([ca]).build().expect("client");
    assert!(fresh.get(&url).bearer_auth(&token).send().await.is_err());
    s.fake.set_connection_reset(false);
    assert_eq!(fresh.get(&url).bearer_auth(&token).send().await.expect("up again").status().as_u16(), 404);
}

#[tokio::test]
async fn fail_next_answers_the_status_that_many_times() {
    let s = Setup::new().await;
    let token = s.admin_token(DCR_READ).await;
    s.fake.fail_next(2, 502);
    assert_eq!(s.jwks("GET", CLIENT, Some(&token), None).await.0, 502);
    assert_eq!(s.token("anything").await.0, 502);
    assert_eq!(s.jwks("GET", CLIENT, Some(&token), None).await.0, 404);
    s.fake.fail_next_on("/token", 1, 500);
    assert_eq!(s.jwks("GET", CLIENT, Some(&token), None).await.0, 404, "only /token fails");
    assert_eq!(s.token("anything").await.0, 500);
}

#[tokio::test]
async fn throttled_requests_get_429_with_retry_after() {
    let s = Setup::new().await;
    s.fake.throttle_next(1, 7);
    let response = s
        .http
        .get(format!("{}/api/v1/clients/{CLIENT}/jwks", s.fake.api_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(s.jwks("GET", CLIENT, None, None).await.0, 401, "then as usual");
}

#[tokio::test]
async fn a_dropped_kid_is_missing_from_get_but_stays_registered() {
    let s = Setup::new().await;
    s.register(CLIENT, vec![jwk(rsa(0), "kept"), jwk(rsa(1), "dropped")]).await;
    s.fake.drop_from_readback("dropped");
    let token = s.admin_token(DCR_READ).await;
    let (_, body) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(body["keys"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["keys"][0]["kid"], "kept");
    assert_eq!(s.fake.registered_keys(CLIENT).len(), 2);
    let grant = kid_grant(rsa(1), "dropped", &claims(&s.fake, CLIENT, CLIENT_SCOPE));
    assert_eq!(s.token(&grant).await.0, 200, "the token endpoint still knows it");
}

#[tokio::test]
async fn an_edit_lands_right_after_the_next_get() {
    let s = Setup::new().await;
    s.register(CLIENT, vec![jwk(rsa(0), "ours")]).await;
    s.fake.add_after_next_get(CLIENT, &jwk(rsa(1), "theirs"));
    let token = s.admin_token(DCR_READ).await;
    let kids = |body: &serde_json::Value| -> Vec<String> {
        body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    };
    let (_, first) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(kids(&first), ["ours"], "the GET saw the set before the edit");
    s.fake.edit_after_next_get(CLIENT, |keys| keys.retain(|k| k.kid != "ours"));
    let (_, second) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(kids(&second), ["ours", "theirs"]);
    let (_, third) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(kids(&third), ["theirs"], "each edit applied once");
    let (_, fourth) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(kids(&fourth), ["theirs"]);
}

#[tokio::test]
async fn a_key_added_outside_the_api_is_registered_with_a_year_to_live_and_added_again_is_renewed() {
    let s = Setup::new().await;
    s.fake.add_key(CLIENT, &jwk(rsa(2), "portal"));
    let keys = s.fake.registered_keys(CLIENT);
    assert_eq!(keys.len(), 1);
    assert!(keys[0].exp > (t0() + TimeDelta::days(364)).timestamp());
    let mut expiring = jwk(rsa(3), "portal-2");
    expiring["exp"] = json!((t0() + TimeDelta::days(3)).timestamp());
    s.fake.add_key(CLIENT, &expiring);
    assert_eq!(s.fake.registered_keys(CLIENT)[1].exp, (t0() + TimeDelta::days(3)).timestamp());
    // Added again with a later exp, as its owner renews it: replaced, not listed twice.
    expiring["exp"] = json!((t0() + TimeDelta::days(300)).timestamp());
    s.fake.add_key(CLIENT, &expiring);
    let keys = s.fake.registered_keys(CLIENT);
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["portal", "portal-2"]);
    assert_eq!(keys[1].exp, (t0() + TimeDelta::days(300)).timestamp());
}

#[tokio::test]
async fn the_request_log_names_method_path_client_and_status() {
    let s = Setup::new().await;
    let token = s.admin_token(DCR_READ).await;
    s.jwks("GET", CLIENT, Some(&token), None).await;
    let log = s.fake.requests();
    assert_eq!(
        log,
        [
            RequestRecord {
                method: "POST".into(),
                path: "/token".into(),
                client_id: Some(ADMIN.into()),
                status: 200
            },
            RequestRecord {
                method: "GET".into(),
                path: format!("/api/v1/clients/{CLIENT}/jwks"),
                client_id: Some(CLIENT.into()),
                status: 404,
            },
        ]
    );
    assert_eq!((s.fake.request_count("GET"), s.fake.request_count("POST"), s.fake.deletes()), (1, 1, 0));
    s.fake.clear_logs();
    assert!(s.fake.requests().is_empty() && s.fake.grants().is_empty());
}
