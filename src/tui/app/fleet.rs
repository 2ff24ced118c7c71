//! The Fleet pane's model and its part of `update`: one row per target of the configured fleet
//! (every target, or the group chosen with `:fleet GROUP`), filled from `fleet::status::gather`
//! by the worker; `u` (or `:fleet-up REV`) plans a rollout with `fleet::rollout::plan_all`,
//! `:fleet-backfill NAME` one of a backfill with `plan_backfill`, and once confirmed the worker runs
//! it with `fleet::rollout::execute` (the engine `pgshift fleet up|backfill` uses); its
//! [`FleetEvent`]s become each row's live state. Esc (or the first q / Ctrl-C) stops launching.

use super::*;
use crate::fleet::rollout::{Confirmation, FleetEvent, Summary, TargetState};
use crate::fleet::status;

/// What the pane knows.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// `:fleet GROUP`; `None`: every configured target.
    pub group: Option<String>,
    pub rows: Vec<FleetRow>,
    /// A status gather is in flight.
    pub gathering: bool,
    /// Rows were gathered at least once for this group (the pane gathers when first opened).
    pub gathered: bool,
    /// When the last gather started and ended (`app.now`): the title's age, the next poll.
    pub gather_started: Option<std::time::Instant>,
    pub read_at: Option<std::time::Instant>,
    /// Why there are no rows (an unknown group, a broken config).
    pub error: Option<String>,
    /// A rollout plan is being made (`u`), before its confirmation.
    pub planning: bool,
    /// The running rollout, or the last one.
    pub rollout: Option<RolloutView>,
}

/// One target: its last gathered status and, during and after a rollout, its live state.
#[derive(Debug, Clone)]
pub struct FleetRow {
    pub name: String,
    pub status: Option<status::Row>,
    pub live: Option<Live>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub canary: bool,
    pub state: TargetState,
}

#[derive(Debug, Clone)]
pub struct RolloutView {
    pub id: String,
    pub job: FleetJob,
    pub running: bool,
    /// The operator asked to stop launching new targets.
    pub stopping: bool,
    /// The latest phase (`canary: t0`, `wave 1/1: 3 target(s)`, `stopped launching: ...`).
    pub phase: Option<String>,
    pub summary: Option<Summary>,
}

/// What a fleet rollout runs on every target, as `pgshift fleet up [REV]` and
/// `pgshift fleet backfill NAME` do (with their default options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetJob {
    /// Upgrade to this revision (`head` for `u`).
    Up(String),
    /// Run (or continue) the backfill of this name.
    Backfill(String),
}

impl FleetJob {
    /// `rollout to head`, `backfill hashes`: for the log and the confirmation's title.
    pub fn label(&self) -> String {
        match self {
            FleetJob::Up(rev) => format!("rollout to {rev}"),
            FleetJob::Backfill(name) => format!("backfill {name}"),
        }
    }

    /// What a running target does once launching stops (as the CLI says on Ctrl-C).
    pub fn on_stop(&self) -> &'static str {
        match self {
            FleetJob::Up(_) => "finish their current step",
            FleetJob::Backfill(_) => "pause after their current batch",
        }
    }
}

/// A planned rollout as the confirmation shows it; the plans themselves wait in the worker
/// under `id`, so what runs is what was shown.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetPlan {
    /// The rollout's id (in every target's audit row).
    pub id: String,
    pub group: Option<String>,
    pub job: FleetJob,
    /// The per-target plan table and the lint of its steps (`pgshift fleet up`'s own text).
    pub text: String,
    pub confirmation: Confirmation,
    pub targets: usize,
}

