//! Tests of `[maskinporten.ENV]` and the Maskinporten settings of a `[[client]]`: every
//! setting that can not work is refused at load, by name.

use super::super::{Config, ConfigError};

const TABLE: &str = r#"
[maskinporten.TEST]
admin_client_id = "admin"
admin_certificate = "cert.p12"
admin_certificate_password_env = "P12_PASSWORD"
"#;

const CLIENT: &str = r#"
[[client]]
name = "a"
environments = ["TEST"]
publish = ["files", "maskinporten-api"]
client_id = { TEST = "cid" }
verify_scope = "x:y"
promotion = "verified"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, std::path::Path::new("/etc/jwk-rotator/jwk-rotator.toml"))
}

/// Refused with `setting` at fault, and a message that holds every one of `expected`.
fn refused(text: &str, setting: Option<&str>, expected: &[&str]) {
    let err = load(text).expect_err("refused");
    assert_eq!(err.setting(), setting, "{err}");
    let shown = err.to_string();
    for part in expected {
        assert!(shown.contains(part), "{part:?} not in: {shown}");
    }
}

#[test]
fn a_complete_config_loads_with_digdirs_addresses_for_test() {
    let config = load(&format!("{TABLE}{CLIENT}")).expect("loads");
    let table = &config.maskinporten[&"TEST".parse().expect("env")];
    assert_eq!(table.api_url.as_str(), "https://api.test.samarbeid.digdir.no/");
    assert_eq!(table.issuer, "https://test.maskinporten.no/");
    assert_eq!(table.token_url.as_str(), "https://test.maskinporten.no/token");
    let admin = table.admin.as_ref().expect("admin");
    assert_eq!(admin.scopes, ["idporten:dcr.read", "idporten:dcr.write"]);
    let shown = format!("{:?}", admin.certificate);
    assert!(shown.contains("P12_PASSWORD") && shown.contains("/etc/jwk-rotator/cert.p12"), "{shown}");
    assert_eq!(admin.kid, None, "the chain in x5c by default");
    let client = &config.clients[0].maskinporten;
    assert_eq!(client.client_id[&"TEST".parse().expect("env")], "cid");
    assert!(!client.prune_unmanaged);
}

#[test]
fn each_bad_setting_is_refused_by_name_with_what_to_do() {
    let client =
        |extra: &str| format!("{TABLE}\n[[client]]\nname = \"a\"\nenvironments = [\"TEST\"]\n{extra}\n");
    refused(
        &client("publish = [\"maskinporten-api\"]"),
        Some("client_id"),
        &[
            "[[client]] number 1: client a: ",
            "publish = [\"maskinporten-api\"] needs the client's Maskinporten client_id for TEST",
            "client_id = { TEST = \"...\" }",
        ],
    );
    refused(
        &client("promotion = \"verified\"\nclient_id = { TEST = \"cid\" }"),
        Some("verify_scope"),
        &["promotion = \"verified\" needs verify_scope"],
    );
    refused(&client("publish = [\"portal\"]"), Some("publish"), &["publish = [\"portal\"] is not a target"]);
    refused(&client("publish = []"), Some("publish"), &["publish = [] would publish the keys nowhere"]);
    refused(&client("publish = [\"files\", \"files\"]"), Some("publish"), &["publish lists \"files\" twice"]);
    refused(&client("publish = \"files\""), Some("publish"), &["is not a list of targets"]);
    refused(&client("publish = [\"files\", 3]"), Some("publish"), &["publish = 3 is not a list of targets"]);
    refused(
        &client("client_id = { PROD = \"x\" }"),
        Some("client_id.PROD"),
        &["client_id.PROD is given, but PROD is not one of this client's environments"],
    );
    refused(&client("client_id = \"x\""), Some("client_id"), &["must be a table of environments"]);
    refused(
        &client("client_id = { TEST = 5 }"),
        Some("client_id"),
        &["client_id.TEST = 5 must be the client id"],
    );
    refused(
        &client("client_id = { test = \"x\" }"),
        Some("client_id"),
        &["client_id.test: environment \"test\""],
    );
    refused(&client("verify_scope = \"a b\""), Some("verify_scope"), &["verify_scope", "one scope"]);
    refused(
        &client("prune_unmanaged = \"yes\""),
        Some("prune_unmanaged"),
        &["prune_unmanaged", "true or false"],
    );
    refused(&client("client_secret = \"x\""), Some("client_secret"), &["unknown setting `client_secret`"]);
}

