//! `up` and `down`: one loop for both directions, under the runner lock, one audited run.
//!
//! The operator confirms a plan computed without the lock ([`preview`]); [`run`] recomputes it under
//! the lock and refuses if the database moved in between, so what runs is what was confirmed.

use std::time::Instant;

use crate::catalog::{Catalog, Revision};
use crate::config::Target;
use crate::db::apply::{self, Prepared, StepReport};
use crate::db::audit::{self, NewEvent, Outcome};
use crate::db::lock;
use crate::db::{Session, history, schema};
use crate::error::{Error, Result};
use crate::event::{Event, Level, Reporter};
use crate::interrupt::Interrupt;
use crate::plan::{self, Direction, Plan, PlanError, TargetSpec};

/// The runbook's log lines, verbatim.
pub const RUNNING: &str = "🔄 Running database migrations...";
pub const COMPLETED: &str = "✅ Database migrations completed successfully";
pub const FAILED: &str = "❌ Database migrations failed";
pub const DEGRADED: &str = "🚨 Application will start but database operations may fail";

#[derive(Debug, Clone)]
pub struct Request {
    pub direction: Direction,
    pub target: TargetSpec,
    /// The (from, to) the operator confirmed; the run is refused if the plan changed since.
    pub expect: Option<(Revision, Revision)>,
    /// The audit action name (`up`, `down`, `startup`, `retry`).
    pub action: String,
    /// Extra audit detail (e.g. lint findings that were allowed).
    pub detail: serde_json::Value,
    /// Fired by the operator: cancel the running statement, stop after it rolls back.
    pub interrupt: Interrupt,
    /// Fired when a fleet stops: the running step finishes, no further step starts.
    pub stop: Interrupt,
}

