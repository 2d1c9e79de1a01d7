//! Time-to-action: the next thing that will happen to a key set and when, or what a person must
//! do first. It asks the planner itself at the moments where one of its rules can change its
//! answer, so that `status`, the worker's page and the job summary can never predict something
//! the planner would not do.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::kid::KeySet;
use crate::lifecycle;
use crate::moment::Moment;
use crate::planner::{self, Action, Request};
use crate::policy::{Policy, Promotion};
use crate::record::KeyRecord;

/// What the planner will do next on its own: the first step of the first run that does anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upcoming {
    /// The earliest time a run does it; `now` when the next run does.
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub action: Action,
    /// The planner's own reason.
    pub reason: String,
}

/// A key set's next event, and what a person must do for it (or instead of it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outlook {
    /// `None` when no run would ever do anything without a person (manual promotion, say).
    pub next: Option<Upcoming>,
    /// What a person must do, with the command or portal step; `None` when nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
}

impl Outlook {
    /// One line for a table: "promote KID on 2027-01-10" or what a person must do.
    pub fn summary(&self, now: DateTime<Utc>) -> String {
        let next = match &self.next {
            Some(u) if u.at <= now + TimeDelta::seconds(1) => format!("{} at the next run", u.action),
            Some(u) => format!("{} on {}", u.action, u.at.date_naive()),
            None => "nothing scheduled".to_owned(),
        };
        match &self.person {
            Some(person) => format!("{next}; {person}"),
            None => next,
        }
    }
}

/// What was seen besides the records that the planner's next step depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The planner request the engine would make now (`proven`, `consumer_in_use`).
    pub request: Request,
    /// The key set's keys are registered through Digdir's API: no portal steps by hand.
    pub through_api: bool,
    /// The last token grant with the pending key failed, with Digdir's reason.
    pub proof_failing: Option<String>,
}

/// The next thing that happens to `set` after `at`, by the planner's own rules.
pub fn outlook(set: &KeySet, records: &[KeyRecord], policy: &Policy, at: Moment, seen: &Seen) -> Outlook {
    let next = next_step(set, records, policy, at, &seen.request);
    let person = person_step(set, records, policy, at.now, seen, next.as_ref());
    Outlook { next, person }
}

/// The first step of the first run from `at` on that plans anything. Runs after `at` are
/// assumed to find a pending key's token grant succeeding (what `verified` waits for).
pub fn next_step(
    set: &KeySet,
    records: &[KeyRecord],
    policy: &Policy,
    at: Moment,
    request: &Request,
) -> Option<Upcoming> {
    let first = |moment: Moment, request: &Request| {
        let plan = planner::plan(set, records, policy, moment, request).ok()?;
        let step = plan.steps.into_iter().next()?;
        Some(Upcoming { at: moment.now, action: step.action, reason: step.reason })
    };
    if let Some(now) = first(at, request) {
        return Some(now);
    }
    let proven = lifecycle::pending(records, at.now).map(|p| p.kid.clone());
    let later = Request { proven, ..request.clone() };
    candidates(records, policy, at).into_iter().find_map(|t| first(later_moment(at, t), &later))
}

/// The runs ahead of `at` until `until`, as the planner would make them if a run happened at
/// each moment one of its rules can change its answer: every step with its time, and the records
/// they lead to (keys made later among them, with predicted times). Purged keys are kept, retired.
/// Runs are assumed to find a pending key's token grant succeeding, as in [`next_step`].
pub fn forecast(
    set: &KeySet,
    records: &[KeyRecord],
    policy: &Policy,
    at: Moment,
    request: &Request,
    until: DateTime<Utc>,
) -> Forecast {
    let mut recs = records.to_vec();
    let mut purged = Vec::new();
    let mut steps = Vec::new();
    let mut moment = at;
    let mut request = request.clone();
    while steps.len() < MAX_FORECAST {
        let Some(u) = next_step(set, &recs, policy, moment, &request) else { break };
        if u.at > until {
            break;
        }
        let mut this_run = request.clone();
        if u.at > moment.now {
            moment = later_moment(moment, u.at);
            this_run.proven = lifecycle::pending(&recs, moment.now).map(|p| p.kid.clone());
        }
        let Ok(plan) = planner::plan(set, &recs, policy, moment, &this_run) else { break };
        purged.extend(recs.iter().filter(|r| !plan.outcome.iter().any(|o| o.kid == r.kid)).cloned());
        steps.extend(plan.steps.into_iter().map(|s| Upcoming {
            at: moment.now,
            action: s.action,
            reason: s.reason,
        }));
        recs = plan.outcome;
        request.proven = None;
        moment = later_moment(moment, moment.now + TimeDelta::seconds(1));
    }
    recs.extend(purged);
    Forecast { steps, records: recs }
}

/// At most this many runs are forecast: a year of a daily rotation's steps fits many times.
const MAX_FORECAST: usize = 64;

/// What [`forecast`] predicts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forecast {
    pub steps: Vec<Upcoming>,
    /// The records after those steps, purged ones included.
    pub records: Vec<KeyRecord>,
}

impl Forecast {
    /// The first predicted step that `is` matches.
    pub fn first(&self, is: impl Fn(&Action) -> bool) -> Option<&Upcoming> {
        self.steps.iter().find(|u| is(&u.action))
    }
}

