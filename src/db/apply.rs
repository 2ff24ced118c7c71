//! Guarded execution of one plan step: bounded `lock_timeout`, retried by the engine in
//! [`super::retry`] (transient failures, jittered backoff, blockers reported from a separate
//! monitoring connection while the worker waits). A transactional step changes schema and history together or not at all.

use std::time::Instant;

use tokio_postgres::Statement;

use super::Session;
use super::history;
use super::retry::{self, GaveUp, Retrier, Subject, Transient};
use crate::config::Guard;
use crate::error::{Error, Leftover, Result};
use crate::event::{Event, Reporter};
use crate::interrupt::Interrupt;
use crate::plan::{Direction, Step};

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    pub revision: crate::catalog::Revision,
    pub name: String,
    pub attempts: u32,
    pub elapsed_ms: u64,
}

/// When a step's commit reaches disk.
///
/// Every step but the last of a run commits with `synchronous_commit = off`; the last commits
/// normally, and since WAL is flushed in order, that flush makes every earlier step durable too.
/// A server crash mid-run can lose the last few steps, always schema and history together, so the
/// database stays consistent and the next run redoes them. This saves one fsync per migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Deferred,
    Flush,
}

/// Statements prepared once per run (pipelined: one round trip).
pub struct Prepared {
    /// Guarded history writes for transactional steps (see [`history::INSERT_IF_STEP_RAN`]).
    insert_if_ran: Statement,
    delete_if_ran: Statement,
    /// Plain ones for no-transaction steps, written after every statement succeeded.
    insert: Statement,
    delete: Statement,
    /// The run's audit row follows each committed step ([`super::audit::PROGRESS`]).
    progress: Statement,
}

impl Prepared {
    pub async fn new(s: &Session) -> Result<Prepared> {
        let prep = |sql| s.client.prepare(sql);
        let (insert_if_ran, delete_if_ran, insert, delete, progress) = futures_util::future::join5(
            prep(history::INSERT_IF_STEP_RAN),
            prep(history::DELETE_IF_STEP_RAN),
            prep(history::INSERT_APPLIED_WITH_SQL),
            prep(history::DELETE_APPLIED),
            prep(super::audit::PROGRESS),
        )
        .await;
        let failed = |e| Error::db("preparing the history writes", &e);
        Ok(Prepared {
            insert_if_ran: insert_if_ran.map_err(failed)?,
            delete_if_ran: delete_if_ran.map_err(failed)?,
            insert: insert.map_err(failed)?,
            delete: delete.map_err(failed)?,
            progress: progress.map_err(failed)?,
        })
    }
}

/// The connections and settings a run's steps share.
pub struct Runner<'a> {
    pub worker: &'a Session,
    /// Watches for blockers and cancels; never inside a transaction, so it cannot hold up
    /// `CREATE INDEX CONCURRENTLY` on the worker.
    pub monitor: &'a Session,
    pub prepared: &'a Prepared,
    pub guard: &'a Guard,
    pub interrupt: &'a Interrupt,
    pub reporter: &'a Reporter,
    /// The run's `started` audit row, brought up to date by committed steps.
    pub run: Option<&'a super::audit::Progress>,
}

/// Run `step` on the runner's worker, watching for blockers with its monitor.
pub async fn run_step(
    runner: &Runner<'_>,
    step: &Step,
    durability: Durability,
) -> Result<StepReport> {
    let Runner {
        worker,
        prepared,
        guard,
        reporter,
        ..
    } = *runner;
    let start = Instant::now();
    let attempts = if step.no_transaction {
        run_no_transaction(runner, step).await?
    } else {
        retrying(runner, step, &step.sql, || {
            let progress = runner.run.and_then(super::audit::Progress::due);
            run_in_transaction(worker, prepared, step, guard, durability, progress)
        })
        .await
        .map_err(|failed| step_error(step, failed, None))?
    };
    let elapsed = start.elapsed();
    reporter.emit(Event::StepFinished {
        revision: step.revision,
        elapsed,
        attempts,
    });
    Ok(StepReport {
        revision: step.revision,
        name: step.name.clone(),
        attempts,
        elapsed_ms: elapsed.as_millis() as u64,
    })
}

