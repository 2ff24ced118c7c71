//! The operator screen: model / update / view (see DESIGN.md).
//!
//! This module owns the terminal: raw mode and the alternate screen, restored on every exit path
//! (return, error, panic, SIGTERM/SIGHUP). The event loop waits for input, a message from the worker
//! or monitor, or the 1 s tick; handles everything already queued; then draws once. Nothing runs
//! while nothing happens.

pub mod app;
pub mod keys;
pub mod monitor;
pub mod offline;
pub mod sample;
pub mod ui;
pub mod worker;

use std::io::{Stdout, Write};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::Notify;

use crate::catalog::Catalog;
use crate::config::Target;
use crate::error::{Error, ExitCode, Result};
use crate::runbook::Runbook;
use app::{App, Msg, TargetInfo, update};

/// Redraw at least this often so ages and the unreachable countdown stay honest.
pub const TICK: Duration = Duration::from_secs(1);

/// What the screen needs besides its first target: how to show time, and the configuration to
/// find other targets in (`:target NAME`).
pub struct Options {
    pub clock: crate::clock::Clock,
    /// Colours on screen: `--color`, else unless NO_COLOR is set.
    pub color: bool,
    /// `[lint]`: baseline and thresholds the upgrade gate weighs findings with.
    pub lint: crate::lint::Settings,
    pub loaded: crate::config::Loaded,
    pub overrides: crate::config::Overrides,
}

impl Options {
    /// `--utc` (or `[tui] time`) and the flags the screen was started with.
    pub fn new(
        loaded: &crate::config::Loaded,
        overrides: &crate::config::Overrides,
        utc: bool,
        color: bool,
    ) -> Result<Options> {
        Ok(Options {
            clock: crate::clock::Clock::from_config(loaded, utc)?,
            color,
            lint: crate::lint::Settings::from_config(loaded)?,
            loaded: loaded.clone(),
            overrides: overrides.clone(),
        })
    }
}

pub use crate::marks::color_allowed;

/// Open the screen on `target` and run until the operator quits.
/// `runbook` is the checklists for the overlay (`c`), or why they could not be loaded: that is
/// shown in the overlay and never keeps the screen from opening.
pub async fn run(
    target: Target,
    catalog: Catalog,
    runbook: std::result::Result<Runbook, String>,
    options: Options,
) -> Result<ExitCode> {
    let mut terminal = setup().map_err(|e| Error::io("setting up the terminal", e))?;
    let mut abandoned = Vec::new();
    let result = event_loop(
        &mut terminal,
        target,
        catalog,
        runbook,
        &options,
        &mut abandoned,
    )
    .await;
    restore();
    for name in abandoned {
        // Ctrl-C or a hangup while a backfill started here ran: it ends with this process.
        say(&format!(
            "pgshift: backfill {name} was running from the screen and stops as pgshift exits: its open batch rolls back, committed batches stay; it shows as interrupted. Continue with `pgshift backfill resume {name}`."
        ));
    }
    match result? {
        Some(unfinished) => unfinished.wait().await,
        None => Ok(ExitCode::Ok),
    }
}

/// Work still running when the operator quit: a migration, or a fleet rollout (which launches no
/// new target by then). The screen is gone, but the work goes on to its audited end unless the
/// operator abandons it (Ctrl-C, SIGTERM). A hangup (SSH dropped) does not stop it.
struct Unfinished {
    rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
    what: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Migration,
    Fleet(app::FleetJob),
}

impl Kind {
    /// What is waited for, and what abandoning it means.
    fn waiting_for(&self) -> String {
        match self {
            Kind::Migration => "waiting for it to end so it is recorded.\n  Ctrl-C abandons it: the server rolls back the step in progress, finished steps stay applied.".into(),
            Kind::Fleet(job) => format!(
                "no new target starts; waiting for the running ones to {} so they are recorded.\n  Ctrl-C abandons them: their servers roll back what is in progress; what finished stays.",
                job.on_stop()
            ),
        }
    }

