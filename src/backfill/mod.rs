//! Backfills: batched, throttled, resumable data migrations (the runbook's `make backfill`).
//!
//! The core API, shared by the CLI and the TUI's Backfills pane (plain async functions, progress
//! through a [`Reporter`], state in `pgshift_backfill_runs` so every terminal sees every run):
//! - [`registry`]: the definitions in `migrations/backfills/`, in declared order;
//! - [`overview`] / [`overview_on`]: each definition with its latest run (state, rows, rate, ETA,
//!   last error), also for runs started from another terminal;
//! - [`dry_run`]: counts, preview and a timed sample batch, all rolled back;
//! - [`start`] (a [`Mode`]: run or resume): run batches until done, paused (a [`Control`] or
//!   [`pause`]) or cancelled;
//! - [`pause`] / [`cancel`]: ask the engine running a backfill, in any process, to stop.

pub mod definition;
pub mod engine;
pub mod guarded;
pub mod inspect;
pub mod key;
pub mod stats;
pub mod store;

use std::time::{Duration, Instant};

pub use definition::{Definition, Registry};
pub use engine::Control;
pub use store::{RunRow, RunState};

use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::audit::{self, NewEvent, Outcome};
use crate::db::{self, Session, backfill_batches, lock, schema};
use crate::error::{Error, Result};
use crate::event::{Event, Level, Reporter};
use crate::interrupt::Interrupt;
use key::Key;

/// How long a run waits for the backfill's lock before refusing: long enough for the server to
/// notice that a killed run's connection is gone, short enough that a second run is refused at once.
pub const LOCK_GRACE: Duration = Duration::from_secs(2);
/// How long `pause`/`cancel` wait for a running engine to acknowledge.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Preview rows shown before and after the sample batch.
pub const PREVIEW_ROWS: usize = 10;

/// The target's backfill definitions.
pub fn registry(target: &Target, catalog: &Catalog) -> Result<Registry> {
    Registry::load(&target.migrations, catalog)
}

/// Overrides of a definition's throttle defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub batch_size: Option<u32>,
    pub pause: Option<Duration>,
}

/// The state shown for a backfill: the run table's, except that a `running` row whose process is
/// gone (killed, crashed, connection lost) shows as `interrupted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    NeverRun,
    Running,
    Interrupted,
    Paused,
    Done,
    Cancelled,
    Failed,
}

/// The Backfills pane and `pgshift backfill status` show the same word in the same colour.
impl crate::marks::Marked for Shown {
    fn word(&self) -> &'static str {
        match self {
            Shown::Failed => "FAILED",
            other => other.as_str(),
        }
    }

    fn role(&self) -> crate::marks::Role {
        use crate::marks::Role;
        match self {
            Shown::Running | Shown::Done => Role::Ok,
            Shown::Failed => Role::Error,
            Shown::Interrupted | Shown::Paused => Role::Warn,
            Shown::NeverRun | Shown::Cancelled => Role::Dim,
        }
    }
}

/// A run's state as shown; a `running` row whose process is gone shows as `interrupted`
/// instead (see [`overview_on`]).
impl From<RunState> for Shown {
    fn from(state: RunState) -> Shown {
        match state {
            RunState::Running => Shown::Running,
            RunState::Paused => Shown::Paused,
            RunState::Done => Shown::Done,
            RunState::Cancelled => Shown::Cancelled,
            RunState::Failed => Shown::Failed,
        }
    }
}

impl Shown {
    /// Time left as the Backfills pane and `backfill status` show it: nothing once done, `-`
    /// when unknown.
    pub fn eta(self, eta_s: Option<f64>) -> String {
        match (self, eta_s) {
            (Shown::Done, _) => String::new(),
            (_, Some(s)) if s > 0.0 => crate::text::human_duration_s(s),
            _ => "-".into(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Shown::NeverRun => "never run",
            Shown::Running => "running",
            Shown::Interrupted => "interrupted",
            Shown::Paused => "paused",
            Shown::Done => "done",
            Shown::Cancelled => "cancelled",
            Shown::Failed => "failed",
        }
    }
}

/// One line of the Backfills pane / `backfill status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overview {
    pub name: String,
    pub description: String,
    pub table: String,
    pub state: Shown,
    /// The latest run, if any.
    pub run: Option<RunRow>,
    pub rows_done: i64,
    pub rows_estimate: Option<i64>,
    /// 0.0..=1.0 when there is an estimate.
    pub fraction: Option<f64>,
    /// Rows per second over the run's active time.
    pub rate: f64,
    pub eta_s: Option<f64>,
    pub last_error: Option<String>,
    /// The session running it, when running.
    pub holder: Option<lock::Holder>,
}

