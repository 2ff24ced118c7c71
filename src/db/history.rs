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
