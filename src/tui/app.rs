//! The TUI's model and its pure `update`: state in, message in, state out plus the [`Effect`]s to
//! run. No awaits, no SQL, no clock: everything from the outside world arrives as a [`Msg`].

use std::collections::VecDeque;

use crossterm::event::KeyEvent;

use super::keys::{self, Action, Scope};
use crate::catalog::{Catalog, Revision};
use crate::config::{Environment, Target};
use crate::db::audit;
use crate::db::blockers::{Blocker, Conflict};
use crate::event::{Event, Level};
use crate::ops::history::History;
use crate::ops::migrate::Report;
use crate::ops::status::{RevisionRow, Status};
use crate::plan::{Direction, Plan, TargetSpec};

/// Log lines kept in memory; older ones are in the log file.
pub const LOG_CAPACITY: usize = 2000;
/// Audit events loaded into the history pane.
pub const HISTORY_LIMIT: i64 = 10_000;

/// The panes, in Tab order. A new pane (e.g. Backfills on `b`) is one variant here, its entry in
/// `ALL`, `slot` and `title`, its rows in `row_count`/`row_text`, one key binding in `keys.rs`
/// and one file under `ui/` with its arm in `ui::draw_pane`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Revisions,
    History,
    Locks,
    Log,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Revisions, Pane::History, Pane::Locks, Pane::Log];

    pub fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// Where on screen the pane lives. Several panes may share a slot: the slot shows the focused
    /// one, else the first of them in `ALL` (e.g. a Backfills pane sharing the Log's slot).
    pub fn slot(self) -> Slot {
        match self {
            Pane::Revisions => Slot::TopLeft,
            Pane::History => Slot::TopRight,
            Pane::Locks => Slot::BottomLeft,
            Pane::Log => Slot::BottomRight,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Revisions => "Revisions",
            Pane::History => "History",
            Pane::Locks => "Lock conflicts",
            Pane::Log => "Log",
        }
    }
}

/// The four regions of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
}

impl App {
    /// The pane shown in `slot`: the focused one when it lives there, else the slot's first.
    pub fn pane_in(&self, slot: Slot) -> Option<Pane> {
        if self.focus.slot() == slot {
            return Some(self.focus);
        }
        Pane::ALL.iter().copied().find(|p| p.slot() == slot)
    }
}

/// What we know about the database's reachability and health.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// No answer from the monitor yet.
    Connecting,
    Ok,
    /// Connected, but something needs attention (drift, INVALID index, read-only, a failing poll).
    Degraded(String),
    /// The monitor cannot reach the database; the last known state is shown greyed.
    Unreachable {
        reason: String,
        retry_in_s: u64,
    },
}

impl Health {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Health::Unreachable { .. })
    }
}

/// The target as the header shows it (no password: `ConnInfo::redacted`).
#[derive(Debug, Clone)]
pub struct TargetInfo {
    pub name: String,
    /// `host:port/database` (the role is shown from the server's answer).
    pub address: String,
    pub environment: Environment,
    pub sandbox: bool,
    /// The migrations directory, for the empty-catalog hint.
    pub migrations: String,
}

impl From<&Target> for TargetInfo {
    fn from(t: &Target) -> Self {
        TargetInfo {
            name: t.name.clone(),
            address: format!("{}:{}/{}", t.conn.host(), t.conn.port(), t.conn.dbname()),
            environment: t.environment,
            sandbox: t.is_sandbox(),
            migrations: t.migrations.display().to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Cancel,
    Terminate,
}

impl Signal {
    pub fn verb(self) -> &'static str {
        match self {
            Signal::Cancel => "cancel",
            Signal::Terminate => "terminate",
        }
    }

    /// Exactly what runs, for the confirmation (db::blockers::signal binds the pid).
    pub fn sql(self, pid: i32) -> String {
        match self {
            Signal::Cancel => format!("SELECT pg_cancel_backend({pid});"),
            Signal::Terminate => format!("SELECT pg_terminate_backend({pid});"),
        }
    }
}

/// Why a plan was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Preview,
    Confirm,
}

