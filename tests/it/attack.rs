//! Random command histories through the real binary on the file store, as a careless or hostile
//! operator would run them: `rotate`, `rotate --force`, `promote`, `status` and `plan`, a run's
//! time (`JWK_ROTATOR_NOW`) behind the real clock by up to 400 days for one run and right again
//! the next, the same without `--allow-past` (refused, nothing written), and `kill -9` at random
//! points. The real clock (`JWK_ROTATOR_TEST_WALL_CLOCK`) only moves on. After every command:
//! at most one current key per key set, and a key that became current was published by a run
//! that came earlier by the real clock, and, unless `promote` asked for it, `publish_ahead` of
//! real time before (`after-delay`); the `manual` key set is promoted by `promote` only.
//!
//! Seeded: a failure names the seed. `ATTACK_SEED=N` replays one; `ATTACK_SEQUENCES` (default
//! 3) and `ATTACK_STEPS` (default 25) set the size; `--nocapture` prints the counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};

const SETS: [&str; 2] = ["a-TEST", "b-TEST"];
const CONFIG: &str = "[store]\nkind = \"file\"\npath = \"keys\"\n\n[publish]\ndir = \"jwks\"\n\n[[client]]\nname = \"a\"\nenvironments = [\"TEST\"]\npromotion = \"after-delay\"\n\n[[client]]\nname = \"b\"\nenvironments = [\"TEST\"]\n";
const PUBLISH_AHEAD: TimeDelta = TimeDelta::days(7);

#[derive(Debug, Default)]
struct Counts {
    commands: usize,
    behind_allowed: usize,
    behind_refused: usize,
    kills: usize,
    kills_while_running: usize,
    promotions: usize,
    checks: usize,
    steps_with_two_current_after_a_kill: usize,
}

/// Kid → (stage, published) of every key file, read as the store holds it.
fn keys(dir: &Path) -> BTreeMap<String, (String, bool)> {
    let Ok(entries) = std::fs::read_dir(dir.join("keys")) else { return BTreeMap::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let kid = name.strip_suffix(".json")?.to_owned();
            let json: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            let stage = json["stage"].as_str()?.to_owned();
            Some((kid, (stage, json.get("published").is_some())))
        })
        .collect()
}

/// Every file under the store and publish directories, with its content.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in ["keys", "jwks"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for e in entries.flatten().filter(|e| e.file_name() != ".lock") {
            out.insert(
                format!("{sub}/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap_or_default(),
            );
        }
    }
    out
}

fn command(dir: &Path, now: DateTime<Utc>, wall: DateTime<Utc>, args: &[String]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("jwk-rotator"));
    cmd.args(args)
        .env("JWK_ROTATOR_CONFIG", dir.join("jwk-rotator.toml"))
        .env("JWK_ROTATOR_NOW", now.to_rfc3339())
        .env(crate::support::WALL, wall.to_rfc3339())
        .env_remove("JWK_ROTATOR_LOG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("ATTACK_TRACE").is_some() { Stdio::inherit() } else { Stdio::null() });
    cmd
}

/// One step's command line: (arguments, the key sets it writes, the key set `promote` names).
fn pick(rng: &mut StdRng) -> (Vec<String>, Vec<&'static str>, Option<&'static str>) {
    let set = SETS[rng.random_range(0..SETS.len())];
    let args: &[&str] = match rng.random_range(0..20) {
        0..=10 => &["rotate"],
        11..=12 => &["rotate", "--force", set],
        13..=15 => &["promote", set],
        16..=17 => &["status"],
        _ => &["plan"],
    };
    let writes = match args {
        ["rotate"] => SETS.to_vec(),
        ["rotate", "--force", _] | ["promote", _] => vec![set],
        _ => Vec::new(),
    };
    let promote = (args[0] == "promote").then_some(set);
    (args.iter().map(|a| a.to_string()).collect(), writes, promote)
}

/// What a command did, for the checks after it.
struct Step<'a> {
    wall: DateTime<Utc>,
    /// The key set `promote` named.
    promote: Option<&'a str>,
    /// Ran to the end and exited 0: a run killed between a promotion and the demotion, or one
    /// that refused its request (and so wrote nothing), leaves two current keys as it found them.
    completed: bool,
    /// The key sets `rotate` or `promote` worked on: a completed run converges what a killed
    /// one left.
    writes: &'a [&'a str],
}

