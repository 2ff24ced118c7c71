//! The applied history in refinery's `refinery_schema_history`.

use super::{Session, schema};
use crate::catalog::Revision;
use crate::error::{Error, Result};
use crate::plan::{Applied, Recorded};

const SELECT_APPLIED: &str =
    "SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version";
/// The history with what pgshift recorded of each row (when its table exists).
const SELECT_APPLIED_RECORDED: &str = "SELECT h.version, h.name, h.applied_on, h.checksum,
       s.up_sql, s.down_sql, s.seq, s.out_of_order, s.version IS NOT NULL
FROM refinery_schema_history h LEFT JOIN pgshift_applied_sql s ON s.version = h.version
ORDER BY h.version";
/// A history row alone, exactly as refinery writes it (DEV_CREATE_TABLES).
pub const INSERT_APPLIED: &str = "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
     VALUES ($1, $2, $3, $4)";
/// The history row and the SQL as applied ($5 up, $6 down, $7 out of order), in one statement so
/// they commit together.
pub const INSERT_APPLIED_WITH_SQL: &str = "WITH h AS (
    INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES ($1, $2, $3, $4))
INSERT INTO pgshift_applied_sql (version, name, up_sql, down_sql, out_of_order) VALUES ($1, $2, $5, $6, $7)
ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, up_sql = EXCLUDED.up_sql,
    down_sql = EXCLUDED.down_sql, out_of_order = EXCLUDED.out_of_order,
    seq = nextval(pg_get_serial_sequence('pgshift_applied_sql', 'seq')), applied_at = now()";
/// The history row and its recorded SQL.
pub const DELETE_APPLIED: &str = "WITH s AS (DELETE FROM pgshift_applied_sql WHERE version = $1)
DELETE FROM refinery_schema_history WHERE version = $1";

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
/// [`INSERT_APPLIED_WITH_SQL`] guarded ($8 the marker).
pub const INSERT_IF_STEP_RAN: &str = "WITH h AS (
    INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
    SELECT $1::int4, $2::varchar, $3::varchar, $4::varchar
    WHERE CASE WHEN current_setting('pgshift.step', true) = $8::text THEN true
    ELSE current_setting('pgshift.step_sql_did_not_complete_in_this_transaction')::bool END)
INSERT INTO pgshift_applied_sql (version, name, up_sql, down_sql, out_of_order) VALUES ($1, $2, $5, $6, $7)
ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, up_sql = EXCLUDED.up_sql,
    down_sql = EXCLUDED.down_sql, out_of_order = EXCLUDED.out_of_order,
    seq = nextval(pg_get_serial_sequence('pgshift_applied_sql', 'seq')), applied_at = now()";
/// [`DELETE_APPLIED`] guarded ($2 the marker).
pub const DELETE_IF_STEP_RAN: &str =
    "WITH s AS (DELETE FROM pgshift_applied_sql WHERE version = $1)
DELETE FROM refinery_schema_history WHERE version = $1
    AND CASE WHEN current_setting('pgshift.step', true) = $2::text THEN true
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
    let recorded = schema::exists(s, schema::APPLIED_SQL_TABLE).await?;
    let query = if recorded {
        SELECT_APPLIED_RECORDED
    } else {
        SELECT_APPLIED
    };
    let rows = s
        .client
        .query(query, &[])
        .await
        .map_err(|e| Error::db("reading refinery_schema_history", &e))?;
    rows.iter().map(|r| parse_row(r, recorded)).collect()
}

const APPLIED_VERSIONS: &str = "SELECT version FROM refinery_schema_history";

/// The applied revisions as `tx` sees them (the history table must exist).
pub async fn applied_versions(tx: &tokio_postgres::Transaction<'_>) -> Result<Vec<Revision>> {
    let rows = tx
        .query(APPLIED_VERSIONS, &[])
        .await
        .map_err(|e| Error::db("reading history", &e))?;
    Ok(rows
        .iter()
        .map(|r| Revision(r.get::<_, i32>(0).max(0) as u32))
        .collect())
}

fn parse_row(row: &tokio_postgres::Row, with_recorded: bool) -> Result<Applied> {
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
        recorded: (with_recorded && row.get::<_, bool>(8)).then(|| Recorded {
            up: row.get(4),
            down: row.get(5),
            seq: row.get(6),
            out_of_order: row.get(7),
        }),
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

/// `accept`: the history row takes the file's checksum (and name); refinery reads it as before.
const ACCEPT_CHECKSUM: &str = "UPDATE refinery_schema_history SET checksum = $2, name = $3 WHERE version = $1 AND checksum = $4";
/// `accept`: the recorded SQL becomes the file's; the order of application is kept.
const ACCEPT_SQL: &str = "INSERT INTO pgshift_applied_sql (version, name, up_sql, down_sql)
VALUES ($1, $2, $3, $4)
ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, up_sql = EXCLUDED.up_sql,
    down_sql = EXCLUDED.down_sql";

/// Re-approve `m` as applied: its checksum (only if history still holds `old`), name and SQL, in
/// one transaction. Returns false when the history row changed in between (nothing written).
pub async fn accept(s: &Session, m: &crate::catalog::Migration, old: u64) -> Result<bool> {
    let (v, name, _, sum) = row_values(m.revision, &m.name, m.checksum);
    let result = async {
        s.client.batch_execute("BEGIN").await?;
        let n = s
            .client
            .execute(ACCEPT_CHECKSUM, &[&v, &sum, &name, &old.to_string()])
            .await?;
        if n == 1 {
            s.client
                .execute(ACCEPT_SQL, &[&v, &name, &m.up, &m.down])
                .await?;
        }
        s.client.batch_execute("COMMIT").await?;
        Ok::<_, tokio_postgres::Error>(n == 1)
    }
    .await;
    if result.is_err() && !s.client.is_closed() {
        s.client.batch_execute("ROLLBACK").await.ok();
    }
    result.map_err(|e| Error::db(format!("accepting {} in history", m.label()), &e))
}

const ALEMBIC_VERSION: &str = "SELECT string_agg(version_num, ', ') FROM alembic_version";

/// What an Alembic `alembic_version` table holds, when there is one (and it can be read).
pub async fn alembic_version(s: &Session) -> Result<Option<String>> {
    if !schema::exists(s, "alembic_version").await? {
        return Ok(None);
    }
    Ok(s.client
        .query_one(ALEMBIC_VERSION, &[])
        .await
        .ok()
        .and_then(|r| r.get(0)))
}

/// Make history record `insert` as applied (with the files' SQL, which the schema is declared to
/// match) and forget `remove`, without running any of their SQL: all of it or nothing.
pub async fn stamp(
    s: &Session,
    insert: &[&crate::catalog::Migration],
    remove: &[Revision],
) -> Result<()> {
    let tx = async {
        s.client.batch_execute(super::BEGIN).await?;
        for m in insert {
            let (v, name, on, sum) = row_values(m.revision, &m.name, m.checksum);
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
                [&v, &name, &on, &sum, &m.up, &m.down, &false];
            s.client.execute(INSERT_APPLIED_WITH_SQL, &params).await?;
        }
        for rev in remove {
            s.client.execute(DELETE_APPLIED, &[&(rev.0 as i32)]).await?;
        }
        s.client.batch_execute(super::COMMIT).await
    }
    .await;
    if let Err(e) = tx {
        s.client.batch_execute(super::ROLLBACK).await.ok();
        return Err(Error::db("stamping the history", &e));
    }
    Ok(())
}
