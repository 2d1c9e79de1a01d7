//! The HTTP client that talks to Digdir, and when (and how long to wait) before trying again.

use std::path::Path;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// A client for Digdir's token endpoint and self-service API: 20 s to connect, 60 s between
/// reads, no redirects. With `ca_cert` (a test double's certificate) it also trusts the PEM
/// certificates in that file, as the Key Vault client does; errors name `ca_cert` and the path.
pub(crate) fn http_client(ca_cert: Option<&Path>) -> Result<reqwest::Client, HttpClientError> {
    match ca_cert {
        Some(path) => Ok(crate::tls::reqwest_trusting(path)?),
        None => crate::tls::reqwest_builder().build().map_err(|e| HttpClientError::Build(e.to_string())),
    }
}

/// Why the HTTP client for Digdir could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpClientError {
    /// `ca_cert` can not be used.
    #[error(transparent)]
    CaCert(#[from] crate::tls::CaCertError),
    #[error("the HTTP client for Maskinporten could not be built: {0}")]
    Build(String),
}

/// How often to try a request again after a network error, 429 or 5xx, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The wait before the first retry; it doubles for each retry after that.
    pub initial_delay: Duration,
    /// The longest wait between two tries, a server's `Retry-After` included.
    pub max_delay: Duration,
    /// Retries after the first try: `max_retries + 1` tries in all.
    pub max_retries: u32,
}

impl Default for Retry {
    /// 1 s, doubling up to 30 s, 5 retries: about a minute before giving up.
    fn default() -> Self {
        Retry { initial_delay: Duration::from_secs(1), max_delay: Duration::from_secs(30), max_retries: 5 }
    }
}

impl Retry {
    /// The wait before retry number `attempt` (0 for the first retry): `initial_delay` doubled
    /// `attempt` times, capped at `max_delay`, then a random part of its upper half taken off so
    /// that many clients that failed together do not retry together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.backoff(attempt);
        let half = ceiling / 2;
        half + half.mul_f64(rand::rng().random_range(0.0..=1.0))
    }

    /// The wait before retry number `attempt` when the server may have said how long to wait
    /// (`Retry-After`): the server's wait wins, capped at `max_delay`.
    pub(crate) fn delay_after(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_delay),
            None => self.delay(attempt),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.checked_pow(attempt).unwrap_or(u32::MAX);
        self.initial_delay.checked_mul(factor).unwrap_or(self.max_delay).min(self.max_delay)
    }
}

/// The wait a `Retry-After: <seconds>` header asks for. The HTTP-date form is ignored (Digdir
/// has not been seen to send it); the backoff applies then.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Whether an answer with this status may change if asked again: 429 (too many requests) and
/// 5xx may; any other 4xx is the caller's to fix.
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Whether a request that got no answer is worth another try: it could not connect, timed out,
/// or the connection broke while sending or while reading the answer.
pub(crate) fn retryable_error(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

pub use crate::chain::describe;

#[cfg(test)]
mod tests {
    use super::*;

    fn retry() -> Retry {
        Retry { initial_delay: Duration::from_secs(1), max_delay: Duration::from_secs(30), max_retries: 5 }
    }

    #[test]
    fn the_default_is_one_second_doubling_to_thirty_five_times() {
        assert_eq!(Retry::default(), retry());
    }

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_cap() {
        let r = retry();
        for (attempt, ceiling) in [(0, 1), (1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (40, 30)] {
            let ceiling = Duration::from_secs(ceiling);
            for _ in 0..20 {
                let d = r.delay(attempt);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "attempt {attempt}: {d:?} not in [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }

    #[test]
    fn a_servers_retry_after_wins_up_to_the_cap() {
        let r = retry();
        assert_eq!(r.delay_after(0, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(r.delay_after(0, Some(Duration::from_secs(600))), Duration::from_secs(30));
        assert!(r.delay_after(0, None) <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(12)));
        headers.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn too_many_requests_and_server_errors_are_retried_client_errors_not() {
        for code in [429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [200, 400, 401, 403, 404, 409] {
            assert!(!retryable_status(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable_and_described_with_its_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = http_client(None).unwrap();
        let e = client.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap_err();
        assert!(retryable_error(&e), "{e}");
        assert!(describe(&e).contains("127.0.0.1"), "{}", describe(&e));
    }

    #[test]
    fn a_missing_ca_cert_is_named_with_its_path() {
        let e = http_client(Some(Path::new("/nonexistent/digdir-fake.pem"))).unwrap_err();
        let HttpClientError::CaCert(ca @ crate::tls::CaCertError::Unreadable { .. }) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(ca.path(), Path::new("/nonexistent/digdir-fake.pem"));
        assert!(e.to_string().starts_with("ca_cert /nonexistent/digdir-fake.pem: cannot read it"), "{e}");
    }
}
