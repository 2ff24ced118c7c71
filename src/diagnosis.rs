//! The runbook's "Common Migration Failures & Solutions", keyed by what the server said: a
//! database error reduced to [`DbFailure`], each failure class with the next step for the operator.
//! A leaf: `error` builds on it, never the other way round.

/// A database error reduced to what an operator needs: SQLSTATE, message, detail, hint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbFailure {
    pub sqlstate: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// Where in the SQL it failed (1-based line), when the server told us.
    pub line: Option<usize>,
}

impl DbFailure {
    /// A server error with just a SQLSTATE and a message (for classifying tests).
    #[cfg(test)]
    pub(crate) fn server(state: &str, message: &str) -> Self {
        DbFailure {
            sqlstate: Some(state.into()),
            message: message.into(),
            detail: None,
            hint: None,
            line: None,
        }
    }

    pub fn from_pg(err: &tokio_postgres::Error, sql: Option<&str>) -> Self {
        match err.as_db_error() {
            Some(db) => {
                let line = match (db.position(), sql) {
                    (Some(tokio_postgres::error::ErrorPosition::Original(pos)), Some(sql)) => {
                        Some(line_of_char(sql, *pos as usize))
                    }
                    _ => None,
                };
                DbFailure {
                    sqlstate: Some(db.code().code().to_string()),
                    message: db.message().to_string(),
                    detail: db.detail().map(str::to_string),
                    hint: db.hint().map(str::to_string),
                    line,
                }
            }
            None => DbFailure {
                sqlstate: None,
                message: err.to_string(),
                detail: None,
                hint: None,
                line: None,
            },
        }
    }

    pub fn is(&self, state: &str) -> bool {
        self.sqlstate.as_deref() == Some(state)
    }

    /// The server ended the session (terminated, shutting down) or the link broke.
    pub fn is_connection_loss(&self) -> bool {
        matches!(self.sqlstate.as_deref(), Some(s) if s.starts_with("08") || matches!(s, "57P01" | "57P02" | "57P03"))
    }
}

fn line_of_char(sql: &str, pos: usize) -> usize {
    sql.chars()
        .take(pos.saturating_sub(1))
        .filter(|c| *c == '\n')
        .count()
        + 1
}

impl std::fmt::Display for DbFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(state) = &self.sqlstate {
            write!(f, " ({state})")?;
        }
        if let Some(line) = self.line {
            write!(f, " at line {line}")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// A runbook failure class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Diagnosis {
    ConnectionTimeout,
    ConnectionRefused,
    AuthenticationFailed,
    UnknownDatabase,
    PermissionDenied,
    DiskFull,
    LockConflict,
    Deadlock,
    StatementTimeout,
    /// 57014 from a cancel request (Ctrl-C, SIGTERM, the TUI, `pg_cancel_backend`), not a timeout.
    Canceled,
    /// 57P01-57P03: the server ended the session (terminated, shutting down, restarting).
    Terminated,
    ReadOnly,
    AlreadyExists,
    MissingObject,
}

impl Diagnosis {
    pub fn of(failure: &DbFailure) -> Option<Diagnosis> {
        let state = failure.sqlstate.as_deref().unwrap_or("");
        Some(match state {
            "42501" => Diagnosis::PermissionDenied,
            "53100" => Diagnosis::DiskFull,
            "55P03" => Diagnosis::LockConflict,
            "40P01" => Diagnosis::Deadlock,
            // One SQLSTATE for both; only the message tells a timeout from a cancel request.
            "57014" if failure.message.contains("statement timeout") => Diagnosis::StatementTimeout,
            "57014" => Diagnosis::Canceled,
            "57P01" | "57P02" | "57P03" => Diagnosis::Terminated,
            "25006" => Diagnosis::ReadOnly,
            "42P07" | "42701" | "42710" => Diagnosis::AlreadyExists,
            "42P01" | "42703" | "42704" => Diagnosis::MissingObject,
            "28P01" | "28000" => Diagnosis::AuthenticationFailed,
            "3D000" => Diagnosis::UnknownDatabase,
            _ if failure.message.contains("could not write to file")
                || failure.message.contains("No space left") =>
            {
                Diagnosis::DiskFull
            }
            _ => return None,
        })
    }

    pub const ALL: [Diagnosis; 14] = [
        Diagnosis::ConnectionTimeout,
        Diagnosis::ConnectionRefused,
        Diagnosis::AuthenticationFailed,
        Diagnosis::UnknownDatabase,
        Diagnosis::PermissionDenied,
        Diagnosis::DiskFull,
        Diagnosis::LockConflict,
        Diagnosis::Deadlock,
        Diagnosis::StatementTimeout,
        Diagnosis::Canceled,
        Diagnosis::Terminated,
        Diagnosis::ReadOnly,
        Diagnosis::AlreadyExists,
        Diagnosis::MissingObject,
    ];

