//! The one guarded-retry engine, shared by migration steps ([`super::apply`]) and backfill
//! batches (`backfill::engine`): each try runs on the worker under `lock_timeout` while a
//! monitoring connection names the sessions blocking it; a try that failed for a transient reason
//! is reported ("waiting, blocked by pid N, retrying in X ms") and run again after a jittered
//! exponential backoff, up to the target's number of tries.
//!
//! Callers keep their own loop around the parts (a backfill checks for a pause and for replica
//! lag between tries); [`Retrier::run`] is that loop for work that has nothing to do in between.

use std::future::Future;
use std::time::Duration;

use super::Session;
use super::blockers::{self, Blocker};
use super::terminate::Overdue;
use crate::config::Guard;
use crate::error::DbFailure;
use crate::event::{Event, Level, Reporter};
use crate::interrupt::Interrupt;
use crate::plan::Step;

/// Why a failed try may pass when run again: the one classification of retryable SQLSTATEs.
///
/// Each depends on what other sessions happen to do at that moment, not on the work itself, and
/// the server rolled the try back, so the same work can simply run again:
/// - `55P03` lock_not_available: our `lock_timeout` expired while another session held a lock we
///   need (an app transaction, a long report); it may have ended by the next try.
/// - `40P01` deadlock_detected: the server chose us as the victim of a lock cycle; the other side
///   went on, and the next try usually meets no cycle.
/// - `40001` serialization_failure: a concurrent transaction won a serializable or
///   repeatable-read conflict (an app running at a stricter isolation level); the standard answer
///   is to retry.
/// - `57014` query_canceled by our `statement_timeout`: only where the next try can be smaller
///   (a backfill batch halves). A migration statement would run just as long again, and a
///   `CONCURRENTLY` build would throw away its work each time, so for steps it is final.
///
/// Not retried: connection loss (`08*`, `57P0*`: the session and whatever it held are gone; a
/// step's outcome may even be unknown), and every other error (it would fail the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    LockTimeout,
    Deadlock,
    Serialization,
    StatementTimeout,
}

impl Transient {
    /// The transient cause of `failure`, if it has one.
    pub fn of(failure: &DbFailure) -> Option<Transient> {
        match failure.sqlstate.as_deref()? {
            "55P03" => Some(Transient::LockTimeout),
            "40P01" => Some(Transient::Deadlock),
            "40001" => Some(Transient::Serialization),
            "57014" => Some(Transient::StatementTimeout),
            _ => None,
        }
    }

    /// Whether another try can help only if it does less work.
    pub fn needs_smaller_work(self) -> bool {
        self == Transient::StatementTimeout
    }
}

/// How often and how long to try: jittered exponential backoff, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included.
    pub tries: u32,
    pub first: Duration,
    pub max: Duration,
}

impl From<&Guard> for Backoff {
    fn from(g: &Guard) -> Backoff {
        Backoff {
            tries: g.retries,
            first: g.backoff,
            max: g.max_backoff,
        }
    }
}

impl Backoff {
    /// Delay before retry number `retry` (1-based): exponential, capped, with jitter in
    /// [50%, 100%] so that several runners do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .first
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1).min(16))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// What is being tried: it names the work in reports, and decides what the engine may do about a
/// blocker (only a migration step cancels on Ctrl-C and terminates overdue blockers).
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    Step(&'a Step),
    /// A backfill's batches: a statement timeout halves the batch.
    Batch {
        name: &'a str,
    },
}

/// A failed try, as its caller saw it.
pub struct Failed<L> {
    pub error: tokio_postgres::Error,
    /// The SQL of the try, to place a syntax error on its line.
    pub sql: Option<String>,
    /// The try left nothing behind that another try would trip over.
    pub repeatable: bool,
    /// What the caller needs to word its error if this try is the last.
    pub left: L,
}

/// The last try failed and there is no other: why, and what was seen meanwhile.
pub struct GaveUp<L> {
    pub error: tokio_postgres::Error,
    pub failure: DbFailure,
    /// The transient cause that ran out of tries (or was interrupted), if that is why.
    pub transient: Option<Transient>,
    pub left: L,
    /// The sessions that blocked the last try.
    pub blockers: Vec<Blocker>,
    pub tries: u32,
}

