//! `fleet up`: plan every target, then run the canaries, stop if any fails, then the rest in waves
//! through a bounded pool; stop launching after K failures or when the operator says stop (the
//! running targets finish their step). Each target's run is `ops::migrate::run`, the same guarded,
//! locked, audited run `pgshift up --target X` makes, with the same lint and checklist gates, its
//! audit row tagged with the fleet run id. Progress is a stream of [`FleetEvent`]s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::backfill::definition::Registry;
use crate::catalog::{Catalog, Revision};
use crate::config::{Environment, Target};
use crate::error::{Error, ExitCode};
use crate::event::{Event, Level, Sink};
use crate::interrupt::Interrupt;
use crate::lint::MigrationLint;
use crate::ops::gate::{Policy, Verdict};
use crate::ops::migrate;
use crate::plan::{Direction, Plan, TargetSpec};
use crate::text::first_line;

use super::{Catalogs, bounded};

/// What a rollout does on every target.
#[derive(Debug, Clone)]
pub enum Job {
    /// `fleet up`: upgrade to this revision.
    Migrate(TargetSpec),
    /// `fleet backfill NAME`: run the backfill (continuing an unfinished run).
    Backfill {
        name: String,
        options: crate::backfill::Options,
    },
}

/// What one target will run, as shown before anything runs.
#[derive(Debug)]
pub enum Work {
    /// The plan the operator confirms, the catalog it was made from, and what the gates say
    /// about it now (the run asks them again under its runner lock).
    Migrate {
        plan: Plan,
        catalog: Arc<Catalog>,
        verdict: Verdict,
    },
    /// The target's backfill definitions (the backfill's name is in the [`Job`]).
    Backfill { registry: Arc<Registry> },
}

/// One target's plan, made before anything runs (what the operator confirms).
#[derive(Debug)]
pub struct Planned {
    pub target: Target,
    /// What will run, or why nothing can (a target without a plan is never run: what runs is
    /// what was shown).
    pub work: Result<Work, Arc<Error>>,
}

impl Planned {
    /// Whether there is anything to run here.
    pub fn has_work(&self) -> bool {
        !matches!(&self.work, Ok(Work::Migrate { plan, .. }) if plan.is_empty())
    }

    pub fn plan(&self) -> Option<&Plan> {
        match &self.work {
            Ok(Work::Migrate { plan, .. }) => Some(plan),
            _ => None,
        }
    }

    pub fn lint(&self) -> &[MigrationLint] {
        match &self.work {
            Ok(Work::Migrate { verdict, .. }) => &verdict.lint,
            _ => &[],
        }
    }

    /// The gates' refusal, if they would refuse this target's run now.
    pub fn refusal(&self) -> Option<Error> {
        match &self.work {
            Ok(Work::Migrate { verdict, .. }) => verdict.refusal(),
            _ => None,
        }
    }
}

/// Every member's backfill `name`, checked against its definitions (no database needed).
pub fn plan_backfill(members: &[Target], catalogs: &Catalogs, name: &str) -> Vec<Planned> {
    members
        .iter()
        .map(|t| {
            let work = catalogs
                .of(t)
                .map_err(Error::Catalog)
                .and_then(|c| crate::backfill::registry(t, &c))
                .and_then(|r| r.get(name).map(|_| ()).map(|()| r))
                .map(|r| Work::Backfill {
                    registry: Arc::new(r),
                });
            Planned {
                target: t.clone(),
                work: work.map_err(Arc::new),
            }
        })
        .collect()
}

/// Refuse a backfill no target can run for the same reason (an unknown name): said once, before
/// any plan is shown, nothing run. Targets that fail on their own keep their rows.
pub fn backfill_known(planned: &[Planned], name: &str) -> Result<(), Error> {
    if planned.iter().all(|p| p.work.is_err())
        && let Some(Err(e)) = planned.first().map(|p| &p.work)
    {
        return Err(Error::Usage(format!(
            "no target can run backfill {name:?}: {e}"
        )));
    }
    Ok(())
}

/// What the operator's yes covers: the CLI and the TUI ask the same way. Touching production
/// makes the confirmation typed: the group's name, or `all` for every configured target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub with_work: usize,
    pub production: usize,
    pub word: String,
}