pub async fn overview(target: &Target, registry: &Registry) -> Result<Vec<Overview>> {
    let s = Session::connect(&target.conn, "backfill status").await?;
    overview_on(&s, registry).await
}

/// [`overview`] on an open session (the TUI's monitor connection). Read-only.
pub async fn overview_on(s: &Session, registry: &Registry) -> Result<Vec<Overview>> {
    let runs = store::latest_all(s).await?;
    let mut out = Vec::with_capacity(registry.definitions.len());
    for d in &registry.definitions {
        let run = runs.iter().find(|r| r.name == d.name).cloned();
        let holder = match &run {
            Some(r) if r.state == RunState::Running => {
                lock::holder(s, lock::BACKFILL, &d.name).await?
            }
            _ => None,
        };
        out.push(overview_row(d, run, holder));
    }
    Ok(out)
}

fn overview_row(d: &Definition, run: Option<RunRow>, holder: Option<lock::Holder>) -> Overview {
    let state = match &run {
        None => Shown::NeverRun,
        Some(r) if r.state == RunState::Running && holder.is_none() => Shown::Interrupted,
        Some(r) => r.state.into(),
    };
    let (rows_done, rows_estimate, active_ms) = run.as_ref().map_or((0, None, 0), |r| {
        (r.rows_done, r.rows_estimate, r.active_ms)
    });
    let rate = stats::rate(rows_done, Duration::from_millis(active_ms.max(0) as u64));
    let estimate = rows_estimate.map(|e| e.max(rows_done));
    Overview {
        name: d.name.clone(),
        description: d.description.clone(),
        table: d.table.clone(),
        state,
        fraction: estimate.map(|e| {
            if e == 0 {
                1.0
            } else {
                rows_done as f64 / e as f64
            }
        }),
        rate,
        eta_s: match (state, estimate) {
            (Shown::Done, _) => Some(0.0),
            (_, Some(e)) => stats::eta_s(rows_done, e, rate),
            _ => None,
        },
        last_error: run.as_ref().and_then(|r| r.last_error.clone()),
        rows_done,
        rows_estimate: estimate,
        run,
        holder,
    }
}

/// What a dry run found; nothing was changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DryRun {
    pub name: String,
    pub description: String,
    pub table: String,
    /// Exact, from the definition's count query.
    pub rows_to_do: i64,
    /// The planner's estimate of the table's rows (`pg_class.reltuples`), `None` if never analyzed.
    pub table_rows_estimate: Option<i64>,
    pub batch_size: i64,
    pub pause_ms: u64,
    /// The unfinished run a real run would continue, and its cursor.
    pub continues_run: Option<i64>,
    /// The key a real run would continue after; `None`: from the first key.
    pub from_key: Option<String>,
    pub sample: Option<Sample>,
    pub preview_before: Vec<serde_json::Value>,
    pub preview_after: Vec<serde_json::Value>,
    /// Batches of `batch_size` keys over the table, and the time they would take at the sample's
    /// speed plus the pause (the adaptive batch size then moves it toward the target duration).
    pub batches: i64,
    pub estimated_s: f64,
}

/// The first batch, run and rolled back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// Exclusive lower bound; `None`: from the first key.
    pub lower: Option<String>,
    pub upper: String,
    pub rows_changed: i64,
    pub ms: f64,
}

/// Counts, preview and a timed sample batch in a transaction that is rolled back: touches nothing.
pub async fn dry_run(
    target: &Target,
    registry: &Registry,
    name: &str,
    opts: &Options,
    reporter: &Reporter,
) -> Result<DryRun> {
    dry_run_until(target, registry, name, opts, reporter, &Interrupt::none()).await
}

