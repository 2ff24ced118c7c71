//! Which of the runbook's "Common Migration Failures" happened, and that section's solutions
//! adapted to what was observed (the role lacking a privilege, the blocking pid, the missing file).
//!
//! Builds on `crate::diagnosis::Diagnosis` (SQLSTATE classes) without changing it, and adds the
//! failures that are not server errors: unreachable servers, the runner lock, missing files.

use std::path::Path;

use crate::catalog::CatalogError;
use crate::config::Target;
use crate::diagnosis::Diagnosis;
use crate::error::{DbFailure, Error};
use crate::plan::Drift;
use crate::text::first_line;

/// The runbook's failure sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunbookFailure {
    ConnectionTimeout,
    /// Not a runbook section: the server ended the session (57P01-57P03). The network and
    /// timeouts are fine, so the Connection Timeout advice would send the operator the wrong way.
    SessionTerminated,
    PermissionDenied,
    DiskSpace,
    LockConflict,
    MissingMigrationFiles,
}

impl RunbookFailure {
    /// The runbook's section title.
    pub fn title(self) -> &'static str {
        match self {
            RunbookFailure::ConnectionTimeout => "Connection Timeout",
            RunbookFailure::SessionTerminated => "Session Terminated",
            RunbookFailure::PermissionDenied => "Permission Denied",
            RunbookFailure::DiskSpace => "Disk Space Issues",
            RunbookFailure::LockConflict => "Lock Conflicts",
            RunbookFailure::MissingMigrationFiles => "Missing Migration Files",
        }
    }
}

/// A diagnosed failure: which section, what was seen, what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub failure: RunbookFailure,
    pub section: &'static str,
    pub observed: String,
    pub solutions: Vec<String>,
}

impl Finding {
    fn new(failure: RunbookFailure, observed: impl Into<String>, solutions: Vec<String>) -> Self {
        Finding {
            failure,
            section: failure.title(),
            observed: observed.into(),
            solutions,
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "runbook: {} — observed: {}",
            self.section,
            first_line(&self.observed)
        )?;
        for s in &self.solutions {
            writeln!(f, "  - {s}")?;
        }
        Ok(())
    }
}

/// Diagnose an error from `up`, `startup`, a retry or a check.
pub fn from_error(e: &Error, target: &Target) -> Option<Finding> {
    match e {
        Error::ConnectionLost { reason, .. } if crate::diagnosis::is_termination(reason) => {
            Some(terminated(reason))
        }
        Error::Unreachable { reason, .. } | Error::ConnectionLost { reason, .. } => {
            Some(connection(target, reason))
        }
        Error::RunnerLockBusy { holder, .. } => Some(lock_conflict(holder, &pids_in(holder))),
        Error::LockRetriesExhausted {
            reason, blockers, ..
        } => Some(lock_conflict(
            &format!("{reason}{blockers}"),
            &pids_in(blockers),
        )),
        Error::StepFailed { failure, .. } | Error::Db { failure, .. } => {
            from_failure(failure, target)
        }
        Error::Catalog(c) => Some(catalog(c)),
        Error::Integrity(text) if text.contains("no such migration file") => {
            Some(missing_files_text(text, &target.migrations))
        }
        _ => None,
    }
}

/// Diagnose a failure recorded earlier (an audit row): its SQLSTATE and error text.
pub fn from_recorded(sqlstate: Option<&str>, error: &str, target: &Target) -> Option<Finding> {
    let failure = DbFailure {
        sqlstate: sqlstate.map(str::to_string),
        message: error.to_string(),
        detail: None,
        hint: None,
        line: None,
    };
    if let Some(f) = from_failure(&failure, target) {
        return Some(f);
    }
    if error.contains("another pgshift holds the runner lock") {
        return Some(lock_conflict(error, &pids_in(error)));
    }
    if error.contains("connection was lost") && crate::diagnosis::is_termination(error) {
        return Some(terminated(error));
    }
    if error.contains("cannot connect to") || error.contains("connection was lost") {
        return Some(connection(target, error));
    }
    if error.contains("no such migration file")
        || error.contains("cannot read migrations directory")
    {
        return Some(missing_files_text(error, &target.migrations));
    }
    None
}

/// Applied revisions whose files are gone.
pub fn from_drift(drift: &[Drift], dir: &Path) -> Option<Finding> {
    let missing: Vec<String> = drift
        .iter()
        .filter_map(|d| match d {
            Drift::MissingFile { revision, name } => Some(format!("{revision}_{name}.up.sql")),
            _ => None,
        })
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(missing_files(
        format!(
            "applied but missing from {}: {}",
            dir.display(),
            missing.join(", ")
        ),
        &missing,
        dir,
    ))
}

