//! Migration on application startup, as the runbook's entrypoint did it: print
//! `🔄 Running database migrations...`, then `✅ ... completed successfully`, or
//! `❌ Database migrations failed: <reason>` and `🚨 Application will start but database operations
//! may fail`; record the outcome so `health` reports degraded; let the application start anyway
//! unless strict. Safe with many replicas: the runner lock serializes them and the later ones find
//! nothing to do.
//!
//! `DEV_CREATE_TABLES`: on a non-production target only, when migration fails, create the schema
//! from the catalog directly in one transaction (with history rows), loudly. Refused on production.
//!
//! Library use: [`migrate_on_startup`] with a [`Config`].

use std::path::PathBuf;
use std::time::Instant;

use crate::catalog::{Catalog, Revision};
use crate::config::{ConnInfo, Environment, Guard, Target};
use crate::db::audit::{self, NewEvent, Outcome as AuditOutcome};
use crate::db::{Session, history, lock, schema};
use crate::error::{Error, ExitCode, Result};
use crate::event::{Event, Level, Reporter, Sink};
use crate::ops::gate::{Caller, Checklists, Policy};
use crate::ops::migrate::{self, COMPLETED, DEGRADED, FAILED, RUNNING};
use crate::plan::{Direction, TargetSpec};
use crate::remedy::{self as diagnose, Finding};
use crate::text::first_line;

/// The audit action of a startup run, and of the dev fallback.
pub const ACTION: &str = "startup";
pub const DEV_ACTION: &str = "dev_create_tables";

/// What an embedding application (or `pgshift startup`) asks for.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to migrate; `target.migrations` is the migrations directory and
    /// `target.environment` decides whether `dev_create_tables` may act.
    pub target: Target,
    /// Fail (Err / non-zero exit) instead of starting degraded.
    pub strict: bool,
    /// `DEV_CREATE_TABLES=true`: the non-production fallback.
    pub dev_create_tables: bool,
    /// What the checklist gate reads on a production target (see `ops::gate`).
    pub checklists: Checklists,
    /// SIGTERM/SIGINT/SIGHUP: cancel the running step, roll it back, audit, stop.
    pub interrupt: crate::interrupt::Interrupt,
}

impl Config {
    pub fn new(target: Target) -> Config {
        Config {
            target,
            strict: false,
            dev_create_tables: false,
            // The embedded checklists with default settings (`config/checklists` overrides them).
            checklists: crate::runbook::Runbook::defaults()
                .map_err(|e| e.to_string())
                .into(),
            interrupt: crate::interrupt::Interrupt::none(),
        }
    }

    /// From a database URL and a migrations directory, with default guards.
    pub fn from_url(
        url: &str,
        migrations: impl Into<PathBuf>,
        environment: Environment,
    ) -> Result<Config> {
        let conn = ConnInfo::parse(url)?;
        Ok(Config::new(Target {
            name: "startup".into(),
            conn,
            environment,
            guard: Guard::default(),
            lock_wait: crate::config::DEFAULT_LOCK_WAIT,
            migrations: migrations.into(),
            scratch_url: None,
            require_checklist_hours: None,
            source: "startup config".into(),
            expected_replicas: Vec::new(),
            out_of_order: false,
        }))
    }

    /// `dev_create_tables` from the `DEV_CREATE_TABLES` environment variable (`true`/`1`/`yes`).
    pub fn with_env(mut self) -> Config {
        self.dev_create_tables = dev_create_tables_from_env();
        self
    }
}

pub fn dev_create_tables_from_env() -> bool {
    std::env::var("DEV_CREATE_TABLES")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// How startup went.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// At head (steps 0 when another replica did the work or nothing was pending).
    Migrated {
        from: Revision,
        to: Revision,
        steps: usize,
        duration_ms: u64,
    },
    /// Migration failed; the application starts degraded.
    Degraded {
        error: String,
        kind: &'static str,
        exit_code: ExitCode,
        diagnosis: Option<Finding>,
        /// Why DEV_CREATE_TABLES did not help, when it was asked for.
        dev_create_tables: Option<String>,
    },
    /// Migration failed and DEV_CREATE_TABLES created the schema directly.
    DevTablesCreated {
        error: String,
        created: Vec<Revision>,
        diagnosis: Option<Finding>,
    },
}

impl Outcome {
    pub fn is_degraded(&self) -> bool {
        matches!(self, Outcome::Degraded { .. })
    }

    /// Exit code of `pgshift startup`: 0 unless strict and degraded.
    pub fn exit_code(&self, strict: bool) -> ExitCode {
        match self {
            Outcome::Degraded { exit_code, .. } if strict => *exit_code,
            _ => ExitCode::Ok,
        }
    }
}

