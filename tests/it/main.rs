//! Integration tests against real PostgreSQL: one binary, one module per feature.

#[path = "../common/mod.rs"]
mod common;

mod migrate;
mod runbook;
mod sandbox;
mod tui;
