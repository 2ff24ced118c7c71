//! The `lint` subcommand and the lint gate of `up`: clap arguments and glue to `ops::lint`.

use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::cli::GlobalArgs;
use crate::config::{Loaded, Resolved};
use crate::error::{Error, ExitCode, Result};
use crate::ops::lint::{self as op, LintReport, Scope};
use crate::output::{self, Format};
use crate::plan::Plan;

use super::{MigrationLint, render, rules};

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
    let report = if !a.files.is_empty() {
        op::files(&a.files)?
    } else if a.all {
        op::catalog(&offline_catalog(g, loaded)?, Scope::Catalog, None)
    } else {
        match loaded.resolve(&g.overrides())? {
            Resolved::Nothing => op::catalog(
                &offline_catalog(g, loaded)?,
                Scope::Catalog,
                Some("no database configured: linted the whole catalog".into()),
            ),
            _ => {
                let (target, _sandbox) = crate::cli::resolve_target(g, loaded).await?;
                op::pending(&target, &crate::ops::catalog(&target)?).await?
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
        Format::Human => human(&report),
    }
    Ok(code)
}

fn human(report: &LintReport) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Some(note) = &report.note {
        writeln!(out, "note: {note}").ok();
    }
    if report.migrations.is_empty() {
        let what = match report.scope {
            Scope::Pending => "no pending migrations",
            Scope::Files | Scope::Catalog => "no migrations",
        };
        writeln!(out, "nothing to lint: {what}").ok();
        return;
    }
    render::findings(&mut out, &report.migrations, true).ok();
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

/// The lint of an upgrade plan's steps (empty for a downgrade: down SQL is not linted).
pub fn of_plan(plan: &Plan, catalog: &Catalog) -> Vec<MigrationLint> {
    if plan.direction != crate::plan::Direction::Up {
        return Vec::new();
    }
    plan.steps
        .iter()
        .filter_map(|s| catalog.get(s.revision))
        .map(MigrationLint::of)
        .collect()
}

/// A plan with the lint of its steps, for `plan --json` (the plan's own fields stay on top).
#[derive(serde::Serialize)]
pub struct LintedPlan<'a> {
    #[serde(flatten)]
    pub plan: &'a Plan,
    pub lint: Vec<MigrationLint>,
}

/// Before `up`: print the findings, refuse blocking errors unless `allow_lint`, and return the
/// audit detail (`lint` in the run's JSON detail) recording what was allowed and how.
pub fn gate(
    g: &GlobalArgs,
    lints: &[MigrationLint],
    allow_lint: bool,
) -> Result<serde_json::Value> {
    let (errors, allowed, warnings) = render::counts(lints);
    if errors + allowed + warnings > 0 {
        if g.json {
            // Progress on stderr is JSON lines with --json; the findings are one of them.
            let line = serde_json::json!({"event": "lint", "migrations": lints});
            eprintln!("{line}");
        } else {
            render::findings(&mut std::io::stderr().lock(), lints, false).ok();
        }
    }
    decide(lints, allow_lint)
}

/// The lint gate's decision alone, printing nothing (a fleet shows the findings once, in its
/// plan): refuse blocking errors unless `allow_lint`, else the audit detail.
pub fn decide(lints: &[MigrationLint], allow_lint: bool) -> Result<serde_json::Value> {
    let (errors, _, _) = render::counts(lints);
    if errors > 0 && !allow_lint {
        let list: Vec<String> = lints
            .iter()
            .flat_map(|l| {
                l.blocking()
                    .map(move |f| format!("{} line {}: {}", l.revision, f.line, f.rule))
            })
            .collect();
        return Err(Error::Refused(format!(
            "lint found {errors} error(s) in the pending migrations ({}); nothing was run. Run `pgshift lint` for why and the safe rewrite; fix the migration, add `-- pgshift: allow RULE reason`, or pass --allow-lint (recorded in the audit).",
            list.join(", ")
        )));
    }
    let noted: Vec<serde_json::Value> = lints
        .iter()
        .flat_map(|l| {
            l.findings
                .iter()
                .filter(|f| f.allowed.is_some() || f.blocks())
                .map(move |f| {
                    serde_json::json!({
                        "revision": l.revision, "rule": f.rule, "line": f.line,
                        "severity": f.severity, "allowed": f.allowed,
                    })
                })
        })
        .collect();
    Ok(serde_json::json!({
        "errors_overridden": if allow_lint { errors } else { 0 },
        "allow_lint_flag": allow_lint,
        "findings": noted,
    }))
}
