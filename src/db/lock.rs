//! One runner per database: a session-level advisory lock, polled with backoff. It dies with the
//! connection, so a kill -9 leaves no stale lock; `application_name` shows who holds it.

use std::time::{Duration, Instant};

use super::Session;
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
pub use crate::sessions::Holder;

/// Namespaces for advisory lock keys; the key is `hashtextextended(namespace || name, 0)`.
pub const RUNNER: &str = "pgshift:runner:";
pub const BACKFILL: &str = "pgshift:backfill:";
/// One backfill per table at a time: keyed by the table's OID (see [`table_key`]), so `t` and
/// `public.t` are the same table.
pub const BACKFILL_TABLE: &str = "pgshift:backfill-table:";

/// The table's OID as text, or the name as given when no such table exists (then nothing can
/// write to it, and the run fails on its own check with a clear message).
const TABLE_KEY: &str = "SELECT coalesce(to_regclass($1)::oid::text, $1)";

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1 || $2, 0))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended($1 || $2, 0))";

/// `DEV_CREATE_TABLES`: one transaction at a time creates the schema directly, per database.
const DEV_CREATE_TABLES: &str = "SELECT pg_advisory_xact_lock(hashtextextended('pgshift:dev_create_tables:' || current_database(), 0))";

/// Who holds an advisory lock: the session behind it. The functions behind `pg_locks` and
/// `pg_stat_activity` are called directly: through the views, a fresh backend spent about 3 ms of
/// server CPU loading their definitions and joining catalogs, paid by every target of
/// `fleet status`. `a.pid = l.pid` keeps out the rows of prepared transactions (no pid), for
/// which `pg_stat_get_activity(NULL)` would list every backend.
const HOLDER: &str = "WITH k AS (SELECT hashtextextended($1 || $2, 0) AS key)
SELECT a.pid, coalesce(a.application_name, ''), coalesce(pg_get_userbyid(a.usesysid)::text, ''),
       coalesce(host(a.client_addr), 'local'), a.backend_start, coalesce(a.state, ''),
       extract(epoch FROM now() - a.backend_start)::float8
FROM k, pg_lock_status() l, LATERAL pg_stat_get_activity(l.pid) a
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND a.pid = l.pid
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = ((k.key >> 32) & 4294967295)::oid
  AND l.objid = (k.key & 4294967295)::oid";

/// The current holder of the lock `namespace || name`, if any.
pub async fn holder(s: &Session, namespace: &str, name: &str) -> Result<Option<Holder>> {
    let rows = s
        .client
        .query(HOLDER, &[&namespace, &name])
        .await
        .map_err(|e| Error::db("looking up the advisory lock holder", &e))?;
    Ok(rows.first().map(|r| Holder {
        pid: r.get(0),
        application: r.get(1),
        user: r.get(2),
        client: r.get(3),
        since: super::rfc3339(r.get(4)),
        state: r.get(5),
        held_s: r.get(6),
    }))
}

/// Proof that a session holds the runner lock (one runner per database). What must run under it
/// (creating pgshift's tables: [`super::schema::ensure`]) takes `&RunnerLock`, so calling it without
/// the lock does not compile. The lock is the session's: it ends with [`RunnerLock::release`] or
/// when the connection closes (a kill -9 leaves no stale lock).
#[must_use = "the runner lock is held until released or the session ends"]
pub struct RunnerLock<'s> {
    session: &'s Session,
    name: String,
}

impl<'s> RunnerLock<'s> {
    /// The session holding the lock.
    pub fn session(&self) -> &'s Session {
        self.session
    }

    /// Give the lock back while keeping the session open.
    pub async fn release(self) -> Result<()> {
        release(self.session, RUNNER, &self.name).await
    }
}

/// Take the runner lock of `s`'s database, waiting up to `wait` and reporting the holder.
pub async fn acquire_runner<'s>(
    s: &'s Session,
    wait: Duration,
    reporter: &Reporter,
) -> Result<RunnerLock<'s>> {
    let name = runner_name(s);
    acquire(s, RUNNER, &name, wait, reporter).await?;
    Ok(RunnerLock { session: s, name })
}

/// Take the advisory lock, polling with backoff up to `wait`. Reports the holder while waiting.
async fn acquire(
    s: &Session,
    namespace: &str,
    name: &str,
    wait: Duration,
    reporter: &Reporter,
) -> Result<()> {
    // Through a transaction pool the lock would stay on a pooled backend: refuse first.
    super::pooler::require_session(s).await?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut last_holder: Option<Holder> = None;
    loop {
        let got: bool = s
            .client
            .query_one(TRY_LOCK, &[&namespace, &name])
            .await
            .map_err(|e| Error::db("taking the runner lock", &e))?
            .get(0);
        if got {
            return Ok(());
        }
        let h = holder(s, namespace, name).await?;
        if h.as_ref().map(|h| h.pid) != last_holder.as_ref().map(|h| h.pid) {
            if let Some(h) = &h {
                reporter.emit(Event::LockBusy { holder: h.clone() });
            }
            last_holder = h;
        }
        if start.elapsed() >= wait {
            return Err(Error::RunnerLockBusy {
                database: s.conn.dbname(),
                holder: last_holder
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "holder unknown (it may have just finished)".into()),
                waited_s: start.elapsed().as_secs_f64(),
            });
        }
        let remaining = wait.saturating_sub(start.elapsed());
        tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64() * 0.5).min(remaining)).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// One attempt at the lock, without waiting.
pub async fn try_acquire(s: &Session, namespace: &str, name: &str) -> Result<bool> {
    super::pooler::require_session(s).await?;
    Ok(s.client
        .query_one(TRY_LOCK, &[&namespace, &name])
        .await
        .map_err(|e| Error::db("taking an advisory lock", &e))?
        .get(0))
}

pub async fn release(s: &Session, namespace: &str, name: &str) -> Result<()> {
    s.client
        .query_one(UNLOCK, &[&namespace, &name])
        .await
        .map_err(|e| Error::db("releasing the runner lock", &e))?;
    Ok(())
}

/// The [`BACKFILL_TABLE`] lock key's name part for `table` (quoted SQL, e.g. `"public"."t"`).
pub async fn table_key(s: &Session, table: &str) -> Result<String> {
    Ok(s.client
        .query_one(TABLE_KEY, &[&table])
        .await
        .map_err(|e| Error::db(format!("looking up table {table}"), &e))?
        .get(0))
}

/// The runner lock key's name part: the database name.
pub fn runner_name(s: &Session) -> String {
    s.conn.dbname()
}

/// Wait for the `DEV_CREATE_TABLES` lock of this database, held until `tx` ends: replicas falling
/// back at once queue here, and the later ones then find nothing missing.
pub async fn dev_create_tables(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    tx.execute(DEV_CREATE_TABLES, &[])
        .await
        .map_err(|e| Error::db("taking the DEV_CREATE_TABLES lock", &e))?;
    Ok(())
}
