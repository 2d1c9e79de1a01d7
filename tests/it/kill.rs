//! `kill -9` of the real binary at random points of bootstrap, rotation, promotion, retirement
//! and purge, on the file store and on the fake Key Vault over HTTPS. After each kill the next
//! run converges, nothing is left behind, no key is lost, and both outputs equal what `jwks`
//! prints, and the audit trail verifies.
//!
//! Seeded: a failure names the seed and the delay; `KILL_SEED=N cargo test --test it kill`
//! kills at the same fractions of each phase's timed run (the times themselves vary).
//! `KILL_CYCLES` (default 4) sets the kills per store: five per cycle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;

use crate::azure::{FAKE_TOKEN, FakeVault};

const T0: &str = "2026-11-21T06:00:00Z";
const SETS: [&str; 4] = ["a-TEST", "a-PROD", "b-TEST", "b-PROD"];

/// Each phase's day after T0 (with `after-delay` and the default policy) and the stages every
/// key set has once the run of that day has converged.
const PHASES: [(&str, i64, &[&str]); 5] = [
    ("bootstrap", 0, &["current"]),
    ("rotation", 90, &["current", "pending"]),
    ("promotion", 97, &["current", "previous"]),
    ("retirement", 111, &["current", "retired"]),
    ("purge", 141, &["current"]),
];

fn day(n: i64) -> String {
    let t0 = chrono::DateTime::parse_from_rfc3339(T0).expect("t0");
    (t0 + chrono::TimeDelta::days(n)).to_rfc3339()
}

/// One store with a config in a temp dir: the file store, or a fake vault of its own.
struct Rig {
    dir: tempfile::TempDir,
    vault: Option<FakeVault>,
}

const CLIENTS: &str = "[defaults]\npromotion = \"after-delay\"\n\n[[client]]\nname = \"a\"\nenvironments = [\"TEST\", \"PROD\"]\nconsumer_secret = \"{client}-{env}-jwk\"\n\n[[client]]\nname = \"b\"\nenvironments = [\"TEST\", \"PROD\"]\nconsumer_secret = \"{client}-{env}-jwk\"\n";

/// Every run keeps an audit trail, which must verify after each converged run.
const EVENTS: &str = "[events]\naudit_log = \"audit.jsonl\"\n\n";

impl Rig {
    fn files() -> Rig {
        let dir = tempfile::tempdir().expect("dir");
        let clients = CLIENTS.replace("consumer_secret = \"{client}-{env}-jwk\"\n", "");
        let config = format!(
            "[store]\nkind = \"file\"\npath = \"keys\"\n\n[publish]\ndir = \"jwks\"\n\n{EVENTS}{clients}"
        );
        std::fs::write(dir.path().join("jwk-rotator.toml"), config).expect("config");
        Rig { dir, vault: None }
    }

    fn vault(vault: FakeVault, ca_pem: &str) -> Rig {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("ca.pem"), ca_pem).expect("ca");
        let config = format!(
            "[store]\nkind = \"azure-key-vault\"\nvault_url = \"{}\"\ncredential = \"static-token\"\nsettle = \"30ms\"\nca_cert = \"ca.pem\"\nverify_challenge_resource = false\npurge = true\n\n[store.retry]\ninitial_delay = \"5ms\"\nmax_retries = 2\n\n[publish]\ndir = \"jwks\"\n\n{EVENTS}{CLIENTS}",
            vault.url()
        );
        std::fs::write(dir.path().join("jwk-rotator.toml"), config).expect("config");
        Rig { dir, vault: Some(vault) }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn cmd(&self, now: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("jwk-rotator"));
        cmd.args(args)
            .env("JWK_ROTATOR_CONFIG", self.path("jwk-rotator.toml"))
            .env("JWK_ROTATOR_NOW", now)
            .env(crate::support::WALL, now)
            .env("JWK_ROTATOR_STATIC_TOKEN", FAKE_TOKEN)
            .env_remove("JWK_ROTATOR_LOG")
            .env_remove("RUST_LOG");
        cmd
    }

    fn output(&self, now: &str, args: &[&str]) -> Output {
        self.cmd(now, args).output().expect("run the binary")
    }

    /// `rotate` at `now`, killed with SIGKILL after `delay`: whether it was still running.
    fn killed_run(&self, now: &str, delay: Duration) -> bool {
        let mut child = self
            .cmd(now, &["rotate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the binary");
        std::thread::sleep(delay);
        let running = child.try_wait().expect("try_wait").is_none();
        // `Child::kill` sends SIGKILL on Unix: no handler, no cleanup.
        child.kill().expect("kill");
        child.wait().expect("wait");
        running
    }

    /// Names in a directory that are not `keep`: what a run must never leave.
    fn strays(&self, dir: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path(dir)) else { return Vec::new() };
        let names = entries.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned());
        names.filter(|n| !keep(n)).collect()
    }
}