/// The library entry point: migrate to head, logging the runbook lines through `tracing`.
/// Returns `Err` only when `strict` and migration failed; otherwise the typed outcome.
pub async fn migrate_on_startup(cfg: &Config) -> Result<Outcome> {
    let outcome = run(cfg, &Reporter::silent()).await;
    match &outcome {
        Outcome::Degraded {
            error, exit_code, ..
        } if cfg.strict => Err(match exit_code {
            ExitCode::Unreachable => Error::Unreachable {
                target: cfg.target.conn.redacted(),
                reason: error.clone(),
            },
            ExitCode::Integrity => Error::Integrity(error.clone()),
            _ => Error::Failed(error.clone()),
        }),
        _ => Ok(outcome),
    }
}

/// Run startup migration, emitting each runbook line exactly once through `reporter`.
pub async fn run(cfg: &Config, reporter: &Reporter) -> Outcome {
    let target = &cfg.target;
    reporter.log(Level::Info, RUNNING);
    let start = Instant::now();
    let inner = runbook_lines_filtered(reporter);
    let (result, audited) = match Catalog::load(&target.migrations) {
        Ok(catalog) => {
            let policy = Policy::new(Caller::Startup, cfg.checklists.clone());
            let mut req = migrate::Request::new(Direction::Up, TargetSpec::Head, policy);
            req.action = ACTION.into();
            req.interrupt = cfg.interrupt.clone();
            migrate::run_audited(target, &catalog, &req, inner.reporter()).await
        }
        Err(e) => (Err(e.into()), migrate::Audited::No),
    };
    inner.finish().await;
    let error = match result {
        Ok(r) => {
            reporter.log(Level::Info, COMPLETED);
            return Outcome::Migrated {
                from: r.from,
                to: r.to,
                steps: r.steps.len(),
                duration_ms: start.elapsed().as_millis() as u64,
            };
        }
        Err(e) => e,
    };
    let text = error.to_string();
    reporter.log(Level::Error, format!("{FAILED}: {}", first_line(&text)));
    for line in text.lines().skip(1) {
        reporter.log(Level::Error, line.trim().to_string());
    }
    if audited == migrate::Audited::No {
        record_failure(target, &error, start).await;
    }
    let diagnosis = diagnose::from_error(&error, target);
    let mut dev_note = None;
    if cfg.dev_create_tables {
        match dev_create_tables(target, reporter).await {
            Ok(created) => {
                return Outcome::DevTablesCreated {
                    error: text,
                    created,
                    diagnosis,
                };
            }
            Err(e) => {
                reporter.log(Level::Error, format!("DEV_CREATE_TABLES: {e}"));
                dev_note = Some(e.to_string());
            }
        }
    }
    reporter.log(Level::Error, DEGRADED);
    Outcome::Degraded {
        error: text,
        kind: error.kind(),
        exit_code: error.exit_code(),
        diagnosis,
        dev_create_tables: dev_note,
    }
}

/// A reporter for `migrate::run` that forwards everything except the runbook lines, which startup
/// prints itself (so each appears exactly once, also when `run` fails before emitting them).
fn runbook_lines_filtered(outer: &Reporter) -> Sink {
    let outer = outer.clone();
    // The outer reporter logs what it is given; startup logs the runbook lines itself.
    Sink::forwarding(move |e: Event| {
        let runbook_line = matches!(&e, Event::Log { message, .. }
            if message == RUNNING || message == COMPLETED || message.starts_with(FAILED));
        if !runbook_line {
            outer.emit(e);
        }
    })
}

/// `migrate::run` audits failures that happen under the lock; failures before it (catalog, lock
/// busy: `Audited::No`) are recorded here, so `health` sees every failed startup. Best effort: an unreachable
/// database cannot be told anything.
async fn record_failure(target: &Target, error: &Error, start: Instant) {
    let Ok(s) = Session::connect(&target.conn, "startup").await else {
        return;
    };
    if schema::ensure_unlocked(&s, std::time::Duration::from_secs(5), &Reporter::silent())
        .await
        .is_err()
    {
        return;
    }
    let mut event = NewEvent::new(ACTION, AuditOutcome::Failed);
    if matches!(
        error,
        Error::Integrity(_) | Error::Catalog(_) | Error::Refused(_) | Error::Usage(_)
    ) {
        event.outcome = AuditOutcome::Refused;
    }
    event.duration = start.elapsed();
    event.error = Some(error.to_string());
    event.detail = serde_json::json!({
        "sqlstate": error.sqlstate(),
        "kind": error.kind(),
        "target": target.name,
        "environment": target.environment.as_str(),
    });
    if let Err(e) = audit::record(&s, &event).await {
        tracing::warn!("could not record the failed startup: {e}");
    }
}