fn session_settings(guard: &Guard, scope: super::Scope) -> String {
    let mut sql = super::set_timeout(scope, "lock_timeout", Some(guard.lock_timeout));
    if let Some(st) = guard.statement_timeout {
        sql.push_str("; ");
        sql.push_str(&super::set_timeout(scope, "statement_timeout", Some(st)));
    }
    sql
}

/// One attempt: BEGIN, guards, the step's SQL, the history row, the audit row's progress, COMMIT,
/// pipelined in one round trip. The server runs them in order, and the history write commits only
/// if the step's SQL ran to its end in this same transaction: the BEGIN sets a transaction-local
/// marker with a fresh token, the SQL's message ends with a statement that extends it, and the
/// write raises unless it sees the extended token (see [`history::INSERT_IF_STEP_RAN`]). So a SQL
/// message that was never sent (a NUL byte cannot be encoded), that failed, or that ended the
/// transaction itself (its own COMMIT or ROLLBACK) cannot leave a history row, and COMMIT then
/// ends an aborted transaction, which is a rollback.
async fn run_in_transaction(
    s: &Session,
    prepared: &Prepared,
    step: &Step,
    guard: &Guard,
    durability: Durability,
    run: Option<i64>,
) -> std::result::Result<(), Failed> {
    let deferred = match durability {
        Durability::Deferred => "; SET LOCAL synchronous_commit = off",
        Durability::Flush => "",
    };
    let token = format!("{}:{:016x}", step.revision, fastrand::u64(..));
    let begin = format!(
        "BEGIN; {}{deferred}; {}",
        session_settings(guard, super::Scope::Local),
        history::step_begun(&token)
    );
    // A newline first: the SQL may end in a `--` comment or without a semicolon.
    let sql = format!("{}\n;{}", step.sql, history::STEP_RAN);
    let marker = history::step_ran_marker(&token);
    let record = async {
        let written = record_history(s, prepared, step, Some(&marker)).await?;
        if let Some(id) = run {
            s.client.execute(&prepared.progress, &[&id]).await?;
        }
        Ok::<u64, tokio_postgres::Error>(written)
    };
    // Counting the statements the server completed names the one that failed at run time.
    let mut completed = 0;
    let script = async {
        use futures_util::StreamExt;
        let stream = s.client.simple_query_raw(&sql).await?;
        futures_util::pin_mut!(stream);
        while let Some(message) = stream.next().await {
            if let tokio_postgres::SimpleQueryMessage::CommandComplete(_) = message? {
                completed += 1;
            }
        }
        Ok(())
    };
    // join4 polls in argument order, and each future sends its message on its first poll.
    let (begin, sql, history, commit) = futures_util::future::join4(
        s.client.batch_execute(&begin),
        script,
        record,
        s.client.batch_execute("COMMIT"),
    )
    .await;
    let failed_in_sql = sql.is_err();
    let failed = attempt_outcome(begin, sql, history.map(|_| ()), commit).map(|mut f| {
        if failed_in_sql {
            f.completed = Some(completed);
        }
        f
    });
    if failed.is_some() && !s.client.is_closed() {
        // Normally COMMIT already ended the aborted transaction; make sure nothing stays open.
        if let Err(e) = s.client.batch_execute("ROLLBACK").await {
            tracing::warn!("rollback after a failed step also failed: {e}");
        }
    }
    failed.map_or(Ok(()), Err)
}

/// A failed attempt: the error that counts, and what it left behind.
pub struct Failed {
    pub error: tokio_postgres::Error,
    pub left: Leftover,
    /// When the step's SQL failed: how many of its statements the server completed before.
    pub completed: Option<usize>,
}

type PgResult = std::result::Result<(), tokio_postgres::Error>;

