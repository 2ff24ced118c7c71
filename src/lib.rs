//! pgshift: PostgreSQL schema migrations and data backfills, run safely on production boxes.
//!
//! Layers: the shells (`cli`, `tui`, `serve`, `startup`, `sandbox`) on top of core operations
//! (`ops` with its gates, `runbook`, `backfill`, `health`), which use `plan` (pure), `catalog`
//! (files), `lint` (pure) and `db` (all SQL), over leaves (`text`, `marks`, `clock`, `event`, `sessions`, `config`,
//! `error`). No import cycles between them (`tests/it/layout.rs`). See DESIGN.md.
// As in gitui: no unwrap/expect outside tests; failures are errors with context.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backfill;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod diagnosis;
pub mod error;
pub mod event;
pub mod fleet;
pub mod health;
pub mod interrupt;
pub mod lint;
pub mod logging;
pub mod marks;
#[cfg(test)]
mod no_panic_tests;
pub mod ops;
pub mod output;
pub mod plan;
pub mod remedy;
pub mod runbook;
pub mod sandbox;
pub mod secrets;
pub mod serve;
pub mod sessions;
pub mod sql;
pub mod startup;
pub mod text;
pub mod tls;
pub mod tui;

pub use error::{Error, ExitCode, Result};
