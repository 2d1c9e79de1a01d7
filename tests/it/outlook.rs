//! Time-to-action against the planner: over random histories, the predicted next step is what
//! the planner does when run at the predicted time, and no run before it does anything.
use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::kid::KeySet;
use jwk_rotator::lifecycle;
use jwk_rotator::moment::Moment;
use jwk_rotator::outlook::{self, Seen};
use jwk_rotator::planner::{Request, plan};
use jwk_rotator::policy::{Policy, PolicyOverrides, Promotion, Span};
use jwk_rotator::record::KeyRecord;
use proptest::prelude::*;

use crate::planner::{a_policy, op, replay};
use crate::support::{at, set};

/// The first step a run at `now` plans, with the pending key's grant succeeding when `proved`.
fn first_step(
    set: &KeySet,
    recs: &[KeyRecord],
    policy: &Policy,
    now: DateTime<Utc>,
    proved: bool,
) -> Option<String> {
    let proven = lifecycle::pending(recs, now).map(|p| p.kid.clone()).filter(|_| proved);
    let request = Request { proven, ..Request::default() };
    let p = plan(set, recs, policy, Moment::from(now), &request).ok()?;
    p.steps.first().map(|s| s.action.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_predicted_step_is_what_the_planner_does_then_and_nothing_happens_before(
        policy in a_policy(),
        history in prop::collection::vec((0i64..50, 0i64..24, op()), 0..30),
        later in 0i64..(60 * 24),
        samples in prop::collection::vec(0.0f64..1.0, 8),
    ) {
        let policy = Policy::new(&policy).expect("strategy makes valid policies");
        let mut t = at("2026-01-01T00:00:00Z");
        let steps: Vec<_> = history.into_iter().map(|(d, h, op)| {
            t += TimeDelta::days(d) + TimeDelta::hours(h);
            (Moment::from(t), op)
        }).collect();
        let (recs, _) = replay(&policy, steps);
        let set = set("testklient-TEST");
        let now = t + TimeDelta::hours(later);
        let next = outlook::next_step(&set, &recs, &policy, Moment::from(now), &Request::default());
        match next {
            Some(u) if u.at == now => {
                prop_assert_eq!(first_step(&set, &recs, &policy, now, false), Some(u.action.to_string()));
            }
            Some(u) => {
                prop_assert!(u.at > now);
                prop_assert_eq!(first_step(&set, &recs, &policy, now, false), None);
                prop_assert_eq!(first_step(&set, &recs, &policy, u.at, true), Some(u.action.to_string()));
                let span = (u.at - now).num_seconds();
                let before = u.at - TimeDelta::seconds(1);
                for s in samples.iter().map(|f| now + TimeDelta::seconds((span as f64 * f) as i64)).chain([before]) {
                    if s > now && s < u.at {
                        prop_assert_eq!(first_step(&set, &recs, &policy, s, true), None, "a run at {} acts before {}", s, u.at);
                    }
                }
            }
            None => {
                for s in samples.iter().map(|f| now + TimeDelta::seconds(1) + TimeDelta::days((f * 3.0 * 365.0) as i64)) {
                    prop_assert_eq!(first_step(&set, &recs, &policy, s, true), None, "nothing predicted, yet a run at {} acts", s);
                }
            }
        }
    }
}

fn policy(promotion: Promotion) -> Policy {
    Policy::new(&PolicyOverrides {
        promotion: Some(promotion),
        publish_ahead: Some(Span::days(7)),
        ..PolicyOverrides::default()
    })
    .expect("policy")
}

/// Daily runs from a key set's first key: the outlook on day 0 names the day of the rotation,
/// and the runs in between do nothing.
#[test]
fn a_daily_schedule_acts_on_the_first_day_at_or_after_the_predicted_time() {
    let policy = policy(Promotion::AfterDelay);
    let set = set("testklient-PROD");
    let start = at("2026-11-21T06:00:00Z");
    let first = plan(&set, &[], &policy, start, &Request::default()).expect("plan");
    let recs = first.outcome;
    let next = outlook::next_step(
        &set,
        &recs,
        &policy,
        Moment::from(start + TimeDelta::hours(1)),
        &Request::default(),
    )
    .expect("a rotation is ahead");
    assert_eq!(next.at, start + policy.rotate_after().delta(), "{next:?}");
    assert!(next.action.to_string().starts_with("generate testklient-PROD."), "{next:?}");
    for day in 1..400 {
        let now = start + TimeDelta::days(day);
        let acts = first_step(&set, &recs, &policy, now, false).is_some();
        assert_eq!(acts, now >= next.at, "day {day}");
        if acts {
            break;
        }
    }
}

/// A key set's first key made on 2026-11-21, then its first rotation when due: the records,
/// when that was, and the new pending key.
fn first_rotation(set: &KeySet, policy: &Policy) -> (Vec<KeyRecord>, DateTime<Utc>, jwk_rotator::kid::Kid) {
    let start = at("2026-11-21T06:00:00Z");
    let first = plan(set, &[], policy, start, &Request::default()).expect("plan").outcome;
    let due = start + policy.rotate_after().delta();
    let recs = plan(set, &first, policy, due, &Request::default()).expect("plan").outcome;
    let pending = lifecycle::pending(&recs, due).expect("pending").kid.clone();
    (recs, due, pending)
}

/// Manual promotion: the planner never promotes, so the outlook says what a person must do,
/// and by when (the current key's expiry).
#[test]
fn manual_promotion_tells_a_person_to_promote_before_the_current_key_expires() {
    let policy = policy(Promotion::Manual);
    let set = set("testklient-TEST");
    let (recs, due, pending) = first_rotation(&set, &policy);
    let now = due + TimeDelta::days(10);
    let o = outlook::outlook(&set, &recs, &policy, Moment::from(now), &Seen::default());
    let person = o.person.expect("a person must act");
    assert!(person.contains(&format!("add {pending} in Samarbeidsportalen")), "{person}");
    assert!(person.contains("`jwk-rotator promote testklient-TEST` before 2027-11-21"), "{person}");
    let through_api = Seen { through_api: true, ..Seen::default() };
    let o = outlook::outlook(&set, &recs, &policy, Moment::from(now), &through_api);
    assert_eq!(
        o.person.as_deref(),
        Some("run `jwk-rotator promote testklient-TEST` before 2027-11-21 (the current key expires then)")
    );
    assert!(!o.next.is_some_and(|u| u.action.to_string().starts_with("promote")), "manual: no run promotes");
}

/// After-delay: the promotion date is publish_ahead after publication, and a key set not
/// registered through the API is told to add the key before then.
#[test]
fn after_delay_predicts_the_promotion_and_asks_for_the_portal_step_before_it() {
    let policy = policy(Promotion::AfterDelay);
    let set = set("testklient-TEST");
    let (recs, due, pending) = first_rotation(&set, &policy);
    let now = due + TimeDelta::days(1);
    let o = outlook::outlook(&set, &recs, &policy, Moment::from(now), &Seen::default());
    let next = o.next.clone().expect("a promotion is ahead");
    assert_eq!(next.at, due + TimeDelta::days(7));
    assert_eq!(next.action.to_string(), format!("promote {pending} to current"));
    assert_eq!(
        o.summary(now),
        format!(
            "promote {pending} to current on 2027-02-26; add {pending} in Samarbeidsportalen (`jwk-rotator jwks testklient-TEST --kid {pending}`) before 2027-02-26"
        )
    );
    let failing = Seen { proof_failing: Some("unknown-kid".to_owned()), ..Seen::default() };
    let o = outlook::outlook(&set, &recs, &policy, Moment::from(now), &failing);
    assert!(o.person.is_some_and(|p| p.contains("fails (unknown-kid)")));
}
