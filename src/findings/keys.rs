//! The findings about a key set's keys: no current key, one that expires soon or has expired,
//! a rotation or promotion overdue, too many published keys, several current keys, and a
//! current key that was never published.

use chrono::TimeDelta;

use super::{Context, Finding, FindingKind, Severity};
use crate::lifecycle;
use crate::record::{KeyRecord, Stage};

impl Context<'_> {
    /// The next step for a pending key: add it in Samarbeidsportalen, then promote; or, when the
    /// key set is registered through Digdir's API, what holds the promotion back.
    pub(super) fn add_then_promote(&self, p: &KeyRecord) -> String {
        let set = self.set;
        if self.registered.is_some() {
            return match self.policy.promotion() {
                crate::policy::Promotion::Verified => format!(
                    "it is registered through Digdir's API and is promoted once a token grant with it succeeds; `jwk-rotator verify {set} --kid {}` shows why it does not",
                    p.kid
                ),
                _ => format!("it is registered through Digdir's API; run `jwk-rotator promote {set}`"),
            };
        }
        format!(
            "add {} in Samarbeidsportalen (`jwk-rotator jwks {set} --kid {} --format maskinporten` prints that one key), then run `jwk-rotator promote {set}`",
            p.kid, p.kid
        )
    }

    /// The way out of an expired current key, step by step from where the key set is.
    pub(super) fn rescue_steps(&self) -> String {
        let set = self.set;
        let promote = format!(
            "`jwk-rotator promote {set}` makes it current as soon as Maskinporten grants a token signed with it (it proves the key first when the client has client_id and verify_scope)"
        );
        let api = self.registered.is_some();
        match self.pending() {
            Some(p) if p.published.is_some() && api => {
                format!("Pending key {} is registered through Digdir's API: {promote}", p.kid)
            }
            Some(p) if p.published.is_some() => {
                format!("Pending key {}: {}", p.kid, self.add_then_promote(p))
            }
            Some(p) => format!(
                "1. `jwk-rotator rotate {set}` publishes pending key {}{}; 2. {promote}",
                p.kid,
                if api { " and registers it through Digdir's API" } else { ", add it in Samarbeidsportalen" }
            ),
            None if api => format!(
                "1. `jwk-rotator rotate {set}` makes a new key and registers it through Digdir's API (the expired key is not sent); 2. {promote}"
            ),
            None => format!(
                "1. `jwk-rotator rotate {set}` makes a new key; 2. add it in Samarbeidsportalen (`jwk-rotator jwks {set} --kid KID`); 3. {promote}"
            ),
        }
    }

    /// No current key, or one that expires soon or has expired.
    pub(super) fn current_key(&self) -> Option<Finding> {
        let set = self.set;
        let Some(c) = self.current() else {
            let next = match self.pending() {
                Some(p) => self.add_then_promote(p),
                None => format!("run `jwk-rotator rotate {set}`"),
            };
            let msg = match self.consumer_in_use() {
                Some(holds) => format!(
                    "{set} has no current key, and its consumer secret holds {holds}, which applications read: if that is altinn-jwks's current key, `jwk-rotator import altinn-jwks --from DIR|VAULT_URL {set}` adopts it; otherwise {next}"
                ),
                None => format!("{set} has no current key: {next}"),
            };
            return Some(self.finding(Severity::Critical, FindingKind::NoCurrentKey, None, None, msg));
        };
        let expires = self.expires(c);
        let left = expires - self.now;
        let (days, date) = (left.num_days(), expires.date_naive());
        if left <= TimeDelta::zero() {
            let msg = format!(
                "{set}: current key {} expired on {date}; token requests fail with MP-121. {}",
                c.kid,
                self.rescue_steps()
            );
            return Some(self.finding(
                Severity::Critical,
                FindingKind::Expired,
                Some(&c.kid),
                Some(days),
                msg,
            ));
        }
        if left > self.policy.warn_before().delta() && left > self.policy.critical_before().delta() {
            return None;
        }
        let severity = if left <= self.policy.critical_before().delta() {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let next = match self.pending() {
            Some(p) => self.add_then_promote(p),
            None => format!(
                "run `jwk-rotator rotate --force {set}`, add the new key in Samarbeidsportalen, then promote"
            ),
        };
        let msg = format!("{set}: current key {} expires on {date}, in {days} days; {next}", c.kid);
        Some(self.finding(severity, FindingKind::Expiring, Some(&c.kid), Some(days), msg))
    }

    /// A current key past `rotate_after` (and grace) with no pending key: no schedule runs.
    pub(super) fn rotation_overdue(&self) -> Option<Finding> {
        let c = self.current()?;
        let overdue = self.policy.rotate_after().delta() + self.policy.alert_grace().delta();
        if self.pending().is_some() || self.now - c.created <= overdue {
            return None;
        }
        let set = self.set;
        let msg = format!(
            "{set}: current key {} is {} days old and no new key was made (rotate_after {}); the rotation schedule is not running: check the job, or run `jwk-rotator rotate {set}`",
            c.kid,
            (self.now - c.created).num_days(),
            self.policy.rotate_after()
        );
        let days = (self.expires(c) - self.now).num_days();
        Some(self.finding(Severity::Warning, FindingKind::RotationOverdue, Some(&c.kid), Some(days), msg))
    }

    /// A pending key that waited past `publish_ahead` (and grace) without being promoted.
    pub(super) fn pending_not_promoted(&self) -> Option<Finding> {
        let p = self.pending()?;
        let since = p.published.unwrap_or(p.created);
        if self.now - since <= self.policy.publish_ahead().delta() + self.policy.alert_grace().delta() {
            return None;
        }
        let msg = format!(
            "{}: pending key {} has waited {} days without being promoted; {}",
            self.set,
            p.kid,
            (self.now - since).num_days(),
            self.add_then_promote(p)
        );
        let days = (self.expires(p) - self.now).num_days();
        Some(self.finding(Severity::Warning, FindingKind::PendingNotPromoted, Some(&p.kid), Some(days), msg))
    }

    pub(super) fn too_many_published(&self) -> Option<Finding> {
        let published = lifecycle::published_count(self.records);
        if published <= self.policy.max_published() as usize {
            return None;
        }
        let msg = format!(
            "{}: {published} keys are published but max_published is {}; Maskinporten refuses more than 5. Run `jwk-rotator rotate {}` to retire the oldest",
            self.set,
            self.policy.max_published(),
            self.set
        );
        Some(self.finding(Severity::Critical, FindingKind::TooManyPublished, None, None, msg))
    }

    pub(super) fn several_current(&self) -> Option<Finding> {
        let currents: Vec<&KeyRecord> = self.records.iter().filter(|r| r.stage == Stage::Current).collect();
        if currents.len() < 2 {
            return None;
        }
        let kids: Vec<String> = currents.iter().map(|r| r.kid.to_string()).collect();
        let winner = self.current().map(|r| r.kid.to_string()).unwrap_or_default();
        let msg = format!(
            "{}: {} keys are current ({}); an interrupted run left them. `jwk-rotator rotate {}` keeps {winner} and demotes the others",
            self.set,
            kids.len(),
            kids.join(", "),
            self.set
        );
        Some(self.finding(Severity::Critical, FindingKind::SeveralCurrent, None, None, msg))
    }

    pub(super) fn current_not_published(&self) -> Vec<Finding> {
        let set = self.set;
        self.records
            .iter()
            .filter(|r| r.stage == Stage::Current && r.published.is_none())
            .map(|c| {
                let msg = format!(
                    "{set}: current key {} was never published, so Maskinporten may not know it; run `jwk-rotator rotate {set}` to publish it and make sure it is added in Samarbeidsportalen",
                    c.kid
                );
                self.finding(Severity::Critical, FindingKind::CurrentNotPublished, Some(&c.kid), None, msg)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{Case, only, record, registered};
    use super::*;
    use crate::store::Consumer;

    #[test]
    fn no_current_key_is_critical_and_says_what_to_do_next() {
        let case = Case::new(vec![], "2026-11-21T12:00:00Z");
        let f = only(case.ctx().current_key(), FindingKind::NoCurrentKey, Severity::Critical);
        assert_eq!(f.message, "a-TEST has no current key: run `jwk-rotator rotate a-TEST`");
        let mut case = Case::new(vec![record("2026-11-14", Stage::Pending, true)], "2026-11-21T12:00:00Z");
        let f = only(case.ctx().current_key(), FindingKind::NoCurrentKey, Severity::Critical);
        assert!(f.message.contains("add a-TEST.2026-11-14 in Samarbeidsportalen"), "{}", f.message);
        case.consumer = Some(Consumer::Foreign);
        let f = only(case.ctx().current_key(), FindingKind::NoCurrentKey, Severity::Critical);
        assert!(f.message.contains("consumer secret holds a key jwk-rotator did not write"), "{}", f.message);
        assert!(f.message.contains("jwk-rotator import altinn-jwks"), "{}", f.message);
    }

    #[test]
    fn a_current_key_warns_within_warn_before_and_is_critical_within_critical_before() {
        let records = vec![record("2026-01-10", Stage::Current, true)]; // expires 2027-01-10
        assert!(Case::new(records.clone(), "2026-12-01T00:00:00Z").ctx().current_key().is_none());
        let f = only(
            Case::new(records.clone(), "2026-12-20T00:00:00Z").ctx().current_key(),
            FindingKind::Expiring,
            Severity::Warning,
        );
        assert_eq!(f.days_left, Some(21));
        assert!(f.message.contains("expires on 2027-01-10, in 21 days"), "{}", f.message);
        let f = only(
            Case::new(records, "2027-01-05T00:00:00Z").ctx().current_key(),
            FindingKind::Expiring,
            Severity::Critical,
        );
        assert_eq!(f.days_left, Some(5));
    }

    #[test]
    fn an_expired_current_key_is_critical_with_the_way_out() {
        let records =
            vec![record("2026-01-10", Stage::Current, true), record("2027-01-03", Stage::Pending, true)];
        let mut case = Case::new(records, "2027-01-11T00:00:00Z");
        let f = only(case.ctx().current_key(), FindingKind::Expired, Severity::Critical);
        assert!(
            f.message.contains("expired on 2027-01-10; token requests fail with MP-121"),
            "{}",
            f.message
        );
        assert!(f.message.contains("Pending key a-TEST.2027-01-03: add a-TEST.2027-01-03"), "{}", f.message);
        case.registered = Some(registered(&[]));
        let f = only(case.ctx().current_key(), FindingKind::Expired, Severity::Critical);
        assert!(f.message.contains("is registered through Digdir's API: `jwk-rotator promote a-TEST`"));
    }

    #[test]
    fn a_rotation_is_overdue_past_rotate_after_and_grace_without_a_pending_key() {
        let current = record("2026-01-10", Stage::Current, true);
        let case = |now| Case::new(vec![current.clone()], now);
        assert!(case("2026-04-12T00:00:00Z").ctx().rotation_overdue().is_none(), "92 days: within grace");
        let f = only(
            case("2026-04-13T00:00:00Z").ctx().rotation_overdue(),
            FindingKind::RotationOverdue,
            Severity::Warning,
        );
        assert!(f.message.contains("is 92 days old and no new key was made"), "{}", f.message);
        let with_pending = Case::new(
            vec![current.clone(), record("2026-04-10", Stage::Pending, true)],
            "2026-04-13T00:00:00Z",
        );
        assert!(with_pending.ctx().rotation_overdue().is_none());
    }

    #[test]
    fn a_pending_key_not_promoted_past_publish_ahead_and_grace_warns() {
        let records =
            vec![record("2026-01-10", Stage::Current, true), record("2026-04-10", Stage::Pending, true)];
        assert!(Case::new(records.clone(), "2026-04-19T06:00:00Z").ctx().pending_not_promoted().is_none());
        let f = only(
            Case::new(records, "2026-04-19T07:00:00Z").ctx().pending_not_promoted(),
            FindingKind::PendingNotPromoted,
            Severity::Warning,
        );
        assert!(f.message.contains("pending key a-TEST.2026-04-10 has waited 9 days"), "{}", f.message);
    }

    #[test]
    fn more_published_keys_than_max_published_is_critical() {
        let mut records = vec![record("2026-06-01", Stage::Current, true)];
        for day in ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"] {
            records.push(record(day, Stage::Previous, true));
        }
        assert!(Case::new(records.clone(), "2026-06-02T00:00:00Z").ctx().too_many_published().is_none());
        records.push(record("2026-05-01", Stage::Previous, true));
        let f = only(
            Case::new(records, "2026-06-02T00:00:00Z").ctx().too_many_published(),
            FindingKind::TooManyPublished,
            Severity::Critical,
        );
        assert!(
            f.message.starts_with("a-TEST: 6 keys are published but max_published is 5"),
            "{}",
            f.message
        );
    }

    #[test]
    fn several_current_keys_are_critical_and_name_the_one_kept() {
        let one = vec![record("2026-01-10", Stage::Current, true)];
        assert!(Case::new(one.clone(), "2026-02-01T00:00:00Z").ctx().several_current().is_none());
        let two = [one, vec![record("2026-01-20", Stage::Current, true)]].concat();
        let f = only(
            Case::new(two, "2026-02-01T00:00:00Z").ctx().several_current(),
            FindingKind::SeveralCurrent,
            Severity::Critical,
        );
        assert!(
            f.message.contains("2 keys are current (a-TEST.2026-01-10, a-TEST.2026-01-20)")
                && f.message.contains("keeps a-TEST.2026-01-20"),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_current_key_never_published_is_critical() {
        let published = Case::new(vec![record("2026-01-10", Stage::Current, true)], "2026-02-01T00:00:00Z");
        assert!(published.ctx().current_not_published().is_empty());
        let case = Case::new(vec![record("2026-01-10", Stage::Current, false)], "2026-02-01T00:00:00Z");
        let f =
            only(case.ctx().current_not_published(), FindingKind::CurrentNotPublished, Severity::Critical);
        assert_eq!(f.kid.map(|k| k.to_string()).as_deref(), Some("a-TEST.2026-01-10"));
    }
}
