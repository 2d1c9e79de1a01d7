//! Digdir faked in process: Maskinporten's token endpoint and the self-service API, and the
//! tests that hold the fake to Digdir's documented behaviour.

pub mod fake;
mod fake_tests;
mod publishing;
mod vault_cert;
pub mod world;
