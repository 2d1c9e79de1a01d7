//! Benchmark: RSA key generation (aws-lc-rs next to `openssl genpkey`) and `rotate` over 200
//! key sets on the file store. Run with `cargo bench --bench rotate`; prints a Markdown table.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwk_rotator::engine::Engine;
use jwk_rotator::keygen::{AwsLcGenerator, KeyGenerator};
use jwk_rotator::kid::Kid;
use jwk_rotator::planner::Request;
use jwk_rotator::policy::Target;
use jwk_rotator::policy::{Algorithm, KeySize, Policy};
use jwk_rotator::publish::FilePublisher;
use jwk_rotator::store::FileStore;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn kid() -> Kid {
    "bench-TEST.2026-11-21".parse().expect("kid")
}

fn keygen(size: KeySize) {
    AwsLcGenerator.generate(kid(), size, Algorithm::RS256).expect("keygen");
}

fn openssl(args: &[&str]) -> Duration {
    time(|| {
        let status = Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success());
    })
}

/// Medians of aws-lc-rs and `openssl genpkey`, sampled in turn so that load hits both alike.
fn keygen_table(samples: usize) {
    let start = median((0..samples).map(|_| openssl(&["version"])).collect());
    println!(
        "| RSA bits | samples | aws-lc-rs median ms | openssl genpkey median ms (minus {:.1} ms process start) | ratio |",
        ms(start)
    );
    println!("|---|---|---|---|---|");
    for (size, n) in
        [(KeySize::Rsa2048, samples), (KeySize::Rsa3072, samples / 2), (KeySize::Rsa4096, samples / 4)]
    {
        let bits = size.bits().to_string();
        let opt = format!("rsa_keygen_bits:{bits}");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..n {
            ours.push(time(|| keygen(size)));
            theirs.push(openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", &opt]).saturating_sub(start));
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!("| {bits} | {n} | {:.1} | {:.1} | {:.2} |", ms(ours), ms(theirs), ms(ours) / ms(theirs));
    }
}

/// 200 keys over all cores, as the engine spreads key sets.
fn parallel_keygen(keys: usize) -> Duration {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    time(|| {
        std::thread::scope(|s| {
            for t in 0..threads {
                let share = keys / threads + usize::from(t < keys % threads);
                s.spawn(move || (0..share).for_each(|_| keygen(KeySize::Rsa2048)));
            }
        });
    })
}

fn rotate_table(sets: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(FileStore::new(dir.path().join("keys")));
    let publisher = Arc::new(FilePublisher::new(dir.path().join("jwks")));
    let engine = Engine::new(store, Arc::new(AwsLcGenerator), publisher);
    let targets: Vec<Target> = (0..sets)
        .map(|i| Target {
            key_set: format!("client{i}-TEST").parse().expect("set"),
            policy: Policy::default(),
        })
        .collect();
    let now = chrono::Utc::now();
    println!("| what | time |\n|---|---|");
    let run = |label: &str| {
        let took = time(|| {
            let reports = runtime.block_on(engine.run(&targets, now, &Request::default())).expect("run");
            assert!(reports.iter().all(|r| r.ok()));
        });
        println!("| rotate, {label}, {sets} key sets, file store | {:.0} ms |", ms(took));
        took
    };
    // Parallel key generation before and after the run, so that a change in load shows.
    let before = parallel_keygen(sets);
    let bootstrap = run("bootstrap");
    let after = parallel_keygen(sets);
    run("no-op");
    let keys = (before + after) / 2;
    println!(
        "| {sets} RSA-2048 keys generated over all cores (before, after) | {:.0} ms, {:.0} ms |",
        ms(before),
        ms(after)
    );
    println!("\nbootstrap / parallel key generation = {:.2} (target <= 1.30)", ms(bootstrap) / ms(keys));
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("cores: {cores}\n");
    keygen_table(40);
    rotate_table(200);
}