/// An action that changes the database and so waits for the operator's yes.
#[derive(Debug, Clone)]
pub enum Pending {
    Migrate(Plan),
    Signal { blocker: Blocker, signal: Signal },
}

#[derive(Debug, Clone)]
pub struct Confirm {
    pub pending: Pending,
    /// `Some(rev)`: the operator must type this revision (a production downgrade).
    pub must_type: Option<Revision>,
    pub typed: String,
    pub scroll: u16,
}

#[derive(Debug, Clone)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    Preview {
        plan: Plan,
        scroll: u16,
    },
    Confirm(Confirm),
    /// Quit was asked for while an action runs.
    QuitWhileRunning,
}

/// Progress of the running migration, from the core's events.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub direction: Direction,
    pub from: Revision,
    pub to: Revision,
    pub step: Option<(usize, usize, String)>,
    pub attempt: Option<(u32, u32, String)>,
    pub blockers: Vec<Blocker>,
    pub waiting_for_runner: Option<String>,
    /// The statement running now (no-transaction steps run statement by statement).
    pub statement: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Activity {
    Idle,
    Planning(Purpose),
    Migrating(Progress),
    Signalling(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

/// One row of the lock pane: a waiter, or one of its blockers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockRow {
    pub conflict: usize,
    pub blocker: Option<usize>,
}

/// Cursor and filter of one pane; `visible` are the indices of the rows passing the filter.
#[derive(Debug, Clone, Default)]
pub struct PaneState {
    pub selected: usize,
    pub filter: String,
    pub visible: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motion {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
}

/// Everything the outside world tells the app.
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Resize {
        width: u16,
        height: u16,
    },
    Tick,
    Monitor(Monitor),
    History(Result<History, String>),
    Planned {
        purpose: Purpose,
        result: Result<Plan, String>,
    },
    Progress(Event),
    Migrated(Result<Report, String>),
    Signalled {
        pid: i32,
        signal: Signal,
        result: Result<bool, String>,
    },
    /// SIGTERM/SIGHUP: leave now, restoring the terminal.
    Terminate,
}

/// What the monitoring connection reports.
#[derive(Debug, Clone)]
pub enum Monitor {
    Snapshot {
        status: Box<Status>,
        conflicts: Vec<Conflict>,
    },
    /// Connected, but this poll failed (the connection stays).
    PollFailed(String),
    Unreachable {
        reason: String,
        retry_in_s: u64,
    },
}

/// Work for `worker` (and a poke for the monitor).
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    LoadHistory,
    /// Poll the monitor now instead of at its next tick.
    Poll,
    Plan {
        direction: Direction,
        spec: TargetSpec,
        purpose: Purpose,
    },
    Migrate {
        direction: Direction,
        spec: TargetSpec,
        expect: (Revision, Revision),
    },
    Signal {
        blocker: Blocker,
        signal: Signal,
    },
}

pub struct App {
    pub target: TargetInfo,
    /// False under NO_COLOR: styles become bold/reverse and markers become letters.
    pub color: bool,
    pub health: Health,
    pub status: Option<Status>,
    /// The catalog's rows, with what the last status said about each (base first).
    pub revisions: Vec<RevisionRow>,
    pub history: Vec<audit::Event>,
    pub history_error: Option<String>,
    pub conflicts: Vec<Conflict>,
    pub lock_rows: Vec<LockRow>,
    pub log: VecDeque<LogLine>,
    pub focus: Pane,
    pub panes: Vec<PaneState>,
    /// Typing into the focused pane's filter.
    pub filtering: bool,
    pub target_rev: Option<Revision>,
    pub activity: Activity,
    pub popup: Option<Popup>,
    /// Rows moved by PgUp/PgDn (from the terminal size).
    pub page: usize,
    pub quit: bool,
}

