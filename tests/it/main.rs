//! The one integration test binary: planner properties, the store suite, the real CLI, snapshots
//! of what a person reads, the Azure Key Vault store against an in-process fake vault, and an
//! in-process fake of Digdir's Maskinporten and self-service API.

mod attack;
mod azure;
mod cli;
mod cli_errors;
mod cli_outputs;
mod clocks;
mod config_errors;
mod events;
mod file_store_safety;
mod import;
mod kill;
mod lifecycle;
mod maskinporten;
mod outlook;
mod page;
mod planner;
mod restart;
mod rotate_exit;
mod shipped;
mod snapshots;
mod store_suite;
mod support;
mod worker;
