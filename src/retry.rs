//! Tries an operation again after a pause that doubles each time: the event and alert webhooks
//! share it.

use std::future::Future;
use std::time::Duration;

/// Calls `attempt` up to `retries + 1` times, pausing `first_pause` before the second call and
/// twice as long before each one after; `Ok` at the first success, else the last error.
pub(crate) async fn doubling<E, F, Fut>(retries: u32, first_pause: Duration, mut attempt: F) -> Result<(), E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut pause = first_pause;
    let mut tried = 0;
    loop {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) if tried >= retries => return Err(e),
            Err(_) => {}
        }
        tried += 1;
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tries_retries_plus_one_times_with_doubling_pauses_and_keeps_the_last_error() {
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let result: Result<(), u32> =
            doubling(3, Duration::from_millis(500), || async { Err(calls.fetch_add(1, Ordering::SeqCst)) })
                .await;
        assert_eq!(result, Err(3), "the last of 4 attempts");
        assert_eq!(start.elapsed(), Duration::from_millis(500 + 1000 + 2000));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_the_first_success() {
        let calls = AtomicU32::new(0);
        let result: Result<(), ()> = doubling(5, Duration::from_secs(1), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 1 { Err(()) } else { Ok(()) }
        })
        .await;
        assert_eq!((result, calls.load(Ordering::SeqCst)), (Ok(()), 2));
    }
}
