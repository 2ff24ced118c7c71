//! Reading a transaction pooler from what went wrong: the evidence (`db::pooler` probes for it
//! on every session) and the refusal, pure so that [`super::Error::db`] can recognise it in any
//! database error.

use super::{DbFailure, Error};

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
    // Leftover statements have a second cause a pid cannot tell apart (a pool of one server
    // connection keeps the pid): a session pool that does not reset its server connections.
    let or_reset = match evidence {
        Evidence::PreparedStatement { .. } => {
            "\n  If the pool already uses pool_mode = session, its server_reset_query left another \
             client's prepared statements on the server connection: set server_reset_query = \
             DISCARD ALL (PgBouncer's default)."
        }
        _ => "",
    };
    Error::TransactionPooler(format!(
        "{target} goes through a connection pooler in transaction (or statement) mode, \
         e.g. PgBouncer pool_mode = transaction: {evidence}.\n  \
         pgshift needs one server session for the whole run: the runner lock is a session \
         advisory lock, lock_timeout and statement_timeout are SET on the session, and queries \
         use prepared statements. Through a transaction pool the lock would stay behind on a \
         pooled server connection and two runners could both hold it. Nothing was run.\n  \
         Connect to PostgreSQL directly (its own port, usually 5432, not the pooler's 6432), \
         or through a pool with pool_mode = session.{or_reset}"
    ))
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

    #[test]
    fn leftover_prepared_statements_also_name_a_session_pool_without_reset() {
        let leftover = Evidence::PreparedStatement {
            failure: "prepared statement \"s0\" already exists (42P05)".into(),
        };
        let text = refusal("pool", &leftover).to_string();
        assert!(text.contains("server_reset_query = DISCARD ALL"), "{text}");
        assert!(text.contains("Nothing was run"), "{text}");
        let moved = refusal("pool", &Evidence::PidChanged { first: 1, then: 2 }).to_string();
        assert!(!moved.contains("server_reset_query"), "{moved}");
    }

    fn failure(state: &str, message: &str) -> DbFailure {
        DbFailure::server(state, message)
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
