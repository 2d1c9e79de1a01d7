//! The organisation's admin client credential: its business certificate (virksomhetssertifikat)
//! with the certificate chain and the RSA private key, which sign the grants for Digdir's
//! self-service API (`x5c` in the grant's header). Read from PEM, from PKCS#12, or from the secret
//! behind a Key Vault certificate. Errors never hold key material, and leave naming the file or
//! secret to the caller (`admin_certificate business.p12: wrong password ...`).

use std::fmt;

use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use p12_keystore::Pkcs12Archive;
use p12_keystore::error::Error as P12Error;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use zeroize::Zeroizing;

/// Why an admin credential could not be read. The messages say what was found and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminCredentialError {
    #[error(
        "no certificate found: give the business certificate, then its intermediates, as PEM \
         `-----BEGIN CERTIFICATE-----` blocks"
    )]
    NoCertificate,
    #[error("the certificates are not readable PEM: {0}")]
    CertificatePem(String),
    #[error("certificate {index} (0 is the first) is not a readable X.509 certificate: {reason}")]
    Certificate { index: usize, reason: String },
    #[error(
        "no private key found: give a PEM `-----BEGIN PRIVATE KEY-----` (PKCS#8) or \
         `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1) block"
    )]
    NoKey,
    #[error("the private key's PEM is damaged (bad base64 or no END line): export the key again")]
    KeyPem,
    #[error(
        "the private key is encrypted: decrypt it (`openssl pkey -in key.pem -out plain.pem`, \
         the file readable by this service only) or give the PKCS#12 file and its password instead"
    )]
    EncryptedKey,
    #[error(
        "the private key is {found}, but business certificates for Maskinporten have RSA keys: \
         give the organisation's RSA business certificate"
    )]
    NotRsa { found: String },
    #[error("the private key is not a usable RSA key ({reason}); 2048 to 8192 bits are supported")]
    BadKey { reason: String },
    #[error(
        "the private key does not belong to the certificate {subject}: give the key issued with \
         the business certificate, and the business certificate first in the chain"
    )]
    KeyMismatch { subject: String },
    #[error(
        "none of the {count} certificates in the PKCS#12 file belongs to its private key: export \
         the business certificate together with its own private key"
    )]
    NoMatchingCertificate { count: usize },
    #[error("the PKCS#12 file holds no private key: export the business certificate with its private key")]
    NoKeyInPkcs12,
    #[error(
        "wrong password: the PKCS#12 file does not open with it (its integrity check fails); \
         check the password, or whether the file is damaged"
    )]
    WrongPassword,
    #[error("not a PKCS#12 (.p12/.pfx) file ({reason}); a PEM certificate and key are given as PEM instead")]
    NotPkcs12 { reason: String },
    #[error(
        "the PKCS#12 file uses an algorithm this tool cannot read ({reason}): export it again with \
         OpenSSL 3 (`openssl pkcs12 -export`, AES-256 by default)"
    )]
    Unsupported { reason: String },
    #[error(
        "the secret holds neither a base64 PKCS#12 (content type application/x-pkcs12) nor PEM \
         (application/x-pem-file): name the secret of a Key Vault certificate, which has the \
         certificate's name"
    )]
    SecretFormat,
    #[error(
        "the secret holds a PKCS#12 with a password, but a Key Vault certificate's secret has none: \
         import the business certificate as a Key Vault certificate (`az keyvault certificate \
         import`), not as a password-protected secret"
    )]
    SecretPassword,
    #[error(
        "the secret holds the certificate without its private key: the Key Vault certificate's \
         policy must mark the key exportable (non-exportable and HSM keys cannot sign here)"
    )]
    SecretWithoutKey,
}

use AdminCredentialError as E;

/// Which part of a PEM certificate and key an error is about, so that it names that setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Concerns {
    Certificate,
    Key,
    /// The key does not belong to the certificate.
    Both,
}

impl AdminCredentialError {
    /// Which part the error is about: the certificate chain, the private key, or both.
    pub(crate) fn concerns(&self) -> Concerns {
        match self {
            E::NoKey | E::KeyPem | E::EncryptedKey | E::NotRsa { .. } | E::BadKey { .. } => Concerns::Key,
            E::KeyMismatch { .. } | E::NoMatchingCertificate { .. } => Concerns::Both,
            _ => Concerns::Certificate,
        }
    }
}

/// The business certificate's chain (leaf first) and its RSA private key. `Debug` shows the
/// subject and expiry only.
pub(crate) struct AdminCredential {
    chain: Vec<CertificateDer<'static>>,
    key: KeyPair,
    not_after: DateTime<Utc>,
    subject: String,
}

