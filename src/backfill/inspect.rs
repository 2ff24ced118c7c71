//! The database-side checks of a definition, before anything runs: the schema revision it
//! requires, its table and key column (integer or uuid, NOT NULL, leading column of a valid btree
//! index), and every statement prepared (which checks syntax and names without executing).

use tokio_postgres::Statement;
use tokio_postgres::types::Type;

use super::definition::Definition;
use super::key::{Key, KeyKind};
use crate::db::backfill_batches::{self as queries, KEY_COLUMN, TABLE_EXISTS};
use crate::db::{Session, history};
use crate::error::{DbFailure, Error, Result};

/// The statements of a definition, prepared on one session.
pub struct Prepared {
    pub kind: KeyKind,
    pub batch: Statement,
    /// `SELECT (count)::int8`.
    pub count: Statement,
    /// Rows as JSON text, and whether it takes the key bounds.
    pub preview: Option<(Statement, bool)>,
    /// The next batch's upper bound: the `$2`-th key after `$1`, found in the key's index.
    pub bound: Statement,
}

/// Refuse when the schema is below `requires`.
pub async fn check_requires(s: &Session, d: &Definition) -> Result<()> {
    let Some(req) = d.requires else { return Ok(()) };
    let current = crate::plan::current(&history::applied(s).await?);
    if current < req {
        return Err(Error::Refused(format!(
            "backfill {} requires schema revision {req}, but the database is at {current}; nothing was run.\n  Upgrade first: `pgshift up {req}`.",
            d.name
        )));
    }
    Ok(())
}

fn bad(d: &Definition, what: String) -> Error {
    Error::Integrity(format!(
        "backfill {} ({}): {what}; nothing was run.\n  Fix the definition, then run the command again.",
        d.name,
        d.file.display()
    ))
}

fn prepare_failed(d: &Definition, what: &str, e: &tokio_postgres::Error, sql: &str) -> Error {
    // Waiting for a lock (prepare takes ACCESS SHARE on the table) is not a bad statement.
    let waited = DbFailure::from_pg(e, None).is("55P03");
    if e.is_closed() || waited {
        return Error::db(format!("checking backfill {}", d.name), e);
    }
    bad(
        d,
        format!(
            "the {what} statement does not prepare: {}\n  {what}: {}",
            DbFailure::from_pg(e, Some(sql)),
            crate::text::one_line(sql, 200)
        ),
    )
}

/// The statement text without its trailing semicolon, to wrap in a subquery.
fn inner(sql: &str) -> String {
    crate::sql::statements(sql)
        .into_iter()
        .next()
        .map(|s| s.text)
        .unwrap_or_default()
}

/// Check the table, key and statements against the database; prepare what the engine runs.
pub async fn prepare(s: &Session, d: &Definition) -> Result<Prepared> {
    let kind = key_kind(s, d).await?;
    let key_type = kind.param_type();
    let batch = s
        .client
        .prepare_typed(&d.batch, &[key_type.clone(), key_type.clone()])
        .await
        .map_err(|e| prepare_failed(d, "batch", &e, &d.batch))?;
    let count_sql = queries::count(&inner(&d.count));
    let count = s
        .client
        .prepare(&count_sql)
        .await
        .map_err(|e| prepare_failed(d, "count", &e, &d.count))?;
    let preview = match &d.preview {
        None => None,
        Some(p) => Some(prepare_preview(s, d, p, &key_type).await?),
    };
    if let Some(setup) = &d.setup {
        // Setup statements often create what the batch uses, so only their syntax can be checked
        // here; a PREPARE would fail on names the setup itself creates.
        s.client
            .prepare(setup)
            .await
            .map_err(|e| prepare_failed(d, "setup", &e, setup))?;
    }
    let bound = prepare_bound(s, d, kind).await?;
    check_start_key(s, d, kind).await?;
    Ok(Prepared {
        kind,
        batch,
        count,
        preview,
        bound,
    })
}

