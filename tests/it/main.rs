//! Integration tests against real PostgreSQL: one binary, one module per feature.

#[path = "../common/mod.rs"]
mod common;

mod backfill;
mod contract;
mod fleet;
mod migrate;
mod runbook;
mod safety;
mod sandbox;
mod tls;
mod tui;