impl Confirmation {
    pub fn of(group: Option<&str>, planned: &[Planned]) -> Confirmation {
        let with_work = planned.iter().filter(|p| p.has_work());
        Confirmation {
            with_work: with_work.clone().count(),
            production: with_work
                .filter(|p| p.target.environment.is_production())
                .count(),
            word: group.unwrap_or("all").to_string(),
        }
    }

    /// The text to type, when one must be typed.
    pub fn must_type(&self) -> Option<&str> {
        (self.production > 0).then_some(self.word.as_str())
    }
}

/// Plan every member concurrently (`options.parallel` at a time, each within `timeout`), in the
/// members' order, under `options.policy`.
pub async fn plan_all(
    members: &[Target],
    catalogs: &Catalogs,
    spec: TargetSpec,
    options: &Options,
    timeout: Duration,
) -> Vec<Planned> {
    let (policy, parallel) = (&options.policy, options.parallel);
    let jobs: Vec<_> = members
        .iter()
        .map(|t| (t.clone(), catalogs.of(t)))
        .collect();
    bounded(jobs, parallel, move |(target, catalog)| {
        let policy = policy.clone();
        async move {
            let catalog = match catalog {
                Ok(c) => c,
                Err(e) => {
                    return Planned {
                        target,
                        work: Err(Arc::new(Error::Catalog(e))),
                    };
                }
            };
            let req = migrate::Request::new(Direction::Up, spec, policy);
            let preview = match tokio::time::timeout(
                timeout,
                migrate::preview_gated(&target, &catalog, &req),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(Error::Unreachable {
                    target: target.conn.redacted(),
                    reason: format!(
                        "no answer within {}",
                        crate::output::human_duration_s(timeout.as_secs_f64())
                    ),
                }),
            };
            let work = preview.map(|p| Work::Migrate {
                plan: p.plan,
                verdict: p.verdict,
                catalog,
            });
            Planned {
                target,
                work: work.map_err(Arc::new),
            }
        }
    })
    .await
}

/// Which targets go first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canary {
    /// These targets, by name.
    Named(Vec<String>),
    /// The first N targets (by name) that have work.
    Count(usize),
}

/// `--parallel`'s default: targets worked on at once.
pub const DEFAULT_PARALLEL: u16 = 16;
/// `--timeout`'s default: longest wait for one target to connect and answer.
pub const DEFAULT_TIMEOUT: &str = "10s";

#[derive(Debug, Clone)]
pub struct Options {
    pub parallel: usize,
    /// Stop launching new targets once this many have failed (at least 1).
    pub max_failures: usize,
    pub canary: Canary,
    /// Targets per wave after the canaries; `None`: `parallel` when pausing between waves, else
    /// one wave of all the rest.
    pub wave_size: Option<usize>,
    pub pause_between_waves: Duration,
    /// The gates every target's run applies (`Caller::Fleet`, `--allow-lint`, the checklists).
    pub policy: Policy,
    pub terminate_blockers_after: Option<Duration>,
}

impl Options {
    /// What `pgshift fleet up` does without flags: one canary, then the rest in one wave of at
    /// most [`DEFAULT_PARALLEL`] at a time, stopping after the first failure.
    pub fn defaults(policy: Policy) -> Options {
        Options {
            parallel: DEFAULT_PARALLEL.into(),
            max_failures: 1,
            canary: Canary::Count(1),
            wave_size: None,
            pause_between_waves: Duration::ZERO,
            policy,
            terminate_blockers_after: None,
        }
    }
}

/// The gates every target's run of `fleet up` gets: `up`'s lint (`allow_lint` overrides it,
/// audited) and the pre-deploy checklist on production targets.
pub fn policy(loaded: &crate::config::Loaded, allow_lint: bool) -> Policy {
    use crate::ops::gate::{Caller, LintOverride};
    let runbook = crate::runbook::Runbook::load(loaded).map_err(|e| e.to_string());
    Policy::new(Caller::Fleet, runbook.into()).with_lint_override(if allow_lint {
        LintOverride::Allowed
    } else {
        LintOverride::No
    })
}

/// A rollout: its id (in every target's audit row) and what it does.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rollout {
    pub id: String,
    pub group: Option<String>,
    /// What the operator asked for: `head`, `0005`, `+1`, or `backfill NAME`.
    pub to: String,
    #[serde(skip)]
    pub job: Job,
}