/// Runs tries of one piece of work (a step, a statement, or a backfill's batches).
pub struct Retrier<'a> {
    pub worker: &'a Session,
    /// Watches for blockers; `None` only when it could not connect (blockers go unnamed).
    pub monitor: Option<&'a Session>,
    pub guard: &'a Guard,
    pub reporter: &'a Reporter,
    /// Ctrl-C cancels the running try on the server and ends the retries.
    pub interrupt: Option<&'a Interrupt>,
    subject: Subject<'a>,
    backoff: Backoff,
    /// Tries of the current work so far.
    tries: u32,
    /// Who was last reported as blocking: a retry line names them anyway, so a new `Blocked`
    /// event only when the set of sessions changes (ages change every poll).
    reported: Vec<i32>,
    overdue: Overdue,
}

impl<'a> Retrier<'a> {
    pub fn new(
        worker: &'a Session,
        guard: &'a Guard,
        reporter: &'a Reporter,
        subject: Subject<'a>,
    ) -> Self {
        Retrier {
            worker,
            monitor: None,
            guard,
            reporter,
            interrupt: None,
            subject,
            backoff: Backoff::from(guard),
            tries: 0,
            reported: Vec::new(),
            overdue: Overdue::default(),
        }
    }

    pub fn watched_by(mut self, monitor: Option<&'a Session>) -> Self {
        self.monitor = monitor;
        self
    }

    pub fn interrupted_by(mut self, interrupt: &'a Interrupt) -> Self {
        self.interrupt = Some(interrupt);
        self
    }

    /// Tries of the current work so far.
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// The work succeeded: the next one starts with a full set of tries.
    pub fn succeeded(&mut self) {
        self.tries = 0;
    }

    /// Try `attempt` until it succeeds or the engine gives up; `Ok` carries the number of tries.
    pub async fn run<L, F, Fut>(&mut self, mut attempt: F) -> Result<u32, GaveUp<L>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), Failed<L>>>,
    {
        loop {
            let (result, seen) = self.watch(attempt()).await;
            match result {
                Ok(()) => return Ok(self.tries),
                Err(failed) => self.retry_or_give_up(failed, seen, None).await?,
            }
        }
    }

    /// Run one try, and while it runs, poll the monitor for the sessions blocking the worker:
    /// report them, terminate the ones that blocked a step too long (opt-in), and cancel the
    /// statement on the server when the operator interrupts. Returns the blockers last seen.
    pub async fn watch<T>(&mut self, work: impl Future<Output = T>) -> (T, Vec<Blocker>) {
        self.tries += 1;
        let poll_every =
            (self.guard.lock_timeout / 3).clamp(Duration::from_millis(50), Duration::from_secs(1));
        // The first look comes early so that even a short lock_timeout names its blocker.
        let first_look = (self.guard.lock_timeout / 4).clamp(Duration::from_millis(10), poll_every);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + first_look, poll_every);
        tokio::pin!(work);
        let mut seen = Vec::new();
        let interrupt = self.interrupt;
        let mut canceled = false;
        loop {
            tokio::select! {
                r = &mut work => return (r, seen),
                _ = fired(interrupt), if !canceled => {
                    canceled = true;
                    self.cancel().await;
                }
                _ = tick.tick(), if self.monitor.is_some() => {
                    if let Some(b) = self.blockers().await {
                        seen = b;
                    }
                }
            }
        }
    }

    async fn cancel(&self) {
        if let Subject::Step(step) = self.subject {
            let after = if step.no_transaction {
                "statements before it stay applied, and an interrupted CONCURRENTLY build leaves an INVALID index"
            } else {
                "the step rolls back"
            };
            self.reporter.log(
                Level::Warn,
                format!(
                    "interrupt: canceling {} on the server; {after}",
                    step.label()
                ),
            );
        }
        if let Err(e) =
            crate::tls::cancel(self.worker.client.cancel_token(), &self.worker.conn).await
        {
            tracing::warn!("cancel request failed: {e}");
        }
    }

    /// The sessions blocking the worker now (`None`: none, or the monitor could not tell).
    async fn blockers(&mut self) -> Option<Vec<Blocker>> {
        let monitor = self.monitor?;
        let b = blockers::blockers_of(monitor, self.worker.pid)
            .await
            .ok()
            .filter(|b| !b.is_empty())?;
        if let Subject::Step(step) = self.subject {
            let pids: Vec<i32> = b.iter().map(|b| b.pid).collect();
            if pids != self.reported {
                self.reported = pids;
                self.reporter.emit(Event::Blocked {
                    revision: step.revision,
                    blockers: b.clone(),
                });
            }
            if let Some(after) = self.guard.terminate_blockers_after {
                self.overdue
                    .terminate(monitor, step, &b, after, self.reporter)
                    .await;
            }
        }
        Some(b)
    }

    /// After a failed try: give up (connection gone, not transient, out of tries, interrupted,
    /// or the try left something behind), or report the retry and wait out its backoff. A batch
    /// passes its size, which a statement timeout halves before the next try.
    pub async fn retry_or_give_up<L>(
        &mut self,
        failed: Failed<L>,
        blockers: Vec<Blocker>,
        batch_size: Option<&mut i64>,
    ) -> Result<(), GaveUp<L>> {
        let Failed {
            error,
            sql,
            repeatable,
            left,
        } = failed;
        let mut failure = DbFailure::from_pg(&error, sql.as_deref());
        if error.is_closed() && failure.sqlstate.is_none() {
            // A dropped link has no server error; class it as connection_failure.
            failure.sqlstate = Some("08006".into());
        }
        let transient =
            Transient::of(&failure).filter(|t| !t.needs_smaller_work() || batch_size.is_some());
        let Some(cause) = transient.filter(|_| {
            repeatable
                && !error.is_closed()
                && !failure.is_connection_loss()
                && self.tries < self.backoff.tries
                && !self.interrupt.is_some_and(Interrupt::is_set)
        }) else {
            return Err(GaveUp {
                error,
                failure,
                transient,
                left,
                blockers,
                tries: self.tries,
            });
        };
        let delay = self.backoff.delay(self.tries);
        let event = match (self.subject, batch_size) {
            (Subject::Step(step), _) => Event::StepRetry {
                revision: step.revision,
                attempt: self.tries,
                attempts: self.backoff.tries,
                reason: failure.to_string(),
                delay,
                blockers,
            },
            (Subject::Batch { name }, size) => {
                let size = size.map_or(0, |size| {
                    if cause.needs_smaller_work() {
                        *size = (*size / 2).max(1);
                    }
                    *size
                });
                Event::BackfillRetry {
                    name: name.to_string(),
                    attempt: self.tries,
                    attempts: self.backoff.tries,
                    reason: with_blockers(failure, &blockers).to_string(),
                    delay,
                    batch_size: size,
                }
            }
        };
        self.reporter.emit(event);
        tokio::time::sleep(delay).await;
        Ok(())
    }
}

