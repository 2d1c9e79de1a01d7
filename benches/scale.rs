//! Benchmark: Key Vault runs over 100, 1,000 and 10,000 key sets against the in-process fake
//! vault (tests/it/azure/fake) at 25 ms per request, with Key Vault's own budget (4,000
//! requests per 10 s, 429 with `Retry-After` beyond it). Each run is compared with its bound,
//! max(new keys × keygen time / cores, requests / request_budget) + one settle.
//!
//! `cargo bench --bench scale`; prints Markdown tables as it goes. Settings (environment):
//! `SCALE_N=100,1000,10000` the sizes; `SCALE_REAL_KEYS_UP_TO=1000` sizes up to this make real
//! aws-lc-rs keys, larger ones fixture keys (the keygen time is then measured apart and
//! named in the bound); `SCALE_THROTTLED=100,1000` sizes also run with every other request
//! throttled; `SCALE_RACE=1000` the size of the two-runs-at-once check (0: skip).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use jwk_rotator::azure::open_store_with;
use jwk_rotator::config::ClientConfig;
use jwk_rotator::config::azure::AzureConfig;
use jwk_rotator::engine::Engine;
use jwk_rotator::keygen::{AwsLcGenerator, FixtureGenerator, KeyGenerator};
use jwk_rotator::kid::{KeySet, Kid};
use jwk_rotator::planner::Request;
use jwk_rotator::policy::{Algorithm, KeySize, Policy, Target};
use jwk_rotator::publish::FilePublisher;
use jwk_rotator::record::Stage;
use jwk_rotator::store::{KeyStore, Opened};

#[path = "../tests/it/azure/fake/mod.rs"]
#[allow(dead_code, unused_imports)]
mod fake;

use fake::net::{FakeCredential, RewriteTransport};
use fake::{FakeVault, Throttle};

const LATENCY: Duration = Duration::from_millis(25);
/// The default `[store] request_budget`, per second.
const BUDGET_PER_SECOND: f64 = 300.0;
/// The default `[store] settle`.
const SETTLE: Duration = Duration::from_secs(2);

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .collect()
}

fn t0() -> DateTime<Utc> {
    "2026-11-21T12:00:00Z".parse().expect("time")
}

fn clients(n: usize) -> Vec<ClientConfig> {
    (1..=n)
        .map(|i| ClientConfig {
            name: format!("klient{i}").parse().expect("name"),
            environments: vec!["TEST".parse().expect("env")],
            policy: Policy::default(),
            consumer_secret: Some("{client}-{env}-jwk".to_owned()),
            consumer_format: Default::default(),
            restart: Vec::new(),
            maskinporten: Default::default(),
        })
        .collect()
}

fn targets(clients: &[ClientConfig]) -> Vec<Target> {
    clients
        .iter()
        .map(|c| Target {
            key_set: KeySet::new(c.name.clone(), c.environments[0].clone()),
            policy: c.policy.clone(),
        })
        .collect()
}

/// The default `[store]` settings but for the URL; `retry` replaces the `[store.retry]` table.
fn store(vault: &FakeVault, clients: &[ClientConfig], retry: &str) -> Opened {
    let text = format!("vault_url = \"{}\"\ncredential = \"static-token\"\n[retry]\n{retry}\n", vault.url());
    let config: AzureConfig = toml::from_str(&text).expect("config");
    let transport = RewriteTransport::new(vault.addr);
    let store = open_store_with(&config, clients, Arc::new(FakeCredential), Some(transport)).expect("store");
    Opened::with_consumers(Arc::new(store))
}

/// Resets the process's peak resident set size (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak resident set size since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The mean time of one RSA-2048 key made by aws-lc-rs on one core (the mean, not the median:
/// the search for primes makes the times skewed, and a run pays for the sum).
fn keygen_time() -> Duration {
    let kid: Kid = "bench-TEST.2026-11-21".parse().expect("kid");
    let samples = 40;
    let start = Instant::now();
    for _ in 0..samples {
        AwsLcGenerator.generate(kid.clone(), KeySize::Rsa2048, Algorithm::RS256).expect("key");
    }
    start.elapsed() / samples
}

/// The wall time per key of `keys` RSA-2048 keys made on all cores at once, as the engine makes
/// them: what the machine gives right now, other load included.
fn parallel_keygen(keys: usize, cores: usize) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..cores {
            let share = keys / cores + usize::from(t < keys % cores);
            s.spawn(move || {
                let kid: Kid = "bench-TEST.2026-11-21".parse().expect("kid");
                for _ in 0..share {
                    AwsLcGenerator.generate(kid.clone(), KeySize::Rsa2048, Algorithm::RS256).expect("key");
                }
            });
        }
    });
    start.elapsed() / u32::try_from(keys.max(1)).unwrap_or(u32::MAX)
}

