//! The batch loop: keyset batches, one transaction each with the cursor saved inside it, adaptive
//! batch size, pause between batches, lock/statement timeouts with retries, and stopping cleanly
//! between batches when asked (Ctrl-C, or `requested` set by another session).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::definition::{Definition, MAX_BATCH_SIZE};
use super::inspect::{self, Prepared};
use super::key::Key;
use super::stats::{self, Stats};
use super::store::{self, Request, RunState, Saved};
use crate::config::Guard;
use crate::db::blockers::{self, Blocker};
use crate::db::{Session, topology};
use crate::error::{DbFailure, Error};
use crate::event::{Event, Reporter};

/// SQLSTATEs a batch is retried on: lock_not_available, deadlock_detected, serialization_failure,
/// and query_canceled (our statement_timeout; the batch is halved first).
const RETRYABLE: [&str; 4] = ["55P03", "40P01", "40001", "57014"];
const STATEMENT_TIMEOUT: &str = "57014";
/// A batch's statement_timeout when the target sets none: far above the ~100 ms a batch aims at,
/// low enough that a runaway batch cannot hold row locks for long.
pub const DEFAULT_BATCH_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often progress is reported (the last batch always is).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// An in-process pause request (the CLI's Ctrl-C, or a TUI that started the run). Another process
/// pauses through the run table instead (`backfill::pause`).
#[derive(Debug, Clone, Default)]
pub struct Control(Arc<AtomicBool>);

