//! The checklist overlay (`c`): its state, its keys and its results. Part of `update`, so pure:
//! every check, confirmation and skip is an [`Effect::Checklist`] run by the worker with the
//! runbook core (`runbook::run_check`, `confirm`, `skip`, `start_run`, `view`), and comes back as
//! [`Msg::ChecklistDone`].

use std::collections::VecDeque;

use super::*;
use crate::runbook::{ChecklistView, ItemState, ItemView, RunState};

/// Longest note or reason the prompt takes (it is evidence, not an essay).
pub const NOTE_MAX: usize = 400;

/// What the worker does for the overlay. Every operation that records something returns the
/// checklist's fresh view.
#[derive(Debug, Clone, PartialEq)]
pub enum ChecklistOp {
    /// Every checklist with its newest run (`runbook::overview`).
    Load,
    RunCheck {
        checklist: String,
        item: String,
    },
    Confirm {
        checklist: String,
        item: String,
        note: String,
    },
    Skip {
        checklist: String,
        item: String,
        reason: String,
    },
    NewRun {
        checklist: String,
    },
}

impl ChecklistOp {
    fn checklist(&self) -> Option<&str> {
        match self {
            ChecklistOp::Load => None,
            ChecklistOp::RunCheck { checklist, .. }
            | ChecklistOp::Confirm { checklist, .. }
            | ChecklistOp::Skip { checklist, .. }
            | ChecklistOp::NewRun { checklist } => Some(checklist),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    Confirm,
    Skip,
}

impl NoteKind {
    pub fn prompt(self) -> &'static str {
        match self {
            NoteKind::Confirm => "note (what you checked, e.g. the backup id)",
            NoteKind::Skip => "reason for skipping",
        }
    }
}

/// The text prompt inside the overlay for a confirmation note or a skip reason.
#[derive(Debug, Clone, PartialEq)]
pub struct NotePrompt {
    pub kind: NoteKind,
    pub checklist: String,
    pub item: String,
    pub text: String,
}

/// The operation in flight, and the checks `R` still has to run after it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRun {
    pub checklist: String,
    /// The item being checked or recorded; `None` while a new run is started.
    pub item: Option<String>,
    pub queue: VecDeque<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ChecklistState {
    pub open: bool,
    pub views: Vec<ChecklistView>,
    pub loading: bool,
    /// Why the checklists could not be loaded (bad checklist files, database down).
    pub load_error: Option<String>,
    /// Index into `views` of the checklist shown.
    pub shown: usize,
    /// Item cursor in the shown checklist.
    pub selected: usize,
    pub running: Option<CheckRun>,
    pub prompt: Option<NotePrompt>,
    /// The last outcome, shown at the bottom of the overlay (also in the log pane).
    pub notice: Option<LogLine>,
    /// `pgshift health`, checked when the overlay opens.
    pub health: Option<crate::health::Health>,
    /// `:checklist NAME`: show this one when the checklists arrive.
    pub wanted: Option<String>,
}

impl ChecklistState {
    pub fn view(&self) -> Option<&ChecklistView> {
        self.views.get(self.shown)
    }

    pub fn selected_item(&self) -> Option<&ItemView> {
        self.view().and_then(|v| v.items.get(self.selected))
    }

    /// Is `item` of `checklist` being checked or recorded right now?
    pub fn is_running(&self, checklist: &str, item: &str) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.checklist == checklist && r.item.as_deref() == Some(item))
    }

    /// Is `item` of `checklist` waiting in `R`'s queue?
    pub fn is_queued(&self, checklist: &str, item: &str) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.checklist == checklist && r.queue.iter().any(|q| q == item))
    }
}

