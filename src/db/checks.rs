//! What the checklist's automatic checks read from the server: WAL archiving, the age of the time
//! a backup command printed, and the role's privileges. (The last migration run comes from
//! [`super::audit::last_migration_run`], shared with `health`.)

use super::Session;
use crate::error::{Error, Result};

const ARCHIVER: &str = "SELECT current_setting('archive_mode'), last_archived_time::text,
       extract(epoch FROM now() - last_archived_time)::float8, failed_count, last_failed_time::text
FROM pg_stat_archiver";
const AGE_OF_TIMESTAMP: &str =
    "SELECT $1::text::timestamptz::text, extract(epoch FROM now() - $1::text::timestamptz)::float8";
const AGE_OF_EPOCH: &str = "SELECT to_timestamp($1::text::float8)::text, extract(epoch FROM now() - to_timestamp($1::text::float8))::float8";
const PRIVILEGES: &str =
    "SELECT current_user::text, has_database_privilege(current_database(), 'CREATE'),
       has_schema_privilege(current_schema(), 'CREATE'), current_schema()::text";

/// `pg_stat_archiver` with the server's `archive_mode`.
pub struct Archiver {
    pub mode: String,
    /// When WAL was last archived, as the server prints it.
    pub last: Option<String>,
    /// Seconds since then.
    pub age_s: Option<f64>,
    pub failed: i64,
    pub last_failed: Option<String>,
}

pub async fn archiver(s: &Session) -> Result<Archiver> {
    let row = s
        .client
        .query_one(ARCHIVER, &[])
        .await
        .map_err(|e| Error::db("reading pg_stat_archiver", &e))?;
    Ok(Archiver {
        mode: row.get(0),
        last: row.get(1),
        age_s: row.get(2),
        failed: row.get(3),
        last_failed: row.get(4),
    })
}

/// A time as the server prints it and its age in seconds, from `text`: Unix seconds when it is
/// all digits (and dots), else an RFC 3339 (or any PostgreSQL) timestamp. The error is the
/// server's word on text that is neither.
pub async fn age_of(
    s: &Session,
    text: &str,
) -> std::result::Result<(String, f64), tokio_postgres::Error> {
    let query = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        AGE_OF_EPOCH
    } else {
        AGE_OF_TIMESTAMP
    };
    let row = s.client.query_one(query, &[&text]).await?;
    Ok((row.get(0), row.get(1)))
}

/// The connected role's CREATE privileges.
pub struct Privileges {
    pub role: String,
    pub on_database: bool,
    pub on_schema: bool,
    pub schema: Option<String>,
}

pub async fn privileges(s: &Session) -> Result<Privileges> {
    let row = s
        .client
        .query_one(PRIVILEGES, &[])
        .await
        .map_err(|e| Error::db("reading privileges", &e))?;
    Ok(Privileges {
        role: row.get(0),
        on_database: row.get(1),
        on_schema: row.get(2),
        schema: row.get(3),
    })
}
