//! Progress events from core operations. The CLI prints them, the TUI turns them into state.

use std::time::Duration;

pub mod line;

use crate::catalog::Revision;
use crate::plan::Direction;
use crate::sessions::{Blocker, Holder, Lagging};

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Another runner holds the lock; we are waiting for it.
    LockBusy { holder: Holder },
    StepStarted {
        index: usize,
        total: usize,
        revision: Revision,
        name: String,
        direction: Direction,
    },
    /// A statement of a no-transaction step is starting.
    Statement {
        revision: Revision,
        line: usize,
        text: String,
    },
    /// The step is waiting on a lock held by these sessions.
    Blocked {
        revision: Revision,
        blockers: Vec<Blocker>,
    },
    StepRetry {
        revision: Revision,
        attempt: u32,
        attempts: u32,
        reason: String,
        #[serde(with = "crate::config::millis")]
        delay: Duration,
        blockers: Vec<Blocker>,
    },
    StepFinished {
        revision: Revision,
        #[serde(with = "crate::config::millis")]
        elapsed: Duration,
        attempts: u32,
    },
    /// A line for the log (the runbook's lines among them).
    Log { level: Level, message: String },
    /// A backfill run started, or continued an unfinished run from its saved cursor.
    BackfillStarted {
        name: String,
        run_id: i64,
        /// The saved cursor it continues after, when resuming.
        resumed_from: Option<String>,
        rows_done: i64,
        rows_estimate: i64,
        batch_size: i64,
    },
    /// Progress after a committed batch (at most a few per second, and always the last one).
    BackfillProgress {
        name: String,
        rows_done: i64,
        rows_estimate: i64,
        /// Rows per second over this session's running time.
        rate: f64,
        /// Seconds to go at the current rate; `None` before the first batch.
        eta_s: Option<f64>,
        batch_ms_p50: u64,
        batch_ms_max: u64,
        batch_size: i64,
        batches: i64,
        retries: i64,
    },
    /// A batch hit a lock timeout, deadlock or statement timeout and is retried.
    BackfillRetry {
        name: String,
        attempt: u32,
        attempts: u32,
        reason: String,
        #[serde(with = "crate::config::millis")]
        delay: Duration,
        batch_size: i64,
    },
    /// Held before a backfill batch (`name`) or a no-transaction statement (`revision`): a
    /// streaming replica's replay lag is above `max_replica_lag`. Sent on every poll (about once a
    /// second) while the wait lasts; the next progress or statement event means it is over.
    ReplicaWait {
        name: Option<String>,
        revision: Option<Revision>,
        replica: String,
        lag_s: f64,
        max_s: f64,
        waited_s: f64,
    },
    /// A backfill run ended: done, paused, cancelled or failed.
    BackfillStopped {
        name: String,
        run_id: i64,
        state: RunState,
        rows_done: i64,
        #[serde(with = "crate::config::millis")]
        elapsed: Duration,
        /// What to type next (resume command), when there is something left to do.
        next: Option<String>,
    },
}