impl fmt::Debug for AdminCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminCredential")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl AdminCredential {
    /// From a PEM chain (the business certificate first, then its intermediates) and a PEM
    /// private key, PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`), unencrypted. The key
    /// must belong to the first certificate.
    pub(crate) fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, AdminCredentialError> {
        let chain = pem_certificates(cert_chain_pem)?;
        let key = pem_key(key_pem)?.key_pair()?;
        Self::assemble(chain, key)
    }

    /// From a PKCS#12 (.p12/.pfx) file's bytes and its password. Reads the modern encryption
    /// (PBES2 with AES, OpenSSL 3's default) and the legacy one (3DES and RC2-40, older tools and
    /// Windows). The first private key is the business certificate's; the chain is built from
    /// the certificate that belongs to it up through its issuers in the file.
    pub(crate) fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, AdminCredentialError> {
        let archive = Pkcs12Archive::from_pkcs12(der, password).map_err(pkcs12_error)?;
        let bag = archive.keys.first().ok_or(E::NoKeyInPkcs12)?;
        let key = KeyDer::Pkcs8(Zeroizing::new(bag.key.as_der().to_vec())).key_pair()?;
        let certs = archive.certs.iter().map(|c| CertificateDer::from(c.cert.as_der().to_vec())).collect();
        let chain = chain_from_leaf(&key, certs)?;
        Self::assemble(chain, key)
    }

    /// From the value of the secret behind a Key Vault certificate, read through the secrets
    /// API: base64 PKCS#12 without a password (content type `application/x-pkcs12`), or PEM
    /// with the key and the chain (`application/x-pem-file`).
    ///
    /// Microsoft, "About Azure Key Vault certificates" (Composition of a certificate;
    /// Exportable or non-exportable key): a certificate has an addressable secret of the same
    /// name, from which it is retrieved with its private key in PFX or PEM format, and without
    /// the key when the policy marks it non-exportable. "Export certificates from Azure Key
    /// Vault": Key Vault does not keep an imported certificate's password, so "when you export
    /// the certificate, the password is blank"; its PowerShell example base64-decodes the
    /// secret's value to the PFX bytes.
    pub(crate) fn from_key_vault_secret(value: &str) -> Result<Self, AdminCredentialError> {
        let text = value.trim();
        if text.starts_with("-----BEGIN") {
            return Self::from_pem(text.as_bytes(), text.as_bytes()).map_err(secret_error);
        }
        let compact = Zeroizing::new(text.split_ascii_whitespace().collect::<String>());
        let der = Zeroizing::new(STANDARD.decode(compact.as_bytes()).map_err(|_| E::SecretFormat)?);
        Self::from_pkcs12(&der, "").map_err(secret_error)
    }

    /// The chain for `x5c`: the business certificate first, then its issuers.
    pub(crate) fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key that belongs to the first certificate.
    pub(crate) fn key(&self) -> &KeyPair {
        &self.key
    }

    /// When the business certificate expires.
    pub(crate) fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// The business certificate's subject (`CN=..., O=..., serialNumber=<org number>, C=NO`).
    pub(crate) fn subject(&self) -> &str {
        &self.subject
    }

    fn assemble(chain: Vec<CertificateDer<'static>>, key: KeyPair) -> Result<Self, AdminCredentialError> {
        let leaf = Meta::parse(chain.first().ok_or(E::NoCertificate)?, 0)?;
        if leaf.rsa_public_key.as_deref() != Some(key.public_key().as_ref()) {
            return Err(E::KeyMismatch { subject: leaf.subject });
        }
        Ok(AdminCredential { chain, key, not_after: leaf.not_after, subject: leaf.subject })
    }
}

/// A private key's DER, by its encoding; zeroed when dropped.
enum KeyDer {
    Pkcs1(Zeroizing<Vec<u8>>),
    Pkcs8(Zeroizing<Vec<u8>>),
}

impl KeyDer {
    fn key_pair(&self) -> Result<KeyPair, AdminCredentialError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| E::BadKey { reason: e.to_string() };
        match self {
            KeyDer::Pkcs1(der) => KeyPair::from_der(der).map_err(rejected),
            KeyDer::Pkcs8(der) => {
                require_rsa(der)?;
                KeyPair::from_pkcs8(der).map_err(rejected)
            }
        }
    }
}

/// Refuses a PKCS#8 key of another type than RSA, naming the type.
fn require_rsa(pkcs8: &[u8]) -> Result<(), AdminCredentialError> {
    const EC: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const ED25519: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");
    let info = pkcs8::PrivateKeyInfo::try_from(pkcs8)
        .map_err(|_| E::BadKey { reason: "not a PKCS#8 private key".to_owned() })?;
    let oid = info.algorithm.oid;
    let found = if oid == pkcs1::ALGORITHM_OID {
        return Ok(());
    } else if oid == EC {
        "an EC key".to_owned()
    } else if oid == ED25519 {
        "an Ed25519 key".to_owned()
    } else {
        format!("a key of type {oid}")
    };
    Err(E::NotRsa { found })
}

