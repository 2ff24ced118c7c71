//! The Backfills pane's model and its part of `update`: rows from the monitor's poll of the run
//! table (so runs from another terminal show too), runs started here with their progress events,
//! and the keys `b` (dry run), `B` (run, confirmed with the dry run's numbers), space
//! (pause/resume) and `x` (cancel, confirmed). Pure like the rest of `update`: the work is an
//! [`BackfillEffect`] for the worker.

use super::*;
use crate::backfill::{ControlReport, DryRun, Ended, Mode, Overview, RunReport, RunState, Shown};

/// What the pane knows.
#[derive(Debug, Clone, Default)]
pub struct Backfills {
    /// Each definition with its latest run, in declared order (the monitor's last poll).
    pub rows: Vec<Overview>,
    /// Why the rows are not fresh (bad definitions, a failed poll); the last rows stay.
    pub error: Option<String>,
    /// Runs started from this screen, with their latest progress.
    pub local: Vec<LocalRun>,
    /// The dry run in flight, if any.
    pub dry_running: Option<(String, DryPurpose)>,
    /// Pause/cancel requests in flight, by backfill name.
    pub stopping: Vec<(String, Stop)>,
    /// Quit once every run started here has stopped (the operator chose pause-and-quit).
    pub quit_when_stopped: bool,
}

/// A run started from this screen, from its Backfill* events.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRun {
    pub name: String,
    pub run_id: Option<i64>,
    pub rows_done: i64,
    pub rows_estimate: i64,
    /// Rows per second in this session; `None` before the first batch.
    pub rate: Option<f64>,
    pub eta_s: Option<f64>,
    pub batch_ms_p50: u64,
    pub batch_ms_max: u64,
    pub retries: i64,
    /// The last retry's reason, until the next committed batch.
    pub retrying: Option<String>,
    /// Held for a lagging replica (`waiting for replica r1: replay lag 12.3s > 10s`), until the
    /// next committed batch.
    pub waiting: Option<String>,
}

impl LocalRun {
    fn new(name: &str) -> LocalRun {
        LocalRun {
            name: name.into(),
            run_id: None,
            rows_done: 0,
            rows_estimate: 0,
            rate: None,
            eta_s: None,
            batch_ms_p50: 0,
            batch_ms_max: 0,
            retries: 0,
            retrying: None,
            waiting: None,
        }
    }
}

/// Why a dry run was asked for: `b` shows it, `B` asks to run with its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryPurpose {
    Show,
    Confirm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Pause,
    Cancel,
}

impl Stop {
    pub fn verb(self) -> &'static str {
        match self {
            Stop::Pause => "pause",
            Stop::Cancel => "cancel",
        }
    }
}

#[derive(Debug, Clone)]
pub enum BackfillDialog {
    /// `b`: what a run would do; nothing was changed.
    DryRun { dry: Box<DryRun>, scroll: u16 },
    /// `B`: run it? With the dry run's numbers. On production the name is typed (`typed`).
    ConfirmRun {
        dry: Box<DryRun>,
        scroll: u16,
        typed: String,
    },
    /// `x`: end the run? On production the name is typed.
    ConfirmCancel { row: Box<Overview>, typed: String },
    /// `q` while runs started here are going: pause them and quit?
    Quit { names: Vec<String> },
}

#[derive(Debug, Clone)]
pub enum BackfillMsg {
    /// The monitor's poll of the run table.
    Overview(Result<Vec<Overview>, String>),
    DryRan {
        name: String,
        purpose: DryPurpose,
        result: Result<DryRun, String>,
    },
    /// A run started here ended (done, paused, cancelled, failed).
    Ran {
        name: String,
        result: Result<RunReport, String>,
    },
    Stopped {
        name: String,
        stop: Stop,
        result: Result<ControlReport, String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum BackfillEffect {
    DryRun {
        name: String,
        purpose: DryPurpose,
    },
    /// Esc while a dry run is in flight: cancel its statement on the server.
    CancelDryRun,
    /// `Mode::Resume`: continue the unfinished run (refuses when there is none).
    Run {
        name: String,
        mode: Mode,
    },
    /// Through the run table, so it reaches a run in any process.
    Stop {
        name: String,
        stop: Stop,
    },
}

/// One pane row as drawn: the run table's numbers, or this screen's fresher events while it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RowView {
    pub name: String,
    pub state: Shown,
    pub rows_done: i64,
    pub rows_estimate: Option<i64>,
    pub fraction: Option<f64>,
    pub rate: f64,
    pub eta_s: Option<f64>,
    pub batch_ms: Option<(u64, u64)>,
    pub retries: i64,
    pub last_error: Option<String>,
    pub retrying: Option<String>,
    /// Held for a lagging replica (a run started from this screen).
    pub waiting: Option<String>,
    /// Who runs it: "this screen" or the holder's pid and application.
    pub runner: Option<String>,
    pub stopping: Option<Stop>,
}

impl Backfills {
    pub fn local(&self, name: &str) -> Option<&LocalRun> {
        self.local.iter().find(|l| l.name == name)
    }