fn base_row() -> RevisionRow {
    RevisionRow {
        revision: Revision::BASE,
        name: "(nothing applied)".into(),
        applied: true,
        applied_on: None,
        reversible: true,
        no_transaction: false,
        drift: false,
    }
}

impl App {
    pub fn new(target: TargetInfo, catalog: &Catalog, color: bool) -> App {
        let mut revisions = vec![base_row()];
        revisions.extend(catalog.migrations.iter().map(|m| RevisionRow {
            revision: m.revision,
            name: m.name.clone(),
            applied: false,
            applied_on: None,
            reversible: m.is_reversible(),
            no_transaction: m.no_transaction,
            drift: false,
        }));
        let mut app = App {
            target,
            color,
            health: Health::Connecting,
            status: None,
            revisions,
            history: Vec::new(),
            history_error: None,
            conflicts: Vec::new(),
            lock_rows: Vec::new(),
            log: VecDeque::new(),
            focus: Pane::Revisions,
            panes: Pane::ALL.iter().map(|_| PaneState::default()).collect(),
            filtering: false,
            target_rev: None,
            activity: Activity::Idle,
            popup: None,
            page: 5,
            quit: false,
        };
        for p in Pane::ALL {
            app.refresh_view(p);
        }
        app
    }

    /// What to run right after start.
    pub fn init() -> Vec<Effect> {
        vec![Effect::LoadHistory]
    }

    pub fn pane(&self, p: Pane) -> &PaneState {
        &self.panes[p.index()]
    }

    fn pane_mut(&mut self, p: Pane) -> &mut PaneState {
        &mut self.panes[p.index()]
    }

    pub fn current(&self) -> Option<Revision> {
        self.status.as_ref().map(|s| s.current)
    }

    /// Where `u` goes: the chosen target when it is above current, else head.
    pub fn upgrade_target(&self) -> TargetSpec {
        match (self.target_rev, self.current()) {
            (Some(t), Some(c)) if t > c => TargetSpec::Revision(t),
            _ => TargetSpec::Head,
        }
    }

    pub fn is_busy(&self) -> bool {
        !matches!(self.activity, Activity::Idle)
    }

    /// The revision row under the Revisions cursor.
    pub fn selected_revision(&self) -> Option<&RevisionRow> {
        let p = self.pane(Pane::Revisions);
        p.visible
            .get(p.selected)
            .and_then(|i| self.revisions.get(*i))
    }

    pub fn selected_event(&self) -> Option<&audit::Event> {
        let p = self.pane(Pane::History);
        p.visible.get(p.selected).and_then(|i| self.history.get(*i))
    }

    /// The blocker under the lock cursor: the row's blocker, or a waiter's first blocker.
    pub fn selected_blocker(&self) -> Option<&Blocker> {
        let p = self.pane(Pane::Locks);
        let row = p
            .visible
            .get(p.selected)
            .and_then(|i| self.lock_rows.get(*i))?;
        let c = self.conflicts.get(row.conflict)?;
        c.blockers.get(row.blocker.unwrap_or(0))
    }

