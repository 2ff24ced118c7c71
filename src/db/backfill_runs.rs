//! `pgshift_backfill_runs`: one row per run, its cursor saved with each batch, and the `requested`
//! column through which another session (CLI or TUI) asks the running engine to pause or cancel.
//! The backfill engine reaches it as `backfill::store`; `health` reads the same latest runs.

use std::time::Duration;

use tokio_postgres::Statement;

use super::{Session, rfc3339, schema};
use crate::error::{Error, Result};

pub const TABLE: &str = "pgshift_backfill_runs";

/// A run's state in the table's `state` column (defined with the events that carry it).
pub use crate::event::RunState;

fn parse_state(s: &str) -> Result<RunState> {
    RunState::parse(s)
        .ok_or_else(|| Error::Integrity(format!("{TABLE} holds an unknown state {s:?}")))
}

/// What another session asked the running engine to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    Pause,
    Cancel,
}

impl Request {
    pub fn as_str(self) -> &'static str {
        match self {
            Request::Pause => "pause",
            Request::Cancel => "cancel",
        }
    }

    fn parse(s: Option<String>) -> Option<Request> {
        match s.as_deref() {
            Some("pause") => Some(Request::Pause),
            Some("cancel") => Some(Request::Cancel),
            _ => None,
        }
    }
}

/// One row of the run table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub name: String,
    pub state: RunState,
    pub requested: Option<Request>,
    pub cursor: Option<String>,
    pub rows_done: i64,
    pub rows_estimate: Option<i64>,
    pub batch_size: i32,
    pub batches: i64,
    pub retries: i64,
    pub batch_ms_p50: Option<i32>,
    pub batch_ms_max: Option<i32>,
    /// Time spent running, pauses and stopped periods excluded.
    pub active_ms: i64,
    pub last_error: Option<String>,
    pub operator: String,
    pub pid: Option<i32>,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

const COLUMNS: &str = "id, name, state, requested, cursor, rows_done, rows_estimate, batch_size, batches, \
    retries, batch_ms_p50, batch_ms_max, active_ms, last_error, operator, pid, started_at, updated_at, finished_at";

fn select_latest_all() -> String {
    format!(
        "SELECT DISTINCT ON (name) {COLUMNS} FROM {TABLE} WHERE NOT dry_run ORDER BY name, id DESC"
    )
}

fn select_latest_one() -> String {
    format!(
        "SELECT {COLUMNS} FROM {TABLE} WHERE name = $1 AND NOT dry_run ORDER BY id DESC LIMIT 1"
    )
}

const INSERT_RUN: &str = "INSERT INTO pgshift_backfill_runs (name, state, rows_estimate, batch_size, operator, pid) \
    VALUES ($1, 'running', $2, $3, $4, pg_backend_pid()) RETURNING id";

const RESUME_RUN: &str = "UPDATE pgshift_backfill_runs SET state = 'running', requested = NULL, last_error = NULL, \
    rows_estimate = $2, batch_size = $3, pid = pg_backend_pid(), updated_at = now(), finished_at = NULL WHERE id = $1";

/// Runs inside the batch's transaction: the cursor commits with the batch or not at all. Returns
/// what another session asked for meanwhile.
pub const SAVE_BATCH: &str = "UPDATE pgshift_backfill_runs SET cursor = $2, rows_done = rows_done + $3, \
    batches = batches + 1, retries = retries + $4, batch_size = $5, batch_ms_p50 = $6, \
    batch_ms_max = greatest(coalesce(batch_ms_max, 0), $7), active_ms = active_ms + $8, updated_at = now() \
    WHERE id = $1 RETURNING requested";

const FINISH_RUN: &str = "UPDATE pgshift_backfill_runs SET state = $2, requested = NULL, last_error = $3, retries = retries + $4, \
    pid = NULL, updated_at = now(), finished_at = CASE WHEN $2 IN ('done', 'cancelled') THEN now() END WHERE id = $1";

const REQUEST_RUNNING: &str = "UPDATE pgshift_backfill_runs SET requested = $2, updated_at = now() \
    WHERE id = (SELECT max(id) FROM pgshift_backfill_runs WHERE name = $1 AND NOT dry_run) AND state = 'running' \
    RETURNING id";

/// Only with the backfill's advisory lock held, so no engine is running it.
const CANCEL_STOPPED: &str = "UPDATE pgshift_backfill_runs SET state = 'cancelled', requested = NULL, pid = NULL, \
    updated_at = now(), finished_at = now() \
    WHERE id = (SELECT max(id) FROM pgshift_backfill_runs WHERE name = $1 AND NOT dry_run) \
    AND state IN ('running', 'paused', 'failed') RETURNING id";

fn parse_row(r: &tokio_postgres::Row) -> Result<RunRow> {
    Ok(RunRow {
        id: r.get(0),
        name: r.get(1),
        state: parse_state(r.get(2))?,
        requested: Request::parse(r.get(3)),
        cursor: r.get(4),
        rows_done: r.get(5),
        rows_estimate: r.get(6),
        batch_size: r.get(7),
        batches: r.get(8),
        retries: r.get(9),
        batch_ms_p50: r.get(10),
        batch_ms_max: r.get(11),
        active_ms: r.get(12),
        last_error: r.get(13),
        operator: r.get(14),
        pid: r.get(15),
        started_at: rfc3339(r.get(16)),
        updated_at: rfc3339(r.get(17)),
        finished_at: r.get::<_, Option<time::OffsetDateTime>>(18).map(rfc3339),
    })
}

