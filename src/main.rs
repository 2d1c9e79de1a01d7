//! The `jwk-rotator` binary: parse arguments, set up logging, run, exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use jwk_rotator::cli::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // JWK_ROTATOR_LOG, else RUST_LOG (what most Rust images and charts set), else info.
    let filter = EnvFilter::try_from_env("JWK_ROTATOR_LOG")
        .or_else(|_| EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Text => logs.with_target(false).init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let exit = runtime.block_on(cli::run(cli));
    ExitCode::from(exit.0)
}
