//! The audit trail: one `pgshift_events` row per mutating action, also on failure.
//!
//! A migration run writes its row before the first step (`started`), committed steps bring it up
//! to date in their own transaction (at most once a second, see [`Progress`]), and the end of the
//! run writes the outcome. A run whose process died leaves `started`: while no session holds the
//! runner lock with the run's backend pid, readers show it as `interrupted` at the revision history
//! is at (only that run could move it), and the next run records it so.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Session, lock, schema};
use crate::catalog::Revision;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Refused,
    /// The run is under way (or its process died: see [`Outcome::Interrupted`]).
    Started,
    /// The run's process ended without writing an outcome (kill -9, a lost connection, a crash).
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Started => "started",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// As stored. Only pgshift writes the column; anything else reads as a failure.
    pub fn from_db(text: &str) -> Outcome {
        match text {
            "ok" => Outcome::Ok,
            "refused" => Outcome::Refused,
            "started" => Outcome::Started,
            "interrupted" => Outcome::Interrupted,
            _ => Outcome::Failed,
        }
    }
}

impl From<&str> for Outcome {
    fn from(text: &str) -> Self {
        Outcome::from_db(text)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub action: String,
    pub from: Option<Revision>,
    pub to: Option<Revision>,
    pub outcome: Outcome,
    pub duration: Duration,
    pub error: Option<String>,
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn new(action: impl Into<String>, outcome: Outcome) -> Self {
        NewEvent {
            action: action.into(),
            from: None,
            to: None,
            outcome,
            duration: Duration::ZERO,
            error: None,
            detail: serde_json::json!({}),
        }
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub operator: String,
    pub db_role: String,
    pub action: String,
    pub from_revision: Option<Revision>,
    pub to_revision: Option<Revision>,
    pub outcome: Outcome,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    pub detail: serde_json::Value,
}

const INSERT_EVENT: &str = "INSERT INTO pgshift_events \
    (operator, action, from_revision, to_revision, outcome, duration_ms, error, detail) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const INSERT_STARTED: &str = "INSERT INTO pgshift_events \
    (operator, action, from_revision, to_revision, outcome, duration_ms, detail) \
    VALUES ($1, $2, $3, $3, 'started', 0, $4) RETURNING id";

/// The end of a run: its `started` row gets the outcome.
const FINISH: &str = "UPDATE pgshift_events SET outcome = $2, from_revision = $3, to_revision = $4, \
    duration_ms = $5, error = $6, detail = $7 WHERE id = $1";

/// A committed step brings its run's row up to date, in the step's own transaction: the revision
/// the database is at and the time so far.
pub const PROGRESS: &str = "UPDATE pgshift_events \
    SET to_revision = (SELECT coalesce(max(version), 0) FROM refinery_schema_history), \
    duration_ms = (extract(epoch FROM clock_timestamp() - at) * 1000)::int8 WHERE id = $1";

/// Runs left `started` by a process that died; called under the runner lock, so none is live, and
/// before the new run's first step, so history is where the dead run left it.
const MARK_INTERRUPTED: &str = "UPDATE pgshift_events SET outcome = 'interrupted', \
    error = coalesce(error, $1), \
    to_revision = (SELECT coalesce(max(version), 0) FROM refinery_schema_history) \
    WHERE outcome = 'started' AND id <> $2";

/// The revision history is at, for a dead run's row.
const CURRENT_REVISION: &str = "SELECT coalesce(max(version), 0) FROM refinery_schema_history";

/// Why a run shows as interrupted.
pub const INTERRUPTED: &str = "interrupted: the run ended without recording an outcome (its process was killed, or lost its \
    connection); to_revision is the last step it committed. Check `pgshift status`, then run again.";

const SELECT_EVENTS: &str = "SELECT id, at, operator, db_role, action, from_revision, to_revision, \
    outcome, duration_ms, error, detail FROM pgshift_events ORDER BY id DESC LIMIT $1";

fn rev(r: Option<Revision>) -> Option<i32> {
    r.map(|r| r.0 as i32)
}

tokio::task_local! {
    static TAGS: serde_json::Map<String, serde_json::Value>;
}

/// Run `f` with `tags` added to the detail of every audit row it writes: a fleet rollout tags
/// each target's rows (run, refusal, backfill start and end) with its run id.
pub async fn tagged<F: std::future::Future>(
    tags: serde_json::Map<String, serde_json::Value>,
    f: F,
) -> F::Output {
    TAGS.scope(tags, f).await
}

/// The event's detail with the current task's tags, if any.
fn detail_of(e: &NewEvent) -> serde_json::Value {
    let mut detail = e.detail.clone();
    add_tags(&mut detail);
    detail
}

fn add_tags(detail: &mut serde_json::Value) {
    TAGS.try_with(|tags| {
        if let Some(d) = detail.as_object_mut() {
            d.extend(tags.clone());
        }
    })
    .ok();
}

/// Write one event. The table must exist (created under the runner lock).
pub async fn record(s: &Session, e: &NewEvent) -> Result<()> {
    // Secrets stay out of the audit table, whatever text an error carried.
    let error = e
        .error
        .as_deref()
        .map(|t| crate::secrets::redact(t).into_owned());
    let mut detail = detail_of(e);
    crate::secrets::redact_json(&mut detail);
    s.client
        .execute(
            INSERT_EVENT,
            &[
                &super::operator(),
                &e.action,
                &rev(e.from),
                &rev(e.to),
                &e.outcome.as_str(),
                &(e.duration.as_millis() as i64),
                &error,
                &detail,
            ],
        )
        .await
        .map_err(|err| Error::db("writing the audit event", &err))?;
    Ok(())
}

/// A migration run's audit row, written before its first step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRow(pub i64);

/// Brings a run's row up to date from inside its steps' transactions, at most once per
/// [`Progress::EVERY`]: a row update per step would cost every step of a long catalog (and pile up
/// row versions); the exact revision of a dead run comes from history anyway.
#[derive(Debug)]
pub struct Progress {
    pub row: RunRow,
    last: Mutex<Option<Instant>>,
}

impl Progress {
    pub const EVERY: Duration = Duration::from_secs(1);

    pub fn new(row: RunRow) -> Progress {
        Progress {
            row,
            last: Mutex::new(None),
        }
    }

    /// The row's id when it is time for the next update (the first step always is).
    pub fn due(&self) -> Option<i64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(at) if now.duration_since(at) < Self::EVERY => None,
            _ => {
                *last = Some(now);
                Some(self.row.0)
            }
        }
    }
}