/// A later run at `t`, with the real clock moved on as much.
fn later_moment(at: Moment, t: DateTime<Utc>) -> Moment {
    Moment::new(t, at.wall + (t - at.now))
}

/// Every time after `at` at which a planner rule can change its answer: each time a record
/// holds (on the run's clock, and the real-clock write time moved onto it), plus each span of
/// the policy, and a second later. Every rule compares `now` with such a sum, so the first run
/// that acts falls on one.
fn candidates(records: &[KeyRecord], policy: &Policy, at: Moment) -> Vec<DateTime<Utc>> {
    let spans = [
        TimeDelta::zero(),
        policy.rotate_after().delta(),
        policy.publish_ahead().delta(),
        policy.overlap().delta(),
        policy.retain_retired().delta(),
        policy.max_age().delta(),
        policy.max_age().delta() - policy.warn_before().delta(),
    ];
    // The next run after this one: the first that a token grant succeeding can change.
    let mut bases = vec![at.now];
    for r in records {
        bases.extend([Some(r.created), r.published, r.activated, r.demoted, r.retired].into_iter().flatten());
        bases.push(r.kid.date().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
        bases.extend(r.written.map(|w| w + (at.now - at.wall)));
    }
    let mut times: Vec<DateTime<Utc>> = bases
        .iter()
        .flat_map(|b| spans.iter().filter_map(move |s| b.checked_add_signed(*s)))
        // A rule that asks for more than a span (`published_before`: any time after) holds a
        // second later.
        .flat_map(|t| [Some(t), t.checked_add_signed(TimeDelta::seconds(1))])
        .flatten()
        .filter(|t| *t > at.now)
        .collect();
    times.sort();
    times.dedup();
    times
}

/// What a person must do: promote by hand (`manual`), add the pending key in Samarbeidsportalen
/// before it is promoted, or find out why its token grant fails (`verified`).
fn person_step(
    set: &KeySet,
    records: &[KeyRecord],
    policy: &Policy,
    now: DateTime<Utc>,
    seen: &Seen,
    next: Option<&Upcoming>,
) -> Option<String> {
    let pending = lifecycle::pending(records, now)?;
    let kid = &pending.kid;
    let portal = !seen.through_api;
    let add = format!("add {kid} in Samarbeidsportalen (`jwk-rotator jwks {set} --kid {kid}`)");
    if policy.promotion() == Promotion::Manual {
        let deadline = lifecycle::current(records, now)
            .map(|c| format!(" before {} (the current key expires then)", c.expires(policy).date_naive()))
            .unwrap_or_default();
        let then = format!("run `jwk-rotator promote {set}`{deadline}");
        return Some(if portal { format!("{add}, then {then}") } else { then });
    }
    if let Some(reason) = &seen.proof_failing {
        return Some(format!(
            "the token grant with {kid} fails ({reason}); `jwk-rotator verify {set}` shows why"
        ));
    }
    let promotes = next.filter(|u| matches!(&u.action, Action::Promote { kid: k } if k == kid));
    match (portal, promotes) {
        (true, Some(u)) if u.at > now => Some(format!("{add} before {}", u.at.date_naive())),
        (true, _) => Some(add),
        (false, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::PublicJwk;
    use crate::policy::Algorithm;
    use crate::record::Stage;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn record(kid: &str, stage: Stage, created: &str) -> KeyRecord {
        let kid = kid.parse().expect("kid");
        let public = PublicJwk { kid, alg: Algorithm::RS256, n: "n".into(), e: "AQAB".into() };
        KeyRecord::new(public, stage, at(created))
    }

    /// A key published in this run may be promoted by any later run: the second after is a
    /// candidate, not only the publication plus a span.
    #[test]
    fn a_second_after_each_time_is_a_candidate() {
        let now = at("2026-11-21T06:00:00Z");
        let mut r = record("a-TEST.2026-11-21", Stage::Pending, "2026-11-21T06:00:00Z");
        r.published = Some(now);
        r.written = Some(now);
        let times = candidates(&[r], &Policy::default(), Moment::from(now));
        assert_eq!(times.first(), Some(&(now + TimeDelta::seconds(1))));
        assert!(times.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert!(times.contains(&(now + Policy::default().publish_ahead().delta())));
    }

    #[test]
    fn the_summary_says_when_and_what_a_person_must_do() {
        let now = at("2026-11-21T06:00:00Z");
        let kid: crate::kid::Kid = "a-TEST.2027-02-19".parse().expect("kid");
        let promote = Action::Promote { kid };
        let at_next = Upcoming { at: now, action: promote.clone(), reason: String::new() };
        let later = Upcoming { at: at("2027-02-26T06:00:00Z"), action: promote, reason: String::new() };
        let o = Outlook { next: Some(at_next), person: None };
        assert_eq!(o.summary(now), "promote a-TEST.2027-02-19 to current at the next run");
        let o = Outlook { next: Some(later), person: Some("add it".to_owned()) };
        assert_eq!(o.summary(now), "promote a-TEST.2027-02-19 to current on 2027-02-26; add it");
        assert_eq!(Outlook::default().summary(now), "nothing scheduled");
    }
}
