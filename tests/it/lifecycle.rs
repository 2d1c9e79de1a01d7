//! Lifecycle safety through the real binary and the engine: no key is current before an
//! earlier run published it, a key set missing from a load is an error, and a clock that ran
//! ahead neither dates keys in the future unasked nor stalls rotation for good.

use std::sync::Arc;

use async_trait::async_trait;
use jwk_rotator::findings::{self, FindingKind, Severity};
use jwk_rotator::jwk::PrivateJwk;
use jwk_rotator::kid::{KeySet, Kid};
use jwk_rotator::planner::Request;
use jwk_rotator::policy::Target;
use jwk_rotator::policy::{Policy, Promotion};
use jwk_rotator::record::{KeyRecord, Stage};
use jwk_rotator::store::recording::{Recording, call_every_method, every_method};
use jwk_rotator::store::{KeyStore, Loaded, MemoryStore, Opened, StoreError, StoreLock};

use crate::cli::{Project, T0};
use crate::support::{at, days, engine, fixture_key, targets};

fn day(n: i64) -> String {
    (at(T0) + days(n)).to_rfc3339()
}

fn hours(n: i64) -> String {
    (at(T0) + chrono::TimeDelta::hours(n)).to_rfc3339()
}

/// (kid, stage) of every key in the `status` table.
fn stages(status: &str) -> Vec<(String, String)> {
    status
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            let (kid, stage) = (cols.next()?, cols.next()?);
            kid.contains('.').then(|| (kid.to_owned(), stage.to_owned()))
        })
        .collect()
}

fn currents(p: &Project, now: &str) -> Vec<String> {
    let (_, out, _) = p.run(now, &["status", "testklient-TEST"]);
    stages(&out).into_iter().filter(|(_, s)| s == "current").map(|(k, _)| k).collect()
}

#[test]
fn a_key_set_named_twice_is_worked_on_once() {
    let p = Project::new("");
    p.ok(T0, &["rotate", "testklient-TEST"]);
    let out = p.ok(&hours(1), &["rotate", "testklient-TEST", "testklient-TEST"]);
    assert_eq!(out.matches("testklient-TEST: nothing to do").count(), 1, "{out}");
    assert!(!out.contains("generate"), "{out}");
    assert_eq!(currents(&p, &hours(1)), ["testklient-TEST.2026-11-21"]);
    let (code, out, _) = p.run(&hours(1), &["status", "testklient-TEST", "testklient-TEST"]);
    assert_eq!(code, 0, "{out}");
    // Every command that takes key sets: plan and --dry-run too.
    let out = p.ok(&day(90), &["plan", "testklient-TEST", "testklient-TEST"]);
    assert_eq!(out.matches("would: generate").count(), 1, "{out}");
    let out = p.ok(&day(90), &["rotate", "--dry-run", "testklient-TEST", "testklient-TEST"]);
    assert_eq!(out.matches("would: generate").count(), 1, "{out}");
    let out = p.ok(&day(90), &["rotate", "testklient-TEST", "testklient-TEST"]);
    assert_eq!(out.matches("done: generate").count(), 1, "{out}");
    assert!(out.contains("as pending"), "{out}");
    assert_eq!(currents(&p, &day(90)), ["testklient-TEST.2026-11-21"]);
}

