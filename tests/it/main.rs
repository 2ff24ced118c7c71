//! Integration tests against real PostgreSQL: one binary, one module per feature.

#[path = "../common/mod.rs"]
mod common;

mod backfill;
mod bad_input;
mod contract;
mod fleet;
mod integrity;
mod migrate;
mod poolers;
mod replicas;
mod runbook;
mod safety;
mod sandbox;
mod scaffold;
mod secrets;
mod startup_dev;
mod tls;
mod tui;
