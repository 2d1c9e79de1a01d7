//! The one integration test binary: planner properties, the store suite, the real CLI, snapshots
//! of what a person reads, and the Azure Key Vault store against an in-process fake vault.

mod azure;
mod cli;
mod cli_errors;
mod cli_outputs;
mod file_store_safety;
mod import;
mod kill;
mod lifecycle;
mod planner;
mod rotate_exit;
mod shipped;
mod snapshots;
mod store_suite;
mod support;
mod worker;
