//! Shared test helpers: the library's `testing` module (times, fixture keys, engines over any
//! store, shared with the unit tests), policies made the way the config loader makes them, and
//! HTTPS for the in-process fakes ([`tls`]).

pub mod tls;

use jwk_rotator::policy::{Policy, PolicyOverrides, Promotion};
pub use jwk_rotator::testing::{
    FIXTURE_KEYS, at, days, engine, engine_over, fixture_key, fixtures, set, targets,
};

/// The variable that stands in for the host's real clock in test builds of the binary. Runs at
/// a fixed `JWK_ROTATOR_NOW` set it to the same time: a simulated timeline, in which real time
/// passes as the runs' time does.
pub const WALL: &str = "JWK_ROTATOR_TEST_WALL_CLOCK";

pub fn policy(promotion: Promotion) -> Policy {
    with(PolicyOverrides { promotion: Some(promotion), ..PolicyOverrides::default() })
}

/// The policy from these settings, as the config loader makes it (and checks it).
pub fn with(settings: PolicyOverrides) -> Policy {
    Policy::new(&settings).expect("a policy the loader accepts")
}

/// Runs the binary with `--config config`, `args`, the variables `set` and without those in
/// `unset`, on a blocking thread, so that an in-process fake keeps serving meanwhile. A fixed
/// `JWK_ROTATOR_NOW` is the real clock too, unless `set` gives [`WALL`].
pub async fn run_binary(
    config: &std::path::Path,
    args: &[&str],
    set: &[(&str, &str)],
    unset: &[&str],
) -> std::process::Output {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut set: Vec<(String, String)> = set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let now = set.iter().find(|(k, _)| k == "JWK_ROTATOR_NOW").map(|(_, v)| v.clone());
    if let Some(now) = now.filter(|_| !set.iter().any(|(k, _)| k == WALL)) {
        set.push((WALL.to_owned(), now));
    }
    let unset: Vec<String> = unset.iter().map(|k| k.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = assert_cmd::Command::cargo_bin("jwk-rotator").expect("binary");
        command.arg("--config").arg(config).args(args);
        for name in unset {
            command.env_remove(name);
        }
        command.envs(set).output().expect("run")
    })
    .await
    .expect("join")
}
