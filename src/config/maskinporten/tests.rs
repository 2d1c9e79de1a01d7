//! Tests of `[maskinporten.ENV]` and the Maskinporten settings of a `[[client]]`: every
//! setting that can not work is refused at load, by name.

use super::super::Config;

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

fn load(text: &str) -> Result<Config, String> {
    Config::parse(text, std::path::Path::new("/etc/jwk-rotator/jwk-rotator.toml")).map_err(|e| e.0)
}

fn refused(text: &str, expected: &[&str]) {
    let err = load(text).expect_err("refused");
    for part in expected {
        assert!(err.contains(part), "{part:?} not in: {err}");
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
        &[
            "client a",
            "publish = [\"maskinporten-api\"] needs the client's Maskinporten client_id for TEST",
            "client_id = { TEST = \"...\" }",
        ],
    );
    refused(
        &client("promotion = \"verified\"\nclient_id = { TEST = \"cid\" }"),
        &["promotion = \"verified\" needs verify_scope"],
    );
    refused(&client("publish = [\"portal\"]"), &["publish = [\"portal\"] is not a target"]);
    refused(&client("publish = []"), &["publish = [] would publish the keys nowhere"]);
    refused(&client("publish = \"files\""), &["is not a list of targets"]);
    refused(
        &client("client_id = { PROD = \"x\" }"),
        &["client_id.PROD is given, but PROD is not one of this client's environments"],
    );
    refused(&client("client_id = \"x\""), &["must be a table of environments"]);
    refused(&client("verify_scope = \"a b\""), &["verify_scope", "one scope"]);
    refused(&client("prune_unmanaged = \"yes\""), &["prune_unmanaged", "true or false"]);
    refused(&client("client_secret = \"x\""), &["unknown setting `client_secret`"]);
}

#[test]
fn bad_environment_tables_are_refused_by_name() {
    let with = |table: &str| format!("{table}{CLIENT}");
    refused(
        &with(
            "[maskinporten.TEST]\napi_url = \"http://localhost:8080\"\nadmin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\n",
        ),
        &["[maskinporten.TEST]", "api_url = \"http://localhost:8080\" must use https"],
    );
    refused(
        &with(
            "[maskinporten.TEST]\nissuer = \"https://test.maskinporten.no\"\nadmin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\n",
        ),
        &["issuer = \"https://test.maskinporten.no\" must end with '/'"],
    );
    refused(
        &with(
            "[maskinporten.TEST]\nadmin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\nadmin_certificate_secret = \"c\"\n",
        ),
        &["needs exactly one business certificate", "2 are set"],
    );
    refused(
        &with("[maskinporten.TEST]\nadmin_client_id = \"a\"\n"),
        &["needs exactly one business certificate", "0 are set"],
    );
    refused(
        &with(
            "[maskinporten.TEST]\nadmin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\nadmin_certificate_password_env = \"hunter2 secret\"\n",
        ),
        &["must name an environment variable"],
    );
    refused(
        &with("[maskinporten.TEST]\nadmin_client_id = \"a\"\nadmin_certificate_pem = \"c.pem\"\n"),
        &["admin_certificate_pem is set without admin_key_pem"],
    );
    refused(&with("[maskinporten.TEST]\nadmin_certificate = \"c.p12\"\n"), &["admin_client_id is missing"]);
    refused(
        &with(
            "[maskinporten.TEST]\nadmin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\nadmin_scopes = []\n",
        ),
        &["admin_scopes = [] must list scopes"],
    );
    refused(
        &with(
            "[maskinporten.TEST]\nadmin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\nverify_wait = \"2h\"\n",
        ),
        &["verify_wait = 2h is longer than an hour"],
    );
    refused(
        &with(
            "[maskinporten.TEST]\nadmin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\nsecret = \"x\"\n",
        ),
        &["unknown field `secret`"],
    );
    refused(
        &format!("[maskinporten.STAGE]\nadmin_client_id = \"a\"\nadmin_certificate = \"c.p12\"\n{CLIENT}"),
        &["[maskinporten.STAGE]: api_url is missing", "built in only for TEST and PROD"],
    );
    refused(&format!("[maskinporten.test]\n{CLIENT}"), &["[maskinporten.test]"]);
    // An API client whose environment has no table, and one whose table has no admin.
    refused(CLIENT, &["add a [maskinporten.TEST] table"]);
    refused(&with("[maskinporten.TEST]\n"), &["need the organisation's admin client", "set admin_client_id"]);
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
    refused(&with("admin_auth = \"kid\""), &["[maskinporten.TEST]", "admin_auth = \"kid\" needs admin_kid"]);
    refused(
        &with("admin_kid = \"org-cert-1\""),
        &["admin_kid = \"org-cert-1\" is set but admin_auth is not \"kid\""],
    );
    refused(&with("admin_auth = \"cert\""), &["admin_auth = \"cert\" is not \"x5c\"", "\"kid\""]);
    refused(
        &with("admin_auth = \"kid\"\nadmin_kid = \"has space\""),
        &["admin_kid = \"has space\" is not a kid"],
    );
    let no_admin = "[maskinporten.TEST]\nadmin_auth = \"kid\"\nadmin_kid = \"k\"\n[[client]]\nname = \"a\"\nenvironments = [\"TEST\"]\n";
    refused(no_admin, &["admin_client_id is missing"]);
}
