//! Planner properties over random histories and clocks, and long simulations.
use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::findings::{self, FindingKind, Severity};
use jwk_rotator::jwk::PublicJwk;
use jwk_rotator::kid::{KeySet, Kid};
use jwk_rotator::lifecycle;
use jwk_rotator::moment::Moment;
use jwk_rotator::planner::{Action, Plan, Request, Retire, plan};
use jwk_rotator::policy::{Policy, PolicyOverrides, Promotion, Span};
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

/// When each key was really published: the host's real clock in the run that published it,
/// kept by the test apart from what the records say.
pub(crate) type RealPublished = BTreeMap<Kid, DateTime<Utc>>;

/// Every invariant that must hold after a plan is carried out at `at`. `real` is when each key
/// was really published; the plan's publications are added to it.
fn check_invariants(
    before: &[KeyRecord],
    plan: &Plan,
    policy: &Policy,
    at: Moment,
    request: &Request,
    real: &mut RealPublished,
) {
    let now = at.now;
    let after = outcome(plan);
    let currents: Vec<_> = after.iter().filter(|r| r.stage == Stage::Current).collect();
    assert!(currents.len() <= 1, "two current keys: {currents:?}");
    for c in &currents {
        assert!(c.published.is_some(), "current key not published: {c:?}");
    }
    // A key set never goes back to empty: it would look new, and a new key set's first key is
    // current at once.
    assert!(before.is_empty() || !after.is_empty(), "purged empty: {before:?}");
    let had_current = before.iter().any(|r| r.stage == Stage::Current);
    if !after.is_empty() && currents.is_empty() {
        let forced = request.retire.as_ref().is_some_and(|r| r.force);
        assert!(forced || !had_current, "the current key was lost without `retire --force`: {after:?}");
    }
    // No key is current in the run that made it, bar the first key of an empty key set; a
    // promoted key was published by an earlier run; a scheduled promotion waited publish_ahead,
    // by the runs' time and by the real clock, whatever the runs' time said.
    for step in &plan.steps {
        match &step.action {
            Action::Generate { stage: Stage::Current, kid } => {
                assert!(before.is_empty(), "{kid} made current at once in a key set with keys: {before:?}");
            }
            Action::Promote { kid } => {
                let was = before.iter().find(|r| r.kid == *kid);
                let was = was.unwrap_or_else(|| panic!("{kid} promoted in the run that made it"));
                assert!(
                    lifecycle::published_before(was, at),
                    "{kid} promoted before an earlier run published it"
                );
                let really = real.get(kid).unwrap_or_else(|| panic!("{kid} promoted, never published"));
                assert!(*really < at.wall, "{kid} promoted in the run that really published it");
                if !request.promote && request.retire.is_none() {
                    // The one exception: no current key works, and a grant with this one succeeded.
                    let rescued =
                        request.proven.as_ref() == Some(kid) && lifecycle::needs_rescue(before, policy, now);
                    let waited = now - was.published.expect("published");
                    assert!(
                        waited >= policy.publish_ahead().delta() || rescued,
                        "{kid} promoted after {waited}"
                    );
                    let really_waited = at.wall - *really;
                    assert!(
                        really_waited >= policy.publish_ahead().delta() || rescued,
                        "{kid} promoted {really_waited} after it was really published"
                    );
                }
                if policy.promotion() == Promotion::Verified {
                    assert_eq!(
                        request.proven.as_ref(),
                        Some(kid),
                        "verified: {kid} promoted without a proof"
                    );
                }
                if policy.promotion() == Promotion::Manual {
                    assert!(
                        request.promote || request.retire.is_some(),
                        "manual: {kid} promoted on schedule"
                    );
                }
            }
            _ => {}
        }
    }
    for step in &plan.steps {
        if let Action::Publish { kid } = &step.action {
            real.entry(kid.clone()).or_insert(at.wall);
        }
    }
    let public = published(&after);
    assert!(public.len() <= policy.max_published() as usize, "{} published: {public:?}", public.len());
    let set = plan.key_set.clone();
    let outputs = PublishedSet::from_records(&set, &after, policy, now);
    for text in [outputs.jwks_json(), outputs.maskinporten_json()] {
        for member in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
            assert!(!text.contains(member), "private member {member} in {text}");
        }
    }
    // `status` reports a key set left without a current key.
    let found = findings::evaluate(&set, Ok(&after), policy, at);
    if !after.is_empty() && currents.is_empty() {
        assert!(found.iter().any(|f| f.kind == FindingKind::NoCurrentKey), "{found:?}");
    }
    let again = plan_ok(&set, &after, policy, at, &Request::default());
    assert!(again.is_empty(), "second run at {now} plans {:?}", again.steps);
}