/// Write the `started` row of a run: who, from where, the plan, and the worker's backend pid
/// (how readers tell a live run from a dead one).
pub async fn start_run(
    s: &Session,
    action: &str,
    from: Revision,
    plan_to: Revision,
    worker_pid: i32,
    mut detail: serde_json::Value,
) -> Result<RunRow> {
    detail["plan"] = serde_json::json!({ "from": from, "to": plan_to });
    detail["backend_pid"] = serde_json::json!(worker_pid);
    detail["client_pid"] = serde_json::json!(std::process::id());
    add_tags(&mut detail);
    let row = s
        .client
        .query_one(
            INSERT_STARTED,
            &[&super::operator(), &action, &rev(Some(from)), &detail],
        )
        .await
        .map_err(|err| Error::db("writing the run's started audit row", &err))?;
    Ok(RunRow(row.get(0)))
}

/// Write the run's outcome into its `started` row.
pub async fn finish_run(s: &Session, run: RunRow, e: &NewEvent) -> Result<()> {
    s.client
        .execute(
            FINISH,
            &[
                &run.0,
                &e.outcome.as_str(),
                &rev(e.from),
                &rev(e.to),
                &(e.duration.as_millis() as i64),
                &e.error,
                &detail_of(e),
            ],
        )
        .await
        .map_err(|err| Error::db("writing the run's outcome to the audit row", &err))?;
    Ok(())
}

/// Record runs whose process died as `interrupted`. Call with the runner lock held.
pub async fn close_dead_runs(s: &Session, current: RunRow) -> Result<u64> {
    s.client
        .execute(MARK_INTERRUPTED, &[&INTERRUPTED, &current.0])
        .await
        .map_err(|err| Error::db("recording interrupted runs", &err))
}

/// The last migration run (`up`, `down`, `startup`, `retry`) and how it ended.
const LAST_MIGRATION_RUN: &str =
    "SELECT action, outcome, coalesce(error, ''), at, operator, detail->>'sqlstate',
       (detail->>'backend_pid')::int4
FROM pgshift_events WHERE action IN ('up', 'down', 'startup', 'retry')
ORDER BY id DESC LIMIT 1";

/// The newest migration run's row, as recorded (a `started` one is not resolved here).
#[derive(Debug, Clone)]
pub struct LastRun {
    pub action: String,
    pub outcome: Outcome,
    pub error: String,
    pub at: String,
    pub operator: String,
    pub sqlstate: Option<String>,
    /// The run's worker backend, while it runs: how readers tell a live run from a dead one.
    pub backend_pid: Option<i32>,
}

/// The newest migration run; `None` when none was recorded (or pgshift never ran here).
pub async fn last_migration_run(s: &Session) -> Result<Option<LastRun>> {
    if !schema::exists(s, "pgshift_events").await? {
        return Ok(None);
    }
    let row = s
        .client
        .query_opt(LAST_MIGRATION_RUN, &[])
        .await
        .map_err(|e| Error::db("reading the last migration event", &e))?;
    Ok(row.map(|r| LastRun {
        action: r.get(0),
        outcome: Outcome::from_db(r.get(1)),
        error: r.get(2),
        at: super::rfc3339(r.get(3)),
        operator: r.get(4),
        sqlstate: r.get(5),
        backend_pid: r.get(6),
    }))
}

