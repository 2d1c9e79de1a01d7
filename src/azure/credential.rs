//! The credential named by `[store] credential`, built explicitly (there is no guessing chain),
//! with errors that name the missing setting or environment variable.

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::ClientMethodOptions;
use azure_core::time::{Duration, OffsetDateTime};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertion, ClientAssertionCredential,
    ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

use super::AzureError;
use crate::config::azure::{AzureConfig, CredentialKind};

/// Where environment variables come from: the process, or a map in tests.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values treated as unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The environment variable holding the bearer token of the `static-token` credential.
pub(crate) const STATIC_TOKEN_VAR: &str = "JWK_ROTATOR_STATIC_TOKEN";
/// GitHub's audience for Entra ID workload identity federation.
const GITHUB_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The managed identity: `client_id` in `[store]`, else `AZURE_CLIENT_ID`, else the
/// system-assigned one; the choice is logged.
fn managed_identity(config: &AzureConfig, env: Env<'_>) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let choice = ManagedIdentityChoice::new(config, env);
    tracing::info!(identity = %choice, "managed identity chosen");
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: choice.client_id().map(|id| UserAssignedId::ClientId(id.to_owned())),
        ..Default::default()
    };
    Ok(ManagedIdentityCredential::new(Some(options))?)
}

/// Builds the credential `config` names, reading the environment through `env`.
pub fn credential(config: &AzureConfig, env: Env<'_>) -> Result<Arc<dyn TokenCredential>, AzureError> {
    let credential = config.credential;
    let missing =
        |setting: Option<&'static str>, var: &'static str| AzureError::Missing { credential, setting, var };
    let setting_or = |value: &Option<String>, setting: &'static str, var: &'static str| {
        value.clone().or_else(|| env(var)).ok_or_else(|| missing(Some(setting), var))
    };
    let need = |var: &'static str| env(var).ok_or_else(|| missing(None, var));
    let sdk = |e: azure_core::Error| AzureError::Credential { credential, cause: e.to_string() };
    Ok(match credential {
        CredentialKind::ManagedIdentity => managed_identity(config, env).map_err(sdk)?,
        CredentialKind::WorkloadIdentity => {
            let tenant = setting_or(&config.tenant_id, "tenant_id", "AZURE_TENANT_ID")?;
            let client = setting_or(&config.client_id, "client_id", "AZURE_CLIENT_ID")?;
            let file = need("AZURE_FEDERATED_TOKEN_FILE")?;
            let options = WorkloadIdentityCredentialOptions {
                client_id: Some(client),
                tenant_id: Some(tenant),
                token_file_path: Some(file.into()),
                ..Default::default()
            };
            WorkloadIdentityCredential::new(Some(options)).map_err(sdk)?
        }
        CredentialKind::GithubOidc => {
            let tenant = setting_or(&config.tenant_id, "tenant_id", "AZURE_TENANT_ID")?;
            let client = setting_or(&config.client_id, "client_id", "AZURE_CLIENT_ID")?;
            let assertion = GithubIdToken::from_env(env)?;
            ClientAssertionCredential::new(tenant, client, assertion, None).map_err(sdk)?
        }
        CredentialKind::AzureCli => {
            let options =
                AzureCliCredentialOptions { tenant_id: config.tenant_id.clone(), ..Default::default() };
            AzureCliCredential::new(Some(options)).map_err(sdk)?
        }
        CredentialKind::Developer => DeveloperToolsCredential::new(None).map_err(sdk)?,
        CredentialKind::ClientSecret => {
            let tenant = setting_or(&config.tenant_id, "tenant_id", "AZURE_TENANT_ID")?;
            let client = setting_or(&config.client_id, "client_id", "AZURE_CLIENT_ID")?;
            let secret = need("AZURE_CLIENT_SECRET")?;
            ClientSecretCredential::new(&tenant, client, Secret::new(secret), None).map_err(sdk)?
        }
        CredentialKind::StaticToken => Arc::new(StaticToken(Secret::new(need(STATIC_TOKEN_VAR)?))),
    })
}

/// Which managed identity `managed-identity` asks for: `client_id` in `[store]` wins, then
/// `AZURE_CLIENT_ID` (the variable the Azure SDKs and the Container Apps and App Service
/// identity docs use to pick a user-assigned identity), else the system-assigned identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ManagedIdentityChoice {
    Config(String),
    Env(String),
    SystemAssigned,
}

impl ManagedIdentityChoice {
    pub(crate) fn new(config: &AzureConfig, env: Env<'_>) -> Self {
        match (&config.client_id, env("AZURE_CLIENT_ID")) {
            (Some(id), _) => ManagedIdentityChoice::Config(id.clone()),
            (None, Some(id)) => ManagedIdentityChoice::Env(id),
            (None, None) => ManagedIdentityChoice::SystemAssigned,
        }
    }

