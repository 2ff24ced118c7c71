//! The applied history in refinery's `refinery_schema_history`.

use super::{Session, schema};
use crate::catalog::Revision;
use crate::error::{Error, Result};
use crate::plan::Applied;

const SELECT_APPLIED: &str =
    "SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version";
pub const INSERT_APPLIED: &str = "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
     VALUES ($1, $2, $3, $4)";
pub const DELETE_APPLIED: &str = "DELETE FROM refinery_schema_history WHERE version = $1";

/// A transactional step's history write is guarded by a transaction-local marker, so that it can
/// only succeed in the transaction that ran the step's SQL to its end (see `db::apply`):
/// [`step_begun`] sets it with the BEGIN, [`STEP_RAN`] (appended to the step's SQL, in the same
/// message) extends it, and the write checks for the extended value. Any way the SQL can fail to
/// run to its end in that transaction (never sent, an error, its own COMMIT or ROLLBACK) leaves
/// the marker unset or different, and the write raises instead of recording the step.
pub fn step_begun(token: &str) -> String {
    format!(
        "SELECT set_config('pgshift.step', {}, true)",
        crate::sql::quote_literal(token)
    )
}
pub const STEP_RAN: &str =
    "SELECT set_config('pgshift.step', current_setting('pgshift.step', true) || ':ran', true)";
/// The value [`STEP_RAN`] leaves when it ran in the transaction [`step_begun`] started.
pub fn step_ran_marker(token: &str) -> String {
    format!("{token}:ran")
}

/// What the guarded writes raise (42704, unrecognized configuration parameter) without the marker:
/// the parameter's name tells the operator, and `db::apply`, what happened.
pub const MARKER_MISSING: &str = "pgshift.step_sql_did_not_complete_in_this_transaction";

/// `current_setting` is STABLE, so the planner does not fold the CASE: the check runs when the
/// statement runs, and the ELSE branch raises.
pub const INSERT_IF_STEP_RAN: &str = "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
     SELECT $1::int4, $2::varchar, $3::varchar, $4::varchar \
     WHERE CASE WHEN current_setting('pgshift.step', true) = $5::text THEN true \
     ELSE current_setting('pgshift.step_sql_did_not_complete_in_this_transaction')::bool END";
pub const DELETE_IF_STEP_RAN: &str = "DELETE FROM refinery_schema_history WHERE version = $1 \
     AND CASE WHEN current_setting('pgshift.step', true) = $2::text THEN true \
     ELSE current_setting('pgshift.step_sql_did_not_complete_in_this_transaction')::bool END";

/// True when `err` is the guarded write refusing because the step's SQL did not complete in its
/// transaction.
pub fn is_marker_missing(err: &tokio_postgres::Error) -> bool {
    err.as_db_error()
        .is_some_and(|d| d.code().code() == "42704" && d.message().contains(MARKER_MISSING))
}

/// Read the applied history; an empty list when the table does not exist yet. A row pgshift cannot
/// understand is an integrity error, not something to skip.
pub async fn applied(s: &Session) -> Result<Vec<Applied>> {
    if !schema::exists(s, schema::HISTORY_TABLE).await? {
        return Ok(Vec::new());
    }
    let rows = s
        .client
        .query(SELECT_APPLIED, &[])
        .await
        .map_err(|e| Error::db("reading refinery_schema_history", &e))?;
    rows.iter().map(parse_row).collect()
}

fn parse_row(row: &tokio_postgres::Row) -> Result<Applied> {
    let version: i32 = row.get(0);
    let name: Option<String> = row.get(1);
    let applied_on: Option<String> = row.get(2);
    let checksum: Option<String> = row.get(3);
    let bad = |what: &str| {
        Error::Integrity(format!(
            "refinery_schema_history row for version {version} has {what}; fix the row by hand or re-stamp with `pgshift stamp`"
        ))
    };
    if version <= 0 {
        return Err(bad("a version below 1"));
    }
    Ok(Applied {
        revision: Revision(version as u32),
        name: name.ok_or_else(|| bad("no name"))?,
        applied_on: applied_on.unwrap_or_default(),
        checksum: checksum
            .as_deref()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad("a checksum that is not a number"))?,
    })
}

/// The values of a history row, exactly as refinery writes them.
pub fn row_values(revision: Revision, name: &str, checksum: u64) -> (i32, String, String, String) {
    (
        revision.0 as i32,
        name.to_string(),
        super::rfc3339(time::OffsetDateTime::now_utc()),
        checksum.to_string(),
    )
}
