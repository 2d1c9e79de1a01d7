//! The fake vault's protocol, checked through the real `SecretClient`: latest by trailing
//! slash, paging with encoded `$skiptoken`s, disabled versions, soft delete, recover and purge.

use std::sync::Arc;

use azure_core::http::{ClientOptions, StatusCode, Transport};
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SecretClientGetSecretOptions, SecretClientListSecretPropertiesOptions,
    SecretClientListSecretPropertiesVersionsOptions, SecretClientUpdateSecretPropertiesOptions,
    SetSecretParameters, UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures::TryStreamExt;

use super::FakeVault;
use super::fake::net::{FakeCredential, RewriteTransport};

fn sdk(vault: &FakeVault) -> SecretClient {
    let client_options = ClientOptions {
        transport: Some(Transport::new(RewriteTransport::new(vault.addr))),
        ..Default::default()
    };
    let options = SecretClientOptions { client_options, ..Default::default() };
    SecretClient::new(&vault.url(), Arc::new(FakeCredential), Some(options)).expect("client")
}

async fn set(client: &SecretClient, name: &str, value: &str) -> azure_core::Result<String> {
    let params = SetSecretParameters { value: Some(value.to_owned()), ..Default::default() };
    let secret = client.set_secret(name, params.try_into()?, None).await?.into_model()?;
    Ok(secret.resource_id()?.version.unwrap_or_default())
}

async fn latest(client: &SecretClient, name: &str) -> azure_core::Result<String> {
    Ok(client.get_secret(name, None).await?.into_model()?.value.unwrap_or_default())
}

#[tokio::test]
async fn fake_vault_pages_with_encoded_skiptokens_and_serves_latest() {
    let vault = FakeVault::start("protocol-pages").await;
    let client = sdk(&vault);
    for i in 0..30 {
        set(&client, "many", &format!("v{i}")).await.expect("set");
        set(&client, &format!("s{i:02}"), "x").await.expect("set");
    }
    assert_eq!(latest(&client, "many").await.expect("latest"), "v29", "GET /secrets/many/ is the latest");
    let options =
        SecretClientListSecretPropertiesVersionsOptions { maxresults: Some(7), ..Default::default() };
    let versions: Vec<_> = client
        .list_secret_properties_versions("many", Some(options))
        .expect("pager")
        .try_collect()
        .await
        .expect("list");
    assert_eq!(versions.len(), 30);
    let options = SecretClientListSecretPropertiesOptions { maxresults: Some(25), ..Default::default() };
    let secrets: Vec<_> =
        client.list_secret_properties(Some(options)).expect("pager").try_collect().await.expect("list");
    assert_eq!(secrets.len(), 31);
    let log = vault.log();
    assert!(log.iter().any(|l| l.contains("%24skiptoken=")), "the SDK sends the encoded token: {log:?}");
    assert!(log.iter().any(|l| l.contains("GET /secrets/many/?")), "{log:?}");
    assert_eq!(log.iter().filter(|l| l.starts_with("401 ")).count(), 1, "one challenge per client");
}

#[tokio::test]
async fn fake_vault_refuses_to_read_disabled_versions() {
    let vault = FakeVault::start("protocol-disabled").await;
    let client = sdk(&vault);
    let first = set(&client, "k", "one").await.expect("set");
    set(&client, "k", "two").await.expect("set");
    let params = UpdateSecretPropertiesParameters {
        secret_attributes: Some(SecretAttributes { enabled: Some(false), ..Default::default() }),
        ..Default::default()
    };
    let options = SecretClientUpdateSecretPropertiesOptions {
        secret_version: Some(first.clone()),
        ..Default::default()
    };
    client
        .update_secret_properties("k", params.try_into().expect("json"), Some(options))
        .await
        .expect("disable");
    let options = SecretClientGetSecretOptions { secret_version: Some(first), ..Default::default() };
    let e = client.get_secret("k", Some(options)).await.expect_err("disabled");
    assert_eq!(e.http_status(), Some(StatusCode::Forbidden));
    let body = azure_core::error::ErrorResponse::try_from(e).expect("error body");
    let inner = body.error.and_then(|d| d.inner_error).and_then(|i| i.code);
    assert_eq!(inner.as_deref(), Some("SecretDisabled"));
    assert_eq!(latest(&client, "k").await.expect("latest"), "two");
}

#[tokio::test]
async fn fake_vault_soft_deletes_and_then_recovers_or_purges() {
    let vault = FakeVault::start("protocol-delete").await;
    vault.state().conflicts_after_delete = 1;
    let client = sdk(&vault);
    set(&client, "gone", "one").await.expect("set");
    client.delete_secret("gone", None).await.expect("delete");
    assert_eq!(latest(&client, "gone").await.expect_err("deleted").http_status(), Some(StatusCode::NotFound));
    let blocked = set(&client, "gone", "two").await.expect_err("soft-deleted");
    assert_eq!(blocked.http_status(), Some(StatusCode::Conflict));
    let body = azure_core::error::ErrorResponse::try_from(blocked).expect("error body");
    assert_eq!(
        body.error.and_then(|d| d.inner_error).and_then(|i| i.code).as_deref(),
        Some("ObjectIsDeletedButRecoverable")
    );
    let busy = client.recover_deleted_secret("gone", None).await.expect_err("still deleting");
    assert_eq!(busy.http_status(), Some(StatusCode::Conflict));
    client.recover_deleted_secret("gone", None).await.expect("recover");
    assert_eq!(latest(&client, "gone").await.expect("recovered"), "one");
    client.delete_secret("gone", None).await.expect("delete");
    let busy = client.purge_deleted_secret("gone", None).await.expect_err("still deleting");
    assert_eq!(busy.http_status(), Some(StatusCode::Conflict));
    client.purge_deleted_secret("gone", None).await.expect("purge");
    set(&client, "gone", "three").await.expect("the name is free again");
}