/// Read what a pipelined attempt left behind from which of its messages failed, and how. Only a
/// response from the server proves what happened to the transaction; a connection that closed
/// without one leaves the outcome unknown, since COMMIT was already on its way.
fn attempt_outcome(
    begin: PgResult,
    sql: PgResult,
    history: PgResult,
    commit: PgResult,
) -> Option<Failed> {
    let fail = |error, left| {
        Some(Failed {
            error,
            left,
            completed: None,
        })
    };
    match (begin, sql, history, commit) {
        (Ok(()), Ok(()), Ok(()), Ok(())) => None,
        (Err(e), ..) => {
            let left = if server_answered(&e) {
                Leftover::Nothing
            } else {
                Leftover::Unknown
            };
            fail(e, left)
        }
        (Ok(()), Err(e), history, _) => {
            let left = if client_side(&e) {
                // Never sent: the guarded write behind it cannot succeed without the marker (it
                // failed on it, or could not be sent either), so nothing of the step commits.
                if history.is_err() {
                    Leftover::NeverSent
                } else {
                    Leftover::Unknown
                }
            } else if ended_session(&e) {
                Leftover::Nothing
            } else if !server_answered(&e) {
                Leftover::Unknown
            } else {
                // A server error in the SQL: the write behind it tells whether the transaction
                // it aborted was still pgshift's.
                match history {
                    Err(h) if history::is_marker_missing(&h) => Leftover::EndedBySql,
                    Err(h) if server_answered(&h) => Leftover::Nothing,
                    _ => Leftover::Unknown,
                }
            };
            fail(e, left)
        }
        (Ok(()), Ok(()), Err(e), _) => {
            let left = if history::is_marker_missing(&e) {
                Leftover::EndedBySql
            } else if server_answered(&e) {
                Leftover::Nothing
            } else {
                Leftover::Unknown
            };
            fail(e, left)
        }
        (Ok(()), Ok(()), Ok(()), Err(e)) => {
            let left = if server_answered(&e) {
                Leftover::Nothing
            } else {
                Leftover::Unknown
            };
            fail(e, left)
        }
    }
}

/// The server answered with an error: it ran the message and knows the transaction failed.
fn server_answered(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some()
}

/// The server ended the session (terminated, shutting down) while running this message: it rolls
/// back the open transaction and reads nothing after.
fn ended_session(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|d| matches!(d.code().code(), "57P01" | "57P02" | "57P03"))
}

/// Failed in the client before it was sent (it cannot be encoded), not on a dead connection.
fn client_side(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_none() && !e.is_closed()
}

async fn record_history(
    s: &Session,
    prepared: &Prepared,
    step: &Step,
    marker: Option<&str>,
) -> std::result::Result<u64, tokio_postgres::Error> {
    match (step.direction, marker) {
        (Direction::Up, marker) => {
            let (v, name, on, sum) = history::row_values(step.revision, &step.name, step.checksum);
            let (up, down, late) = (&step.sql, &step.down, &step.out_of_order);
            match marker {
                Some(m) => {
                    s.client
                        .execute(
                            &prepared.insert_if_ran,
                            &[&v, &name, &on, &sum, up, down, late, &m],
                        )
                        .await
                }
                None => {
                    s.client
                        .execute(&prepared.insert, &[&v, &name, &on, &sum, up, down, late])
                        .await
                }
            }
        }
        (Direction::Down, Some(m)) => {
            s.client
                .execute(&prepared.delete_if_ran, &[&(step.revision.0 as i32), &m])
                .await
        }
        (Direction::Down, None) => {
            s.client
                .execute(&prepared.delete, &[&(step.revision.0 as i32)])
                .await
        }
    }
}

