//! End to end over simulated time: two years of daily runs with `promotion = "verified"` for
//! three clients, whose applications sign a token grant every hour with the key they read at
//! start and restart within `overlap` of each promotion. No grant may fail, every promotion
//! must follow a successful grant with the key in its own run, and keys that someone else
//! registered on a client survive every upload.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::engine::SetReport;
use jwk_rotator::findings::Severity;
use jwk_rotator::jwk::PrivateJwk;
use jwk_rotator::kid::Kid;
use jwk_rotator::lifecycle;
use jwk_rotator::maskinporten::jwt::{GrantClaims, client_grant};
use jwk_rotator::planner::Action;
use jwk_rotator::policy::Policy;
use jwk_rotator::store::KeyStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fake::GrantRecord;
use super::world::{SCOPE, World, foreign_jwk};
use crate::support::at;

const DAYS: i64 = 730;
const CLIENTS: [&str; 3] = ["a", "b", "c"];
/// Maskinporten's limit, which `max_published` (5) keeps us under with room for `c`'s keys.
const MAX_KEYS: usize = 5;

/// Keys on `c`'s client that someone else registered before the first run, with the fixture
/// key each is. A key still in use is renewed by its owner before it lapses (Digdir mails the
/// owner ahead of a key's expiry), so the owner adds each again with a new `exp` every
/// [`LEGACY_RENEWAL`] days, and both must survive every upload for the whole two years. (A key
/// left to lapse would be dropped from our uploads once expired, as documented.)
const LEGACY: [(usize, &str); 2] = [(0, "legacy-1"), (1, "legacy-2")];
/// How long a legacy key is registered for: within the year Maskinporten allows.
const LEGACY_LIFETIME: TimeDelta = TimeDelta::days(360);
const LEGACY_RENEWAL: i64 = 300;

fn t0() -> DateTime<Utc> {
    at("2026-11-21T06:00:00Z")
}

fn client_id(name: &str) -> String {
    format!("{name}-id")
}

fn key_set(name: &str) -> String {
    format!("{name}-TEST")
}

/// One client's application: it signs with the key it read at start until it restarts.
struct App {
    name: &'static str,
    client_id: String,
    key: PrivateJwk,
    restart_at: Option<DateTime<Utc>>,
}

impl App {
    async fn start(world: &World, name: &'static str, now: DateTime<Utc>) -> App {
        App { name, client_id: client_id(name), key: current_key(world, name, now).await, restart_at: None }
    }

    /// Restarts, reading the current key again, once `restart_at` has come.
    async fn restart_if_due(&mut self, world: &World, now: DateTime<Utc>) -> bool {
        if self.restart_at.is_none_or(|at| at > now) {
            return false;
        }
        self.key = current_key(world, self.name, now).await;
        self.restart_at = None;
        true
    }
}

/// A grant that an application sends at `at`, signed with `key`, the key it holds then.
struct Planned {
    at: DateTime<Utc>,
    app: usize,
    key: PrivateJwk,
}

/// A client grant for `client_id` signed with `key`, made at `at` (its `iat`), with a fresh `jti`.
fn sign(client_id: &str, key: &PrivateJwk, issuer: &str, at: DateTime<Utc>) -> String {
    let claims = GrantClaims { iss: client_id, aud: issuer, scope: SCOPE, now: at };
    client_grant(key, &claims).expect("sign a grant")
}

/// Signs `planned` on every core. The RSA signatures are what this test spends its time on; each
/// is still made for its own hour with a fresh `jti`, exactly as the application would make it
/// then: only the wall-clock moment of signing is earlier than the simulated one.
fn sign_all(apps: &[App], planned: &[Planned], issuer: &str) -> Vec<String> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let sign_part = |part: &[Planned]| -> Vec<String> {
        part.iter().map(|p| sign(&apps[p.app].client_id, &p.key, issuer, p.at)).collect()
    };
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let parts = planned.chunks(planned.len().div_ceil(cores).max(1));
            let threads: Vec<_> = parts.map(|part| scope.spawn(move || sign_part(part))).collect();
            threads.into_iter().flat_map(|t| t.join().expect("a signing thread")).collect()
        })
    })
}

/// The key an application reads at start: the current key in the store.
async fn current_key(world: &World, name: &str, now: DateTime<Utc>) -> PrivateJwk {
    let records = world.records(&key_set(name)).await;
    let current = lifecycle::current(&records, now).expect("a current key");
    world.store.private_key(&current.kid).await.expect("the current key's private key")
}

/// The kids a report's carried-out steps promoted.
fn promoted(report: &SetReport) -> Vec<Kid> {
    let Some(plan) = &report.plan else { return Vec::new() };
    let done = plan.steps.iter().take(report.done);
    done.filter_map(|s| match &s.action {
        Action::Promote { kid } => Some(kid.clone()),
        _ => None,
    })
    .collect()
}