impl Rollout {
    pub fn new(group: Option<String>, to: &str, job: Job) -> Rollout {
        let now = time::OffsetDateTime::now_utc();
        let stamp = now
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        Rollout {
            id: format!("fleet-{stamp}-{:04x}", fastrand::u16(..)),
            group,
            to: to.to_string(),
            job,
        }
    }
}

/// Why a target was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCause {
    CanaryFailed,
    MaxFailures,
    Operator,
}

impl SkipCause {
    pub fn describe(self) -> &'static str {
        match self {
            SkipCause::CanaryFailed => "a canary failed",
            SkipCause::MaxFailures => "the failure limit was reached",
            SkipCause::Operator => "stopped by the operator",
        }
    }
}

/// Where one target is in the rollout. The last state of each target is its result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TargetState {
    Waiting,
    /// Nothing to run: already at the revision asked for.
    UpToDate,
    /// Launched; connecting and taking the runner lock.
    Starting,
    /// Another runner holds this database's runner lock; waiting up to `lock_wait`.
    WaitingForLock {
        pid: i32,
        application: String,
    },
    Running {
        step: usize,
        total: usize,
        revision: Revision,
    },
    /// The running step waits on a table lock held by these sessions.
    Blocked {
        revision: Revision,
        pids: Vec<i32>,
    },
    Done {
        from: Revision,
        to: Revision,
        steps: usize,
        duration_ms: u64,
    },
    /// A backfill is running: rows so far of the estimate.
    Filling {
        rows_done: i64,
        rows_estimate: i64,
    },
    /// A backfill finished: rows changed in this session.
    Filled {
        rows: i64,
        duration_ms: u64,
    },
    /// Refused before running (lint, checklist, drift, irreversible): nothing ran.
    Refused {
        reason: String,
        #[serde(with = "super::exit_number")]
        exit_code: ExitCode,
    },
    /// The run failed; its error says how far it got (earlier steps stay applied).
    Failed {
        error: String,
        #[serde(with = "super::exit_number")]
        exit_code: ExitCode,
    },
    /// The operator stopped the fleet; this target finished its step and ran no further.
    Interrupted {
        error: String,
    },
    Skipped {
        cause: SkipCause,
    },
}

impl TargetState {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TargetState::UpToDate
                | TargetState::Done { .. }
                | TargetState::Filled { .. }
                | TargetState::Refused { .. }
                | TargetState::Failed { .. }
                | TargetState::Interrupted { .. }
                | TargetState::Skipped { .. }
        )
    }

    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            TargetState::Refused { .. } | TargetState::Failed { .. }
        )
    }

    /// The result's exit code. A skip caused by a failure elsewhere adds nothing (that failure
    /// carries the code); a stop by the operator is a failed rollout (1).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            TargetState::Refused { exit_code, .. } | TargetState::Failed { exit_code, .. } => {
                *exit_code
            }
            TargetState::Interrupted { .. }
            | TargetState::Skipped {
                cause: SkipCause::Operator,
            } => ExitCode::Failed,
            _ => ExitCode::Ok,
        }
    }

    /// One word for tables: `waiting`, `running 2/5`, `blocked`, `done`, `FAILED`.
    pub fn label(&self) -> String {
        match self {
            TargetState::Waiting => "waiting".into(),
            TargetState::UpToDate => "up to date".into(),
            TargetState::Starting => "starting".into(),
            TargetState::WaitingForLock { pid, .. } => format!("lock wait pid {pid}"),
            TargetState::Running { step, total, .. } => format!("running {step}/{total}"),
            TargetState::Blocked { pids, .. } => match pids.first() {
                Some(pid) => format!("blocked by pid {pid}"),
                None => "blocked".into(),
            },
            TargetState::Done { .. } | TargetState::Filled { .. } => "done".into(),
            TargetState::Filling {
                rows_done,
                rows_estimate,
            } => match rows_done.saturating_mul(100).checked_div(*rows_estimate) {
                Some(pct) => format!("filling {}%", pct.min(100)),
                None => format!("filling {rows_done}"),
            },
            TargetState::Refused { .. } => "REFUSED".into(),
            TargetState::Failed { .. } => "FAILED".into(),
            TargetState::Interrupted { .. } => "interrupted".into(),
            TargetState::Skipped { .. } => "skipped".into(),
        }
    }

    /// The error or reason, when there is one.
    pub fn detail(&self) -> Option<String> {
        match self {
            TargetState::Refused { reason, .. } => Some(reason.clone()),
            TargetState::Failed { error, .. } | TargetState::Interrupted { error } => {
                Some(error.clone())
            }
            TargetState::Skipped { cause } => Some(cause.describe().into()),
            TargetState::WaitingForLock { pid, application } => {
                Some(format!("runner lock held by pid {pid} ({application})"))
            }
            _ => None,
        }
    }
}

