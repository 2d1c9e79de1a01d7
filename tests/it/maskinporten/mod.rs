//! Digdir faked in process: Maskinporten's token endpoint and the self-service API, the tests
//! that hold the fake to Digdir's documented behaviour, and jwk-rotator's tests against it.

mod e2e;
pub mod fake;
mod fake_tests;
mod publishing;
pub mod world;