/// The table exists, and its key column is an integer or uuid, NOT NULL, and leads a valid btree
/// index.
async fn key_kind(s: &Session, d: &Definition) -> Result<KeyKind> {
    let table = d.table_sql();
    let exists: bool = s
        .client
        .query_one(TABLE_EXISTS, &[&table])
        .await
        .map_err(|e| Error::db(format!("looking up table {}", d.table), &e))?
        .get(0);
    if !exists {
        return Err(bad(
            d,
            format!("table {} does not exist in this database", d.table),
        ));
    }
    let rows = s
        .client
        .query(KEY_COLUMN, &[&table, &d.key])
        .await
        .map_err(|e| Error::db(format!("looking up key column {}.{}", d.table, d.key), &e))?;
    let Some(row) = rows.first() else {
        return Err(bad(
            d,
            format!("table {} has no column {:?}", d.table, d.key),
        ));
    };
    let (type_name, not_null, indexed): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    let kind = KeyKind::from_type_name(&type_name).ok_or_else(|| {
        bad(
            d,
            format!(
                "key column {} is {type_name}; keyset batches need an integer or uuid key",
                d.key
            ),
        )
    })?;
    if !not_null {
        return Err(bad(
            d,
            format!(
                "key column {} is nullable: rows with a NULL key would never be in a batch; use a NOT NULL key such as the primary key",
                d.key
            ),
        ));
    }
    if !indexed {
        return Err(bad(
            d,
            format!(
                "key column {} is not the leading column of a valid btree index: every batch would scan the table; index it or use the primary key",
                d.key
            ),
        ));
    }
    Ok(kind)
}

/// The preview as rows of JSON text, and whether it takes the key bounds.
async fn prepare_preview(
    s: &Session,
    d: &Definition,
    preview: &str,
    key_type: &Type,
) -> Result<(Statement, bool)> {
    let with_bounds = !super::definition::params(preview).is_empty();
    let sql = queries::preview(&inner(preview));
    let types = if with_bounds {
        vec![key_type.clone(), key_type.clone()]
    } else {
        vec![]
    };
    let stmt = s
        .client
        .prepare_typed(&sql, &types)
        .await
        .map_err(|e| prepare_failed(d, "preview", &e, preview))?;
    Ok((stmt, with_bounds))
}

/// The next batch's upper bound: the `$2`-th key after `$1`.
async fn prepare_bound(s: &Session, d: &Definition, kind: KeyKind) -> Result<Statement> {
    let (table, key) = (d.table_sql(), d.key_sql());
    let bound_sql = queries::next_bound(&table, &key, kind == KeyKind::Int);
    s.client
        .prepare_typed(&bound_sql, &[kind.param_type(), Type::INT8])
        .await
        .map_err(|e| {
            Error::db(
                format!("preparing the key bound query of backfill {}", d.name),
                &e,
            )
        })
}

/// No row may have the key before the first batch's (it would be skipped).
async fn check_start_key(s: &Session, d: &Definition, kind: KeyKind) -> Result<()> {
    let (table, key) = (d.table_sql(), d.key_sql());
    let start = kind.start();
    let at_start: bool = async {
        let stmt = s
            .client
            .prepare_typed(&queries::key_exists(&table, &key), &[kind.param_type()])
            .await?;
        Ok::<bool, tokio_postgres::Error>(s.client.query_one(&stmt, &[&start]).await?.get(0))
    }
    .await
    .map_err(|e| Error::db(format!("checking the key range of {}", d.table), &e))?;
    if at_start {
        return Err(bad(
            d,
            format!("a row has key {start}, the value before the first batch: it would be skipped"),
        ));
    }
    Ok(())
}

/// Rows still to do, from the definition's count query.
pub async fn count(s: &Session, d: &Definition, p: &Prepared) -> Result<i64> {
    let row = s.client.query_one(&p.count, &[]).await.map_err(|e| {
        Error::db(
            format!("running the count query of backfill {}", d.name),
            &e,
        )
    })?;
    Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
}

/// The upper bound of the next batch of `size` keys after `after`; `None` when no key is left.
pub async fn next_bound(
    s: &Session,
    p: &Prepared,
    after: Key,
    size: i64,
) -> std::result::Result<Option<Key>, tokio_postgres::Error> {
    let rows = s.client.query(&p.bound, &[&after, &size]).await?;
    match rows.first() {
        Some(r) => Key::from_row(p.kind, r, 0),
        None => Ok(None),
    }
}
