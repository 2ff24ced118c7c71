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
use crate::error::{Error, Result};
// Pure, so the error type can classify any database error with them (`error` is below `db`).
pub use crate::error::pooler::{Evidence, evidence_in, refusal};

const BACKEND_PID: &str = "SELECT pg_backend_pid()";

/// How long the second client may wait for a backend. A pool in session mode that is full queues
/// it (PgBouncer: up to `query_wait_timeout`); a transaction pool would serve it at once from our
/// idle backend. No answer in time therefore means "not shared".
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// Which consecutive transactions to compare: a few, so that a pool with several idle server
/// connections shows itself too.
const ROUNDS: usize = 3;

/// The backend pid serving the next transaction on `client`.
pub async fn backend_pid(client: &Client) -> std::result::Result<i32, tokio_postgres::Error> {
    Ok(pid_from(client, BACKEND_PID).await?.unwrap_or_default())
}

/// The first column of `sql`'s first row as a pid, over the simple protocol (nothing prepared).
/// `None` when the answer has no row: a query that always returns one row got another
/// statement's reply, so this connection's replies are out of step with its queries.
pub async fn pid_from(
    client: &Client,
    sql: &str,
) -> std::result::Result<Option<i32>, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
        _ => None,
    }))
}

/// A pool that lost track of its replies: the first query on a fresh connection was answered
/// with another statement's result. PgBouncer 1.18 in session mode does this now and then when a
/// client is handed a server connection it has just reset: the reply to its own `SET
/// application_name` reaches the client, and every later reply is one query late.
pub fn out_of_step(target: &str, attempts: usize) -> Error {
    Error::Refused(format!(
        "{target}: the connection answered pgshift's first query with another statement's \
         result, {attempts} times in a row, so its replies cannot be matched to its queries. \
         Nothing was run.\n  This is a connection pooler losing track of its replies (seen with \
         PgBouncer 1.18 right after it resets a server connection). Retry; if it persists, \
         connect to PostgreSQL directly (its own port, usually 5432) or upgrade the pooler."
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_step_reply_says_nothing_ran() {
        let e = out_of_step("postgres://app@db:6432/prod", 4);
        let text = e.to_string();
        for needle in [
            "4 times",
            "Nothing was run",
            "PgBouncer",
            "directly",
            "6432/prod",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert_eq!(e.exit_code(), crate::error::ExitCode::Failed);
    }
}