/// [`dry_run`], cancelled on the server when `interrupt` fires (the TUI's Esc). Every statement
/// waits at most `lock_timeout` for a lock; a locked table names its holders (exit 4).
pub async fn dry_run_until(
    target: &Target,
    registry: &Registry,
    name: &str,
    opts: &Options,
    reporter: &Reporter,
    interrupt: &Interrupt,
) -> Result<DryRun> {
    let d = registry.get(name)?;
    // Its sample batch writes (then rolls back): a standby cannot run it.
    let s = guarded::writing_session(
        target,
        &format!("backfill dry-run {name}"),
        &format!("dry-run backfill {name}"),
    )
    .await?;
    let what = format!("backfill {name}: dry run");
    let work = dry_run_on(&s, target, d, opts, reporter);
    match guarded::until(&s, interrupt, &what, work).await {
        Ok(r) => Ok(r),
        Err(e) => Err(guarded::explain_lock_wait(&s, &what, &d.table_sql(), e).await),
    }
}

async fn dry_run_on(
    s: &Session,
    target: &Target,
    d: &Definition,
    opts: &Options,
    reporter: &Reporter,
) -> Result<DryRun> {
    let name = &d.name;
    inspect::check_requires(s, d).await?;
    let p = inspect::prepare(s, d).await?;
    let rows_to_do = inspect::count(s, d, &p).await?;
    let reltuples: Option<i64> = s
        .client
        .query_opt(backfill_batches::RELTUPLES, &[&d.table_sql()])
        .await
        .map_err(|e| Error::db("reading the table estimate", &e))?
        .map(|r| r.get(0));
    let unfinished = store::latest(s, name)
        .await?
        .filter(|r| r.state.is_unfinished());
    let from = start_key(d, &p, unfinished.as_ref())?;
    let batch_size = opts
        .batch_size
        .map(i64::from)
        .unwrap_or(d.batch_size as i64);
    let pause = opts.pause.unwrap_or(d.pause);
    reporter.log(
        Level::Info,
        format!("backfill {name}: dry run, sampling one batch of {batch_size} (rolled back)"),
    );
    let (mut sample, before, after) =
        sample_batch(s, d, &p, &target.guard, from, batch_size).await?;
    if let Some(smp) = &mut sample
        && from == p.kind.start()
    {
        smp.lower = None;
    }
    let table_rows = reltuples
        .filter(|r| *r >= 0)
        .unwrap_or(rows_to_do)
        .max(rows_to_do);
    let batches = (table_rows + batch_size - 1) / batch_size.max(1);
    let per_batch_ms = sample.as_ref().map_or(0.0, |s| s.ms) + pause.as_secs_f64() * 1000.0;
    Ok(DryRun {
        name: d.name.clone(),
        description: d.description.clone(),
        table: d.table.clone(),
        rows_to_do,
        table_rows_estimate: reltuples.filter(|r| *r >= 0),
        batch_size,
        pause_ms: pause.as_millis() as u64,
        continues_run: unfinished.map(|r| r.id),
        from_key: (from != p.kind.start()).then(|| from.to_string()),
        sample,
        preview_before: before,
        preview_after: after,
        batches,
        estimated_s: batches as f64 * per_batch_ms / 1000.0,
    })
}

type SampleResult = (
    Option<Sample>,
    Vec<serde_json::Value>,
    Vec<serde_json::Value>,
);

async fn sample_batch(
    s: &Session,
    d: &Definition,
    p: &inspect::Prepared,
    guard: &crate::config::Guard,
    from: Key,
    size: i64,
) -> Result<SampleResult> {
    let result = async {
        s.client
            .batch_execute(&backfill_batches::begin_guarded(guard))
            .await?;
        if let Some(setup) = &d.setup {
            s.client.batch_execute(setup).await?;
        }
        let Some(upper) = inspect::next_bound(s, p, from, size).await? else {
            return Ok((None, Vec::new(), Vec::new()));
        };
        let before = preview(s, p, from, upper).await?;
        let t0 = Instant::now();
        let rows = s.client.execute(&p.batch, &[&from, &upper]).await? as i64;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let after = preview(s, p, from, upper).await?;
        Ok::<_, tokio_postgres::Error>((
            Some(Sample {
                lower: Some(from.to_string()),
                upper: upper.to_string(),
                rows_changed: rows,
                ms,
            }),
            before,
            after,
        ))
    }
    .await;
    // Always rolled back: a dry run changes nothing.
    if !s.client.is_closed()
        && let Err(e) = s.client.batch_execute(db::ROLLBACK).await
    {
        tracing::warn!("rolling back the dry run failed: {e}");
    }
    result.map_err(|e| {
        Error::db(
            format!(
                "running the sample batch of backfill {} (rolled back)",
                d.name
            ),
            &e,
        )
    })
}