#[derive(Debug, Clone)]
pub enum FleetMsg {
    Gathered {
        group: Option<String>,
        result: Result<Vec<status::Row>, String>,
    },
    Planned(Result<FleetPlan, String>),
    Event(FleetEvent),
    /// The rollout ended (its summary), or could not start.
    Finished(Result<Summary, String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum FleetEffect {
    Gather {
        group: Option<String>,
    },
    Plan {
        group: Option<String>,
        job: FleetJob,
    },
    /// Run the plan shown under this id.
    Run {
        id: String,
    },
    /// Stop launching new targets (running ones finish their step).
    Stop,
}

impl Fleet {
    /// The pane for the screen of another target (`:target`, Enter): the rows and the last
    /// rollout stay; answers still on their way went to the old screen's channel, so nothing is
    /// in flight any more (`r` and `u` work at once).
    pub fn carried(self) -> Fleet {
        Fleet {
            gathering: false,
            planning: false,
            ..self
        }
    }

    pub fn running(&self) -> bool {
        self.rollout.as_ref().is_some_and(|r| r.running)
    }

    pub(super) fn row_text(&self, i: usize) -> String {
        self.rows
            .get(i)
            .map(|r| {
                let state = r
                    .live
                    .as_ref()
                    .map(|l| l.state.label())
                    .or_else(|| r.status.as_ref().map(|s| s.state.as_str().to_string()));
                format!("{} {}", r.name, state.unwrap_or_default())
            })
            .unwrap_or_default()
    }

    fn row_mut(&mut self, name: &str) -> &mut FleetRow {
        let i = match self.rows.iter().position(|r| r.name == name) {
            Some(i) => i,
            None => {
                self.rows.push(FleetRow {
                    name: name.to_string(),
                    status: None,
                    live: None,
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    /// `(done, running, failed, waiting)` of the current rollout, for the title.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for l in self.rows.iter().filter_map(|r| r.live.as_ref()) {
            match &l.state {
                TargetState::Done { .. } | TargetState::Filled { .. } | TargetState::UpToDate => {
                    c.0 += 1
                }
                s if s.is_failure() || matches!(s, TargetState::Interrupted { .. }) => c.2 += 1,
                TargetState::Waiting | TargetState::Skipped { .. } => c.3 += 1,
                _ => c.1 += 1,
            }
        }
        c
    }
}

impl App {
    /// The fleet row under the Fleet cursor.
    pub fn selected_fleet_row(&self) -> Option<&FleetRow> {
        let p = self.pane(Pane::Fleet);
        p.visible
            .get(p.selected)
            .and_then(|i| self.fleet.rows.get(*i))
    }
}

/// The pane came into view: gather its rows the first time.
pub(super) fn on_focus(app: &mut App) -> Vec<Effect> {
    if app.focus == Pane::Fleet && !app.fleet.gathered && !app.fleet.gathering {
        return gather(app);
    }
    vec![]
}

/// Rows are read again at most this often while the pane is in front and idle…
pub const POLL_MIN: std::time::Duration = std::time::Duration::from_secs(30);
/// …and never more than a tenth of the time: a gather that took 6 s waits 60 s.
const POLL_SHARE: u32 = 10;

/// A tick: read the rows again when the pane is in front, nothing else is under way and the last
/// read is older than the poll interval. A hidden pane costs the fleet nothing.
pub(super) fn on_tick(app: &mut App) -> Vec<Effect> {
    let fl = &app.fleet;
    let idle = app.focus == Pane::Fleet
        && fl.gathered
        && !fl.gathering
        && !fl.planning
        && !fl.running()
        && app.popup.is_none();
    let (Some(started), Some(read)) = (fl.gather_started, fl.read_at) else {
        return vec![];
    };
    let interval = POLL_MIN.max(read.saturating_duration_since(started) * POLL_SHARE);
    if idle && app.now.saturating_duration_since(read) >= interval {
        return gather(app);
    }
    vec![]
}

/// `r`: read every row again; a finished rollout's results give way to the fresh status.
pub(super) fn refresh(app: &mut App) -> Vec<Effect> {
    if !app.fleet.running() {
        for r in &mut app.fleet.rows {
            r.live = None;
        }
    }
    gather(app)
}

/// Read every row's status (a rollout's live states stay).
fn gather(app: &mut App) -> Vec<Effect> {
    if app.fleet.gathering {
        return vec![];
    }
    app.fleet.gathering = true;
    app.fleet.gather_started = Some(app.now);
    vec![Effect::Fleet(FleetEffect::Gather {
        group: app.fleet.group.clone(),
    })]
}

/// `:fleet GROUP` (`:fleet` alone: every target): show that group's rows.
pub(super) fn choose_group(app: &mut App, group: Option<String>) -> Vec<Effect> {
    app.focus = Pane::Fleet;
    if app.fleet.running() && group != app.fleet.group {
        app.log(
            Level::Warn,
            "a fleet rollout is running: its group stays on screen until it ends (Esc stops launching)",
        );
        return vec![];
    }
    if group != app.fleet.group {
        app.fleet = Fleet {
            group,
            ..Fleet::default()
        };
        app.refresh_view(Pane::Fleet);
        return gather(app);
    }
    on_focus(app)
}

/// `u` on the pane (`job` = up to head), `:fleet-up REV` and `:fleet-backfill NAME`: plan the
/// job on the shown group; its confirmation comes when the plan is made.
pub(super) fn plan(app: &mut App, job: FleetJob) -> Vec<Effect> {
    app.focus = Pane::Fleet;
    let why = if app.fleet.running() {
        Some("a fleet rollout is already running (Esc stops launching)")
    } else if app.fleet.planning {
        Some("the fleet rollout is being planned: its confirmation comes next")
    } else if app.is_busy() {
        Some("an action is running on this target: wait for it to finish (see the status line)")
    } else {
        None
    };
    if let Some(why) = why {
        app.log(Level::Warn, why);
        return vec![];
    }
    app.fleet.planning = true;
    app.log(
        Level::Info,
        format!(
            "fleet {}: planning the {} on every target…",
            group_name(app.fleet.group.as_deref()),
            job.label()
        ),
    );
    vec![Effect::Fleet(FleetEffect::Plan {
        group: app.fleet.group.clone(),
        job,
    })]
}

/// Enter on a row: the normal screen for that target (`:target NAME`).
pub(super) fn open_target(app: &mut App) -> Vec<Effect> {
    let Some(name) = app.selected_fleet_row().map(|r| r.name.clone()) else {
        return vec![];
    };
    command::run(app, &format!("target {name}"))
}

/// Esc, or the first q / Ctrl-C, while a rollout runs: stop launching; `None` when none runs.
pub(super) fn stop(app: &mut App) -> Option<Vec<Effect>> {
    let r = app.fleet.rollout.as_mut().filter(|r| r.running)?;
    if r.stopping {
        return None;
    }
    r.stopping = true;
    let then = r.job.on_stop();
    app.log(
        Level::Warn,
        format!("fleet: no new targets start; running targets {then} (q again asks to quit)"),
    );
    Some(vec![Effect::Fleet(FleetEffect::Stop)])
}

/// `all` or the group's name, for messages.
pub fn group_name(group: Option<&str>) -> &str {
    group.unwrap_or("all")
}

/// The confirmed plan: run it.
pub(super) fn confirmed(app: &mut App, plan: FleetPlan) -> Vec<Effect> {
    if app.fleet.running() {
        app.log(
            Level::Warn,
            "a fleet rollout is already running; nothing else was started",
        );
        return vec![];
    }
    for r in &mut app.fleet.rows {
        r.live = None;
    }
    app.log(
        Level::Info,
        format!(
            "fleet rollout {} confirmed: {} target(s) with work",
            plan.id, plan.confirmation.with_work
        ),
    );
    app.fleet.rollout = Some(RolloutView {
        id: plan.id.clone(),
        job: plan.job.clone(),
        running: true,
        stopping: false,
        phase: None,
        summary: None,
    });
    vec![Effect::Fleet(FleetEffect::Run { id: plan.id })]
}

pub(super) fn on_msg(app: &mut App, m: FleetMsg) -> Vec<Effect> {
    match m {
        FleetMsg::Gathered { group, result } => on_gathered(app, group, result),
        FleetMsg::Planned(result) => on_planned(app, result),
        FleetMsg::Event(e) => on_event(app, e),
        FleetMsg::Finished(result) => return on_finished(app, result),
    }
    vec![]
}

/// Fresh rows for the shown group; the rollout's live states and the cursor's row stay.
fn on_gathered(app: &mut App, group: Option<String>, result: Result<Vec<status::Row>, String>) {
    if group != app.fleet.group {
        // `:fleet` chose another group meanwhile; its own gather is on its way.
        return;
    }
    app.fleet.gathering = false;
    app.fleet.gathered = true;
    let rows = match result {
        Ok(rows) => rows,
        // No rows to age or poll for (an unknown group, a broken config): `r` reads again.
        Err(e) => {
            app.fleet.error = Some(e);
            return;
        }
    };
    app.fleet.read_at = Some(app.now);
    app.fleet.error = None;
    let keep = app.selected_fleet_row().map(|r| r.name.clone());
    let mut old = std::mem::take(&mut app.fleet.rows);
    app.fleet.rows = rows
        .into_iter()
        .map(|s| FleetRow {
            live: old
                .iter_mut()
                .find(|o| o.name == s.target)
                .and_then(|o| o.live.take()),
            name: s.target.clone(),
            status: Some(s),
        })
        .collect();
    app.refresh_view(Pane::Fleet);
    if let Some(name) = keep {
        select(app, &name);
    }
}

/// The plan is made: ask (typed when production is touched), unless there is nothing to run or
/// the operator has moved on to another dialog.
fn on_planned(app: &mut App, result: Result<FleetPlan, String>) {
    app.fleet.planning = false;
    match result {
        Err(e) => log_error(app, &format!("fleet rollout not started: {e}")),
        Ok(plan) if plan.confirmation.with_work == 0 => app.log(
            Level::Info,
            format!(
                "fleet {}: {}: all {} target(s) are there; nothing to run",
                group_name(plan.group.as_deref()),
                plan.job.label(),
                plan.targets
            ),
        ),
        // The operator moved on (another dialog, the checklists): never ask over that.
        Ok(_) if app.popup.is_some() || app.checklists.open => app.log(
            Level::Info,
            "fleet rollout planned, but another dialog is open: plan it again to be asked (u on the Fleet pane)",
        ),
        Ok(plan) => {
            let must_type = plan.confirmation.must_type().map(str::to_string);
            app.popup = Some(Popup::Confirm(Confirm::new(
                Pending::Fleet(Box::new(plan)),
                must_type,
            )));
        }
    }
}

/// The rollout ended: its summary in the log, then fresh rows, status and history.
fn on_finished(app: &mut App, result: Result<Summary, String>) -> Vec<Effect> {
    if let Some(r) = app.fleet.rollout.as_mut() {
        r.running = false;
        r.stopping = false;
    }
    match result {
        Ok(summary) => {
            let mut text = Vec::new();
            crate::fleet::render::summary_table(&mut text, &summary).ok();
            let level = if summary.exit_code == crate::error::ExitCode::Ok {
                Level::Info
            } else {
                Level::Warn
            };
            for line in String::from_utf8_lossy(&text).lines().skip(1) {
                app.log(level, line.to_string());
            }
            if let Some(r) = app.fleet.rollout.as_mut() {
                r.summary = Some(summary);
            }
        }
        Err(e) => log_error(app, &format!("fleet rollout: {e}")),
    }
    let mut effects = gather(app);
    // The rows keep the rollout's results until the next `r`.
    effects.extend([Effect::Poll, Effect::LoadHistory]);
    effects
}

fn on_event(app: &mut App, e: FleetEvent) {
    match &e {
        FleetEvent::Planned { targets } => {
            for t in targets {
                app.fleet.row_mut(t);
            }
            app.refresh_view(Pane::Fleet);
            return;
        }
        FleetEvent::Phase { message } => {
            if let Some(r) = app.fleet.rollout.as_mut() {
                r.phase = Some(message.clone());
            }
        }
        FleetEvent::Warning { .. } => {}
        FleetEvent::Target {
            target,
            canary,
            state,
        } => {
            let live = Live {
                canary: *canary,
                state: state.clone(),
            };
            let row = app.fleet.row_mut(target);
            if row.live.as_ref() == Some(&live) {
                // Blockers are reported again on every retry: log changes only.
                return;
            }
            row.live = Some(live);
        }
    }
    if let Some(line) = crate::fleet::render::progress_line(&e) {
        let level = match &e {
            FleetEvent::Warning { .. } => Level::Warn,
            FleetEvent::Target { state, .. } if state.is_failure() => Level::Error,
            FleetEvent::Target {
                state: TargetState::Blocked { .. } | TargetState::WaitingForLock { .. },
                ..
            } => Level::Warn,
            _ => Level::Info,
        };
        app.log(level, format!("fleet: {}", line.trim_start_matches("== ")));
    }
}

/// `v` on a row: everything known about the target, whole.
pub(super) fn detail(r: &FleetRow) -> detail::Detail {
    let mut lines = Vec::new();
    if let Some(l) = &r.live {
        let canary = if l.canary { " (canary)" } else { "" };
        lines.push(format!("rollout: {}{canary}", l.state.label()));
        lines.extend(l.state.detail());
    }
    match &r.status {
        None => lines.push("status: not gathered yet (r reads it)".into()),
        Some(s) => {
            lines.push(format!(
                "{} {}  {}  {}",
                crate::fleet::render::env_label(s.environment),
                s.url,
                crate::fleet::render::revision_span(s.current, s.head),
                s.state.as_str()
            ));
            let pending: Vec<String> = s.pending.iter().map(ToString::to_string).collect();
            if !pending.is_empty() {
                lines.push(format!("pending: {}", pending.join(", ")));
            }
            lines.extend(s.drift.iter().map(|d| format!("drift: {d}")));
            if let Some(h) = &s.runner_lock {
                lines.push(format!("runner lock held by {h}"));
            }
            if let Some(role) = &s.role {
                lines.push(format!(
                    "connects as {role}{}{}",
                    s.replication.map(|r| format!(", {r}")).unwrap_or_default(),
                    s.replica_lag_s
                        .map(|l| format!(", replica lag {}", crate::output::human_duration_s(l)))
                        .unwrap_or_default()
                ));
            }
            lines.extend(s.error.iter().map(|e| format!("error: {e}")));
        }
    }
    detail::Detail {
        title: format!("fleet target {}", r.name),
        lines,
        scroll: 0,
    }
}

fn select(app: &mut App, name: &str) {
    let pos = app
        .pane(Pane::Fleet)
        .visible
        .iter()
        .position(|i| app.fleet.rows.get(*i).is_some_and(|r| r.name == name));
    if let Some(pos) = pos {
        app.pane_mut(Pane::Fleet).selected = pos;
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
