//! Integration tests against real PostgreSQL: one binary, one module per feature.

#[path = "../common/mod.rs"]
mod common;

mod backfill;
mod contract;
mod drift;
mod migrate;
mod out_of_order;
mod replicas;
mod runbook;
mod safety;
mod sandbox;
mod tls;
mod tui;