    pub fn log(&mut self, level: Level, text: impl Into<String>) {
        let follow = {
            let p = self.pane(Pane::Log);
            p.visible.is_empty() || p.selected + 1 >= p.visible.len()
        };
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogLine {
            level,
            text: text.into(),
        });
        self.refresh_view(Pane::Log);
        if follow {
            let p = self.pane_mut(Pane::Log);
            p.selected = p.visible.len().saturating_sub(1);
        }
    }

    /// The text a row is filtered on.
    fn row_text(&self, pane: Pane, i: usize) -> String {
        match pane {
            Pane::Revisions => self
                .revisions
                .get(i)
                .map(|r| format!("{} {}", r.revision, r.name))
                .unwrap_or_default(),
            Pane::History => self
                .history
                .get(i)
                .map(|e| {
                    format!(
                        "{} {} {} {} {}",
                        e.action,
                        e.operator,
                        e.outcome,
                        e.at,
                        e.error.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_default(),
            Pane::Locks => self
                .lock_rows
                .get(i)
                .and_then(|r| {
                    let c = self.conflicts.get(r.conflict)?;
                    let b = match r.blocker {
                        Some(b) => c.blockers.get(b)?,
                        None => &c.waiter,
                    };
                    Some(format!(
                        "{} {} {} {} {}",
                        b.pid, b.user, b.application, b.state, b.query
                    ))
                })
                .unwrap_or_default(),
            Pane::Log => self.log.get(i).map(|l| l.text.clone()).unwrap_or_default(),
        }
    }

    fn row_count(&self, pane: Pane) -> usize {
        match pane {
            Pane::Revisions => self.revisions.len(),
            Pane::History => self.history.len(),
            Pane::Locks => self.lock_rows.len(),
            Pane::Log => self.log.len(),
        }
    }

    /// Recompute which rows pass the filter, keeping the cursor in range.
    pub fn refresh_view(&mut self, pane: Pane) {
        let needle = self.pane(pane).filter.to_lowercase();
        let visible: Vec<usize> = (0..self.row_count(pane))
            .filter(|i| {
                needle.is_empty() || self.row_text(pane, *i).to_lowercase().contains(&needle)
            })
            .collect();
        let p = self.pane_mut(pane);
        p.selected = p.selected.min(visible.len().saturating_sub(1));
        p.visible = visible;
    }

    fn move_cursor(&mut self, pane: Pane, m: Motion) {
        let page = self.page.max(1);
        let p = self.pane_mut(pane);
        let last = p.visible.len().saturating_sub(1);
        p.selected = match m {
            Motion::Up => p.selected.saturating_sub(1),
            Motion::Down => (p.selected + 1).min(last),
            Motion::PageUp => p.selected.saturating_sub(page),
            Motion::PageDown => (p.selected + page).min(last),
            Motion::Home => 0,
            Motion::End => last,
        };
    }
}

/// The one state transition. Pure: returns what to run instead of running it.
pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(ev) => on_key(app, &ev),
        Msg::Resize { height, .. } => {
            // Each list pane gets about half the body height, minus borders.
            app.page = (height as usize / 2).saturating_sub(4).max(1);
            vec![]
        }
        Msg::Tick => vec![],
        Msg::Terminate => {
            app.quit = true;
            vec![]
        }
        Msg::Monitor(m) => on_monitor(app, m),
        Msg::History(r) => {
            match r {
                Ok(h) => {
                    app.history = h.events;
                    app.history_error = None;
                }
                // Keep the last known events through an outage; say why they are not fresh.
                Err(e) if !app.history.is_empty() => app.log(
                    Level::Warn,
                    format!("history not refreshed: {}", first_line(&e)),
                ),
                Err(e) => app.history_error = Some(e),
            }
            app.refresh_view(Pane::History);
            vec![]
        }
        Msg::Planned { purpose, result } => on_planned(app, purpose, result),
        Msg::Progress(e) => {
            on_progress(app, e);
            vec![]
        }
        Msg::Migrated(r) => {
            app.activity = Activity::Idle;
            match r {
                Ok(rep) => app.log(
                    Level::Info,
                    format!(
                        "{} {} -> {}: {} step(s) in {} ms",
                        rep.direction.verb(),
                        rep.from,
                        rep.to,
                        rep.steps.len(),
                        rep.duration_ms
                    ),
                ),
                Err(e) => log_error(app, &e),
            }
            vec![Effect::Poll, Effect::LoadHistory]
        }
        Msg::Signalled {
            pid,
            signal,
            result,
        } => {
            app.activity = Activity::Idle;
            match result {
                Ok(true) => app.log(
                    Level::Info,
                    format!("{} sent to pid {pid} (audited)", signal.verb()),
                ),
                Ok(false) => app.log(
                    Level::Warn,
                    format!(
                        "{} of pid {pid}: no such session any more (audited)",
                        signal.verb()
                    ),
                ),
                Err(e) => log_error(app, &format!("{} of pid {pid} failed: {e}", signal.verb())),
            }
            vec![Effect::Poll, Effect::LoadHistory]
        }
    }
}

