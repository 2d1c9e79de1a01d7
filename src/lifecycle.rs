//! The lifecycle rules that every part of the tool shares: which key is current, which one is
//! pending, when the next rotation is due, and which records are dated in the future. The
//! planner, the engine, the findings, the metrics and the commands all ask here, so that they
//! can never disagree about a key set.

use chrono::{DateTime, TimeDelta, Utc};

use crate::kid::Kid;
use crate::moment::Moment;
use crate::policy::Policy;
use crate::record::{KeyRecord, Stage};

/// How far a time may lie ahead of a run's `now` before it counts as dated in the future. Hosts
/// and Key Vault disagree by seconds and a run takes minutes; a day is far beyond both, and far
/// below the jumps that break rotation (a clock a year ahead, `--at 9999-12-31`).
pub(crate) const CLOCK_SKEW: TimeDelta = TimeDelta::days(1);

/// The latest time a record carries: its creation or any later transition.
pub(crate) fn latest_time(r: &KeyRecord) -> DateTime<Utc> {
    [r.published, r.activated, r.demoted, r.retired].into_iter().flatten().fold(r.created, DateTime::max)
}

/// The start of the day in the record's kid (00:00 UTC).
fn kid_day(r: &KeyRecord) -> DateTime<Utc> {
    r.kid.date().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Whether the key itself was made after `now`: its creation time or its kid's date lies more
/// than `CLOCK_SKEW` ahead. A run whose clock was ahead made it, or this clock is behind.
pub fn is_future_dated(r: &KeyRecord, now: DateTime<Utc>) -> bool {
    r.created > now + CLOCK_SKEW || kid_day(r) > now + CLOCK_SKEW
}

/// The key applications sign with. When an interrupted run left two keys current, the one
/// promoted last wins, but never one dated in the future over one that is not; the kid breaks
/// a tie. The planner demotes the others.
pub fn current(records: &[KeyRecord], now: DateTime<Utc>) -> Option<&KeyRecord> {
    records
        .iter()
        .filter(|r| r.stage == Stage::Current)
        .max_by_key(|r| (!is_future_dated(r, now), r.activated.unwrap_or(r.created), &r.kid))
}

/// The key waiting to become current: the newest pending key that is not dated in the future.
/// A future-dated pending key is never chosen: it would block rotation until its date.
pub fn pending(records: &[KeyRecord], now: DateTime<Utc>) -> Option<&KeyRecord> {
    records
        .iter()
        .filter(|r| r.stage == Stage::Pending && !is_future_dated(r, now))
        .max_by_key(|r| (r.created, &r.kid))
}

/// How long `r` has been published at `at`, by both clocks: the run's time since `published`,
/// and the host's real clock since the record was last written (for a pending key, the write
/// that recorded its publication). The shorter counts, so that a run whose time was fixed in the
/// past (`--at`, `JWK_ROTATOR_NOW`), or whose clock was behind, can not make a key look published
/// long ago. `None` when either is unknown: never published, or no real time recorded.
pub(crate) fn published_for(r: &KeyRecord, at: Moment) -> Option<TimeDelta> {
    let (published, written) = (r.published?, r.written?);
    Some((at.now - published).min(at.wall - written))
}

/// Whether `r` was published by an earlier run than the one running at `at`, by both clocks.
/// Only such a key may become current (bar a key set's very first key): Maskinporten must know a
/// key before any application signs with it.
pub fn published_before(r: &KeyRecord, at: Moment) -> bool {
    published_for(r, at).is_some_and(|t| t > TimeDelta::zero())
}

/// Whether `r` has been published for `wait` at `at`, by both clocks (see [`published_for`]).
pub(crate) fn published_at_least(r: &KeyRecord, at: Moment, wait: TimeDelta) -> bool {
    published_for(r, at).is_some_and(|t| t >= wait)
}

/// A record written at a real time more than [`CLOCK_SKEW`] after this run's real clock: this
/// host's clock went back since, or a host whose clock was ahead wrote it.
pub(crate) fn written_after(r: &KeyRecord, at: Moment) -> Option<DateTime<Utc>> {
    r.written.filter(|w| *w > at.wall + CLOCK_SKEW)
}

/// Whether no current key works at `now`: there is none, or its expiry (kid date + `max_age`)
/// has passed, so that every token request fails (MP-121). Getting out is what counts then: a
/// pending key that an earlier run published is promoted as soon as a token grant signed with
/// it succeeds, without waiting for `publish_ahead`; the proof shows that Maskinporten knows it.
pub fn needs_rescue(records: &[KeyRecord], policy: &Policy, now: DateTime<Utc>) -> bool {
    current(records, now).is_none_or(|c| c.expires(policy) <= now)
}

/// When a new pending key is due for the current key `current`: `rotate_after` after its
/// creation, or `warn_before` ahead of its expiry if that comes first. A key dated in the future
/// is due at once, so that a clock that ran ahead does not stall rotation.
pub(crate) fn next_rotation(current: &KeyRecord, policy: &Policy, now: DateTime<Utc>) -> DateTime<Utc> {
    if is_future_dated(current, now) {
        return now;
    }
    let by_age = current.created + policy.rotate_after().delta();
    let by_expiry = current.expires(policy) - policy.warn_before().delta();
    by_age.min(by_expiry)
}

/// The published keys: every stage but retired.
pub(crate) fn published_count(records: &[KeyRecord]) -> usize {
    records.iter().filter(|r| r.stage.is_published()).count()
}

/// What an operator does in Samarbeidsportalen, where keys are added and removed one at a time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub(crate) enum PortalStep {
    /// Add this pending key before it is promoted.
    Add { kid: Kid },
    /// Remove this key once `after` has passed (a previous key's overlap ends then; a retired
    /// key's at once, if it is still registered).
    Remove { kid: Kid, after: DateTime<Utc> },
}