    fn check_with(&self) -> &'static str {
        match self {
            Kind::Migration => "pgshift status",
            Kind::Fleet(_) => "pgshift fleet status",
        }
    }
}

impl Unfinished {
    /// Until the work ends: its exit code (a fleet rollout's is the worst of its targets'), or the
    /// failed run's own error.
    async fn wait(mut self) -> Result<ExitCode> {
        say(&format!(
            "pgshift: the screen is closed, but the {} is still running; {}",
            self.what,
            self.kind.waiting_for()
        ));
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => t.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(terminated);
        let mut blocked = Vec::new();
        let mut fleet = crate::fleet::render::Progress::default();
        loop {
            tokio::select! {
                m = self.rx.recv() => match m {
                    Some(Msg::Progress(e)) => {
                        let repeat = match &e {
                            crate::event::Event::Blocked { blockers, .. } => {
                                let repeat = app::same_blockers(&blocked, blockers);
                                blocked = blockers.clone();
                                repeat
                            }
                            _ => false,
                        };
                        if !repeat && let Some(line) = crate::output::event_line(&e) {
                            say(&line);
                        }
                    }
                    Some(Msg::Migrated(Ok(r))) => {
                        say(&r.summary());
                        return Ok(ExitCode::Ok);
                    }
                    Some(Msg::Migrated(Err(e))) => return Err(run_error(e)),
                    Some(Msg::Fleet(app::FleetMsg::Event(e))) => {
                        if let Some(line) = fleet.line(&e) {
                            say(&line);
                        }
                    }
                    Some(Msg::Fleet(app::FleetMsg::Finished(Ok(summary)))) => {
                        let mut table = Vec::new();
                        crate::fleet::render::summary_table(&mut table, &summary).ok();
                        say(String::from_utf8_lossy(&table).trim_end());
                        return Ok(summary.exit_code);
                    }
                    Some(Msg::Fleet(app::FleetMsg::Finished(Err(e)))) => {
                        return Err(Error::Failed(format!("fleet rollout: {e}")));
                    }
                    Some(_) => {}
                    None => return Ok(ExitCode::Ok),
                },
                _ = &mut ctrl_c => return Err(self.abandoned("Ctrl-C")),
                _ = &mut terminated => return Err(self.abandoned("SIGTERM")),
            }
        }
    }

    fn abandoned(&self, why: &str) -> Error {
        Error::Failed(format!(
            "{why}: abandoned the running {}. Its connections close now: the server rolls back the step in progress; finished steps stay applied. Check with `{}`.",
            self.what,
            self.kind.check_with()
        ))
    }
}

/// The failed run's own error, so pgshift exits with its code (4 for lock retries exhausted, 3 for
/// a lost connection, ...) and prints its diagnosis. The worker sends it once, so this is its only
/// holder; were it ever shared, the text is kept with the generic failure code.
fn run_error(e: Arc<Error>) -> Error {
    Arc::try_unwrap(e).unwrap_or_else(|shared| Error::Failed(shared.to_string()))
}

/// A line on stderr that never panics (the terminal may be gone after a hangup).
fn say(line: &str) {
    writeln!(std::io::stderr(), "{line}").ok();
}

type Term = Terminal<CrosstermBackend<Stdout>>;

fn setup() -> std::io::Result<Term> {
    install_panic_hook();
    terminal::enable_raw_mode()?;
    let mut out = std::io::stdout();
    if let Err(e) = execute!(out, EnterAlternateScreen, cursor::Hide) {
        restore();
        return Err(e);
    }
    Terminal::new(CrosstermBackend::new(out)).inspect_err(|_| restore())
}

/// Give the terminal back: cooked mode, main screen, visible cursor. Safe to call twice.
pub fn restore() {
    terminal::disable_raw_mode().ok();
    execute!(std::io::stdout(), LeaveAlternateScreen, cursor::Show).ok();
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Restore first, or the panic message lands on the alternate screen in raw mode.
        restore();
        previous(info);
    }));
}

