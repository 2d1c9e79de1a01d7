//! Digdir faked in process: Maskinporten's token endpoint and the self-service API, the tests
//! that hold the fake to Digdir's documented behaviour, and the tests of our Maskinporten
//! publishing and verification against it (in simulated time, and through the real binary).

mod e2e;
pub mod fake;
mod fake_tests;
mod faults;
mod publishing;
mod vault_cert;
mod verify_cli;
pub mod world;
