//! Lock conflicts: who blocks whom, from `pg_blocking_pids`, for retries and the TUI's lock pane.

use super::Session;
use crate::error::{Error, Result};
pub use crate::sessions::{Blocker, blocked_by};

const BLOCKERS_OF: &str = "SELECT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, ''),
       coalesce(a.state, ''), extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, '')
FROM pg_stat_activity a
WHERE a.pid = ANY (pg_blocking_pids($1))
ORDER BY a.xact_start NULLS LAST";

/// Sessions blocking `pid` right now.
pub async fn blockers_of(s: &Session, pid: i32) -> Result<Vec<Blocker>> {
    let rows = s
        .client
        .query(BLOCKERS_OF, &[&pid])
        .await
        .map_err(|e| Error::db("looking up blocking sessions", &e))?;
    Ok(rows.iter().map(blocker_from_row).collect())
}

fn blocker_from_row(r: &tokio_postgres::Row) -> Blocker {
    Blocker {
        pid: r.get(0),
        user: r.get(1),
        application: r.get(2),
        state: r.get(3),
        xact_age_s: r.get(4),
        query: r.get(5),
    }
}

/// A session waiting for a lock, and who blocks it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Conflict {
    pub waiter: Blocker,
    pub waiting_s: f64,
    /// What it waits for, e.g. `relation documents (AccessExclusiveLock)`.
    pub wants: String,
    pub blockers: Vec<Blocker>,
}

const WAITERS: &str = "SELECT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, ''),
       coalesce(a.state, ''), extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, ''),
       coalesce(extract(epoch FROM now() - l.waitstart)::float8, extract(epoch FROM now() - a.state_change)::float8, 0),
       coalesce(l.locktype || coalesce(' ' || l.relation::regclass::text, '') || ' (' || l.mode || ')', ''),
       pg_blocking_pids(a.pid)
FROM pg_stat_activity a
LEFT JOIN LATERAL (SELECT * FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1) l ON true
WHERE a.datname = current_database() AND cardinality(pg_blocking_pids(a.pid)) > 0
ORDER BY 7 DESC";

const SESSIONS: &str = "SELECT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, ''),
       coalesce(a.state, ''), extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, '')
FROM pg_stat_activity a WHERE a.pid = ANY ($1)";

/// Every lock wait in the current database with its blockers (one round trip for waiters, one for
/// their blockers).
pub async fn conflicts(s: &Session) -> Result<Vec<Conflict>> {
    let rows = s
        .client
        .query(WAITERS, &[])
        .await
        .map_err(|e| Error::db("reading lock waits", &e))?;
    let mut all_blockers: Vec<i32> = rows.iter().flat_map(|r| r.get::<_, Vec<i32>>(8)).collect();
    all_blockers.sort_unstable();
    all_blockers.dedup();
    let sessions = s
        .client
        .query(SESSIONS, &[&all_blockers])
        .await
        .map_err(|e| Error::db("reading blocking sessions", &e))?;
    let sessions: Vec<Blocker> = sessions.iter().map(blocker_from_row).collect();
    Ok(rows
        .iter()
        .map(|r| {
            let pids: Vec<i32> = r.get(8);
            Conflict {
                waiter: blocker_from_row(r),
                waiting_s: r.get(6),
                wants: r.get(7),
                blockers: sessions
                    .iter()
                    .filter(|b| pids.contains(&b.pid))
                    .cloned()
                    .collect(),
            }
        })
        .collect())
}

const CANCEL: &str = "SELECT pg_cancel_backend($1)";
const TERMINATE: &str = "SELECT pg_terminate_backend($1)";

/// What to send a blocking session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `pg_cancel_backend`: end its running statement.
    Cancel,
    /// `pg_terminate_backend`: end its session.
    Terminate,
}

impl Signal {
    pub fn verb(self) -> &'static str {
        match self {
            Signal::Cancel => "cancel",
            Signal::Terminate => "terminate",
        }
    }

    fn query(self) -> &'static str {
        match self {
            Signal::Cancel => CANCEL,
            Signal::Terminate => TERMINATE,
        }
    }

    /// Exactly what [`signal`] runs, with the pid it binds written in, for a confirmation.
    pub fn sql(self, pid: i32) -> String {
        format!("{};", self.query().replace("$1", &pid.to_string()))
    }
}

/// `pg_cancel_backend` / `pg_terminate_backend` of a blocker. Returns whether the signal was sent.
pub async fn signal(s: &Session, pid: i32, signal: Signal) -> Result<bool> {
    let row = s
        .client
        .query_one(signal.query(), &[&pid])
        .await
        .map_err(|e| Error::db(format!("signalling pid {pid}"), &e))?;
    Ok(row.get(0))
}

/// Whether `pid` still holds a lock others could wait for (anything but its own virtual
/// transaction id): a cancelled query in autocommit or an aborted transaction releases them, a
/// session idle in transaction keeps them.
const HOLDS_LOCKS: &str =
    "SELECT count(*) FROM pg_locks WHERE pid = $1 AND granted AND locktype <> 'virtualxid'";

const STATE_OF: &str = "SELECT coalesce(state, '') FROM pg_stat_activity WHERE pid = $1";

/// The state of `pid` when it still holds locks after a signal; `None` when it released them or
/// is gone.
pub async fn still_holding(s: &Session, pid: i32) -> Result<Option<String>> {
    let held: i64 = s
        .client
        .query_one(HOLDS_LOCKS, &[&pid])
        .await
        .map_err(|e| Error::db(format!("checking the locks of pid {pid}"), &e))?
        .get(0);
    if held == 0 {
        return Ok(None);
    }
    let state = s
        .client
        .query_opt(STATE_OF, &[&pid])
        .await
        .map_err(|e| Error::db(format!("reading the state of pid {pid}"), &e))?
        .map(|r| r.get::<_, String>(0));
    Ok(state)
}

const HOLDERS_OF: &str = "SELECT DISTINCT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, ''),
       coalesce(a.state, ''), extract(epoch FROM now() - a.xact_start)::float8, coalesce(a.query, '')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.relation = to_regclass($1) AND l.granted AND a.pid <> pg_backend_pid()";

/// Sessions holding a lock on `table` (a quoted name) now: who to name when a wait on it timed
/// out and there is no waiter left to ask `pg_blocking_pids` about.
pub async fn holders_of(s: &Session, table: &str) -> Result<Vec<Blocker>> {
    let rows = s
        .client
        .query(HOLDERS_OF, &[&table])
        .await
        .map_err(|e| Error::db(format!("looking up the sessions holding {table}"), &e))?;
    Ok(rows.iter().map(blocker_from_row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmation_shows_the_statement_that_runs() {
        assert_eq!(Signal::Cancel.sql(4121), "SELECT pg_cancel_backend(4121);");
        assert_eq!(
            Signal::Terminate.sql(4121),
            "SELECT pg_terminate_backend(4121);"
        );
    }
}
