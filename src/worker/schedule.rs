//! When runs happen: the cron schedule read in its time zone, jitter, retry backoff, and the
//! clock the worker reads (the system's, or a test's that follows tokio's paused time).

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::config::worker::ScheduleConfig;
use crate::cron::Ticks;

/// Where the worker reads the time. Only the edge reads a clock; everything else takes `now`.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// The longest single sleep; the system clock wakes at least this often so that a wall
    /// clock that jumps (suspend, NTP) delays a tick by at most this much.
    fn max_sleep(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at `base` and moves with tokio's clock: in real time for a worker run
/// with `JWK_ROTATOR_NOW` (a what-if run), and with paused time in tests, where days pass in
/// milliseconds and every tick lands exactly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock {
    base: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub(crate) fn starting_at(base: DateTime<Utc>) -> Self {
        TokioClock { base, start: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::TimeDelta::from_std(self.start.elapsed()).unwrap_or_default();
        self.base + elapsed
    }

    fn max_sleep(&self) -> Duration {
        Duration::from_secs(366 * 86_400)
    }
}

/// Sleeps until the clock reads `at` or later.
pub(crate) async fn sleep_until(clock: &dyn Clock, at: DateTime<Utc>) {
    loop {
        let left = (at - clock.now()).to_std().unwrap_or_default();
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(clock.max_sleep())).await;
    }
}

/// The cron schedule and what the worker does around it.
#[derive(Debug, Clone)]
pub struct Schedule {
    config: ScheduleConfig,
}

