//! The backfill engine's own queries: the guarded batch transaction, the checks of a definition's
//! table and key, the statements wrapped around a definition's count and preview, and the keyset
//! bound. A definition's batch, count, preview and setup statements are its author's SQL, not
//! pgshift's: they arrive here only as text to wrap. Identifiers come quoted
//! (`Definition::table_sql`/`key_sql`, through `sql::quote_ident`); values are bound parameters.

use std::time::Duration;

use crate::config::Guard;

/// A batch's statement_timeout when the target sets none: far above the ~100 ms a batch aims at,
/// low enough that a runaway batch cannot hold row locks for long.
pub const DEFAULT_BATCH_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The key column's type, NOT NULL, and whether it leads a valid btree index
/// (`$1` the quoted table, `$2` the column name).
pub const KEY_COLUMN: &str = "SELECT format_type(a.atttypid, NULL), a.attnotnull, EXISTS ( \
       SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
       WHERE i.indrelid = a.attrelid AND i.indkey[0] = a.attnum AND am.amname = 'btree' \
         AND i.indisvalid AND i.indpred IS NULL) \
     FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped";

/// Whether the table (`$1`, quoted) exists.
pub const TABLE_EXISTS: &str = "SELECT to_regclass($1) IS NOT NULL";

/// The planner's estimate of the table's rows (`$1`, quoted); -1 when never analyzed.
pub const RELTUPLES: &str = "SELECT reltuples::int8 FROM pg_class WHERE oid = to_regclass($1)";

/// `BEGIN` plus the per-batch guards. Integers from our own Durations: no user text in this SQL.
///
/// `synchronous_commit = off` spares each batch a WAL flush wait. It is safe here because the
/// cursor commits in the same transaction as its batch: a server crash can only lose the last
/// few batches *together with* their cursor, which the resumed run then simply redoes.
pub fn begin_guarded(guard: &Guard) -> String {
    let statement = guard
        .statement_timeout
        .unwrap_or(DEFAULT_BATCH_STATEMENT_TIMEOUT);
    use super::{Scope, set_timeout};
    format!(
        "BEGIN; {}; {}; SET LOCAL synchronous_commit = off",
        set_timeout(Scope::Local, "lock_timeout", Some(guard.lock_timeout)),
        set_timeout(Scope::Local, "statement_timeout", Some(statement))
    )
}

/// The definition's count query (`count`, without its semicolon) as one `int8`.
pub fn count(count: &str) -> String {
    format!("SELECT ({count})::int8")
}

/// The definition's preview query (`preview`, without its semicolon) as rows of JSON text.
pub fn preview(preview: &str) -> String {
    format!("SELECT row_to_json(pgshift_preview)::text FROM ({preview}) pgshift_preview")
}

/// The next batch's upper bound: the `$2`-th key after `$1`. An index range scan of `$2` entries
/// from the cursor, never an OFFSET over the table. Fewer keys left: the last key (one backward
/// index probe, evaluated only then). No key left: NULL. `int8` casts an integer key to the
/// engine's key type.
pub fn next_bound(table: &str, key: &str, int8: bool) -> String {
    let cast = if int8 { "::int8" } else { "" };
    format!(
        "SELECT (coalesce((SELECT {key} FROM {table} WHERE {key} > $1 ORDER BY {key} OFFSET $2 - 1 LIMIT 1), \
                          (SELECT {key} FROM {table} WHERE {key} > $1 ORDER BY {key} DESC LIMIT 1))){cast}"
    )
}

/// Whether a row of `table` has the key `$1`.
pub fn key_exists(table: &str, key: &str) -> String {
    format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {key} = $1)")
}
