//! `--terminate-blockers-after`: the runbook's "kill blocking processes if safe", opt-in. A session
//! is terminated only after it has blocked the step for the whole grace period, never when it is
//! another pgshift session (a runner or backfill has its own lock and its own operator), and each
//! termination writes its own audit row, also when it fails.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Session;
use super::audit::{self, NewEvent, Outcome};
use super::blockers::{self, Blocker};
use crate::event::{Level, Reporter};
use crate::plan::Step;

/// The audit action of a terminated blocker.
pub const ACTION: &str = "terminate-blocker";

/// When each blocking pid was first seen, and which ones were already dealt with (per retried statement).
#[derive(Debug, Default)]
pub struct Overdue {
    first_seen: HashMap<i32, Instant>,
    done: Vec<i32>,
}

impl Overdue {
    /// Terminate the blockers in `current` that have blocked the step for at least `after`.
    pub async fn terminate(
        &mut self,
        monitor: &Session,
        step: &Step,
        current: &[Blocker],
        after: Duration,
        reporter: &Reporter,
    ) {
        let now = Instant::now();
        for b in current {
            let since = *self.first_seen.entry(b.pid).or_insert(now);
            if self.done.contains(&b.pid) || now.duration_since(since) < after {
                continue;
            }
            self.done.push(b.pid);
            if is_pgshift(b) {
                reporter.log(
                    Level::Warn,
                    format!("not terminating {b}: it is another pgshift session; stop it from its own screen"),
                );
                continue;
            }
            terminate(monitor, step, b, now.duration_since(since), after, reporter).await;
        }
    }
}

fn is_pgshift(b: &Blocker) -> bool {
    b.application.starts_with("pgshift")
}

async fn terminate(
    monitor: &Session,
    step: &Step,
    b: &Blocker,
    blocked_for: Duration,
    after: Duration,
    reporter: &Reporter,
) {
    let result = blockers::signal(monitor, b.pid, blockers::Signal::Terminate).await;
    let mut event = NewEvent::new(ACTION, Outcome::Ok);
    event.to = Some(step.revision);
    event.detail = serde_json::json!({
        "blocker": b,
        "blocked_for_ms": blocked_for.as_millis() as u64,
        "terminate_blockers_after_ms": after.as_millis() as u64,
        "step": step.label(),
    });
    match &result {
        Ok(true) => reporter.log(
            Level::Warn,
            format!(
                "terminated {b}: it blocked {} for {} ms (--terminate-blockers-after {} ms); its open transaction was rolled back",
                step.revision,
                blocked_for.as_millis(),
                after.as_millis()
            ),
        ),
        Ok(false) => {
            event.outcome = Outcome::Failed;
            event.error = Some(format!("pg_terminate_backend({}) returned false: the session was already gone", b.pid));
            reporter.log(Level::Warn, format!("could not terminate pid {}: it was already gone", b.pid));
        }
        Err(e) => {
            event.outcome = Outcome::Failed;
            event.error = Some(e.to_string());
            reporter.log(
                Level::Warn,
                format!(
                    "could not terminate pid {}: {e}\n  The role needs pg_signal_backend (or to be the blocker's role) to end other sessions.",
                    b.pid
                ),
            );
        }
    }
    if let Err(e) = audit::record(monitor, &event).await {
        reporter.log(
            Level::Warn,
            format!("could not audit the termination of pid {}: {e}", b.pid),
        );
    }
}
