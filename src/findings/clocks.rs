//! The findings about clocks: keys made after `now`, times on the store later than `now`, and
//! writes that the store recorded after this host's real clock.

use super::{Context, Finding, FindingKind, Severity};
use crate::lifecycle;
use crate::moment::Moment;
use crate::record::Stage;

impl Context<'_> {
    pub(super) fn future_dated(&self) -> Vec<Finding> {
        let set = self.set;
        self.records
            .iter()
            .filter(|r| lifecycle::is_future_dated(r, self.now))
            .map(|r| {
                // A retired key is out of use; only its purge waits.
                let severity = if r.stage == Stage::Retired { Severity::Warning } else { Severity::Critical };
                let msg = format!(
                    "{set}: {} key {} was made at {}, after now ({}): a run with its clock ahead (or `--at` in the future) made it, or this host's clock is behind. Check the clock (NTP); with the clock right, `jwk-rotator rotate {set}` replaces it",
                    r.stage,
                    r.kid,
                    r.created.to_rfc3339(),
                    self.now.to_rfc3339()
                );
                self.finding(severity, FindingKind::FutureDated, Some(&r.kid), None, msg)
            })
            .collect()
    }

    pub(super) fn clock_behind(&self) -> Option<Finding> {
        let latest = self
            .records
            .iter()
            .filter(|r| !lifecycle::is_future_dated(r, self.now))
            .map(lifecycle::latest_time)
            .max()
            .filter(|t| *t > self.now + lifecycle::CLOCK_SKEW)?;
        let msg = format!(
            "{}: the store holds a time ({}) later than now ({}): this host's clock is behind, or a run with its clock ahead wrote it. Check the clock (NTP) before the next run: until then promotion and retirement wait",
            self.set,
            latest.to_rfc3339(),
            self.now.to_rfc3339()
        );
        Some(self.finding(Severity::Critical, FindingKind::ClockBehind, None, None, msg))
    }

    /// A write the store recorded at a real time after this host's real clock: the clock went
    /// back since (or the host that wrote it was ahead). A key this host publishes now is
    /// recorded as published earlier than it is, and a later run would wait too little for it.
    pub(super) fn clock_went_back(&self) -> Option<Finding> {
        let at = Moment::new(self.now, self.wall);
        let (kid, written) = self
            .records
            .iter()
            .filter_map(|r| Some((&r.kid, lifecycle::written_after(r, at)?)))
            .max_by_key(|(_, w)| *w)?;
        let msg = format!(
            "{}: {kid} was written at {} by the real clock of the host that wrote it, after this host's clock ({}): this host's clock went back, or that host's was ahead. Check the clocks (NTP): a key published by a host whose clock is behind looks published earlier than it was",
            self.set,
            written.to_rfc3339(),
            self.wall.to_rfc3339()
        );
        Some(self.finding(Severity::Critical, FindingKind::ClockBehind, Some(kid), None, msg))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{Case, at, only, record};
    use super::*;

    #[test]
    fn a_key_made_after_now_is_critical_unless_retired() {
        let now = "2026-02-01T00:00:00Z";
        let fine = Case::new(vec![record("2026-02-01", Stage::Current, true)], now);
        assert!(fine.ctx().future_dated().is_empty(), "within a day of now");
        let ahead = Case::new(vec![record("2026-03-01", Stage::Pending, true)], now);
        let f = only(ahead.ctx().future_dated(), FindingKind::FutureDated, Severity::Critical);
        assert!(f.message.contains("was made at 2026-03-01T06:00:00+00:00, after now"), "{}", f.message);
        let retired = Case::new(vec![record("2026-03-01", Stage::Retired, true)], now);
        only(retired.ctx().future_dated(), FindingKind::FutureDated, Severity::Warning);
    }

    #[test]
    fn a_time_on_the_store_after_now_means_the_clock_is_behind() {
        let mut r = record("2026-01-10", Stage::Current, true);
        let case = Case::new(vec![r.clone()], "2026-02-01T00:00:00Z");
        assert!(case.ctx().clock_behind().is_none());
        r.published = Some(at("2026-03-01T00:00:00Z"));
        let case = Case::new(vec![r], "2026-02-01T00:00:00Z");
        let f = only(case.ctx().clock_behind(), FindingKind::ClockBehind, Severity::Critical);
        assert!(f.message.contains("the store holds a time (2026-03-01T00:00:00+00:00) later than now"));
    }

    #[test]
    fn a_write_after_this_hosts_real_clock_means_the_clock_went_back() {
        let mut case = Case::new(vec![record("2026-01-10", Stage::Current, true)], "2026-02-01T00:00:00Z");
        assert!(case.ctx().clock_went_back().is_none());
        case.wall = at("2026-01-05T00:00:00Z"); // the record was written on 2026-01-10 by the real clock
        let f = only(case.ctx().clock_went_back(), FindingKind::ClockBehind, Severity::Critical);
        assert_eq!(f.kid.map(|k| k.to_string()).as_deref(), Some("a-TEST.2026-01-10"));
        assert!(f.message.contains("after this host's clock (2026-01-05T00:00:00+00:00)"), "{}", f.message);
    }
}
