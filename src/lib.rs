//! jwk-rotator: keeps Maskinporten client keys fresh. It generates RSA JWKs, stores the private
//! keys (Azure Key Vault or a local directory), writes the public key sets Maskinporten must
//! know, promotes a new key only after it was published, and retires keys by their kid's date.

#![warn(unreachable_pub)]

pub mod app;
pub mod azure;
pub mod chain;
pub mod cli;
pub mod config;
pub mod consumer;
pub mod cron;
pub mod de;
mod disk;
pub mod engine;
pub mod events;
pub mod findings;
pub mod import;
pub mod jwk;
pub mod keygen;
pub mod kid;
pub mod lifecycle;
pub mod maskinporten;
pub mod moment;
pub mod outlook;
pub mod planner;
pub mod policy;
pub mod proof;
pub mod publish;
pub mod record;
pub mod redact;
pub mod restart;
mod retry;
pub mod severity;
pub mod status;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
mod tls;
pub mod worker;