fn log_error(app: &mut App, text: &str) {
    // Multi-line errors (what, why, what next) stay readable line by line.
    for (i, line) in text.lines().enumerate() {
        app.log(
            if i == 0 { Level::Error } else { Level::Info },
            line.trim_end().to_string(),
        );
    }
}

fn on_monitor(app: &mut App, m: Monitor) -> Vec<Effect> {
    match m {
        Monitor::Snapshot { status, conflicts } => {
            let reconnected = app.health.is_unreachable();
            if reconnected {
                app.log(Level::Info, "database reachable again");
            }
            let moved = app
                .status
                .as_ref()
                .is_some_and(|s| s.current != status.current);
            app.health = health_of(&status);
            set_status(app, *status);
            set_conflicts(app, conflicts);
            // After an outage, or when someone (maybe another operator) moved the database, the
            // audit trail changed too.
            if reconnected || moved {
                vec![Effect::LoadHistory]
            } else {
                vec![]
            }
        }
        Monitor::PollFailed(reason) => {
            app.health = Health::Degraded(first_line(&reason));
            vec![]
        }
        Monitor::Unreachable { reason, retry_in_s } => {
            if !app.health.is_unreachable() {
                log_error(app, &format!("database unreachable: {reason}"));
            }
            app.health = Health::Unreachable {
                reason: first_line(&reason),
                retry_in_s,
            };
            vec![]
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

fn health_of(s: &Status) -> Health {
    if !s.drift.is_empty() {
        Health::Degraded(format!(
            "drift in {} revision(s): run `pgshift status`",
            s.drift.len()
        ))
    } else if !s.invalid_indexes.is_empty() {
        Health::Degraded(format!(
            "{} INVALID index(es) from a failed CONCURRENTLY build",
            s.invalid_indexes.len()
        ))
    } else if s.server.read_only {
        Health::Degraded("server is read-only (a standby?)".into())
    } else {
        Health::Ok
    }
}

fn set_status(app: &mut App, s: Status) {
    let mut rows = vec![base_row()];
    rows.extend(s.revisions.iter().cloned());
    let keep = app.selected_revision().map(|r| r.revision);
    let first = app.status.is_none();
    app.revisions = rows;
    app.status = Some(s);
    app.refresh_view(Pane::Revisions);
    // First status: put the cursor on the current revision; afterwards keep it on its revision.
    let want = if first { app.current() } else { keep };
    if let Some(want) = want {
        let p = &app.panes[Pane::Revisions.index()];
        if let Some(pos) = p
            .visible
            .iter()
            .position(|i| app.revisions[*i].revision == want)
        {
            app.panes[Pane::Revisions.index()].selected = pos;
        }
    }
}

fn set_conflicts(app: &mut App, conflicts: Vec<Conflict>) {
    let keep = app.selected_blocker().map(|b| b.pid);
    app.lock_rows = conflicts
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| {
            std::iter::once(LockRow {
                conflict: ci,
                blocker: None,
            })
            .chain((0..c.blockers.len()).map(move |bi| LockRow {
                conflict: ci,
                blocker: Some(bi),
            }))
        })
        .collect();
    app.conflicts = conflicts;
    app.refresh_view(Pane::Locks);
    if let Some(pid) = keep {
        let p = &app.panes[Pane::Locks.index()];
        let pos = p.visible.iter().position(|i| {
            let r = app.lock_rows[*i];
            r.blocker
                .and_then(|b| app.conflicts[r.conflict].blockers.get(b))
                .is_some_and(|b| b.pid == pid)
        });
        if let Some(pos) = pos {
            app.panes[Pane::Locks.index()].selected = pos;
        }
    }
}

fn on_planned(app: &mut App, purpose: Purpose, result: Result<Plan, String>) -> Vec<Effect> {
    app.activity = Activity::Idle;
    let plan = match result {
        Ok(p) => p,
        Err(e) => {
            log_error(app, &e);
            return vec![];
        }
    };
    match purpose {
        Purpose::Preview => app.popup = Some(Popup::Preview { plan, scroll: 0 }),
        Purpose::Confirm if plan.is_empty() => {
            app.log(
                Level::Info,
                format!("nothing to do: the database is at {}", plan.from),
            );
        }
        Purpose::Confirm => {
            let must_type = (plan.is_destructive() && app.target.environment.is_production())
                .then_some(plan.to);
            app.popup = Some(Popup::Confirm(Confirm {
                pending: Pending::Migrate(plan),
                must_type,
                typed: String::new(),
                scroll: 0,
            }));
        }
    }
    vec![]
}

fn on_progress(app: &mut App, e: Event) {
    if let Some(line) = crate::output::event_line(&e) {
        let level = match &e {
            Event::Log { level, .. } => *level,
            Event::StepRetry { .. } | Event::Blocked { .. } | Event::LockBusy { .. } => Level::Warn,
            _ => Level::Info,
        };
        app.log(level, line.trim_start().to_string());
    }
    let Activity::Migrating(p) = &mut app.activity else {
        return;
    };
    match e {
        Event::LockBusy { holder } => p.waiting_for_runner = Some(holder.to_string()),
        Event::StepStarted {
            index,
            total,
            revision,
            name,
            ..
        } => {
            p.waiting_for_runner = None;
            p.step = Some((index, total, format!("{revision}_{name}")));
            p.attempt = None;
            p.blockers.clear();
            p.statement = None;
        }
        Event::Blocked { blockers, .. } => p.blockers = blockers,
        Event::StepRetry {
            attempt,
            attempts,
            reason,
            blockers,
            ..
        } => {
            p.attempt = Some((attempt, attempts, reason));
            p.blockers = blockers;
        }
        Event::StepFinished { .. } => {
            p.attempt = None;
            p.blockers.clear();
        }
        Event::Statement { line, text, .. } => {
            p.statement = Some(format!(
                "line {line}: {}",
                crate::output::one_line(&text, 120)
            ))
        }
        Event::Log { .. } => {}
    }
}

fn on_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    if app.popup.is_some() {
        return on_popup_key(app, ev);
    }
    if app.filtering {
        return on_filter_key(app, ev);
    }
    match keys::action(Scope::Main, ev) {
        Some(a) => on_action(app, a),
        None => vec![],
    }
}

fn on_action(app: &mut App, a: Action) -> Vec<Effect> {
    let focus = app.focus;
    match a {
        Action::Quit => {
            if app.is_busy() {
                app.popup = Some(Popup::QuitWhileRunning);
            } else {
                app.quit = true;
            }
        }
        Action::Help => app.popup = Some(Popup::Help { scroll: 0 }),
        Action::NextPane => app.focus = Pane::ALL[(focus.index() + 1) % Pane::ALL.len()],
        Action::PrevPane => {
            app.focus = Pane::ALL[(focus.index() + Pane::ALL.len() - 1) % Pane::ALL.len()]
        }
        Action::Focus(p) => app.focus = p,
        Action::Up => app.move_cursor(focus, Motion::Up),
        Action::Down => app.move_cursor(focus, Motion::Down),
        Action::PageUp => app.move_cursor(focus, Motion::PageUp),
        Action::PageDown => app.move_cursor(focus, Motion::PageDown),
        Action::Home => app.move_cursor(focus, Motion::Home),
        Action::End => app.move_cursor(focus, Motion::End),
        Action::Filter => app.filtering = true,
        Action::Refresh => return vec![Effect::Poll, Effect::LoadHistory],
        Action::SetTarget => {
            if focus == Pane::Revisions
                && let Some(r) = app.selected_revision().map(|r| r.revision)
            {
                app.target_rev = Some(r);
                app.log(Level::Info, format!("target revision set to {r}"));
            }
        }
        Action::Upgrade => {
            return start_plan(app, Direction::Up, app.upgrade_target(), Purpose::Confirm);
        }
        Action::DowngradeOne => {
            return start_plan(
                app,
                Direction::Down,
                TargetSpec::Steps(Direction::Down, 1),
                Purpose::Confirm,
            );
        }
        Action::DowngradeTo => {
            let Some(rev) = app.selected_revision().map(|r| r.revision) else {
                return vec![];
            };
            if app.current().is_some_and(|c| rev >= c) {
                app.log(Level::Warn, format!("downgrade to {rev}: pick a revision below the current one in Revisions (base included)"));
                return vec![];
            }
            return start_plan(
                app,
                Direction::Down,
                TargetSpec::Revision(rev),
                Purpose::Confirm,
            );
        }
        Action::Preview => {
            // Preview what D would do when the cursor is below current, else the upgrade.
            let down = app
                .selected_revision()
                .map(|r| r.revision)
                .filter(|r| focus == Pane::Revisions && app.current().is_some_and(|c| *r < c));
            return match down {
                Some(rev) => start_plan(
                    app,
                    Direction::Down,
                    TargetSpec::Revision(rev),
                    Purpose::Preview,
                ),
                None => start_plan(app, Direction::Up, app.upgrade_target(), Purpose::Preview),
            };
        }
        Action::CancelBlocker => ask_signal(app, Signal::Cancel),
        Action::TerminateBlocker => ask_signal(app, Signal::Terminate),
        Action::Confirm | Action::Dismiss => {}
    }
    vec![]
}

fn start_plan(
    app: &mut App,
    direction: Direction,
    spec: TargetSpec,
    purpose: Purpose,
) -> Vec<Effect> {
    if app.is_busy() {
        app.log(
            Level::Warn,
            "an action is already running: wait for it to finish (see the status line)",
        );
        return vec![];
    }
    if app.health.is_unreachable() {
        app.log(
            Level::Error,
            "the database is unreachable: nothing can run until it is back (r retries now)",
        );
        return vec![];
    }
    app.activity = Activity::Planning(purpose);
    vec![Effect::Plan {
        direction,
        spec,
        purpose,
    }]
}

fn ask_signal(app: &mut App, signal: Signal) {
    match app.selected_blocker().cloned() {
        Some(blocker) => {
            app.popup = Some(Popup::Confirm(Confirm {
                pending: Pending::Signal { blocker, signal },
                must_type: None,
                typed: String::new(),
                scroll: 0,
            }))
        }
        None => app.log(
            Level::Warn,
            format!(
                "{}: select a blocker in the Lock conflicts pane (3) first",
                signal.verb()
            ),
        ),
    }
}

fn on_filter_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    let pane = app.focus;
    match keys::action(Scope::Dialog, ev) {
        Some(Action::Quit) => return on_action(app, Action::Quit),
        Some(Action::Confirm) if ev.code == KeyCode::Enter => app.filtering = false,
        Some(Action::Dismiss) if ev.code == KeyCode::Esc => {
            app.filtering = false;
            app.pane_mut(pane).filter.clear();
        }
        _ => match ev.code {
            KeyCode::Backspace => {
                app.pane_mut(pane).filter.pop();
            }
            KeyCode::Char(c) => app.pane_mut(pane).filter.push(c),
            _ => return vec![],
        },
    }
    app.refresh_view(pane);
    vec![]
}