async fn preview(
    s: &Session,
    p: &inspect::Prepared,
    from: Key,
    upper: Key,
) -> std::result::Result<Vec<serde_json::Value>, tokio_postgres::Error> {
    let Some((stmt, with_bounds)) = &p.preview else {
        return Ok(Vec::new());
    };
    let rows = if *with_bounds {
        s.client.query(stmt, &[&from, &upper]).await?
    } else {
        s.client.query(stmt, &[]).await?
    };
    Ok(rows
        .iter()
        .take(PREVIEW_ROWS)
        .map(|r| {
            let text: Option<String> = r.get(0);
            text.and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null)
        })
        .collect())
}

fn start_key(d: &Definition, p: &inspect::Prepared, unfinished: Option<&RunRow>) -> Result<Key> {
    match unfinished.and_then(|r| r.cursor.as_deref()) {
        None => Ok(p.kind.start()),
        Some(c) => Key::parse(p.kind, c).ok_or_else(|| {
            Error::Integrity(format!(
                "{} holds cursor {c:?} for backfill {}, which is not a {:?} key; the key column changed type since. Cancel the run with `pgshift backfill cancel {}` and start again.",
                store::TABLE,
                d.name,
                p.kind,
                d.name
            ))
        }),
    }
}

/// Whether [`start`] may start a new run or must continue an unfinished one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Continue the unfinished run if there is one, else start a new run.
    Run,
    /// Continue the unfinished run; refuse when there is none.
    Resume,
}

/// The result of one `run`/`resume`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub name: String,
    /// `None` when there was nothing to do and no run was recorded.
    pub run_id: Option<i64>,
    /// done, paused, cancelled or failed; `up_to_date` when the count query found nothing to do.
    pub state: Ended,
    pub resumed: bool,
    /// Rows changed in this session, and in the whole run (all sessions).
    pub rows: i64,
    pub rows_total: i64,
    pub batches: i64,
    pub retries: i64,
    pub batch_ms_p50: u64,
    pub batch_ms_max: u64,
    pub duration_ms: u64,
    pub cursor: Option<String>,
    /// The command to continue, when something is left.
    pub next: Option<String>,
    /// After a finished run: what the count query still finds (the runbook's "verify results").
    /// Rows written behind the cursor during the run, or a count that the batch does not cover.
    pub remaining: Option<i64>,
}

impl RunReport {
    /// A report of no batches, to fill in.
    fn of_no_batches(name: &str, run_id: Option<i64>, state: Ended, took: Duration) -> RunReport {
        RunReport {
            name: name.into(),
            run_id,
            state,
            resumed: false,
            rows: 0,
            rows_total: 0,
            batches: 0,
            retries: 0,
            batch_ms_p50: 0,
            batch_ms_max: 0,
            duration_ms: took.as_millis() as u64,
            cursor: None,
            next: None,
            remaining: None,
        }
    }

    pub fn is_complete(&self) -> bool {
        matches!(self.state, Ended::UpToDate | Ended::Run(RunState::Done))
    }
}