fn from_failure(failure: &DbFailure, target: &Target) -> Option<Finding> {
    let role = target.conn.user();
    match Diagnosis::of(failure)? {
        Diagnosis::PermissionDenied => {
            let object = failure.message.split(" for ").nth(1).map(str::trim).unwrap_or("the object");
            Some(Finding::new(
                RunbookFailure::PermissionDenied,
                format!("role {role}: {failure}"),
                vec![
                    format!("Verify the permissions of role {role} on {object}: \\dp {object} and \\dn+ in psql."),
                    format!("Check role assignments: \\du {role} (is it a member of the owning role?)."),
                    format!("Ensure {role} has CREATE/ALTER privileges: GRANT CREATE ON SCHEMA public TO {role}; only the owner may ALTER a table: ALTER TABLE ... OWNER TO {role}, or run migrations as the owner."),
                    "Review database security policies (row-level security, event triggers, default privileges).".into(),
                ],
            ))
        }
        Diagnosis::DiskFull => Some(Finding::new(
            RunbookFailure::DiskSpace,
            failure.to_string(),
            vec![
                format!("Check available disk space on the database volume of {} (df -h on the server; SELECT pg_size_pretty(pg_database_size(current_database())))).", target.conn.host()),
                "Clean up temporary files (pgsql_tmp, old WAL if archiving is stuck, unused dumps).".into(),
                "Monitor disk usage trends before retrying large migrations.".into(),
                "Scale storage if needed, then retry: the failed step was rolled back.".into(),
            ],
        )),
        Diagnosis::LockConflict | Diagnosis::Deadlock => {
            let text = failure.to_string();
            Some(lock_conflict(&text, &pids_in(&text)))
        }
        Diagnosis::Terminated => Some(terminated(&failure.to_string())),
        Diagnosis::ConnectionTimeout | Diagnosis::ConnectionRefused | Diagnosis::AuthenticationFailed | Diagnosis::UnknownDatabase => {
            Some(connection(target, &failure.to_string()))
        }
        _ => None,
    }
}

fn connection(target: &Target, reason: &str) -> Finding {
    let (host, port) = (target.conn.host(), target.conn.port());
    Finding::new(
        RunbookFailure::ConnectionTimeout,
        format!("{}: {}", target.conn.redacted(), first_line(reason)),
        vec![
            format!("Check database server status: pg_isready -h {host} -p {port}."),
            format!("Verify network connectivity from this host to {host}:{port}."),
            "Increase the connection timeout: add connect_timeout=30 to the target's URL (PGCONNECT_TIMEOUT for env targets).".into(),
            format!("Check firewall rules and pg_hba.conf for this host -> {host}:{port}."),
        ],
    )
}

fn terminated(observed: &str) -> Finding {
    Finding::new(
        RunbookFailure::SessionTerminated,
        first_line(observed).to_string(),
        vec![
            "The server ended pgshift's session: an administrator or tool ran pg_terminate_backend, or the server shut down or restarted. The server log says which.".into(),
            "The network and timeouts are not the problem; the failure message above says what happened to the step in flight.".into(),
            "Check `pgshift status` (and `pgshift history` for the run's row), then run again once whoever ended it agrees.".into(),
        ],
    )
}

fn lock_conflict(observed: &str, pids: &[i32]) -> Finding {
    let who = if pids.is_empty() {
        "the blocking session".to_string()
    } else {
        format!(
            "pid {}",
            pids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let kill = match pids.first() {
        Some(pid) => format!(
            "Kill blocking processes if safe: SELECT pg_cancel_backend({pid}); then pg_terminate_backend({pid}) if it does not stop."
        ),
        None => {
            "Kill blocking processes if safe (pg_cancel_backend, then pg_terminate_backend).".into()
        }
    };
    Finding::new(
        RunbookFailure::LockConflict,
        observed.to_string(),
        vec![
            format!("Check for long-running transactions: {who} (pgshift status shows the holder; pg_stat_activity shows its query and xact_start)."),
            kill,
            "Schedule the migration during a low-traffic period.".into(),
            "pgshift already fails fast instead of queueing (lock_timeout, like NOWAIT) and retries; raise --retries or --lock-timeout, or --lock-wait for another pgshift run.".into(),
        ],
    )
}

fn catalog(c: &CatalogError) -> Finding {
    match c {
        CatalogError::Unreadable { dir, reason } => missing_files(
            format!(
                "cannot read migrations directory {}: {reason}",
                dir.display()
            ),
            &[],
            dir,
        ),
        CatalogError::Invalid { dir, problems } => {
            let files: Vec<String> = problems.iter().map(|p| p.file.clone()).collect();
            missing_files(
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.file, p.problem))
                    .collect::<Vec<_>>()
                    .join("; "),
                &files,
                dir,
            )
        }
    }
}

/// From the planner's drift message: `  - 0004_name: applied, but no such migration file ...`.
fn missing_files_text(text: &str, dir: &Path) -> Finding {
    let files: Vec<String> = text
        .lines()
        .filter(|l| l.contains("no such migration file"))
        .filter_map(|l| l.trim().trim_start_matches("- ").split(':').next())
        .map(|label| format!("{label}.up.sql"))
        .collect();
    let observed = if files.is_empty() {
        text.to_string()
    } else {
        format!(
            "applied but missing from {}: {}",
            dir.display(),
            files.join(", ")
        )
    };
    missing_files(observed, &files, dir)
}