fn on_popup_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    let Some(popup) = app.popup.take() else {
        return vec![];
    };
    let action = keys::action(Scope::Dialog, ev);
    match popup {
        Popup::QuitWhileRunning => {
            if let Some(Action::Confirm | Action::Quit) = action {
                app.quit = true;
            }
        }
        Popup::Help { scroll } | Popup::Preview { scroll, .. }
            if matches!(action, Some(Action::Up | Action::Down)) =>
        {
            let scroll = if action == Some(Action::Up) {
                scroll.saturating_sub(1)
            } else {
                scroll.saturating_add(1)
            };
            app.popup = Some(match popup {
                Popup::Preview { plan, .. } => Popup::Preview { plan, scroll },
                _ => Popup::Help { scroll },
            });
        }
        Popup::Help { .. } | Popup::Preview { .. } => {
            if action == Some(Action::Quit) {
                return on_action(app, Action::Quit);
            }
            // A stray key keeps the dialog open; Esc, Enter, n, y, ? and q close it.
            if action.is_none() && !matches!(ev.code, KeyCode::Char('?' | 'q')) {
                app.popup = Some(popup);
            }
        }
        Popup::Confirm(c) => return on_confirm_key(app, c, action, ev),
    }
    vec![]
}

/// Keys in a confirmation. Typing mode (production downgrade) takes characters as the revision,
/// so only Enter, Esc, arrows and Backspace act there.
fn on_confirm_key(
    app: &mut App,
    mut c: Confirm,
    action: Option<Action>,
    ev: &KeyEvent,
) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    let typing = c.must_type.is_some();
    let cancel = ev.code == KeyCode::Esc || (!typing && action == Some(Action::Dismiss));
    let run = ev.code == KeyCode::Enter || (!typing && action == Some(Action::Confirm));
    if action == Some(Action::Quit) {
        // Quitting while idle just closes the dialog with the app; while busy it asks.
        return on_action(app, Action::Quit);
    }
    if cancel {
        app.log(Level::Info, "not confirmed; nothing was run");
        return vec![];
    }
    if run {
        if let Some(rev) = c.must_type
            && Revision::parse(&c.typed) != Some(rev)
        {
            app.log(
                Level::Warn,
                format!(
                    "type {rev} exactly to confirm (you typed {:?}); nothing was run",
                    c.typed
                ),
            );
            c.typed.clear();
            app.popup = Some(Popup::Confirm(c));
            return vec![];
        }
        return confirmed(app, c.pending);
    }
    match ev.code {
        KeyCode::Up => c.scroll = c.scroll.saturating_sub(1),
        KeyCode::Down => c.scroll = c.scroll.saturating_add(1),
        KeyCode::Backspace => {
            c.typed.pop();
        }
        KeyCode::Char(ch) if typing && c.typed.len() < 16 => c.typed.push(ch),
        _ if action == Some(Action::Up) => c.scroll = c.scroll.saturating_sub(1),
        _ if action == Some(Action::Down) => c.scroll = c.scroll.saturating_add(1),
        _ => {}
    }
    app.popup = Some(Popup::Confirm(c));
    vec![]
}

fn confirmed(app: &mut App, pending: Pending) -> Vec<Effect> {
    match pending {
        Pending::Migrate(plan) => {
            if app.is_busy() {
                app.log(
                    Level::Warn,
                    "an action is already running; nothing else was started",
                );
                return vec![];
            }
            let spec = TargetSpec::Revision(plan.to);
            app.activity = Activity::Migrating(Progress {
                direction: plan.direction,
                from: plan.from,
                to: plan.to,
                step: None,
                attempt: None,
                blockers: vec![],
                waiting_for_runner: None,
                statement: None,
            });
            app.log(
                Level::Info,
                format!(
                    "{} {} -> {} confirmed",
                    plan.direction.verb(),
                    plan.from,
                    plan.to
                ),
            );
            vec![Effect::Migrate {
                direction: plan.direction,
                spec,
                expect: (plan.from, plan.to),
            }]
        }
        Pending::Signal { blocker, signal } => {
            app.activity = Activity::Signalling(blocker.pid);
            app.log(
                Level::Info,
                format!("{} pid {} confirmed", signal.verb(), blocker.pid),
            );
            vec![Effect::Signal { blocker, signal }]
        }
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
