//! Integration tests against real PostgreSQL: one binary, one module per feature.

#[path = "../common/mod.rs"]
mod common;

mod backfill;
mod bad_input;
mod connections;
mod contract;
mod drift;
mod fleet;
mod integrity;
mod layout;
mod lint;
mod migrate;
mod out_of_order;
mod parity;
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
