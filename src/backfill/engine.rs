//! The batch loop: keyset batches, one transaction each with the cursor saved inside it, adaptive
//! batch size, pause between batches, lock/statement timeouts with retries (the engine in
//! `db::retry`, which halves a batch after a statement timeout), and stopping cleanly
//! between batches when asked (Ctrl-C, or `requested` set by another session).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Statement;

use super::definition::{Definition, MAX_BATCH_SIZE};
use super::inspect::{self, Prepared};
use super::key::Key;
use super::stats::{self, Stats};
use super::store::{self, Request, RunState, Saved};
use crate::config::Guard;
use crate::db::backfill_batches::begin_guarded;
use crate::db::blockers::Blocker;
use crate::db::retry::{self, GaveUp, Retrier, Subject};
use crate::db::{self, Session, topology};
use crate::error::Error;
use crate::event::{Event, Reporter};

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

struct Committed {
    upper: Key,
    rows: i64,
    requested: Option<Request>,
}

impl Outcome {
    fn starting(plan: &Plan<'_>) -> Outcome {
        Outcome {
            state: RunState::Running,
            cursor: plan.cursor,
            rows: 0,
            batches: 0,
            stats: Stats::default(),
            error: None,
            batch_size: plan.batch_size,
            unsaved_retries: 0,
        }
    }
}

/// What the batch loop reads on every batch: the worker, its prepared statements, the plan.
struct Batches<'a> {
    s: &'a Session,
    p: &'a Prepared,
    plan: &'a Plan<'a>,
    control: &'a Control,
    reporter: &'a Reporter,
    /// The cursor save, prepared once per run.
    save: Statement,
    begin: String,
}

/// When the loop last did its periodic things.
struct Pace {
    started: Instant,
    last_save: Instant,
    last_emit: Option<Instant>,
    next_lag_check: Instant,
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
    let mut out = Outcome::starting(plan);
    let save = match store::prepare_save(s).await {
        Ok(stmt) => stmt,
        Err(e) => {
            out.state = RunState::Failed;
            out.error = Some(e);
            return out;
        }
    };
    let b = Batches {
        s,
        p,
        plan,
        control,
        reporter,
        save,
        begin: begin_guarded(&plan.guard),
    };
    let subject = Subject::Batch {
        name: &plan.def.name,
    };
    let mut retrier = Retrier::new(s, &plan.guard, reporter, subject).watched_by(monitor);
    let now = Instant::now();
    let mut pace = Pace {
        started: now,
        last_save: now,
        last_emit: None,
        next_lag_check: now,
    };
    out.state = loop {
        if let Some(stopped) = b.before_batch(&mut pace).await {
            break stopped;
        }
        let t0 = Instant::now();
        let (result, blockers) = retrier.watch(b.one_batch(&mut out, &pace, t0)).await;
        let stopped = match result {
            Ok(None) => Some(RunState::Done),
            Ok(Some(c)) => {
                retrier.succeeded();
                b.committed(&mut out, &mut pace, c, t0.elapsed()).await
            }
            Err(e) => b.failed(&mut out, &mut retrier, e, blockers).await,
        };
        if let Some(state) = stopped {
            break state;
        }
    };
    if out.batches > 0 || out.state == RunState::Done {
        reporter.emit(progress(plan, &out, pace.started.elapsed()));
    }
    out
}

