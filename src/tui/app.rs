//! The TUI's model and its pure `update`: state in, message in, state out plus the [`Effect`]s to
//! run. No awaits, no SQL, no clock: everything from the outside world arrives as a [`Msg`].

use std::collections::VecDeque;
use std::sync::Arc;

use crossterm::event::KeyEvent;

use super::keys::{self, Action, Scope};
use crate::catalog::{Catalog, Revision};
use crate::config::{Environment, Target};
use crate::db::audit;
use crate::db::blockers::{Blocker, Conflict};
use crate::error::Error;
use crate::event::{Event, Level};
use crate::ops::history::History;
use crate::ops::migrate::{Preview, Report};
use crate::ops::status::{RevisionRow, Status};
use crate::plan::{Direction, TargetSpec};

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
    Backfills,
    /// Every target of the fleet (`6`/`F`): takes the whole body while focused.
    Fleet,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Revisions,
        Pane::History,
        Pane::Locks,
        Pane::Log,
        Pane::Backfills,
        Pane::Fleet,
    ];

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
            Pane::Log | Pane::Backfills => Slot::BottomRight,
            Pane::Fleet => Slot::Body,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Pane::Revisions => "Revisions",
            Pane::History => "History",
            Pane::Locks => "Lock conflicts",
            Pane::Log => "Log",
            Pane::Backfills => "Backfills",
            Pane::Fleet => "Fleet",
        }
    }
}

/// The four regions of the body, or all of it (a pane shown alone while focused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    TopLeft,
    TopRight,
    BottomLeft,
    BottomRight,
    Body,
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

    /// The header's word for `pgshift health`'s answer: OK, or DEGRADED with the summary of its
    /// most severe alert (the part before `: `; `pgshift health` and the overlay show the rest).
    pub fn of(h: &crate::health::Health) -> Health {
        match h.headline() {
            None if h.status == crate::health::HealthStatus::Ok => Health::Ok,
            None => Health::Degraded(format!("{:?}", h.status).to_lowercase()),
            Some(a) => {
                let line = first_line(&a.message);
                Health::Degraded(line.split(": ").next().unwrap_or(line).to_string())
            }
        }
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

pub use crate::db::blockers::Signal;

/// What a confirmed cancel or terminate achieved, checked after the signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signalled {
    /// The session let go of its locks (or ended).
    Released,
    /// The session was gone before the signal.
    Gone,
    /// The signal was sent, but the session still holds its locks (e.g. idle in transaction:
    /// a cancel stops a running query only). Its state then.
    StillHolding(String),
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
    /// The plan with its gates' verdict, both shown before the operator's yes.
    Migrate(Preview),
    Signal {
        blocker: Blocker,
        signal: Signal,
    },
    /// `pgshift accept REV`: the drift shown (with its diffs) is what gets accepted.
    Accept {
        revision: Revision,
        drift: Vec<crate::plan::Drift>,
    },
    /// `u` on the Fleet pane: every target's plan and refusals, as `pgshift fleet up` shows them.
    Fleet(Box<FleetPlan>),
}

#[derive(Debug, Clone)]
pub struct Confirm {
    pub pending: Pending,
    /// `Some(text)`: the operator must type this (the revision of a production downgrade, the
    /// pid of a session to terminate on production) and press Enter.
    pub must_type: Option<String>,
    pub typed: String,
    pub scroll: u16,
    /// Why this dialog and not the one asked for (e.g. `C` on an idle-in-transaction blocker).
    pub note: Option<String>,
}

impl Confirm {
    pub fn new(pending: Pending, must_type: Option<String>) -> Confirm {
        Confirm {
            pending,
            must_type,
            typed: String::new(),
            scroll: 0,
            note: None,
        }
    }