#[test]
fn bad_addresses_and_waits_are_refused_by_name() {
    let with = |table: &str| format!("{table}{CLIENT}");
    let admin = "admin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\n";
    refused(
        &with(&format!("[maskinporten.TEST]\napi_url = \"http://localhost:8080\"\n{admin}")),
        Some("api_url"),
        &["[maskinporten.TEST]: ", "api_url = \"http://localhost:8080\" must use https"],
    );
    refused(
        &with(&format!("[maskinporten.TEST]\nissuer = \"https://test.maskinporten.no\"\n{admin}")),
        Some("issuer"),
        &["issuer = \"https://test.maskinporten.no\" must end with '/'"],
    );
    refused(
        &with(&format!("[maskinporten.TEST]\n{admin}verify_wait = \"2h\"\n")),
        Some("verify_wait"),
        &["verify_wait = 2h is longer than an hour"],
    );
    refused(
        &with(&format!("[maskinporten.TEST]\n{admin}[maskinporten.TEST.retry]\nmax_retries = 21\n")),
        Some("max_retries"),
        &["[maskinporten.TEST]: [maskinporten.TEST.retry]: max_retries = 21 must be at most 20"],
    );
    refused(
        &with(&format!("[maskinporten.TEST]\n{admin}secret = \"x\"\n")),
        Some("secret"),
        &["line 4 (secret): unknown field `secret`"],
    );
    refused(
        &format!("[maskinporten.STAGE]\n{admin}{CLIENT}"),
        Some("api_url"),
        &["[maskinporten.STAGE]: api_url is missing", "built in only for TEST and PROD"],
    );
    refused(&format!("[maskinporten.test]\n{CLIENT}"), None, &["[maskinporten.test]: environment \"test\""]);
    // An API client whose environment has no table, and one whose table has no admin.
    refused(CLIENT, Some("[maskinporten.TEST]"), &["add a [maskinporten.TEST] table"]);
    refused(
        &with("[maskinporten.TEST]\n"),
        Some("admin_client_id"),
        &["need the organisation's admin client", "set admin_client_id"],
    );
}

#[test]
fn the_admin_client_needs_its_id_and_exactly_one_certificate() {
    let with = |lines: &str| format!("[maskinporten.TEST]\n{lines}{CLIENT}");
    refused(
        &with("admin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\nadmin_certificate_secret = \"c\"\n"),
        Some("admin_client_id"),
        &["needs exactly one business certificate", "2 are set"],
    );
    refused(
        &with("admin_client_id = \"a\"\n"),
        Some("admin_client_id"),
        &["needs exactly one business certificate", "0 are set"],
    );
    refused(
        &with(
            "admin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\nadmin_certificate_password_env = \"hunter2 secret\"\n",
        ),
        Some("admin_certificate_password_env"),
        &["must name an environment variable"],
    );
    refused(
        &with("admin_client_id = \"a\"\nadmin_certificate_pem = \"c.pem\"\n"),
        Some("admin_key_pem"),
        &["admin_certificate_pem is set without admin_key_pem"],
    );
    refused(
        &with("admin_client_id = \"a\"\nadmin_key_pem = \"k.pem\"\n"),
        Some("admin_certificate_pem"),
        &["admin_key_pem is set without admin_certificate_pem"],
    );
    refused(
        &with(
            "admin_client_id = \"a\"\nadmin_certificate_secret = \"c\"\nadmin_certificate_password_env = \"P\"\n",
        ),
        Some("admin_certificate_password_env"),
        &["a Key Vault certificate's secret has no password"],
    );
    refused(
        &with("admin_client_id = \"a\"\nadmin_certificate_secret = \"c.d\"\n"),
        Some("admin_certificate_secret"),
        &["admin_certificate_secret = \"c.d\" is not a Key Vault certificate name"],
    );
    refused(
        &with("admin_certificate = \"c.p12\"\n"),
        Some("admin_client_id"),
        &["admin_client_id is missing"],
    );
    refused(
        &with("admin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\nadmin_scopes = []\n"),
        Some("admin_scopes"),
        &["admin_scopes = [] must list scopes"],
    );
}

#[test]
fn admin_auth_is_x5c_or_kid_with_admin_kid() {
    let with = |lines: &str| format!("{TABLE}{lines}\n{CLIENT}");
    let auth = |lines: &str| {
        let config = load(&with(lines)).expect("loads");
        config.maskinporten[&"TEST".parse().expect("env")].admin.clone().expect("admin").kid
    };
    assert_eq!(auth("admin_auth = \"x5c\""), None);
    assert_eq!(auth("admin_auth = \"kid\"\nadmin_kid = \"org-cert-1\""), Some("org-cert-1".to_owned()));
    refused(
        &with("admin_auth = \"kid\""),
        Some("admin_kid"),
        &["[maskinporten.TEST]", "admin_auth = \"kid\" needs admin_kid"],
    );
    refused(
        &with("admin_kid = \"org-cert-1\""),
        Some("admin_kid"),
        &["admin_kid = \"org-cert-1\" is set but admin_auth is not \"kid\""],
    );
    refused(
        &with("admin_auth = \"cert\""),
        Some("admin_auth"),
        &["admin_auth = \"cert\" is not \"x5c\"", "\"kid\""],
    );
    refused(
        &with("admin_auth = \"kid\"\nadmin_kid = \"has space\""),
        Some("admin_kid"),
        &["admin_kid = \"has space\" is not a kid"],
    );
    let no_admin = "[maskinporten.TEST]\nadmin_auth = \"kid\"\nadmin_kid = \"k\"\n[[client]]\nname = \"a\"\nenvironments = [\"TEST\"]\n";
    refused(no_admin, Some("admin_client_id"), &["admin_client_id is missing"]);
}
