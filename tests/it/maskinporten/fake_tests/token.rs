//! The token endpoint: grants signed with a registered key (`kid`) and with a business
//! certificate (`x5c`), and each documented refusal with Digdir's code and text.

use chrono::TimeDelta;
use serde_json::{Value, json};

use super::*;
use crate::maskinporten::fake::{BusinessCa, Clock, GrantOutcome};

const KID: &str = "client-1-TEST.2026-11-21";

/// A setup where [`CLIENT`] has `rsa(0)` registered as [`KID`].
async fn with_key() -> Setup {
    let s = Setup::new().await;
    s.register(CLIENT, vec![jwk(rsa(0), KID)]).await;
    s
}

/// Grants `claims` signed with `rsa(0)` as [`KID`]: (status, body).
async fn grant(s: &Setup, claims: &Value) -> (u16, Value) {
    s.token(&kid_grant(rsa(0), KID, claims)).await
}

fn client_claims(s: &Setup) -> Value {
    claims(&s.fake, CLIENT, CLIENT_SCOPE)
}

#[tokio::test]
async fn a_grant_with_a_registered_key_gets_a_token() {
    let s = with_key().await;
    let (status, body) = grant(&s, &client_claims(&s)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() > 20), "{body}");
    assert_eq!(
        (&body["token_type"], &body["expires_in"], &body["scope"]),
        (&json!("Bearer"), &json!(120), &json!(CLIENT_SCOPE))
    );
    let last = s.fake.grants().pop().expect("logged");
    assert_eq!(last.outcome, GrantOutcome::Granted { scope: CLIENT_SCOPE.to_owned() });
    assert_eq!((last.client_id.as_deref(), last.kid.as_deref()), (Some(CLIENT), Some(KID)));
}

#[tokio::test]
async fn an_unknown_kid_is_refused_until_the_key_has_propagated() {
    let s = Setup::new().await;
    s.fake.set_propagation(TimeDelta::minutes(2));
    s.register(CLIENT, vec![jwk(rsa(0), KID)]).await;
    let (status, body) = grant(&s, &client_claims(&s)).await;
    assert_eq!(status, 400);
    let expected =
        "Invalid assertion. Client authentication failed. Unknown key identifier (kid) for client.";
    assert_eq!(refusal(&body), ("invalid_grant".to_owned(), None, expected.to_owned()));
    assert!(s.fake.propagated_keys(CLIENT).is_empty() && s.fake.registered_keys(CLIENT).len() == 1);

    s.fake.advance(TimeDelta::seconds(119));
    assert_eq!(grant(&s, &client_claims(&s)).await.0, 400);
    s.fake.advance(TimeDelta::seconds(1));
    let (status, body) = grant(&s, &client_claims(&s)).await;
    assert_eq!(status, 200, "{body}");
}

/// `claims` with `iat` and `exp` moved by `iat` and `exp` seconds from the fake's now.
fn timed(s: &Setup, iat: i64, exp: i64) -> Value {
    let mut claims = client_claims(s);
    let now = s.fake.now().timestamp();
    claims["iat"] = json!(now + iat);
    claims["exp"] = json!(now + exp);
    claims
}

#[tokio::test]
async fn iat_must_be_within_ten_seconds_of_the_clock() {
    let s = with_key().await;
    let (_, ahead) = grant(&s, &timed(&s, 11, 120)).await;
    assert_eq!(refusal(&ahead), ("invalid_grant".to_owned(), None, "Issue time is after now".to_owned()));
    let (_, behind) = grant(&s, &timed(&s, -11, 100)).await;
    assert_eq!(
        refusal(&behind),
        ("invalid_grant".to_owned(), Some("MP-130".to_owned()), "JWT is expired".to_owned())
    );
    assert!(s.fake.grants().iter().any(|g| g.reason().contains("iat is 11 s ahead")));
    assert_eq!(grant(&s, &timed(&s, 10, 120)).await.0, 200);
    assert_eq!(grant(&s, &timed(&s, -10, 100)).await.0, 200);
}

#[tokio::test]
async fn a_grant_lives_at_most_120_seconds_and_not_past_exp() {
    let s = with_key().await;
    let (_, long) = grant(&s, &timed(&s, 0, 121)).await;
    let expected = (
        "invalid_request".to_owned(),
        Some("MP-011".to_owned()),
        "Invalid assertion. Invalid parameter value".to_owned(),
    );
    assert_eq!(refusal(&long), expected);
    assert!(s.fake.grants().last().is_some_and(|g| g.reason() == "exp - iat is 121 s (at most 120)"));
    let (_, passed) = grant(&s, &timed(&s, -5, 0)).await;
    assert_eq!(refusal(&passed).1.as_deref(), Some("MP-130"));
    assert_eq!(grant(&s, &timed(&s, 0, 120)).await.0, 200);
}

