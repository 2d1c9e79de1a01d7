//! The self-service API's key-set resource: its answers, its checks on a posted set, and its
//! bearer and scope checks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Months, TimeDelta};
use serde_json::{Value, json};

use super::*;
use crate::maskinporten::fake::EmptyJwks;

fn keys_of(body: &Value) -> Vec<&str> {
    body["keys"].as_array().expect("keys").iter().map(|k| k["kid"].as_str().expect("kid")).collect()
}

#[tokio::test]
async fn get_answers_the_registered_set_with_created_and_last_updated() {
    let s = Setup::new().await;
    let mut with_exp = jwk(rsa(1), "b.2026-11-21");
    with_exp["exp"] = json!((t0() + TimeDelta::days(200)).timestamp());
    s.register(CLIENT, vec![jwk(rsa(0), "a.2026-11-21"), with_exp]).await;

    let token = s.admin_token(DCR_READ).await;
    let (status, body) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys_of(&body), ["a.2026-11-21", "b.2026-11-21"]);
    let first = body["keys"][0].as_object().expect("key");
    let mut members: Vec<&str> = first.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "exp", "kid", "kty", "n", "use"]);
    let one_year = t0().checked_add_months(Months::new(12)).expect("year").timestamp();
    assert_eq!(body["keys"][0]["exp"], one_year, "exp defaults to a year from the POST");
    assert_eq!(body["keys"][1]["exp"], (t0() + TimeDelta::days(200)).timestamp(), "a sent exp is kept");
    assert_eq!(body["keys"][0]["n"], jwk(rsa(0), "x")["n"]);
    assert_eq!(body["last_updated"], "2026-11-21T12:00:00+00:00");
    assert!(body["created"].is_string(), "{body}");
}