/// One target on screen: its model, worker, monitor and the channel they answer on. `:target`
/// replaces it whole, so nothing from the old target can arrive on the new screen.
struct Session {
    app: App,
    worker: worker::Worker,
    monitor: tokio::task::JoinHandle<()>,
    rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
}

impl Session {
    fn open(
        target: Target,
        catalog: Catalog,
        runbook: Arc<std::result::Result<Runbook, String>>,
        options: &Options,
        size: Option<ratatui::layout::Size>,
    ) -> Session {
        let mut app = App::new(TargetInfo::from(&target), &catalog, options.color);
        app.clock = options.clock.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
        let poke = Arc::new(Notify::new());
        let target = Arc::new(target);
        let catalog = worker::SharedCatalog::new(catalog);
        let monitor = tokio::spawn(monitor::run(
            target.clone(),
            catalog.clone(),
            tx.clone(),
            poke.clone(),
        ));
        let config = Arc::new((options.loaded.clone(), options.overrides.clone()));
        let worker = worker::Worker::new(
            target,
            catalog,
            runbook,
            options.lint.clone(),
            tx.clone(),
            poke,
            config,
        );
        spawn_signal_watch(tx);
        for e in App::init() {
            worker.run(e);
        }
        if let Some(size) = size {
            update(
                &mut app,
                Msg::Resize {
                    width: size.width,
                    height: size.height,
                },
            );
        }
        Session {
            app,
            worker,
            monitor,
            rx,
        }
    }

    /// Apply `msg` and run its effects; `:target NAME` comes back as the target to switch to.
    fn handle(&mut self, msg: Msg) -> Option<String> {
        let mut switch = None;
        for e in update_now(&mut self.app, msg) {
            match e {
                app::Effect::SwitchTarget(name) => switch = Some(name),
                e => self.worker.run(e),
            }
        }
        switch
    }
}

/// `:target NAME`: the configured target NAME and its catalog, or why not.
fn other_target(options: &Options, name: &str) -> Result<(Target, Catalog)> {
    let mut o = options.overrides.clone();
    o.target = Some(name.to_string());
    o.database_url = None;
    match options.loaded.resolve(&o)? {
        crate::config::Resolved::Target(t) => {
            let catalog = crate::ops::catalog(&t)?;
            Ok((*t, catalog))
        }
        _ => Err(Error::Usage(format!(
            "{name} is not a configured target here (the sandbox opens with `pgshift --target sandbox`)"
        ))),
    }
}

async fn event_loop(
    terminal: &mut Term,
    target: Target,
    catalog: Catalog,
    runbook: std::result::Result<Runbook, String>,
    options: &Options,
    abandoned: &mut Vec<String>,
) -> Result<Option<Unfinished>> {
    let runbook = Arc::new(runbook);
    let size = terminal.size().ok();
    let mut s = Session::open(target, catalog, runbook.clone(), options, size);
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        if let Err(e) = draw(terminal, &s.app) {
            break Err(Error::io("drawing the screen", e));
        }
        let msg = tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(ev)) => match from_terminal(ev) { Some(m) => m, None => continue },
                Some(Err(e)) => break Err(Error::io("reading the keyboard", e)),
                None => break Ok(()),
            },
            Some(m) = s.rx.recv() => m,
            _ = tick.tick() => Msg::Tick,
        };
        let mut switch = s.handle(msg);
        // Coalesce: apply everything already queued before the next (single) draw.
        while let Ok(m) = s.rx.try_recv() {
            switch = switch.or(s.handle(m));
        }
        if let Some(name) = switch {
            match other_target(options, &name) {
                Ok((target, catalog)) => {
                    let from = s.app.target.name.clone();
                    let fleet = std::mem::take(&mut s.app.fleet);
                    s.monitor.abort();
                    let size = terminal.size().ok();
                    s = Session::open(target, catalog, runbook.clone(), options, size);
                    // The fleet pane is about the fleet, not the target: it stays as it was.
                    s.app.fleet = fleet.carried();
                    s.app.refresh_view(app::Pane::Fleet);
                    s.app.log(
                        crate::event::Level::Info,
                        format!("switched from target {from} to {name}"),
                    );
                }
                Err(e) => s
                    .app
                    .log(crate::event::Level::Error, format!(":target {name}: {e}")),
            }
        }
        if s.app.quit {
            break Ok(());
        }
    };
    if s.app.fleet.running() {
        // Quitting (q after Esc, SIGTERM, a hangup) never leaves a rollout launching unseen.
        s.worker.run(app::Effect::Fleet(app::FleetEffect::Stop));
    }
    let Session {
        app, monitor, rx, ..
    } = s;
    monitor.abort();
    abandoned.extend(app.backfills.local.iter().map(|l| l.name.clone()));
    result?;
    Ok(match (&app.activity, &app.fleet.rollout) {
        (app::Activity::Migrating(p), _) => Some(Unfinished {
            rx,
            what: format!("{} {} -> {}", p.direction.verb(), p.from, p.to),
            kind: Kind::Migration,
        }),
        (_, Some(r)) if r.running => Some(Unfinished {
            rx,
            what: format!("fleet {} ({})", r.job.label(), r.id),
            kind: Kind::Fleet(r.job.clone()),
        }),
        _ => None,
    })
}