fn is_key_file(name: &str) -> bool {
    name == ".lock" || name.strip_suffix(".json").is_some_and(|k| k.parse::<jwk_rotator::kid::Kid>().is_ok())
}

fn is_output(name: &str) -> bool {
    SETS.iter().any(|s| name == format!("{s}.jwks.json") || name == format!("{s}.maskinporten.json"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Kid → stage of every key, per key set, from `status --format json`.
type Keys = BTreeMap<String, BTreeMap<String, String>>;

/// What the checks after a converged run found, or what was wrong.
fn converged(
    rig: &Rig,
    now: &str,
    expected: &[&str],
    before: &Keys,
    purge_due: bool,
) -> Result<Keys, String> {
    let out = rig.output(now, &["rotate"]);
    if !out.status.success() {
        return Err(format!("the run after the kill failed: {}", text(&out.stderr)));
    }
    let audit = rig.output(now, &["audit", "--verify"]);
    if !audit.status.success() {
        return Err(format!(
            "the audit trail does not verify after a converged run: {}",
            text(&audit.stderr)
        ));
    }
    let plan = text(&rig.output(now, &["plan"]).stdout);
    let idle = SETS.iter().all(|s| plan.contains(&format!("{s}: nothing to do")));
    if !idle {
        return Err(format!("a run after converging still plans work:\n{plan}"));
    }
    let strays = [rig.strays("keys", is_key_file), rig.strays("jwks", is_output)].concat();
    if !strays.is_empty() {
        return Err(format!("left behind: {strays:?}"));
    }
    for set in SETS {
        for format in ["jwks", "maskinporten"] {
            let printed = rig.output(now, &["jwks", set, "--format", format]);
            let file = std::fs::read(rig.path(&format!("jwks/{set}.{format}.json"))).unwrap_or_default();
            if !printed.status.success() || printed.stdout != file {
                return Err(format!("jwks/{set}.{format}.json differs from `jwks {set} --format {format}`"));
            }
        }
    }
    let keys = keys(rig, now)?;
    check_stages(&keys, expected)?;
    check_nothing_lost(before, &keys, purge_due)?;
    if let Some(vault) = &rig.vault {
        check_vault(vault, &keys)?;
    }
    Ok(keys)
}

fn keys(rig: &Rig, now: &str) -> Result<Keys, String> {
    let out = rig.output(now, &["status", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("status json: {e}"))?;
    if doc["findings"].as_array().is_some_and(|f| !f.is_empty()) {
        return Err(format!("status has findings after converging: {}", doc["findings"]));
    }
    let mut keys = Keys::new();
    for set in doc["key_sets"].as_array().into_iter().flatten() {
        let entry = keys.entry(set["key_set"].as_str().unwrap_or_default().to_owned()).or_default();
        for key in set["keys"].as_array().into_iter().flatten() {
            let field = |k: &str| key[k].as_str().unwrap_or_default().to_owned();
            entry.insert(field("kid"), field("stage"));
        }
    }
    Ok(keys)
}

fn check_stages(keys: &Keys, expected: &[&str]) -> Result<(), String> {
    let mut expected: Vec<&str> = expected.to_vec();
    expected.sort_unstable();
    for set in SETS {
        let mut stages: Vec<&str> = keys.get(set).into_iter().flatten().map(|(_, s)| s.as_str()).collect();
        stages.sort_unstable();
        if stages != expected {
            return Err(format!("{set} has stages {stages:?}, expected {expected:?}: {keys:?}"));
        }
    }
    Ok(())
}

/// Every key seen before is still there, unless it was retired and its purge was due.
fn check_nothing_lost(before: &Keys, after: &Keys, purge_due: bool) -> Result<(), String> {
    for (set, kids) in before {
        for (kid, stage) in kids {
            let purged = purge_due && stage == "retired";
            if !purged && !after.get(set).is_some_and(|k| k.contains_key(kid)) {
                return Err(format!("{kid} ({stage}) was lost: now {after:?}"));
            }
        }
    }
    Ok(())
}

/// The vault holds one secret per key and the consumer secrets, each naming the current key.
fn check_vault(vault: &FakeVault, keys: &Keys) -> Result<(), String> {
    let key_count: usize = keys.values().map(BTreeMap::len).sum();
    let names = vault.names();
    if names.len() != key_count + SETS.len() {
        return Err(format!("vault secrets {names:?} for keys {keys:?}"));
    }
    for set in SETS {
        let current = keys[set].iter().find(|(_, s)| *s == "current").map(|(k, _)| k.as_str());
        let consumer = vault.versions(&format!("{set}-jwk"));
        let read = consumer.last().and_then(|v| v.tag("kid"));
        if read != current {
            return Err(format!("{set}-jwk holds {read:?}, the current key is {current:?}"));
        }
    }
    Ok(())
}

/// What the kills of one store did.
#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    /// Kills that hit a running process (the others came after it had finished).
    landed: usize,
    /// Kills after which a temp file was left (removed by the next run).
    left_temp: usize,
}

/// One lifecycle per cycle; cycle 0 is not killed and times each phase, later cycles kill one
/// run per phase after a random part of that time. Returns the tally.
fn kill_lifecycles(store: &str, mut rig: impl FnMut() -> Rig) -> Tally {
    let seed: u64 =
        std::env::var("KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::rng().random());
    let cycles: usize = std::env::var("KILL_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut typical = [Duration::ZERO; PHASES.len()];
    let mut tally = Tally::default();
    for cycle in 0..=cycles {
        let rig = rig();
        let mut keys = Keys::new();
        for (i, (phase, offset, expected)) in PHASES.iter().enumerate() {
            let now = day(*offset);
            let mut what = format!("{store} cycle {cycle} {phase} at {now}, unkilled");
            if cycle == 0 {
                let start = Instant::now();
                let out = rig.output(&now, &["rotate"]);
                typical[i] = start.elapsed();
                assert!(out.status.success(), "{what}: {}", text(&out.stderr));
            } else {
                // The seed fixes where in the timed run each kill lands; the time is the machine's.
                let delay = typical[i].mul_f64(rng.random_range(0.0..=1.0));
                let landed = rig.killed_run(&now, delay);
                what = format!("{store} cycle {cycle} {phase} at {now}, killed after {delay:?}");
                tally.kills += 1;
                tally.landed += usize::from(landed);
                let temps = rig.strays("keys", is_key_file).len() + rig.strays("jwks", is_output).len();
                tally.left_temp += usize::from(temps > 0);
            }
            keys = converged(&rig, &now, expected, &keys, *phase == "purge")
                .unwrap_or_else(|e| panic!("seed {seed} (rerun with KILL_SEED={seed}): {what}: {e}"));
        }
    }
    eprintln!("{store}: seed {seed}, typical run times {typical:?}, {tally:?}");
    assert!(tally.landed > 0 || cycles == 0, "seed {seed}: no kill hit a running process; {tally:?}");
    tally
}

#[test]
fn kill_9_on_the_file_store_converges_and_leaves_nothing() {
    kill_lifecycles("file store", Rig::files);
}

/// A CA and a `localhost` certificate it signed: (CA PEM, leaf PEM, leaf key PEM).
fn tls() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    let leaf = leaf.signed_by(&leaf_key, &ca).expect("leaf");
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

#[test]
fn kill_9_on_the_key_vault_over_https_converges_and_leaves_nothing() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let (ca, cert, key) = tls();
    let rig = || Rig::vault(runtime.block_on(FakeVault::start_tls(&cert, &key)), &ca);
    kill_lifecycles("key vault", rig);
}
