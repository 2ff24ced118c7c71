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
use crate::event::{Event, Reporter};
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

/// Run `step` on `worker`, watching for blockers with `monitor`.
pub async fn run_step(
    worker: &Session,
    monitor: &Session,
    prepared: &Prepared,
    step: &Step,
    guard: &Guard,
    reporter: &Reporter,
) -> Result<StepReport> {
    let start = Instant::now();
    let attempts = if step.no_transaction {
        run_no_transaction(worker, monitor, prepared, step, guard, reporter).await?
    } else {
        retrying(worker, monitor, step, guard, reporter, || {
            run_in_transaction(worker, prepared, step, guard)
        })
        .await
        .map_err(|(failure, blockers, attempts)| step_error(step, failure, None, &blockers, attempts))?
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
    let mut sql = format!("SET {scope} lock_timeout = {}", guard.lock_timeout.as_millis().max(1));
    if let Some(st) = guard.statement_timeout {
        sql.push_str(&format!("; SET {scope} statement_timeout = {}", st.as_millis().max(1)));
    }
    sql
}

/// One attempt: BEGIN, guards, the step's SQL, the history row, COMMIT.
async fn run_in_transaction(
    s: &Session,
    prepared: &Prepared,
    step: &Step,
    guard: &Guard,
) -> std::result::Result<(), tokio_postgres::Error> {
    let result = async {
        s.client
            .batch_execute(&format!("BEGIN; {}", session_settings(guard, "LOCAL")))
            .await?;
        s.client.batch_execute(&step.sql).await?;
        record_history(s, prepared, step).await?;
        s.client.batch_execute("COMMIT").await
    }
    .await;
    if result.is_err() && !s.client.is_closed() {
        // The server already aborted the transaction; ROLLBACK just ends it.
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
            s.client.execute(&prepared.insert, &[&v, &name, &on, &sum]).await
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
async fn run_no_transaction(
    worker: &Session,
    monitor: &Session,
    prepared: &Prepared,
    step: &Step,
    guard: &Guard,
    reporter: &Reporter,
) -> Result<u32> {
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
                text: crate::output::one_line(&stmt.text, 200),
            });
            let n = retrying(worker, monitor, step, guard, reporter, || async {
                super::indexes::drop_invalid_before_retry(worker, &stmt.text, reporter).await?;
                worker.client.batch_execute(&stmt.text).await
            })
            .await
            .map_err(|(failure, blockers, attempts)| {
                step_error(step, failure, Some(&stmt), &blockers, attempts)
            })?;
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

type Attempt = (DbFailure, Vec<Blocker>, u32);

/// Run `attempt` until it succeeds, fails for a reason other than a lock wait, or runs out of
/// tries. While it runs, poll the monitor connection for the sessions blocking the worker.
async fn retrying<F, Fut>(
    worker: &Session,
    monitor: &Session,
    step: &Step,
    guard: &Guard,
    reporter: &Reporter,
    mut attempt: F,
) -> std::result::Result<u32, Attempt>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>>,
{
    let poll_every = (guard.lock_timeout / 3).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut n = 0;
    loop {
        n += 1;
        let mut seen: Vec<Blocker> = Vec::new();
        let work = attempt();
        tokio::pin!(work);
        let mut tick = tokio::time::interval(poll_every);
        tick.tick().await; // the first tick is immediate; give the step a head start
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tick.tick() => {
                    if let Ok(b) = blockers::blockers_of(monitor, worker.pid).await
                        && !b.is_empty() && b != seen {
                        reporter.emit(Event::Blocked { revision: step.revision, blockers: b.clone() });
                        seen = b;
                    }
                }
            }
        };
        let Err(err) = result else {
            return Ok(n);
        };
        let failure = DbFailure::from_pg(&err, Some(&step.sql));
        let retryable = RETRYABLE.iter().any(|s| failure.is(s));
        if err.is_closed() || !retryable || n >= guard.retries {
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

fn step_error(
    step: &Step,
    failure: DbFailure,
    stmt: Option<&crate::sql::Statement>,
    blockers: &[Blocker],
    attempts: u32,
) -> Error {
    let action = step.direction.verb().to_string();
    if RETRYABLE.iter().any(|s| failure.is(s)) {
        return Error::LockRetriesExhausted {
            action,
            revision: step.revision,
            reason: failure.to_string(),
            attempts,
            blockers: if blockers.is_empty() {
                String::new()
            } else {
                format!(
                    "; blocked by {}",
                    blockers.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                )
            },
        };
    }
    let statement = match stmt {
        Some(s) => format!("\n  statement at line {}: {}", s.line, crate::output::one_line(&s.text, 200)),
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
        format!("{} was rolled back: schema and history are as they were before it.", step.revision)
    };
    Error::StepFailed {
        action,
        revision: step.revision,
        failure,
        statement,
        state,
        next,
    }
}
