//! The audit trail: one `pgshift_events` row per mutating action, also on failure.

use std::time::Duration;

use super::{Session, schema};
use crate::catalog::Revision;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        }
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
    pub outcome: String,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    pub detail: serde_json::Value,
}

const INSERT_EVENT: &str = "INSERT INTO pgshift_events \
    (operator, action, from_revision, to_revision, outcome, duration_ms, error, detail) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

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
    TAGS.try_with(|tags| {
        if let Some(d) = detail.as_object_mut() {
            d.extend(tags.clone());
        }
    })
    .ok();
    detail
}

/// Write one event. The table must exist (created under the runner lock).
pub async fn record(s: &Session, e: &NewEvent) -> Result<()> {
    let detail = detail_of(e);
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
                &e.error,
                &detail,
            ],
        )
        .await
        .map_err(|err| Error::db("writing the audit event", &err))?;
    Ok(())
}

/// Newest first; empty when pgshift never ran here.
pub async fn recent(s: &Session, limit: i64) -> Result<Vec<Event>> {
    if !schema::exists(s, "pgshift_events").await? {
        return Ok(Vec::new());
    }
    let rows = s
        .client
        .query(SELECT_EVENTS, &[&limit])
        .await
        .map_err(|e| Error::db("reading pgshift_events", &e))?;
    Ok(rows
        .iter()
        .map(|r| Event {
            id: r.get(0),
            at: super::rfc3339(r.get(1)),
            operator: r.get(2),
            db_role: r.get(3),
            action: r.get(4),
            from_revision: r.get::<_, Option<i32>>(5).map(|v| Revision(v as u32)),
            to_revision: r.get::<_, Option<i32>>(6).map(|v| Revision(v as u32)),
            outcome: r.get(7),
            duration_ms: r.get(8),
            error: r.get(9),
            detail: r.get(10),
        })
        .collect())
}
