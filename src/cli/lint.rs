//! The `lint` subcommand and the lint gate of `up`: clap arguments and glue to `ops::lint`.

use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::cli::GlobalArgs;
use crate::config::{Loaded, Resolved};
use crate::error::{ExitCode, Result};
use crate::ops::lint::{self as op, LintReport, Scope};
use crate::output::{self, Format};
use crate::plan::Plan;

use crate::lint::{MigrationLint, Settings, render, rules};

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Migration files to lint (NNNN_name.up.sql) [default: the target's pending migrations; the
    /// whole catalog when no database is configured or it cannot be reached]
    pub files: Vec<PathBuf>,
    /// Lint every migration in the catalog, without connecting to a database
    #[arg(long, conflicts_with = "files")]
    pub all: bool,
    /// List the rules (name, severity, why, safe rewrite) and exit
    #[arg(long)]
    pub rules: bool,
}

/// `pgshift lint`: exit 1 when an error-severity finding is not allowed.
pub async fn lint(g: &GlobalArgs, loaded: &Loaded, a: &LintArgs) -> Result<ExitCode> {
    if a.rules {
        return rule_list(g);
    }
    let settings = Settings::from_config(loaded)?;
    let report = if !a.files.is_empty() {
        op::files(&a.files)?
    } else if a.all {
        op::catalog(
            &offline_catalog(g, loaded)?,
            &settings,
            Scope::Catalog,
            None,
        )
    } else {
        match loaded.resolve(&g.overrides())? {
            Resolved::Nothing => op::catalog(
                &offline_catalog(g, loaded)?,
                &settings,
                Scope::Catalog,
                Some("no database configured: linted the whole catalog".into()),
            ),
            _ => {
                let (target, _sandbox) = crate::cli::resolve_target(g, loaded).await?;
                op::pending(&target, &crate::ops::catalog(&target)?, &settings).await?
            }
        }
    };
    let code = if report.errors > 0 {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    };
    match g.format() {
        Format::Json => output::print_json(&output::json_result("lint", &report, code)),
        Format::Human => human(&report, g.paint()),
    }
    Ok(code)
}

fn human(report: &LintReport, paint: crate::marks::Paint) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Some(note) = &report.note {
        writeln!(out, "note: {note}").ok();
    }
    writeln!(out, "lint: {}", report.basis).ok();
    if let (Some(base), false) = (report.start_after, report.not_linted.is_empty()) {
        writeln!(
            out,
            "lint: {} migration(s) at or below start_after = {base} not linted",
            report.not_linted.len()
        )
        .ok();
    }
    if report.migrations.is_empty() {
        let what = match report.scope {
            Scope::Pending => "no pending migrations",
            Scope::Files | Scope::Catalog => "no migrations",
        };
        writeln!(out, "nothing to lint: {what}").ok();
        return;
    }
    render::findings(&mut out, &report.migrations, true, paint).ok();
    if report.errors > 0 {
        writeln!(
            out,
            "`pgshift up` refuses these errors. Rewrite the migration as the fix says, or accept a finding with `-- pgshift: allow RULE reason` at the top of the file (or `up --allow-lint`, audited)."
        )
        .ok();
    }
}

fn rule_list(g: &GlobalArgs) -> Result<ExitCode> {
    let list: Vec<serde_json::Value> = rules::RULES
        .iter()
        .map(|r| serde_json::json!({"rule": r.name, "severity": r.severity, "why": r.why, "fix": r.fix}))
        .collect();
    match g.format() {
        Format::Json => output::print_json(&output::json_result("lint", &list, ExitCode::Ok)),
        Format::Human => {
            for r in rules::RULES {
                println!(
                    "{} ({})\n  why: {}\n  fix: {}",
                    r.name,
                    r.severity.as_str(),
                    r.why,
                    r.fix
                );
            }
        }
    }
    Ok(ExitCode::Ok)
}

fn offline_catalog(g: &GlobalArgs, loaded: &Loaded) -> Result<Catalog> {
    // The target's migrations dir when one is configured (no connection needed), else ./migrations.
    let dir = match (&g.migrations, loaded.resolve(&g.overrides())) {
        (Some(d), _) => d.clone(),
        (None, Ok(Resolved::Target(t))) => t.migrations.clone(),
        _ => crate::config::default_migrations(),
    };
    Ok(Catalog::load(&dir)?)
}

/// A plan with the lint of its steps, for `plan --json` (the plan's own fields stay on top).
#[derive(serde::Serialize)]
pub struct LintedPlan<'a> {
    #[serde(flatten)]
    pub plan: &'a Plan,
    pub lint: Vec<MigrationLint>,
}