fn plan_ok(set: &KeySet, recs: &[KeyRecord], policy: &Policy, at: impl Into<Moment>, req: &Request) -> Plan {
    plan(set, recs, policy, at, req).expect("plan")
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    Run,
    /// A scheduled run in which a token grant with the pending key succeeded.
    Proved,
    Force,
    Promote,
    Retire {
        pick: usize,
        force: bool,
    },
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Run),
        2 => Just(Op::Proved),
        1 => Just(Op::Force),
        1 => Just(Op::Promote),
        1 => (0usize..8, any::<bool>()).prop_map(|(pick, force)| Op::Retire { pick, force }),
    ]
}

pub(crate) fn a_policy() -> impl Strategy<Value = PolicyOverrides> {
    (0u8..3, 0i64..=10, 1i64..=20, 40i64..=120, 2u32..=5, 0i64..=40).prop_map(
        |(mode, ahead, overlap, rotate, max_published, retain)| PolicyOverrides {
            promotion: Some(
                [Promotion::Manual, Promotion::AfterDelay, Promotion::Verified][usize::from(mode)],
            ),
            // after-delay needs publish_ahead of at least 1h (a key is never promoted at once)
            publish_ahead: Some(Span::days(if mode == 1 { ahead.max(1) } else { ahead })),
            overlap: Some(Span::days(overlap)),
            rotate_after: Some(Span::days(rotate)),
            max_published: Some(max_published),
            retain_retired: Some(Span::days(retain)),
            ..PolicyOverrides::default()
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
        let policy = Policy::new(&policy).expect("strategy makes valid policies");
        let mut now = at("2026-01-01T00:00:00Z");
        let steps = history.into_iter().map(|(d, h, op)| {
            now += TimeDelta::days(d) + TimeDelta::hours(h);
            (now, op)
        });
        replay(&policy, steps.map(|(now, op)| (Moment::from(now), op)));
    }

    /// The runs' time (`JWK_ROTATOR_NOW`, `--at`) falls behind the real clock by up to a year
    /// for one run, then returns, while the real clock only moves on: a key is current only
    /// after it was published for publish_ahead of real time (or on request, after a run that
    /// really came earlier), whatever time the runs gave.
    #[test]
    fn invariants_hold_when_the_runs_time_falls_behind_for_a_run(
        policy in a_policy(),
        history in prop::collection::vec((0i64..20, 0i64..24, 0i64..6, 1i64..=365, op()), 1..40),
    ) {
        let policy = Policy::new(&policy).expect("strategy makes valid policies");
        let mut wall = at("2026-06-01T00:00:00Z");
        let steps: Vec<_> = history
            .into_iter()
            .map(|(d, h, behind_often, behind, op)| {
                wall += TimeDelta::days(d) + TimeDelta::hours(h);
                // One run in six or so is given a time up to a year back; the next is right.
                let now = if behind_often == 0 { wall - TimeDelta::days(behind) } else { wall };
                (Moment::new(now, wall), op)
            })
            .collect();
        replay(&policy, steps);
    }

    /// The clock jumps back and forth by up to a year between runs (a host whose clock jumped,
    /// `--at` far ahead): still never two current keys, never a key current in the run that
    /// made it, never a rotation stalled by a key dated in the future.
    #[test]
    fn invariants_hold_when_the_clock_jumps(
        policy in a_policy(),
        history in prop::collection::vec((-365i64..=365, 0i64..24, op()), 1..40),
    ) {
        let policy = Policy::new(&policy).expect("strategy makes valid policies");
        let start = at("2026-06-01T00:00:00Z");
        let mut day = 0i64;
        let steps: Vec<_> = history
            .into_iter()
            .map(|(jump, h, op)| {
                // Mostly small steps forward; sometimes a jump of up to a year either way.
                day = if jump.abs() > 300 { day + jump } else { day + jump.rem_euclid(30) };
                (start + TimeDelta::days(day) + TimeDelta::hours(h), op)
            })
            .collect();
        let recs = replay(&policy, steps.iter().map(|(now, op)| (Moment::from(*now), op.clone())));
        // Once the clock is right again, a daily schedule gets the key set going: nothing
        // dated in the future is left, and a current key exists.
        let last = steps.iter().map(|(t, _)| *t).max().unwrap_or(start) + TimeDelta::days(2);
        let set = set("testklient-TEST");
        let (mut recs, mut real) = recs;
        for d in 0..(policy.publish_ahead().delta().num_days() + 3) {
            let now = last + TimeDelta::days(d);
            let p = plan_ok(&set, &recs, &policy, now, &Request::default());
            check_invariants(&recs, &p, &policy, now.into(), &Request::default(), &mut real);
            recs = outcome(&p);
        }
        let now = last + TimeDelta::days(policy.publish_ahead().delta().num_days() + 2);
        let stuck: Vec<_> = recs
            .iter()
            .filter(|r| r.stage == Stage::Pending && lifecycle::is_future_dated(r, now))
            .collect();
        prop_assert!(stuck.is_empty(), "future-dated pending keys left: {:?}", stuck);
    }
}

/// Plans and applies `steps` in turn from an empty key set, checking every invariant; returns
/// the records and when each key was really published.
pub(crate) fn replay(
    policy: &Policy,
    steps: impl IntoIterator<Item = (Moment, Op)>,
) -> (Vec<KeyRecord>, RealPublished) {
    let set = set("testklient-TEST");
    let mut recs: Vec<KeyRecord> = Vec::new();
    let mut real = RealPublished::new();
    for (at, op) in steps {
        let request = match op {
            Op::Run => Request::default(),
            Op::Proved => Request {
                proven: lifecycle::pending(&recs, at.now).map(|p| p.kid.clone()),
                ..Request::default()
            },
            Op::Force => Request { force: true, ..Request::default() },
            Op::Promote => Request {
                promote: true,
                proven: lifecycle::pending(&recs, at.now).map(|p| p.kid.clone()),
                ..Request::default()
            },
            Op::Retire { pick, force } => match recs.get(pick % recs.len().max(1)) {
                Some(r) => {
                    Request { retire: Some(Retire { kid: r.kid.clone(), force }), ..Request::default() }
                }
                None => Request::default(),
            },
        };
        let Ok(p) = plan(&set, &recs, policy, at, &request) else { continue };
        check_invariants(&recs, &p, policy, at, &request, &mut real);
        recs = outcome(&p);
    }
    (recs, real)
}

/// Daily runs at 06:00 UTC for `days` days from a bootstrap; returns every day's records.
fn simulate(policy: &Policy, days_run: i64, mut each: impl FnMut(DateTime<Utc>, &[KeyRecord])) {
    let set = set("testklient-PROD");
    let start = at("2026-11-21T06:00:00Z");
    let mut recs = Vec::new();
    let mut real = RealPublished::new();
    for day in 0..days_run {
        let now = start + days(day);
        let p = plan_ok(&set, &recs, policy, now, &Request::default());
        check_invariants(&recs, &p, policy, now.into(), &Request::default(), &mut real);
        recs = outcome(&p);
        each(now, &recs);
    }
}

#[test]
fn three_years_after_delay_never_nears_expiry_and_publishes_at_most_three() {
    let policy = crate::support::policy(Promotion::AfterDelay);
    let (mut promotions, mut most) = (0, 0);
    let mut last_current = None;
    simulate(&policy, 3 * 365, |now, recs| {
        let current = recs.iter().find(|r| r.stage == Stage::Current).expect("a current key");
        let left = current.expires(&policy) - now;
        assert!(left > policy.critical_before().delta(), "{} within critical_before on {now}", current.kid);
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
    assert_eq!(policy.promotion(), Promotion::Manual);
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
    let policy = crate::support::policy(Promotion::AfterDelay);
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
    let refused = plan(
        &set,
        &recs,
        &policy,
        t0,
        &Request { retire: Some(Retire { kid: kid.clone(), force: false }), ..Request::default() },
    );
    let refused = refused.unwrap_err();
    assert!(refused.message.contains("only key applications"), "{refused}");
    assert_eq!(refused.because, jwk_rotator::planner::RefusedBecause::OnlyUsableKey);
    assert_eq!(refused.kid.as_ref(), Some(&kid));
    let forced = plan_ok(
        &set,
        &recs,
        &policy,
        t0,
        &Request { retire: Some(Retire { kid: kid.clone(), force: true }), ..Request::default() },
    );
    let after = outcome(&forced);
    // The new key is never current in the run that made it: it waits for upload and promote.
    assert!(after.iter().all(|r| r.stage != Stage::Current), "{after:?}");
    let pending = after.iter().find(|r| r.stage == Stage::Pending).expect("a new pending key");
    assert_eq!(pending.kid.to_string(), "testklient-TEST.2026-11-21-2");
    assert_eq!(after.iter().find(|r| r.kid == kid).map(|r| r.stage), Some(Stage::Retired));
    let promote = Request { promote: true, ..Request::default() };
    assert!(plan(&set, &after, &policy, t0, &promote).is_err(), "promoted in the run that published it");
    let later = outcome(&plan_ok(&set, &after, &policy, t0 + TimeDelta::hours(1), &promote));
    assert_eq!(later.iter().find(|r| r.stage == Stage::Current).map(|r| &r.kid), Some(&pending.kid));
}

#[test]
fn retiring_the_current_key_hands_over_only_to_a_key_published_earlier() {
    let policy = Policy::default();
    let set = set("testklient-TEST");
    let t0 = at("2026-11-21T06:00:00Z");
    let recs = outcome(&plan_ok(&set, &[], &policy, t0, &Request::default()));
    let old = recs[0].kid.clone();
    let t1 = t0 + days(1);
    let recs = outcome(&plan_ok(&set, &recs, &policy, t1, &Request { force: true, ..Request::default() }));
    let retire = Request { retire: Some(Retire { kid: old.clone(), force: false }), ..Request::default() };
    assert!(plan(&set, &recs, &policy, t1, &retire).is_err(), "pending key published in this very run");
    let p = plan_ok(&set, &recs, &policy, t1 + TimeDelta::hours(1), &retire);
    let after = outcome(&p);
    let current = after.iter().find(|r| r.stage == Stage::Current).expect("handed over");
    assert_eq!(current.kid.to_string(), "testklient-TEST.2026-11-22");
    assert_eq!(after.iter().find(|r| r.kid == old).map(|r| r.stage), Some(Stage::Retired));
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

    // The next run: without a proof the new key waits publish_ahead; with one, in after-delay
    // and verified (not manual), it is current at once.
    let pending = after.iter().find(|r| r.stage == Stage::Pending).expect("pending").kid.clone();
    let next = late + TimeDelta::minutes(1);
    let proved = Request { proven: Some(pending.clone()), ..Request::default() };
    for promotion in [Promotion::Manual, Promotion::AfterDelay, Promotion::Verified] {
        let policy =
            Policy::new(&PolicyOverrides { promotion: Some(promotion), ..PolicyOverrides::default() })
                .expect("policy");
        assert!(plan_ok(&set, &after, &policy, next, &Request::default()).is_empty(), "{promotion:?}");
        let p = plan_ok(&set, &after, &policy, next, &proved);
        let promoted = p.steps.iter().find(|s| s.action == Action::Promote { kid: pending.clone() });
        assert_eq!(promoted.is_some(), promotion != Promotion::Manual, "{promotion:?}: {:?}", p.steps);
        if let Some(step) = promoted {
            assert!(
                step.reason.contains("expired on 2027-11-21")
                    && step.reason.contains("without waiting for publish_ahead"),
                "{}",
                step.reason
            );
            let retired = Action::Retire { kid: recs[0].kid.clone() };
            assert!(p.steps.iter().any(|s| s.action == retired), "the expired key goes: {:?}", p.steps);
        }
    }
}