/// The portal steps for a key set's records at `now`, in the order to do them.
pub(crate) fn portal_steps(records: &[KeyRecord], policy: &Policy, now: DateTime<Utc>) -> Vec<PortalStep> {
    let mut steps: Vec<PortalStep> =
        pending(records, now).map(|p| PortalStep::Add { kid: p.kid.clone() }).into_iter().collect();
    let mut removals: Vec<(DateTime<Utc>, &KeyRecord)> = records
        .iter()
        .filter_map(|r| match r.stage {
            Stage::Previous => Some((r.demoted.unwrap_or(r.created) + policy.overlap().delta(), r)),
            Stage::Retired => Some((r.retired.unwrap_or(r.created), r)),
            Stage::Pending | Stage::Current => None,
        })
        .collect();
    removals.sort_by_key(|(after, r)| (*after, r.kid.clone()));
    steps.extend(removals.into_iter().map(|(after, r)| PortalStep::Remove { kid: r.kid.clone(), after }));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::PublicJwk;
    use crate::policy::Algorithm;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn record(kid: &str, stage: Stage, created: &str) -> KeyRecord {
        let kid: Kid = kid.parse().expect("kid");
        let public = PublicJwk { kid, alg: Algorithm::RS256, n: "n".into(), e: "AQAB".into() };
        KeyRecord::new(public, stage, at(created))
    }

    #[test]
    fn the_latest_promotion_is_current_but_never_a_future_dated_one() {
        let now = at("2026-11-29T06:00:00Z");
        let mut old = record("a-TEST.2026-01-01", Stage::Current, "2026-01-01T06:00:00Z");
        old.activated = Some(at("2026-01-01T06:00:00Z"));
        let mut newer = record("a-TEST.2026-04-01", Stage::Current, "2026-04-01T06:00:00Z");
        newer.activated = Some(at("2026-04-08T06:00:00Z"));
        let mut future = record("a-TEST.2027-06-01", Stage::Current, "2027-06-01T06:00:00Z");
        future.activated = Some(at("2027-06-01T06:00:00Z"));
        let recs = vec![old.clone(), future.clone(), newer.clone()];
        assert_eq!(current(&recs, now).map(|r| &r.kid), Some(&newer.kid));
        assert_eq!(current(&[future.clone()], now).map(|r| &r.kid), Some(&future.kid));
        assert_eq!(current(&[old.clone()], now).map(|r| &r.kid), Some(&old.kid));
    }

    #[test]
    fn a_future_dated_pending_key_is_never_the_pending_key() {
        let now = at("2026-11-29T06:00:00Z");
        let future = record("a-TEST.9999-12-31", Stage::Pending, "9999-12-31T00:00:00Z");
        assert!(pending(std::slice::from_ref(&future), now).is_none());
        assert!(is_future_dated(&future, now));
        let soon = record("a-TEST.2026-11-30", Stage::Pending, "2026-11-30T05:00:00Z");
        assert!(!is_future_dated(&soon, now), "within the skew");
        assert_eq!(pending(&[future, soon.clone()], now).map(|r| &r.kid), Some(&soon.kid));
    }

    #[test]
    fn next_rotation_is_the_earlier_of_age_and_expiry() {
        let now = at("2026-11-29T06:00:00Z");
        let policy = Policy::default();
        let current = record("a-TEST.2026-11-01", Stage::Current, "2026-11-01T06:00:00Z");
        assert_eq!(next_rotation(&current, &policy, now), at("2027-01-30T06:00:00Z"));
        let future = record("a-TEST.2028-01-01", Stage::Current, "2028-01-01T06:00:00Z");
        assert_eq!(next_rotation(&future, &policy, now), now);
    }

    #[test]
    fn portal_steps_say_which_key_to_add_and_which_to_remove_when() {
        let now = at("2027-02-26T06:00:00Z");
        let policy = Policy::default();
        let mut previous = record("a-TEST.2026-11-21", Stage::Previous, "2026-11-21T06:00:00Z");
        previous.demoted = Some(at("2027-02-26T06:00:00Z"));
        let current = record("a-TEST.2027-02-19", Stage::Current, "2027-02-19T06:00:00Z");
        let pending = record("a-TEST.2027-02-26", Stage::Pending, "2027-02-26T06:00:00Z");
        let steps = portal_steps(&[previous.clone(), current, pending.clone()], &policy, now);
        assert_eq!(
            steps,
            [
                PortalStep::Add { kid: pending.kid },
                PortalStep::Remove { kid: previous.kid, after: at("2027-03-12T06:00:00Z") },
            ]
        );
    }

    #[test]
    fn published_before_means_an_earlier_run() {
        let now = at("2026-11-29T06:00:00Z");
        let mut r = record("a-TEST.2026-11-29", Stage::Pending, "2026-11-29T06:00:00Z");
        assert!(!published_before(&r, now.into()));
        r.published = Some(now);
        assert!(!published_before(&r, now.into()), "published in this run");
        r.published = Some(now - TimeDelta::seconds(1));
        r.written = Some(now - TimeDelta::seconds(1));
        assert!(published_before(&r, now.into()));
    }

    /// A run whose time was fixed 30 days back published the key seconds ago by the real
    /// clock: it has been published for seconds, not 30 days.
    #[test]
    fn a_key_is_published_for_the_shorter_of_both_clocks() {
        let wall = at("2026-11-29T06:00:00Z");
        let mut r = record("a-TEST.2026-10-30", Stage::Pending, "2026-10-30T06:00:00Z");
        r.published = Some(at("2026-10-30T06:00:00Z"));
        r.written = Some(wall - TimeDelta::seconds(20));
        let later = Moment::new(wall, wall);
        assert_eq!(published_for(&r, later), Some(TimeDelta::seconds(20)));
        assert!(!published_at_least(&r, later, TimeDelta::days(7)));
        assert!(published_before(&r, later));
        r.written = None;
        assert_eq!(published_for(&r, later), None, "no real time recorded is not long ago");
        assert!(!published_before(&r, later));
    }
}
