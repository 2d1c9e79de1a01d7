//! The two clocks a run goes by: the time it acts at, and the host's real clock.
//!
//! A run acts at `now`: the system clock, or a time fixed by `--at` or `JWK_ROTATOR_NOW` for
//! tests and what-if runs. Keys are dated and aged by it. But a run whose `now` was fixed in the
//! past (or whose clock was behind) would record a key as published long ago, and the next run
//! with the right time would promote it at once. So every write also records `wall`, the host's
//! real clock when the run began (`KeyRecord::written`), and a key becomes current only once both
//! clocks say it was published long enough ago (`lifecycle::published_for`). Only the edge reads
//! the clocks (`cli`, the worker); everything below takes a `Moment`.

use chrono::{DateTime, Utc};

/// When a run happens, by its own time and by the host's real clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moment {
    /// The time the run acts at: keys are dated, aged and expired by it.
    pub now: DateTime<Utc>,
    /// The host's real clock when the run began; every write records it.
    pub wall: DateTime<Utc>,
}

impl Moment {
    pub fn new(now: DateTime<Utc>, wall: DateTime<Utc>) -> Self {
        Moment { now, wall }
    }
}

/// A moment whose real clock reads the same as its time: every run whose time was not fixed,
/// a what-if (`plan --at`, `status --at`), and the simulated timelines of tests, in which real
/// time passes as the run's time does.
impl From<DateTime<Utc>> for Moment {
    fn from(now: DateTime<Utc>) -> Self {
        Moment { now, wall: now }
    }
}
