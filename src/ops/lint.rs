//! `lint`: which migrations to lint (files given, the target's pending ones, or the whole catalog
//! offline) and the report. The rules themselves are pure, in `crate::lint`.

use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::{Session, history};
use crate::error::{Error, Result};
use crate::lint::{MigrationLint, render};
use crate::plan;

/// What was linted and why that set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Files named on the command line.
    Files,
    /// The target's pending migrations (what `up` would run).
    Pending,
    /// Every migration in the catalog, without a database.
    Catalog,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LintReport {
    pub scope: Scope,
    /// Why this scope was chosen, when it was a fallback.
    pub note: Option<String>,
    pub migrations: Vec<MigrationLint>,
    pub errors: usize,
    pub allowed: usize,
    pub warnings: usize,
}

impl LintReport {
    pub fn new(scope: Scope, note: Option<String>, migrations: Vec<MigrationLint>) -> Self {
        let (errors, allowed, warnings) = render::counts(&migrations);
        LintReport {
            scope,
            note,
            migrations,
            errors,
            allowed,
            warnings,
        }
    }
}

/// Lint every migration of `catalog`.
pub fn catalog(catalog: &Catalog, scope: Scope, note: Option<String>) -> LintReport {
    LintReport::new(
        scope,
        note,
        catalog.migrations.iter().map(MigrationLint::of).collect(),
    )
}

/// Lint the given files (NNNN_name.up.sql, with or without their .down.sql).
pub fn files(paths: &[PathBuf]) -> Result<LintReport> {
    for p in paths {
        if !p.is_file() {
            return Err(Error::Usage(format!("{} is not a file", p.display())));
        }
    }
    let c = Catalog::from_files(paths)?;
    Ok(catalog(&c, Scope::Files, None))
}

/// The target's pending migrations; when the database cannot be reached, the whole catalog
/// offline (lint is a pre-check and must work in CI without a database), saying so in `note`.
pub async fn pending(target: &Target, cat: &Catalog) -> Result<LintReport> {
    let session = match Session::connect(&target.conn, "lint").await {
        Ok(s) => s,
        Err(e @ Error::Unreachable { .. }) => {
            let note = format!(
                "database unreachable, linted the whole catalog offline: {}",
                crate::text::first_line(&e.to_string())
            );
            return Ok(catalog(cat, Scope::Catalog, Some(note)));
        }
        Err(e) => return Err(e),
    };
    let applied = history::applied(&session).await?;
    Ok(LintReport::new(
        Scope::Pending,
        None,
        pending_of(cat, &applied),
    ))
}

/// Lint of the migrations `up` would run from `applied` (also used by `status` and `plan`).
pub fn pending_of(cat: &Catalog, applied: &[plan::Applied]) -> Vec<MigrationLint> {
    plan::pending(cat, applied)
        .into_iter()
        .map(MigrationLint::of)
        .collect()
}

/// The lint of an upgrade plan's steps (empty for a downgrade: down SQL is not linted). The one
/// way every front end gets the findings of what is about to run (`ops::gate`, `plan`).
pub fn of_plan(plan: &plan::Plan, catalog: &Catalog) -> Vec<MigrationLint> {
    if plan.direction != plan::Direction::Up {
        return Vec::new();
    }
    plan.steps
        .iter()
        .filter_map(|s| catalog.get(s.revision))
        .map(MigrationLint::of)
        .collect()
}