/// The automatic checks `R` runs, in order: all of them on a passed or new checklist (a new run
/// opens), else those not done yet (resuming, as `runbook::run_checks` does).
pub fn checks_to_run(view: &ChecklistView) -> VecDeque<String> {
    let fresh = matches!(view.state, RunState::Passed | RunState::NotStarted);
    view.items
        .iter()
        .filter(|i| i.check.is_some() && (fresh || !i.state.is_done()))
        .map(|i| i.id.clone())
        .collect()
}

fn notice(app: &mut App, level: Level, text: impl Into<String>) {
    let text = text.into();
    app.log(level, format!("checklist: {text}"));
    app.checklists.notice = Some(LogLine {
        level,
        text,
        at: app.now,
    });
}

/// `c` on the main screen.
pub(super) fn open(app: &mut App) -> Vec<Effect> {
    let c = &mut app.checklists;
    c.open = true;
    // While something runs its result brings the fresh view; a reload now could overtake it.
    if c.running.is_some() || c.loading {
        return vec![];
    }
    c.loading = true;
    vec![Effect::Checklist(ChecklistOp::Load), Effect::CheckHealth]
}

pub(super) fn on_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    if app.checklists.prompt.is_some() {
        return on_prompt_key(app, ev);
    }
    let Some(action) = keys::action(Scope::Checklist, ev) else {
        return vec![];
    };
    let len = app.checklists.view().map_or(0, |v| v.items.len());
    let c = &mut app.checklists;
    match action {
        Action::Close => c.open = false,
        Action::Quit => {
            c.open = false;
            return super::input::on_action(app, Action::Quit);
        }
        Action::Help => app.popup = Some(Popup::Help { scroll: 0 }),
        Action::Up => c.selected = c.selected.saturating_sub(1),
        Action::Down => c.selected = (c.selected + 1).min(len.saturating_sub(1)),
        Action::NextChecklist | Action::PrevChecklist if !c.views.is_empty() => {
            let n = c.views.len();
            c.shown = if action == Action::NextChecklist {
                (c.shown + 1) % n
            } else {
                (c.shown + n - 1) % n
            };
            c.selected = 0;
        }
        Action::RunCheck => return run_selected(app),
        Action::RunAllChecks => return run_all(app),
        Action::ConfirmItem => ask_note(app, NoteKind::Confirm),
        Action::SkipItem => ask_note(app, NoteKind::Skip),
        Action::NewRun => return new_run(app),
        _ => {}
    }
    vec![]
}

/// Refuse a second operation while one runs (they would record into the same run).
fn idle(app: &mut App) -> bool {
    if let Some(r) = &app.checklists.running {
        let what = r.item.clone().unwrap_or_else(|| "a new run".into());
        notice(
            app,
            Level::Warn,
            format!("{what} is still running; wait for it (Esc closes the overlay, it goes on)"),
        );
        return false;
    }
    if app.checklists.view().is_none() {
        notice(app, Level::Warn, "no checklist loaded yet");
        return false;
    }
    true
}

fn run_selected(app: &mut App) -> Vec<Effect> {
    if !idle(app) {
        return vec![];
    }
    let c = &app.checklists;
    let (Some(view), Some(item)) = (c.view(), c.selected_item()) else {
        return vec![];
    };
    if item.check.is_none() {
        let id = item.id.clone();
        notice(
            app,
            Level::Warn,
            format!(
                "{id} has no automatic check: y confirms it with a note, s skips it with a reason"
            ),
        );
        return vec![];
    }
    let (checklist, item) = (view.name.clone(), item.id.clone());
    start_check(app, checklist, item, VecDeque::new())
}

fn start_check(
    app: &mut App,
    checklist: String,
    item: String,
    queue: VecDeque<String>,
) -> Vec<Effect> {
    app.checklists.running = Some(CheckRun {
        checklist: checklist.clone(),
        item: Some(item.clone()),
        queue,
    });
    app.checklists.notice = Some(LogLine {
        level: Level::Info,
        text: format!("checking {item}..."),
        at: app.now,
    });
    vec![Effect::Checklist(ChecklistOp::RunCheck { checklist, item })]
}