impl Batches<'_> {
    /// Between batches: a pause asked for in this process, or a lagging replica to wait for.
    async fn before_batch(&self, pace: &mut Pace) -> Option<RunState> {
        if self.control.pause_requested() {
            return Some(RunState::Paused);
        }
        // Replica lag is looked at about once a second, not per batch: the replica reports its
        // position only that often, and a 5 ms batch should not pay a round trip for it.
        if pace.next_lag_check <= Instant::now() {
            if let Some(stopped) =
                hold_for_replicas(self.s, self.plan, self.control, self.reporter).await
            {
                return Some(stopped);
            }
            pace.next_lag_check = Instant::now() + topology::LAG_POLL;
        }
        None
    }

    /// One batch in its own guarded transaction, the cursor saved inside it. `None`: no key left.
    async fn one_batch(
        &self,
        out: &mut Outcome,
        pace: &Pace,
        t0: Instant,
    ) -> std::result::Result<Option<Committed>, tokio_postgres::Error> {
        let s = self.s;
        s.client.batch_execute(&self.begin).await?;
        let Some(upper) = inspect::next_bound(s, self.p, out.cursor, out.batch_size).await? else {
            s.client.batch_execute(db::COMMIT).await?;
            return Ok(None);
        };
        let rows = s
            .client
            .execute(&self.p.batch, &[&out.cursor, &upper])
            .await? as i64;
        out.stats.record(t0.elapsed());
        let cursor = upper.to_string();
        let saved = Saved {
            id: self.plan.run_id,
            cursor: &cursor,
            rows,
            retries: out.unsaved_retries,
            batch_size: out.batch_size,
            p50_ms: out.stats.p50_ms(),
            max_ms: out.stats.max_ms(),
            active: pace.last_save.elapsed(),
        };
        let requested = store::save(s, &self.save, &saved).await?;
        s.client.batch_execute(db::COMMIT).await?;
        Ok(Some(Committed {
            upper,
            rows,
            requested,
        }))
    }

    /// A batch committed: move the cursor, adapt the batch size, report progress now and then,
    /// and stop when another session asked to. `Some(state)` ends the loop.
    async fn committed(
        &self,
        out: &mut Outcome,
        pace: &mut Pace,
        c: Committed,
        took: Duration,
    ) -> Option<RunState> {
        let plan = self.plan;
        out.stats.amend_last(took);
        pace.last_save = Instant::now();
        out.unsaved_retries = 0;
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
        if pace.last_emit.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
            self.reporter
                .emit(progress(plan, out, pace.started.elapsed()));
            pace.last_emit = Some(Instant::now());
        }
        match c.requested {
            Some(Request::Pause) => return Some(RunState::Paused),
            Some(Request::Cancel) => return Some(RunState::Cancelled),
            None => {}
        }
        if !plan.pause.is_zero() {
            tokio::time::sleep(plan.pause).await;
        }
        None
    }

    /// A batch failed: roll it back, then retry it (a statement timeout halves it first) or
    /// fail the run. `Some(state)` ends the loop.
    async fn failed(
        &self,
        out: &mut Outcome,
        retrier: &mut Retrier<'_>,
        e: tokio_postgres::Error,
        blockers: Vec<Blocker>,
    ) -> Option<RunState> {
        let s = self.s;
        if !s.client.is_closed()
            && let Err(re) = s.client.batch_execute(db::ROLLBACK).await
        {
            tracing::warn!("rollback after a failed batch also failed: {re}");
        }
        let failed = retry::Failed {
            error: e,
            sql: None,
            repeatable: true,
            left: (),
        };
        match retrier
            .retry_or_give_up(failed, blockers, Some(&mut out.batch_size))
            .await
        {
            Ok(()) => {
                out.stats.retries += 1;
                out.unsaved_retries += 1;
                None
            }
            Err(gave_up) => {
                out.error = Some(batch_error(self.plan, out, gave_up));
                Some(RunState::Failed)
            }
        }
    }
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

fn batch_error(plan: &Plan<'_>, out: &Outcome, gave_up: GaveUp<()>) -> Error {
    let name = &plan.def.name;
    let GaveUp {
        error,
        failure,
        transient,
        blockers,
        tries: attempts,
        ..
    } = gave_up;
    if error.is_closed() {
        return Error::ConnectionLost {
            action: format!("running backfill {name} (batch after key {})", out.cursor),
            reason: error.to_string(),
        };
    }
    let failure = retry::with_blockers(failure, &blockers);
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
    if transient.is_some() {
        return Error::BackfillBlocked(msg);
    }
    Error::Failed(msg)
}
