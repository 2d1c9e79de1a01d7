//! Planner properties over random histories and clocks, and long simulations.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::findings::{self, FindingKind, Severity};
use jwk_rotator::jwk::PublicJwk;
use jwk_rotator::kid::{KeySet, Kid};
use jwk_rotator::planner::{Action, Plan, Request, plan};
use jwk_rotator::policy::{Policy, Promotion, Span};
use jwk_rotator::publish::PublishedSet;
use jwk_rotator::record::{KeyRecord, Stage};
use proptest::prelude::*;

use crate::support::{FIXTURE_KEYS, at, days, set};

/// A public key to stand in for what the engine would generate.
fn public_for(kid: &Kid, i: usize) -> PublicJwk {
    let lines: Vec<&str> = FIXTURE_KEYS.lines().collect();
    let key = jwk_rotator::jwk::PrivateJwk::from_base64(lines[i % lines.len()]).expect("fixture");
    PublicJwk { kid: kid.clone(), ..key.public().clone() }
}

/// The records after `plan`, with generated keys given real public halves.
fn outcome(plan: &Plan) -> Vec<KeyRecord> {
    let mut recs = plan.outcome.clone();
    for (i, r) in recs.iter_mut().enumerate() {
        if r.public.n.is_empty() {
            r.public = public_for(&r.kid, i);
        }
    }
    recs
}

fn published(recs: &[KeyRecord]) -> Vec<&KeyRecord> {
    recs.iter().filter(|r| r.stage.is_published()).collect()
}

/// Every invariant that must hold after a plan is carried out.
fn check_invariants(before: &[KeyRecord], plan: &Plan, policy: &Policy, now: DateTime<Utc>) {
    let after = outcome(plan);
    let currents: Vec<_> = after.iter().filter(|r| r.stage == Stage::Current).collect();
    assert!(currents.len() <= 1, "two current keys: {currents:?}");
    if !after.is_empty() {
        assert_eq!(currents.len(), 1, "keys but no current: {after:?}");
        assert!(currents[0].published.is_some(), "current key not published: {:?}", currents[0]);
    }
    // A key is published before it becomes current: by an earlier run or an earlier step.
    let mut published_now: BTreeSet<Kid> =
        before.iter().filter(|r| r.published.is_some()).map(|r| r.kid.clone()).collect();
    for step in &plan.steps {
        match &step.action {
            Action::Publish { kid } => {
                published_now.insert(kid.clone());
            }
            Action::Promote { kid } => assert!(published_now.contains(kid), "{kid} promoted unpublished"),
            _ => {}
        }
    }
    let public = published(&after);
    assert!(public.len() <= policy.max_published as usize, "{} published: {public:?}", public.len());
    let set = plan.key_set.clone();
    let outputs = PublishedSet::from_records(&set, &after, policy);
    for text in [outputs.jwks_json(), outputs.maskinporten_json()] {
        for member in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
            assert!(!text.contains(member), "private member {member} in {text}");
        }
    }
    let again = plan_ok(&set, &after, policy, now, &Request::default());
    assert!(again.is_empty(), "second run at {now} plans {:?}", again.steps);
}

fn plan_ok(set: &KeySet, recs: &[KeyRecord], policy: &Policy, now: DateTime<Utc>, req: &Request) -> Plan {
    plan(set, recs, policy, now, req).expect("plan")
}

#[derive(Debug, Clone)]
enum Op {
    Run,
    Force,
    Promote,
    Retire { pick: usize, force: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Run),
        1 => Just(Op::Force),
        1 => Just(Op::Promote),
        1 => (0usize..8, any::<bool>()).prop_map(|(pick, force)| Op::Retire { pick, force }),
    ]
}