impl Control {
    pub fn request_pause(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn pause_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where a run starts and how it is throttled.
pub struct Plan<'a> {
    pub def: &'a Definition,
    pub run_id: i64,
    pub cursor: Key,
    pub batch_size: i64,
    pub pause: Duration,
    /// Adapt the batch size toward the definition's target duration; off when the operator
    /// pinned a size with `--batch-size`.
    pub adaptive: bool,
    pub rows_before: i64,
    pub estimate: i64,
    pub guard: Guard,
}

/// How a session of the loop ended.
pub struct Outcome {
    pub state: RunState,
    pub cursor: Key,
    pub rows: i64,
    pub batches: i64,
    pub stats: Stats,
    pub error: Option<Error>,
    pub batch_size: i64,
    /// Retries after the last saved batch (saved when the run ends).
    pub unsaved_retries: i64,
}

/// `BEGIN` plus the per-batch guards. Integers from our own Durations: no user text in this SQL.
///
/// `synchronous_commit = off` spares each batch a WAL flush wait. It is safe here because the
/// cursor commits in the same transaction as its batch: a server crash can only lose the last
/// few batches *together with* their cursor, which the resumed run then simply redoes.
pub fn begin_guarded(guard: &Guard) -> String {
    let statement = guard
        .statement_timeout
        .unwrap_or(DEFAULT_BATCH_STATEMENT_TIMEOUT);
    format!(
        "BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}; SET LOCAL synchronous_commit = off",
        guard.lock_timeout.as_millis().max(1),
        statement.as_millis().max(1)
    )
}

struct Committed {
    upper: Key,
    rows: i64,
    requested: Option<Request>,
}

/// Run batches until no key is left, a stop is asked for, or a batch fails for good.
pub async fn run_batches(
    s: &Session,
    monitor: Option<&Session>,
    p: &Prepared,
    plan: &Plan<'_>,
    control: &Control,
    reporter: &Reporter,
) -> Outcome {
    let name = &plan.def.name;
    let mut out = Outcome {
        state: RunState::Running,
        cursor: plan.cursor,
        rows: 0,
        batches: 0,
        stats: Stats::default(),
        error: None,
        batch_size: plan.batch_size,
        unsaved_retries: 0,
    };
    let save = match store::prepare_save(s).await {
        Ok(stmt) => stmt,
        Err(e) => {
            out.state = RunState::Failed;
            out.error = Some(e);
            return out;
        }
    };
    let begin = begin_guarded(&plan.guard);
    // Poll for blockers a few times per lock_timeout, as migrations do.
    let poll_every =
        (plan.guard.lock_timeout / 3).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let started = Instant::now();
    let mut last_save = Instant::now();
    let mut last_emit: Option<Instant> = None;
    let mut attempt = 0u32;
    let mut next_lag_check = Instant::now();
    loop {
        if control.pause_requested() {
            out.state = RunState::Paused;
            break;
        }
        // Replica lag is looked at about once a second, not per batch: the replica reports its
        // position only that often, and a 5 ms batch should not pay a round trip for it.
        if next_lag_check <= Instant::now() {
            if let Some(stopped) = hold_for_replicas(s, plan, control, reporter).await {
                out.state = stopped;
                break;
            }
            next_lag_check = Instant::now() + topology::LAG_POLL;
        }
        let t0 = Instant::now();
        let work = async {
            s.client.batch_execute(&begin).await?;
            let Some(upper) = inspect::next_bound(s, p, out.cursor, out.batch_size).await? else {
                s.client.batch_execute("COMMIT").await?;
                return Ok(None);
            };
            let rows = s.client.execute(&p.batch, &[&out.cursor, &upper]).await? as i64;
            out.stats.record(t0.elapsed());
            let cursor = upper.to_string();
            let saved = Saved {
                id: plan.run_id,
                cursor: &cursor,
                rows,
                retries: out.unsaved_retries,
                batch_size: out.batch_size,
                p50_ms: out.stats.p50_ms(),
                max_ms: out.stats.max_ms(),
                active: last_save.elapsed(),
            };
            let requested = store::save(s, &save, &saved).await?;
            s.client.batch_execute("COMMIT").await?;
            Ok::<_, tokio_postgres::Error>(Some(Committed {
                upper,
                rows,
                requested,
            }))
        };
        let (result, blockers) = watch_blockers(s, monitor, poll_every, work).await;
        match result {
            Ok(None) => {
                out.state = RunState::Done;
                break;
            }
            Ok(Some(c)) => {
                let took = t0.elapsed();
                out.stats.amend_last(took);
                last_save = Instant::now();
                out.unsaved_retries = 0;
                attempt = 0;
                out.cursor = c.upper;
                out.rows += c.rows;
                out.batches += 1;
                if plan.adaptive {
                    out.batch_size = stats::next_batch_size(
                        out.batch_size,
                        took,
                        plan.def.target_batch,
                        MAX_BATCH_SIZE as i64,
                    );
                }
                if last_emit.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                    reporter.emit(progress(plan, &out, started.elapsed()));
                    last_emit = Some(Instant::now());
                }
                match c.requested {
                    Some(Request::Pause) => {
                        out.state = RunState::Paused;
                        break;
                    }
                    Some(Request::Cancel) => {
                        out.state = RunState::Cancelled;
                        break;
                    }
                    None => {}
                }
                if !plan.pause.is_zero() {
                    tokio::time::sleep(plan.pause).await;
                }
            }
            Err(e) => {
                if !s.client.is_closed()
                    && let Err(re) = s.client.batch_execute("ROLLBACK").await
                {
                    tracing::warn!("rollback after a failed batch also failed: {re}");
                }
                let mut failure = DbFailure::from_pg(&e, None);
                failure.message.push_str(&blockers::blocked_by(&blockers));
                let retryable = RETRYABLE.iter().any(|c| failure.is(c));
                attempt += 1;
                if e.is_closed() || !retryable || attempt >= plan.guard.retries {
                    out.state = RunState::Failed;
                    out.error = Some(batch_error(plan, &out, &e, failure, attempt));
                    break;
                }
                if failure.is(STATEMENT_TIMEOUT) {
                    out.batch_size = (out.batch_size / 2).max(1);
                }
                out.stats.retries += 1;
                out.unsaved_retries += 1;
                let delay = plan.guard.delay(attempt);
                reporter.emit(Event::BackfillRetry {
                    name: name.clone(),
                    attempt,
                    attempts: plan.guard.retries,
                    reason: failure.to_string(),
                    delay,
                    batch_size: out.batch_size,
                });
                tokio::time::sleep(delay).await;
            }
        }
    }
    if out.batches > 0 || out.state == RunState::Done {
        reporter.emit(progress(plan, &out, started.elapsed()));
    }
    out
}