struct Phase {
    name: &'static str,
    now: DateTime<Utc>,
    request: Request,
    /// New keys per key set this run makes.
    new_keys: usize,
}

fn phases() -> Vec<Phase> {
    let day = TimeDelta::days;
    let promote = Request { promote: true, ..Request::default() };
    vec![
        Phase { name: "bootstrap", now: t0(), request: Request::default(), new_keys: 1 },
        Phase { name: "rotation", now: t0() + day(91), request: Request::default(), new_keys: 1 },
        Phase { name: "promotion", now: t0() + day(92), request: promote, new_keys: 0 },
        Phase { name: "no-op", now: t0() + day(92), request: Request::default(), new_keys: 0 },
        Phase { name: "retirement", now: t0() + day(107), request: Request::default(), new_keys: 0 },
    ]
}

struct Scenario {
    n: usize,
    real_keys: bool,
    throttled: bool,
    cores: usize,
}

impl Scenario {
    fn generator(&self) -> Arc<dyn KeyGenerator> {
        if self.real_keys {
            Arc::new(AwsLcGenerator)
        } else {
            let text = include_str!("../tests/data/fixture-keys.b64");
            Arc::new(FixtureGenerator::from_lines(text).expect("fixture keys"))
        }
    }

    fn retry(&self) -> &'static str {
        // Every other answer is a 429, half of them without Retry-After: the SDK backs off
        // from initial_delay, doubling up to max_delay; more tries, as 2^-9 of the requests
        // would run out of the default 8 (and 2^-15 of 10,000 requests did run out of 14).
        if self.throttled { "initial_delay = \"100ms\"\nmax_delay = \"2s\"\nmax_retries = 24\n" } else { "" }
    }

    async fn run(&self, rt_dir: &std::path::Path) {
        let vault = FakeVault::start(&format!("scale-{}", self.n)).await;
        vault.set_latency(LATENCY);
        vault.set_budget(4000, Duration::from_secs(10));
        if self.throttled {
            vault.set_throttle(Throttle { every: 2, only: None, retry_after: Some(0) });
        }
        let clients = clients(self.n);
        let all = targets(&clients);
        let keys = if self.real_keys { "aws-lc-rs" } else { "fixture" };
        for phase in phases() {
            // Every run is a new process, as a scheduled job's would be.
            let store = store(&vault, &clients, self.retry());
            let publisher = Arc::new(FilePublisher::new(rt_dir.join(format!("jwks-{}", self.n))));
            let engine = Engine::over(store, self.generator(), publisher);
            // Key generation on all cores just before and after the run: the bound's keygen
            // term uses what the shared machine gave at the time.
            let measure = self.real_keys && phase.new_keys > 0;
            let before = if measure { parallel_keygen(60, self.cores) } else { Duration::ZERO };
            vault.reset_requests();
            let throttled_before = vault.over_budget();
            reset_peak_rss();
            let start = Instant::now();
            let reports = engine.run(&all, phase.now, &phase.request).await.expect("run");
            let wall = start.elapsed();
            let after = if measure { parallel_keygen(60, self.cores) } else { Duration::ZERO };
            let per_key = (before + after) / 2;
            let failed: Vec<String> =
                reports.iter().filter(|r| !r.ok()).map(|r| format!("{}: {:?}", r.key_set, r.error)).collect();
            let rss = peak_rss_mib();
            drop(reports);
            let log = vault.log();
            let requests = log.len();
            let answered_429 = log.iter().filter(|l| l.starts_with("429 ")).count();
            let over_budget = vault.over_budget() - throttled_before;
            // N × keygen time / cores, with the time per key on all cores as measured around
            // the run (an idle machine gives keygen / cores; `keygen` is printed for that).
            let keygen_term = (self.n * phase.new_keys) as f64 * per_key.as_secs_f64();
            let sent = requests - answered_429;
            let bound = keygen_term.max(sent as f64 / BUDGET_PER_SECOND) + SETTLE.as_secs_f64();
            let secs = wall.as_secs_f64();
            let keygen_note = if measure {
                format!(" (keygen {:.1} ms/key on all cores)", per_key.as_secs_f64() * 1000.0)
            } else {
                String::new()
            };
            println!(
                "| {} | {} | {keys} | {}{} | {secs:.1} s | {sent} (+{answered_429} × 429, {over_budget} over the vault's budget) | {rss:.0} MiB | {bound:.1} s{keygen_note} | {:.2} |",
                self.n,
                phase.name,
                if self.throttled { "50 % throttled, " } else { "" },
                if failed.is_empty() { "ok".to_owned() } else { format!("{} FAILED", failed.len()) },
                secs / bound,
            );
            if !failed.is_empty() {
                eprintln!("failed key sets ({}): {:?}", failed.len(), &failed[..failed.len().min(5)]);
            }
            if phase.name == "no-op" {
                let secrets = vault.names().len();
                let target = secrets.div_ceil(25) + self.n / 10;
                println!(
                    "|   | no-op target: ≤ ceil({secrets} / 25) + {} / 10 = {target} requests; sent {sent} | | | | | | |",
                    self.n
                );
            }
        }
        assert_live(&vault, &store(&vault, &clients, "").keys, &all).await;
    }
}