/// How a [`start`] ended: the run's state, or `up_to_date` when there was nothing to do and no
/// run was recorded. Serialised as that one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    UpToDate,
    Run(RunState),
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::UpToDate => "up_to_date",
            Ended::Run(state) => state.as_str(),
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl serde::Serialize for Ended {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Run `name` to the end (or until paused/cancelled): [`Mode::Run`] continues its unfinished run
/// if any, else starts one; [`Mode::Resume`] continues the unfinished (paused, interrupted or
/// failed) run from its cursor and refuses when there is none. The CLI, the TUI and fleet
/// rollouts all start runs here.
pub async fn start(
    target: &Target,
    registry: &Registry,
    name: &str,
    opts: &Options,
    mode: Mode,
    control: &Control,
    reporter: &Reporter,
) -> Result<RunReport> {
    let d = registry.get(name)?;
    let s = guarded::writing_session(
        target,
        &format!("backfill {name}"),
        &format!("run backfill {name}"),
    )
    .await?;
    ensure_tables(&s, target, reporter).await?;
    take_locks(&s, d).await?;
    let run = Run {
        s: &s,
        target,
        d,
        opts,
        control,
        reporter,
        start: Instant::now(),
    };
    let result = run.locked(mode).await;
    if let Err(f) = &result
        && !f.audited
        && !matches!(f.error, Error::ConnectionLost { .. })
    {
        run.audit_refusal(&f.error).await;
    }
    drop(s); // the backfill lock ends with the session
    result.map_err(|f| f.error)
}

/// A failed run, and whether its audit row is already written.
struct RunFailure {
    error: Error,
    audited: bool,
}

impl From<Error> for RunFailure {
    fn from(error: Error) -> Self {
        RunFailure {
            error,
            audited: false,
        }
    }
}

/// One `run`/`resume` of a backfill, under its locks.
struct Run<'a> {
    s: &'a Session,
    target: &'a Target,
    d: &'a Definition,
    opts: &'a Options,
    control: &'a Control,
    reporter: &'a Reporter,
    start: Instant,
}

/// A run row in place (new or continued), ready for batches.
struct Started {
    p: inspect::Prepared,
    run_id: i64,
    resumed: bool,
    cursor: Key,
    batch_size: i64,
    rows_before: i64,
    estimate: i64,
}