/// The rollout's progress: what the CLI prints and the TUI fleet pane draws.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FleetEvent {
    /// Every target's plan, once, before anything runs.
    Planned { targets: Vec<String> },
    Target {
        target: String,
        canary: bool,
        state: TargetState,
    },
    /// A phase begins or the rollout stops launching: `canary: a`, `wave 2/4: 16 targets`.
    Phase { message: String },
    /// A gate's warning for one target (e.g. no recent pre-deploy checklist).
    Warning { target: String, message: String },
}

/// Where fleet progress goes; a closed receiver (the UI quit) never stops the work.
#[derive(Debug, Clone)]
pub struct FleetReporter(Option<UnboundedSender<FleetEvent>>);

impl FleetReporter {
    pub fn new(tx: UnboundedSender<FleetEvent>) -> Self {
        FleetReporter(Some(tx))
    }

    pub fn silent() -> Self {
        FleetReporter(None)
    }

    pub fn send(&self, e: FleetEvent) {
        if let FleetEvent::Phase { message } = &e {
            tracing::info!("fleet: {message}");
        }
        if let Some(tx) = &self.0 {
            tx.send(e).ok();
        }
    }

    fn state(&self, target: &str, canary: bool, state: TargetState) {
        self.send(FleetEvent::Target {
            target: target.to_string(),
            canary,
            state,
        });
    }
}

/// One target's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetResult {
    pub target: String,
    pub environment: Environment,
    pub canary: bool,
    #[serde(flatten)]
    pub state: TargetState,
    #[serde(with = "super::exit_number")]
    pub exit_code: ExitCode,
}

/// What the rollout did, target by target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub run_id: String,
    pub group: Option<String>,
    pub to: String,
    pub operator: String,
    pub started_at: String,
    pub duration_ms: u64,
    /// Why launching stopped early, if it did.
    pub stopped: Option<String>,
    pub targets: Vec<TargetResult>,
    #[serde(with = "super::exit_number")]
    pub exit_code: ExitCode,
}

impl Summary {
    pub fn count(&self, f: impl Fn(&TargetState) -> bool) -> usize {
        self.targets.iter().filter(|t| f(&t.state)).count()
    }
}

/// Everything a target's run needs, shared by the pool's tasks.
struct Ctx {
    rollout: Rollout,
    options: Options,
    events: FleetReporter,
    stop: Interrupt,
}

/// Which targets the canaries are, by index; an unknown name is a usage error.
pub fn canaries(planned: &[Planned], canary: &Canary) -> Result<Vec<usize>, Error> {
    match canary {
        Canary::Count(n) => Ok(planned
            .iter()
            .enumerate()
            .filter(|(_, p)| p.has_work())
            .map(|(i, _)| i)
            .take(*n)
            .collect()),
        Canary::Named(names) => names
            .iter()
            .map(|name| {
                planned
                    .iter()
                    .position(|p| &p.target.name == name)
                    .ok_or_else(|| {
                        Error::Usage(format!("canary {name:?} is not a member of this fleet"))
                    })
            })
            .collect(),
    }
}