    /// Whether running it loses something: such actions never run on a bare Enter.
    pub fn is_destructive(&self) -> bool {
        match &self.pending {
            Pending::Migrate(p) => p.plan.is_destructive(),
            Pending::Signal { .. } => true,
            // It changes no schema or data; on production the revision is typed anyway.
            Pending::Accept { .. } => false,
            // Upgrades only, each the guarded run; production makes it typed (as the CLI).
            Pending::Fleet(_) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    Preview {
        preview: Preview,
        scroll: u16,
    },
    Confirm(Confirm),
    /// A row read whole (Enter or `v` on a Log, History or lock row).
    Detail(detail::Detail),
    /// Quit was asked for while an action runs.
    QuitWhileRunning,
    Backfill(BackfillDialog),
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
    /// When it was logged (the status line shows the newest line for a while only).
    pub at: std::time::Instant,
}

/// How long the newest log line stays on the status line.
pub const STATUS_MESSAGE_FOR: std::time::Duration = std::time::Duration::from_secs(10);

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
        result: Result<Preview, String>,
    },
    Progress(Event),
    /// A migration ended. The error is kept whole (not its text) so that a run that outlives the
    /// screen exits with its own code: 4 for lock retries exhausted, 3 for a lost connection.
    Migrated(Result<Report, Arc<Error>>),
    Signalled {
        pid: i32,
        signal: Signal,
        result: Result<Signalled, String>,
    },
    /// Every checklist with its newest run, for the overlay.
    Checklists(Result<Vec<crate::runbook::ChecklistView>, String>),
    /// A checklist operation ended; `result` is the checklist's fresh view.
    ChecklistDone {
        op: ChecklistOp,
        result: Result<crate::runbook::ChecklistView, String>,
    },
    /// `health::check` for the overlay's summary line.
    HealthChecked(Box<crate::health::Health>),
    /// SIGTERM/SIGHUP: leave now, restoring the terminal.
    Terminate,
    /// `r` read the migration files again: the revisions that are new, or why the catalog is
    /// invalid (the old one stays in use).
    CatalogReloaded(Result<Vec<Revision>, String>),
    /// How many checklist results kept while the database was unreachable were written.
    OfflineFlushed(Result<usize, String>),
    Backfill(BackfillMsg),
    /// `Effect::Accept` ended.
    Accepted(Result<crate::ops::accept::Acceptance, String>),
    Fleet(FleetMsg),
}

/// What the monitoring connection reports.
#[derive(Debug, Clone)]
pub enum Monitor {
    Snapshot {
        status: Box<Status>,
        conflicts: Vec<Conflict>,
        /// `pgshift health`'s answer on the same connection: the header and the checklist
        /// overlay show this, so they cannot disagree with the CLI or `/health`.
        health: Box<crate::health::Health>,
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
    /// Read the migration files again (before the poll that follows it).
    ReloadCatalog,
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
    /// Runbook work for the checklist overlay.
    Checklist(ChecklistOp),
    /// `health::check` (the runbook's health summary, shown in the checklist overlay).
    CheckHealth,
    /// The database is back: write the checklist results kept locally meanwhile.
    FlushOfflineChecklists,
    Backfill(BackfillEffect),
    /// Put this text on the operator's clipboard through the terminal (OSC 52).
    Copy(String),
    /// `:target NAME`: leave this target and open the screen on another configured one.
    SwitchTarget(String),
    /// Accept `revision`'s changed files, if its drift is still `shown`.
    Accept {
        revision: Revision,
        shown: Vec<crate::plan::Drift>,
    },
    Fleet(FleetEffect),
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
    /// What the lock pane lists: the monitor's live conflicts (the first `live_conflicts`), then
    /// the running migration's last wait when the monitor does not see it (between tries).
    pub conflicts: Vec<Conflict>,
    pub live_conflicts: usize,
    pub run_wait: Option<locks::RunWait>,
    pub lock_rows: Vec<LockRow>,
    /// The time of the message being handled, set by the event loop before each `update` (and by
    /// tests): the clock is an input like any other.
    pub now: std::time::Instant,
    /// When the monitor retries the lost connection (the header counts down to it).
    pub retry_at: Option<std::time::Instant>,
    pub log: VecDeque<LogLine>,
    pub focus: Pane,
    pub panes: Vec<PaneState>,
    /// Typing into the focused pane's filter.
    pub filtering: bool,
    /// Typing a `:` command (the text after the colon).
    pub command: Option<String>,
    pub target_rev: Option<Revision>,
    pub activity: Activity,
    pub popup: Option<Popup>,
    /// The checklist overlay (`c`).
    pub checklists: ChecklistState,
    /// Rows moved by PgUp/PgDn (from the terminal size).
    pub page: usize,
    /// The terminal's width and height (where a dialog's scrolling stops).
    pub size: (u16, u16),
    pub quit: bool,
    pub backfills: Backfills,
    /// The Fleet pane (kept across `:target` switches).
    pub fleet: Fleet,
    /// How times are shown: local with its zone, or UTC (`--utc`, `[tui] time`).
    pub clock: crate::clock::Clock,
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
        out_of_order: false,
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
            out_of_order: false,
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
            live_conflicts: 0,
            run_wait: None,
            lock_rows: Vec::new(),
            now: std::time::Instant::now(),
            retry_at: None,
            log: VecDeque::new(),
            focus: Pane::Revisions,
            panes: Pane::ALL.iter().map(|_| PaneState::default()).collect(),
            filtering: false,
            command: None,
            target_rev: None,
            activity: Activity::Idle,
            popup: None,
            checklists: ChecklistState::default(),
            page: 5,
            size: (80, 24),
            quit: false,
            backfills: Backfills::default(),
            fleet: Fleet::default(),
            clock: crate::clock::Clock::utc(),
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

    /// Seconds until the monitor's next reconnect attempt, counting down (0: trying now).
    pub fn retry_in_s(&self) -> u64 {
        self.retry_at.map_or(0, |at| {
            at.saturating_duration_since(self.now)
                .as_millis()
                .div_ceil(1000) as u64
        })
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
            at: self.now,
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
                        "{} {} {} {} {} {} {}",
                        e.action,
                        e.from_revision.map(|r| r.to_string()).unwrap_or_default(),
                        e.to_revision.map(|r| r.to_string()).unwrap_or_default(),
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
            Pane::Backfills => self.backfills.row_text(i),
            Pane::Fleet => self.fleet.row_text(i),
        }
    }