    pub(super) fn row_text(&self, i: usize) -> String {
        self.rows
            .get(i)
            .map(|r| {
                format!(
                    "{} {} {} {}",
                    r.name,
                    r.state.as_str(),
                    r.table,
                    r.last_error.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default()
    }

    /// Row `i` (an index into `rows`) as drawn.
    pub fn view(&self, i: usize) -> Option<RowView> {
        let r = self.rows.get(i)?;
        let local = self.local(&r.name);
        let mut v = RowView {
            name: r.name.clone(),
            state: r.state,
            rows_done: r.rows_done,
            rows_estimate: r.rows_estimate,
            fraction: r.fraction,
            rate: r.rate,
            eta_s: r.eta_s,
            batch_ms: r.run.as_ref().and_then(|run| {
                Some((
                    run.batch_ms_p50?.max(0) as u64,
                    run.batch_ms_max?.max(0) as u64,
                ))
            }),
            retries: r.run.as_ref().map_or(0, |run| run.retries),
            last_error: r.last_error.clone(),
            retrying: None,
            waiting: None,
            runner: r
                .holder
                .as_ref()
                .map(|h| format!("pid {} ({})", h.pid, h.application)),
            stopping: self
                .stopping
                .iter()
                .find(|(n, _)| *n == r.name)
                .map(|(_, s)| *s),
        };
        if let Some(l) = local {
            // Started here: the events are fresher than the last poll, and the poll may not have
            // seen the run yet.
            v.state = Shown::Running;
            v.runner = Some("this screen".into());
            v.last_error = None;
            v.retrying = l.retrying.clone();
            v.waiting = l.waiting.clone();
            if l.run_id.is_some() && l.rows_done >= r.rows_done {
                let estimate = l.rows_estimate.max(l.rows_done);
                v.rows_done = l.rows_done;
                v.rows_estimate = Some(estimate);
                v.fraction = Some(if estimate == 0 {
                    1.0
                } else {
                    l.rows_done as f64 / estimate as f64
                });
                if let Some(rate) = l.rate {
                    v.rate = rate;
                    v.eta_s = l.eta_s;
                    v.batch_ms = Some((l.batch_ms_p50, l.batch_ms_max));
                    v.retries = l.retries;
                }
            }
        }
        Some(v)
    }
}

impl App {
    /// The overview row under the Backfills cursor.
    pub fn selected_backfill(&self) -> Option<&Overview> {
        let p = self.pane(Pane::Backfills);
        p.visible
            .get(p.selected)
            .and_then(|i| self.backfills.rows.get(*i))
    }
}

/// The state the keys act on: this screen's run counts as running before the poll sees it.
fn state_of(app: &App, row: &Overview) -> Shown {
    if app.backfills.local(&row.name).is_some() {
        Shown::Running
    } else {
        row.state
    }
}

pub(super) fn on_action(app: &mut App, a: Action) -> Vec<Effect> {
    let Some(row) = acted_on(app, a) else {
        return vec![];
    };
    let state = state_of(app, &row);
    match a {
        Action::BackfillDryRun => dry_run(app, row.name, DryPurpose::Show),
        Action::BackfillRun if state == Shown::Running => {
            let who = row
                .holder
                .as_ref()
                .map(|h| format!(" by pid {} ({})", h.pid, h.application))
                .unwrap_or_default();
            app.log(
                Level::Warn,
                format!(
                    "backfill {} is already running{who}: Space pauses it, x cancels it",
                    row.name
                ),
            );
            vec![]
        }
        Action::BackfillRun => dry_run(app, row.name, DryPurpose::Confirm),
        Action::BackfillPauseResume => pause_or_resume(app, row.name, state),
        Action::BackfillCancel => ask_cancel(app, row, state),
        _ => vec![],
    }
}

/// The row a backfill key acts on: none (and why, in the log) when the pane was not in focus
/// (the key brings it up), nothing is selected, or the database is unreachable.
fn acted_on(app: &mut App, a: Action) -> Option<Overview> {
    if app.focus != Pane::Backfills {
        // The keys act on the Backfills cursor, so they first bring the pane up.
        app.focus = Pane::Backfills;
        if a != Action::BackfillDryRun {
            app.log(
                Level::Info,
                "Backfills pane: j/k select, b dry run, B run, Space pause/resume, x cancel",
            );
        }
        return None;
    }
    let Some(row) = app.selected_backfill().cloned() else {
        let why = app.backfills.error.clone().unwrap_or_else(|| {
            format!(
                "no backfills are defined in {}/backfills",
                app.target.migrations
            )
        });
        app.log(Level::Warn, format!("backfills: {why}"));
        return None;
    };
    if app.health.is_unreachable() {
        app.log(
            Level::Error,
            "the database is unreachable: nothing can run until it is back (r retries now)",
        );
        return None;
    }
    Some(row)
}

/// `b` (show) or `B` (confirm, then run): one dry run at a time.
fn dry_run(app: &mut App, name: String, purpose: DryPurpose) -> Vec<Effect> {
    if let Some((busy, _)) = &app.backfills.dry_running {
        app.log(
            Level::Warn,
            format!("a dry run of {busy} is still going: wait for its result"),
        );
        return vec![];
    }
    app.backfills.dry_running = Some((name.clone(), purpose));
    app.log(
        Level::Info,
        format!("backfill {name}: dry run (counts, preview, one sample batch rolled back)"),
    );
    vec![Effect::Backfill(BackfillEffect::DryRun { name, purpose })]
}

/// Space: pause a running backfill, resume a stopped one.
fn pause_or_resume(app: &mut App, name: String, state: Shown) -> Vec<Effect> {
    match state {
        Shown::Running => stop(app, name, Stop::Pause),
        Shown::Paused | Shown::Interrupted | Shown::Failed => {
            app.log(
                Level::Info,
                format!("backfill {name}: resuming the {} run", state.as_str()),
            );
            start_run(app, name, Mode::Resume)
        }
        Shown::NeverRun | Shown::Done | Shown::Cancelled => {
            app.log(
                Level::Warn,
                format!(
                    "backfill {name} is {}: nothing to pause or resume (B runs it)",
                    state.as_str()
                ),
            );
            vec![]
        }
    }
}

/// `x`: ask for the name typed before a run is cancelled.
fn ask_cancel(app: &mut App, row: Overview, state: Shown) -> Vec<Effect> {
    match state {
        Shown::Running | Shown::Paused | Shown::Interrupted | Shown::Failed => {
            app.popup = Some(Popup::Backfill(BackfillDialog::ConfirmCancel {
                row: Box::new(row),
                typed: String::new(),
            }));
        }
        Shown::NeverRun | Shown::Done | Shown::Cancelled => {
            app.log(
                Level::Warn,
                format!(
                    "backfill {} is {}: no run to cancel",
                    row.name,
                    state.as_str()
                ),
            );
        }
    }
    vec![]
}

fn start_run(app: &mut App, name: String, mode: Mode) -> Vec<Effect> {
    if app.backfills.local(&name).is_some() {
        app.log(
            Level::Warn,
            format!("backfill {name} is already running from this screen"),
        );
        return vec![];
    }
    app.backfills.local.push(LocalRun::new(&name));
    vec![Effect::Backfill(BackfillEffect::Run { name, mode })]
}

fn stop(app: &mut App, name: String, stop: Stop) -> Vec<Effect> {
    if app.backfills.stopping.iter().any(|(n, _)| *n == name) {
        app.log(
            Level::Warn,
            format!("backfill {name}: a pause or cancel is already on its way"),
        );
        return vec![];
    }
    app.log(
        Level::Info,
        format!(
            "backfill {name}: {} requested; it stops after its current batch",
            stop.verb()
        ),
    );
    app.backfills.stopping.push((name.clone(), stop));
    vec![Effect::Backfill(BackfillEffect::Stop { name, stop })]
}

/// Esc on the main screen while a dry run is in flight: cancel it on the server. Its result, when
/// it comes, is dropped. False when there is none.
pub(super) fn cancel_dry_run(app: &mut App) -> Option<Vec<Effect>> {
    let (name, _) = app.backfills.dry_running.take()?;
    app.log(
        Level::Info,
        format!("backfill {name}: cancelling the dry run on the server (nothing was changed)"),
    );
    Some(vec![Effect::Backfill(BackfillEffect::CancelDryRun)])
}

/// `q` with runs started here still going: ask (true) instead of quitting.
pub(super) fn ask_quit(app: &mut App) -> bool {
    if app.backfills.local.is_empty() || app.backfills.quit_when_stopped {
        // Nothing of ours runs, or the operator already chose pause-and-quit and asks again: go.
        return false;
    }
    let names = app.backfills.local.iter().map(|l| l.name.clone()).collect();
    app.popup = Some(Popup::Backfill(BackfillDialog::Quit { names }));
    true
}

pub(super) fn on_dialog_key(
    app: &mut App,
    d: BackfillDialog,
    action: Option<Action>,
    ev: &KeyEvent,
) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    let scroll_by = |scroll: u16| match action {
        Some(Action::Up) => Some(scroll.saturating_sub(1)),
        Some(Action::Down) => Some(scroll.saturating_add(1)),
        _ => None,
    };
    match d {
        BackfillDialog::Quit { names } => on_quit_key(app, names, action),
        BackfillDialog::DryRun { dry, scroll } => {
            if let Some(scroll) = scroll_by(scroll) {
                app.popup = Some(Popup::Backfill(BackfillDialog::DryRun { dry, scroll }));
            } else if action == Some(Action::Quit) {
                return input::on_action(app, Action::Quit);
            } else if ev.code == KeyCode::Char('B') {
                return on_action(app, Action::BackfillRun);
            } else if action.is_none() && !matches!(ev.code, KeyCode::Char('q' | 'b')) {
                // A stray key keeps the dialog open; Esc, Enter, y, n, b and q close it.
                app.popup = Some(Popup::Backfill(BackfillDialog::DryRun { dry, scroll }));
            }
            vec![]
        }
        BackfillDialog::ConfirmRun { dry, scroll, typed } => {
            let name = dry.name.clone();
            let reopen =
                |typed, scroll| Popup::Backfill(BackfillDialog::ConfirmRun { dry, scroll, typed });
            match answer(app, &name, typed, action, ev) {
                Answer::Run => {
                    app.log(Level::Info, format!("backfill {name}: run confirmed"));
                    start_run(app, name, Mode::Run)
                }
                Answer::Back => {
                    app.log(Level::Info, "not confirmed; nothing was run");
                    vec![]
                }
                Answer::Quit => input::on_action(app, Action::Quit),
                Answer::Stay(typed) => {
                    let scroll = scroll_by(scroll).unwrap_or(scroll);
                    app.popup = Some(reopen(typed, scroll));
                    vec![]
                }
            }
        }
        BackfillDialog::ConfirmCancel { row, typed } => {
            let name = row.name.clone();
            match answer(app, &name, typed, action, ev) {
                Answer::Run => stop(app, name, Stop::Cancel),
                Answer::Back => {
                    app.log(Level::Info, "not confirmed; the run goes on");
                    vec![]
                }
                Answer::Quit => input::on_action(app, Action::Quit),
                Answer::Stay(typed) => {
                    app.popup = Some(Popup::Backfill(BackfillDialog::ConfirmCancel {
                        row,
                        typed,
                    }));
                    vec![]
                }
            }
        }
    }
}

/// The quit question while backfills started here run: pause them and quit once paused (y), quit
/// now (Ctrl-C), or keep watching.
fn on_quit_key(app: &mut App, names: Vec<String>, action: Option<Action>) -> Vec<Effect> {
    match action {
        Some(Action::Confirm) => {
            app.backfills.quit_when_stopped = true;
            let mut effects = vec![];
            for name in names {
                if !app.backfills.stopping.iter().any(|(n, _)| *n == name) {
                    effects.extend(stop(app, name, Stop::Pause));
                }
            }
            app.log(
                Level::Info,
                "quitting once the backfills have paused (q again quits at once)",
            );
            effects
        }
        // Ctrl-C: leave now; the batch in progress rolls back and the run shows interrupted.
        Some(Action::Quit) => {
            app.quit = true;
            vec![]
        }
        Some(Action::Dismiss) => vec![],
        _ => {
            app.popup = Some(Popup::Backfill(BackfillDialog::Quit { names }));
            vec![]
        }
    }
}

/// What a key does in a backfill confirmation.
enum Answer {
    Run,
    Back,
    Quit,
    /// Keep the dialog open, with this much typed.
    Stay(String),
}

/// The same rules as every confirmation: `y` runs, `n`/Esc goes back, a bare Enter never runs
/// (a backfill changes data); on production the backfill's name is typed, then Enter.
fn answer(
    app: &mut App,
    name: &str,
    mut typed: String,
    action: Option<Action>,
    ev: &KeyEvent,
) -> Answer {
    use crossterm::event::KeyCode;
    let typing = app.target.environment.is_production();
    if action == Some(Action::Quit) {
        return Answer::Quit;
    }
    if ev.code == KeyCode::Esc || (!typing && action == Some(Action::Dismiss)) {
        return Answer::Back;
    }
    match ev.code {
        KeyCode::Enter if typing => {
            if input::typed_matches(name, &typed) {
                return Answer::Run;
            }
            app.log(
                Level::Warn,
                format!("type {name} exactly to confirm (you typed {typed:?}); nothing was run"),
            );
            typed.clear();
        }
        KeyCode::Enter => app.log(
            Level::Warn,
            "Enter alone does not run this: press y to run it, Esc to cancel",
        ),
        KeyCode::Backspace if typing => {
            typed.pop();
        }
        KeyCode::Char(c) if typing && typed.chars().count() < 64 => typed.push(c),
        KeyCode::Char('y') => return Answer::Run,
        _ => {}
    }
    Answer::Stay(typed)
}

pub(super) fn on_msg(app: &mut App, m: BackfillMsg) -> Vec<Effect> {
    match m {
        BackfillMsg::Overview(Ok(rows)) => {
            polled(app, rows);
            vec![]
        }
        BackfillMsg::Overview(Err(e)) => {
            app.backfills.error = Some(first_line(&e).to_string());
            vec![]
        }
        BackfillMsg::DryRan {
            name,
            purpose,
            result,
        } => {
            dry_ran(app, name, purpose, result);
            vec![]
        }
        BackfillMsg::Ran { name, result } => {
            ran(app, &name, result);
            vec![Effect::Poll, Effect::LoadHistory]
        }
        BackfillMsg::Stopped { name, stop, result } => {
            app.backfills.stopping.retain(|(n, _)| *n != name);
            match result {
                Ok(r) => app.log(Level::Info, r.message),
                Err(e) => log_error(
                    app,
                    &format!("backfill {name}: {} failed: {e}", stop.verb()),
                ),
            }
            vec![Effect::Poll, Effect::LoadHistory]
        }
    }
}

/// New rows from the run table; the cursor stays on its backfill.
fn polled(app: &mut App, rows: Vec<Overview>) {
    let keep = app.selected_backfill().map(|r| r.name.clone());
    app.backfills.rows = rows;
    app.backfills.error = None;
    app.refresh_view(Pane::Backfills);
    if let Some(name) = keep {
        let p = &app.panes[Pane::Backfills.index()];
        if let Some(pos) = p
            .visible
            .iter()
            .position(|i| app.backfills.rows[*i].name == name)
        {
            app.panes[Pane::Backfills.index()].selected = pos;
        }
    }
}

/// A dry run's result: shown, or the run confirmed with its numbers, unless it was cancelled
/// or there is nothing to do.
fn dry_ran(app: &mut App, name: String, purpose: DryPurpose, result: Result<DryRun, String>) {
    if app.backfills.dry_running.as_ref() != Some(&(name.clone(), purpose)) {
        // Cancelled with Esc: its result (or its cancellation) is not what anyone waits
        // for now, and must never pop up a dialog on its own.
        app.log(
            Level::Info,
            format!("backfill {name}: the cancelled dry run ended; nothing was changed"),
        );
        return;
    }
    app.backfills.dry_running = None;
    let dry = match result {
        Ok(d) => Box::new(d),
        Err(e) => {
            log_error(app, &format!("backfill {name}: dry run failed: {e}"));
            return;
        }
    };
    app.log(
        Level::Info,
        format!(
            "backfill {name}: dry run: {} rows to change, about {} batches (nothing was changed)",
            dry.rows_to_do, dry.batches
        ),
    );
    match purpose {
        DryPurpose::Show => {
            app.popup = Some(Popup::Backfill(BackfillDialog::DryRun { dry, scroll: 0 }))
        }
        DryPurpose::Confirm if dry.rows_to_do == 0 && dry.continues_run.is_none() => {
            app.log(
                Level::Info,
                format!("backfill {name}: nothing to do (its count query finds no rows)"),
            );
        }
        // The operator moved on (another dialog, the checklists): never ask over that.
        DryPurpose::Confirm if app.popup.is_some() || app.checklists.open => {
            app.log(
                Level::Info,
                format!("backfill {name}: dry run ready; B asks to run it"),
            );
        }
        DryPurpose::Confirm => {
            app.popup = Some(Popup::Backfill(BackfillDialog::ConfirmRun {
                dry,
                scroll: 0,
                typed: String::new(),
            }))
        }
    }
}

/// A run started here ended: what is left and what next, in the log; quit if that was waited for.
fn ran(app: &mut App, name: &str, result: Result<RunReport, String>) {
    app.backfills.local.retain(|l| l.name != name);
    app.backfills.stopping.retain(|(n, _)| n != name);
    match result {
        Ok(r) => {
            if let Some(n) = r.remaining.filter(|n| *n > 0) {
                app.log(
                    Level::Warn,
                    format!("backfill {name}: its count query still finds {n} rows (written behind the cursor during the run?); B runs it again"),
                );
            }
            if let Some(next) = &r.next {
                app.log(Level::Info, format!("backfill {name}: {next}"));
            }
            if r.state == Ended::UpToDate {
                app.log(Level::Info, format!("backfill {name}: nothing to do"));
            }
        }
        Err(e) => log_error(app, &format!("backfill {name}: {e}")),
    }
    if app.backfills.quit_when_stopped && app.backfills.local.is_empty() {
        app.quit = true;
    }
}

pub(super) fn is_backfill(e: &Event) -> bool {
    matches!(
        e,
        Event::BackfillStarted { .. }
            | Event::BackfillProgress { .. }
            | Event::BackfillRetry { .. }
            | Event::BackfillStopped { .. }
            | Event::ReplicaWait { name: Some(_), .. }
    )
}

/// A run's events: progress goes to the pane (several a second: not the log); start, retries
/// and the end go to the log too.
pub(super) fn on_event(app: &mut App, e: Event) {
    // A replica wait repeats every poll: the log gets its first line, the pane the rest.
    let repeated_wait = matches!(&e, Event::ReplicaWait { waited_s, .. } if *waited_s >= crate::db::topology::LAG_POLL.as_secs_f64());
    if !matches!(e, Event::BackfillProgress { .. })
        && !repeated_wait
        && let Some(line) = crate::output::event_line(&e)
    {
        let level = match &e {
            Event::BackfillRetry { .. } | Event::ReplicaWait { .. } => Level::Warn,
            Event::BackfillStopped { state, .. } if *state == RunState::Failed => Level::Error,
            _ => Level::Info,
        };
        app.log(level, line.trim_start().to_string());
    }
    let name = match &e {
        Event::BackfillStarted { name, .. }
        | Event::BackfillProgress { name, .. }
        | Event::BackfillRetry { name, .. }
        | Event::BackfillStopped { name, .. } => name.clone(),
        Event::ReplicaWait {
            name: Some(name), ..
        } => name.clone(),
        _ => return,
    };
    let Some(l) = app.backfills.local.iter_mut().find(|l| l.name == name) else {
        return;
    };
    match e {
        Event::BackfillStarted {
            run_id,
            rows_done,
            rows_estimate,
            ..
        } => {
            l.run_id = Some(run_id);
            l.rows_done = rows_done;
            l.rows_estimate = rows_estimate;
        }
        Event::BackfillProgress {
            rows_done,
            rows_estimate,
            rate,
            eta_s,
            batch_ms_p50,
            batch_ms_max,
            retries,
            ..
        } => {
            l.rows_done = rows_done;
            l.rows_estimate = rows_estimate;
            l.rate = Some(rate);
            l.eta_s = eta_s;
            l.batch_ms_p50 = batch_ms_p50;
            l.batch_ms_max = batch_ms_max;
            l.retries = retries;
            l.retrying = None;
            l.waiting = None;
        }
        Event::BackfillRetry {
            attempt,
            attempts,
            reason,
            ..
        } => l.retrying = Some(format!("attempt {attempt}/{attempts}: {reason}")),
        Event::ReplicaWait { .. } => {
            l.waiting = e.lagging().map(|lagging| format!("waiting for {lagging}"));
        }
        _ => {}
    }
}

#[cfg(test)]
pub(crate) mod sample {
    //! Fixed backfill rows and a dry run for the update and snapshot tests.

    use crate::backfill::store::{RunRow, RunState};
    use crate::backfill::{DryRun, Overview, Sample, Shown};
    use crate::db::lock::Holder;

    fn run(name: &str, id: i64, state: RunState, done: i64, estimate: i64) -> RunRow {
        RunRow {
            id,
            name: name.into(),
            state,
            requested: None,
            cursor: Some(done.to_string()),
            rows_done: done,
            rows_estimate: Some(estimate),
            batch_size: 2000,
            batches: done / 2000,
            retries: if state == RunState::Failed { 10 } else { 1 },
            batch_ms_p50: Some(42),
            batch_ms_max: Some(97),
            active_ms: 60_000,
            last_error: (state == RunState::Failed).then(|| {
                "batch after key 1200 failed: lock_timeout (55P03) after 10 tries; blocked by pid 4121 (idle in transaction 14m). Fix the blocker, then Space resumes from key 1200.".into()
            }),
            operator: "alice@bastion".into(),
            pid: Some(5150),
            started_at: "2026-11-24T09:00:00Z".into(),
            updated_at: "2026-11-24T09:01:00Z".into(),
            finished_at: None,
        }
    }

    fn row(
        name: &str,
        table: &str,
        state: Shown,
        run_row: Option<RunRow>,
        holder: Option<Holder>,
    ) -> Overview {
        let (done, estimate) = run_row
            .as_ref()
            .map_or((0, None), |r| (r.rows_done, r.rows_estimate));
        let rate = if run_row.is_some() {
            done as f64 / 60.0
        } else {
            0.0
        };
        Overview {
            name: name.into(),
            description: format!("{name} of the demo schema"),
            table: table.into(),
            state,
            fraction: estimate.map(|e| done as f64 / e as f64),
            rate,
            eta_s: match (state, estimate) {
                (Shown::Done, _) => Some(0.0),
                (Shown::Running | Shown::Paused, Some(e)) if rate > 0.0 => {
                    Some((e - done) as f64 / rate)
                }
                _ => None,
            },
            last_error: run_row.as_ref().and_then(|r| r.last_error.clone()),
            rows_done: done,
            rows_estimate: estimate,
            run: run_row,
            holder,
        }
    }

    /// hashes running in another terminal at 45 %, variants failed, sources done, cleanup never run.
    pub fn rows() -> Vec<Overview> {
        vec![
            row(
                "hashes",
                "proposal_templates",
                Shown::Running,
                Some(run("hashes", 7, RunState::Running, 135_000, 300_000)),
                Some(Holder {
                    pid: 5150,
                    application: "pgshift backfill bob@ci".into(),
                    user: "deploy".into(),
                    client: "10.0.0.7".into(),
                    since: "2026-11-24T09:00:00Z".into(),
                    state: "active".into(),
                    held_s: 60.0,
                }),
            ),
            row(
                "variants",
                "proposals",
                Shown::Failed,
                Some(run("variants", 6, RunState::Failed, 1_200, 20_000)),
                None,
            ),
            row(
                "sources",
                "documents",
                Shown::Done,
                Some(run("sources", 5, RunState::Done, 6_000, 6_000)),
                None,
            ),
            row("cleanup", "documents", Shown::NeverRun, None, None),
        ]
    }

    pub fn dry_run(name: &str) -> DryRun {
        DryRun {
            name: name.into(),
            description: "Content hashes for proposal templates: sha256 of body, hex".into(),
            table: "proposal_templates".into(),
            rows_to_do: 3000,
            table_rows_estimate: Some(3000),
            batch_size: 2000,
            pause_ms: 5,
            continues_run: None,
            from_key: None,
            sample: Some(Sample {
                lower: None,
                upper: "2000".into(),
                rows_changed: 2000,
                ms: 38.5,
            }),
            preview_before: vec![
                serde_json::json!({"id": 1, "name": "template-1", "content_hash": null}),
            ],
            preview_after: vec![serde_json::json!({
                "id": 1,
                "name": "template-1",
                "content_hash": "9f2c4b7e0d51a3c8"
            })],
            batches: 2,
            estimated_s: 0.09,
        }
    }
}

#[cfg(test)]
#[path = "backfills_tests.rs"]
mod tests;
