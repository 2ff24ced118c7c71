//! The automatic checks behind checklist items. Each returns an outcome with evidence; a check
//! never aborts the checklist: what it could not do becomes a failed or unverified outcome.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::ItemState;
use super::definition::{CheckKind, ChecklistConfig};
use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::{Session, audit, checks, history, indexes};
use crate::error::{Error, Result};
use crate::event::Reporter;
use crate::health::{self, BackfillState, HealthStatus};
use crate::plan;
use crate::sql::quote_ident;

/// Longest run of an operator-configured command (backup age, notification).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CheckOutcome {
    /// `Passed`, `Failed` or `Unverified`.
    pub state: ItemState,
    pub evidence: String,
}

impl CheckOutcome {
    pub(super) fn pass(evidence: impl Into<String>) -> Self {
        CheckOutcome {
            state: ItemState::Passed,
            evidence: evidence.into(),
        }
    }
    pub(super) fn fail(evidence: impl Into<String>) -> Self {
        CheckOutcome {
            state: ItemState::Failed,
            evidence: evidence.into(),
        }
    }
    pub(super) fn unverified(evidence: impl Into<String>) -> Self {
        CheckOutcome {
            state: ItemState::Unverified,
            evidence: evidence.into(),
        }
    }
}

/// Everything a check may look at.
pub struct CheckContext<'a> {
    pub target: &'a Target,
    pub config: &'a ChecklistConfig,
    pub checklist: &'a str,
    pub reporter: &'a Reporter,
}

/// Run one check.
pub async fn run(kind: CheckKind, cx: &CheckContext<'_>) -> CheckOutcome {
    let result = match kind {
        CheckKind::BackupAge => backup_age(cx).await,
        CheckKind::MigrationsCommitted => {
            super::git::migrations_committed(&cx.target.migrations).await
        }
        CheckKind::LocalTesting => super::rehearsal::local_testing(cx).await,
        CheckKind::RollbackPlan => rollback_plan(cx.target).await,
        CheckKind::TeamNotification => team_notification(cx).await,
        CheckKind::Health => Ok(health_ok(cx.target).await),
        CheckKind::AtHead => at_head(cx.target).await,
        CheckKind::NoInvalidIndexes => no_invalid_indexes(cx.target).await,
        CheckKind::BackfillsFinished => backfills_finished(cx.target).await,
        CheckKind::DatabaseReachable => Ok(database_reachable(cx.target).await),
        CheckKind::CatalogIntact => catalog_intact(cx.target).await,
        CheckKind::Privileges => privileges(cx.target).await,
        CheckKind::LastFailure => last_failure(cx.target).await,
    };
    result.unwrap_or_else(|e| CheckOutcome::fail(e.to_string()))
}

pub(super) fn catalog(target: &Target) -> Result<Catalog> {
    Ok(Catalog::load(&target.migrations)?)
}