/// A `-- pgshift: no-transaction` step: each statement on its own, each guarded and retried; the
/// history row is written only after every statement succeeded.
async fn run_no_transaction(runner: &Runner<'_>, step: &Step) -> Result<u32> {
    let Runner {
        worker,
        prepared,
        guard,
        reporter,
        ..
    } = *runner;
    let settings = session_settings(guard, super::Scope::Session);
    worker
        .client
        .batch_execute(&settings)
        .await
        .map_err(|e| Error::db("setting lock_timeout", &e))?;
    let mut attempts = 1;
    let result = async {
        for stmt in crate::sql::statements(&step.sql) {
            hold_for_replicas(runner, step).await?;
            reporter.emit(Event::Statement {
                revision: step.revision,
                line: stmt.line,
                text: crate::text::one_line(&stmt.text, 200),
            });
            // A CONCURRENTLY build or drop holds only SHARE UPDATE EXCLUSIVE, which no app read or
            // write conflicts with: its waits (for the lock, then for older transactions) stall
            // nobody, while a lock_timeout would throw away a finished build at its last wait and
            // rebuild it on every retry. So it waits, reported like any blocked step, bounded by
            // statement_timeout, Ctrl-C and --terminate-blockers-after.
            let concurrent = crate::sql::runs_concurrently(&stmt.text);
            if concurrent {
                worker.set_lock_timeout(None).await?;
            }
            let n = retrying(runner, step, &stmt.text, || async {
                let earlier = |error| Failed {
                    error,
                    left: Leftover::EarlierStatements,
                    completed: None,
                };
                super::indexes::drop_invalid_before_retry(worker, &stmt.text, reporter)
                    .await
                    .map_err(earlier)?;
                worker
                    .client
                    .batch_execute(&stmt.text)
                    .await
                    .map_err(earlier)
            })
            .await
            .map_err(|failed| step_error(step, failed, Some(&stmt)))?;
            if concurrent {
                worker.set_lock_timeout(Some(guard.lock_timeout)).await?;
            }
            attempts = attempts.max(n);
        }
        record_history(worker, prepared, step, None)
            .await
            .map_err(|e| Error::db(format!("recording {} in history", step.label()), &e))?;
        if let Some(id) = runner.run.and_then(super::audit::Progress::due) {
            worker
                .client
                .execute(&prepared.progress, &[&id])
                .await
                .map_err(|e| Error::db("updating the run's audit row", &e))?;
        }
        Ok(attempts)
    }
    .await;
    if !worker.client.is_closed()
        && let Err(e) = worker
            .client
            .batch_execute("RESET lock_timeout; RESET statement_timeout")
            .await
    {
        tracing::warn!("resetting session settings failed: {e}");
    }
    result
}

/// What a failed try of a step left behind, for its error.
pub struct Left {
    pub left: Leftover,
    /// When the step's SQL failed: how many of its statements the server completed before.
    pub completed: Option<usize>,
}

/// Run `attempt` under the retry engine: until it succeeds, fails for a reason other than a
/// transient one, or runs out of tries, with blockers reported and Ctrl-C canceling on the
/// server. `sql` is what the attempt runs (for the failing line).
async fn retrying<F, Fut>(
    runner: &Runner<'_>,
    step: &Step,
    sql: &str,
    mut attempt: F,
) -> std::result::Result<u32, GaveUp<Left>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), Failed>>,
{
    let mut retrier = Retrier::new(
        runner.worker,
        runner.guard,
        runner.reporter,
        Subject::Step(step),
    )
    .watched_by(Some(runner.monitor))
    .interrupted_by(runner.interrupt);
    retrier
        .run(|| {
            let tried = attempt();
            async move {
                tried.await.map_err(|f| retry::Failed {
                    error: f.error,
                    sql: Some(sql.to_string()),
                    // Another try is safe only when this one left nothing of its own behind.
                    repeatable: matches!(f.left, Leftover::Nothing | Leftover::EarlierStatements),
                    left: Left {
                        left: f.left,
                        completed: f.completed,
                    },
                })
            }
        })
        .await
}

fn step_error(step: &Step, failed: GaveUp<Left>, stmt: Option<&crate::sql::Statement>) -> Error {
    let GaveUp {
        failure,
        transient,
        left: Left { left, completed },
        blockers,
        tries: attempts,
        ..
    } = failed;
    let action = step.direction.verb().to_string();
    let rev = step.revision;
    // A canceled, failed or cut-off CONCURRENTLY build leaves its index behind, INVALID.
    let invalid_index = stmt
        .and_then(|s| super::indexes::concurrent_index_name(&s.text))
        .map(|name| {
            format!(
                " The interrupted CREATE INDEX CONCURRENTLY leaves index {name} INVALID (not rolled back); \
                 the next run drops it before building it again (or DROP INDEX CONCURRENTLY {name})."
            )
        })
        .unwrap_or_default();
    if failure.is_connection_loss() || left == Leftover::Unknown {
        let outcome = lost_outcome(rev, left, &invalid_index);
        return Error::ConnectionLost {
            action: format!("{action} {rev}"),
            reason: format!("{failure}; {outcome}"),
        };
    }
    if let Some(transient) = transient
        && matches!(left, Leftover::Nothing | Leftover::EarlierStatements)
    {
        return Error::LockRetriesExhausted {
            action,
            revision: rev,
            reason: failure.to_string(),
            cause: if transient == Transient::Deadlock {
                crate::error::LockWait::Deadlock
            } else {
                crate::error::LockWait::Timeout
            },
            state: left,
            attempts,
            blockers: super::blockers::blocked_by(&blockers),
        };
    }
    let failing = stmt
        .cloned()
        .or_else(|| failing_statement(&step.sql, failure.line, completed));
    let statement = match &failing {
        Some(s) => format!(
            "\n  statement at line {}: {}",
            s.line,
            crate::text::one_line(&s.text, 200)
        ),
        None => String::new(),
    };
    let mut failure = failure;
    if failure.message.contains(history::MARKER_MISSING) {
        // The guarded history write refused: say that, not "unrecognized configuration parameter".
        failure.message =
            "history not written: the migration's SQL did not run to its end in pgshift's transaction"
                .into();
        failure.sqlstate = None;
    }
    let next = crate::diagnosis::next_step(&failure)
        .map(|n| format!("\n  {n}"))
        .unwrap_or_default();
    let state = left_state(rev, left, &invalid_index);
    Error::StepFailed {
        action,
        revision: rev,
        failure: Box::new(failure),
        statement,
        state,
        next,
    }
}

