//! The finding about restarts: the applications a client names in `[[client.restart]]` were
//! not restarted for the current key, so they may still sign with the previous one.

use chrono::TimeDelta;

use super::{Context, Finding, FindingKind, Severity};

/// How long after a promotion a missing restart is reported: the run that promotes restarts
/// at once, so a restart still missing an hour later failed (or the run was cut off).
pub(super) const RESTART_GRACE: TimeDelta = TimeDelta::hours(1);

impl Context<'_> {
    /// The current key's record does not say its applications were restarted.
    pub(super) fn restart_pending(&self) -> Option<Finding> {
        let c = self.current()?;
        if c.restarted.is_some() {
            return None;
        }
        let since = c.activated.unwrap_or(c.created);
        if self.now - since < RESTART_GRACE {
            return None;
        }
        let msg = format!(
            "{}: the applications in [[client.restart]] were not restarted for the current key {} (current since {}); until they are, they sign with the key they read at start-up. The rotator's log names the restart that failed: fix it and run `jwk-rotator rotate {}`, which tries again",
            self.set,
            c.kid,
            since.to_rfc3339(),
            self.set
        );
        Some(self.finding(Severity::Warning, FindingKind::RestartPending, Some(&c.kid), None, msg))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{Case, record};
    use super::*;
    use crate::record::Stage;

    #[test]
    fn a_current_key_without_a_restart_is_a_warning_after_the_grace() {
        let current = record("2026-01-10", Stage::Current, true);
        let soon = Case::new(vec![current.clone()], "2026-01-10T06:30:00Z");
        assert_eq!(soon.ctx().restart_pending(), None, "the run that promoted is still restarting");
        let later = Case::new(vec![current.clone()], "2026-01-10T08:00:00Z");
        let f = later.ctx().restart_pending().expect("finding");
        assert_eq!((f.severity, f.kind), (Severity::Warning, FindingKind::RestartPending));
        assert!(
            f.message.contains("a-TEST.2026-01-10") && f.message.contains("jwk-rotator rotate a-TEST"),
            "{f:?}"
        );
        let mut done = current;
        done.restarted = Some(super::super::fixtures::at("2026-01-10T06:01:00Z"));
        assert_eq!(Case::new(vec![done], "2026-02-01T00:00:00Z").ctx().restart_pending(), None);
    }
}
