//! Connection poolers in front of the database (PgBouncer, RDS Proxy, Supavisor ...).
//!
//! pgshift needs one server session per connection for the whole run: the runner lock is a
//! session-level advisory lock, `lock_timeout`/`statement_timeout` are `SET` on the session, and
//! queries use prepared statements. A pool in *session* mode gives exactly that. A pool in
//! *transaction* (or statement) mode hands each transaction to whichever server connection is
//! free: the advisory lock then stays behind on a pooled backend (two runners could share it and
//! both "hold" the re-entrant lock), SETs land on the wrong backend, and prepared statements clash
//! (`prepared statement "s4" already exists`, 42P05) or vanish (26000).
//!
//! So a transaction-pooled connection is detected before anything runs and refused (exit 2):
//! - on every new session, the backend pid is read twice, in two transactions (it must not change);
//! - before the runner lock, a second client connection must get a backend of its own while ours
//!   is idle (under transaction pooling it gets ours);
//! - the prepared-statement errors above, whenever they happen, are reported as this refusal.
//!
//! Every probe uses the simple query protocol: no prepared statement, which a transaction pool
//! could not carry either.

use std::time::Duration;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::Session;
use crate::error::{DbFailure, Error, Result};

const BACKEND_PID: &str = "SELECT pg_backend_pid()";

/// How long the second client may wait for a backend. A pool in session mode that is full queues
/// it (PgBouncer: up to `query_wait_timeout`); a transaction pool would serve it at once from our
/// idle backend. No answer in time therefore means "not shared".
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// Which consecutive transactions to compare: a few, so that a pool with several idle server
/// connections shows itself too.
const ROUNDS: usize = 3;

/// What showed that a connection is pooled per transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// One client connection, consecutive transactions, different server backends.
    PidChanged { first: i32, then: i32 },
    /// Two client connections served by the same server backend.
    SharedBackend { pid: i32 },
    /// The server lost or already had one of our prepared statements (42P05 / 26000).
    PreparedStatement { failure: String },
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::PidChanged { first, then } => write!(
                f,
                "two consecutive transactions on one connection ran on different server backends (pid {first}, then pid {then})"
            ),
            Evidence::SharedBackend { pid } => write!(
                f,
                "a second connection was served by the same server backend (pid {pid}) as the first"
            ),
            Evidence::PreparedStatement { failure } => write!(
                f,
                "the server did not keep this connection's prepared statements: {failure}"
            ),
        }
    }
}

/// The refusal: what was detected, why a migration needs a session, and the fix.
pub fn refusal(target: &str, evidence: &Evidence) -> Error {
    Error::TransactionPooler(format!(
        "{target} goes through a connection pooler in transaction (or statement) mode, \
         e.g. PgBouncer pool_mode = transaction: {evidence}.\n  \
         pgshift needs one server session for the whole run: the runner lock is a session \
         advisory lock, lock_timeout and statement_timeout are SET on the session, and queries \
         use prepared statements. Through a transaction pool the lock would stay behind on a \
         pooled server connection and two runners could both hold it. Nothing was run.\n  \
         Connect to PostgreSQL directly (its own port, usually 5432, not the pooler's 6432), \
         or through a pool with pool_mode = session."
    ))
}

/// The backend pid serving the next transaction on `client`.
pub async fn backend_pid(client: &Client) -> std::result::Result<i32, tokio_postgres::Error> {
    pid_from(client, BACKEND_PID).await
}

/// The first column of `sql`'s first row as a pid, over the simple protocol (nothing prepared).
pub async fn pid_from(
    client: &Client,
    sql: &str,
) -> std::result::Result<i32, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
            _ => None,
        })
        .unwrap_or_default())
}

/// The cheap check every new session gets: the pid read again in a second transaction.
pub async fn check_stable(s: &Session) -> Result<()> {
    let then = backend_pid(&s.client)
        .await
        .map_err(|e| Error::db("reading the backend pid", &e))?;
    if then != s.pid {
        return Err(refusal(
            &s.conn.redacted(),
            &Evidence::PidChanged { first: s.pid, then },
        ));
    }
    Ok(())
}

/// The full check before a run takes the runner lock: our backend stays ours across transactions,
/// and a second client, connected meanwhile, is not served by it while ours is idle.
pub async fn require_session(s: &Session) -> Result<()> {
    use std::sync::atomic::Ordering;
    if s.session_verified.load(Ordering::Relaxed) {
        return Ok(());
    }
    probe_second_client(s).await?;
    s.session_verified.store(true, Ordering::Relaxed);
    Ok(())
}

async fn probe_second_client(s: &Session) -> Result<()> {
    let probe = match Session::connect(&s.conn, "pooler-probe").await {
        Ok(p) => p,
        // A pool that refuses a second client (full, or limited per user) says nothing about its
        // mode; the checks on `s` itself still run.
        Err(e @ Error::TransactionPooler(_)) => return Err(e),
        Err(e) => {
            tracing::debug!("pooler probe: no second connection: {e}");
            return check_stable(s).await;
        }
    };
    for _ in 0..ROUNDS {
        check_stable(s).await?;
        let theirs = match tokio::time::timeout(PROBE_WAIT, backend_pid(&probe.client)).await {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => return Err(Error::db("probing for a connection pooler", &e)),
            Err(_) => return Ok(()),
        };
        if theirs == s.pid {
            return Err(refusal(
                &s.conn.redacted(),
                &Evidence::SharedBackend { pid: theirs },
            ));
        }
    }
    Ok(())
}

/// Errors that only a transaction pool causes for pgshift's own statements: tokio-postgres names
/// its prepared statements `s0`, `s1`, ..., so "prepared statement "s4" already exists" (42P05)
/// or "... does not exist" (26000) means another client's statements share our backend, or ours
/// were left on another one.
pub fn evidence_in(failure: &DbFailure) -> Option<Evidence> {
    let ours = |m: &str| {
        m.strip_prefix("prepared statement \"s")
            .and_then(|rest| rest.split_once('"'))
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    ((failure.is("42P05") || failure.is("26000")) && ours(&failure.message)).then(|| {
        Evidence::PreparedStatement {
            failure: failure.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(state: &str, message: &str) -> DbFailure {
        DbFailure {
            sqlstate: Some(state.into()),
            message: message.into(),
            detail: None,
            hint: None,
            line: None,
        }
    }

    #[test]
    fn prepared_statement_clashes_of_our_own_statements_point_to_a_pooler() {
        assert!(
            evidence_in(&failure(
                "42P05",
                "prepared statement \"s4\" already exists"
            ))
            .is_some()
        );
        assert!(
            evidence_in(&failure(
                "26000",
                "prepared statement \"s0\" does not exist"
            ))
            .is_some()
        );
        // A migration's own PREPARE is the migration's business.
        assert!(
            evidence_in(&failure(
                "42P05",
                "prepared statement \"fetch\" already exists"
            ))
            .is_none()
        );
        assert!(evidence_in(&failure("42P01", "relation \"s4\" does not exist")).is_none());
    }

    #[test]
    fn the_refusal_says_what_why_and_the_fix() {
        let e = refusal(
            "postgres://app@db:6432/prod",
            &Evidence::SharedBackend { pid: 42 },
        );
        let text = e.to_string();
        for needle in [
            "transaction",
            "pid 42",
            "advisory lock",
            "SET",
            "prepared statements",
            "pool_mode = session",
            "directly",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert_eq!(e.exit_code(), crate::error::ExitCode::Usage);
    }
}