    pub(crate) fn client_id(&self) -> Option<&str> {
        match self {
            ManagedIdentityChoice::Config(id) | ManagedIdentityChoice::Env(id) => Some(id),
            ManagedIdentityChoice::SystemAssigned => None,
        }
    }
}

impl fmt::Display for ManagedIdentityChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagedIdentityChoice::Config(id) => {
                write!(f, "user-assigned, client id {id} (client_id in [store])")
            }
            ManagedIdentityChoice::Env(id) => write!(f, "user-assigned, client id {id} (AZURE_CLIENT_ID)"),
            ManagedIdentityChoice::SystemAssigned => {
                f.write_str("system-assigned (neither client_id in [store] nor AZURE_CLIENT_ID is set)")
            }
        }
    }
}

/// A fixed bearer token, for emulators such as Lowkey Vault that accept any token.
pub struct StaticToken(pub Secret);

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticToken").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(self.0.clone(), OffsetDateTime::now_utc() + Duration::hours(1)))
    }
}

/// A client assertion that asks GitHub Actions for a fresh ID token every time, so that runs
/// longer than the ID token's few minutes keep working.
pub(crate) struct GithubIdToken {
    url: url::Url,
    bearer: Secret,
    http: reqwest::Client,
}

impl fmt::Debug for GithubIdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubIdToken")
            .field("url", &self.url.origin().ascii_serialization())
            .finish_non_exhaustive()
    }
}

impl GithubIdToken {
    fn from_env(env: Env<'_>) -> Result<Self, AzureError> {
        let need = |var: &'static str| {
            env(var).ok_or(AzureError::Missing { credential: CredentialKind::GithubOidc, setting: None, var })
        };
        let url = need("ACTIONS_ID_TOKEN_REQUEST_URL")?;
        let bearer = need("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?;
        let mut url = url::Url::parse(&url).map_err(|e| AzureError::VariableNotAUrl {
            var: "ACTIONS_ID_TOKEN_REQUEST_URL",
            cause: e.to_string(),
        })?;
        url.query_pairs_mut().append_pair("audience", GITHUB_AUDIENCE);
        Ok(GithubIdToken { url, bearer: Secret::new(bearer), http: reqwest::Client::new() })
    }
}

#[async_trait::async_trait]
impl ClientAssertion for GithubIdToken {
    async fn secret(&self, _options: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        #[derive(serde::Deserialize)]
        struct IdToken {
            value: String,
        }
        let fail = |what: String| azure_core::Error::with_message(ErrorKind::Credential, what);
        let response = self
            .http
            .get(self.url.clone())
            .bearer_auth(self.bearer.secret())
            .send()
            .await
            .map_err(|e| fail(format!("could not fetch a GitHub Actions ID token: {e}")))?;
        if !response.status().is_success() {
            return Err(fail(format!("GitHub Actions refused an ID token ({})", response.status())));
        }
        let token: IdToken = response.json().await.map_err(|e| {
            fail(format!("GitHub Actions sent an ID token response that could not be read: {e}"))
        })?;
        Ok(token.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(kind: &str) -> AzureConfig {
        let text = format!("vault_url = \"https://v.vault.azure.net/\"\ncredential = \"{kind}\"");
        toml::from_str(&text).expect("config")
    }

    fn build(kind: &str, vars: &[(&str, &str)]) -> Result<Arc<dyn TokenCredential>, AzureError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        credential(&config(kind), &|k| vars.get(k).cloned())
    }

    #[test]
    fn managed_identity_takes_azure_client_id_unless_the_config_names_one() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let from_env = env(&[("AZURE_CLIENT_ID", "11111111-1111-1111-1111-111111111111")]);
        let plain = config("managed-identity");
        let choice = ManagedIdentityChoice::new(&plain, &from_env);
        assert_eq!(choice.client_id(), Some("11111111-1111-1111-1111-111111111111"));
        assert!(choice.to_string().contains("(AZURE_CLIENT_ID)"), "{choice}");
        let mut named = config("managed-identity");
        named.client_id = Some("22222222-2222-2222-2222-222222222222".to_owned());
        let choice = ManagedIdentityChoice::new(&named, &from_env);
        assert_eq!(choice.client_id(), Some("22222222-2222-2222-2222-222222222222"));
        assert!(choice.to_string().contains("client_id in [store]"), "{choice}");
        let choice = ManagedIdentityChoice::new(&plain, &env(&[]));
        assert_eq!(choice, ManagedIdentityChoice::SystemAssigned);
        assert!(choice.to_string().contains("system-assigned"), "{choice}");
    }