#[tokio::test]
async fn an_unknown_client_is_404_in_digdirs_error_shape() {
    let s = Setup::new().await;
    let token = s.admin_token(DCR_READ).await;
    let (status, body) = s.jwks("GET", "no-such-client", Some(&token), None).await;
    assert_eq!(status, 404);
    assert_eq!(assert_api_error(&body, 404), None);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn a_client_without_keys_answers_404_or_omits_keys_as_chosen() {
    let s = Setup::new().await;
    let token = s.admin_token(DCR_READ).await;
    let (status, _) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(status, 404, "the default");
    s.fake.set_empty_jwks(EmptyJwks::OmitKeys);
    let (status, body) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(status, 200);
    assert!(body.get("keys").is_none() && body["last_updated"].is_string(), "{body}");
}

/// POSTs `keys` with a write token; the status and the first field error's identifier.
async fn post(s: &Setup, keys: Vec<Value>) -> (u16, Option<String>) {
    let token = s.admin_token(DCR_WRITE).await;
    let (status, body) = s.jwks("POST", CLIENT, Some(&token), Some(&json!({"keys": keys}))).await;
    if status == 201 {
        return (status, None);
    }
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    (status, assert_api_error(&body, status))
}

#[tokio::test]
async fn at_most_five_keys() {
    let s = Setup::new().await;
    let six: Vec<Value> = (0..6).map(|i| jwk(rsa(i), &format!("k{i}"))).collect();
    assert_eq!(post(&s, six.clone()).await, (400, Some("keys".to_owned())));
    assert_eq!(post(&s, six[..5].to_vec()).await, (201, None));
    assert_eq!(s.fake.registered_keys(CLIENT).len(), 5);
}

#[tokio::test]
async fn a_key_without_use_is_refused() {
    let s = Setup::new().await;
    let mut key = jwk(rsa(0), "k");
    key.as_object_mut().expect("key").remove("use");
    assert_eq!(post(&s, vec![key]).await, (400, Some("keys[0].use".to_owned())));
}

#[tokio::test]
async fn exp_must_be_in_the_future_and_at_most_a_year_ahead() {
    let s = Setup::new().await;
    let with_exp = |exp: i64| {
        let mut key = jwk(rsa(0), "k");
        key["exp"] = json!(exp);
        key
    };
    let year = t0().checked_add_months(Months::new(12)).expect("year").timestamp();
    assert_eq!(post(&s, vec![with_exp(year + 1)]).await, (400, Some("keys[0].exp".to_owned())));
    assert_eq!(post(&s, vec![with_exp(t0().timestamp())]).await, (400, Some("keys[0].exp".to_owned())));
    assert_eq!(post(&s, vec![with_exp(year)]).await, (201, None));
}

#[tokio::test]
async fn private_key_members_are_refused() {
    let s = Setup::new().await;
    let mut key = jwk(rsa(0), "k");
    key["d"] = json!("AQAB");
    assert_eq!(post(&s, vec![key]).await, (400, Some("keys[0].d".to_owned())));
}

#[tokio::test]
async fn kid_alg_kty_and_key_size_are_checked() {
    let s = Setup::new().await;
    let with = |member: &str, value: Value| {
        let mut key = jwk(rsa(0), "k");
        key[member] = value;
        key
    };
    let small = b64([0xffu8; 128]);
    for (key, field) in [
        (with("kid", json!("has space")), "keys[0].kid"),
        (with("kid", json!("")), "keys[0].kid"),
        (with("alg", json!("ES256")), "keys[0].alg"),
        (with("kty", json!("EC")), "keys[0].kty"),
        (with("n", json!(small)), "keys[0].n"),
    ] {
        assert_eq!(post(&s, vec![key]).await, (400, Some(field.to_owned())));
    }
    let twice = vec![jwk(rsa(0), "same"), jwk(rsa(1), "same")];
    assert_eq!(post(&s, twice).await, (400, Some("keys[1].kid".to_owned())));
}

#[tokio::test]
async fn a_kid_is_unique_across_clients() {
    let s = Setup::new().await;
    s.fake.add_client("client-2", &[CLIENT_SCOPE]);
    s.register("client-2", vec![jwk(rsa(0), "shared")]).await;
    assert_eq!(post(&s, vec![jwk(rsa(1), "shared")]).await, (400, Some("keys[0].kid".to_owned())));
    s.register("client-2", vec![jwk(rsa(0), "shared")]).await;
}

#[tokio::test]
async fn a_post_replaces_the_whole_set() {
    let s = Setup::new().await;
    s.register(CLIENT, vec![jwk(rsa(0), "old")]).await;
    let body = s.register(CLIENT, vec![jwk(rsa(1), "new")]).await;
    assert_eq!(keys_of(&body), ["new"], "the POST answer is the stored set");
    assert_eq!(s.fake.registered_keys(CLIENT).len(), 1);
    let token = s.admin_token(DCR_WRITE).await;
    let put = json!({"keys": [jwk(rsa(2), "put")]});
    let (status, body) = s.jwks("PUT", CLIENT, Some(&token), Some(&put)).await;
    assert_eq!((status, keys_of(&body)), (201, vec!["put"]), "PUT replaces too");
}

#[tokio::test]
async fn tokens_and_scopes_are_enforced() {
    let s = Setup::new().await;
    let body = json!({"keys": [jwk(rsa(0), "k")]});
    let (status, answer) = s.jwks("GET", CLIENT, None, None).await;
    assert_eq!((status, answer["error"].as_str()), (401, Some("invalid_token")));
    assert_api_error(&answer, 401);
    let (status, _) = s.jwks("GET", CLIENT, Some("made-up"), None).await;
    assert_eq!(status, 401);

    let read = s.admin_token(DCR_READ).await;
    assert_eq!(s.jwks("POST", CLIENT, Some(&read), Some(&body)).await.0, 403, "a read token cannot POST");
    assert_eq!(s.jwks("DELETE", CLIENT, Some(&read), None).await.0, 403);
    assert_eq!(s.jwks("GET", CLIENT, Some(&read), None).await.0, 404, "but can read");

    let write = s.admin_token(DCR_WRITE).await;
    assert_eq!(s.jwks("POST", CLIENT, Some(&write), Some(&body)).await.0, 201);
    assert_eq!(s.jwks("GET", CLIENT, Some(&write), None).await.0, 200, "write reads too");
    s.fake.advance(TimeDelta::seconds(120));
    assert_eq!(s.jwks("GET", CLIENT, Some(&write), None).await.0, 401, "tokens live 120 s");
}

#[tokio::test]
async fn delete_removes_every_key_and_is_counted() {
    let s = Setup::new().await;
    s.register(CLIENT, vec![jwk(rsa(0), "k")]).await;
    assert_eq!(s.fake.deletes(), 0);
    let token = s.admin_token(DCR_WRITE).await;
    let (status, body) = s.jwks("DELETE", CLIENT, Some(&token), None).await;
    assert_eq!((status, body), (200, Value::Null));
    assert_eq!(s.fake.deletes(), 1);
    assert!(s.fake.registered_keys(CLIENT).is_empty());
}

#[tokio::test]
async fn every_error_has_a_fresh_correlation_id() {
    let s = Setup::new().await;
    let (_, first) = s.jwks("GET", CLIENT, None, None).await;
    let (_, second) = s.jwks("GET", CLIENT, None, None).await;
    assert_ne!(first["correlation_id"], second["correlation_id"]);
    assert_eq!(first["correlation_id"].as_str().map(str::len), Some(36));
}

#[tokio::test]
async fn an_empty_set_is_refused_and_delete_removes_the_last_key() {
    let s = Setup::new().await;
    s.register(CLIENT, vec![jwk(rsa(0), "k")]).await;
    assert_eq!(post(&s, Vec::new()).await, (400, Some("keys".to_owned())));
    assert_eq!(s.fake.registered_keys(CLIENT).len(), 1, "nothing changed");
}

#[tokio::test]
async fn a_key_registered_before_use_was_required_comes_back_without_use() {
    let s = Setup::new().await;
    let mut legacy = jwk(rsa(0), "legacy");
    legacy.as_object_mut().expect("key").remove("use");
    s.fake.add_key(CLIENT, &legacy);
    let token = s.admin_token(DCR_WRITE).await;
    let (status, body) = s.jwks("GET", CLIENT, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["keys"][0].get("use").is_none(), "{body}");
    let (status, body) = s.jwks("POST", CLIENT, Some(&token), Some(&json!({"keys": body["keys"]}))).await;
    assert_eq!((status, assert_api_error(&body, 400)), (400, Some("keys[0].use".to_owned())));
}

#[tokio::test]
async fn a_client_of_another_organisation_is_403_for_every_method() {
    let s = Setup::new().await;
    s.fake.add_client_in_org("theirs", &[CLIENT_SCOPE], "920000002");
    let token = s.admin_token(DCR_WRITE).await;
    let body = json!({"keys": [jwk(rsa(0), "k")]});
    for method in ["GET", "POST", "DELETE"] {
        let (status, answer) = s.jwks(method, "theirs", Some(&token), Some(&body)).await;
        assert_eq!(status, 403, "{method}: {answer}");
        assert_api_error(&answer, 403);
        let description = answer["error_description"].as_str().unwrap_or_default();
        assert!(description.contains("Client theirs is not bound to organisation"), "{answer}");
    }
    assert!(s.fake.registered_keys("theirs").is_empty());
}

#[tokio::test]
async fn storage_can_clamp_exp_and_give_n_a_sign_byte() {
    let s = Setup::new().await;
    s.fake.set_storage(crate::maskinporten::fake::Storage {
        exp_clamp: Some(TimeDelta::days(300)),
        n_sign_byte: true,
    });
    let mut key = jwk(rsa(0), "k");
    key["exp"] = json!((t0() + TimeDelta::days(360)).timestamp());
    let stored = s.register(CLIENT, vec![key.clone()]).await;
    assert_eq!(stored["keys"][0]["exp"], (t0() + TimeDelta::days(300)).timestamp());
    let n = |v: &Value| URL_SAFE_NO_PAD.decode(v.as_str().expect("n")).expect("base64url");
    let (sent, kept) = (n(&key["n"]), n(&stored["keys"][0]["n"]));
    assert_eq!((kept[0], &kept[1..]), (0, sent.as_slice()), "the same number, one byte longer");
}