/// What two years came to.
#[derive(Default)]
struct Tally {
    runs: usize,
    grants: usize,
    failures: Vec<String>,
    /// Promotions per client.
    promotions: BTreeMap<&'static str, usize>,
    restarts: usize,
    max_registered: usize,
    /// WARNING or worse at the end of a week.
    warnings: Vec<String>,
    deletes: usize,
}

/// The world, the applications and what they came to.
struct Sim {
    world: World,
    policy: Policy,
    issuer: String,
    apps: Vec<App>,
    rng: StdRng,
    /// Each legacy key's `exp` as its owner last set it.
    legacy_exp: BTreeMap<&'static str, i64>,
    tally: Tally,
}

impl Sim {
    async fn start() -> Sim {
        let clients: Vec<(&str, &str)> = CLIENTS.iter().map(|c| (*c, "verified")).collect();
        let world = World::start(t0(), &clients).await;
        world.fake.set_propagation(TimeDelta::minutes(2));
        let policy = world.target(&key_set("a")).policy;
        let issuer = world.fake.issuer();
        let mut sim = Sim {
            world,
            policy,
            issuer,
            apps: Vec::new(),
            rng: StdRng::seed_from_u64(0x2026_1121),
            legacy_exp: BTreeMap::new(),
            tally: Tally::default(),
        };
        sim.register_legacy(t0());
        sim
    }

    /// `c`'s owner registers (or renews) the legacy keys, each for [`LEGACY_LIFETIME`].
    fn register_legacy(&mut self, now: DateTime<Utc>) {
        let exp = (now + LEGACY_LIFETIME).timestamp();
        for (i, kid) in LEGACY {
            let mut jwk = foreign_jwk(i, kid);
            jwk["exp"] = exp.into();
            self.world.fake.add_key(&client_id("c"), &jwk);
            self.legacy_exp.insert(kid, exp);
        }
    }

    /// One day: the run at 06:00, then a grant from every application each hour until the next
    /// run (the last at the next run's time, just before it).
    async fn day(&mut self, day: i64) {
        let run_at = t0() + TimeDelta::days(day);
        self.run(run_at).await;
        if day == 0 {
            for name in CLIENTS {
                let app = App::start(&self.world, name, run_at).await;
                self.apps.push(app);
            }
        }
        let planned = self.plan_grants(run_at).await;
        let assertions = sign_all(&self.apps, &planned, &self.issuer);
        // The owner renews the legacy keys at noon on every LEGACY_RENEWAL-th day.
        let renew_at = (day > 0 && day % LEGACY_RENEWAL == 0).then(|| run_at + TimeDelta::hours(6));
        for (p, assertion) in planned.iter().zip(&assertions) {
            self.world.set_now(p.at);
            if p.app == 0 && renew_at == Some(p.at) {
                self.register_legacy(p.at);
            }
            self.send(p, assertion);
        }
        if (day + 1) % 7 == 0 {
            self.week_end().await;
        }
    }

    /// The day's grants, each hour's in client order, with the key each application holds
    /// then: one that is due restarts first, and reads the current key.
    async fn plan_grants(&mut self, run_at: DateTime<Utc>) -> Vec<Planned> {
        let mut planned = Vec::with_capacity(24 * self.apps.len());
        for hour in 1..=24 {
            let at = run_at + TimeDelta::hours(hour);
            for (i, app) in self.apps.iter_mut().enumerate() {
                if app.restart_if_due(&self.world, at).await {
                    self.tally.restarts += 1;
                }
                planned.push(Planned { at, app: i, key: app.key.clone() });
            }
        }
        planned
    }

    /// Sends one grant to the token endpoint at the fake's clock.
    fn send(&mut self, p: &Planned, assertion: &str) {
        self.tally.grants += 1;
        if let Err(body) = self.world.fake.grant_in_process(assertion) {
            let reason = self.world.fake.grants().last().map(|g| g.reason().to_owned()).unwrap_or_default();
            let client = &self.apps[p.app].client_id;
            self.tally.failures.push(format!("{} {client} kid {}: {reason} ({body})", p.at, p.key.kid()));
        }
    }

