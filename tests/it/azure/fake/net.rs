//! How the real SDK reaches the fake: an `HttpClient` that rewrites the vault's https URL to
//! the fake's local address, a credential that hands out the fake's token, and a TLS listener.

use std::net::SocketAddr;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::{AsyncRawResponse, HttpClient, Request};
use azure_core::time::{Duration, OffsetDateTime};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use super::TOKEN;

/// Sends every request to `http://{addr}` instead of `https://{vault}.vault.azure.net`,
/// through `reqwest` (the SDK's own transport). The SDK checks for https before the
/// transport, so the client still sees a real vault URL.
#[derive(Debug)]
pub struct RewriteTransport {
    pub addr: SocketAddr,
    inner: reqwest::Client,
}

impl RewriteTransport {
    pub fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(RewriteTransport { addr, inner: reqwest::Client::new() })
    }
}

#[async_trait::async_trait]
impl HttpClient for RewriteTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut request = request.clone();
        let url = request.url_mut();
        assert!(url.host_str().is_some_and(|h| h.ends_with(".vault.azure.net")), "unexpected host in {url}");
        url.set_scheme("http").expect("scheme");
        url.set_host(Some(&self.addr.ip().to_string())).expect("host");
        url.set_port(Some(self.addr.port())).expect("port");
        self.inner.execute_request(&request).await
    }
}

/// Hands out the fake vault's token, and checks that the SDK asks for Key Vault's scope.
#[derive(Debug, Default)]
pub struct FakeCredential;

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://vault.azure.net/.default"], "scope from the challenge");
        Ok(AccessToken::new(Secret::new(TOKEN), OffsetDateTime::now_utc() + Duration::hours(1)))
    }
}

/// Accepts TLS connections on 127.0.0.1 for axum.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    pub addr: SocketAddr,
}

impl TlsListener {
    pub async fn bind(cert_pem: &str, key_pem: &str) -> TlsListener {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>().expect("cert");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(config)), addr }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