fn missing_files(observed: String, files: &[String], dir: &Path) -> Finding {
    let which = if files.is_empty() {
        "the missing files".to_string()
    } else {
        files.join(", ")
    };
    Finding::new(
        RunbookFailure::MissingMigrationFiles,
        observed,
        vec![
            format!("Verify migration files: ensure {which} are present in {} (right branch? right image?).", dir.display()),
            format!("Check the migrations dir: --migrations or the target's `migrations` must point at {}.", dir.display()),
            format!("Find removed files: git log --diff-filter=D --name-only -- {}.", dir.display()),
            "If the database is right and the files were removed on purpose, adopt its state with `pgshift stamp REV`.".into(),
        ],
    )
}

/// Backend pids mentioned as `pid N` in a message.
fn pids_in(text: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = text
        .split("pid ")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Revision;

    fn target() -> Target {
        Target {
            name: "t".into(),
            conn: crate::config::ConnInfo::parse("postgres://app:secret@db.example:6432/prod")
                .unwrap(),
            environment: crate::config::Environment::Production,
            guard: crate::config::Guard::default(),
            lock_wait: std::time::Duration::from_secs(1),
            migrations: "migrations".into(),
            scratch_url: None,
            require_checklist_hours: None,
            source: "test".into(),
            expected_replicas: Vec::new(),
            out_of_order: false,
        }
    }

    #[test]
    fn permission_denied_names_the_role_and_object() {
        let f = from_recorded(
            Some("42501"),
            "permission denied for table documents",
            &target(),
        )
        .unwrap();
        assert_eq!(f.failure, RunbookFailure::PermissionDenied);
        assert!(f.observed.contains("role app"), "{f}");
        assert!(f.solutions[0].contains("\\dp table documents"), "{f}");
        assert!(f.solutions[2].contains("TO app"), "{f}");
    }

    #[test]
    fn lock_conflict_names_the_blocking_pid() {
        let e = Error::LockRetriesExhausted {
            action: "upgrade".into(),
            revision: Revision(3),
            reason: "canceling statement due to lock timeout (55P03)".into(),
            cause: crate::error::LockWait::Timeout,
            state: crate::error::Leftover::Nothing,
            attempts: 3,
            blockers: "; blocked by pid 4121 (psql, idle in transaction)".into(),
        };
        let f = from_error(&e, &target()).unwrap();
        assert_eq!(f.failure, RunbookFailure::LockConflict);
        assert!(f.solutions[1].contains("pg_cancel_backend(4121)"), "{f}");
    }

    #[test]
    fn unreachable_is_the_connection_section_without_password() {
        let e = Error::Unreachable {
            target: "x".into(),
            reason: "connection timed out".into(),
        };
        let f = from_error(&e, &target()).unwrap();
        assert_eq!(f.failure, RunbookFailure::ConnectionTimeout);
        assert!(
            f.solutions[0].contains("pg_isready -h db.example -p 6432"),
            "{f}"
        );
        assert!(!f.to_string().contains("secret"));
    }

    #[test]
    fn disk_full_is_the_disk_space_section_naming_the_server() {
        let f = from_recorded(
            Some("53100"),
            "could not extend file \"base/16384/16385\": No space left on device",
            &target(),
        )
        .unwrap();
        assert_eq!(f.failure, RunbookFailure::DiskSpace);
        assert!(f.solutions[0].contains("db.example"), "{f}");
        assert!(from_recorded(Some("42601"), "syntax error at or near \"x\"", &target()).is_none());
    }

    #[test]
    fn a_terminated_session_is_not_a_connection_timeout() {
        let e = Error::ConnectionLost {
            action: "upgrade 0002".into(),
            reason: "terminating connection due to administrator command (57P01); the server ended the session before COMMIT".into(),
        };
        let f = from_error(&e, &target()).unwrap();
        assert_eq!(f.failure, RunbookFailure::SessionTerminated);
        assert!(!f.to_string().contains("Connection Timeout"), "{f}");
        let recorded = from_recorded(
            Some("57P01"),
            "terminating connection due to administrator command",
            &target(),
        )
        .unwrap();
        assert_eq!(recorded.failure, RunbookFailure::SessionTerminated);
        let lost = Error::ConnectionLost {
            action: "upgrade 0002".into(),
            reason: "connection closed (08006)".into(),
        };
        assert_eq!(
            from_error(&lost, &target()).unwrap().failure,
            RunbookFailure::ConnectionTimeout
        );
        let canceled = from_recorded(
            Some("57014"),
            "canceling statement due to user request",
            &target(),
        );
        assert!(canceled.is_none(), "{canceled:?}");
    }

    #[test]
    fn missing_files_from_drift_lists_them() {
        let d = [Drift::MissingFile {
            revision: Revision(5),
            name: "gone".into(),
        }];
        let f = from_drift(&d, Path::new("db/migrations")).unwrap();
        assert_eq!(f.failure, RunbookFailure::MissingMigrationFiles);
        assert!(f.solutions[0].contains("0005_gone.up.sql"), "{f}");
        assert!(from_drift(&[], Path::new("x")).is_none());
    }
}