/// Run the rollout to its end (or its stop) and return what happened to every target: announce
/// the plan, run the canaries, then the waves, then collect every target's result.
pub async fn execute(
    rollout: Rollout,
    planned: Vec<Planned>,
    options: Options,
    events: FleetReporter,
    stop: Interrupt,
) -> Result<Summary, Error> {
    let start = Instant::now();
    let started_at = crate::db::rfc3339(time::OffsetDateTime::now_utc());
    let canary_idx = canaries(&planned, &options.canary)?;
    let planned: Vec<Arc<Planned>> = planned.into_iter().map(Arc::new).collect();
    let mut results = announce(&planned, &canary_idx, &events);
    let ctx = Arc::new(Ctx {
        rollout: rollout.clone(),
        options,
        events: events.clone(),
        stop,
    });
    let mut pool = Pool {
        ctx: ctx.clone(),
        planned: &planned,
        results: &mut results,
        failures: 0,
    };
    let mut stopped = pool.canary_phase(&canary_idx).await;
    if stopped.is_none() {
        stopped = pool.wave_phase(&canary_idx).await;
    }
    if ctx.stop.is_set() && stopped.is_none() {
        stopped = Some(SkipCause::Operator);
    }
    let targets = collect(&planned, results, &canary_idx, stopped, &events);
    if let Some(cause) = stopped {
        events.send(FleetEvent::Phase {
            message: format!("stopped launching: {}", cause.describe()),
        });
    }
    Ok(Summary {
        run_id: rollout.id,
        group: rollout.group,
        to: rollout.to,
        operator: crate::db::operator(),
        started_at,
        duration_ms: start.elapsed().as_millis() as u64,
        stopped: stopped.map(|c| c.describe().to_string()),
        exit_code: super::worst(targets.iter().map(|t| t.exit_code)),
        targets,
    })
}

/// Send the plan and every target's first state, before anything runs. Returns the results
/// known already: the targets with nothing to do are up to date.
fn announce(
    planned: &[Arc<Planned>],
    canary_idx: &[usize],
    events: &FleetReporter,
) -> Vec<Option<TargetState>> {
    events.send(FleetEvent::Planned {
        targets: planned.iter().map(|p| p.target.name.clone()).collect(),
    });
    let mut results = vec![None; planned.len()];
    for (i, p) in planned.iter().enumerate() {
        let state = if p.has_work() {
            TargetState::Waiting
        } else {
            TargetState::UpToDate
        };
        if !p.has_work() {
            results[i] = Some(state.clone());
        }
        events.state(&p.target.name, canary_idx.contains(&i), state);
    }
    results
}

/// How many targets a wave launches: `--wave-size`, else `parallel` when waves pause between
/// them, else everything in one wave.
fn wave_size(options: &Options, rest: usize) -> usize {
    match (options.wave_size, options.pause_between_waves.is_zero()) {
        (Some(w), _) => w.max(1),
        (None, false) => options.parallel.max(1),
        (None, true) => rest.max(1),
    }
}

/// Every target's final result; a target never launched is skipped for `stopped`'s cause (and
/// its row says so).
fn collect(
    planned: &[Arc<Planned>],
    results: Vec<Option<TargetState>>,
    canary_idx: &[usize],
    stopped: Option<SkipCause>,
    events: &FleetReporter,
) -> Vec<TargetResult> {
    let cause = stopped.unwrap_or(SkipCause::Operator);
    planned
        .iter()
        .zip(results)
        .enumerate()
        .map(|(i, (p, result))| {
            let canary = canary_idx.contains(&i);
            let state = result.unwrap_or(TargetState::Skipped { cause });
            if matches!(state, TargetState::Skipped { .. }) {
                events.state(&p.target.name, canary, state.clone());
            }
            TargetResult {
                target: p.target.name.clone(),
                environment: p.target.environment,
                canary,
                exit_code: state.exit_code(),
                state,
            }
        })
        .collect()
}

/// The bounded pool of per-target runs.
struct Pool<'a> {
    ctx: Arc<Ctx>,
    planned: &'a [Arc<Planned>],
    results: &'a mut Vec<Option<TargetState>>,
    failures: usize,
}