/// Create the schema straight from the catalog: every migration not in history, up SQL and history
/// row, all in one transaction (all or nothing). Refused on production; refused when a migration
/// must run outside a transaction. Audited as `dev_create_tables` whatever the outcome.
pub async fn dev_create_tables(target: &Target, reporter: &Reporter) -> Result<Vec<Revision>> {
    let start = Instant::now();
    let result = create_directly(target, reporter).await;
    record_dev_create_tables(target, &result, start).await;
    result
}

/// The `dev_create_tables` audit row: ok with what was created, refused (production, a
/// no-transaction migration, bad files) or failed with the error. Best effort, on its own
/// connection (the failed transaction's connection may be gone).
async fn record_dev_create_tables(target: &Target, result: &Result<Vec<Revision>>, start: Instant) {
    let Ok(s) = Session::connect(&target.conn, DEV_ACTION).await else {
        return;
    };
    if !schema::exists(&s, "pgshift_events").await.unwrap_or(false) {
        tracing::warn!("DEV_CREATE_TABLES: no pgshift_events table, the outcome is not audited");
        return;
    }
    let outcome = match result {
        Ok(_) => AuditOutcome::Ok,
        Err(Error::Refused(_) | Error::Catalog(_) | Error::Integrity(_)) => AuditOutcome::Refused,
        Err(_) => AuditOutcome::Failed,
    };
    let mut event = NewEvent::new(DEV_ACTION, outcome);
    event.duration = start.elapsed();
    event.detail =
        serde_json::json!({ "target": target.name, "environment": target.environment.as_str() });
    match result {
        Ok(created) => {
            event.to = created.last().copied();
            event.detail["created"] = serde_json::json!(created);
        }
        Err(e) => {
            event.error = Some(e.to_string());
            event.detail["kind"] = serde_json::json!(e.kind());
            event.detail["sqlstate"] = serde_json::json!(e.sqlstate());
        }
    }
    if let Err(e) = audit::record(&s, &event).await {
        tracing::warn!("could not record the DEV_CREATE_TABLES outcome: {e}");
    }
}

async fn create_directly(target: &Target, reporter: &Reporter) -> Result<Vec<Revision>> {
    if target.environment.is_production() {
        return Err(Error::Refused(format!(
            "DEV_CREATE_TABLES=true is refused on production target {}: production schema comes only from migrations. Fix the failure above and retry (POST /admin/migrations/retry or `pgshift up`).",
            target.name
        )));
    }
    let catalog = Catalog::load(&target.migrations)?;
    catalog.refuse_scaffolds()?;
    let mut s = Session::connect(&target.conn, DEV_ACTION).await?;
    // It was called without the runner lock (tables created by a failed run may be missing).
    schema::ensure_unlocked(&s, target.lock_wait, reporter).await?;
    let tx = s
        .client
        .transaction()
        .await
        .map_err(|e| Error::db("starting the DEV_CREATE_TABLES transaction", &e))?;
    // Replicas falling back at once queue here; the later ones then find nothing missing.
    lock::dev_create_tables(&tx).await?;
    let applied = history::applied_versions(&tx).await?;
    // Only what is still missing must fit in one transaction (an applied CONCURRENTLY index is fine).
    if let Some(m) = catalog
        .migrations
        .iter()
        .find(|m| m.no_transaction && !applied.contains(&m.revision))
    {
        return Err(Error::Refused(format!(
            "DEV_CREATE_TABLES cannot create the schema in one transaction: {} is a no-transaction migration",
            m.label()
        )));
    }
    let mut created = Vec::new();
    for m in catalog
        .migrations
        .iter()
        .filter(|m| !applied.contains(&m.revision))
    {
        tx.batch_execute(&m.up).await.map_err(|e| {
            Error::Failed(format!(
                "DEV_CREATE_TABLES: {} failed: {}; the whole transaction was rolled back, nothing was created",
                m.label(),
                crate::error::DbFailure::from_pg(&e, Some(&m.up))
            ))
        })?;
        let (v, name, on, sum) = history::row_values(m.revision, &m.name, m.checksum);
        tx.execute(history::INSERT_APPLIED, &[&v, &name, &on, &sum])
            .await
            .map_err(|e| Error::db(format!("recording {} in history", m.label()), &e))?;
        created.push(m.revision);
    }
    tx.commit()
        .await
        .map_err(|e| Error::db("committing DEV_CREATE_TABLES", &e))?;
    let labels: Vec<String> = created.iter().map(ToString::to_string).collect();
    reporter.log(
        Level::Warn,
        format!(
            "⚠️  DEV_CREATE_TABLES=true: created the schema DIRECTLY from the catalog in one transaction on {} ({}): {}. This is for local development only; the migrations themselves did not run as migrations.",
            target.name,
            target.environment.as_str(),
            if labels.is_empty() { "nothing was missing".into() } else { labels.join(", ") }
        ),
    );
    Ok(created)
}