    /// A run with the fake's logs cleared first, so that its grant log is this run's.
    async fn run(&mut self, run_at: DateTime<Utc>) {
        self.world.set_now(run_at);
        self.tally.deletes += self.world.fake.deletes();
        self.world.fake.clear_logs();
        let reports = self.world.run().await;
        let grants = self.world.fake.grants();
        self.tally.runs += 1;
        assert_eq!(reports.len(), CLIENTS.len());
        for (name, report) in CLIENTS.iter().zip(&reports) {
            assert_eq!(report.key_set.to_string(), key_set(name));
            let error = report.error.as_ref().map(ToString::to_string);
            assert!(report.ok(), "run at {run_at}: {}: {error:?}", report.key_set);
            for kid in promoted(report) {
                self.check_promotion(name, report, &kid, &grants, run_at);
                *self.tally.promotions.entry(name).or_default() += 1;
                self.schedule_restart(name, run_at);
            }
        }
        self.check_registered(run_at);
    }

    /// A promotion follows a successful grant with the key in the same run, and comes at
    /// least `publish_ahead` after the key was published.
    fn check_promotion(
        &self,
        name: &str,
        report: &SetReport,
        kid: &Kid,
        grants: &[GrantRecord],
        run_at: DateTime<Utc>,
    ) {
        let (kid_text, client) = (kid.to_string(), client_id(name));
        let proved = grants.iter().any(|g| {
            g.granted()
                && g.kid.as_deref() == Some(kid_text.as_str())
                && g.client_id.as_deref() == Some(client.as_str())
        });
        assert!(proved, "run at {run_at} promoted {kid} without a successful grant with it: {grants:?}");
        let record = report.records.iter().find(|r| r.kid == *kid).expect("the promoted key's record");
        let published = record.published.expect("a promoted key was published");
        let waited = run_at - published;
        assert!(
            waited >= self.policy.publish_ahead().delta(),
            "run at {run_at} promoted {kid} {waited} after it was published at {published}"
        );
    }

    /// The application restarts at a random moment within the overlap, less a day.
    fn schedule_restart(&mut self, name: &str, promoted_at: DateTime<Utc>) {
        let within = (self.policy.overlap().delta() - TimeDelta::days(1)).num_seconds();
        let at = promoted_at + TimeDelta::seconds(self.rng.random_range(0..within));
        let app = self.apps.iter_mut().find(|a| a.name == name).expect("the client's application");
        app.restart_at = Some(at);
    }

    /// At most five keys on every client, and `c`'s legacy keys as their owner last set them.
    fn check_registered(&mut self, run_at: DateTime<Utc>) {
        for name in CLIENTS {
            let kids = self.world.registered(&client_id(name));
            assert!(kids.len() <= MAX_KEYS, "run at {run_at}: {name} has {} keys: {kids:?}", kids.len());
            self.tally.max_registered = self.tally.max_registered.max(kids.len());
        }
        let keys = self.world.fake.registered_keys(&client_id("c"));
        for (kid, exp) in &self.legacy_exp {
            let kept = keys.iter().find(|k| k.kid == *kid);
            assert_eq!(kept.map(|k| k.exp), Some(*exp), "run at {run_at}: {kid} on c-id: {keys:?}");
        }
    }

    async fn week_end(&mut self) {
        let now = self.world.now();
        let findings = self.world.status().await.findings;
        for f in findings.iter().filter(|f| f.severity >= Severity::Warning) {
            self.tally.warnings.push(format!("{now} {} {} {}", f.severity, f.kind.as_str(), f.message));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_years_of_verified_rotation_never_fail_an_hourly_grant_and_keep_the_legacy_keys() {
    let started = Instant::now();
    let mut sim = Sim::start().await;
    for day in 0..DAYS {
        sim.day(day).await;
    }
    let tally = &mut sim.tally;
    tally.deletes += sim.world.fake.deletes();
    println!(
        "e2e: {} runs, {} grants ({} failed), promotions {:?}, {} restarts, at most {} keys registered, {} warnings, {:.1?}",
        tally.runs,
        tally.grants,
        tally.failures.len(),
        tally.promotions,
        tally.restarts,
        tally.max_registered,
        tally.warnings.len(),
        started.elapsed()
    );
    assert!(
        tally.failures.is_empty(),
        "failed token requests, first: {:#?}",
        &tally.failures[..tally.failures.len().min(10)]
    );
    assert!(
        tally.warnings.is_empty(),
        "weekly status, first: {:#?}",
        &tally.warnings[..tally.warnings.len().min(10)]
    );
    assert_eq!(tally.deletes, 0, "a DELETE was sent");
    assert_eq!(tally.grants, CLIENTS.len() * 24 * DAYS as usize);
    for name in CLIENTS {
        let promotions = tally.promotions.get(name).copied().unwrap_or_default();
        assert!(promotions >= 7, "{name}: {promotions} promotions in two years: {:?}", tally.promotions);
    }
    // One restart per promotion; the last promotion's may still lie ahead.
    let waiting = sim.apps.iter().filter(|a| a.restart_at.is_some()).count();
    assert_eq!(tally.restarts + waiting, tally.promotions.values().sum::<usize>());
}
