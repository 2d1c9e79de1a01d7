//! The one integration test binary: planner properties, the store suite, and the real CLI.

mod cli;
mod cli_errors;
mod planner;
mod store_suite;
mod support;
mod worker;