#[tokio::test]
async fn a_jti_is_used_once() {
    let s = with_key().await;
    let claims = client_claims(&s);
    assert_eq!(grant(&s, &claims).await.0, 200);
    let (status, body) = grant(&s, &claims).await;
    assert_eq!(status, 400);
    assert_eq!(
        refusal(&body),
        ("invalid_grant".to_owned(), Some("MP-012".to_owned()), "Grant is used before".to_owned())
    );
    let mut without = client_claims(&s);
    without.as_object_mut().expect("claims").remove("jti");
    assert_eq!(refusal(&grant(&s, &without).await.1).1.as_deref(), Some("MP-011"));
}

#[tokio::test]
async fn an_expired_key_is_mp_121() {
    let s = Setup::new().await;
    let mut key = jwk(rsa(0), KID);
    key["exp"] = json!((t0() + TimeDelta::days(1)).timestamp());
    s.register(CLIENT, vec![key]).await;
    s.fake.advance(TimeDelta::days(2));
    let (status, body) = grant(&s, &client_claims(&s)).await;
    assert_eq!(status, 400);
    let expected = "Invalid assertion. Client authentication failed. Expired key.";
    assert_eq!(refusal(&body), ("invalid_grant".to_owned(), Some("MP-121".to_owned()), expected.to_owned()));
    assert_eq!(body["error_uri"], format!("{}errors/MP-121", s.fake.issuer()));
}

#[tokio::test]
async fn a_bad_signature_is_mp_124() {
    let s = with_key().await;
    let forged = kid_grant(rsa(1), KID, &client_claims(&s));
    let (_, body) = s.token(&forged).await;
    assert_eq!(
        refusal(&body),
        ("invalid_grant".to_owned(), Some("MP-124".to_owned()), "Invalid JWT signature".to_owned())
    );
}

#[tokio::test]
async fn aud_iss_scope_and_claims_are_checked() {
    let s = with_key().await;
    let with = |member: &str, value: Value| {
        let mut claims = client_claims(&s);
        claims[member] = value;
        claims
    };
    let code = |body: &Value| refusal(body).1;
    let (_, body) = grant(&s, &with("aud", json!(s.fake.token_url()))).await;
    assert_eq!(refusal(&body).2, "Invalid assertion. Client authentication failed. Invalid JWT claim aud");
    assert_eq!(code(&body).as_deref(), Some("MP-110"));
    let (_, body) = grant(&s, &with("aud", json!([s.fake.issuer(), "https://other/"]))).await;
    assert_eq!(code(&body).as_deref(), Some("MP-110"), "one value only");
    assert_eq!(grant(&s, &with("aud", json!([s.fake.issuer()]))).await.0, 200);
    let (_, body) = grant(&s, &with("iss", json!("nobody"))).await;
    assert_eq!(refusal(&body).2, "Invalid assertion. Client authentication failed.");
    assert_eq!(code(&body).as_deref(), Some("MP-100"));
    let (_, body) = grant(&s, &with("scope", json!(format!("{CLIENT_SCOPE} skatt:secret")))).await;
    assert_eq!(refusal(&body).0, "invalid_scope");
    assert_eq!(refusal(&body).2, "Token request contains invalid scopes for client, skatt:secret");
    assert_eq!(code(&body).as_deref(), Some("MP-200"));
    let (_, body) = grant(&s, &with("sub", json!(CLIENT))).await;
    assert_eq!((refusal(&body).0, code(&body)), ("invalid_request".to_owned(), Some("MP-011".to_owned())));
    assert_eq!(
        grant(&s, &with("resource", json!(["https://api.example/"]))).await.0,
        200,
        "a documented claim"
    );
}

#[tokio::test]
async fn a_grant_needs_the_jwt_bearer_grant_type() {
    let s = with_key().await;
    let response = s.post_form(&[("grant_type", "client_credentials"), ("assertion", "x")]).await;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
    let (_, body) = s.token("not.a.jwt").await;
    assert_eq!(refusal(&body).1.as_deref(), Some("MP-011"));
}

