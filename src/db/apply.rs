//! Guarded execution of one plan step: bounded `lock_timeout`, retried on lock timeouts and
//! deadlocks with jittered backoff, blockers reported from a separate monitoring connection while
//! the worker waits. A transactional step changes schema and history together or not at all.

use std::time::{Duration, Instant};

use tokio_postgres::Statement;

use super::Session;
use super::blockers::{self, Blocker};
use super::history;
use crate::config::Guard;
use crate::error::{DbFailure, Error, Result};
use crate::event::{Event, Level, Reporter};
use crate::interrupt::Interrupt;
use crate::plan::{Direction, Step};

/// SQLSTATEs worth retrying: lock_not_available, deadlock_detected, serialization_failure.
const RETRYABLE: [&str; 3] = ["55P03", "40P01", "40001"];

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

/// Statements prepared once per run (each prepare is a round trip).
pub struct Prepared {
    insert: Statement,
    delete: Statement,
}

impl Prepared {
    pub async fn new(s: &Session) -> Result<Prepared> {
        let prep = |sql| s.client.prepare(sql);
        Ok(Prepared {
            insert: prep(history::INSERT_APPLIED)
                .await
                .map_err(|e| Error::db("preparing the history insert", &e))?,
            delete: prep(history::DELETE_APPLIED)
                .await
                .map_err(|e| Error::db("preparing the history delete", &e))?,
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
            run_in_transaction(worker, prepared, step, guard, durability)
        })
        .await
        .map_err(|(failure, blockers, attempts)| {
            step_error(step, failure, None, &blockers, attempts)
        })?
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

fn session_settings(guard: &Guard, scope: &str) -> String {
    // Integers formatted from our own Durations: no user text reaches this SQL.
    let mut sql = format!(
        "SET {scope} lock_timeout = {}",
        guard.lock_timeout.as_millis().max(1)
    );
    if let Some(st) = guard.statement_timeout {
        sql.push_str(&format!(
            "; SET {scope} statement_timeout = {}",
            st.as_millis().max(1)
        ));
    }
    sql
}

/// One attempt: BEGIN, guards, the step's SQL, the history row, COMMIT, pipelined in one round
/// trip. The server runs them in order: if the SQL fails, the insert fails on the aborted
/// transaction and COMMIT turns into ROLLBACK, so nothing of the step remains. The first error in
/// that order is the one that counts.
async fn run_in_transaction(
    s: &Session,
    prepared: &Prepared,
    step: &Step,
    guard: &Guard,
    durability: Durability,
) -> std::result::Result<(), tokio_postgres::Error> {
    let deferred = match durability {
        Durability::Deferred => "; SET LOCAL synchronous_commit = off",
        Durability::Flush => "",
    };
    let begin = format!("BEGIN; {}{deferred}", session_settings(guard, "LOCAL"));
    // join4 polls in argument order, which is the order the messages are sent.
    let (begin, sql, history, commit) = futures_util::future::join4(
        s.client.batch_execute(&begin),
        s.client.batch_execute(&step.sql),
        record_history(s, prepared, step),
        s.client.batch_execute("COMMIT"),
    )
    .await;
    let result = begin.and(sql).and(history.map(|_| ())).and(commit);
    if result.is_err() && !s.client.is_closed() {
        // Normally COMMIT already ended the aborted transaction; make sure nothing stays open.
        if let Err(e) = s.client.batch_execute("ROLLBACK").await {
            tracing::warn!("rollback after a failed step also failed: {e}");
        }
    }
    result
}

async fn record_history(
    s: &Session,
    prepared: &Prepared,
    step: &Step,
) -> std::result::Result<u64, tokio_postgres::Error> {
    match step.direction {
        Direction::Up => {
            let (v, name, on, sum) = history::row_values(step.revision, &step.name, step.checksum);
            s.client
                .execute(&prepared.insert, &[&v, &name, &on, &sum])
                .await
        }
        Direction::Down => {
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
    let settings = session_settings(guard, "SESSION");
    worker
        .client
        .batch_execute(&settings)
        .await
        .map_err(|e| Error::db("setting lock_timeout", &e))?;
    let mut attempts = 1;
    let result = async {
        for stmt in crate::sql::statements(&step.sql) {
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
            let concurrent = crate::lint::runs_concurrently(&stmt.text);
            if concurrent {
                set_lock_timeout(worker, None).await?;
            }
            let n = retrying(runner, step, &stmt.text, || async {
                super::indexes::drop_invalid_before_retry(worker, &stmt.text, reporter).await?;
                worker.client.batch_execute(&stmt.text).await
            })
            .await
            .map_err(|(failure, blockers, attempts)| {
                step_error(step, failure, Some(&stmt), &blockers, attempts)
            })?;
            if concurrent {
                set_lock_timeout(worker, Some(guard.lock_timeout)).await?;
            }
            attempts = attempts.max(n);
        }
        record_history(worker, prepared, step)
            .await
            .map_err(|e| Error::db(format!("recording {} in history", step.label()), &e))?;
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

/// `SET lock_timeout` on the worker's session (`None`: wait without limit).
async fn set_lock_timeout(worker: &Session, limit: Option<Duration>) -> Result<()> {
    // Integers from our own Durations: no user text reaches this SQL.
    let ms = limit.map_or(0, |d| d.as_millis().max(1));
    worker
        .client
        .batch_execute(&format!("SET lock_timeout = {ms}"))
        .await
        .map_err(|e| Error::db("setting lock_timeout", &e))
}

type Attempt = (DbFailure, Vec<Blocker>, u32);

/// Run `attempt` until it succeeds, fails for a reason other than a lock wait, or runs out of
/// tries. While it runs, poll the monitor connection for the sessions blocking the worker, report
/// them, terminate the ones that blocked too long (opt-in), and cancel the statement on the server
/// when the operator interrupts. `sql` is what the attempt runs (for the failing line).
async fn retrying<F, Fut>(
    runner: &Runner<'_>,
    step: &Step,
    sql: &str,
    mut attempt: F,
) -> std::result::Result<u32, Attempt>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>>,
{
    let Runner {
        worker,
        monitor,
        guard,
        interrupt,
        reporter,
        ..
    } = *runner;
    let poll_every =
        (guard.lock_timeout / 3).clamp(Duration::from_millis(50), Duration::from_secs(1));
    // The first look comes early so that even a short lock_timeout names its blocker.
    let first_look = (guard.lock_timeout / 4).clamp(Duration::from_millis(10), poll_every);
    let mut overdue = super::terminate::Overdue::default();
    // Who was last reported as blocking: a retry line names them anyway, so a new `Blocked`
    // event only when the set of sessions changes (ages change every poll).
    let mut reported: Vec<i32> = Vec::new();
    let mut n = 0;
    loop {
        n += 1;
        let mut seen: Vec<Blocker> = Vec::new();
        let work = attempt();
        tokio::pin!(work);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + first_look, poll_every);
        let mut canceled = false;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = interrupt.fired(), if !canceled => {
                    canceled = true;
                    reporter.log(Level::Warn, format!("interrupt: canceling {} on the server; it rolls back", step.label()));
                    if let Err(e) = crate::tls::cancel(worker.client.cancel_token(), &worker.conn).await {
                        tracing::warn!("cancel request failed: {e}");
                    }
                }
                _ = tick.tick() => {
                    let Ok(b) = blockers::blockers_of(monitor, worker.pid).await else { continue };
                    if b.is_empty() {
                        continue;
                    }
                    if pids(&b) != reported {
                        reported = pids(&b);
                        reporter.emit(Event::Blocked { revision: step.revision, blockers: b.clone() });
                    }
                    if let Some(after) = guard.terminate_blockers_after {
                        overdue.terminate(monitor, step, &b, after, reporter).await;
                    }
                    seen = b;
                }
            }
        };
        let Err(err) = result else {
            return Ok(n);
        };
        let mut failure = DbFailure::from_pg(&err, Some(sql));
        if err.is_closed() && failure.sqlstate.is_none() {
            // A dropped link has no server error; class it as connection_failure.
            failure.sqlstate = Some("08006".into());
        }
        let retryable = RETRYABLE.iter().any(|s| failure.is(s));
        if err.is_closed()
            || failure.is_connection_loss()
            || !retryable
            || n >= guard.retries
            || interrupt.is_set()
        {
            return Err((failure, seen, n));
        }
        let delay = guard.delay(n);
        reporter.emit(Event::StepRetry {
            revision: step.revision,
            attempt: n,
            attempts: guard.retries,
            reason: failure.to_string(),
            delay,
            blockers: seen,
        });
        tokio::time::sleep(delay).await;
    }
}

fn pids(b: &[Blocker]) -> Vec<i32> {
    b.iter().map(|b| b.pid).collect()
}

fn step_error(
    step: &Step,
    failure: DbFailure,
    stmt: Option<&crate::sql::Statement>,
    blockers: &[Blocker],
    attempts: u32,
) -> Error {
    let action = step.direction.verb().to_string();
    if failure.is_connection_loss() {
        return Error::ConnectionLost {
            action: format!("{action} {}", step.revision),
            reason: failure.to_string(),
        };
    }
    if RETRYABLE.iter().any(|s| failure.is(s)) {
        return Error::LockRetriesExhausted {
            action,
            revision: step.revision,
            reason: failure.to_string(),
            cause: if failure.is("40P01") {
                crate::error::LockWait::Deadlock
            } else {
                crate::error::LockWait::Timeout
            },
            state: if step.no_transaction {
                crate::error::Leftover::EarlierStatements
            } else {
                crate::error::Leftover::Nothing
            },
            attempts,
            blockers: super::blockers::blocked_by(blockers),
        };
    }
    let statement = match stmt {
        Some(s) => format!(
            "\n  statement at line {}: {}",
            s.line,
            crate::text::one_line(&s.text, 200)
        ),
        None => String::new(),
    };
    let next = crate::diagnosis::next_step(&failure)
        .map(|n| format!("\n  {n}"))
        .unwrap_or_default();
    let state = if step.no_transaction {
        format!(
            "{} is a no-transaction migration: statements before the failing one stay applied, and it \
             is not recorded in history. Make them idempotent (IF NOT EXISTS) and run again.",
            step.revision
        )
    } else {
        format!(
            "{} was rolled back: schema and history are as they were before it.",
            step.revision
        )
    };
    Error::StepFailed {
        action,
        revision: step.revision,
        failure: Box::new(failure),
        statement,
        state,
        next,
    }
}