impl Run<'_> {
    async fn locked(&self, mode: Mode) -> std::result::Result<RunReport, RunFailure> {
        let Some(started) = self.begin(mode).await? else {
            return Ok(self.report(None, Ended::UpToDate));
        };
        let out = self.batches(&started).await;
        if let Some(Error::ConnectionLost { .. }) = &out.error {
            // Nothing can be recorded; the row stays `running` and shows as interrupted.
            return Err(out
                .error
                .unwrap_or_else(|| Error::Failed("connection lost".into()))
                .into());
        }
        self.end(&started, out).await
    }

    /// Check the definition against the database, run its setup, and start or continue the run
    /// row (reported and audited). `None`: nothing to do.
    async fn begin(&self, mode: Mode) -> Result<Option<Started>> {
        let (s, d, name) = (self.s, self.d, &self.d.name);
        inspect::check_requires(s, d).await?;
        let p = inspect::prepare(s, d).await?;
        let unfinished = store::latest(s, name)
            .await?
            .filter(|r| r.state.is_unfinished());
        if mode == Mode::Resume && unfinished.is_none() {
            return Err(Error::Refused(format!(
                "backfill {name} has no paused, interrupted or failed run to resume; start one with `pgshift backfill {name}`"
            )));
        }
        if let Some(setup) = &d.setup {
            run_setup(s, &self.target.guard, setup).await.map_err(|e| {
                Error::db(
                    format!("running the setup statement of backfill {name}"),
                    &e,
                )
            })?;
        }
        let remaining = inspect::count(s, d, &p).await?;
        if unfinished.is_none() && remaining == 0 {
            self.reporter.log(
                Level::Info,
                format!("backfill {name}: nothing to do (its count query found 0 rows)"),
            );
            return Ok(None);
        }
        let cursor = start_key(d, &p, unfinished.as_ref())?;
        let batch_size = self
            .opts
            .batch_size
            .map(i64::from)
            .or(unfinished.as_ref().map(|r| r.batch_size as i64))
            .unwrap_or(d.batch_size as i64)
            .max(1);
        let rows_before = unfinished.as_ref().map_or(0, |r| r.rows_done);
        let estimate = rows_before + remaining;
        let run_id = match &unfinished {
            Some(r) => {
                store::resume(s, r.id, estimate, batch_size).await?;
                r.id
            }
            None => store::insert(s, name, estimate, batch_size).await?,
        };
        let resumed_from = unfinished.as_ref().and_then(|r| r.cursor.clone());
        self.reporter.emit(Event::BackfillStarted {
            name: name.clone(),
            run_id,
            resumed_from: resumed_from.clone(),
            rows_done: rows_before,
            rows_estimate: estimate,
            batch_size,
        });
        let mut ev = NewEvent::new(format!("backfill {name} start"), Outcome::Ok);
        ev.detail = serde_json::json!({ "backfill": name, "run_id": run_id, "resumed": unfinished.is_some(), "cursor": resumed_from, "rows_estimate": estimate, "target": self.target.name });
        audit::record(s, &ev).await?;
        Ok(Some(Started {
            p,
            run_id,
            resumed: unfinished.is_some(),
            cursor,
            batch_size,
            rows_before,
            estimate,
        }))
    }

    /// The batch loop, with a monitoring session when one can connect.
    async fn batches(&self, started: &Started) -> engine::Outcome {
        let plan = engine::Plan {
            def: self.d,
            run_id: started.run_id,
            cursor: started.cursor,
            batch_size: started.batch_size,
            pause: self.opts.pause.unwrap_or(self.d.pause),
            adaptive: self.opts.batch_size.is_none(),
            rows_before: started.rows_before,
            estimate: started.estimate,
            guard: self.target.guard,
        };
        // A second session watches for blockers while a batch waits on a lock (optional: without
        // it the run still works, only the blocker names are missing from the messages).
        let monitor = Session::connect(
            &self.target.conn,
            &format!("backfill {} monitor", self.d.name),
        )
        .await
        .ok();
        engine::run_batches(
            self.s,
            monitor.as_ref(),
            &started.p,
            &plan,
            self.control,
            self.reporter,
        )
        .await
    }

    /// Record how the run ended (run row, report, the count left, audit row).
    async fn end(
        &self,
        started: &Started,
        out: engine::Outcome,
    ) -> std::result::Result<RunReport, RunFailure> {
        let (s, d, name) = (self.s, self.d, &self.d.name);
        let run_id = started.run_id;
        let error_text = out.error.as_ref().map(ToString::to_string);
        store::finish(
            s,
            run_id,
            out.state,
            error_text.as_deref(),
            out.unsaved_retries,
        )
        .await?;
        let next = match out.state {
            RunState::Paused | RunState::Failed => {
                Some(format!("resume with `pgshift backfill resume {name}`"))
            }
            _ => None,
        };
        let rows_total = started.rows_before + out.rows;
        self.reporter.emit(Event::BackfillStopped {
            name: name.clone(),
            run_id,
            state: out.state,
            rows_done: rows_total,
            elapsed: self.start.elapsed(),
            next: next.clone(),
        });
        let remaining = match out.state {
            RunState::Done => Some(inspect::count(s, d, &started.p).await?),
            _ => None,
        };
        if let Some(n) = remaining.filter(|n| *n > 0) {
            self.reporter.log(
                Level::Warn,
                format!(
                    "backfill {name}: done, but its count query still finds {n} rows (written behind the cursor during the run, or not covered by the batch statement); `pgshift backfill {name}` again picks up the first kind"
                ),
            );
        }
        let rep = RunReport {
            remaining,
            resumed: started.resumed,
            rows: out.rows,
            rows_total,
            batches: out.batches,
            retries: out.stats.retries,
            batch_ms_p50: out.stats.p50_ms(),
            batch_ms_max: out.stats.max_ms(),
            cursor: Some(out.cursor.to_string()),
            next,
            ..self.report(Some(run_id), Ended::Run(out.state))
        };
        let mut ev = NewEvent::new(
            format!("backfill {name}"),
            if out.state == RunState::Failed {
                Outcome::Failed
            } else {
                Outcome::Ok
            },
        );
        ev.duration = self.start.elapsed();
        ev.error = error_text;
        ev.detail = serde_json::to_value(&rep).unwrap_or_default();
        ev.detail["target"] = serde_json::json!(self.target.name);
        audit::record(s, &ev).await?;
        match out.error {
            Some(error) => Err(RunFailure {
                error,
                audited: true,
            }),
            None => Ok(rep),
        }
    }

    /// A report of no batches (nothing to do, or the base of the final one).
    fn report(&self, run_id: Option<i64>, state: Ended) -> RunReport {
        RunReport::of_no_batches(&self.d.name, run_id, state, self.start.elapsed())
    }

    /// Refused or failed before the run started; a run's own end is audited in [`Run::end`].
    async fn audit_refusal(&self, error: &Error) {
        let name = &self.d.name;
        let mut ev = NewEvent::new(format!("backfill {name}"), Outcome::Refused);
        ev.duration = self.start.elapsed();
        ev.error = Some(error.to_string());
        ev.detail = serde_json::json!({ "backfill": name, "target": self.target.name, "sqlstate": error.sqlstate() });
        if let Err(ae) = audit::record(self.s, &ev).await {
            self.reporter
                .log(Level::Warn, format!("could not write the audit row: {ae}"));
        }
    }
}