    fn row_count(&self, pane: Pane) -> usize {
        match pane {
            Pane::Revisions => self.revisions.len(),
            Pane::History => self.history.len(),
            Pane::Locks => self.lock_rows.len(),
            Pane::Log => self.log.len(),
            Pane::Backfills => self.backfills.rows.len(),
            Pane::Fleet => self.fleet.rows.len(),
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

/// The one state transition. Pure: returns what to run instead of running it. Each message
/// family goes to the part of `update` that owns it.
pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(ev) => on_key(app, &ev),
        Msg::Resize { width, height } => on_resize(app, width, height),
        Msg::Tick => fleet::on_tick(app),
        Msg::Terminate => {
            app.quit = true;
            vec![]
        }
        Msg::CatalogReloaded(r) => on_catalog_reloaded(app, r),
        Msg::OfflineFlushed(r) => on_offline_flushed(app, r),
        Msg::Monitor(m) => on_monitor(app, m),
        Msg::History(r) => on_history(app, r),
        Msg::Planned { purpose, result } => on_planned(app, purpose, result),
        Msg::Checklists(r) => checklist::on_loaded(app, r),
        Msg::HealthChecked(h) => {
            app.checklists.health = Some(*h);
            vec![]
        }
        Msg::ChecklistDone { op, result } => checklist::on_done(app, op, result),
        Msg::Progress(e) => {
            on_progress(app, e);
            vec![]
        }
        Msg::Migrated(r) => on_migrated(app, r),
        Msg::Signalled {
            pid,
            signal,
            result,
        } => locks::on_signalled(app, pid, signal, result),
        Msg::Backfill(m) => backfills::on_msg(app, m),
        Msg::Fleet(m) => fleet::on_msg(app, m),
        Msg::Accepted(r) => on_accepted(app, r),
    }
}

fn on_resize(app: &mut App, width: u16, height: u16) -> Vec<Effect> {
    app.size = (width, height);
    // Each list pane gets about half the body height, minus borders.
    app.page = (height as usize / 2).saturating_sub(4).max(1);
    vec![]
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

pub(crate) mod backfills;
pub mod checklist;
pub mod command;
pub mod detail;
pub mod fleet;
mod input;
pub mod locks;
mod results;

pub use backfills::{
    BackfillDialog, BackfillEffect, BackfillMsg, Backfills, DryPurpose, LocalRun, RowView, Stop,
};
pub use checklist::{CheckRun, ChecklistOp, ChecklistState, NoteKind, NotePrompt};
pub use fleet::{Fleet, FleetEffect, FleetJob, FleetMsg, FleetPlan, FleetRow, Live, RolloutView};

use crate::text::first_line;
use input::on_key;
pub use results::same_blockers;
use results::{
    on_accepted, on_catalog_reloaded, on_history, on_migrated, on_monitor, on_offline_flushed,
    on_planned, on_progress,
};

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