/// The state of a backfill run, as `pgshift_backfill_runs` stores it and the run's events and
/// reports carry it. Defined here, not in `db::backfill_runs` (which re-exports it), so that
/// `event` need not depend on `db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Paused,
    Done,
    Cancelled,
    Failed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Done => "done",
            RunState::Cancelled => "cancelled",
            RunState::Failed => "failed",
        }
    }

    /// The state a word of [`RunState::as_str`] names.
    pub fn parse(s: &str) -> Option<RunState> {
        [
            RunState::Running,
            RunState::Paused,
            RunState::Done,
            RunState::Cancelled,
            RunState::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// A run that a later `run` or `resume` continues from its cursor.
    pub fn is_unfinished(self) -> bool {
        matches!(
            self,
            RunState::Running | RunState::Paused | RunState::Failed
        )
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Event {
    /// The wait event for `lagging`, before backfill `name` or migration `revision`.
    pub fn replica_wait(
        name: Option<&str>,
        revision: Option<Revision>,
        lagging: &Lagging,
        waited: Duration,
    ) -> Event {
        Event::ReplicaWait {
            name: name.map(str::to_string),
            revision,
            replica: lagging.replica.clone(),
            lag_s: lagging.lag.as_secs_f64(),
            max_s: lagging.max.as_secs_f64(),
            waited_s: waited.as_secs_f64(),
        }
    }

    /// The lagging replica a [`Event::ReplicaWait`] is about.
    pub fn lagging(&self) -> Option<Lagging> {
        let Event::ReplicaWait {
            replica,
            lag_s,
            max_s,
            ..
        } = self
        else {
            return None;
        };
        Some(Lagging {
            replica: replica.clone(),
            lag: Duration::from_secs_f64(lag_s.max(0.0)),
            max: Duration::from_secs_f64(max_s.max(0.0)),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Where a core operation sends its progress. Progress is advisory: when nobody listens any more
/// (the UI closed), events are dropped and the operation carries on to a consistent end.
#[derive(Debug, Clone)]
pub struct Reporter {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
    /// Whether `emit` logs the event. Off only for a reporter whose receiver re-emits into
    /// another reporter, which logs it: each event reaches the log file exactly once.
    logs: bool,
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::silent()
    }
}

impl Reporter {
    /// A reporter that only logs (tests, library callers without progress).
    pub fn silent() -> Self {
        Reporter {
            tx: None,
            logs: true,
        }
    }

    pub fn emit(&self, event: Event) {
        if self.logs {
            log(&event);
        }
        if let Some(tx) = &self.tx {
            // A closed receiver means nobody watches progress; the work itself must go on.
            tx.send(event).ok();
        }
    }

    pub fn log(&self, level: Level, message: impl Into<String>) {
        self.emit(Event::Log {
            level,
            message: crate::secrets::redact(&message.into()).into_owned(),
        });
    }
}

/// What listens to a [`Sink`]'s events: a closure, or a printer that also has something to do
/// after the last event.
pub trait Handle: Send + 'static {
    fn event(&mut self, event: Event);
    /// After the last event (the reporter was dropped).
    fn end(&mut self) {}
}

impl<F: FnMut(Event) + Send + 'static> Handle for F {
    fn event(&mut self, event: Event) {
        self(event)
    }
}

/// A reporter whose events one task of their own handles, in order: the CLI prints them, the TUI
/// turns them into `Msg`s, a fleet into target states, startup forwards them. The one way to listen
/// to a core operation's progress.
pub struct Sink {
    reporter: Reporter,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    pub fn spawn(handle: impl Handle) -> Sink {
        Sink::with(handle, true)
    }

    /// For a forwarder: `handle` passes (some) events on to another `Reporter`'s `emit`, which
    /// logs them, so this one does not (each event reaches the log file exactly once).
    pub fn forwarding(handle: impl Handle) -> Sink {
        Sink::with(handle, false)
    }

    fn with(mut handle: impl Handle, logs: bool) -> Sink {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let task = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                handle.event(e);
            }
            handle.end();
        });
        let reporter = Reporter { tx: Some(tx), logs };
        Sink { reporter, task }
    }

    /// What the operation reports to.
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// Close the stream and wait until every event was handled, so that all progress comes out
    /// before the result. Clones of the reporter must be gone by then.
    pub async fn finish(self) {
        drop(self.reporter);
        self.task.await.ok();
    }
}

/// The event in the log file (tracing).
fn log(event: &Event) {
    match event {
        Event::Log {
            level: Level::Error,
            message,
        } => tracing::error!("{message}"),
        Event::Log {
            level: Level::Warn,
            message,
        } => tracing::warn!("{message}"),
        Event::Log { message, .. } => tracing::info!("{message}"),
        // Lock and replica waits go to the log with the reason named, as on the screen.
        Event::Blocked { .. } | Event::StepRetry { .. } | Event::ReplicaWait { .. } => {
            if let Some(line) = line::event_line(event) {
                tracing::warn!("{}", line.trim_start());
            }
        }
        other => tracing::debug!(?other),
    }
}
