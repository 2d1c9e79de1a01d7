//! Key Vault failures turned into store errors that say what to do: the missing role, the
//! soft-deleted name to recover or purge, the URL that could not be reached.

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;

use crate::store::{Place, StoreError};

/// The service's error code and inner code, read from the response body.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Codes {
    pub code: Option<String>,
    pub inner: Option<String>,
}

/// The codes of an HTTP error from Key Vault (`{"error":{"code":..,"innererror":{"code":..}}}`).
pub(super) fn codes(e: &azure_core::Error) -> Codes {
    let ErrorKind::HttpResponse { error_code, raw_response, .. } = e.kind() else {
        return Codes::default();
    };
    let body: Option<serde_json::Value> =
        raw_response.as_ref().and_then(|r| serde_json::from_slice(r.body().as_ref()).ok());
    let field = |path: &[&str]| {
        let mut v = body.as_ref()?;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str().map(str::to_owned)
    };
    Codes {
        code: field(&["error", "code"]).or_else(|| error_code.clone()),
        inner: field(&["error", "innererror", "code"]),
    }
}

/// The error and its sources in one line: `reqwest` hides DNS and TLS causes in the chain.
fn chain(e: &azure_core::Error) -> String {
    crate::chain::describe(e)
}

/// Makes a store error of one kind from its place and message.
type Make = fn(Place, String) -> StoreError;

const DENIED: Make = |place, message| StoreError::Denied { place, message };
const FAILED: Make = |place, message| StoreError::Failed { place, message };
const NOT_FOUND: Make = |place, message| StoreError::NotFound { place, message };
const THROTTLED: Make = |place, message| StoreError::Throttled { place, message };
const UNAVAILABLE: Make = |place, message| StoreError::Unavailable { place, message };

/// Maps an SDK error of `action` (such as `write secret jwk-x`) on the vault at `vault`, about
/// `secret` when it names one. `role` is the RBAC role the action needs.
pub(crate) fn store_error(
    vault: &str,
    secret: Option<&str>,
    action: &str,
    role: &str,
    e: &azure_core::Error,
) -> StoreError {
    let place = Place::Vault { url: vault.to_owned(), secret: secret.map(str::to_owned) };
    let (make, message) = match e.http_status() {
        Some(status) => http_error(status, vault, action, role, e),
        None => transport_error(vault, action, e),
    };
    make(place, message)
}

/// An error the vault answered with `status`.
fn http_error(
    status: StatusCode,
    vault: &str,
    action: &str,
    role: &str,
    e: &azure_core::Error,
) -> (Make, String) {
    let Codes { code, inner } = codes(e);
    let code_text = match (&code, &inner) {
        (Some(c), Some(i)) => format!("{c}/{i}"),
        (Some(c), None) => c.clone(),
        _ => String::new(),
    };
    match status {
        StatusCode::Unauthorized => (
            DENIED,
            format!(
                "Key Vault {vault} refused the token for {action} (401 {code_text}): check the credential's tenant and that it gets tokens for https://vault.azure.net"
            ),
        ),
        StatusCode::Forbidden if inner.as_deref() == Some("SecretDisabled") => (
            FAILED,
            format!(
                "Key Vault {vault}: {action} found the secret version disabled (403 SecretDisabled); enable it again (az keyvault secret set-attributes --enabled true) if it should be in use"
            ),
        ),
        StatusCode::Forbidden => (
            DENIED,
            format!(
                "Key Vault {vault} denied {action} (403 {code_text}): the identity this tool runs as needs the role \"{role}\" on the vault (az role assignment create --role \"{role}\" --assignee <principal id> --scope <vault resource id>)"
            ),
        ),
        StatusCode::NotFound if code.as_deref() == Some("SecretNotFound") => {
            (NOT_FOUND, format!("Key Vault {vault}: {action}: no such secret"))
        }
        StatusCode::NotFound => (
            UNAVAILABLE,
            format!(
                "Key Vault {vault} answered 404 ({code_text}) to {action}: check vault_url; is this the vault's URI as the Azure portal shows it?"
            ),
        ),
        StatusCode::Conflict if inner.as_deref() == Some("ObjectIsDeletedButRecoverable") => (
            FAILED,
            format!(
                "Key Vault {vault}: {action} is blocked by a soft-deleted secret of that name (409 ObjectIsDeletedButRecoverable): recover it with `az keyvault secret recover --vault-name <vault> --name <name>` or purge it with `az keyvault secret purge --vault-name <vault> --name <name>` (needs \"Key Vault Purge Operator\"), then run again"
            ),
        ),
        StatusCode::TooManyRequests => (
            THROTTLED,
            format!(
                "Key Vault {vault} kept throttling {action} (429 {code_text}) after all retries: run again later, with fewer key sets at once, or raise [store.retry] max_retries"
            ),
        ),
        status => (
            FAILED,
            format!("Key Vault {vault}: {action} failed ({} {code_text}): {}", u16::from(status), chain(e)),
        ),
    }
}