/// Resolves when the operator interrupts (never without an interrupt).
async fn fired(interrupt: Option<&Interrupt>) {
    match interrupt {
        Some(i) => i.fired().await,
        None => std::future::pending().await,
    }
}

/// `failure` with the sessions that blocked it named in its message (a backfill's wording).
pub fn with_blockers(mut failure: DbFailure, blockers: &[Blocker]) -> DbFailure {
    failure.message.push_str(&blockers::blocked_by(blockers));
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_waits_deadlocks_serialization_and_statement_timeouts_are_transient() {
        let cases = [
            ("55P03", Some(Transient::LockTimeout)),
            ("40P01", Some(Transient::Deadlock)),
            ("40001", Some(Transient::Serialization)),
            ("57014", Some(Transient::StatementTimeout)),
            // Connection loss, server shutdown, admin termination: the session is gone.
            ("08006", None),
            ("57P01", None),
            ("57P02", None),
            // Errors of the work itself fail the same way every time.
            ("42601", None),
            ("23505", None),
            ("22012", None),
            ("55000", None),
        ];
        for (state, want) in cases {
            assert_eq!(
                Transient::of(&DbFailure::server(state, "x")),
                want,
                "{state}"
            );
        }
        let no_state = DbFailure {
            sqlstate: None,
            ..DbFailure::server("00000", "connection closed")
        };
        assert_eq!(Transient::of(&no_state), None);
    }

    #[test]
    fn only_a_statement_timeout_needs_smaller_work() {
        assert!(Transient::StatementTimeout.needs_smaller_work());
        for t in [
            Transient::LockTimeout,
            Transient::Deadlock,
            Transient::Serialization,
        ] {
            assert!(!t.needs_smaller_work(), "{t:?}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff::from(&Guard::default());
        assert_eq!(b.tries, 10);
        for retry in 1..30 {
            let d = b.delay(retry);
            let full = b.first.saturating_mul(1 << (retry - 1).min(16)).min(b.max);
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
        }
    }
}
