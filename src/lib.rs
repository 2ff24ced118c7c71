//! pgshift: PostgreSQL schema migrations and data backfills, run safely on production boxes.
//!
//! Layers: `cli` and `tui` on top of core operations (`ops`), which use `plan` (pure), `catalog`
//! (files) and `db` (all SQL). See DESIGN.md.
// As in gitui: no unwrap/expect outside tests; failures are errors with context.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod backfill;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod diagnosis;
pub mod error;
pub mod event;
pub mod health;
pub mod interrupt;
pub mod lint;
pub mod logging;
#[cfg(test)]
mod no_panic_tests;
pub mod ops;
pub mod output;
pub mod plan;
pub mod runbook;
pub mod sandbox;
pub mod secrets;
pub mod serve;
pub mod sessions;
pub mod shell;
pub mod sql;
pub mod startup;
pub mod text;
pub mod tls;
pub mod tui;

pub use error::{Error, ExitCode, Result};
