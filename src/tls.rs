//! TLS with `ca_cert`: a server certificate that is byte for byte one of the `ca_cert`
//! certificates (an emulator's self-signed certificate) is trusted once its name and dates
//! check out, even when OpenSSL marked it `CA:TRUE`; any other certificate goes through the
//! platform verifier with the `ca_cert` certificates as extra roots, as reqwest would.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Trusts the pinned certificates themselves, and chains to them (or the system's roots).
#[derive(Debug)]
pub(crate) struct PinnedOrPlatform {
    pinned: Vec<CertificateDer<'static>>,
    fallback: Arc<dyn ServerCertVerifier>,
}

impl PinnedOrPlatform {
    pub(crate) fn new(pinned: Vec<CertificateDer<'static>>, fallback: Arc<dyn ServerCertVerifier>) -> Self {
        PinnedOrPlatform { pinned, fallback }
    }
}

fn invalid(e: CertificateError) -> rustls::Error {
    rustls::Error::InvalidCertificate(e)
}

fn unix(seconds: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// Checks that a pinned certificate names `server` and is valid at `now`, with rustls' own
/// errors (which name the host and the certificate's names, or the dates).
fn check_pinned(
    cert: &CertificateDer<'_>,
    server: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| invalid(CertificateError::BadEncoding))?;
    let parsed = webpki::EndEntityCert::try_from(cert).map_err(|_| invalid(CertificateError::BadEncoding))?;
    if parsed.verify_is_valid_for_subject_name(server).is_err() {
        let presented = x509
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| san.value.general_names.iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        let expected = server.to_owned();
        return Err(invalid(CertificateError::NotValidForNameContext { expected, presented }));
    }
    let validity = x509.validity();
    let (not_before, not_after) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    let at = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if at < not_before {
        return Err(invalid(CertificateError::NotValidYetContext {
            time: now,
            not_before: unix(not_before),
        }));
    }
    if at > not_after {
        return Err(invalid(CertificateError::ExpiredContext { time: now, not_after: unix(not_after) }));
    }
    Ok(())
}

impl ServerCertVerifier for PinnedOrPlatform {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) {
            check_pinned(end_entity, server_name, now)?;
            return Ok(ServerCertVerified::assertion());
        }
        self.fallback.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    // The handshake's signatures are checked against the certificate's key either way.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.fallback.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.fallback.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.fallback.supported_verify_schemes()
    }
}

/// Why rustls would not make a client config that trusts the `ca_cert` certificates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsConfigError {
    #[error("the TLS verifier refused them: {0}")]
    Verifier(String),
    #[error("no TLS version to offer: {0}")]
    NoVersion(String),
}

/// Why no HTTP client that trusts `ca_cert` could be made; each names the setting and its path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaCertError {
    #[error("ca_cert {}: cannot read it: {cause}", path.display())]
    Unreadable { path: PathBuf, cause: String },
    #[error("ca_cert {}: not PEM certificates: {cause}", path.display())]
    NotPem { path: PathBuf, cause: String },
    #[error("ca_cert {} holds no PEM certificate", path.display())]
    Empty { path: PathBuf },
    #[error("ca_cert {}: {cause}", path.display())]
    Tls { path: PathBuf, cause: TlsConfigError },
    #[error("ca_cert {}: the HTTP client refused it: {cause}", path.display())]
    Client { path: PathBuf, cause: String },
}

impl CaCertError {
    /// The `ca_cert` file.
    pub fn path(&self) -> &Path {
        match self {
            CaCertError::Unreadable { path, .. }
            | CaCertError::NotPem { path, .. }
            | CaCertError::Empty { path }
            | CaCertError::Tls { path, .. }
            | CaCertError::Client { path, .. } => path,
        }
    }
}

/// A rustls client config for reqwest (HTTP/1.1, as the SDK's transport here speaks it) that
/// trusts `certs` as described above.
pub(crate) fn client_config(
    certs: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, TlsConfigError> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let platform = rustls_platform_verifier::Verifier::new_with_extra_roots(certs.clone(), provider.clone())
        .map_err(|e| TlsConfigError::Verifier(e.to_string()))?;
    let verifier = PinnedOrPlatform::new(certs, Arc::new(platform));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::NoVersion(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A `reqwest` builder with what every client here shares: 20 s to connect, 60 s between reads,
/// and no redirects (neither Key Vault nor Digdir answers with one).
pub(crate) fn reqwest_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .read_timeout(std::time::Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
}

/// A `reqwest` client (Key Vault's SDK transport, and the Maskinporten client) that also trusts
/// the PEM certificates in `path`: as roots, and each one itself as the server's certificate.
/// Errors name `ca_cert` and the path.
pub(crate) fn reqwest_trusting(path: &Path) -> Result<reqwest::Client, CaCertError> {
    use rustls::pki_types::pem::PemObject;
    let path_buf = || path.to_path_buf();
    let pem = std::fs::read(path)
        .map_err(|e| CaCertError::Unreadable { path: path_buf(), cause: e.to_string() })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CaCertError::NotPem { path: path_buf(), cause: e.to_string() })?;
    if certs.is_empty() {
        return Err(CaCertError::Empty { path: path_buf() });
    }
    let tls = client_config(certs).map_err(|cause| CaCertError::Tls { path: path_buf(), cause })?;
    reqwest_builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| CaCertError::Client { path: path_buf(), cause: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    fn cert(name: &str) -> CertificateDer<'static> {
        let pem = match name {
            "localhost" => include_str!("../tests/data/emulator-tls/localhost-cert.pem"),
            _ => include_str!("../tests/data/emulator-tls/expired-cert.pem"),
        };
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
    }

    fn host(name: &str) -> ServerName<'static> {
        ServerName::try_from(name.to_owned()).expect("name")
    }

    #[test]
    fn a_pinned_certificate_is_checked_for_name_and_dates() {
        let now = UnixTime::now();
        check_pinned(&cert("localhost"), &host("localhost"), now).expect("localhost");
        check_pinned(&cert("localhost"), &host("127.0.0.1"), now).expect("its IP address");
        let wrong = check_pinned(&cert("localhost"), &host("vault.example"), now).unwrap_err();
        assert!(
            matches!(
                &wrong,
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{wrong}"
        );
        let expired = check_pinned(&cert("expired"), &host("localhost"), now).unwrap_err();
        assert!(expired.to_string().contains("is not valid after 1609459200"), "{expired}");
        let early = check_pinned(&cert("localhost"), &host("localhost"), unix(1_000_000_000)).unwrap_err();
        assert!(early.to_string().contains("certificate not valid yet"), "{early}");
    }
}
