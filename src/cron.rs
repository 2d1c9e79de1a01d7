//! A cron expression read in its time zone: parsing (the standard 5 fields, as Kubernetes,
//! Container Apps and GitHub Actions take them) and the ticks it makes, correct across daylight
//! saving changes. The config checks a schedule with it and the worker runs on it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::JobType;

/// A standard 5-field cron expression (minute hour day-of-month month day-of-week).
#[derive(Clone)]
pub struct CronSpec {
    text: String,
    cron: croner::Cron,
}

impl CronSpec {
    pub fn cron(&self) -> &croner::Cron {
        &self.cron
    }
}

impl FromStr for CronSpec {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, CronError> {
        let parser =
            croner::parser::CronParser::builder().seconds(croner::parser::Seconds::Disallowed).build();
        let cron = parser.parse(s).map_err(|e| CronError { text: s.to_owned(), cause: e.to_string() })?;
        Ok(CronSpec { text: s.trim().to_owned(), cron })
    }
}

impl fmt::Display for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSpec({:?})", self.text)
    }
}

impl PartialEq for CronSpec {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CronSpec {}

/// A cron expression that can not be read, with what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cron {text:?} is not a 5-field cron expression ({cause}); write it like \"0 6 * * *\" (06:00 every day)"
)]
pub struct CronError {
    /// The expression as written.
    pub text: String,
    /// Why the cron parser refused it.
    pub cause: String,
}

/// The ticks of a cron expression read as wall-clock time in a zone.
#[derive(Debug, Clone, Copy)]
pub struct Ticks<'a> {
    pub cron: &'a CronSpec,
    pub tz: Tz,
}

impl Ticks<'_> {
    /// The first tick strictly after `after`. The cron fields are read as wall-clock time in
    /// the zone: a time that a spring-forward change skips runs at the first minute after the
    /// gap; a fixed time that a fall-back change repeats runs once, at its first occurrence.
    pub(crate) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self.cron.cron();
        if cron.determine_job_type() != JobType::FixedTime
            && let Some(next) = self.next_interval(after)
        {
            return Some(next);
        }
        let tz: Tz = self.tz;
        // Croner keeps the start's fraction of a second; ticks fall on whole minutes.
        let mut from = after.with_nanosecond(0)?.with_timezone(&tz);
        for _ in 0..4 {
            let found = cron.find_next_occurrence(&from, false).ok()?;
            if found.with_timezone(&Utc) > after {
                return Some(found.with_timezone(&Utc));
            }
            // Croner searches local time; in a repeated hour it can answer the first pass of
            // a time that is already behind us. Look from that time's second pass instead.
            let second = match tz.from_local_datetime(&found.naive_local()) {
                LocalResult::Ambiguous(_, second) => second,
                _ => return None,
            };
            if cron.determine_job_type() != JobType::FixedTime && second.with_timezone(&Utc) > after {
                return Some(second.with_timezone(&Utc));
            }
            from = second;
        }
        None
    }

    /// Interval schedules (`*/15 * * * *`) tick on every minute whose wall-clock time matches:
    /// both passes of a repeated hour, none in a skipped one. Looks a day ahead, minute by minute.
    fn next_interval(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let minute = chrono::TimeDelta::minutes(1);
        let start = after - chrono::TimeDelta::seconds(after.timestamp().rem_euclid(60)) + minute;
        let start = start.with_nanosecond(0)?;
        (0..26 * 60)
            .map(|i| start + minute * i)
            .find(|t| self.cron.cron().is_time_matching(&t.with_timezone(&self.tz)).unwrap_or(false))
    }

    /// The shortest time between two of the `ticks` ticks after `from`, if it ticks twice.
    pub(crate) fn shortest_gap(&self, from: DateTime<Utc>, ticks: usize) -> Option<chrono::TimeDelta> {
        let mut at = self.next_after(from)?;
        let mut shortest: Option<chrono::TimeDelta> = None;
        for _ in 1..ticks {
            let Some(next) = self.next_after(at) else { break };
            shortest = Some(shortest.map_or(next - at, |s| s.min(next - at)));
            at = next;
        }
        shortest
    }
}