    #[test]
    fn missing_settings_name_the_variable() {
        let missing = |kind: &str, vars: &[(&str, &str)]| match build(kind, vars) {
            Err(AzureError::Missing { setting, var, .. }) => (setting, var),
            Err(e) => panic!("{kind}: {e}"),
            Ok(_) => panic!("{kind}: built"),
        };
        let both = [("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")];
        assert_eq!(missing("client-secret", &both), (None, "AZURE_CLIENT_SECRET"));
        assert_eq!(missing("client-secret", &[]), (Some("tenant_id"), "AZURE_TENANT_ID"));
        assert_eq!(missing("static-token", &[]), (None, "JWK_ROTATOR_STATIC_TOKEN"));
        assert_eq!(missing("github-oidc", &both), (None, "ACTIONS_ID_TOKEN_REQUEST_URL"));
        assert_eq!(missing("workload-identity", &both), (None, "AZURE_FEDERATED_TOKEN_FILE"));
        // What each message says, with where the variable comes from.
        let shown =
            |kind: &str, vars: &[(&str, &str)]| build(kind, vars).map(|_| ()).unwrap_err().to_string();
        assert_eq!(
            shown("client-secret", &both),
            "credential = \"client-secret\" needs the environment variable AZURE_CLIENT_SECRET"
        );
        assert_eq!(
            shown("client-secret", &[]),
            "credential = \"client-secret\" needs tenant_id in [store] or the environment variable AZURE_TENANT_ID"
        );
        assert!(
            shown("static-token", &[])
                .ends_with("JWK_ROTATOR_STATIC_TOKEN (any token your emulator accepts)")
        );
        assert!(shown("github-oidc", &both).contains("ACTIONS_ID_TOKEN_REQUEST_URL, which GitHub Actions sets only when the workflow or job has `permissions: id-token: write`"));
        assert!(shown("workload-identity", &both).ends_with("AZURE_FEDERATED_TOKEN_FILE (set by AKS workload identity: label the pod azure.workload.identity/use=true)"));
        let gh = [("ACTIONS_ID_TOKEN_REQUEST_URL", "not a url"), ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t")];
        let bad_url = build("github-oidc", &[both[0], both[1], gh[0], gh[1]]).map(|_| ()).unwrap_err();
        assert!(
            matches!(bad_url, AzureError::VariableNotAUrl { var: "ACTIONS_ID_TOKEN_REQUEST_URL", .. }),
            "{bad_url}"
        );
    }

    #[test]
    fn complete_settings_build_each_credential_without_leaking_secrets() {
        let tenant = ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47");
        let client = ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001");
        build("client-secret", &[tenant, client, ("AZURE_CLIENT_SECRET", "s3cr3t")]).expect("client-secret");
        let gh = [
            tenant,
            client,
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://gh.example/x?a=1"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "s3cr3t"),
        ];
        let cred = build("github-oidc", &gh).expect("github-oidc");
        let cred =
            build("static-token", &[(STATIC_TOKEN_VAR, "s3cr3t")]).map(|c| format!("{c:?}")).expect("static")
                + &format!("{cred:?}");
        assert!(!cred.contains("s3cr3t"), "{cred}");
        build("managed-identity", &[]).expect("managed identity");
        build("azure-cli", &[]).expect("azure cli");
    }

    /// A stand-in for GitHub's token endpoint: checks the bearer and audience, counts calls.
    async fn github_endpoint() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app =
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap, uri: axum::http::Uri| {
                let counter = counter.clone();
                async move {
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok())
                        == Some("Bearer request-token");
                    let audience =
                        uri.query().unwrap_or_default().contains("audience=api%3A%2F%2FAzureADTokenExchange");
                    if bearer && audience {
                        (axum::http::StatusCode::OK, format!(r#"{{"count":1,"value":"id-token-{n}"}}"#))
                    } else {
                        (axum::http::StatusCode::UNAUTHORIZED, String::new())
                    }
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/token?api-version=2.0", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        (url, calls)
    }

    #[tokio::test]
    async fn the_github_assertion_fetches_a_fresh_id_token_each_time() {
        let (url, calls) = github_endpoint().await;
        let vars: HashMap<&str, String> = [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token".to_owned()),
        ]
        .into();
        let assertion = GithubIdToken::from_env(&|k| vars.get(k).cloned()).expect("assertion");
        assert_eq!(assertion.secret(None).await.expect("first"), "id-token-1");
        assert_eq!(assertion.secret(None).await.expect("second"), "id-token-2");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        let wrong: HashMap<&str, String> = [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", vars["ACTIONS_ID_TOKEN_REQUEST_URL"].clone()),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "stale".to_owned()),
        ]
        .into();
        let refused = GithubIdToken::from_env(&|k| wrong.get(k).cloned()).expect("assertion");
        let e = refused.secret(None).await.expect_err("refused").to_string();
        assert!(e.contains("GitHub Actions refused an ID token (401") && !e.contains("stale"), "{e}");
    }

    #[test]
    fn the_github_assertion_asks_for_the_entra_audience() {
        let vars: HashMap<&str, &str> = [
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://gh.example/token?api-version=2.0"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "b"),
        ]
        .into();
        let token = GithubIdToken::from_env(&|k| vars.get(k).map(|v| v.to_string())).expect("assertion");
        assert_eq!(
            token.url.as_str(),
            "https://gh.example/token?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange"
        );
    }
}
