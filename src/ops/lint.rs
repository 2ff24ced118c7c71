//! `lint`: which migrations to lint (files given, the target's pending ones, or the whole catalog
//! offline) and the report. The rules themselves are pure, in `crate::lint`.

use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::{Session, history};
use crate::error::{Error, Result};
use crate::lint::weigh::Counts;
use crate::lint::{MigrationLint, Mode, Settings, Weighed};
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
    /// Static (no database: each file as its SQL says) or live (weighed by the run and the
    /// target's tables), and in words.
    pub mode: Mode,
    pub basis: String,
    /// `[lint] start_after` and the migrations it left out.
    pub start_after: Option<crate::catalog::Revision>,
    pub not_linted: Vec<crate::catalog::Revision>,
    pub migrations: Vec<MigrationLint>,
    /// The live figures of the tables the findings name (live mode).
    pub tables: Vec<crate::db::table_stats::TableStats>,
    pub errors: usize,
    pub allowed: usize,
    pub warnings: usize,
    pub infos: usize,
}

const STATIC_BASIS: &str =
    "static: no database read; each migration is linted on its own, as its SQL says";

impl LintReport {
    pub fn new(scope: Scope, note: Option<String>, migrations: Vec<MigrationLint>) -> Self {
        let w = Weighed {
            mode: Mode::Static,
            basis: STATIC_BASIS.into(),
            start_after: None,
            not_linted: Vec::new(),
            migrations,
            tables: Vec::new(),
            stats_ms: None,
        };
        Self::weighed(scope, note, w)
    }

    pub fn weighed(scope: Scope, note: Option<String>, w: Weighed) -> Self {
        let Counts {
            errors,
            allowed,
            warnings,
            infos,
        } = w.counts();
        LintReport {
            scope,
            note,
            mode: w.mode,
            basis: w.basis,
            start_after: w.start_after,
            not_linted: w.not_linted,
            migrations: w.migrations,
            tables: w.tables,
            errors,
            allowed,
            warnings,
            infos,
        }
    }
}

/// Lint every migration of `catalog` statically, but those at or below `[lint] start_after`.
pub fn catalog(
    catalog: &Catalog,
    settings: &Settings,
    scope: Scope,
    note: Option<String>,
) -> LintReport {
    let all: Vec<&crate::catalog::Migration> = catalog.migrations.iter().collect();
    let (lints, not_linted) = crate::lint::weigh::lint_run(&all, settings);
    let mut r = LintReport::new(scope, note, lints);
    r.start_after = settings.start_after;
    r.not_linted = not_linted;
    r
}

/// Lint the given files (NNNN_name.up.sql, with or without their .down.sql).
pub fn files(paths: &[PathBuf]) -> Result<LintReport> {
    for p in paths {
        if !p.is_file() {
            return Err(Error::Usage(format!("{} is not a file", p.display())));
        }
    }
    // Files named on the command line are linted even below `start_after`: they were asked for.
    let c = Catalog::from_files(paths)?;
    Ok(catalog(&c, &Settings::default(), Scope::Files, None))
}

/// The target's pending migrations, weighed by the run and the live tables; when the database
/// cannot be reached, the whole catalog offline and static (lint is a pre-check and must work in
/// CI without a database), saying so in `note`.
pub async fn pending(target: &Target, cat: &Catalog, settings: &Settings) -> Result<LintReport> {
    let session = match Session::connect(&target.conn, "lint").await {
        Ok(s) => s,
        Err(e @ Error::Unreachable { .. }) => {
            let note = format!(
                "database unreachable, linted the whole catalog offline: {}",
                crate::text::first_line(&e.to_string())
            );
            return Ok(catalog(cat, settings, Scope::Catalog, Some(note)));
        }
        Err(e) => return Err(e),
    };
    let applied = history::applied(&session).await?;
    let steps = plan::pending(cat, &applied);
    let w = crate::lint::weigh(&session.client, &steps, settings).await?;
    Ok(LintReport::weighed(Scope::Pending, None, w))
}

/// Lint of the migrations `up` would run from `applied` (also used by `status` and `plan`),
/// weighed by the run without a database: tables created earlier in it are new.
pub fn pending_of(cat: &Catalog, applied: &[plan::Applied]) -> Vec<MigrationLint> {
    crate::lint::weigh_with(&plan::pending(cat, applied), &Settings::default(), None).migrations
}

/// The lint of an upgrade plan's steps, weighed by the run without a database (empty for a
/// downgrade: down SQL is not linted): `plan up`. The gates weigh against the live tables.
pub fn of_plan(plan: &plan::Plan, catalog: &Catalog) -> Vec<MigrationLint> {
    if plan.direction != plan::Direction::Up {
        return Vec::new();
    }
    let steps: Vec<&crate::catalog::Migration> = plan
        .steps
        .iter()
        .filter_map(|s| catalog.get(s.revision))
        .collect();
    crate::lint::weigh_with(&steps, &Settings::default(), None).migrations
}