/// What a failed step left in the database, and what to do about it.
fn left_state(rev: crate::catalog::Revision, left: Leftover, invalid_index: &str) -> String {
    match left {
        Leftover::EarlierStatements => format!(
            "{rev} is a no-transaction migration: statements before the failing one stay applied, and it \
             is not recorded in history.{invalid_index} Make them idempotent (IF NOT EXISTS) and run again."
        ),
        Leftover::NeverSent => format!(
            "{rev}'s SQL was never sent to the server: none of it ran, and history is unchanged. Fix the file and run again."
        ),
        Leftover::EndedBySql => format!(
            "{rev}'s SQL ended pgshift's transaction itself (a COMMIT, ROLLBACK or END inside the migration): \
             statements before that point may have been committed, and {rev} is NOT recorded in history. \
             Check the schema by hand, remove the transaction control from the file (or mark it \
             `-- pgshift: no-transaction`), and run again."
        ),
        Leftover::Nothing | Leftover::Unknown => {
            format!("{rev} was rolled back: schema and history are as they were before it.")
        }
    }
}

/// What a lost connection left of the step.
fn lost_outcome(rev: crate::catalog::Revision, left: Leftover, invalid_index: &str) -> String {
    match left {
        Leftover::Nothing => format!(
            "the server ended the session before COMMIT, so {rev} was rolled back and history is unchanged"
        ),
        Leftover::EarlierStatements => format!(
            "{rev} is a no-transaction migration: statements before this one stay applied, and it is not recorded in history.{invalid_index}"
        ),
        _ => format!(
            "the connection was lost while committing {rev}: whether it committed is unknown; check `pgshift status` before running again"
        ),
    }
}

/// The statement of a transactional step's SQL that failed: the one holding the error position
/// when the server gave one (a syntax error, found before anything ran), else the one after those
/// the server completed (a run-time error such as a duplicate key).
fn failing_statement(
    sql: &str,
    line: Option<usize>,
    completed: Option<usize>,
) -> Option<crate::sql::Statement> {
    let statements = crate::sql::statements(sql);
    match (line, completed) {
        (Some(line), _) => statements.into_iter().rev().find(|s| s.line <= line),
        (None, Some(done)) => statements.into_iter().nth(done),
        (None, None) => None,
    }
}

/// Before each statement of a no-transaction step (index builds write a lot of WAL at once):
/// wait while a replica lags more than `max_replica_lag`, watched from the monitor connection.
async fn hold_for_replicas(runner: &Runner<'_>, step: &Step) -> Result<()> {
    let end = super::topology::wait_for_replicas(
        runner.monitor,
        runner.guard.max_replica_lag,
        |lagging, waited| {
            runner.reporter.emit(Event::replica_wait(
                None,
                Some(step.revision),
                lagging,
                waited,
            ));
        },
        || async { runner.interrupt.is_set() },
    )
    .await;
    if end == super::topology::WaitEnd::Stopped {
        return Err(Error::Failed(format!(
            "interrupted by the operator while {} waited for a lagging replica; its statements before this one stay applied and it is not recorded in history",
            step.label()
        )));
    }
    Ok(())
}