/// `update` with the clock read now: the time is an input to `update`, like the message.
fn update_now(app: &mut App, msg: Msg) -> Vec<app::Effect> {
    app.now = std::time::Instant::now();
    update(app, msg)
}

/// One frame inside a synchronized update, so a slow SSH link never shows half a frame.
fn draw(terminal: &mut Term, app: &App) -> std::io::Result<()> {
    execute!(terminal.backend_mut(), terminal::BeginSynchronizedUpdate)?;
    terminal.draw(|f| ui::draw(app, f))?;
    execute!(terminal.backend_mut(), terminal::EndSynchronizedUpdate)?;
    terminal.backend_mut().flush()
}

fn from_terminal(ev: TermEvent) -> Option<Msg> {
    match ev {
        // Releases only arrive with keyboard enhancements (not enabled); never type a key twice.
        TermEvent::Key(k) if k.kind == crossterm::event::KeyEventKind::Release => None,
        TermEvent::Key(k) => Some(Msg::Key(k)),
        TermEvent::Resize(width, height) => Some(Msg::Resize { width, height }),
        _ => None,
    }
}

/// SIGTERM or SIGHUP (the SSH session went away): quit through the normal path, restoring the
/// terminal. A running migration's connection closes with us and the server rolls the step back.
fn spawn_signal_watch(tx: tokio::sync::mpsc::UnboundedSender<Msg>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        tx.send(Msg::Terminate).ok();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pgshift exits with when a run that outlived the screen ends with `error`.
    fn exit_after_quit(error: Error) -> crate::error::ExitCode {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tx.send(Msg::Migrated(Err(Arc::new(error)))).unwrap();
        let unfinished = Unfinished {
            rx,
            what: "upgrade 0003 -> 0005".into(),
            kind: Kind::Migration,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(unfinished.wait()).unwrap_err().exit_code()
    }

    #[test]
    fn a_run_that_fails_after_the_screen_closed_exits_with_its_own_code() {
        use crate::error::ExitCode;
        let lost = Error::ConnectionLost {
            action: "upgrade 0004".into(),
            reason: "server closed the connection".into(),
        };
        assert_eq!(exit_after_quit(lost), ExitCode::Unreachable);
        let exhausted = Error::LockRetriesExhausted {
            action: "upgrade".into(),
            revision: crate::catalog::Revision(4),
            reason: "canceling statement due to lock timeout (55P03)".into(),
            cause: crate::error::LockWait::Timeout,
            state: crate::error::Leftover::Nothing,
            attempts: 10,
            blockers: "; blocked by pid 42".into(),
        };
        assert_eq!(exit_after_quit(exhausted), ExitCode::LockBusy);
        let failed = Error::Refused("lint found error(s)".into());
        assert_eq!(exit_after_quit(failed), ExitCode::Failed);
    }
}