/// Before a batch: wait while a replica lags more than the target's `max_replica_lag`, reporting
/// the wait. `Some(state)` when a pause or cancel was asked for meanwhile (this process's Ctrl-C or
/// TUI, or another session through the run table).
async fn hold_for_replicas(
    s: &Session,
    plan: &Plan<'_>,
    control: &Control,
    reporter: &Reporter,
) -> Option<RunState> {
    let name = &plan.def.name;
    let asked = || async {
        control.pause_requested() || matches!(store::requested(s, plan.run_id).await, Ok(Some(_)))
    };
    let end = topology::wait_for_replicas(
        s,
        plan.guard.max_replica_lag,
        |lagging, waited| {
            reporter.emit(Event::replica_wait(Some(name), None, lagging, waited));
        },
        asked,
    )
    .await;
    if end == topology::WaitEnd::CaughtUp {
        return None;
    }
    Some(match store::requested(s, plan.run_id).await {
        Ok(Some(Request::Cancel)) => RunState::Cancelled,
        _ => RunState::Paused,
    })
}

/// Run one batch, and while it runs longer than `every`, ask the monitor session who blocks it:
/// the sessions seen are reported with a lock timeout, as migrations do.
async fn watch_blockers<T>(
    s: &Session,
    monitor: Option<&Session>,
    every: Duration,
    work: impl std::future::Future<Output = T>,
) -> (T, Vec<Blocker>) {
    tokio::pin!(work);
    let mut seen = Vec::new();
    loop {
        tokio::select! {
            r = &mut work => return (r, seen),
            _ = tokio::time::sleep(every), if monitor.is_some() => {
                if let Some(m) = monitor
                    && let Ok(b) = blockers::blockers_of(m, s.pid).await
                    && !b.is_empty()
                {
                    seen = b;
                }
            }
        }
    }
}

fn progress(plan: &Plan<'_>, out: &Outcome, elapsed: Duration) -> Event {
    let rate = stats::rate(out.rows, elapsed);
    let done = plan.rows_before + out.rows;
    let estimate = plan.estimate.max(done);
    Event::BackfillProgress {
        name: plan.def.name.clone(),
        rows_done: done,
        rows_estimate: estimate,
        rate,
        eta_s: if out.state == RunState::Done {
            Some(0.0)
        } else {
            stats::eta_s(done, estimate, rate)
        },
        batch_ms_p50: out.stats.p50_ms(),
        batch_ms_max: out.stats.max_ms(),
        batch_size: out.batch_size,
        batches: out.batches,
        retries: out.stats.retries,
    }
}

fn batch_error(
    plan: &Plan<'_>,
    out: &Outcome,
    e: &tokio_postgres::Error,
    failure: DbFailure,
    attempts: u32,
) -> Error {
    let name = &plan.def.name;
    if e.is_closed() {
        return Error::ConnectionLost {
            action: format!("running backfill {name} (batch after key {})", out.cursor),
            reason: e.to_string(),
        };
    }
    let next = crate::diagnosis::next_step(&failure)
        .map(|n| format!("\n  {n}"))
        .unwrap_or_default();
    let tries = if attempts > 1 {
        format!(" after {attempts} tries")
    } else {
        String::new()
    };
    let msg = format!(
        "backfill {name} failed on the batch after key {}{tries}: {failure}\n  statement: {}\n  That batch was rolled back; {} rows committed before it are kept and the cursor is saved. \
         Fix the cause, then `pgshift backfill resume {name}`.{next}",
        out.cursor,
        crate::text::one_line(&plan.def.batch, 200),
        plan.rows_before + out.rows
    );
    if RETRYABLE.iter().any(|c| failure.is(c)) {
        return Error::BackfillBlocked(msg);
    }
    Error::Failed(msg)
}
