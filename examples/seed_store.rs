//! Benchmark set-up: writes a config with N key sets and fills its file store with fixture keys
//! (no RSA generation), as one run 30 days ago would have. Used by `benches/worker.sh`.
//!
//! Usage: cargo run --release --example seed_store -- DIR N [PORT]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{TimeDelta, Utc};
use jwk_rotator::config::Config;
use jwk_rotator::engine::Engine;
use jwk_rotator::keygen::FixtureGenerator;
use jwk_rotator::planner::Request;
use jwk_rotator::publish::FilePublisher;
use jwk_rotator::store::FileStore;

fn config_text(sets: usize, port: u16) -> String {
    let mut text = format!(
        "[store]\nkind = \"file\"\npath = \"keys\"\n\n[publish]\ndir = \"jwks\"\n\n\
         [schedule]\ncron = \"0 6 1 1 *\"\nrun_at_start = true\n\n\
         [server]\nlisten = \"127.0.0.1:{port}\"\n"
    );
    for i in 0..sets.div_ceil(2) {
        text.push_str(&format!(
            "\n[[client]]\nname = \"bench{i:04}\"\nenvironments = [\"TEST\", \"PROD\"]\n"
        ));
    }
    text
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(n)) = (args.first(), args.get(1)) else {
        bail!("usage: seed_store DIR N [PORT]");
    };
    let dir = PathBuf::from(dir);
    let sets: usize = n.parse().context("N is a number of key sets")?;
    let port: u16 = args.get(2).map_or(Ok(9464), |p| p.parse()).context("PORT")?;
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("jwk-rotator.toml");
    std::fs::write(&path, config_text(sets, port))?;
    let config = Config::load(&path)?;
    let fixtures = FixtureGenerator::from_lines(include_str!("../tests/data/fixture-keys.b64"))?;
    let engine = Engine::new(
        Arc::new(FileStore::new(dir.join("keys"))),
        Arc::new(fixtures),
        Arc::new(FilePublisher::new(dir.join("jwks"))),
    );
    let reports =
        engine.run(&config.targets(), Utc::now() - TimeDelta::days(30), &Request::default()).await?;
    let failed = reports.iter().filter(|r| !r.ok()).count();
    if failed > 0 {
        bail!("{failed} key sets failed to seed");
    }
    println!("{}", path.display());
    Ok(())
}
