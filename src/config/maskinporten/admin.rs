//! The organisation's admin client in `[maskinporten.ENV]`: its client id, scopes, business
//! certificate (exactly one source) and how its grants name the certificate. A password is only
//! ever named by the environment variable that holds it.

use std::path::{Path, PathBuf};

use super::super::SettingError;
use super::RawEnvironment;

/// The admin scopes asked for by default: read and replace a client's keys. Digdir also has
/// `idporten:dcr.modify`, which may change existing clients but not create them: the narrowest
/// scope that can replace a key set.
pub(crate) const DEFAULT_ADMIN_SCOPES: [&str; 2] = ["idporten:dcr.read", "idporten:dcr.write"];

/// Where the admin client's business certificate and key come from.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminCertificate {
    /// A PKCS#12 file; its password is in the environment variable `password_env`.
    Pkcs12 { path: PathBuf, password_env: Option<String> },
    /// A PEM certificate chain (leaf first) and a PEM private key.
    Pem { certificate: PathBuf, key: PathBuf },
    /// A Key Vault certificate, read through its backing secret in the `[store]` vault.
    KeyVaultSecret { name: String },
}

impl std::fmt::Debug for AdminCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminCertificate::Pkcs12 { path, password_env } => {
                f.debug_struct("Pkcs12").field("path", path).field("password_env", password_env).finish()
            }
            AdminCertificate::Pem { certificate, key } => {
                f.debug_struct("Pem").field("certificate", certificate).field("key", key).finish()
            }
            AdminCertificate::KeyVaultSecret { name } => {
                f.debug_struct("KeyVaultSecret").field("name", name).finish()
            }
        }
    }
}

impl AdminCertificate {
    /// The setting that names the certificate, for messages.
    pub fn setting(&self) -> String {
        match self {
            AdminCertificate::Pkcs12 { path, .. } => {
                format!("admin_certificate = {:?}", path.display().to_string())
            }
            AdminCertificate::Pem { certificate, .. } => {
                format!("admin_certificate_pem = {:?}", certificate.display().to_string())
            }
            AdminCertificate::KeyVaultSecret { name } => format!("admin_certificate_secret = {name:?}"),
        }
    }
}

/// The organisation's admin client, which reads and replaces client key sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminClient {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub certificate: AdminCertificate,
    /// `admin_auth = "kid"`: the kid under which Digdir registered the certificate on the admin
    /// client, which its grants then carry instead of the chain (`x5c`, the default: `None`).
    pub kid: Option<String>,
}

/// The admin client of `raw`, if it has one; its files anchored at `base`.
pub(super) fn admin_client(raw: &RawEnvironment, base: &Path) -> Result<Option<AdminClient>, SettingError> {
    let Some(client_id) = &raw.admin_client_id else {
        let any = certificate_sources(raw) > 0
            || raw.admin_scopes.is_some()
            || raw.admin_auth.is_some()
            || raw.admin_kid.is_some();
        if any {
            return Err(SettingError::new(
                "admin_client_id",
                "an admin certificate is set but admin_client_id is missing: give the organisation's self-service client id, as Digdir's service desk issued it",
            ));
        }
        return Ok(None);
    };
    if client_id.trim().is_empty() {
        return Err(SettingError::new("admin_client_id", "admin_client_id is empty"));
    }
    let certificate = admin_certificate(raw, client_id, base)?;
    let scopes = admin_scopes(raw.admin_scopes.as_deref())?;
    let kid = admin_kid(raw)?;
    Ok(Some(AdminClient { client_id: client_id.clone(), scopes, certificate, kid }))
}