    /// The class whose advice a message already carries (connect errors are text by then).
    pub fn in_text(text: &str) -> Option<Diagnosis> {
        Diagnosis::ALL
            .into_iter()
            .find(|d| text.contains(d.next_step()))
    }

    /// What to do next, in the runbook's words, adapted to what the server said.
    pub fn next_step(self) -> &'static str {
        match self {
            Diagnosis::ConnectionTimeout => {
                "Connection timeout: check the database server is up, the network path and firewall rules; raise connect_timeout in the URL if the link is slow."
            }
            Diagnosis::ConnectionRefused => {
                "Connection refused: nothing listens at that host and port. Check the server is running and the port is right."
            }
            Diagnosis::AuthenticationFailed => {
                "Authentication failed: check the user, and the password in ~/.pgpass, PGPASSWORD or the target's password_env."
            }
            Diagnosis::UnknownDatabase => {
                "The database does not exist: check dbname in the URL or target."
            }
            Diagnosis::PermissionDenied => {
                "Permission denied: the role needs CREATE/ALTER privileges on the schema and ownership of the tables it alters (e.g. GRANT CREATE ON SCHEMA public TO <role>). Check role assignments and security policies."
            }
            Diagnosis::DiskFull => {
                "Disk space: the server could not write. Check free space on the database volume, clean up temporary files, or scale storage, then retry."
            }
            Diagnosis::LockConflict => {
                "Lock conflict: a long-running transaction holds a lock this step needs. Find it in the lock pane or `pgshift status`, let it finish or end it if safe, or run during low traffic."
            }
            Diagnosis::Deadlock => {
                "Deadlock: another session took locks in the opposite order. Retry; if it repeats, find the competing job."
            }
            Diagnosis::StatementTimeout => {
                "Statement timeout: the step ran longer than statement_timeout. Raise it for this target (--statement-timeout) or move the data work into a backfill."
            }
            Diagnosis::Canceled => {
                "Canceled on request: pgshift was interrupted (Ctrl-C, SIGTERM, SIGHUP, the TUI) or another session ran pg_cancel_backend on it; it was not a timeout. The step's state is stated above; run again when ready."
            }
            Diagnosis::Terminated => {
                "Session terminated: an administrator or tool ended pgshift's connection (pg_terminate_backend), or the server shut down or restarted. Find who in the server log, check `pgshift status`, then run again."
            }
            Diagnosis::ReadOnly => {
                "Read-only: this connection cannot write (a replica, or default_transaction_read_only is on). Point the target at the primary."
            }
            Diagnosis::AlreadyExists => {
                "Already exists: the database has objects the history does not record. If the schema is already right, adopt it with `pgshift stamp REV`."
            }
            Diagnosis::MissingObject => {
                "Missing object: the migration expects something the database lacks. Check `pgshift status` for drift and that earlier migrations ran."
            }
        }
    }
}

/// True when a connection-loss text is the server ending the session, not a network failure.
pub fn is_termination(text: &str) -> bool {
    ["(57P01)", "(57P02)", "(57P03)", "terminating connection"]
        .iter()
        .any(|t| text.contains(t))
}

pub fn next_step(failure: &DbFailure) -> Option<&'static str> {
    Diagnosis::of(failure).map(Diagnosis::next_step)
}

/// Why a connection attempt failed, in words an operator can act on. Never includes a password
/// (tokio-postgres errors do not carry the config).
pub fn connect_reason(err: &tokio_postgres::Error) -> String {
    if err.as_db_error().is_some() {
        let f = DbFailure::from_pg(err, None);
        return match Diagnosis::of(&f) {
            Some(d) => format!("{f}\n  {}", d.next_step()),
            None => f.to_string(),
        };
    }
    let text = full_chain(err);
    let d = if text.contains("timed out") || text.contains("timeout") {
        Some(Diagnosis::ConnectionTimeout)
    } else if text.contains("refused") || text.contains("No such file") {
        Some(Diagnosis::ConnectionRefused)
    } else {
        None
    };
    match d {
        Some(d) => format!("{text}\n  {}", d.next_step()),
        None => text,
    }
}

fn full_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !parts.iter().any(|p| p.contains(&s_text)) {
            parts.push(s_text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(state: &str, message: &str) -> DbFailure {
        DbFailure::server(state, message)
    }

    #[test]
    fn a_cancel_is_not_a_timeout_and_a_termination_is_not_a_network_problem() {
        let of = |s, m| Diagnosis::of(&failure(s, m));
        assert_eq!(
            of("57014", "canceling statement due to user request"),
            Some(Diagnosis::Canceled)
        );
        assert_eq!(
            of("57014", "canceling statement due to statement timeout"),
            Some(Diagnosis::StatementTimeout)
        );
        assert_eq!(
            of(
                "57P01",
                "terminating connection due to administrator command"
            ),
            Some(Diagnosis::Terminated)
        );
        assert!(is_termination(
            "terminating connection due to administrator command (57P01)"
        ));
        assert!(!is_termination("connection closed (08006)"));
    }
}
