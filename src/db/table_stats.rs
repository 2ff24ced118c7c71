//! Size and activity of the tables a run's migrations touch, read in one round trip before `up`
//! so lint can weigh each finding by the live table (`lint::weigh`).

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::error::{Error, Result};
use crate::sql::{RelKind, Relation};

/// Every wanted relation (schema or '' for the search path, name) that exists, with its table's
/// figures (an index reports the table it indexes). Only catalogs and statistics are read, never
/// the relations themselves: `pg_relation_size` would take an ACCESS SHARE lock and wait behind
/// the very blocker the weighing should report. Sizes are therefore `relpages` (table, TOAST and
/// indexes, as of the last VACUUM/ANALYZE/CREATE INDEX) times the block size. `reltuples` is -1
/// before the first ANALYZE/VACUUM, then `n_live_tup` is the better guess. Write and scan rates are the counters
/// over the time since the database's statistics were reset (or the server started). Long
/// transactions are other sessions of this database holding any lock on the table whose
/// transaction began more than $3 seconds ago.
pub const TABLE_STATS: &str = "
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::text[]) AS w(schema_name, rel_name)
), found AS (
    SELECT DISTINCT ON (w.schema_name, w.rel_name)
           w.schema_name, w.rel_name, COALESCE(i.indrelid, c.oid) AS table_oid
    FROM wanted w
    JOIN pg_class c ON c.relname = w.rel_name AND c.relkind IN ('r', 'p', 'm', 'i', 'I')
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    WHERE (w.schema_name = '' AND pg_table_is_visible(c.oid)) OR n.nspname = w.schema_name
), holders AS MATERIALIZED (
    SELECT l.relation, a.pid, a.xact_start
    FROM pg_locks l
    JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'relation'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND a.pid <> pg_backend_pid()
      AND a.xact_start < now() - make_interval(secs => $3)
), stats_window AS MATERIALIZED (
    SELECT EXTRACT(epoch FROM now() - COALESCE(
               (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()),
               pg_postmaster_start_time()))::float8 AS seconds
)
SELECT f.schema_name, f.rel_name,
       tn.nspname::text AS table_schema, t.relname::text AS table_name,
       t.reltuples::float8 AS reltuples, t.relpages::int8 AS relpages,
       t.relpages::int8 * b.size AS heap_bytes,
       (t.relpages
        + COALESCE((SELECT toast.relpages FROM pg_class toast WHERE toast.oid = t.reltoastrelid), 0)
        + COALESCE((SELECT sum(ic.relpages) FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                    WHERE x.indrelid = t.oid), 0))::int8 * b.size AS total_bytes,
       s.n_live_tup::int8 AS live_rows,
       (s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::int8 AS writes,
       (s.seq_scan + COALESCE(s.idx_scan, 0))::int8 AS scans,
       w.seconds AS stats_window_s,
       lt.count AS long_transactions, lt.oldest_s, lt.oldest_pid
FROM found f
JOIN pg_class t ON t.oid = f.table_oid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid
CROSS JOIN stats_window w
CROSS JOIN (SELECT current_setting('block_size')::int8 AS size) b
CROSS JOIN LATERAL (
    SELECT count(DISTINCT h.pid)::int8 AS count,
           max(EXTRACT(epoch FROM now() - h.xact_start))::float8 AS oldest_s,
           (array_agg(h.pid ORDER BY h.xact_start))[1] AS oldest_pid
    FROM holders h
    WHERE h.relation = t.oid
) lt";

/// One table's figures on the target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableStats {
    /// The name as the migration wrote it (an index name for DROP INDEX).
    pub wanted: Relation,
    /// The table itself, schema-qualified.
    pub table: String,
    /// `reltuples`, or `n_live_tup` when the table was never analyzed; `None` when neither knows.
    pub rows: Option<f64>,
    pub heap_bytes: i64,
    pub total_bytes: i64,
    /// Inserts + updates + deletes per second, averaged since the statistics were reset.
    pub writes_per_s: Option<f64>,
    /// Sequential + index scans per second, same window.
    pub scans_per_s: Option<f64>,
    /// Other sessions whose transaction (older than the configured age) holds a lock on it.
    pub long_transactions: Vec<LongTransaction>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LongTransaction {
    /// The oldest one's pid.
    pub pid: i32,
    pub age_s: f64,
    /// How many transactions in all.
    pub count: i64,
}

/// The figures of every relation in `wanted` that exists on the target, in one round trip
/// (typed parameters: no separate prepare). A relation missing from the result does not exist.
pub async fn read(
    client: &Client,
    wanted: &[Relation],
    long_transaction: Duration,
) -> Result<Vec<TableStats>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let schemas: Vec<&str> = wanted
        .iter()
        .map(|r| r.schema.as_deref().unwrap_or(""))
        .collect();
    let names: Vec<&str> = wanted.iter().map(|r| r.name.as_str()).collect();
    let age = long_transaction.as_secs_f64();
    let rows = client
        .query_typed(
            TABLE_STATS,
            &[
                (&schemas, Type::TEXT_ARRAY),
                (&names, Type::TEXT_ARRAY),
                (&age, Type::FLOAT8),
            ],
        )
        .await
        .map_err(|e| Error::db("reading the size and activity of the tables to migrate", &e))?;
    rows.iter().map(|row| from_row(row, wanted)).collect()
}

fn from_row(row: &tokio_postgres::Row, wanted: &[Relation]) -> Result<TableStats> {
    let get_err = |e: tokio_postgres::Error| Error::db("reading a table statistics row", &e);
    let schema: String = row.try_get("schema_name").map_err(get_err)?;
    let name: String = row.try_get("rel_name").map_err(get_err)?;
    let wanted = wanted
        .iter()
        .find(|r| r.name == name && r.schema.as_deref().unwrap_or("") == schema)
        .cloned()
        .unwrap_or(Relation {
            schema: (!schema.is_empty()).then_some(schema),
            name,
            kind: RelKind::Table,
        });
    let reltuples: f64 = row.try_get("reltuples").map_err(get_err)?;
    let live: Option<i64> = row.try_get("live_rows").map_err(get_err)?;
    let window: f64 = row.try_get("stats_window_s").map_err(get_err)?;
    let rate = |v: Option<i64>| v.filter(|_| window > 1.0).map(|v| v as f64 / window);
    let count: i64 = row.try_get("long_transactions").map_err(get_err)?;
    let long_transactions = match (count, row.try_get::<_, Option<i32>>("oldest_pid")) {
        (1.., Ok(Some(pid))) => vec![LongTransaction {
            pid,
            age_s: row
                .try_get::<_, Option<f64>>("oldest_s")
                .map_err(get_err)?
                .unwrap_or(0.0),
            count,
        }],
        _ => Vec::new(),
    };
    Ok(TableStats {
        wanted,
        table: format!(
            "{}.{}",
            row.try_get::<_, String>("table_schema").map_err(get_err)?,
            row.try_get::<_, String>("table_name").map_err(get_err)?
        ),
        rows: if reltuples >= 0.0 {
            Some(reltuples)
        } else {
            live.map(|l| l as f64)
        },
        heap_bytes: row.try_get("heap_bytes").map_err(get_err)?,
        total_bytes: row.try_get("total_bytes").map_err(get_err)?,
        writes_per_s: rate(row.try_get("writes").map_err(get_err)?),
        scans_per_s: rate(row.try_get("scans").map_err(get_err)?),
        long_transactions,
    })
}