impl Request {
    pub fn new(direction: Direction, target: TargetSpec) -> Self {
        Request {
            direction,
            target,
            expect: None,
            action: match direction {
                Direction::Up => "up",
                Direction::Down => "down",
            }
            .into(),
            detail: serde_json::json!({}),
            interrupt: Interrupt::none(),
            stop: Interrupt::none(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub direction: Direction,
    pub from: Revision,
    pub to: Revision,
    pub steps: Vec<StepReport>,
    pub duration_ms: u64,
}

pub fn plan_error(e: PlanError) -> Error {
    if e.is_integrity() {
        Error::Integrity(e.to_string())
    } else if matches!(e, PlanError::Irreversible { .. }) {
        Error::Refused(e.to_string())
    } else {
        Error::Usage(e.to_string())
    }
}

/// The plan as it stands now, without taking the lock or changing anything.
pub async fn preview(target: &Target, catalog: &Catalog, req: &Request) -> Result<Plan> {
    let s = Session::connect(&target.conn, "plan").await?;
    let applied = history::applied(&s).await?;
    plan::plan(catalog, &applied, req.direction, req.target).map_err(plan_error)
}

/// Record a refused request (irreversible step, drift) in the audit trail. Best effort: the
/// refusal itself is what the operator sees; a failure to audit it is logged.
pub async fn record_refusal(target: &Target, req: &Request, error: &Error) {
    if !matches!(error, Error::Refused(_) | Error::Integrity(_)) {
        return;
    }
    let result = async {
        let s = Session::connect(&target.conn, &req.action).await?;
        lock::acquire(&s, lock::RUNNER, &lock::runner_name(&s), target.lock_wait, &Reporter::silent()).await?;
        schema::ensure(&s).await?;
        let current = plan::current(&history::applied(&s).await?);
        let mut e = NewEvent::new(&req.action, Outcome::Refused);
        e.from = Some(current);
        e.error = Some(error.to_string());
        e.detail = serde_json::json!({ "target": target.name, "environment": target.environment.as_str() });
        audit::record(&s, &e).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!("could not audit the refusal: {e}");
    }
}

/// Take the runner lock, plan again, run each step guarded, and audit the outcome.
pub async fn run(
    target: &Target,
    catalog: &Catalog,
    req: &Request,
    reporter: &Reporter,
) -> Result<Report> {
    let worker = Session::connect(&target.conn, &req.action).await?;
    // A separate connection watches for blockers and writes the audit row, so both work while
    // the worker waits or after its transaction failed.
    let monitor = Session::connect(&target.conn, &format!("{} monitor", req.action)).await?;
    let db = lock::runner_name(&worker);
    lock::acquire(&worker, lock::RUNNER, &db, target.lock_wait, reporter).await?;
    schema::ensure(&worker).await?;
    let start = Instant::now();
    let result = run_locked(&worker, &monitor, target, catalog, req, reporter).await;
    let mut event = NewEvent::new(
        &req.action,
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
    );
    event.duration = start.elapsed();
    event.detail = req.detail.clone();
    match &result {
        Ok(r) => {
            event.from = Some(r.from);
            event.to = Some(r.to);
            event.detail["steps"] = serde_json::to_value(&r.steps).unwrap_or_default();
        }
        Err(Failure {
            error,
            from,
            reached,
            steps,
        }) => {
            if matches!(
                error,
                Error::Integrity(_) | Error::Refused(_) | Error::Usage(_)
            ) {
                event.outcome = Outcome::Refused;
            }
            event.from = *from;
            event.to = *reached;
            event.error = Some(error.to_string());
            event.detail["sqlstate"] = serde_json::json!(error.sqlstate());
            event.detail["steps"] = serde_json::to_value(steps).unwrap_or_default();
        }
    }
    event.detail["target"] = serde_json::json!(target.name);
    event.detail["environment"] = serde_json::json!(target.environment.as_str());
    // Skip the audit row for a no-op `up` (every replica's startup would write one).
    let noop = matches!(&result, Ok(r) if r.steps.is_empty());
    if !noop && let Err(e) = audit::record(&monitor, &event).await {
        reporter.log(Level::Warn, format!("could not write the audit row: {e}"));
    }
    drop(worker); // ends the session: the advisory lock goes with it
    result.map_err(|f| f.error)
}

struct Failure {
    error: Error,
    from: Option<Revision>,
    reached: Option<Revision>,
    steps: Vec<StepReport>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            from: None,
            reached: None,
            steps: Vec::new(),
        }
    }
}

async fn run_locked(
    worker: &Session,
    monitor: &Session,
    target: &Target,
    catalog: &Catalog,
    req: &Request,
    reporter: &Reporter,
) -> std::result::Result<Report, Failure> {
    let start = Instant::now();
    let applied = history::applied(worker).await?;
    let current = plan::current(&applied);
    let plan = plan::plan(catalog, &applied, req.direction, req.target).map_err(|e| Failure {
        from: Some(current),
        ..Failure::from(plan_error(e))
    })?;
    if let Some((from, to)) = req.expect
        && (plan.from, plan.to) != (from, to)
    {
        return Err(Failure {
            from: Some(current),
            ..Failure::from(Error::Refused(format!(
                "the database moved since the plan was confirmed (confirmed {from} -> {to}, now {} -> {}); nothing was run. Review the plan again.",
                plan.from, plan.to
            )))
        });
    }
    if plan.direction == Direction::Up {
        reporter.log(Level::Info, RUNNING);
    }
    let prepared = Prepared::new(worker).await?;
    let runner = apply::Runner {
        worker,
        monitor,
        prepared: &prepared,
        guard: &target.guard,
        interrupt: &req.interrupt,
        reporter,
    };
    let mut reports = Vec::with_capacity(plan.steps.len());
    let mut reached = plan.from;
    for (index, step) in plan.steps.iter().enumerate() {
        if req.interrupt.is_set() || req.stop.is_set() {
            return Err(Failure {
                error: Error::Failed(format!(
                    "interrupted by the operator before {}; the database is at {reached}",
                    step.label()
                )),
                from: Some(plan.from),
                reached: Some(reached),
                steps: reports,
            });
        }
        reporter.emit(Event::StepStarted {
            index: index + 1,
            total: plan.steps.len(),
            revision: step.revision,
            name: step.name.clone(),
            direction: step.direction,
        });
        let durability = if index + 1 == plan.steps.len() {
            apply::Durability::Flush
        } else {
            apply::Durability::Deferred
        };
        match apply::run_step(&runner, step, durability).await {
            Ok(r) => reports.push(r),
            Err(error) => {
                if plan.direction == Direction::Up {
                    reporter.log(Level::Error, format!("{FAILED}: {error}"));
                }
                return Err(Failure {
                    error,
                    from: Some(plan.from),
                    reached: Some(reached),
                    steps: reports,
                });
            }
        }
        reached = match step.direction {
            Direction::Up => step.revision,
            Direction::Down => plan
                .steps
                .get(index + 1)
                .map(|s| s.revision)
                .unwrap_or(plan.to),
        };
    }
    if plan.direction == Direction::Up {
        reporter.log(Level::Info, COMPLETED);
    }
    Ok(Report {
        direction: plan.direction,
        from: plan.from,
        to: plan.to,
        steps: reports,
        duration_ms: start.elapsed().as_millis() as u64,
    })
}