impl Schedule {
    pub fn new(config: ScheduleConfig) -> Self {
        Schedule { config }
    }

    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// The ticks of the cron expression in its time zone.
    pub fn ticks(&self) -> Ticks<'_> {
        Ticks { cron: &self.config.cron, tz: self.config.timezone }
    }

    /// The first tick strictly after `after` (see [`Ticks::next_after`]).
    pub(crate) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.ticks().next_after(after)
    }

    /// The schedule's period around `now`: from the last tick at or before it to the next one
    /// (for `0 6 * * 1-5`, three days over a weekend, one day otherwise). Alert rules compare
    /// the age of the last successful run against it.
    pub(crate) fn period(&self, now: DateTime<Utc>) -> Option<Duration> {
        let next = self.next_after(now)?;
        let tz: Tz = self.config.timezone;
        let whole = now.with_nanosecond(0)?.with_timezone(&tz);
        let previous = self.config.cron.cron().find_previous_occurrence(&whole, true);
        let start = match previous {
            Ok(previous) => previous.with_timezone(&Utc),
            // No tick within croner's search window: the gap between the next two instead.
            Err(_) => return (self.next_after(next)? - next).to_std().ok(),
        };
        (next - start).to_std().ok()
    }

    /// A random delay of up to `jitter` before a run.
    pub fn jitter(&self) -> Duration {
        let max = self.config.jitter.to_std();
        if max.is_zero() {
            return max;
        }
        rand::random_range(Duration::ZERO..=max)
    }

    /// When retry number `attempt` (1, 2, ...) of a run that failed at `failed` is due, if it is
    /// within the limits and before the next tick.
    pub(crate) fn retry_at(
        &self,
        failed: DateTime<Utc>,
        attempt: u32,
        next_tick: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        if attempt == 0 || attempt > self.config.retries {
            return None;
        }
        let factor = 2_i32.checked_pow(attempt - 1)?;
        let at = failed + self.config.retry_backoff.delta().checked_mul(factor)?;
        match next_tick {
            Some(tick) if at >= tick => None,
            _ => Some(at),
        }
    }

    /// How long shutdown waits for the key set in progress.
    pub(crate) fn shutdown_timeout(&self) -> Duration {
        self.config.shutdown_timeout.to_std()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, tz: &str) -> Schedule {
        let text = format!("cron = \"{cron}\"\ntimezone = \"{tz}\"\nretries = 2\nretry_backoff = \"10m\"");
        Schedule::new(toml::from_str(&text).unwrap())
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn ticks(s: &Schedule, from: &str, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = at(from);
        for _ in 0..n {
            t = s.next_after(t).unwrap();
            out.push(t);
        }
        out
    }

    #[test]
    fn cron_is_read_in_utc_by_default() {
        let s = schedule("0 6 * * 1", "UTC");
        assert_eq!(
            ticks(&s, "2026-11-21T00:00:00Z", 2),
            [at("2026-11-23T06:00:00Z"), at("2026-11-30T06:00:00Z")]
        );
        assert_eq!(s.period(at("2026-11-21T00:00:00Z")), Some(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn the_period_is_the_gap_around_now() {
        let s = schedule("0 6 * * 1-5", "UTC");
        let day = Duration::from_secs(86_400);
        assert_eq!(s.period(at("2026-11-21T12:00:00Z")), Some(3 * day), "Saturday: Friday to Monday");
        assert_eq!(s.period(at("2026-11-20T06:00:00Z")), Some(3 * day), "at Friday's tick");
        assert_eq!(s.period(at("2026-11-24T12:00:00.25Z")), Some(day), "Tuesday");
    }

    #[test]
    fn ticks_fall_on_whole_minutes() {
        let s = schedule("0 6 * * *", "Europe/Oslo");
        let after = at("2026-11-21T06:00:00.000423990Z");
        assert_eq!(s.next_after(after), Some(at("2026-11-22T05:00:00Z")));
        let s = schedule("*/30 * * * *", "UTC");
        assert_eq!(s.next_after(after), Some(at("2026-11-21T06:30:00Z")));
    }

    #[test]
    fn cron_examples_from_the_docs() {
        // 2026-11-21 is a Saturday.
        let next = |cron: &str| schedule(cron, "UTC").next_after(at("2026-11-21T12:00:00Z")).unwrap();
        assert_eq!(next("0 6 * * 1-5"), at("2026-11-23T06:00:00Z"));
        assert_eq!(next("0 */6 * * *"), at("2026-11-21T18:00:00Z"));
        assert_eq!(next("15 7 1 * *"), at("2026-12-01T07:15:00Z"));
        assert_eq!(next("0 9 * * MON"), at("2026-11-23T09:00:00Z"));
        assert_eq!(next("0 6 * * 7"), at("2026-11-22T06:00:00Z"), "7 is Sunday");
        assert_eq!(next("0 6 * * 0"), at("2026-11-22T06:00:00Z"), "0 is Sunday");
        // Day of month or day of week, as in Vixie cron: the 25th (Wednesday) or a Monday.
        assert_eq!(next("0 6 25 * 1"), at("2026-11-23T06:00:00Z"));
        assert_eq!(
            schedule("0 6 25 * 1", "UTC").next_after(at("2026-11-23T07:00:00Z")),
            Some(at("2026-11-25T06:00:00Z"))
        );
    }

    #[test]
    fn oslo_spring_forward_runs_once_after_the_gap() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
        let s = schedule("30 2 * * *", "Europe/Oslo");
        let got = ticks(&s, "2026-03-27T12:00:00Z", 4);
        let want =
            ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"];
        assert_eq!(got, want.map(at));
    }

    #[test]
    fn oslo_fall_back_runs_a_repeated_time_once() {
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
        let s = schedule("30 2 * * *", "Europe/Oslo");
        let got = ticks(&s, "2026-10-23T12:00:00Z", 4);
        let want =
            ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"];
        assert_eq!(got, want.map(at));
        // Even asked from inside the repeated hour, the first pass is not run again.
        assert_eq!(s.next_after(at("2026-10-25T01:10:00Z")), Some(at("2026-10-26T01:30:00Z")));
    }

    #[test]
    fn interval_schedules_keep_both_passes_of_a_repeated_hour() {
        let s = schedule("0,30 * * * *", "Europe/Oslo");
        let got = ticks(&s, "2026-10-25T00:10:00Z", 4);
        let want =
            ["2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"];
        assert_eq!(got, want.map(at));
    }

    #[test]
    fn retries_back_off_and_stop_before_the_next_tick() {
        let s = schedule("0 6 * * *", "UTC");
        let failed = at("2026-11-21T06:00:00Z");
        let tick = s.next_after(failed);
        assert_eq!(s.retry_at(failed, 1, tick), Some(at("2026-11-21T06:10:00Z")));
        assert_eq!(s.retry_at(failed, 2, tick), Some(at("2026-11-21T06:20:00Z")));
        assert_eq!(s.retry_at(failed, 3, tick), None, "only 2 retries");
        let late = at("2026-11-22T05:55:00Z");
        assert_eq!(s.retry_at(late, 1, s.next_after(late)), None, "the tick comes first");
    }
}
