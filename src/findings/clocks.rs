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
