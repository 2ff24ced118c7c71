//! Recorded checklist runs in `pgshift_checklist_runs`: one row per item outcome (who, when, state,
//! evidence). A run is the rows sharing a `run_id`; an item's state is its newest row in the run.
//! `runbook` records and reads checklist runs through these functions.

use super::{Session, schema};
use crate::catalog::Revision;
use crate::error::{Error, Result};

pub const TABLE: &str = "pgshift_checklist_runs";

/// The `item` of the row `--new` writes to open a run (no checklist item has this id).
pub const RUN_MARKER: &str = "(run started)";

/// Run ids come from the table's own id sequence: unique across concurrent operators without a
/// second sequence to create.
const NEW_RUN_ID: &str = "SELECT nextval(pg_get_serial_sequence('pgshift_checklist_runs', 'id'))";

const LATEST_RUN: &str = "SELECT max(run_id) FROM pgshift_checklist_runs WHERE checklist = $1";

const RUN_ITEMS: &str =
    "SELECT DISTINCT ON (item) item, state, operator, at, evidence, catalog_head
FROM pgshift_checklist_runs WHERE run_id = $1 ORDER BY item, id DESC";

const INSERT_ITEM: &str = "INSERT INTO pgshift_checklist_runs
    (run_id, checklist, item, state, operator, evidence, catalog_head)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING at";

/// Rows of runs of `checklist` whose newest row is younger than `hours`, newest run first.
const RECENT_RUNS: &str =
    "SELECT DISTINCT ON (run_id, item) run_id, item, state, operator, at, evidence, catalog_head
FROM pgshift_checklist_runs
WHERE run_id IN (SELECT run_id FROM pgshift_checklist_runs WHERE checklist = $1
                 GROUP BY run_id HAVING max(at) > now() - make_interval(hours => $2))
ORDER BY run_id DESC, item, id DESC";

/// The recorded state of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Nothing recorded in this run yet.
    Pending,
    /// The automatic check passed.
    Passed,
    /// The automatic check failed.
    Failed,
    /// The check ran but could not decide (e.g. no backup source): the operator must confirm.
    Unverified,
    /// The operator confirmed, with a note.
    Confirmed,
    /// The operator skipped it, with a reason.
    Skipped,
}

/// An item's state as both shells show it: a pending item without an automatic check is
/// `to confirm`, an unverified one `needs confirmation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemShown {
    pub state: ItemState,
    pub automatic: bool,
}

impl crate::marks::Marked for ItemShown {
    fn word(&self) -> &'static str {
        match self.state {
            ItemState::Pending if !self.automatic => "to confirm",
            ItemState::Pending => "pending",
            ItemState::Passed => "passed",
            ItemState::Failed => "FAILED",
            ItemState::Unverified => "needs confirmation",
            ItemState::Confirmed => "confirmed",
            ItemState::Skipped => "skipped",
        }
    }

    fn role(&self) -> crate::marks::Role {
        use crate::marks::Role;
        match self.state {
            ItemState::Passed | ItemState::Confirmed => Role::Ok,
            ItemState::Failed => Role::Error,
            ItemState::Unverified => Role::Warn,
            ItemState::Skipped => Role::Dim,
            ItemState::Pending => Role::Plain,
        }
    }
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Passed => "passed",
            ItemState::Failed => "failed",
            ItemState::Unverified => "unverified",
            ItemState::Confirmed => "confirmed",
            ItemState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> ItemState {
        match s {
            "passed" => ItemState::Passed,
            "failed" => ItemState::Failed,
            "unverified" => ItemState::Unverified,
            "confirmed" => ItemState::Confirmed,
            "skipped" => ItemState::Skipped,
            _ => ItemState::Pending,
        }
    }

    /// Counts towards a passed checklist.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            ItemState::Passed | ItemState::Confirmed | ItemState::Skipped
        )
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemRecord {
    pub item: String,
    pub state: ItemState,
    pub operator: String,
    pub at: String,
    pub evidence: Option<String>,
    /// The catalog head (newest migration file) when this was recorded: what the check covered.
    pub catalog_head: Option<Revision>,
}

fn item_record(r: &tokio_postgres::Row, offset: usize) -> ItemRecord {
    ItemRecord {
        item: r.get(offset),
        state: ItemState::parse(r.get(offset + 1)),
        operator: r.get(offset + 2),
        at: super::rfc3339(r.get(offset + 3)),
        evidence: r.get(offset + 4),
        catalog_head: r
            .get::<_, Option<i32>>(offset + 5)
            .map(|v| Revision(v.max(0) as u32)),
    }
}

pub async fn new_run_id(s: &Session) -> Result<i64> {
    Ok(s.client
        .query_one(NEW_RUN_ID, &[])
        .await
        .map_err(|e| Error::db("starting a checklist run", &e))?
        .get(0))
}

/// The newest run of `checklist` and its items' latest records; `None` when never run (or when
/// pgshift never ran here: read-only callers must not create tables).
pub async fn latest_run(s: &Session, checklist: &str) -> Result<Option<(i64, Vec<ItemRecord>)>> {
    if !schema::exists(s, TABLE).await? {
        return Ok(None);
    }
    let run: Option<i64> = s
        .client
        .query_one(LATEST_RUN, &[&checklist])
        .await
        .map_err(|e| Error::db("reading checklist runs", &e))?
        .get(0);
    let Some(run) = run else { return Ok(None) };
    let rows = s
        .client
        .query(RUN_ITEMS, &[&run])
        .await
        .map_err(|e| Error::db("reading checklist run items", &e))?;
    Ok(Some((
        run,
        rows.iter().map(|r| item_record(r, 0)).collect(),
    )))
}

/// Record one item outcome; returns when (server time).
pub async fn record(
    s: &Session,
    run_id: i64,
    checklist: &str,
    item: &str,
    state: ItemState,
    evidence: &str,
    catalog_head: Option<Revision>,
) -> Result<String> {
    let row = s
        .client
        .query_one(
            INSERT_ITEM,
            &[
                &run_id,
                &checklist,
                &item,
                &state.as_str(),
                &super::operator(),
                &evidence,
                &catalog_head.map(|r| r.0 as i32),
            ],
        )
        .await
        .map_err(|e| Error::db("recording the checklist item", &e))?;
    Ok(super::rfc3339(row.get(0)))
}

/// Runs of `checklist` active within the last `hours`, newest first, each with its items' records.
pub async fn recent_runs(
    s: &Session,
    checklist: &str,
    hours: u32,
) -> Result<Vec<(i64, Vec<ItemRecord>)>> {
    if !schema::exists(s, TABLE).await? {
        return Ok(Vec::new());
    }
    let hours = i32::try_from(hours).unwrap_or(i32::MAX);
    let rows = s
        .client
        .query(RECENT_RUNS, &[&checklist, &hours])
        .await
        .map_err(|e| Error::db("reading recent checklist runs", &e))?;
    let mut runs: Vec<(i64, Vec<ItemRecord>)> = Vec::new();
    for r in &rows {
        let run: i64 = r.get(0);
        let rec = item_record(r, 1);
        match runs.last_mut() {
            Some((id, items)) if *id == run => items.push(rec),
            _ => runs.push((run, vec![rec])),
        }
    }
    Ok(runs)
}