fn run_all(app: &mut App) -> Vec<Effect> {
    if !idle(app) {
        return vec![];
    }
    let Some(view) = app.checklists.view() else {
        return vec![];
    };
    let name = view.name.clone();
    let mut queue = checks_to_run(view);
    let Some(first) = queue.pop_front() else {
        notice(
            app,
            Level::Info,
            format!("{name}: every automatic check of this run is done; n starts a new run"),
        );
        return vec![];
    };
    start_check(app, name, first, queue)
}

fn new_run(app: &mut App) -> Vec<Effect> {
    if !idle(app) {
        return vec![];
    }
    let Some(name) = app.checklists.view().map(|v| v.name.clone()) else {
        return vec![];
    };
    app.checklists.running = Some(CheckRun {
        checklist: name.clone(),
        item: None,
        queue: VecDeque::new(),
    });
    vec![Effect::Checklist(ChecklistOp::NewRun { checklist: name })]
}

fn ask_note(app: &mut App, kind: NoteKind) {
    if !idle(app) {
        return;
    }
    let c = &mut app.checklists;
    let (Some(view), Some(item)) = (c.view(), c.selected_item()) else {
        return;
    };
    c.prompt = Some(NotePrompt {
        kind,
        checklist: view.name.clone(),
        item: item.id.clone(),
        text: String::new(),
    });
}

/// Typing a note or reason: characters are text; Enter records, Esc cancels, Ctrl-C quits.
fn on_prompt_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    if keys::action(Scope::Dialog, ev) == Some(Action::Quit) {
        app.checklists.prompt = None;
        app.checklists.open = false;
        return super::input::on_action(app, Action::Quit);
    }
    let Some(mut p) = app.checklists.prompt.take() else {
        return vec![];
    };
    match ev.code {
        KeyCode::Esc => {
            notice(app, Level::Info, format!("{}: nothing recorded", p.item));
            return vec![];
        }
        KeyCode::Enter => {
            let text = p.text.trim().to_string();
            if text.is_empty() {
                app.checklists.notice = Some(LogLine {
                    level: Level::Warn,
                    text: format!("type the {} first (Esc cancels)", p.kind.prompt()),
                    at: app.now,
                });
                app.checklists.prompt = Some(p);
                return vec![];
            }
            app.checklists.running = Some(CheckRun {
                checklist: p.checklist.clone(),
                item: Some(p.item.clone()),
                queue: VecDeque::new(),
            });
            let op = match p.kind {
                NoteKind::Confirm => ChecklistOp::Confirm {
                    checklist: p.checklist,
                    item: p.item,
                    note: text,
                },
                NoteKind::Skip => ChecklistOp::Skip {
                    checklist: p.checklist,
                    item: p.item,
                    reason: text,
                },
            };
            return vec![Effect::Checklist(op)];
        }
        KeyCode::Backspace => {
            p.text.pop();
        }
        KeyCode::Char(ch) if p.text.chars().count() < NOTE_MAX => p.text.push(ch),
        _ => {}
    }
    app.checklists.prompt = Some(p);
    vec![]
}

pub(super) fn on_loaded(app: &mut App, result: Result<Vec<ChecklistView>, String>) -> Vec<Effect> {
    let c = &mut app.checklists;
    c.loading = false;
    match result {
        Ok(views) => {
            // Keep the shown checklist by name across reloads; the first time, pre-deploy.
            let want = c
                .wanted
                .take()
                .or_else(|| c.view().map(|v| v.name.clone()))
                .unwrap_or_else(|| crate::runbook::definition::PRE_DEPLOY.to_string());
            c.shown = views.iter().position(|v| v.name == want).unwrap_or(0);
            c.views = views;
            let len = c.view().map_or(0, |v| v.items.len());
            c.selected = c.selected.min(len.saturating_sub(1));
            c.load_error = None;
            if app.health.is_unreachable() {
                app.checklists.notice = Some(LogLine {
                    level: Level::Warn,
                    text: "database unreachable: the checklists from their definitions; confirm (y) and skip (s) are kept locally and recorded when it is back; automatic checks need it".into(),
                    at: app.now,
                });
            }
        }
        Err(e) => {
            c.load_error = Some(e.clone());
            log_error(app, &format!("checklists not loaded: {e}"));
        }
    }
    vec![]
}