/// One live version per kid (none for a retired key), and each consumer secret's latest
/// version holds the current kid.
async fn assert_live(vault: &FakeVault, store: &Arc<dyn KeyStore>, all: &[Target]) {
    let sets: Vec<KeySet> = all.iter().map(|t| t.key_set.clone()).collect();
    let loaded = store.load(&sets).await.expect("load");
    let mut bad = Vec::new();
    for t in all {
        let recs = loaded[&t.key_set].clone().expect("records");
        let current: Vec<_> = recs.iter().filter(|r| r.stage == Stage::Current).collect();
        let consumer = vault.versions(&format!("{}-jwk", t.key_set));
        let holds = consumer.last().and_then(|v| v.tag("kid")).map(str::to_owned);
        if current.len() != 1 || holds != Some(current[0].kid.to_string()) {
            bad.push(format!("{}: current {:?}, consumer {holds:?}", t.key_set, current.len()));
        }
    }
    for name in vault.names().iter().filter(|n| n.starts_with("jwk-")) {
        let versions = vault.versions(name);
        let live = versions.iter().filter(|v| v.enabled).count();
        // The winner is the oldest version, ties to the smaller id, as the tool decides.
        let winner = versions.iter().min_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let retired = winner.and_then(|v| v.tag("stage")) == Some("retired");
        if live != usize::from(!retired) {
            bad.push(format!("{name}: {live} live versions"));
        }
    }
    println!(
        "\nchecked {} key sets: {}\n",
        all.len(),
        if bad.is_empty() {
            "one live version per kid, every consumer secret holds the current kid".to_owned()
        } else {
            format!("{} PROBLEMS: {:?}", bad.len(), &bad[..bad.len().min(5)])
        }
    );
}

/// Two runs at once over `n` key sets, phase by phase, then one more run each: they converge.
async fn race(n: usize, dir: &std::path::Path) {
    let vault = FakeVault::start("scale-race").await;
    vault.set_latency(LATENCY);
    vault.set_budget(4000, Duration::from_secs(10));
    let clients = clients(n);
    let all = targets(&clients);
    let fixtures = || -> Arc<dyn KeyGenerator> {
        Arc::new(FixtureGenerator::from_lines(include_str!("../tests/data/fixture-keys.b64")).expect("keys"))
    };
    let mut lost = BTreeMap::new();
    for phase in phases().into_iter().filter(|p| p.name != "no-op") {
        let engines: Vec<Engine> = (0..2)
            .map(|i| {
                let publisher = Arc::new(FilePublisher::new(dir.join(format!("race-{i}"))));
                Engine::over(store(&vault, &clients, ""), fixtures(), publisher)
            })
            .collect();
        let start = Instant::now();
        let (a, b) = tokio::join!(
            engines[0].run(&all, phase.now, &phase.request),
            engines[1].run(&all, phase.now, &phase.request)
        );
        let wall = start.elapsed();
        let failed = a.expect("a").iter().chain(&b.expect("b")).filter(|r| !r.ok()).count();
        lost.insert(phase.name, failed);
        for engine in &engines {
            engine.run(&all, phase.now, &Request::default()).await.expect("follow-up run");
        }
        println!(
            "| {n} | {} | two runs at once | {:.1} s | key sets that lost a race or were refused: {failed} |",
            phase.name,
            wall.as_secs_f64()
        );
    }
    assert_live(&vault, &store(&vault, &clients, "").keys, &all).await;
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let keygen = keygen_time();
    println!(
        "cores: {cores}; RSA-2048 keygen (aws-lc-rs, one core, mean of 40): {:.1} ms\n",
        keygen.as_secs_f64() * 1000.0
    );
    println!("| key sets | run | keys | outcome | wall | requests | peak RSS | bound | wall / bound |");
    println!("|---:|---|---|---|---:|---:|---:|---:|---:|");
    let real_up_to = env_list("SCALE_REAL_KEYS_UP_TO", "1000").first().copied().unwrap_or(0);
    for n in env_list("SCALE_N", "100,1000,10000") {
        let s = Scenario { n, real_keys: n <= real_up_to, throttled: false, cores };
        runtime.block_on(s.run(dir.path()));
    }
    for n in env_list("SCALE_THROTTLED", "100,1000") {
        let s = Scenario { n, real_keys: false, throttled: true, cores };
        runtime.block_on(s.run(dir.path()));
    }
    for n in env_list("SCALE_RACE", "1000") {
        runtime.block_on(race(n, dir.path()));
    }
}
