//! Progress events from core operations. The CLI prints them, the TUI turns them into state.

use std::time::Duration;

use crate::catalog::Revision;
use crate::db::blockers::Blocker;
use crate::db::lock::Holder;
use crate::plan::Direction;

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
        #[serde(with = "ms")]
        delay: Duration,
        blockers: Vec<Blocker>,
    },
    StepFinished {
        revision: Revision,
        #[serde(with = "ms")]
        elapsed: Duration,
        attempts: u32,
    },
    /// A line for the log (the runbook's lines among them).
    Log { level: Level, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

mod ms {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// Where a core operation sends its progress. Progress is advisory: when nobody listens any more
/// (the UI closed), events are dropped and the operation carries on to a consistent end.
#[derive(Debug, Clone, Default)]
pub struct Reporter {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
}

impl Reporter {
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<Event>) -> Self {
        Reporter { tx: Some(tx) }
    }

    /// A reporter that drops everything (tests, library callers without progress).
    pub fn silent() -> Self {
        Reporter { tx: None }
    }

    pub fn emit(&self, event: Event) {
        match &event {
            Event::Log {
                level: Level::Error,
                message,
            } => tracing::error!("{message}"),
            Event::Log {
                level: Level::Warn,
                message,
            } => tracing::warn!("{message}"),
            Event::Log { message, .. } => tracing::info!("{message}"),
            other => tracing::debug!(?other),
        }
        if let Some(tx) = &self.tx {
            // A closed receiver means nobody watches progress; the work itself must go on.
            tx.send(event).ok();
        }
    }

    pub fn log(&self, level: Level, message: impl Into<String>) {
        self.emit(Event::Log {
            level,
            message: message.into(),
        });
    }
}