/// One PEM section of any known kind, its body zeroed when dropped.
struct Section(SectionKind, Zeroizing<Vec<u8>>);

impl PemObject for Section {
    fn from_pem(kind: SectionKind, der: Vec<u8>) -> Option<Self> {
        Some(Section(kind, Zeroizing::new(der)))
    }
}

/// The first private key in `pem`. PEM errors are not quoted: they may hold key text.
fn pem_key(pem: &[u8]) -> Result<KeyDer, AdminCredentialError> {
    let has = |marker: &[u8]| pem.windows(marker.len()).any(|w| w == marker);
    if has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED") {
        return Err(E::EncryptedKey);
    }
    for section in Section::pem_slice_iter(pem) {
        let Section(kind, der) = section.map_err(|_| E::KeyPem)?;
        match kind {
            SectionKind::RsaPrivateKey => return Ok(KeyDer::Pkcs1(der)),
            SectionKind::PrivateKey => return Ok(KeyDer::Pkcs8(der)),
            SectionKind::EcPrivateKey => return Err(E::NotRsa { found: "an EC key".to_owned() }),
            _ => {}
        }
    }
    Err(E::NoKey)
}

/// Every certificate in `pem`, in order.
fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, AdminCredentialError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, pem::Error>>()
        .map_err(|e| E::CertificatePem(e.to_string()))?;
    if certs.is_empty() {
        return Err(E::NoCertificate);
    }
    Ok(certs)
}

/// What the credential needs from a certificate.
struct Meta {
    subject: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    not_after: DateTime<Utc>,
    /// The RSAPublicKey DER, for an RSA certificate.
    rsa_public_key: Option<Vec<u8>>,
}

impl Meta {
    fn parse(cert: &CertificateDer<'_>, index: usize) -> Result<Meta, AdminCredentialError> {
        let bad = |reason: String| E::Certificate { index, reason };
        let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| bad(e.to_string()))?;
        let not_after = DateTime::from_timestamp(x509.validity().not_after.timestamp(), 0)
            .ok_or_else(|| bad("its expiry date is out of range".to_owned()))?;
        let spki = x509.public_key();
        let rsa_public_key = (spki.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION)
            .then(|| spki.subject_public_key.data.to_vec());
        Ok(Meta {
            subject: x509.subject().to_string(),
            subject_raw: x509.subject().as_raw().to_vec(),
            issuer_raw: x509.issuer().as_raw().to_vec(),
            not_after,
            rsa_public_key,
        })
    }
}

/// The certificate that belongs to `key`, then its issuers as far as `certs` has them.
fn chain_from_leaf(
    key: &KeyPair,
    certs: Vec<CertificateDer<'static>>,
) -> Result<Vec<CertificateDer<'static>>, AdminCredentialError> {
    let metas = certs.iter().enumerate().map(|(i, c)| Meta::parse(c, i)).collect::<Result<Vec<_>, _>>()?;
    let public = key.public_key().as_ref();
    let leaf = metas
        .iter()
        .position(|m| m.rsa_public_key.as_deref() == Some(public))
        .ok_or(E::NoMatchingCertificate { count: certs.len() })?;
    let mut order = vec![leaf];
    let mut current = leaf;
    while metas[current].issuer_raw != metas[current].subject_raw {
        let issuer = metas[current].issuer_raw.as_slice();
        let Some(next) = (0..metas.len()).find(|i| !order.contains(i) && metas[*i].subject_raw == issuer)
        else {
            break;
        };
        order.push(next);
        current = next;
    }
    Ok(order.into_iter().map(|i| certs[i].clone()).collect())
}

/// A PKCS#12 failure as the user's problem: the password, the file, or the algorithm.
fn pkcs12_error(e: P12Error) -> AdminCredentialError {
    match e {
        P12Error::MacError(_) | P12Error::UnpadError => E::WrongPassword,
        P12Error::Pkcs5Error(text) if text.contains("decryption failed") => E::WrongPassword,
        P12Error::Pkcs5Error(reason) => E::Unsupported { reason },
        P12Error::UnsupportedEncryptionScheme | P12Error::UnsupportedMacAlgorithm => {
            E::Unsupported { reason: e.to_string() }
        }
        P12Error::InvalidPrivateKey => {
            E::BadKey { reason: "the key bag is not a PKCS#8 private key".to_owned() }
        }
        other => E::NotPkcs12 { reason: other.to_string() },
    }
}

/// A loader's error as it reads for a Key Vault certificate's secret.
fn secret_error(e: AdminCredentialError) -> AdminCredentialError {
    match e {
        E::WrongPassword => E::SecretPassword,
        E::NoKey | E::NoKeyInPkcs12 => E::SecretWithoutKey,
        E::NotPkcs12 { .. } => E::SecretFormat,
        other => other,
    }
}

#[cfg(test)]
mod tests;
