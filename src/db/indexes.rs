//! INVALID indexes left behind by a failed `CREATE INDEX CONCURRENTLY`: found for `status`, and
//! dropped before a retry of the statement that left them.

use super::Session;
use crate::error::{Error, Result};
use crate::event::{Level, Reporter};

/// Asked first: one scan of `pg_index`. The named list joins catalogs, which costs a fresh backend
/// about a millisecond of server CPU (every target of `fleet status`), and is almost always empty.
const ANY_INVALID: &str = "SELECT EXISTS (SELECT FROM pg_index WHERE NOT indisvalid)";

const INVALID_INDEXES: &str = "SELECT n.nspname || '.' || c.relname, t.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1";

const IS_INVALID: &str =
    "SELECT NOT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidIndex {
    pub index: String,
    pub table: String,
}

pub async fn invalid(s: &Session) -> Result<Vec<InvalidIndex>> {
    let any: bool = s
        .client
        .query_one(ANY_INVALID, &[])
        .await
        .map_err(|e| Error::db("looking for INVALID indexes", &e))?
        .get(0);
    if !any {
        return Ok(vec![]);
    }
    let rows = s
        .client
        .query(INVALID_INDEXES, &[])
        .await
        .map_err(|e| Error::db("looking for INVALID indexes", &e))?;
    Ok(rows
        .iter()
        .map(|r| InvalidIndex {
            index: r.get(0),
            table: r.get(1),
        })
        .collect())
}

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON ...` creates, as written.
pub fn concurrent_index_name(stmt: &str) -> Option<String> {
    let words: Vec<&str> = stmt.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    let mut i = 0;
    let expect = |w: &str, i: &mut usize| {
        if lower.get(*i).map(String::as_str) == Some(w) {
            *i += 1;
            true
        } else {
            false
        }
    };
    if !expect("create", &mut i) {
        return None;
    }
    expect("unique", &mut i);
    if !(expect("index", &mut i) && expect("concurrently", &mut i)) {
        return None;
    }
    if expect("if", &mut i) && !(expect("not", &mut i) && expect("exists", &mut i)) {
        return None;
    }
    let name = words.get(i)?;
    (!name.eq_ignore_ascii_case("on")).then(|| name.to_string())
}

/// Before (re)running a CONCURRENTLY index build, drop an INVALID index of the same name that a
/// failed attempt left: otherwise the retry fails on "already exists" or, with IF NOT EXISTS,
/// silently keeps an index the planner never uses.
pub async fn drop_invalid_before_retry(
    s: &Session,
    stmt: &str,
    reporter: &Reporter,
) -> std::result::Result<(), tokio_postgres::Error> {
    let Some(name) = concurrent_index_name(stmt) else {
        return Ok(());
    };
    let invalid: Option<bool> = s
        .client
        .query_opt(IS_INVALID, &[&name])
        .await?
        .map(|r| r.get(0));
    if invalid == Some(true) {
        reporter.log(
            Level::Warn,
            format!("dropping INVALID index {name} left by a failed CREATE INDEX CONCURRENTLY before retrying"),
        );
        // `name` is the identifier exactly as the migration wrote it (already valid SQL there).
        s.client
            .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::concurrent_index_name;

    #[test]
    fn finds_the_name_of_a_concurrent_index_build() {
        assert_eq!(
            concurrent_index_name(
                "CREATE INDEX CONCURRENTLY documents_source_idx ON documents (source_id)"
            ),
            Some("documents_source_idx".into())
        );
        assert_eq!(
            concurrent_index_name("create unique index concurrently if not exists \"Ix\" on t(x)"),
            Some("\"Ix\"".into())
        );
        assert_eq!(concurrent_index_name("CREATE INDEX i ON t(x)"), None);
        assert_eq!(
            concurrent_index_name("CREATE INDEX CONCURRENTLY ON t(x)"),
            None
        );
    }
}