/// The checks after a command: returns what broke, if anything.
fn check(
    before: &BTreeMap<String, (String, bool)>,
    after: &BTreeMap<String, (String, bool)>,
    step: &Step<'_>,
    really: &BTreeMap<String, DateTime<Utc>>,
    counts: &mut Counts,
) -> Result<(), String> {
    let (wall, promote) = (step.wall, step.promote);
    for set in SETS {
        let prefix = format!("{set}.");
        let current: Vec<&String> = after
            .iter()
            .filter(|(k, (s, _))| k.starts_with(&prefix) && s == "current")
            .map(|(k, _)| k)
            .collect();
        if current.len() > 1 && (!step.completed || !step.writes.contains(&set)) {
            // A run killed between a promotion and the demotion: the next run demotes the
            // older one.
            counts.steps_with_two_current_after_a_kill += 1;
        } else if current.len() > 1 {
            return Err(format!("{set}: two current keys {current:?}"));
        }
        let was_empty = !before.keys().any(|k| k.starts_with(&prefix));
        for kid in current {
            counts.checks += 1;
            let was = before.get(kid).map(|(s, _)| s.as_str());
            if was == Some("current") || (was.is_none() && was_empty) {
                continue;
            }
            counts.promotions += 1;
            let Some(published) = really.get(kid) else {
                return Err(format!("{kid} became current at {wall}, never published before"));
            };
            if *published >= wall {
                return Err(format!("{kid} became current in the run that really published it"));
            }
            let asked = promote == Some(set);
            if set == "b-TEST" && !asked {
                return Err(format!("{kid} of the manual key set became current without promote"));
            }
            if !asked && wall - *published < PUBLISH_AHEAD {
                return Err(format!(
                    "{kid} became current {} after it was really published",
                    wall - *published
                ));
            }
        }
    }
    Ok(())
}

/// Runs `args`, killed after a random delay now and then: whether it ran to the end and
/// exited 0 (not killed while running, not refused or failed).
fn run(
    dir: &Path,
    now: DateTime<Utc>,
    wall: DateTime<Utc>,
    args: &[String],
    rng: &mut StdRng,
    c: &mut Counts,
) -> bool {
    let mut child = command(dir, now, wall, args).spawn().expect("spawn");
    let mut killed = false;
    if rng.random_range(0..8) == 0 {
        std::thread::sleep(Duration::from_millis(rng.random_range(0..15)));
        c.kills += 1;
        killed = child.try_wait().expect("try_wait").is_none();
        c.kills_while_running += usize::from(killed);
        child.kill().expect("kill");
    }
    let status = child.wait().expect("wait");
    !killed && status.success()
}

fn sequence(seed: u64, steps: usize, c: &mut Counts) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let project = tempfile::tempdir().expect("dir");
    let dir = project.path();
    std::fs::write(dir.join("jwk-rotator.toml"), CONFIG).expect("config");
    let mut wall: DateTime<Utc> = "2027-01-04T06:00:00Z".parse().expect("time");
    let mut really: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for step in 0..steps {
        wall += TimeDelta::hours(rng.random_range(1..24 * 12));
        let (mut args, writes, promote) = pick(&mut rng);
        let behind = rng.random_range(0..4) == 0;
        let now = if behind { wall - TimeDelta::days(rng.random_range(2..=400)) } else { wall };
        c.commands += 1;
        let before = keys(dir);
        if behind && !writes.is_empty() && rng.random_bool(0.5) {
            let files_before = files(dir);
            let code = command(dir, now, wall, &args).status().expect("run").code();
            if code != Some(2) || files(dir) != files_before {
                return Err(format!(
                    "step {step}: {args:?} at {now} (real {wall}) was not refused cleanly: {code:?}"
                ));
            }
            c.behind_refused += 1;
            continue;
        }
        if behind && !writes.is_empty() {
            args.push("--allow-past".to_owned());
            c.behind_allowed += 1;
        }
        let completed = run(dir, now, wall, &args, &mut rng, c);
        let after = keys(dir);
        if std::env::var_os("ATTACK_TRACE").is_some() {
            eprintln!("step {step}: {args:?} now {now} wall {wall} completed {completed}: {after:?}");
        }
        let done = Step { wall, promote, completed, writes: &writes };
        check(&before, &after, &done, &really, c).map_err(|e| format!("step {step}, {args:?}: {e}"))?;
        for (kid, (_, published)) in &after {
            if *published {
                really.entry(kid.clone()).or_insert(wall);
            }
        }
    }
    let status = command(dir, wall, wall, &["rotate".to_owned()]).status().expect("run");
    if !status.success() {
        return Err("the last ordinary run failed".to_owned());
    }
    for set in SETS {
        let currents = keys(dir).iter().filter(|(k, (s, _))| k.starts_with(set) && s == "current").count();
        if currents > 1 {
            return Err(format!("{set}: {currents} current keys after the last ordinary run"));
        }
    }
    Ok(())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn random_histories_with_a_clock_behind_and_kills_never_promote_early() {
    let sequences = env_number("ATTACK_SEQUENCES", 3);
    let steps = usize::try_from(env_number("ATTACK_STEPS", 25)).unwrap_or(25);
    let seeds: Vec<u64> = match std::env::var("ATTACK_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..sequences).map(|_| rand::random()).collect(),
    };
    let mut counts = Counts::default();
    for seed in seeds {
        if let Err(e) = sequence(seed, steps, &mut counts) {
            panic!("ATTACK_SEED={seed}: {e}");
        }
    }
    eprintln!("attack: {counts:?}");
}