/// Output of a shell command run with a timeout: (success, stdout, stderr).
async fn shell(command: &str, env: &[(&str, String)]) -> Result<(Option<i32>, String, String)> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            Error::Failed(format!(
                "`{command}` did not finish within {}s",
                COMMAND_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| Error::io(format!("running `{command}`"), e))?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

async fn backup_age(cx: &CheckContext<'_>) -> Result<CheckOutcome> {
    let max = cx.config.backup_max_age()?;
    let limit = crate::text::human_duration_s(max.as_secs_f64());
    let s = Session::connect(&cx.target.conn, "checklist").await?;
    if let Some(cmd) = &cx.config.backup_command {
        let (code, out, err) = shell(cmd, &[]).await?;
        if code != Some(0) {
            return Ok(CheckOutcome::fail(format!(
                "backup_command `{cmd}` exited {}: {}",
                code.map_or("by signal".into(), |c| c.to_string()),
                crate::text::one_line(&err, 300)
            )));
        }
        let first = crate::text::first_line(&out).trim().to_string();
        let (at, age) = match checks::age_of(&s, &first).await {
            Ok(r) => r,
            Err(e) => {
                return Ok(CheckOutcome::fail(format!(
                    "backup_command printed {first:?}, which is not a time (RFC 3339 or Unix seconds): {}",
                    crate::error::DbFailure::from_pg(&e, None)
                )));
            }
        };
        let evidence = format!(
            "last backup at {at} ({} ago, limit {limit}) per `{cmd}`",
            crate::text::human_duration_s(age)
        );
        return Ok(if age <= max.as_secs_f64() {
            CheckOutcome::pass(evidence)
        } else {
            CheckOutcome::fail(format!("too old: {evidence}"))
        });
    }
    let checks::Archiver {
        mode,
        last,
        age_s: age,
        failed,
        last_failed,
    } = checks::archiver(&s).await?;
    match (mode.as_str(), last, age) {
        ("off", _, _) | (_, None, _) | (_, _, None) => Ok(CheckOutcome::unverified(format!(
            "no backup_command configured and no WAL archived (archive_mode={mode}): confirm with the backup id (--confirm backup --note ID)"
        ))),
        (_, Some(last), Some(age)) => {
            let evidence = format!(
                "WAL last archived at {last} ({} ago, limit {limit}); {failed} failed archive attempt(s){}",
                crate::text::human_duration_s(age),
                last_failed
                    .map(|t| format!(", last at {t}"))
                    .unwrap_or_default()
            );
            Ok(if age <= max.as_secs_f64() {
                CheckOutcome::pass(evidence)
            } else {
                CheckOutcome::fail(format!("too old: {evidence}"))
            })
        }
    }
}

/// Every pending migration has a down; the evidence is their SQL.
async fn rollback_plan(target: &Target) -> Result<CheckOutcome> {
    let catalog = catalog(target)?;
    let s = Session::connect(&target.conn, "checklist").await?;
    let applied = history::applied(&s).await?;
    let pending = plan::pending(&catalog, &applied);
    if pending.is_empty() {
        // Nothing will be deployed: the plan is rolling back the newest applied migration.
        let current = plan::current(&applied);
        return Ok(match catalog.get(current) {
            None => CheckOutcome::pass("nothing pending and nothing applied: nothing to roll back"),
            Some(m) => match &m.down {
                Some(sql) => CheckOutcome::pass(format!(
                    "nothing pending; rolling back {} would run:\n-- {}\n{}",
                    m.label(),
                    m.down_path
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    sql.trim_end()
                )),
                None => CheckOutcome::fail(format!(
                    "nothing pending, and the newest applied {} has no down migration: it cannot be rolled back",
                    m.label()
                )),
            },
        });
    }
    let missing: Vec<String> = pending
        .iter()
        .filter(|m| m.down.is_none())
        .map(|m| format!("{}.down.sql", m.label()))
        .collect();
    if !missing.is_empty() {
        return Ok(CheckOutcome::fail(format!(
            "no down migration for {}: write it (or accept it is irreversible and skip this item with a reason)",
            missing.join(", ")
        )));
    }
    let sql: Vec<String> = pending
        .iter()
        .rev()
        .map(|m| {
            format!(
                "-- down {}\n{}",
                m.label(),
                m.down.as_deref().unwrap_or("").trim_end()
            )
        })
        .collect();
    Ok(CheckOutcome::pass(format!(
        "{} pending migration(s), each with a down (rollback: pgshift down {}):\n{}",
        pending.len(),
        plan::current(&applied),
        sql.join("\n")
    )))
}

async fn team_notification(cx: &CheckContext<'_>) -> Result<CheckOutcome> {
    let Some(cmd) = &cx.config.notify_command else {
        return Ok(CheckOutcome::unverified(
            "no notify_command configured: confirm with where you announced it (--confirm team-notified --note '#deploys 14:02')",
        ));
    };
    let pending = match catalog(cx.target) {
        Ok(c) => match Session::connect(&cx.target.conn, "checklist").await {
            Ok(s) => history::applied(&s)
                .await
                .map(|a| {
                    plan::pending(&c, &a)
                        .iter()
                        .map(|m| m.label())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
            Err(_) => String::new(),
        },
        Err(_) => String::new(),
    };
    let env = [
        ("PGSHIFT_CHECKLIST", cx.checklist.to_string()),
        ("PGSHIFT_TARGET", cx.target.name.clone()),
        (
            "PGSHIFT_ENVIRONMENT",
            cx.target.environment.as_str().to_string(),
        ),
        ("PGSHIFT_OPERATOR", crate::db::operator()),
        ("PGSHIFT_PENDING", pending),
    ];
    let (code, out, err) = shell(cmd, &env).await?;
    Ok(if code == Some(0) {
        CheckOutcome::pass(format!(
            "notify_command sent: {}",
            crate::text::one_line(if out.is_empty() { "(no output)" } else { &out }, 300)
        ))
    } else {
        CheckOutcome::fail(format!(
            "notify_command `{cmd}` exited {}: {}",
            code.map_or("by signal".into(), |c| c.to_string()),
            crate::text::one_line(&err, 300)
        ))
    })
}

async fn health_ok(target: &Target) -> CheckOutcome {
    let h = health::check(target).await;
    let summary = format!(
        "status {:?}, migrations {:?}, backfills {:?}{}",
        h.status,
        h.migrations.state,
        h.backfills.state,
        h.alerts
            .iter()
            .map(|a| format!("; {:?}: {}", a.severity, a.message))
            .collect::<String>()
    )
    .to_lowercase();
    if h.status == HealthStatus::Ok {
        CheckOutcome::pass(summary)
    } else {
        CheckOutcome::fail(summary)
    }
}

async fn at_head(target: &Target) -> Result<CheckOutcome> {
    let catalog = catalog(target)?;
    let s = Session::connect(&target.conn, "checklist").await?;
    let applied = history::applied(&s).await?;
    let drift = plan::drift(&catalog, &applied);
    let current = plan::current(&applied);
    Ok(if !drift.is_empty() {
        CheckOutcome::fail(format!("drift: {}", crate::text::joined(&drift)))
    } else if current == catalog.head() {
        CheckOutcome::pass(format!("at head {current}"))
    } else {
        let pending = plan::pending(&catalog, &applied);
        CheckOutcome::fail(format!(
            "at {current}, head is {}: {} pending ({})",
            catalog.head(),
            pending.len(),
            pending
                .iter()
                .map(|m| m.label())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

async fn no_invalid_indexes(target: &Target) -> Result<CheckOutcome> {
    let s = Session::connect(&target.conn, "checklist").await?;
    let invalid = indexes::invalid(&s).await?;
    Ok(if invalid.is_empty() {
        CheckOutcome::pass("no INVALID indexes")
    } else {
        CheckOutcome::fail(format!(
            "INVALID indexes (drop with DROP INDEX CONCURRENTLY, or rerun the migration): {}",
            invalid
                .iter()
                .map(|i| format!("{} on {}", i.index, i.table))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

async fn backfills_finished(target: &Target) -> Result<CheckOutcome> {
    let s = Session::connect(&target.conn, "checklist").await?;
    let b = health::backfills(&s).await;
    let list = || {
        b.runs
            .iter()
            .map(|r| {
                format!(
                    "{} {} ({} rows{})",
                    r.name,
                    r.state,
                    r.rows_done,
                    r.last_error
                        .as_deref()
                        .map(|e| format!(", {e}"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    Ok(match b.state {
        BackfillState::None => CheckOutcome::pass("no backfills ran"),
        BackfillState::Finished => CheckOutcome::pass(format!("all finished: {}", list())),
        BackfillState::Running => CheckOutcome::fail(format!("not finished: {}", list())),
        BackfillState::Failed => CheckOutcome::fail(format!("failed: {}", list())),
        BackfillState::Unknown => CheckOutcome::fail(format!(
            "cannot read backfill runs: {}",
            b.error.unwrap_or_default()
        )),
    })
}

async fn database_reachable(target: &Target) -> CheckOutcome {
    let start = Instant::now();
    match Session::connect(&target.conn, "checklist").await {
        Ok(s) => match s.server_info().await {
            Ok(i) => CheckOutcome::pass(format!(
                "{} reachable in {} ms, PostgreSQL {}{}",
                target.conn.redacted(),
                start.elapsed().as_millis(),
                i.version,
                if i.read_only {
                    ", READ ONLY (point the target at the primary)"
                } else {
                    ""
                }
            )),
            Err(e) => CheckOutcome::fail(e.to_string()),
        },
        Err(e) => {
            let mut text = e.to_string();
            if let Some(f) = super::diagnose::from_error(&e, target) {
                text.push_str(&format!("\n{f}"));
            }
            CheckOutcome::fail(text)
        }
    }
}

async fn catalog_intact(target: &Target) -> Result<CheckOutcome> {
    let catalog = match Catalog::load(&target.migrations) {
        Ok(c) => c,
        Err(e) => return Ok(CheckOutcome::fail(e.to_string())),
    };
    let s = Session::connect(&target.conn, "checklist").await?;
    let applied = history::applied(&s).await?;
    let drift = plan::drift(&catalog, &applied);
    Ok(if drift.is_empty() {
        CheckOutcome::pass(format!(
            "{} migration file(s) in {}, every applied revision has its file and checksum",
            catalog.migrations.len(),
            target.migrations.display()
        ))
    } else {
        CheckOutcome::fail(
            drift
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

async fn privileges(target: &Target) -> Result<CheckOutcome> {
    let s = Session::connect(&target.conn, "checklist").await?;
    let checks::Privileges {
        role,
        on_database: db_create,
        on_schema: schema_create,
        schema,
    } = checks::privileges(&s).await?;
    let schema = schema.unwrap_or_else(|| "public".into());
    Ok(if schema_create {
        CheckOutcome::pass(format!(
            "role {role} has CREATE on schema {schema}{}",
            if db_create {
                " and on the database"
            } else {
                ""
            }
        ))
    } else {
        CheckOutcome::fail(format!(
            "role {role} lacks CREATE on schema {schema}: GRANT CREATE ON SCHEMA {} TO {}; (ALTER needs table ownership)",
            quote_ident(&schema),
            quote_ident(&role)
        ))
    })
}

async fn last_failure(target: &Target) -> Result<CheckOutcome> {
    let s = Session::connect(&target.conn, "checklist").await?;
    Ok(match audit::last_migration_run(&s).await? {
        None => CheckOutcome::pass("no migration run recorded"),
        Some(audit::LastRun {
            action,
            outcome,
            error,
            at,
            operator,
            ..
        }) => {
            if outcome == audit::Outcome::Ok {
                CheckOutcome::pass(format!(
                    "last migration run: {action} ok at {at} by {operator}"
                ))
            } else {
                let diag = super::diagnose::from_recorded(None, &error, target)
                    .map(|f| format!("\n{f}"))
                    .unwrap_or_default();
                CheckOutcome::fail(format!(
                    "last migration run: {action} {outcome} at {at} by {operator}: {error}{diag}"
                ))
            }
        }
    })
}