#[tokio::test]
async fn an_admin_client_signs_with_its_trusted_business_certificate() {
    let s = Setup::new().await;
    let grant = x5c_grant(&s.admin_certificate(), &claims(&s.fake, ADMIN, DCR_WRITE));
    let (status, body) = s.token(&grant).await;
    assert_eq!(status, 200, "{body}");
    let last = s.fake.grants().pop().expect("logged");
    assert_eq!((last.certificate.as_deref(), last.kid), (Some(ADMIN_CN), None));
    assert!(s.admin_certificate().chain_pem.matches("BEGIN CERTIFICATE").count() == 2);
    assert!(s.admin_certificate().key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[tokio::test]
async fn a_pkcs12_file_holds_the_business_key_and_chain() {
    let s = Setup::new().await;
    let cert = s.admin_certificate();
    let p12 = cert.pkcs12_der("secret");
    let policy = p12_keystore::Pkcs12ImportPolicy::Strict;
    assert!(p12_keystore::KeyStore::from_pkcs12(&p12, "wrong", policy).is_err());
    let store = p12_keystore::KeyStore::from_pkcs12(&p12, "secret", policy).expect("pkcs12");
    let (_, chain) = store.private_key_chain().expect("key and chain");
    assert_eq!(chain.certs().len(), 2);
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(chain.key().as_der()).expect("key");
    let header = json!({"alg": "RS256", "x5c": cert.x5c});
    let (status, body) = s.token(&sign(&key, &header, &claims(&s.fake, ADMIN, DCR_READ))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn untrusted_expired_or_foreign_certificates_are_refused() {
    let s = Setup::new().await;
    let year = TimeDelta::days(365);
    let untrusted = BusinessCa::generate("someone else's CA").issue(ADMIN_CN, t0() - year, t0() + year);
    let expired =
        s.fake.issue_business_certificate(ADMIN_CN, t0() - year - year, t0() - TimeDelta::seconds(1));
    let other = s.fake.issue_business_certificate("Other AS", t0() - year, t0() + year);
    let expected =
        "Invalid assertion. Client authentication failed. The JWT is signed with an invalid certificate.";
    for cert in [untrusted, expired] {
        let (status, body) = s.token(&x5c_grant(&cert, &claims(&s.fake, ADMIN, DCR_READ))).await;
        assert_eq!(status, 400);
        assert_eq!(
            refusal(&body),
            ("invalid_grant".to_owned(), Some("MP-120".to_owned()), expected.to_owned())
        );
    }
    let (_, body) = s.token(&x5c_grant(&other, &claims(&s.fake, ADMIN, DCR_READ))).await;
    assert_eq!(refusal(&body).1.as_deref(), Some("MP-122"));
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&s.admin_certificate().key_der).expect("key");
    let not_an_array = sign(&key, &json!({"alg": "RS256", "x5c": "MIIB"}), &claims(&s.fake, ADMIN, DCR_READ));
    let (_, body) = s.token(&not_an_array).await;
    assert_eq!(refusal(&body).1.as_deref(), Some("MP-123"));
}

#[tokio::test]
async fn grant_in_process_judges_as_the_endpoint_does() {
    let s = with_key().await;
    let claims = client_claims(&s);
    let assertion = kid_grant(rsa(0), KID, &claims);
    let ok = s.fake.grant_in_process(&assertion).expect("granted");
    assert_eq!(ok["token_type"], "Bearer");
    let refused = s.fake.grant_in_process(&assertion).expect_err("the jti was used");
    assert_eq!(refusal(&refused).1.as_deref(), Some("MP-012"));
    assert_eq!(s.fake.grants().len(), 2 + 1, "the admin's grant, then these two");
    assert_eq!(s.fake.grants()[2].code(), Some("MP-012"));
}

#[tokio::test]
async fn a_real_clock_follows_utc_now() {
    let s = Setup::new().await;
    s.fake.set_clock(Clock::Real);
    assert!((s.fake.now() - chrono::Utc::now()).num_seconds().abs() < 2);
    s.register(CLIENT, vec![jwk(rsa(0), KID)]).await;
    let (status, body) = grant(&s, &client_claims(&s)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_admin_client_with_its_certificate_registered_must_sign_with_kid() {
    let s = Setup::new().await;
    let cert = s.admin_certificate();
    s.fake.add_admin_client("kid-admin", ADMIN_CN, &[DCR_READ]);
    s.fake.register_certificate("kid-admin", "admin-cert-kid", &cert.key_der);
    let claims = || claims(&s.fake, "kid-admin", DCR_READ);
    let (status, body) = s.token(&x5c_grant(&cert, &claims())).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(refusal(&body).1.as_deref(), Some("MP-100"));
    assert!(s.fake.grants().pop().expect("logged").reason().contains("must sign with kid"));
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&cert.key_der).expect("business key");
    let (status, body) = s.token(&kid_grant(&pair, "admin-cert-kid", &claims())).await;
    assert_eq!(status, 200, "{body}");
}