pub(super) fn on_done(
    app: &mut App,
    op: ChecklistOp,
    result: Result<ChecklistView, String>,
) -> Vec<Effect> {
    let mut queue = app
        .checklists
        .running
        .take()
        .map(|r| r.queue)
        .unwrap_or_default();
    let view = match result {
        Ok(v) => v,
        Err(e) => {
            op_failed(app, &op, &e, queue);
            return vec![];
        }
    };
    let c = &mut app.checklists;
    match c.views.iter_mut().find(|v| v.name == view.name) {
        Some(slot) => *slot = view.clone(),
        None => c.views.push(view.clone()),
    }
    say_done(app, &op, &view);
    // `R`: the next check in line, now that this one is recorded.
    match (op, queue.pop_front()) {
        (ChecklistOp::RunCheck { checklist, .. }, Some(next)) => {
            start_check(app, checklist, next, queue)
        }
        _ => vec![],
    }
}

/// A failed operation: what failed in the notice, the rest of the error in the log, and the
/// queued checks that now do not run.
fn op_failed(app: &mut App, op: &ChecklistOp, e: &str, queue: VecDeque<String>) {
    let what = match op {
        ChecklistOp::RunCheck { item, .. } => format!("checking {item} failed"),
        ChecklistOp::Confirm { item, .. } => format!("confirming {item} failed"),
        ChecklistOp::Skip { item, .. } => format!("skipping {item} failed"),
        ChecklistOp::NewRun { checklist } => {
            format!("starting a new run of {checklist} failed")
        }
        ChecklistOp::Load => "loading failed".into(),
    };
    let first = first_line(e);
    notice(app, Level::Error, format!("{what}: {first}"));
    // The rest (why, what next) goes to the log pane line by line.
    for line in e.lines().skip(1) {
        app.log(Level::Info, line.trim_end().to_string());
    }
    if !queue.is_empty() {
        app.log(
            Level::Warn,
            format!(
                "checklist: stopped; not run: {}",
                queue.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }
}

/// What a successful operation did: the new run, or the item's new state with its evidence;
/// and the checklist passing.
fn say_done(app: &mut App, op: &ChecklistOp, view: &ChecklistView) {
    let item = match op {
        ChecklistOp::RunCheck { item, .. }
        | ChecklistOp::Confirm { item, .. }
        | ChecklistOp::Skip { item, .. } => view.item(item),
        _ => None,
    };
    match (op, item) {
        (ChecklistOp::NewRun { checklist }, _) => notice(
            app,
            Level::Info,
            format!(
                "{checklist}: new run #{} started",
                view.run_id.map_or("?".into(), |id| id.to_string())
            ),
        ),
        (_, Some(i)) => {
            let level = match i.state {
                ItemState::Failed => Level::Error,
                ItemState::Unverified => Level::Warn,
                _ => Level::Info,
            };
            let evidence = i
                .evidence
                .as_deref()
                .map(|e| format!(": {}", first_line(e)))
                .unwrap_or_default();
            notice(
                app,
                level,
                format!("{} {}{evidence}", i.id, i.state.as_str()),
            );
        }
        _ => {}
    }
    if view.state == RunState::Passed && op.checklist().is_some() {
        app.log(
            Level::Info,
            format!(
                "checklist: {} passed (run #{})",
                view.name,
                view.run_id.unwrap_or(0)
            ),
        );
    }
}

#[cfg(test)]
#[path = "checklist_tests.rs"]
mod tests;