/// The latest run of every backfill (read-only: nothing when the table does not exist yet).
pub async fn latest_all(s: &Session) -> Result<Vec<RunRow>> {
    if !schema::exists(s, TABLE).await? {
        return Ok(Vec::new());
    }
    let rows = s
        .client
        .query(&select_latest_all(), &[])
        .await
        .map_err(|e| Error::db(format!("reading {TABLE}"), &e))?;
    rows.iter().map(parse_row).collect()
}

pub async fn latest(s: &Session, name: &str) -> Result<Option<RunRow>> {
    if !schema::exists(s, TABLE).await? {
        return Ok(None);
    }
    let rows = s
        .client
        .query(&select_latest_one(), &[&name])
        .await
        .map_err(|e| Error::db(format!("reading {TABLE}"), &e))?;
    rows.first().map(parse_row).transpose()
}

pub async fn insert(s: &Session, name: &str, estimate: i64, batch_size: i64) -> Result<i64> {
    let row = s
        .client
        .query_one(
            INSERT_RUN,
            &[&name, &estimate, &(batch_size as i32), &super::operator()],
        )
        .await
        .map_err(|e| Error::db(format!("recording the backfill run in {TABLE}"), &e))?;
    Ok(row.get(0))
}

pub async fn resume(s: &Session, id: i64, estimate: i64, batch_size: i64) -> Result<()> {
    s.client
        .execute(RESUME_RUN, &[&id, &estimate, &(batch_size as i32)])
        .await
        .map_err(|e| Error::db(format!("marking run #{id} running in {TABLE}"), &e))?;
    Ok(())
}

pub async fn prepare_save(s: &Session) -> Result<Statement> {
    s.client
        .prepare(SAVE_BATCH)
        .await
        .map_err(|e| Error::db("preparing the cursor update", &e))
}

/// The values [`SAVE_BATCH`] writes.
pub struct Saved<'a> {
    pub id: i64,
    pub cursor: &'a str,
    pub rows: i64,
    pub retries: i64,
    pub batch_size: i64,
    pub p50_ms: u64,
    pub max_ms: u64,
    pub active: Duration,
}

/// Save the cursor inside the batch's open transaction; returns what another session requested.
pub async fn save(
    s: &Session,
    stmt: &Statement,
    v: &Saved<'_>,
) -> std::result::Result<Option<Request>, tokio_postgres::Error> {
    let row = s
        .client
        .query_one(
            stmt,
            &[
                &v.id,
                &v.cursor,
                &v.rows,
                &v.retries,
                &(v.batch_size as i32),
                &(v.p50_ms.min(i32::MAX as u64) as i32),
                &(v.max_ms.min(i32::MAX as u64) as i32),
                &(v.active.as_millis() as i64),
            ],
        )
        .await?;
    Ok(Request::parse(row.get(0)))
}

const REQUESTED: &str = "SELECT requested FROM pgshift_backfill_runs WHERE id = $1";

/// What another session asked run `id` to do, read between batches (while the run waits for a
/// lagging replica, nothing is saved, so `save` cannot tell).
pub async fn requested(s: &Session, id: i64) -> Result<Option<Request>> {
    let row = s
        .client
        .query_opt(REQUESTED, &[&id])
        .await
        .map_err(|e| Error::db(format!("reading the requests for run #{id} in {TABLE}"), &e))?;
    Ok(row.and_then(|r| Request::parse(r.get(0))))
}

/// Record how a run ended, with the retries since its last saved batch.
pub async fn finish(
    s: &Session,
    id: i64,
    state: RunState,
    error: Option<&str>,
    retries: i64,
) -> Result<()> {
    s.client
        .execute(FINISH_RUN, &[&id, &state.as_str(), &error, &retries])
        .await
        .map_err(|e| Error::db(format!("recording the end of run #{id} in {TABLE}"), &e))?;
    Ok(())
}

/// Ask the engine running `name` to stop after its current batch. `None`: it is not running.
pub async fn request(s: &Session, name: &str, what: Request) -> Result<Option<i64>> {
    if !schema::exists(s, TABLE).await? {
        return Ok(None);
    }
    let rows = s
        .client
        .query(REQUEST_RUNNING, &[&name, &what.as_str()])
        .await
        .map_err(|e| Error::db(format!("asking backfill {name} to {}", what.as_str()), &e))?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// Cancel a run nobody is running (the caller holds the backfill's lock).
pub async fn cancel_stopped(s: &Session, name: &str) -> Result<Option<i64>> {
    if !schema::exists(s, TABLE).await? {
        return Ok(None);
    }
    let rows = s
        .client
        .query(CANCEL_STOPPED, &[&name])
        .await
        .map_err(|e| Error::db(format!("cancelling backfill {name}"), &e))?;
    Ok(rows.first().map(|r| r.get(0)))
}