impl Pool<'_> {
    fn failed(&self, i: usize) -> bool {
        self.results[i]
            .as_ref()
            .is_some_and(TargetState::is_failure)
    }

    /// The canaries with work, before any wave. Returns why launching stopped: the stop or
    /// `--max-failures` while they ran, or a canary that failed.
    async fn canary_phase(&mut self, canary_idx: &[usize]) -> Option<SkipCause> {
        let canaries: Vec<usize> = canary_idx
            .iter()
            .copied()
            .filter(|&i| self.planned[i].has_work())
            .collect();
        if canaries.is_empty() {
            return None;
        }
        let names: Vec<&str> = canaries
            .iter()
            .map(|&i| self.planned[i].target.name.as_str())
            .collect();
        self.ctx.events.send(FleetEvent::Phase {
            message: format!("canary: {}", names.join(", ")),
        });
        if let Some(cause) = self.run(&canaries, true).await {
            return Some(cause);
        }
        canaries
            .iter()
            .any(|&i| self.failed(i))
            .then_some(SkipCause::CanaryFailed)
    }

    /// Every other target with work, wave after wave, pausing between waves (the stop cuts a
    /// pause short). Returns why launching stopped, if it did.
    async fn wave_phase(&mut self, canary_idx: &[usize]) -> Option<SkipCause> {
        let ctx = self.ctx.clone();
        let pause = ctx.options.pause_between_waves;
        let rest: Vec<usize> = (0..self.planned.len())
            .filter(|i| !canary_idx.contains(i) && self.planned[*i].has_work())
            .collect();
        let waves: Vec<&[usize]> = rest.chunks(wave_size(&ctx.options, rest.len())).collect();
        for (w, ids) in waves.iter().enumerate() {
            if w > 0 && !pause.is_zero() {
                ctx.events.send(FleetEvent::Phase {
                    message: format!(
                        "pausing {} before wave {}/{}",
                        crate::output::human_duration_s(pause.as_secs_f64()),
                        w + 1,
                        waves.len()
                    ),
                });
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = ctx.stop.fired() => {}
                }
            }
            ctx.events.send(FleetEvent::Phase {
                message: format!("wave {}/{}: {} target(s)", w + 1, waves.len(), ids.len()),
            });
            if let Some(cause) = self.run(ids, false).await {
                return Some(cause);
            }
        }
        None
    }

    /// Run `ids`, at most `parallel` at a time. Returns why launching stopped, if it did; the
    /// targets already running always finish.
    async fn run(&mut self, ids: &[usize], canary: bool) -> Option<SkipCause> {
        let o = &self.ctx.options;
        let mut queue = ids.iter().copied().peekable();
        let mut running = tokio::task::JoinSet::new();
        let mut stopped = None;
        loop {
            while stopped.is_none() && running.len() < o.parallel.max(1) {
                let Some(&i) = queue.peek() else { break };
                if self.ctx.stop.is_set() {
                    stopped = Some(SkipCause::Operator);
                } else if self.failures >= o.max_failures.max(1) {
                    stopped = Some(SkipCause::MaxFailures);
                } else {
                    queue.next();
                    let (p, ctx) = (self.planned[i].clone(), self.ctx.clone());
                    running.spawn(async move { (i, run_target(&p, &ctx, canary).await) });
                }
            }
            if running.is_empty() {
                return stopped;
            }
            tokio::select! {
                joined = running.join_next() => {
                    if let Some(Ok((i, state))) = joined {
                        if state.is_failure() {
                            self.failures += 1;
                        }
                        self.results[i] = Some(state);
                    }
                }
                _ = self.ctx.stop.fired(), if stopped.is_none() => {
                    stopped = Some(SkipCause::Operator);
                }
            }
        }
    }
}

/// One target's guarded run: the gates `up` applies, then `migrate::run` against the plan the
/// operator confirmed. Returns its final state (also sent as an event).
async fn run_target(p: &Planned, ctx: &Ctx, canary: bool) -> TargetState {
    let name = p.target.name.as_str();
    ctx.events.state(name, canary, TargetState::Starting);
    let state = guarded_run(p, ctx, canary).await;
    ctx.events.state(name, canary, state.clone());
    state
}

async fn guarded_run(p: &Planned, ctx: &Ctx, canary: bool) -> TargetState {
    let mut tags = serde_json::Map::new();
    tags.insert("via".into(), "fleet".into());
    tags.insert("fleet_run".into(), ctx.rollout.id.clone().into());
    tags.insert("fleet_group".into(), ctx.rollout.group.clone().into());
    tags.insert("canary".into(), canary.into());
    crate::db::audit::tagged(tags, async {
        match (&p.work, &ctx.rollout.job) {
            (Ok(Work::Migrate { plan, catalog, .. }), Job::Migrate(spec)) => {
                migrate_target(p, ctx, canary, *spec, plan, catalog).await
            }
            (Ok(Work::Backfill { registry }), Job::Backfill { name, options }) => {
                backfill_target(p, ctx, canary, registry, name, options).await
            }
            (Err(e), Job::Migrate(spec)) => {
                // Refusals (drift, irreversible) are audited as `up` would audit them.
                let req = migrate::Request::new(Direction::Up, *spec, ctx.options.policy.clone());
                migrate::record_refusal(&p.target, &req, e).await;
                refused_or_failed(e)
            }
            (Err(e), _) => refused_or_failed(e),
            (Ok(_), _) => refused_or_failed(&Error::Failed(
                "internal: the plan does not match the rollout's job".into(),
            )),
        }
    })
    .await
}