/// How many of the three certificate sources are set.
fn certificate_sources(raw: &RawEnvironment) -> usize {
    [
        raw.admin_certificate.is_some(),
        raw.admin_certificate_pem.is_some() || raw.admin_key_pem.is_some(),
        raw.admin_certificate_secret.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count()
}

/// The one business certificate of the admin client `client_id`.
fn admin_certificate(
    raw: &RawEnvironment,
    client_id: &str,
    base: &Path,
) -> Result<AdminCertificate, SettingError> {
    let given = certificate_sources(raw);
    if given != 1 {
        return Err(SettingError::new(
            "admin_client_id",
            format!(
                "admin_client_id = {client_id:?} needs exactly one business certificate: admin_certificate (PKCS#12) with admin_certificate_password_env, admin_certificate_pem with admin_key_pem, or admin_certificate_secret (a Key Vault certificate); {given} are set"
            ),
        ));
    }
    let password_env = raw.admin_certificate_password_env.as_ref();
    if let Some(path) = &raw.admin_certificate {
        if let Some(var) = password_env.filter(|var| !is_variable_name(var)) {
            return Err(SettingError::new(
                "admin_certificate_password_env",
                format!(
                    "admin_certificate_password_env = {var:?} must name an environment variable (letters, digits, '_'), not hold the password"
                ),
            ));
        }
        return Ok(AdminCertificate::Pkcs12 { path: base.join(path), password_env: password_env.cloned() });
    }
    if let Some(name) = &raw.admin_certificate_secret {
        return key_vault_certificate(name, password_env.is_some());
    }
    match (&raw.admin_certificate_pem, &raw.admin_key_pem) {
        (Some(cert), Some(key)) => {
            Ok(AdminCertificate::Pem { certificate: base.join(cert), key: base.join(key) })
        }
        (Some(_), None) => Err(SettingError::new(
            "admin_key_pem",
            "admin_certificate_pem is set without admin_key_pem: give the PEM file of the certificate's private key too",
        )),
        _ => Err(SettingError::new(
            "admin_certificate_pem",
            "admin_key_pem is set without admin_certificate_pem: give the PEM certificate chain (leaf first) too",
        )),
    }
}

/// An environment variable's name: letters, digits and `_`.
fn is_variable_name(var: &str) -> bool {
    !var.is_empty() && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `admin_certificate_secret`: a Key Vault certificate's name, whose secret has no password.
fn key_vault_certificate(name: &str, password_env: bool) -> Result<AdminCertificate, SettingError> {
    if password_env {
        return Err(SettingError::new(
            "admin_certificate_password_env",
            "admin_certificate_password_env goes with admin_certificate (a PKCS#12 file); a Key Vault certificate's secret has no password",
        ));
    }
    let ok =
        !name.is_empty() && name.len() <= 127 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !ok {
        return Err(SettingError::new(
            "admin_certificate_secret",
            format!(
                "admin_certificate_secret = {name:?} is not a Key Vault certificate name: use letters, digits and '-'"
            ),
        ));
    }
    Ok(AdminCertificate::KeyVaultSecret { name: name.to_owned() })
}

/// `admin_scopes`, one scope per string, or the default ones.
fn admin_scopes(scopes: Option<&[String]>) -> Result<Vec<String>, SettingError> {
    match scopes {
        None => Ok(DEFAULT_ADMIN_SCOPES.iter().map(|s| (*s).to_owned()).collect()),
        Some(scopes)
            if scopes.is_empty() || scopes.iter().any(|s| s.trim().is_empty() || s.contains(' ')) =>
        {
            Err(SettingError::new(
                "admin_scopes",
                format!(
                    "admin_scopes = {scopes:?} must list scopes, one per string, such as [\"idporten:dcr.read\", \"idporten:dcr.write\"]"
                ),
            ))
        }
        Some(scopes) => Ok(scopes.to_vec()),
    }
}

/// `admin_auth` and `admin_kid`: whether the admin client's grants carry the certificate chain
/// (`x5c`, the default) or the kid under which Digdir registered the certificate on the admin
/// client, which such a client "can and must" use (docs.digdir.no `maskinporten_protocol_jwtgrant`).
fn admin_kid(raw: &RawEnvironment) -> Result<Option<String>, SettingError> {
    let kid_ok = |kid: &str| !kid.is_empty() && kid.len() <= 200 && kid.bytes().all(|b| b.is_ascii_graphic());
    match (raw.admin_auth.as_deref(), &raw.admin_kid) {
        (None | Some("x5c"), None) => Ok(None),
        (Some("kid"), Some(kid)) if kid_ok(kid) => Ok(Some(kid.clone())),
        (Some("kid"), Some(kid)) => Err(SettingError::new(
            "admin_kid",
            format!(
                "admin_kid = {kid:?} is not a kid: give the key id Digdir registered the business certificate under, without spaces"
            ),
        )),
        (Some("kid"), None) => Err(SettingError::new(
            "admin_kid",
            "admin_auth = \"kid\" needs admin_kid: the key id under which Digdir registered the business certificate on the admin client (ask the service desk), or leave admin_auth out to send the certificate chain (x5c)",
        )),
        (None | Some("x5c"), Some(kid)) => Err(SettingError::new(
            "admin_kid",
            format!(
                "admin_kid = {kid:?} is set but admin_auth is not \"kid\": set admin_auth = \"kid\" when Digdir registered the business certificate on the admin client, or remove admin_kid"
            ),
        )),
        (Some(other), _) => Err(SettingError::new(
            "admin_auth",
            format!(
                "admin_auth = {other:?} is not \"x5c\" (send the business certificate's chain, the default) or \"kid\" (name the certificate Digdir registered on the admin client, with admin_kid)"
            ),
        )),
    }
}
