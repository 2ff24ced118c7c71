//! `up` and `down`: one loop for both directions, under the runner lock, one audited run.
//!
//! The operator confirms a plan computed without the lock ([`preview`]); [`run`] recomputes it under
//! the lock and refuses if the database moved in between, so what runs is what was confirmed.

use std::time::{Duration, Instant};

use crate::catalog::{Catalog, Revision};
use crate::config::Target;
use crate::db::apply::{self, Prepared, StepReport};
use crate::db::audit::{self, NewEvent, Outcome};
use crate::db::lock;
use crate::db::{Session, history, schema, topology};
use crate::error::{Error, Result};
use crate::event::{Event, Level, Reporter};
use crate::interrupt::Interrupt;
use crate::ops::gate::{self, Policy, Verdict};
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
    /// Who asks, and so which gates the run applies (checked again under the lock).
    pub policy: Policy,
    /// `--out-of-order`: apply migrations below the applied head first (the target's
    /// `out_of_order = true` does the same).
    pub out_of_order: bool,
}

impl Request {
    /// How strictly this request plans on `target`.
    pub fn plan_policy(&self, target: &Target) -> plan::Policy {
        plan::Policy {
            out_of_order: self.out_of_order || target.out_of_order,
        }
    }

    pub fn new(direction: Direction, target: TargetSpec, policy: Policy) -> Self {
        Request {
            direction,
            target,
            policy,
            expect: None,
            action: match direction {
                Direction::Up => "up",
                Direction::Down => "down",
            }
            .into(),
            detail: serde_json::json!({}),
            interrupt: Interrupt::none(),
            out_of_order: false,
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
    /// What the gates said under the lock.
    pub verdict: Verdict,
    /// Revisions applied below the head (`--out-of-order`), also in the audit row.
    pub out_of_order: Vec<Revision>,
}

impl Report {
    /// The one summary line of a finished run, as the CLI prints it, the TUI logs it and a fleet
    /// prints it per target: `upgrade 0003 -> 0005: 2 step(s) in 41ms`.
    pub fn summary(&self) -> String {
        summary(
            self.direction,
            self.from,
            self.to,
            self.steps.len(),
            self.duration_ms,
        )
    }
}

/// [`Report::summary`] from its parts (a fleet keeps only these of each target's report).
pub fn summary(
    direction: Direction,
    from: Revision,
    to: Revision,
    steps: usize,
    duration_ms: u64,
) -> String {
    format!(
        "{} {from} -> {to}: {steps} step(s) in {}",
        direction.verb(),
        crate::text::human_duration_ms(i64::try_from(duration_ms).unwrap_or(i64::MAX))
    )
}

/// A plan and its gates, before the operator confirms.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    #[serde(flatten)]
    pub plan: Plan,
    pub verdict: Verdict,
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
    plan::plan_with(
        catalog,
        &applied,
        req.direction,
        req.target,
        req.plan_policy(target),
    )
    .map_err(plan_error)
}

/// The plan and what the request's gates will say about it, for the operator to see before
/// confirming (the run checks them again under the lock). Changes nothing.
pub async fn preview_gated(target: &Target, catalog: &Catalog, req: &Request) -> Result<Preview> {
    let s = Session::connect(&target.conn, "plan").await?;
    let applied = history::applied(&s).await?;
    let plan = plan::plan_with(
        catalog,
        &applied,
        req.direction,
        req.target,
        req.plan_policy(target),
    )
    .map_err(plan_error)?;
    let verdict = gate::check(&s, target, catalog, &plan, &req.policy).await?;
    Ok(Preview { plan, verdict })
}

/// Record a refused request (irreversible step, drift) in the audit trail. Best effort: the
/// refusal itself is what the operator sees; a failure to audit it is logged.
pub async fn record_refusal(target: &Target, req: &Request, error: &Error) {
    if !matches!(error, Error::Refused(_) | Error::Integrity(_)) {
        return;
    }
    let result = async {
        let s = Session::connect(&target.conn, &req.action).await?;
        let lock = lock::acquire_runner(&s, target.lock_wait, &Reporter::silent()).await?;
        schema::ensure(&lock).await?;
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

/// Whether a run's outcome is in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audited {
    /// The run wrote its row (or, a no-op `up`, had nothing to record).
    Yes,
    /// It ended before it could: the database unreachable, a standby, the runner lock busy, or
    /// the audit write itself failed. The caller may record the failure (as `startup` does).
    No,
}

/// Take the runner lock, plan again, run each step guarded, and audit the outcome.
pub async fn run(
    target: &Target,
    catalog: &Catalog,
    req: &Request,
    reporter: &Reporter,
) -> Result<Report> {
    run_audited(target, catalog, req, reporter).await.0
}

/// [`run`], also saying whether its outcome was audited.
pub async fn run_audited(
    target: &Target,
    catalog: &Catalog,
    req: &Request,
    reporter: &Reporter,
) -> (Result<Report>, Audited) {
    let sessions = async {
        if req.direction == Direction::Up {
            // A migration with no SQL yet must not be skipped over silently, nor recorded as applied.
            catalog.refuse_scaffolds()?;
        }
        let worker = Session::connect(&target.conn, &req.action).await?;
        // Writes go to the primary: a standby is refused before the lock or anything else.
        topology::read(&worker).await?.refuse_standby(&req.action)?;
        // A separate connection watches for blockers and writes the audit row, so both work
        // while the worker waits or after its transaction failed.
        let monitor = Session::connect(&target.conn, &format!("{} monitor", req.action)).await?;
        Ok((worker, monitor))
    };
    let (worker, monitor) = match sessions.await {
        Ok(s) => s,
        Err(e) => return (Err(e), Audited::No),
    };
    let lock = match lock::acquire_runner(&worker, target.lock_wait, reporter).await {
        Ok(l) => l,
        Err(e) => return (Err(e), Audited::No),
    };
    if let Err(e) = schema::ensure(&lock).await {
        return (Err(e), Audited::No);
    }
    // The monitor writes the audit row; a worker transaction that outlives its client could hold
    // that row: wait for it a bounded time, not forever.
    if let Err(e) = monitor.set_lock_timeout(Some(MONITOR_LOCK_WAIT)).await {
        tracing::warn!("setting the monitor's lock_timeout failed: {e}");
    }
    let start = Instant::now();
    let mut started = None;
    let result = run_locked(
        &worker,
        &monitor,
        target,
        catalog,
        req,
        reporter,
        &mut started,
    )
    .await;
    let event = outcome_event(target, req, &result, start);
    let written = match started {
        Some(row) => audit::finish_run(&monitor, row, &event).await,
        // No step ran (a no-op `up` writes nothing: every replica's startup would write one).
        None if matches!(&result, Ok(r) if r.steps.is_empty()) => Ok(()),
        None => audit::record(&monitor, &event).await,
    };
    let audited = match written {
        Ok(()) => Audited::Yes,
        Err(e) => {
            reporter.log(Level::Warn, format!("could not write the audit row: {e}"));
            Audited::No
        }
    };
    drop(worker); // ends the session: the advisory lock goes with it
    (result.map_err(|f| f.error), audited)
}

/// The monitor's `lock_timeout`.
const MONITOR_LOCK_WAIT: Duration = Duration::from_secs(10);

/// The audit row of a finished run.
fn outcome_event(
    target: &Target,
    req: &Request,
    result: &std::result::Result<Report, Failure>,
    start: Instant,
) -> NewEvent {
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
    let verdict = match &result {
        Ok(r) => Some(&r.verdict),
        Err(f) => f.verdict.as_ref(),
    };
    if let Some(v) = verdict
        && let serde_json::Value::Object(gates) = v.audit_detail()
    {
        for (k, value) in gates {
            event.detail[k] = value;
        }
    }
    match &result {
        Ok(r) => {
            event.from = Some(r.from);
            event.to = Some(r.to);
            event.detail["steps"] = serde_json::to_value(&r.steps).unwrap_or_default();
            if !r.out_of_order.is_empty() {
                event.detail["out_of_order"] = serde_json::json!(r.out_of_order);
            }
        }
        Err(Failure {
            error,
            from,
            reached,
            steps,
            ..
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
            if let Some(reason) = req.interrupt.reason() {
                event.outcome = Outcome::Interrupted;
                event.error = Some(format!(
                    "interrupted by {reason}: the step in progress was stopped; the database is at {}. {error}",
                    reached
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "the revision it had".into())
                ));
                event.detail["interrupted_by"] = serde_json::json!(reason);
            }
            event.detail["sqlstate"] = serde_json::json!(error.sqlstate());
            event.detail["steps"] = serde_json::to_value(steps).unwrap_or_default();
        }
    }
    event.detail["target"] = serde_json::json!(target.name);
    event.detail["environment"] = serde_json::json!(target.environment.as_str());
    event
}

struct Failure {
    error: Error,
    from: Option<Revision>,
    reached: Option<Revision>,
    steps: Vec<StepReport>,
    verdict: Option<Verdict>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            from: None,
            reached: None,
            steps: Vec::new(),
            verdict: None,
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
    started: &mut Option<audit::RunRow>,
) -> std::result::Result<Report, Failure> {
    let start = Instant::now();
    let applied = history::applied(worker).await?;
    let current = plan::current(&applied);
    let plan = plan_under_lock(target, catalog, req, &applied).map_err(|f| *f)?;
    // The gates again, now that nobody else can run: what was previewed may have changed.
    let verdict = gate::check(worker, target, catalog, &plan, &req.policy).await?;
    if let Some(error) = verdict.refusal() {
        return Err(Failure {
            error,
            from: Some(current),
            reached: None,
            steps: Vec::new(),
            verdict: Some(verdict),
        });
    }
    for w in verdict.warnings() {
        reporter.log(Level::Warn, w.message.clone());
    }
    if plan.direction == Direction::Up {
        reporter.log(Level::Info, RUNNING);
    }
    if let Some(note) = plan.out_of_order_note() {
        reporter.log(Level::Warn, format!("applying {note}"));
    }
    let prepared = Prepared::new(worker).await?;
    if !plan.steps.is_empty() {
        let row = start_run_row(worker, monitor, target, req, &plan, reporter)
            .await
            .map_err(|error| Failure {
                from: Some(current),
                ..Failure::from(error)
            })?;
        *started = Some(row);
    }
    let progress = started.map(audit::Progress::new);
    let runner = apply::Runner {
        worker,
        monitor,
        prepared: &prepared,
        guard: &target.guard,
        interrupt: &req.interrupt,
        reporter,
        run: progress.as_ref(),
    };
    let steps = match run_steps(&runner, req, &plan, &applied).await {
        Ok(steps) => steps,
        Err((error, reached, steps)) => {
            return Err(Failure {
                error,
                from: Some(plan.from),
                reached: Some(reached),
                steps,
                verdict: Some(verdict),
            });
        }
    };
    if plan.direction == Direction::Up {
        reporter.log(Level::Info, COMPLETED);
    }
    Ok(Report {
        direction: plan.direction,
        from: plan.from,
        to: plan.to,
        steps,
        duration_ms: start.elapsed().as_millis() as u64,
        verdict,
        out_of_order: plan
            .steps
            .iter()
            .filter(|s| s.out_of_order && s.direction == Direction::Up)
            .map(|s| s.revision)
            .collect(),
    })
}

/// The plan from the history read under the lock; refused when it is not the one the operator
/// confirmed.
fn plan_under_lock(
    target: &Target,
    catalog: &Catalog,
    req: &Request,
    applied: &[plan::Applied],
) -> std::result::Result<Plan, Box<Failure>> {
    let current = plan::current(applied);
    let plan = plan::plan_with(
        catalog,
        applied,
        req.direction,
        req.target,
        req.plan_policy(target),
    )
    .map_err(|e| Failure {
        from: Some(current),
        verdict: gate::of_plan_error(&e, &req.policy),
        ..Failure::from(plan_error(e))
    })?;
    if let Some((from, to)) = req.expect
        && (plan.from, plan.to) != (from, to)
    {
        return Err(Box::new(Failure {
            from: Some(current),
            ..Failure::from(Error::Refused(format!(
                "the database moved since the plan was confirmed (confirmed {from} -> {to}, now {} -> {}); nothing was run. Review the plan again.",
                plan.from, plan.to
            )))
        }));
    }
    Ok(plan)
}

/// The run's `started` audit row (from the monitor, so it commits at once), closing the rows of
/// runs that died.
async fn start_run_row(
    worker: &Session,
    monitor: &Session,
    target: &Target,
    req: &Request,
    plan: &Plan,
    reporter: &Reporter,
) -> Result<audit::RunRow> {
    let mut detail = req.detail.clone();
    detail["target"] = serde_json::json!(target.name);
    let row =
        audit::start_run(monitor, &req.action, plan.from, plan.to, worker.pid, detail).await?;
    if let Err(e) = audit::close_dead_runs(monitor, row).await {
        reporter.log(
            Level::Warn,
            format!("could not close interrupted runs: {e}"),
        );
    }
    Ok(row)
}

/// Run the plan's steps in order, each reported, the last one flushed. On failure or an
/// operator stop: the error, the revision reached, and the steps done.
async fn run_steps(
    runner: &apply::Runner<'_>,
    req: &Request,
    plan: &Plan,
    applied: &[plan::Applied],
) -> std::result::Result<Vec<StepReport>, (Error, Revision, Vec<StepReport>)> {
    let mut reports = Vec::with_capacity(plan.steps.len());
    let mut reached = plan.from;
    // What is applied as the steps go (out-of-order steps do not move the head).
    let mut now_applied: std::collections::BTreeSet<Revision> =
        applied.iter().map(|a| a.revision).collect();
    for (index, step) in plan.steps.iter().enumerate() {
        if req.interrupt.is_set() || req.stop.is_set() {
            let error = Error::Failed(format!(
                "interrupted by the operator before {}; the database is at {reached}",
                step.label()
            ));
            return Err((error, reached, reports));
        }
        runner.reporter.emit(Event::StepStarted {
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
        match apply::run_step(runner, step, durability).await {
            Ok(r) => reports.push(r),
            Err(error) => {
                if plan.direction == Direction::Up {
                    runner
                        .reporter
                        .log(Level::Error, format!("{FAILED}: {error}"));
                }
                return Err((error, reached, reports));
            }
        }
        match step.direction {
            Direction::Up => now_applied.insert(step.revision),
            Direction::Down => now_applied.remove(&step.revision),
        };
        reached = now_applied.last().copied().unwrap_or(Revision::BASE);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::gate::{Caller, Checklists, Gate, GateResult, GateState};

    #[test]
    fn the_summary_line_names_direction_revisions_steps_and_time() {
        let plan = Plan {
            direction: Direction::Up,
            from: Revision(3),
            to: Revision(5),
            steps: vec![],
        };
        let policy = Policy::new(Caller::Cli, Checklists::none());
        let skipped = GateResult::new(Gate::Checklist, GateState::Skipped, "not production");
        let report = Report {
            direction: Direction::Up,
            from: Revision(3),
            to: Revision(5),
            steps: vec![],
            duration_ms: 41,
            verdict: gate::verdict(&plan, &Catalog::default(), &policy, skipped),
            out_of_order: vec![],
        };
        assert_eq!(report.summary(), "upgrade 0003 -> 0005: 0 step(s) in 41ms");
    }
}
