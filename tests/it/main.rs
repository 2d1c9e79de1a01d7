//! The one integration test binary: planner properties, the store suite, the real CLI, and the
//! Azure Key Vault store against an in-process fake vault.

mod azure;
mod cli;
mod cli_errors;
mod cli_outputs;
mod import;
mod lifecycle;
mod planner;
mod rotate_exit;
mod shipped;
mod store_suite;
mod support;
mod worker;