/// Newest first; empty when pgshift never ran here. A `started` run whose backend no longer holds
/// the runner lock reads as `interrupted`.
pub async fn recent(s: &Session, limit: i64) -> Result<Vec<Event>> {
    if !schema::exists(s, "pgshift_events").await? {
        return Ok(Vec::new());
    }
    let rows = s
        .client
        .query(SELECT_EVENTS, &[&limit])
        .await
        .map_err(|e| Error::db("reading pgshift_events", &e))?;
    let mut events: Vec<Event> = rows
        .iter()
        .map(|r| Event {
            id: r.get(0),
            at: super::rfc3339(r.get(1)),
            operator: r.get(2),
            db_role: r.get(3),
            action: r.get(4),
            from_revision: r.get::<_, Option<i32>>(5).map(|v| Revision(v as u32)),
            to_revision: r.get::<_, Option<i32>>(6).map(|v| Revision(v as u32)),
            outcome: Outcome::from_db(r.get(7)),
            duration_ms: r.get(8),
            error: r.get(9),
            detail: r.get(10),
        })
        .collect();
    if events.iter().any(|e| e.outcome == Outcome::Started) {
        let live = live_runner(s).await?;
        let current: i32 = s
            .client
            .query_one(CURRENT_REVISION, &[])
            .await
            .map_err(|e| Error::db("reading the current revision", &e))?
            .get(0);
        // Newest first: only the newest dead run can have moved history since its last update.
        let mut newest = true;
        for e in &mut events {
            resolve_started(e, live);
            if e.outcome == Outcome::Interrupted && e.detail.get("backend_pid").is_some() && newest
            {
                e.to_revision = Some(Revision(current as u32));
            }
            newest &= e.outcome != Outcome::Interrupted;
        }
    }
    Ok(events)
}

/// The backend pid holding the runner lock of this database, if any.
pub async fn live_runner(s: &Session) -> Result<Option<i32>> {
    Ok(lock::holder(s, lock::RUNNER, &lock::runner_name(s))
        .await?
        .map(|h| h.pid))
}

/// A `started` row is live only while its backend holds the runner lock.
pub fn resolve_started(e: &mut Event, runner_pid: Option<i32>) {
    if e.outcome != Outcome::Started {
        return;
    }
    let pid = e
        .detail
        .get("backend_pid")
        .and_then(serde_json::Value::as_i64);
    if pid.is_none() || pid != runner_pid.map(i64::from) {
        e.outcome = Outcome::Interrupted;
        e.error.get_or_insert_with(|| INTERRUPTED.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(pid: Option<i64>) -> Event {
        Event {
            id: 7,
            at: "2026-12-03T07:00:00Z".into(),
            operator: "alice@deploy-1".into(),
            db_role: "app".into(),
            action: "up".into(),
            from_revision: Some(Revision(0)),
            to_revision: Some(Revision(1)),
            outcome: Outcome::Started,
            duration_ms: Some(0),
            error: None,
            detail: match pid {
                Some(p) => serde_json::json!({ "backend_pid": p }),
                None => serde_json::json!({}),
            },
        }
    }

    #[test]
    fn a_started_run_is_live_only_while_its_backend_holds_the_runner_lock() {
        let mut live = started(Some(4121));
        resolve_started(&mut live, Some(4121));
        assert_eq!(live.outcome, Outcome::Started);
        assert_eq!(live.error, None);
        for (pid, holder) in [
            (Some(4121), None),
            (Some(4121), Some(5000)),
            (None, Some(4121)),
        ] {
            let mut dead = started(pid);
            resolve_started(&mut dead, holder);
            assert_eq!(dead.outcome, Outcome::Interrupted, "{pid:?} vs {holder:?}");
            assert!(dead.error.as_deref().unwrap().starts_with("interrupted"));
        }
        let mut ok = started(Some(1));
        ok.outcome = Outcome::Ok;
        resolve_started(&mut ok, None);
        assert_eq!(ok.outcome, Outcome::Ok);
    }

    #[test]
    fn outcomes_read_back_as_written() {
        for o in [
            Outcome::Ok,
            Outcome::Failed,
            Outcome::Refused,
            Outcome::Started,
            Outcome::Interrupted,
        ] {
            assert_eq!(Outcome::from_db(o.as_str()), o);
            assert_eq!(format!("{o:<12}|"), format!("{:<12}|", o.as_str()));
        }
    }
}