/// The definition's idempotent setup, in its own guarded transaction.
async fn run_setup(
    s: &Session,
    guard: &crate::config::Guard,
    setup: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    let result = async {
        s.client
            .batch_execute(&backfill_batches::begin_guarded(guard))
            .await?;
        s.client.batch_execute(setup).await?;
        s.client.batch_execute(db::COMMIT).await
    }
    .await;
    if result.is_err() && !s.client.is_closed() {
        s.client.batch_execute(db::ROLLBACK).await.ok();
    }
    result
}

/// pgshift's tables, created under the runner lock the first time (like migrations do).
async fn ensure_tables(s: &Session, target: &Target, reporter: &Reporter) -> Result<()> {
    schema::ensure_unlocked(s, target.lock_wait, reporter).await
}

/// One run of a backfill at a time, and one backfill per table: both advisory locks, held for
/// the session.
async fn take_locks(s: &Session, d: &Definition) -> Result<()> {
    let name = &d.name;
    take_lock(s, lock::BACKFILL, name, |holder| Error::BackfillBusy {
        name: name.clone(),
        holder,
    })
    .await?;
    let table = lock::table_key(s, &d.table_sql()).await?;
    take_lock(s, lock::BACKFILL_TABLE, &table, |holder| {
        Error::BackfillTableBusy {
            name: name.clone(),
            table: d.table.clone(),
            holder,
        }
    })
    .await
}