/// The target with the rollout's per-run settings.
fn prepared(p: &Planned, ctx: &Ctx) -> Target {
    let mut target = p.target.clone();
    target.guard.terminate_blockers_after = ctx.options.terminate_blockers_after;
    target
}

/// The guarded run of the confirmed plan; `migrate::run` applies `up`'s gates (lint, the
/// pre-deploy checklist on production) under the runner lock, refusing and auditing there.
async fn migrate_target(
    p: &Planned,
    ctx: &Ctx,
    canary: bool,
    spec: TargetSpec,
    plan: &Plan,
    catalog: &Catalog,
) -> TargetState {
    let mut req = migrate::Request::new(Direction::Up, spec, ctx.options.policy.clone());
    req.expect = Some((plan.from, plan.to));
    req.stop = ctx.stop.clone();
    let target = prepared(p, ctx);
    let progress = progress(&target.name, canary, ctx.events.clone());
    let result = migrate::run(&target, catalog, &req, progress.reporter()).await;
    progress.finish().await;
    match result {
        Ok(r) => TargetState::Done {
            from: r.from,
            to: r.to,
            steps: r.steps.len(),
            duration_ms: r.duration_ms,
        },
        Err(e @ Error::Failed(_)) if ctx.stop.is_set() => TargetState::Interrupted {
            error: first_line(&e.to_string()).to_string(),
        },
        Err(e) => refused_or_failed(&e),
    }
}

/// The backfill's normal run (its own locks, batches, cursor and audit rows); a fleet stop
/// pauses it after its current batch, resumable as any paused run.
async fn backfill_target(
    p: &Planned,
    ctx: &Ctx,
    canary: bool,
    registry: &Registry,
    name: &str,
    options: &crate::backfill::Options,
) -> TargetState {
    let control = crate::backfill::engine::Control::default();
    let pauser = {
        let (stop, control) = (ctx.stop.clone(), control.clone());
        tokio::spawn(async move {
            stop.fired().await;
            control.request_pause();
        })
    };
    let target = prepared(p, ctx);
    let progress = progress(&target.name, canary, ctx.events.clone());
    let result = crate::backfill::start(
        &target,
        registry,
        name,
        options,
        crate::backfill::Mode::Run,
        &control,
        progress.reporter(),
    )
    .await;
    pauser.abort();
    progress.finish().await;
    match result {
        Ok(r) if r.state == crate::backfill::Ended::UpToDate => TargetState::UpToDate,
        Ok(r) if r.is_complete() => TargetState::Filled {
            rows: r.rows,
            duration_ms: r.duration_ms,
        },
        Ok(r) => TargetState::Interrupted {
            error: format!(
                "backfill {name} {} after {} rows; {}",
                r.state,
                r.rows_total,
                r.next.as_deref().unwrap_or("see `pgshift backfill status`")
            ),
        },
        Err(e) => refused_or_failed(&e),
    }
}

fn refused_or_failed(e: &Error) -> TargetState {
    match e {
        Error::Refused(_) | Error::Integrity(_) | Error::Catalog(_) | Error::Usage(_) => {
            TargetState::Refused {
                reason: first_line(&e.to_string()).to_string(),
                exit_code: e.exit_code(),
            }
        }
        _ => TargetState::Failed {
            error: first_line(&e.to_string()).to_string(),
            exit_code: e.exit_code(),
        },
    }
}