#[test]
fn promote_without_a_pending_key_writes_nothing_even_when_a_rotation_is_due() {
    let p = Project::new("");
    p.ok(T0, &["rotate"]);
    let before = p.snapshot();
    // 100 days on, a rotation is due: promote must not make a key and promote it at once.
    let (code, out, err) = p.run(&day(100), &["promote", "testklient-TEST"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no pending key to promote"), "{err}");
    assert_eq!(p.snapshot(), before, "promote wrote something");
    // A pending key made and published in this run can not be promoted in it either.
    p.ok(&day(100), &["rotate", "testklient-TEST"]);
    let before = p.snapshot();
    let (code, _, err) = p.run(&day(100), &["promote", "testklient-TEST"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not before this run"), "{err}");
    // Samarbeidsportalen takes one key at a time: the refusal names that key, not a file.
    assert!(
        err.contains("jwks testklient-TEST --kid testklient-TEST.2027-03-01 --format maskinporten"),
        "{err}"
    );
    assert!(!err.contains(".maskinporten.json"), "{err}");
    assert_eq!(p.snapshot(), before);
    p.ok(&day(101), &["promote", "testklient-TEST"]);
    assert_eq!(currents(&p, &day(101)), ["testklient-TEST.2027-03-01"]);
}

#[test]
fn force_over_a_waiting_key_does_not_shorten_the_new_keys_wait() {
    let p = Project::new("[defaults]\npromotion = \"after-delay\"");
    p.ok(T0, &["rotate", "testklient-TEST"]);
    p.ok(&day(1), &["rotate", "--force", "testklient-TEST"]);
    // Six days later the first pending key would be one day short of publish_ahead (7d); a
    // forced key supersedes it and waits its own seven days.
    let out = p.ok(&day(6), &["rotate", "--force", "testklient-TEST"]);
    assert!(out.contains("supersedes testklient-TEST.2026-11-22"), "{out}");
    let out = p.ok(&day(8), &["rotate", "testklient-TEST"]);
    assert!(!out.contains("promote"), "promoted before its own publish_ahead: {out}");
    assert_eq!(currents(&p, &day(8)), ["testklient-TEST.2026-11-21"]);
    let out = p.ok(&day(13), &["rotate", "testklient-TEST"]);
    assert!(out.contains("done: promote testklient-TEST.2026-11-27"), "{out}");
}

#[test]
fn at_far_ahead_is_refused_unless_asked_for_and_a_future_key_does_not_stall_rotation() {
    let p = Project::new("[defaults]\npromotion = \"after-delay\"");
    p.ok(T0, &["rotate", "testklient-TEST"]);
    let before = p.snapshot();
    let (code, _, err) = p.run(&day(91), &["rotate", "testklient-TEST", "--at", "9999-12-31T00:00:00Z"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("more than a day ahead of the clock"), "{err}");
    assert_eq!(p.snapshot(), before, "a refused run wrote something");
    // Told explicitly, it dates a pending key in the future...
    let flags = ["rotate", "testklient-TEST", "--at", "9999-12-31T00:00:00Z", "--allow-future"];
    let out = p.ok(&day(91), &flags);
    assert!(out.contains("generate testklient-TEST.9999-12-31 as pending"), "{out}");
    // ...which `status` reports as CRITICAL, not OK...
    let (code, out, _) = p.run(&day(91), &["status", "testklient-TEST"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("testklient-TEST.9999-12-31 was made at 9999-12-31"), "{out}");
    // ...and the next ordinary run supersedes it and rotates as if it had never been made.
    let out = p.ok(&day(92), &["rotate", "testklient-TEST"]);
    assert!(out.contains("done: retire testklient-TEST.9999-12-31"), "{out}");
    assert!(out.contains("done: generate testklient-TEST.2027-02-21 as pending"), "{out}");
    let out = p.ok(&day(100), &["rotate", "testklient-TEST"]);
    assert!(out.contains("done: promote testklient-TEST.2027-02-21"), "{out}");
    // The superseded key is out of use: a warning until its purge, no longer critical.
    let (code, out, _) = p.run(&day(100), &["status", "testklient-TEST"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("WARNING: testklient-TEST: retired key testklient-TEST.9999-12-31"), "{out}");
    p.ok(&day(92 + 30), &["rotate", "testklient-TEST"]);
    let (code, out, _) = p.run(&day(92 + 30), &["status", "testklient-TEST"]);
    assert_eq!(code, 0, "purged after retain_retired: {out}");
}

#[test]
fn a_clock_that_jumped_a_year_ahead_and_back_is_reported_and_recovered() {
    let p = Project::new("[defaults]\npromotion = \"after-delay\"");
    p.ok(T0, &["rotate", "testklient-TEST"]);
    // A host whose clock jumped a year ahead runs once: its own clock, so nothing refuses.
    let out = p.ok(&day(365 + 30), &["rotate", "testklient-TEST"]);
    assert!(out.contains("as pending"), "{out}");
    // The clock is right again: status says what happened, and rotation goes on.
    let (code, out, _) = p.run(&day(30), &["status", "testklient-TEST"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("this host's clock is behind"), "{out}");
    p.ok(&day(31), &["rotate", "testklient-TEST"]);
    let out = p.ok(&day(90), &["rotate", "testklient-TEST"]);
    assert!(out.contains("done: generate testklient-TEST.2027-02-19 as pending"), "{out}");
    p.ok(&day(97), &["rotate", "testklient-TEST"]);
    assert_eq!(currents(&p, &day(97)), ["testklient-TEST.2027-02-19"]);
}

/// A store that leaves one key set out of what it loads, as a buggy adapter might; it passes
/// everything else on.
struct Forgetful {
    inner: Arc<dyn KeyStore>,
    forget: KeySet,
}

#[async_trait]
impl KeyStore for Forgetful {
    fn describe(&self) -> String {
        format!("forgetful {}", self.inner.describe())
    }
    async fn lock(&self, timeout: std::time::Duration) -> Result<StoreLock, StoreError> {
        self.inner.lock(timeout).await
    }
    async fn load(&self, sets: &[KeySet]) -> Result<Loaded, StoreError> {
        let mut loaded = self.inner.load(sets).await?;
        loaded.remove(&self.forget);
        Ok(loaded)
    }
    async fn private_key(&self, kid: &Kid) -> Result<PrivateJwk, StoreError> {
        self.inner.private_key(kid).await
    }
    async fn write_new(&self, record: &KeyRecord, key: &PrivateJwk) -> Result<(), StoreError> {
        self.inner.write_new(record, key).await
    }
    async fn confirm_new(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.inner.confirm_new(record).await
    }
    async fn update(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.inner.update(record).await
    }
    async fn purge(&self, kid: &Kid) -> Result<(), StoreError> {
        self.inner.purge(kid).await
    }
}

#[tokio::test]
async fn the_forgetful_store_passes_every_method_on() {
    let recording = Recording::new();
    let forgetful = Forgetful { inner: recording.clone(), forget: "other-TEST".parse().expect("set") };
    let opened = Opened::keys_only(Arc::new(forgetful));
    call_every_method(&opened, &fixture_key("a-TEST.2026-11-21"), at(T0)).await;
    assert_eq!(recording.calls(), every_method(&opened));
}

#[tokio::test]
async fn a_key_set_missing_from_a_load_is_an_error_never_an_empty_set() {
    let memory = Arc::new(MemoryStore::new());
    let policy = Policy::default();
    let all: Vec<Target> = targets(&["a-TEST", "b-TEST"], &policy);
    let (plain, _) = engine(memory.clone());
    plain.run(&all, at(T0), &Request::default()).await.expect("bootstrap");
    let forgetful = Arc::new(Forgetful { inner: memory.clone(), forget: all[0].key_set.clone() });
    let (engine, _) = engine(forgetful.clone());
    let reports = engine.run(&all, at(T0) + days(1), &Request::default()).await.expect("run");
    let error = reports[0].error.clone().expect("a-TEST fails");
    assert!(matches!(error, jwk_rotator::engine::RunError::Store(StoreError::Failed { .. })), "{error:?}");
    let jwk_rotator::engine::RunError::Store(e) = &error else { unreachable!() };
    assert_eq!(e.place(), &jwk_rotator::store::Place::KeySet(all[0].key_set.clone()));
    let error = error.to_string();
    assert!(error.contains("a-TEST is missing from what the store loaded"), "{error}");
    assert!(reports[1].ok(), "b-TEST goes on: {:?}", reports[1].error);
    let a_keys: Vec<_> =
        memory.records().into_iter().filter(|r| r.kid.key_set() == &all[0].key_set).collect();
    assert_eq!(a_keys.len(), 1, "no second first key: {a_keys:?}");
    let loaded = forgetful.load(&[all[0].key_set.clone()]).await;
    let found = findings::evaluate_all(&all[..1], &loaded, &Default::default(), at(T0));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].kind, found[0].severity), (FindingKind::StoreError, Severity::Unknown));
}

#[test]
fn status_reports_two_current_keys_a_never_published_current_key_and_a_future_key() {
    let set: KeySet = "a-TEST".parse().expect("set");
    let policy = crate::support::policy(Promotion::AfterDelay);
    let now = at(T0);
    let record = |kid: &str, stage: Stage, created: &str| {
        let kid: Kid = kid.parse().expect("kid");
        let public = jwk_rotator::jwk::PublicJwk {
            kid,
            alg: jwk_rotator::policy::Algorithm::RS256,
            n: "n".into(),
            e: "AQAB".into(),
        };
        KeyRecord::new(public, stage, at(created))
    };
    let mut one = record("a-TEST.2026-10-01", Stage::Current, "2026-10-01T06:00:00Z");
    one.published = Some(one.created);
    let two = record("a-TEST.2026-11-01", Stage::Current, "2026-11-01T06:00:00Z");
    let mut future = record("a-TEST.2027-11-01", Stage::Pending, "2027-11-01T06:00:00Z");
    future.published = Some(future.created);
    let found = findings::evaluate(&set, Ok(&[one, two, future]), &policy, now);
    let kinds: Vec<_> = found.iter().map(|f| (f.kind, f.severity)).collect();
    for kind in [FindingKind::SeveralCurrent, FindingKind::CurrentNotPublished, FindingKind::FutureDated] {
        assert!(kinds.contains(&(kind, Severity::Critical)), "{kind:?} missing: {found:?}");
    }
}

mod reported {
    //! `status` reports every state that breaks an invariant, for any records a store may hold.

    use chrono::{DateTime, TimeDelta, Utc};
    use jwk_rotator::findings::{self, FindingKind};
    use jwk_rotator::kid::KeySet;

    use jwk_rotator::record::{KeyRecord, Stage};
    use proptest::prelude::*;

    use crate::support::at;

    const STAGES: [Stage; 4] = [Stage::Pending, Stage::Current, Stage::Previous, Stage::Retired];

    /// (stage, created, published, a later transition) as day offsets from now.
    type Shape = (usize, i64, Option<i64>, Option<i64>);

    fn records(shapes: &[Shape], now: DateTime<Utc>) -> Vec<KeyRecord> {
        let day = |d: i64| now + TimeDelta::days(d) + TimeDelta::hours(3);
        shapes
            .iter()
            .enumerate()
            .map(|(i, (stage, created, published, later))| {
                let created = day(*created);
                let seq = if i == 0 { String::new() } else { format!("-{}", i + 1) };
                let kid = format!("a-TEST.{}{seq}", created.date_naive()).parse().expect("kid");
                let public = jwk_rotator::jwk::PublicJwk {
                    kid,
                    alg: jwk_rotator::policy::Algorithm::RS256,
                    n: "n".into(),
                    e: "AQAB".into(),
                };
                let mut r = KeyRecord::new(public, STAGES[*stage], created);
                r.published = published.map(|d| created + TimeDelta::days(d));
                match r.stage {
                    Stage::Current => r.activated = later.map(day).or(r.activated),
                    Stage::Previous => r.demoted = later.map(day),
                    Stage::Retired => r.retired = later.map(day),
                    Stage::Pending => {}
                }
                r
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn every_broken_invariant_is_a_finding(
            shapes in prop::collection::vec(
                (0usize..4, -400i64..400, prop::option::of(0i64..10), prop::option::of(-400i64..400)),
                0..7,
            ),
            max_published in 2u32..=5,
        ) {
            let now = at("2026-11-21T06:00:00Z");
            let policy = crate::support::with(jwk_rotator::policy::PolicyOverrides {
                max_published: Some(max_published),
                ..Default::default()
            });
            let set: KeySet = "a-TEST".parse().expect("set");
            let recs = records(&shapes, now);
            let found = findings::evaluate(&set, Ok(&recs), &policy, now);
            let has = |kind: FindingKind| found.iter().any(|f| f.kind == kind);
            let skew = now + TimeDelta::days(1);
            let currents: Vec<_> = recs.iter().filter(|r| r.stage == Stage::Current).collect();
            if currents.len() > 1 {
                prop_assert!(has(FindingKind::SeveralCurrent), "{:?}", found);
            }
            if currents.is_empty() && !recs.is_empty() {
                prop_assert!(has(FindingKind::NoCurrentKey), "{:?}", found);
            }
            if currents.iter().any(|r| r.published.is_none()) {
                prop_assert!(has(FindingKind::CurrentNotPublished), "{:?}", found);
            }
            if recs.iter().filter(|r| r.stage != Stage::Retired).count() > max_published as usize {
                prop_assert!(has(FindingKind::TooManyPublished), "{:?}", found);
            }
            let made_later = |r: &&KeyRecord| r.created > skew || r.kid.date() > skew.date_naive();
            if recs.iter().any(|r| made_later(&r)) {
                prop_assert!(has(FindingKind::FutureDated), "{:?}", found);
            }
            let any_later = |r: &KeyRecord| {
                [Some(r.created), r.published, r.activated, r.demoted, r.retired].into_iter().flatten().any(|t| t > skew)
            };
            if recs.iter().any(any_later) {
                prop_assert!(has(FindingKind::FutureDated) || has(FindingKind::ClockBehind), "{:?}", found);
            }
        }
    }
}

mod engine_histories {
    //! The engine over a store, with key sets named twice, random commands and a clock that
    //! jumps by up to a year either way: no key is current in the run that made it (bar a key
    //! set's first), at most one key is current after any run, and a dry run writes nothing.

    use std::sync::Arc;

    use chrono::{DateTime, TimeDelta, Utc};
    use jwk_rotator::moment::Moment;
    use jwk_rotator::planner::{Request, Retire};
    use jwk_rotator::policy::Promotion;
    use jwk_rotator::record::{KeyRecord, Stage};
    use jwk_rotator::store::MemoryStore;
    use proptest::prelude::*;

    use crate::support::{at, engine, targets};

    #[derive(Debug, Clone)]
    enum Command {
        Rotate,
        Force,
        Promote,
        Retire(usize, bool),
        DryRun,
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            5 => Just(Command::Rotate),
            1 => Just(Command::Force),
            2 => Just(Command::Promote),
            1 => (0usize..6, any::<bool>()).prop_map(|(i, f)| Command::Retire(i, f)),
            1 => Just(Command::DryRun),
        ]
    }

    /// When each key was really published (the real clock of the run that published it), kept
    /// by the test apart from what the records say.
    type RealPublished = std::collections::BTreeMap<jwk_rotator::kid::Kid, DateTime<Utc>>;

    /// At most one current key per set; a key is made current only as an empty set's first key,
    /// or after a run that came earlier by the real clock published it, and a scheduled
    /// promotion (`scheduled`) only after `publish_ahead` of real time.
    fn check(
        before: &[KeyRecord],
        after: &[KeyRecord],
        at: Moment,
        scheduled: Option<TimeDelta>,
        real: &mut RealPublished,
    ) -> Result<(), TestCaseError> {
        let now = at.now;
        for set in ["a-TEST", "b-TEST"] {
            let of = |recs: &[KeyRecord]| -> Vec<KeyRecord> {
                recs.iter().filter(|r| r.kid.key_set().to_string() == set).cloned().collect()
            };
            let (was, is) = (of(before), of(after));
            let currents: Vec<&KeyRecord> = is.iter().filter(|r| r.stage == Stage::Current).collect();
            prop_assert!(currents.len() <= 1, "two current keys in {}: {:?}", set, currents);
            for c in currents {
                let old = was.iter().find(|r| r.kid == c.kid);
                match old {
                    None => prop_assert!(was.is_empty(), "{} made and made current at {}", c.kid, now),
                    Some(o) if o.stage != Stage::Current => {
                        prop_assert!(
                            o.published.is_some_and(|t| t < now),
                            "{} promoted at {} though published {:?}",
                            c.kid,
                            now,
                            o.published
                        );
                        let really = real.get(&c.kid).copied();
                        prop_assert!(
                            really.is_some_and(|t| t < at.wall),
                            "{} promoted in the run that really published it",
                            c.kid
                        );
                        if let (Some(ahead), Some(really)) = (scheduled, really) {
                            prop_assert!(
                                at.wall - really >= ahead,
                                "{} promoted {} after it was really published",
                                c.kid,
                                at.wall - really
                            );
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        for r in after.iter().filter(|r| r.published.is_some()) {
            real.entry(r.kid.clone()).or_insert(at.wall);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn no_key_is_current_in_the_run_that_made_it(
            after_delay in any::<bool>(),
            history in prop::collection::vec((-400i64..=400, 0i64..5, command(), 1usize..4), 1..25),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let promotion = if after_delay { Promotion::AfterDelay } else { Promotion::Manual };
            let policy = crate::support::policy(promotion);
            let scheduled = after_delay.then(|| policy.publish_ahead().delta());
            let store = Arc::new(MemoryStore::new());
            let (engine, _) = engine(store.clone());
            let mut wall = at("2026-06-01T06:00:00Z");
            let mut real = RealPublished::new();
            runtime.block_on(async {
                for (jump, behind, command, copies) in history {
                    // Mostly days forward; now and then a jump of up to a year either way (a
                    // host clock, so the real clock jumps too). One run in five is given a time
                    // up to a year behind the real clock (`JWK_ROTATOR_NOW`), for that run only.
                    wall += if jump.abs() > 330 { TimeDelta::days(jump) } else { TimeDelta::hours(jump.rem_euclid(30) * 24 + 1) };
                    let now = if behind == 0 { wall - TimeDelta::days(jump.rem_euclid(365) + 2) } else { wall };
                    let at = Moment::new(now, wall);
                    // Key sets named once or several times over.
                    let mut names = vec!["a-TEST"; copies];
                    names.extend(["b-TEST", "a-TEST"]);
                    let targets = targets(&names, &policy);
                    let before = store.records();
                    let request = match &command {
                        Command::Rotate | Command::DryRun => Request::default(),
                        Command::Force => Request { force: true, ..Request::default() },
                        Command::Promote => Request { promote: true, ..Request::default() },
                        Command::Retire(i, force) => {
                            let Some(kid) = before.get(i % before.len().max(1)).map(|r| r.kid.clone()) else { continue };
                            let set = kid.key_set().to_string();
                            let targets = crate::support::targets(&[set.as_str()], &policy);
                            let retire = Request { retire: Some(Retire { kid, force: *force }), ..Request::default() };
                            let _ = engine.run(&targets, at, &retire).await.expect("run");
                            check(&before, &store.records(), at, None, &mut real)?;
                            continue;
                        }
                    };
                    if let Command::DryRun = command {
                        let _ = engine.plan(&targets, at, &request).await.expect("plan");
                        prop_assert_eq!(store.records(), before, "a dry run wrote");
                        continue;
                    }
                    let reports = engine.run(&targets, at, &request).await.expect("run");
                    prop_assert_eq!(reports.len(), 2, "each key set once: {:?}", reports.iter().map(|r| &r.key_set).collect::<Vec<_>>());
                    let scheduled = scheduled.filter(|_| !request.promote);
                    check(&before, &store.records(), at, scheduled, &mut real)?;
                }
                Ok(())
            })?;
        }
    }
}
