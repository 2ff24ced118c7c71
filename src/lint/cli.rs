//! The `lint` subcommand and the lint gate of `up`: clap arguments and glue to `ops::lint`.

use std::path::PathBuf;

use crate::catalog::Catalog;
use crate::cli::GlobalArgs;
use crate::config::{Loaded, Resolved, Target};
use crate::db::Session;
use crate::error::{Error, ExitCode, Result};
use crate::ops::lint::{self as op, LintReport, Scope};
use crate::output::{self, Format};
use crate::plan::Plan;

use super::{MigrationLint, Settings, Weighed, render, rules};

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

/// The lint of an upgrade plan's steps, weighed by the run without a database (empty for a
/// downgrade: down SQL is not linted).
pub fn of_plan(plan: &Plan, catalog: &Catalog) -> Vec<MigrationLint> {
    if plan.direction != crate::plan::Direction::Up {
        return Vec::new();
    }
    let steps: Vec<&crate::catalog::Migration> = plan
        .steps
        .iter()
        .filter_map(|s| catalog.get(s.revision))
        .collect();
    super::weigh_with(&steps, &Settings::default(), None).migrations
}

/// A plan with the lint of its steps, for `plan --json` (the plan's own fields stay on top).
#[derive(serde::Serialize)]
pub struct LintedPlan<'a> {
    #[serde(flatten)]
    pub plan: &'a Plan,
    pub lint: Vec<MigrationLint>,
}

/// Before `up`: weigh the plan's steps against the target (one query on its own connection), print
/// a short summary (at most ~15 lines; with `--json` every finding as one JSON line on stderr),
/// refuse blocking errors unless `allow_lint`, and return the audit detail (`lint` in the run's
/// JSON detail) recording how lint weighed and what was allowed.
pub async fn gate(
    g: &GlobalArgs,
    target: &Target,
    plan: &Plan,
    catalog: &Catalog,
    settings: &Settings,
    allow_lint: bool,
) -> Result<serde_json::Value> {
    let steps: Vec<&crate::catalog::Migration> = match plan.direction {
        crate::plan::Direction::Up => plan
            .steps
            .iter()
            .filter_map(|s| catalog.get(s.revision))
            .collect(),
        crate::plan::Direction::Down => Vec::new(),
    };
    if steps.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    let session = Session::connect(&target.conn, "lint").await?;
    let w = super::weigh(&session.client, &steps, settings).await?;
    drop(session);
    let c = w.counts();
    if g.json {
        // Progress on stderr is JSON lines with --json; the weighed findings are one of them.
        let line = serde_json::json!({"event": "lint", "lint": &w});
        eprintln!("{line}");
    } else if c.errors + c.warnings > 0 {
        render::short(&mut std::io::stderr().lock(), &w, &all_command(g)).ok();
    }
    if c.errors > 0 && !allow_lint {
        return Err(refusal(&w));
    }
    Ok(audit_detail(&w, allow_lint))
}

/// The command that lists every finding of this target.
fn all_command(g: &GlobalArgs) -> String {
    match &g.target {
        Some(t) => format!("pgshift lint --target {t}"),
        None => "pgshift lint".into(),
    }
}

/// The refusal of a run with blocking findings: one short paragraph (the summary above it says
/// which); the full list is `pgshift lint` and `--json`.
pub fn refusal(w: &Weighed) -> Error {
    let c = w.counts();
    let first: Vec<String> = w
        .blocking()
        .take(3)
        .map(|(rev, f)| format!("{rev} line {}: {}", f.line, f.rule))
        .collect();
    let more = c.errors.saturating_sub(first.len());
    Error::Refused(format!(
        "lint found {} error(s) in the pending migrations ({}{}); nothing was run. Fix the migration as `pgshift lint` says, add `-- pgshift: allow RULE reason`, or pass --allow-lint (recorded in the audit).",
        c.errors,
        first.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// What the audit row keeps: how lint weighed, what was allowed or overridden.
pub fn audit_detail(w: &Weighed, allow_lint: bool) -> serde_json::Value {
    let c = w.counts();
    let noted: Vec<serde_json::Value> = w
        .migrations
        .iter()
        .flat_map(|l| {
            l.findings
                .iter()
                .filter(|f| f.allowed.is_some() || f.blocks())
                .map(move |f| {
                    serde_json::json!({
                        "revision": l.revision, "rule": f.rule, "line": f.line,
                        "severity": f.severity, "allowed": f.allowed, "weighed": f.weighed,
                    })
                })
        })
        .collect();
    serde_json::json!({
        "mode": w.mode,
        "counts": c,
        "not_linted": w.not_linted,
        "errors_overridden": if allow_lint { c.errors } else { 0 },
        "allow_lint_flag": allow_lint,
        "findings": noted,
    })
}
