//! The fake's clock: real time for tests that run the binary, or a settable time for tests
//! that simulate days and months in milliseconds.

use chrono::{DateTime, TimeDelta, Utc};

/// What "now" is for the fake: token lifetimes, `iat`/`exp` checks, key expiry, propagation
/// and certificate validity all read it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// Follows `Utc::now()`, for tests that run the real binary against the fake.
    #[default]
    Real,
    /// Stands still until set or advanced.
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::Real => Utc::now(),
            Clock::Fixed(at) => *at,
        }
    }

    /// Moves the clock on; a real clock becomes a fixed one at `now + by`.
    pub fn advance(&mut self, by: TimeDelta) {
        *self = Clock::Fixed(self.now() + by);
    }
}
