//! Core operations: plain async functions shared by the CLI, the TUI and `startup`. They know
//! nothing about terminals; they take a [`Target`], report progress through a [`Reporter`] and
//! return typed results. What may run is decided here too, per caller ([`gate`]).

pub mod accept;
pub mod gate;
pub mod history;
pub mod lint;
pub mod migrate;
pub mod new;
pub mod stamp;
pub mod status;

use crate::catalog::Catalog;
use crate::config::Target;
use crate::error::Result;

/// Load and validate the target's catalog.
pub fn catalog(target: &Target) -> Result<Catalog> {
    Ok(Catalog::load(&target.migrations)?)
}