fn a_policy() -> impl Strategy<Value = Policy> {
    (any::<bool>(), 0i64..=10, 1i64..=20, 40i64..=120, 2u32..=5, 0i64..=40).prop_map(
        |(after_delay, ahead, overlap, rotate, max_published, retain)| Policy {
            promotion: if after_delay { Promotion::AfterDelay } else { Promotion::Manual },
            // after-delay needs publish_ahead of at least 1h (a key is never promoted at once)
            publish_ahead: Span::days(if after_delay { ahead.max(1) } else { ahead }),
            overlap: Span::days(overlap),
            rotate_after: Span::days(rotate),
            max_published,
            retain_retired: Span::days(retain),
            ..Policy::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_histories(
        policy in a_policy(),
        history in prop::collection::vec((0i64..50, 0i64..24, op()), 1..40),
    ) {
        let policy = Policy::new(policy).expect("strategy makes valid policies");
        let set = set("testklient-TEST");
        let mut now = at("2026-01-01T00:00:00Z");
        let mut recs: Vec<KeyRecord> = Vec::new();
        for (d, h, op) in history {
            now += TimeDelta::days(d) + TimeDelta::hours(h);
            let request = match op {
                Op::Run => Request::default(),
                Op::Force => Request { force: true, ..Request::default() },
                Op::Promote => Request { promote: true, ..Request::default() },
                Op::Retire { pick, force } => match recs.get(pick % recs.len().max(1)) {
                    Some(r) => Request { retire: Some((r.kid.clone(), force)), ..Request::default() },
                    None => Request::default(),
                },
            };
            let Ok(p) = plan(&set, &recs, &policy, now, &request) else { continue };
            check_invariants(&recs, &p, &policy, now);
            recs = outcome(&p);
        }
    }
}

/// Daily runs at 06:00 UTC for `days` days from a bootstrap; returns every day's records.
fn simulate(policy: &Policy, days_run: i64, mut each: impl FnMut(DateTime<Utc>, &[KeyRecord])) {
    let set = set("testklient-PROD");
    let start = at("2026-11-21T06:00:00Z");
    let mut recs = Vec::new();
    for day in 0..days_run {
        let now = start + days(day);
        let p = plan_ok(&set, &recs, policy, now, &Request::default());
        check_invariants(&recs, &p, policy, now);
        recs = outcome(&p);
        each(now, &recs);
    }
}

#[test]
fn three_years_after_delay_never_nears_expiry_and_publishes_at_most_three() {
    let policy = Policy { promotion: Promotion::AfterDelay, ..Policy::default() };
    let (mut promotions, mut most) = (0, 0);
    let mut last_current = None;
    simulate(&policy, 3 * 365, |now, recs| {
        let current = recs.iter().find(|r| r.stage == Stage::Current).expect("a current key");
        let left = current.expires(&policy) - now;
        assert!(left > policy.critical_before.delta(), "{} within critical_before on {now}", current.kid);
        let set = set("testklient-PROD");
        let found = findings::evaluate(&set, Ok(recs), &policy, now);
        assert!(found.is_empty(), "{now}: {found:?}");
        most = most.max(published(recs).len());
        if last_current.as_ref() != Some(&current.kid) {
            promotions += 1;
            last_current = Some(current.kid.clone());
        }
    });
    assert!(most <= 3, "published {most}");
    // Bootstrap, then a new key every rotate_after (90 days after the last one was made),
    // promoted publish_ahead (7 days) later: days 97, 187, 277, ...
    let expected = 1 + (0..3 * 365).filter(|d| *d >= 97 && (d - 97) % 90 == 0).count();
    assert_eq!(promotions, expected);
}

#[test]
fn manual_pending_key_nobody_promotes_raises_a_warning_and_stays_pending() {
    let policy = Policy::default();
    assert_eq!(policy.promotion, Promotion::Manual);
    let set = set("testklient-PROD");
    let mut warned = None;
    simulate(&policy, 130, |now, recs| {
        let pending = recs.iter().find(|r| r.stage == Stage::Pending);
        let current = recs.iter().find(|r| r.stage == Stage::Current).expect("current");
        assert!(current.kid.date() == at("2026-11-21T00:00:00Z").date_naive(), "promoted by itself");
        let found = findings::evaluate(&set, Ok(recs), &policy, now);
        let waiting = found.iter().find(|f| f.kind == FindingKind::PendingNotPromoted);
        if let (Some(w), None) = (waiting, warned) {
            assert_eq!(w.severity, Severity::Warning);
            assert!(w.message.contains("promote testklient-PROD"), "{}", w.message);
            assert_eq!(w.kid.as_ref(), pending.map(|p| &p.kid));
            warned = Some(now);
        }
    });
    // Pending made on day 90, published the same day; warned after publish_ahead + alert_grace.
    assert_eq!(warned, Some(at("2026-11-21T06:00:00Z") + days(90 + 7 + 2 + 1)));
}

#[test]
fn reasons_say_why() {
    let policy = Policy { promotion: Promotion::AfterDelay, ..Policy::default() };
    let set = set("testklient-TEST");
    let t0 = at("2026-11-21T06:00:00Z");
    let p = plan_ok(&set, &[], &policy, t0, &Request::default());
    assert!(p.steps[0].reason.contains("first key is current"), "{:?}", p.steps);
    let recs = outcome(&p);
    let p = plan_ok(&set, &recs, &policy, t0 + days(90), &Request::default());
    assert!(p.steps[0].reason.contains("90 days old; rotate_after is 90d"), "{:?}", p.steps);
    let recs = outcome(&p);
    let p = plan_ok(&set, &recs, &policy, t0 + days(97), &Request::default());
    assert!(p.steps[0].reason.contains("publish_ahead is 7d"), "{:?}", p.steps);
    let recs = outcome(&p);
    let p = plan_ok(&set, &recs, &policy, t0 + days(111), &Request::default());
    assert!(p.steps[0].reason.contains("overlap is 14d"), "{:?}", p.steps);
}

#[test]
fn retiring_the_only_usable_key_is_refused_without_force() {
    let policy = Policy::default();
    let set = set("testklient-TEST");
    let t0 = at("2026-11-21T06:00:00Z");
    let recs = outcome(&plan_ok(&set, &[], &policy, t0, &Request::default()));
    let kid = recs[0].kid.clone();
    let refused =
        plan(&set, &recs, &policy, t0, &Request { retire: Some((kid.clone(), false)), ..Request::default() });
    assert!(refused.unwrap_err().0.contains("only key applications"));
    let forced = plan_ok(
        &set,
        &recs,
        &policy,
        t0,
        &Request { retire: Some((kid.clone(), true)), ..Request::default() },
    );
    let after = outcome(&forced);
    let current = after.iter().find(|r| r.stage == Stage::Current).expect("a new current");
    assert_eq!(current.kid.to_string(), "testklient-TEST.2026-11-21-2");
    assert_eq!(after.iter().find(|r| r.kid == kid).map(|r| r.stage), Some(Stage::Retired));
}

#[test]
fn an_expired_current_key_stays_until_replaced() {
    let policy = Policy::default();
    let set = set("testklient-TEST");
    let t0 = at("2026-11-21T06:00:00Z");
    let recs = outcome(&plan_ok(&set, &[], &policy, t0, &Request::default()));
    let late = t0 + days(400);
    let p = plan_ok(&set, &recs, &policy, late, &Request::default());
    let after = outcome(&p);
    assert!(after.iter().any(|r| r.stage == Stage::Current && r.kid == recs[0].kid));
    assert!(after.iter().any(|r| r.stage == Stage::Pending));
    let found = findings::evaluate(&set, Ok(&after), &policy, late);
    assert!(found.iter().any(|f| f.kind == FindingKind::Expired && f.severity == Severity::Critical));
}