/// Take the lock `namespace || key`, waiting [`LOCK_GRACE`] for a run that is just ending; else
/// `busy` with the holder named.
async fn take_lock(
    s: &Session,
    namespace: &str,
    key: &str,
    busy: impl FnOnce(String) -> Error,
) -> Result<()> {
    let deadline = Instant::now() + LOCK_GRACE;
    loop {
        if lock::try_acquire(s, namespace, key).await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let holder = lock::holder(s, namespace, key).await?;
            return Err(busy(holder.map(|h| h.to_string()).unwrap_or_else(|| {
                "holder unknown (it may have just finished)".into()
            })));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `pause`/`cancel` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ControlReport {
    pub name: String,
    pub run_id: i64,
    /// The run's state afterwards (`running` if the engine had not stopped within the wait).
    pub state: RunState,
    pub message: String,
}

/// Pause `name`: a running engine (any process) stops after its current batch and saves its
/// cursor; an interrupted run (its process gone) is marked paused.
pub async fn pause(target: &Target, name: &str) -> Result<ControlReport> {
    stop(target, name, store::Request::Pause).await
}

/// Cancel `name`: a running engine stops after its current batch; a paused, interrupted or failed
/// run is closed. Committed batches stay; the next run starts afresh.
pub async fn cancel(target: &Target, name: &str) -> Result<ControlReport> {
    stop(target, name, store::Request::Cancel).await
}

async fn stop(target: &Target, name: &str, what: store::Request) -> Result<ControlReport> {
    let s = Session::connect(&target.conn, &format!("backfill {} {name}", what.as_str())).await?;
    let verb = what.as_str();
    if lock::try_acquire(&s, lock::BACKFILL, name).await? {
        // Nobody is running it: change the row directly.
        let result = stop_idle(&s, name, what).await;
        lock::release(&s, lock::BACKFILL, name).await?;
        let report = result?;
        audit_control(&s, target, &report, verb).await;
        return Ok(report);
    }
    let Some(run_id) = store::request(&s, name, what).await? else {
        return Err(Error::Refused(format!(
            "backfill {name} is not running (its lock is held, but no running row was found); see `pgshift backfill status`"
        )));
    };
    let deadline = Instant::now() + ACK_WAIT;
    loop {
        let row = store::latest(&s, name).await?;
        match row {
            Some(r) if r.id == run_id && r.state != RunState::Running => {
                let report = ControlReport {
                    name: name.into(),
                    run_id,
                    state: r.state,
                    message: format!(
                        "backfill {name}: run #{run_id} {} after key {}, {} rows done{}",
                        r.state.as_str(),
                        r.cursor.as_deref().unwrap_or("(none)"),
                        r.rows_done,
                        if r.state == RunState::Paused {
                            format!("; resume with `pgshift backfill resume {name}`")
                        } else {
                            String::new()
                        }
                    ),
                };
                audit_control(&s, target, &report, verb).await;
                return Ok(report);
            }
            _ if Instant::now() >= deadline => {
                return Ok(ControlReport {
                    name: name.into(),
                    run_id,
                    state: RunState::Running,
                    message: format!(
                        "backfill {name}: {verb} requested for run #{run_id}; it has not stopped yet and will after its current batch"
                    ),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn stop_idle(s: &Session, name: &str, what: store::Request) -> Result<ControlReport> {
    let latest = store::latest(s, name).await?;
    let Some(run) = latest.filter(|r| r.state.is_unfinished()) else {
        return Err(Error::Refused(format!(
            "backfill {name} has no running, paused or failed run to {}; see `pgshift backfill status`",
            what.as_str()
        )));
    };
    let state = match what {
        store::Request::Pause if run.state == RunState::Running => {
            store::finish(s, run.id, RunState::Paused, None, 0).await?;
            RunState::Paused
        }
        store::Request::Pause => {
            return Err(Error::Refused(format!(
                "backfill {name} is not running (run #{} is {}); nothing to pause",
                run.id,
                run.state.as_str()
            )));
        }
        store::Request::Cancel => {
            store::cancel_stopped(s, name).await?;
            RunState::Cancelled
        }
    };
    let was = if run.state == RunState::Running {
        "interrupted".to_string()
    } else {
        run.state.as_str().to_string()
    };
    Ok(ControlReport {
        name: name.into(),
        run_id: run.id,
        state,
        message: format!(
            "backfill {name}: run #{} ({was}, {} rows done, cursor {}) is now {}{}",
            run.id,
            run.rows_done,
            run.cursor.as_deref().unwrap_or("(none)"),
            state.as_str(),
            if state == RunState::Paused {
                format!("; resume with `pgshift backfill resume {name}`")
            } else {
                "; the next run starts afresh".into()
            }
        ),
    })
}

async fn audit_control(s: &Session, target: &Target, r: &ControlReport, verb: &str) {
    if !schema::exists(s, "pgshift_events").await.unwrap_or(false) {
        return;
    }
    let mut ev = NewEvent::new(format!("backfill {} {verb}", r.name), Outcome::Ok);
    ev.detail = serde_json::json!({ "backfill": r.name, "run_id": r.run_id, "state": r.state, "target": target.name });
    if let Err(e) = audit::record(s, &ev).await {
        tracing::warn!("could not write the audit row: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ends_serialise_as_the_words_of_the_json_contract() {
        let json = |e: Ended| serde_json::to_value(e).unwrap();
        assert_eq!(json(Ended::UpToDate), "up_to_date");
        for (state, word) in [
            (RunState::Running, "running"),
            (RunState::Paused, "paused"),
            (RunState::Done, "done"),
            (RunState::Cancelled, "cancelled"),
            (RunState::Failed, "failed"),
        ] {
            assert_eq!(json(Ended::Run(state)), word);
            assert_eq!(serde_json::to_value(state).unwrap(), word);
            assert_eq!(RunState::parse(word), Some(state));
        }
        assert_eq!(RunState::parse("up_to_date"), None);
    }

    #[test]
    fn only_done_and_up_to_date_are_complete() {
        let report = |state| RunReport::of_no_batches("hashes", None, state, Duration::ZERO);
        assert!(report(Ended::UpToDate).is_complete());
        assert!(report(Ended::Run(RunState::Done)).is_complete());
        for s in [RunState::Paused, RunState::Cancelled, RunState::Failed] {
            assert!(!report(Ended::Run(s)).is_complete());
        }
    }
}