/// An SDK error without an HTTP status: no token, no connection, a refused certificate.
fn transport_error(vault: &str, action: &str, e: &azure_core::Error) -> (Make, String) {
    match e.kind() {
        ErrorKind::Credential => (
            UNAVAILABLE,
            format!(
                "could not get a token for Key Vault {vault}: {}; check the [store] credential setting and its environment",
                chain(e)
            ),
        ),
        ErrorKind::Io | ErrorKind::Connection if chain(e).contains("invalid peer certificate") => (
            UNAVAILABLE,
            format!(
                "cannot reach Key Vault at {vault} ({action}): {}; the server's TLS certificate was refused: for an emulator, set ca_cert to its certificate (a self-signed one works as it is) or to the CA that signed it; the certificate must name the host of vault_url in its subjectAltName and be within its dates, e.g. openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout key.pem -out cert.pem",
                chain(e)
            ),
        ),
        ErrorKind::Io | ErrorKind::Connection => (
            UNAVAILABLE,
            format!(
                "cannot reach Key Vault at {vault} ({action}): {}; check vault_url, DNS and the network, and for an emulator with its own certificate set ca_cert",
                chain(e)
            ),
        ),
        _ if chain(e).contains("challenge resource") => (
            UNAVAILABLE,
            format!(
                "Key Vault {vault}: {action}: {}; a real vault's URL ends in .vault.azure.net, and for an emulator set verify_challenge_resource = false in [store]",
                chain(e)
            ),
        ),
        _ => (FAILED, format!("Key Vault {vault}: {action} failed: {}", chain(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::RawResponse;
    use azure_core::http::headers::Headers;

    fn http(status: StatusCode, body: &str) -> azure_core::Error {
        let raw = RawResponse::from_bytes(status, Headers::new(), body.as_bytes().to_vec());
        azure_core::Error::with_message(
            ErrorKind::HttpResponse { status, error_code: None, raw_response: Some(Box::new(raw)) },
            "request failed",
        )
    }

    #[test]
    fn a_403_names_the_role() {
        let e = http(
            StatusCode::Forbidden,
            r#"{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByRbac"}}}"#,
        );
        let error =
            store_error("https://v.vault.azure.net/", None, "list secrets", "Key Vault Secrets Officer", &e);
        let vault = Place::vault("https://v.vault.azure.net/");
        assert!(matches!(&error, StoreError::Denied { place, .. } if *place == vault), "{error:?}");
        let msg = error.to_string();
        assert!(msg.contains("\"Key Vault Secrets Officer\" on the vault"), "{msg}");
        assert!(msg.contains("Forbidden/ForbiddenByRbac"), "{msg}");
    }

    #[test]
    fn soft_deleted_names_say_how_to_recover_or_purge() {
        let e = http(
            StatusCode::Conflict,
            r#"{"error":{"code":"Conflict","innererror":{"code":"ObjectIsDeletedButRecoverable"}}}"#,
        );
        let msg = store_error("V", Some("jwk-a"), "write secret jwk-a", "Key Vault Secrets Officer", &e)
            .to_string();
        assert!(
            msg.contains("az keyvault secret recover") && msg.contains("az keyvault secret purge"),
            "{msg}"
        );
    }

    #[test]
    fn disabled_versions_are_recognised() {
        let e = http(
            StatusCode::Forbidden,
            r#"{"error":{"code":"Forbidden","innererror":{"code":"SecretDisabled"}}}"#,
        );
        let error = store_error("V", Some("a"), "read secret a", "Key Vault Secrets Officer", &e);
        assert!(matches!(&error, StoreError::Failed { place, .. } if *place == Place::secret("V", "a")));
        let msg = error.to_string();
        assert!(msg.contains("disabled (403 SecretDisabled)") && !msg.contains("role"), "{msg}");
    }
}