/// A reporter for one target's run whose events become that target's fleet states.
fn progress(name: &str, canary: bool, events: FleetReporter) -> Sink {
    let name = name.to_string();
    Sink::spawn(move |e| {
        let state = match e {
            Event::LockBusy { holder } => TargetState::WaitingForLock {
                pid: holder.pid,
                application: holder.application,
            },
            Event::StepStarted {
                index,
                total,
                revision,
                ..
            } => TargetState::Running {
                step: index,
                total,
                revision,
            },
            Event::BackfillProgress {
                rows_done,
                rows_estimate,
                ..
            } => TargetState::Filling {
                rows_done,
                rows_estimate,
            },
            Event::Blocked { revision, blockers }
            | Event::StepRetry {
                revision, blockers, ..
            } => TargetState::Blocked {
                revision,
                pids: blockers.iter().map(|b| b.pid).collect(),
            },
            Event::Log {
                level: Level::Warn,
                message,
            } => {
                events.send(FleetEvent::Warning {
                    target: name.clone(),
                    message,
                });
                return;
            }
            _ => return,
        };
        events.state(&name, canary, state);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(name: &str, steps: usize) -> Planned {
        let t = crate::config::TargetConfig {
            url: Some(format!("postgres://u@h/{name}")),
            ..Default::default()
        };
        let target = crate::config::build_target(name, &t, &Default::default(), "test").unwrap();
        let plan = Plan {
            direction: Direction::Up,
            from: Revision(1),
            to: Revision(1 + steps as u32),
            steps: (0..steps)
                .map(|i| crate::plan::Step {
                    revision: Revision(2 + i as u32),
                    name: format!("m{i}"),
                    direction: Direction::Up,
                    sql: String::new(),
                    no_transaction: false,
                    checksum: 0,
                    down: None,
                    out_of_order: false,
                })
                .collect(),
        };
        let catalog = Catalog::default();
        let policy = Policy::new(
            crate::ops::gate::Caller::Fleet,
            crate::ops::gate::Checklists::none(),
        );
        let checklist = crate::ops::gate::GateResult::new(
            crate::ops::gate::Gate::Checklist,
            crate::ops::gate::GateState::Passed,
            "",
        );
        let verdict = crate::ops::gate::verdict(&plan, &catalog, &policy, checklist);
        Planned {
            target,
            work: Ok(Work::Migrate {
                plan,
                catalog: Arc::new(catalog),
                verdict,
            }),
        }
    }

    #[test]
    fn canaries_are_the_first_targets_with_work_or_the_named_ones() {
        let p = vec![
            planned("a", 0),
            planned("b", 2),
            planned("c", 1),
            planned("d", 1),
        ];
        assert_eq!(canaries(&p, &Canary::Count(2)).unwrap(), vec![1, 2]);
        assert_eq!(
            canaries(&p, &Canary::Count(0)).unwrap(),
            Vec::<usize>::new()
        );
        assert_eq!(
            canaries(&p, &Canary::Named(vec!["d".into()])).unwrap(),
            vec![3]
        );
        let e = canaries(&p, &Canary::Named(vec!["zz".into()])).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::Usage);
    }

    #[test]
    fn production_with_work_makes_the_confirmation_typed_with_the_group_name() {
        let prod = |name: &str, steps: usize| {
            let mut p = planned(name, steps);
            p.target.environment = Environment::Production;
            p
        };
        let staging_only = vec![planned("a", 1), planned("b", 0)];
        assert_eq!(
            Confirmation::of(Some("eu"), &staging_only).must_type(),
            None
        );
        // A production target already at the revision runs nothing: no word to type.
        let idle_prod = vec![planned("a", 1), prod("p", 0)];
        assert_eq!(Confirmation::of(None, &idle_prod).must_type(), None);
        let busy_prod = vec![planned("a", 1), prod("p", 2)];
        let c = Confirmation::of(Some("eu"), &busy_prod);
        assert_eq!((c.with_work, c.production), (2, 1));
        assert_eq!(c.must_type(), Some("eu"));
        assert_eq!(Confirmation::of(None, &busy_prod).must_type(), Some("all"));
    }

    #[test]
    fn only_failures_and_operator_stops_make_a_rollout_fail() {
        let failed = TargetState::Failed {
            error: "x".into(),
            exit_code: ExitCode::LockBusy,
        };
        assert_eq!(failed.exit_code(), ExitCode::LockBusy);
        assert!(failed.is_failure() && failed.is_final());
        let skipped = |cause| TargetState::Skipped { cause };
        assert_eq!(skipped(SkipCause::CanaryFailed).exit_code(), ExitCode::Ok);
        assert_eq!(skipped(SkipCause::MaxFailures).exit_code(), ExitCode::Ok);
        assert_eq!(skipped(SkipCause::Operator).exit_code(), ExitCode::Failed);
        assert!(!TargetState::Starting.is_final());
        assert_eq!(
            TargetState::Filling {
                rows_done: 450,
                rows_estimate: 1000
            }
            .label(),
            "filling 45%"
        );
        assert_eq!(
            TargetState::Filling {
                rows_done: 7,
                rows_estimate: 0
            }
            .label(),
            "filling 7"
        );
    }
}
