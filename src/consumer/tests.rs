//! The `altinn-app` document read the way Altinn app-lib reads it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::testing::fixture_key;

fn app() -> ConsumerShape {
    ConsumerShape::AltinnApp(AltinnApp {
        authority: "https://test.maskinporten.no/".to_owned(),
        client_id: "3f1c6a0e-\"quoted\"".to_owned(),
    })
}

/// Reads a rendered document as app-lib does (Altinn/app-lib-dotnet at commit
/// caf7ba51e89dbe307c9c7164bf77a8838578a2b9, src/Altinn.App.Core/Features/Maskinporten/:
/// Models/MaskinportenSettings.cs names the members `authority`, `clientId` and `jwkBase64`
/// (JsonPropertyName); Converters/JsonWebKeyConverter.cs `FromBase64String` decodes
/// `jwkBase64` with Convert.FromBase64String, reads it as a `JwkWrapper` and refuses it unless
/// `JwkWrapper.Validate` finds every one of kty, use, kid, alg, n, e, d, p, q, qi, dp, dq a
/// string that is not blank).
fn read_as_app_lib(text: &str) -> (String, String, serde_json::Map<String, serde_json::Value>) {
    let doc: serde_json::Value = serde_json::from_str(text).expect("MaskinportenSettings JSON");
    let member = |name: &str| doc[name].as_str().unwrap_or_else(|| panic!("{name} missing")).to_owned();
    let decoded = STANDARD.decode(member("jwkBase64")).expect("Convert.FromBase64String");
    let jwk: serde_json::Value = serde_json::from_slice(&decoded).expect("JwkWrapper JSON");
    let jwk = jwk.as_object().expect("an object").clone();
    for required in ["kty", "use", "kid", "alg", "n", "e", "d", "p", "q", "qi", "dp", "dq"] {
        let value = jwk.get(required).and_then(|v| v.as_str()).unwrap_or_default();
        assert!(!value.trim().is_empty(), "JwkWrapper.Validate: {required} is empty");
    }
    (member("authority"), member("clientId"), jwk)
}

#[test]
fn an_altinn_app_document_is_what_app_lib_reads() {
    let key = fixture_key("testklient-TEST.2026-11-21");
    let text = app().render(&key);
    let (authority, client_id, jwk) = read_as_app_lib(&text);
    assert_eq!(authority, "https://test.maskinporten.no/");
    assert_eq!(client_id, "3f1c6a0e-\"quoted\"", "a client id is escaped, not cut");
    assert_eq!(jwk["kid"], "testklient-TEST.2026-11-21");
    assert_eq!((jwk["kty"].as_str(), jwk["use"].as_str()), (Some("RSA"), Some("sig")));
    let back = PrivateJwk::from_json(
        &STANDARD
            .decode(
                serde_json::from_str::<serde_json::Value>(&text).expect("json")["jwkBase64"]
                    .as_str()
                    .expect("b64"),
            )
            .expect("b64"),
    )
    .expect("jwk");
    assert_eq!(back.to_json().as_str(), key.to_json().as_str(), "the same key");
}

#[test]
fn encoded_jwk_is_the_base64_of_the_private_jwk() {
    let key = fixture_key("testklient-TEST.2026-11-21");
    assert_eq!(ConsumerShape::EncodedJwk.render(&key).as_str(), key.to_base64().as_str());
    assert_eq!(ConsumerShape::EncodedJwk.content_type(), crate::azure::layout::CONTENT_TYPE);
    assert_eq!(app().content_type(), "application/json");
}

#[test]
fn a_version_is_known_by_its_tags() {
    let tags = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    assert!(
        ConsumerShape::EncodedJwk.written_as(&tags(&[("kid", "a-TEST.2026-01-01")])),
        "no tag: encoded-jwk"
    );
    assert!(!app().written_as(&tags(&[])));
    let written: Vec<(&str, String)> = app().tags();
    let written = written.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>();
    assert!(app().written_as(&tags(&written)));
    assert!(!ConsumerShape::EncodedJwk.written_as(&tags(&written)));
    let other_client = ConsumerShape::AltinnApp(AltinnApp {
        authority: "https://test.maskinporten.no/".to_owned(),
        client_id: "another".to_owned(),
    });
    assert!(!other_client.written_as(&tags(&written)), "a changed client_id is written again");
}

#[test]
fn a_format_name_that_is_not_one_is_refused_with_the_choices() {
    let e = toml::from_str::<BTreeMap<String, FormatName>>("f = \"altinn\"").expect_err("refused");
    assert!(e.to_string().contains("\"encoded-jwk\"") && e.to_string().contains("\"altinn-app\""), "{e}");
}
