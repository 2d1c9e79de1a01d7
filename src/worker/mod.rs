//! The long-running `worker`: runs on the schedule, serves `/healthz` and `/metrics`, sends alerts.

pub mod config;
pub mod schedule;
