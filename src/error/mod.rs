//! The one error type of the core and its mapping to exit codes.
//!
//! Every variant says what happened, why and what to do next; none of them may carry a password.

use std::path::PathBuf;

pub mod pooler;

use crate::catalog::Revision;
/// Re-exported: errors carry it, and callers name it with them.
pub use crate::diagnosis::DbFailure;

/// Process exit codes, as fixed in DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[repr(u8)]
pub enum ExitCode {
    Ok = 0,
    Failed = 1,
    Usage = 2,
    Unreachable = 3,
    LockBusy = 4,
    Integrity = 5,
    Pending = 10,
}

impl ExitCode {
    /// The one rule for `"ok"` in every JSON document: false exactly when the command failed
    /// (1–5). 10 (`status --check`, `health`, a checklist with open items) reports pending work,
    /// which is a finding, not a failure.
    pub fn is_ok(self) -> bool {
        matches!(self, ExitCode::Ok | ExitCode::Pending)
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

/// Why a guarded step gave up waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    Timeout,
    Deadlock,
}

impl LockWait {
    pub fn sqlstate(self) -> &'static str {
        match self {
            LockWait::Timeout => "55P03",
            LockWait::Deadlock => "40P01",
        }
    }
}

/// What a failed step left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// A transactional step: rolled back, nothing applied.
    Nothing,
    /// A no-transaction step: earlier statements stay applied, no history row.
    EarlierStatements,
    /// The step's SQL could not be sent (e.g. a NUL byte): none of it ran, no history row.
    NeverSent,
    /// The step's SQL ended pgshift's transaction itself (its own COMMIT/ROLLBACK): what ran before
    /// that may be committed, no history row.
    EndedBySql,
    /// The connection closed with COMMIT on its way: only the database knows.
    Unknown,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Leftover::Nothing => "Nothing was applied for this step.",
            Leftover::EarlierStatements => {
                "This no-transaction migration's statements before the blocked one stay applied; it is not recorded in history."
            }
            Leftover::NeverSent => "Its SQL was never sent; history is unchanged.",
            Leftover::EndedBySql => {
                "Its SQL ended the transaction itself: what ran before that may be committed; it is not recorded in history."
            }
            Leftover::Unknown => {
                "Whether it committed is unknown: check `pgshift status` before running again."
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },

    #[error("{0}")]
    Catalog(#[from] crate::catalog::CatalogError),

    #[error(
        "cannot connect to {target}: {reason}\n  Check that the server is running and reachable, and the host, port, user and database are right."
    )]
    Unreachable { target: String, reason: String },

    #[error(
        "the database connection was lost while {action}: {reason}\n  Nothing further was run. Check the server, then run `pgshift status` to see what is applied."
    )]
    ConnectionLost { action: String, reason: String },

    #[error(
        "another pgshift holds the runner lock on {database}: {holder}\n  Waited {waited_s:.0}s. Wait for it to finish (see `pgshift status`), or raise --lock-wait."
    )]
    RunnerLockBusy {
        database: String,
        holder: String,
        waited_s: f64,
    },

    #[error(
        "backfill {name} is already running: {holder}\n  Only one run of a backfill at a time. Watch it with `pgshift backfill status`, or pause it with `pgshift backfill pause {name}`."
    )]
    BackfillBusy { name: String, holder: String },

    #[error(
        "backfill {name} not started: another backfill is writing to table {table}: {holder}\n  One backfill per table at a time (their batches would wait on each other's row locks). Watch it with `pgshift backfill status` and run this one when it is done, or pause it with `pgshift backfill pause NAME`."
    )]
    BackfillTableBusy {
        name: String,
        table: String,
        holder: String,
    },

    /// A backfill batch kept hitting lock or statement timeouts until its retries ran out.
    #[error("{0}")]
    BackfillBlocked(String),

    #[error(
        "{action} {revision} failed: {reason} after {attempts} tries{blockers}\n  {state} Retry when the blocker ends, or raise --lock-timeout / --retries (or --terminate-blockers-after if ending the blocker is safe)."
    )]
    LockRetriesExhausted {
        action: String,
        revision: Revision,
        reason: String,
        /// Lock timeout (55P03) or deadlock (40P01) on the last attempt.
        cause: LockWait,
        /// What the step left behind.
        state: Leftover,
        attempts: u32,
        blockers: String,
    },

    #[error("{action} {revision} failed: {failure}{statement}\n  {state}{next}")]
    StepFailed {
        action: String,
        revision: Revision,
        failure: Box<DbFailure>,
        statement: String,
        /// What state the step left behind.
        state: String,
        next: String,
    },

    #[error("{0}")]
    Integrity(String),

    /// A write (`up`, `down`, `stamp`, a backfill) pointed at a standby: refused before anything
    /// ran. `primary` is the host:port it streams from, when the server shows it.
    #[error(
        "refusing to {action}: this database is a standby (a read-only replica; pg_is_in_recovery() is true). Nothing was run.\n  {}",
        match primary {
            Some(p) => format!("Point pgshift at the primary, which this standby streams from: {p}."),
            None => "Point pgshift at the primary (this standby does not show where it streams from: no walreceiver, or the role lacks pg_read_all_stats).".to_string(),
        }
    )]
    Standby {
        action: String,
        primary: Option<String>,
    },

    #[error("{0}")]
    Refused(String),

    #[error("{action} failed: {failure}{next}")]
    Db {
        action: String,
        failure: Box<DbFailure>,
        next: String,
    },

    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Failed(String),

    /// The connection goes through a transaction-pooling pooler (see `db::pooler`).
    #[error("{0}")]
    TransactionPooler(String),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_)
            | Error::Config { .. }
            | Error::Standby { .. }
            | Error::TransactionPooler(_) => ExitCode::Usage,
            Error::Catalog(_) | Error::Integrity(_) => ExitCode::Integrity,
            Error::Unreachable { .. } | Error::ConnectionLost { .. } => ExitCode::Unreachable,
            Error::RunnerLockBusy { .. }
            | Error::BackfillBusy { .. }
            | Error::BackfillTableBusy { .. }
            | Error::BackfillBlocked(_)
            | Error::LockRetriesExhausted { .. } => ExitCode::LockBusy,
            Error::StepFailed { .. }
            | Error::Refused(_)
            | Error::Db { .. }
            | Error::Io { .. }
            | Error::Failed(_) => ExitCode::Failed,
        }
    }

    /// Wrap a database error with the action that was running and what to do next.
    pub fn db(action: impl Into<String>, err: &tokio_postgres::Error) -> Self {
        let action = action.into();
        let failure = DbFailure::from_pg(err, None);
        if let Some(evidence) = pooler::evidence_in(&failure) {
            return pooler::refusal("this connection", &evidence);
        }
        if err.is_closed()
            || failure.is_connection_loss()
            || err.as_db_error().is_none() && is_io(err)
        {
            return Error::ConnectionLost {
                action,
                reason: failure.to_string(),
            };
        }
        let next = crate::diagnosis::next_step(&failure)
            .map(|n| format!("\n  {n}"))
            .unwrap_or_default();
        Error::Db {
            action,
            failure: Box::new(failure),
            next,
        }
    }

    pub fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    /// The SQLSTATE, when a database error is behind this one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::StepFailed { failure, .. } | Error::Db { failure, .. } => {
                failure.sqlstate.as_deref()
            }
            Error::LockRetriesExhausted { cause, .. } => Some(cause.sqlstate()),
            _ => None,
        }
    }

    /// The runbook failure class behind this error, when there is one.
    pub fn diagnosis(&self) -> Option<crate::diagnosis::Diagnosis> {
        use crate::diagnosis::Diagnosis;
        match self {
            Error::StepFailed { failure, .. } | Error::Db { failure, .. } => Diagnosis::of(failure),
            Error::LockRetriesExhausted {
                cause: LockWait::Deadlock,
                ..
            } => Some(Diagnosis::Deadlock),
            Error::LockRetriesExhausted { .. } => Some(Diagnosis::LockConflict),
            Error::Unreachable { reason, .. } => Diagnosis::in_text(reason),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::Config { .. } => "config",
            Error::Catalog(_) => "catalog",
            Error::Unreachable { .. } => "unreachable",
            Error::ConnectionLost { .. } => "connection_lost",
            Error::RunnerLockBusy { .. } => "runner_lock_busy",
            Error::BackfillBusy { .. } => "backfill_busy",
            Error::BackfillTableBusy { .. } => "backfill_table_busy",
            Error::BackfillBlocked(_) => "backfill_blocked",
            Error::LockRetriesExhausted { .. } => "lock_retries_exhausted",
            Error::StepFailed { .. } => "step_failed",
            Error::Integrity(_) => "integrity",
            Error::Standby { .. } => "standby",
            Error::Refused(_) => "refused",
            Error::Db { .. } => "database",
            Error::Io { .. } => "io",
            Error::Failed(_) => "failed",
            Error::TransactionPooler(_) => "transaction_pooler",
        }
    }
}

fn is_io(err: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    let mut source = err.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
