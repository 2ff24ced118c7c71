//! pgshift's own tables, created idempotently under the runner lock (concurrent `CREATE TABLE IF
//! NOT EXISTS` can still race on the type catalog). They never appear in the user's catalog.

use std::time::Duration;

use super::Session;
use super::lock::{self, RunnerLock};
use crate::error::{Error, Result};
use crate::event::Reporter;

pub const HISTORY_TABLE: &str = "refinery_schema_history";
/// Every table [`ensure`] creates.
const TABLES: [&str; 4] = [
    HISTORY_TABLE,
    "pgshift_events",
    "pgshift_backfill_runs",
    "pgshift_checklist_runs",
];

/// refinery's own definition (int4 versions), so the refinery CLI reads what we write.
const CREATE_HISTORY: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history(
    version int4 PRIMARY KEY,
    name VARCHAR(255),
    applied_on VARCHAR(255),
    checksum VARCHAR(255))";

const CREATE_EVENTS: &str = "CREATE TABLE IF NOT EXISTS pgshift_events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    operator text NOT NULL,
    db_role text NOT NULL DEFAULT current_user,
    action text NOT NULL,
    from_revision int4,
    to_revision int4,
    outcome text NOT NULL,
    duration_ms int8,
    error text,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb)";

/// One row per backfill run; a resumed run continues its row. `cursor` (the last committed key,
/// exclusive lower bound of the next batch) is written in the same transaction as its batch.
/// `requested` is how another session (CLI or TUI) asks the running engine to `pause` or `cancel`;
/// the engine reads it when it saves each batch. `pid` is the worker's backend pid while running.
const CREATE_BACKFILL_RUNS: &str = "CREATE TABLE IF NOT EXISTS pgshift_backfill_runs (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    state text NOT NULL CHECK (state IN ('running', 'paused', 'done', 'cancelled', 'failed')),
    requested text CHECK (requested IN ('pause', 'cancel')),
    cursor text,
    rows_done int8 NOT NULL DEFAULT 0,
    rows_estimate int8,
    batch_size int4 NOT NULL,
    batches int8 NOT NULL DEFAULT 0,
    retries int8 NOT NULL DEFAULT 0,
    batch_ms_p50 int4,
    batch_ms_max int4,
    active_ms int8 NOT NULL DEFAULT 0,
    dry_run bool NOT NULL DEFAULT false,
    last_error text,
    operator text NOT NULL,
    pid int4,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz);
CREATE INDEX IF NOT EXISTS pgshift_backfill_runs_name_idx ON pgshift_backfill_runs (name, id)";

const CREATE_CHECKLIST_RUNS: &str = "CREATE TABLE IF NOT EXISTS pgshift_checklist_runs (
    id bigserial PRIMARY KEY,
    run_id int8 NOT NULL,
    checklist text NOT NULL,
    item text NOT NULL,
    state text NOT NULL,
    operator text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    evidence text,
    catalog_head int4)";

/// The SQL of each applied migration as it was applied, written in the same statement as its
/// refinery history row (and deleted with it), so drift can show a diff of up and down files and
/// `down` can revert in the order of application. refinery's own table stays as refinery has it.
pub const APPLIED_SQL_TABLE: &str = "pgshift_applied_sql";
const CREATE_APPLIED_SQL: &str = "CREATE TABLE IF NOT EXISTS pgshift_applied_sql (
    version int4 PRIMARY KEY,
    name text NOT NULL,
    up_sql text NOT NULL,
    down_sql text,
    seq bigserial NOT NULL,
    out_of_order bool NOT NULL DEFAULT false,
    applied_at timestamptz NOT NULL DEFAULT now())";

/// Which of pgshift's tables exist; read-only commands must not create them.
pub async fn exists(s: &Session, table: &str) -> Result<bool> {
    let row = s
        .client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(|e| Error::db(format!("checking for table {table}"), &e))?;
    Ok(row.get(0))
}

/// Create pgshift's tables if missing, under the runner lock.
pub async fn ensure(lock: &RunnerLock<'_>) -> Result<()> {
    let s = lock.session();
    for sql in [
        CREATE_HISTORY,
        CREATE_EVENTS,
        CREATE_BACKFILL_RUNS,
        CREATE_CHECKLIST_RUNS,
        CREATE_APPLIED_SQL,
    ] {
        s.client
            .batch_execute(sql)
            .await
            .map_err(|e| Error::db("creating pgshift's tables", &e))?;
    }
    Ok(())
}

/// Make sure pgshift's tables exist, for a session that does not hold the runner lock (a checklist
/// record, an audited cancel, a backfill): when one is missing, take the lock (waiting up to `wait`),
/// create them, and give it back. Never waits for the lock when the tables are there, so it is safe
/// while another session's run holds the lock.
pub async fn ensure_unlocked(s: &Session, wait: Duration, reporter: &Reporter) -> Result<()> {
    let mut all = true;
    for table in TABLES {
        all &= exists(s, table).await?;
    }
    if all {
        return Ok(());
    }
    let lock = lock::acquire_runner(s, wait, reporter).await?;
    let created = ensure(&lock).await;
    lock.release().await?;
    created
}
