//! Keeps a run within the vault's means: at most `max_in_flight` requests at once, and no more
//! than `request_budget` requests per 10 seconds (a token bucket), for every HTTP request the
//! SDK sends: pages, 401 challenges and its own retries included. The SDK's retry on 429 stays
//! the safety net for load from elsewhere.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use azure_core::http::{AsyncRawResponse, HttpClient, Request};
use tokio::sync::Semaphore;

/// The window Key Vault states its limits in.
const WINDOW: Duration = Duration::from_secs(10);

/// A token bucket: `rate` tokens a second, holding at most `capacity`. A caller takes its
/// token at once, running into debt if need be, and waits until the token is due, so waiters
/// are served in the order they came.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    /// Tokens available (negative: owed) as of the instant.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `per_window` tokens per 10 seconds; the bucket holds a tenth of that (one second's
    /// worth), so that any 10 seconds see at most 1.1 × `per_window` requests.
    pub(crate) fn per_ten_seconds(per_window: u32) -> TokenBucket {
        let rate = f64::from(per_window.max(1)) / WINDOW.as_secs_f64();
        let capacity = rate.max(1.0);
        TokenBucket { rate, capacity, state: Mutex::new((capacity, Instant::now())) }
    }

    /// How long the caller must wait for the token it takes now.
    fn reserve(&self, now: Instant) -> Duration {
        // A panic while holding the lock can only leave a stale count; keep going.
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = *state;
        let refilled =
            (tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate).min(self.capacity);
        let left = refilled - 1.0;
        *state = (left, now.max(at));
        if left >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-left / self.rate) }
    }

    /// Waits for one token.
    pub(super) async fn take(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// An `HttpClient` that sends through `inner` within the limits.
#[derive(Debug)]
pub(crate) struct LimitedTransport {
    inner: Arc<dyn HttpClient>,
    in_flight: Semaphore,
    bucket: TokenBucket,
}

impl LimitedTransport {
    pub(super) fn new(inner: Arc<dyn HttpClient>, max_in_flight: usize, per_ten_seconds: u32) -> Self {
        LimitedTransport {
            inner,
            in_flight: Semaphore::new(max_in_flight.max(1)),
            bucket: TokenBucket::per_ten_seconds(per_ten_seconds),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for LimitedTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        // The semaphore is never closed, so acquiring fails never; without a permit the
        // request would still be sent, only unbounded.
        let _permit = self.in_flight.acquire().await.ok();
        self.bucket.take().await;
        self.inner.execute_request(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_serves_one_second_at_once_then_the_rate() {
        let bucket = TokenBucket::per_ten_seconds(100); // 10 a second, holds 10
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(bucket.reserve(t), Duration::ZERO);
        }
        let waits: Vec<_> = (0..3).map(|_| bucket.reserve(t).as_millis()).collect();
        assert_eq!(waits, [100, 200, 300], "each further token is due a tenth of a second later");
        // After a second the debt of 3 is paid and 7 tokens are back.
        let later = t + Duration::from_secs(1);
        for _ in 0..7 {
            assert_eq!(bucket.reserve(later), Duration::ZERO);
        }
        assert_eq!(bucket.reserve(later).as_millis(), 100);
    }

    #[test]
    fn the_bucket_never_holds_more_than_its_capacity() {
        let bucket = TokenBucket::per_ten_seconds(100);
        let t = Instant::now() + Duration::from_secs(3600);
        let free = (0..20).take_while(|_| bucket.reserve(t).is_zero()).count();
        assert_eq!(free, 10, "an idle hour does not save up more than one second's worth");
    }

    #[tokio::test(start_paused = true)]
    async fn ten_seconds_of_requests_stay_within_the_budget() {
        let bucket = TokenBucket::per_ten_seconds(3000);
        let start = tokio::time::Instant::now();
        let mut sent = 0;
        while start.elapsed() < WINDOW {
            bucket.take().await;
            sent += 1;
        }
        assert!(sent <= 3300, "{sent} requests in 10 s");
        assert!(sent >= 3000, "{sent} requests in 10 s: the bucket is too slow");
    }
}
