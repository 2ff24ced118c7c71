//! Runs [`Effect`]s on tokio tasks with the same core functions as the CLI and sends the outcome
//! back as a [`Msg`]. The UI never waits for any of them.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc::UnboundedSender};

use super::app::{
    BackfillEffect, BackfillMsg, ChecklistOp, Effect, FleetEffect, FleetJob, FleetMsg, FleetPlan,
    HISTORY_LIMIT, Msg, Signal, Signalled, Stop,
};
use crate::backfill;
use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::audit::{self, NewEvent, Outcome};
use crate::db::blockers::{self, Blocker};
use crate::db::{Session, schema};
use crate::error::{Error, Result};
use crate::event::{Reporter, Sink};
use crate::ops::gate::{Caller, Checklists, Policy};
use crate::ops::{self, migrate};
use crate::plan::{Direction, TargetSpec};
use crate::runbook::{self, ChecklistView, Runbook};
use crate::tui::offline;

/// The audit `detail.via` of actions started from the TUI.
const VIA: &str = "tui";

/// The catalog the worker and the monitor use: swapped whole when `r` reloads the files.
#[derive(Clone)]
pub struct SharedCatalog(Arc<std::sync::RwLock<Arc<Catalog>>>);

impl SharedCatalog {
    pub fn new(catalog: Catalog) -> SharedCatalog {
        SharedCatalog(Arc::new(std::sync::RwLock::new(Arc::new(catalog))))
    }

    /// The current catalog (a poisoned lock still holds a whole catalog: swaps are one write).
    pub fn get(&self) -> Arc<Catalog> {
        match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, catalog: Catalog) {
        match self.0.write() {
            Ok(mut c) => *c = Arc::new(catalog),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(catalog),
        }
    }
}

#[derive(Clone)]
pub struct Worker {
    target: Arc<Target>,
    catalog: SharedCatalog,
    /// The checklists, or why they could not be loaded (shown in the overlay).
    runbook: Arc<std::result::Result<Runbook, String>>,
    /// The same checklists, as the gates read them.
    checklists: Checklists,
    /// `[lint]`, as the gates weigh the findings.
    lint: crate::lint::Settings,
    tx: UnboundedSender<Msg>,
    /// Wakes the monitor for an immediate poll.
    poke: Arc<Notify>,
    /// Cancels the backfill dry run in flight (Esc).
    dry_run: Arc<std::sync::Mutex<Option<crate::interrupt::Trigger>>>,
    /// The configuration the fleet's members come from, and the flags the screen started with.
    config: Arc<(crate::config::Loaded, crate::config::Overrides)>,
    /// The fleet rollout shown for confirmation, and the stop of the running one.
    fleet: Arc<std::sync::Mutex<FleetSlot>>,
}

/// A planned rollout waits here (the confirmation shows its text) until confirmed: what runs is
/// what was shown.
#[derive(Default)]
struct FleetSlot {
    planned: Option<(
        crate::fleet::rollout::Rollout,
        Vec<crate::fleet::rollout::Planned>,
    )>,
    stop: Option<crate::interrupt::Trigger>,
}

impl Worker {
    pub fn new(
        target: Arc<Target>,
        catalog: SharedCatalog,
        runbook: Arc<std::result::Result<Runbook, String>>,
        lint: crate::lint::Settings,
        tx: UnboundedSender<Msg>,
        poke: Arc<Notify>,
        config: Arc<(crate::config::Loaded, crate::config::Overrides)>,
    ) -> Self {
        let checklists = runbook.as_ref().clone().into();
        Worker {
            target,
            catalog,
            runbook,
            checklists,
            lint,
            tx,
            poke,
            dry_run: Arc::default(),
            config,
            fleet: Arc::default(),
        }
    }

    /// Start `effect` in the background.
    pub fn run(&self, effect: Effect) {
        if effect == Effect::Poll {
            self.poke.notify_one();
            return;
        }
        if let Effect::Copy(text) = &effect {
            copy_to_clipboard(text);
            return;
        }
        if effect == Effect::ReloadCatalog {
            // Reading the files is quick, and done before the poll that follows it uses them.
            let msg = self.reload_catalog();
            self.tx.send(msg).ok();
            return;
        }
        if effect == Effect::Backfill(BackfillEffect::CancelDryRun) {
            if let Ok(mut t) = self.dry_run.lock()
                && let Some(t) = t.take()
            {
                t.fire();
            }
            return;
        }
        if effect == Effect::Fleet(FleetEffect::Stop) {
            if let Ok(slot) = self.fleet.lock()
                && let Some(t) = &slot.stop
            {
                t.fire();
            }
            return;
        }
        let w = self.clone();
        tokio::spawn(async move {
            let msg = w.execute(effect).await;
            if let Some(msg) = msg {
                // The UI may have quit already; then nobody needs the result.
                w.tx.send(msg).ok();
            }
        });
    }

    /// `r`: read the migration files again (new ones appear; a broken catalog keeps the old).
    fn reload_catalog(&self) -> Msg {
        let before = self.catalog.get();
        Msg::CatalogReloaded(match ops::catalog(&self.target) {
            Ok(c) => {
                let added = c
                    .migrations
                    .iter()
                    .filter(|m| before.get(m.revision).is_none())
                    .map(|m| m.revision)
                    .collect();
                self.catalog.set(c);
                Ok(added)
            }
            Err(e) => Err(e.to_string()),
        })
    }

    async fn execute(&self, effect: Effect) -> Option<Msg> {
        let catalog = self.catalog.get();
        Some(match effect {
            // Handled in `run` or by the event loop (`:target` replaces the whole session).
            Effect::Poll | Effect::ReloadCatalog | Effect::Copy(_) | Effect::SwitchTarget(_) => {
                return None;
            }
            Effect::LoadHistory => Msg::History(
                ops::history::history(&self.target, &catalog, HISTORY_LIMIT)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            Effect::Plan {
                direction,
                spec,
                purpose,
            } => Msg::Planned {
                purpose,
                result: self.plan(direction, spec).await,
            },
            Effect::Migrate {
                direction,
                spec,
                expect,
            } => Msg::Migrated(self.migrate(direction, spec, expect).await),
            Effect::Signal { blocker, signal } => Msg::Signalled {
                pid: blocker.pid,
                signal,
                result: signal_audited(&self.target, &blocker, signal)
                    .await
                    .map_err(|e| e.to_string()),
            },
            Effect::Checklist(ChecklistOp::Load) => Msg::Checklists(match self.runbook.as_ref() {
                // Unreachable: the definitions, with what was kept locally.
                Ok(rb) => match runbook::overview(rb, &self.target).await {
                    Err(e) if offline::is_offline(&e) => Ok(offline::views(
                        &crate::config::state_dir(),
                        rb,
                        &self.target,
                    )),
                    r => r.map_err(|e| e.to_string()),
                },
                Err(e) => Err(e.clone()),
            }),
            Effect::FlushOfflineChecklists => Msg::OfflineFlushed(match self.runbook.as_ref() {
                Ok(rb) => offline::flush(&crate::config::state_dir(), rb, &self.target)
                    .await
                    .map_err(|e| e.to_string()),
                Err(_) => Ok(0),
            }),
            Effect::CheckHealth => {
                Msg::HealthChecked(Box::new(crate::health::check(&self.target).await))
            }
            Effect::Checklist(op) => Msg::ChecklistDone {
                result: self.checklist(&op).await,
                op,
            },
            Effect::Backfill(e) => Msg::Backfill(self.backfill(e).await?),
            Effect::Fleet(e) => Msg::Fleet(self.fleet(e).await?),
            Effect::Accept { revision, shown } => Msg::Accepted(
                self.accept(revision, &shown)
                    .await
                    .map_err(|e| e.to_string()),
            ),
        })
    }

    /// One checklist operation with the runbook core, then the checklist's fresh view. Progress
    /// of long checks (the local-testing rehearsal) goes to the log pane as it happens.
    async fn checklist(&self, op: &ChecklistOp) -> std::result::Result<ChecklistView, String> {
        let rb = self.runbook.as_ref().as_ref().map_err(Clone::clone)?;
        let t = &self.target;
        let result = async {
            let name = match op {
                ChecklistOp::Load => return Err(Error::Failed("not a single checklist".into())),
                ChecklistOp::RunCheck { checklist, item } => {
                    let progress = self.progress();
                    let r = runbook::run_check(rb, t, checklist, item, progress.reporter()).await;
                    progress.finish().await;
                    r?;
                    checklist
                }
                ChecklistOp::Confirm {
                    checklist,
                    item,
                    note,
                } => {
                    let r = runbook::confirm(rb, t, checklist, item, note).await;
                    if let Some(v) =
                        self.kept_if_offline(rb, &r, checklist, item, "confirmed", note)?
                    {
                        return Ok(v);
                    }
                    r?;
                    checklist
                }
                ChecklistOp::Skip {
                    checklist,
                    item,
                    reason,
                } => {
                    let r = runbook::skip(rb, t, checklist, item, reason).await;
                    if let Some(v) =
                        self.kept_if_offline(rb, &r, checklist, item, "skipped", reason)?
                    {
                        return Ok(v);
                    }
                    r?;
                    checklist
                }
                ChecklistOp::NewRun { checklist } => {
                    runbook::start_run(rb, t, checklist).await?;
                    checklist
                }
            };
            runbook::view(rb, t, name).await
        }
        .await;
        result.map_err(|e| e.to_string())
    }

    /// A confirm or skip that failed because the database is unreachable is kept locally (written
    /// when it is back); the checklist's offline view is the result then.
    fn kept_if_offline(
        &self,
        rb: &Runbook,
        result: &Result<runbook::ItemView>,
        checklist: &str,
        item: &str,
        state: &str,
        note: &str,
    ) -> Result<Option<ChecklistView>> {
        match result {
            Err(e) if offline::is_offline(e) => {
                offline::keep(
                    &crate::config::state_dir(),
                    &self.target,
                    &offline::Kept {
                        checklist: checklist.into(),
                        item: item.into(),
                        state: state.into(),
                        note: note.trim().into(),
                        operator: crate::db::operator(),
                        at: crate::db::rfc3339(time::OffsetDateTime::now_utc()),
                    },
                )?;
                Ok(
                    offline::views(&crate::config::state_dir(), rb, &self.target)
                        .into_iter()
                        .find(|v| v.name == checklist),
                )
            }
            _ => Ok(None),
        }
    }

    /// The TUI's gate policy, with the checklists the screen loaded.
    fn policy(&self) -> Policy {
        Policy::new(Caller::Tui, self.checklists.clone()).with_lint_settings(self.lint.clone())
    }

    /// A sink whose events arrive as `Msg::Progress`; finish it so that every event is delivered
    /// before the result.
    fn progress(&self) -> Sink {
        let tx = self.tx.clone();
        Sink::spawn(move |e| {
            tx.send(Msg::Progress(e)).ok();
        })
    }

    async fn plan(
        &self,
        direction: Direction,
        spec: TargetSpec,
    ) -> std::result::Result<migrate::Preview, String> {
        let req = migrate::Request::new(direction, spec, self.policy());
        migrate::preview_gated(&self.target, &self.catalog.get(), &req)
            .await
            .map_err(|e| e.to_string())
    }

    /// `pgshift accept` as confirmed: refused when the drift is not what the dialog showed.
    async fn accept(
        &self,
        revision: crate::catalog::Revision,
        shown: &[crate::plan::Drift],
    ) -> crate::Result<crate::ops::accept::Acceptance> {
        let catalog = self.catalog.get();
        let preview = crate::ops::accept::preview(&self.target, &catalog, revision).await?;
        if preview.drift != shown {
            return Err(Error::Refused(format!(
                "{revision} changed since its diff was shown; nothing was accepted. Review it again."
            )));
        }
        let progress = self.progress();
        let result =
            crate::ops::accept::accept(&self.target, &catalog, &preview, progress.reporter()).await;
        progress.finish().await;
        result
    }

    /// `migrate::run` with progress events forwarded as `Msg::Progress`, all delivered before the
    /// final `Msg::Migrated`.
    async fn migrate(
        &self,
        direction: Direction,
        spec: TargetSpec,
        expect: (crate::catalog::Revision, crate::catalog::Revision),
    ) -> std::result::Result<migrate::Report, Arc<Error>> {
        let catalog = self.catalog.get();
        // The TUI's gates (lint without override, the production checklist) are checked by the
        // run under the lock, which refuses and audits like any front end.
        let mut req = migrate::Request::new(direction, spec, self.policy());
        req.expect = Some(expect);
        req.detail = serde_json::json!({ "via": VIA });
        let progress = self.progress();
        let result = migrate::run(&self.target, &catalog, &req, progress.reporter()).await;
        progress.finish().await;
        result.map_err(Arc::new)
    }
}

/// The fleet pane's work: the same `fleet::status` and `fleet::rollout` calls as `pgshift fleet`,
/// with its default options.
impl Worker {
    async fn fleet(&self, effect: FleetEffect) -> Option<FleetMsg> {
        Some(match effect {
            FleetEffect::Gather { group } => {
                let result = self.fleet_rows(group.as_deref()).await;
                FleetMsg::Gathered { group, result }
            }
            FleetEffect::Plan { group, job } => FleetMsg::Planned(
                self.fleet_plan(group.as_deref(), job)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            FleetEffect::Run { id } => FleetMsg::Finished(self.fleet_run(&id).await),
            // Handled in `run` (it fires the rollout's stop).
            FleetEffect::Stop => return None,
        })
    }

    async fn fleet_members(&self, group: Option<&str>) -> Result<Vec<Target>> {
        let (loaded, overrides) = self.config.as_ref();
        // The screen's own target is not a filter on the fleet.
        let mut o = overrides.clone();
        o.target = None;
        o.database_url = None;
        let members = crate::fleet::group::members(loaded, group, &o).await?;
        if members.is_empty() {
            return Err(Error::Usage(format!(
                "no targets configured in {}; the fleet pane lists the config's [targets.NAME]",
                loaded.path_display()
            )));
        }
        Ok(members)
    }

    async fn fleet_rows(
        &self,
        group: Option<&str>,
    ) -> std::result::Result<Vec<crate::fleet::status::Row>, String> {
        let members = self.fleet_members(group).await.map_err(|e| e.to_string())?;
        let catalogs = crate::fleet::Catalogs::load(&members);
        let options = crate::fleet::status::Options {
            parallel: crate::fleet::rollout::DEFAULT_PARALLEL.into(),
            timeout: fleet_timeout(),
            check: false,
        };
        Ok(crate::fleet::status::gather(&members, &catalogs, options).await)
    }

    /// `pgshift fleet up [GROUP] [REV]`'s or `fleet backfill NAME [GROUP]`'s planning, kept for
    /// the confirmation's yes.
    async fn fleet_plan(&self, group: Option<&str>, job: FleetJob) -> Result<FleetPlan> {
        use crate::fleet::rollout;
        let members = self.fleet_members(group).await?;
        let catalogs = crate::fleet::Catalogs::load(&members);
        let options = rollout::Options::defaults(rollout::policy(&self.config.0, false));
        let (planned, to, rollout_job) = match &job {
            FleetJob::Up(rev) => {
                let spec =
                    TargetSpec::parse(rev, crate::plan::Direction::Up).map_err(Error::Usage)?;
                let planned =
                    rollout::plan_all(&members, &catalogs, spec, &options, fleet_timeout()).await;
                (planned, rev.clone(), rollout::Job::Migrate(spec))
            }
            FleetJob::Backfill(name) => {
                let planned = rollout::plan_backfill(&members, &catalogs, name);
                rollout::backfill_known(&planned, name)?;
                let job = rollout::Job::Backfill {
                    name: name.clone(),
                    options: crate::backfill::Options::default(),
                };
                (planned, format!("backfill {name}"), job)
            }
        };
        rollout::canaries(&planned, &options.canary)?;
        let r = rollout::Rollout::new(group.map(str::to_string), &to, rollout_job);
        let plan = FleetPlan {
            id: r.id.clone(),
            group: group.map(str::to_string),
            job,
            text: crate::fleet::render::plan_text(&planned, crate::marks::Paint::PLAIN),
            confirmation: rollout::Confirmation::of(group, &planned),
            targets: planned.len(),
        };
        if let Ok(mut slot) = self.fleet.lock() {
            slot.planned = Some((r, planned));
        }
        Ok(plan)
    }

    /// Run the confirmed plan with `fleet::rollout::execute`; its events arrive as
    /// `FleetMsg::Event`, all before `FleetMsg::Finished`. Recorded for `pgshift fleet history`.
    async fn fleet_run(
        &self,
        id: &str,
    ) -> std::result::Result<crate::fleet::rollout::Summary, String> {
        use crate::fleet::{record, rollout};
        let (trigger, stop) = crate::interrupt::Interrupt::new();
        let (r, planned) = {
            let mut slot = self.fleet.lock().map_err(|e| e.to_string())?;
            match slot.planned.take() {
                Some((r, planned)) if r.id == id => {
                    slot.stop = Some(trigger);
                    (r, planned)
                }
                _ => {
                    return Err(format!(
                        "the plan of rollout {id} is gone (planned again since?); nothing was run: u plans it again"
                    ));
                }
            }
        };
        record::started(&r, planned.len()).map_err(|e| e.to_string())?;
        let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
        let tx = self.tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(e) = erx.recv().await {
                tx.send(Msg::Fleet(FleetMsg::Event(e))).ok();
            }
        });
        let options = rollout::Options::defaults(rollout::policy(&self.config.0, false));
        let result =
            rollout::execute(r, planned, options, rollout::FleetReporter::new(etx), stop).await;
        forward.await.ok();
        if let Ok(mut slot) = self.fleet.lock() {
            slot.stop = None;
        }
        let summary = result.map_err(|e| e.to_string())?;
        if let Err(e) = record::finished(&summary) {
            tracing::warn!("{e}");
        }
        Ok(summary)
    }
}

/// `pgshift fleet`'s default per-target timeout.
fn fleet_timeout() -> std::time::Duration {
    crate::config::parse_duration(crate::fleet::rollout::DEFAULT_TIMEOUT)
        .unwrap_or(std::time::Duration::from_secs(10))
}

impl Worker {
    /// A backfill effect with the CLI's own core functions; a run's events arrive as
    /// `Msg::Progress` before its `BackfillMsg::Ran`.
    async fn backfill(&self, effect: BackfillEffect) -> Option<BackfillMsg> {
        let registry = backfill::registry(&self.target, &self.catalog.get());
        let opts = backfill::Options::default();
        Some(match effect {
            BackfillEffect::DryRun { name, purpose } => {
                let (trigger, interrupt) = crate::interrupt::Interrupt::new();
                if let Ok(mut t) = self.dry_run.lock() {
                    *t = Some(trigger);
                }
                let result = match &registry {
                    Ok(r) => backfill::dry_run_until(
                        &self.target,
                        r,
                        &name,
                        &opts,
                        &Reporter::silent(),
                        &interrupt,
                    )
                    .await
                    .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                BackfillMsg::DryRan {
                    name,
                    purpose,
                    result,
                }
            }
            BackfillEffect::Run { name, mode } => {
                let result = match &registry {
                    Ok(r) => self.run_backfill(r, &name, mode, &opts).await,
                    Err(e) => Err(e.to_string()),
                };
                BackfillMsg::Ran { name, result }
            }
            // Handled in `run` (it fires the dry run's interrupt); nothing to report.
            BackfillEffect::CancelDryRun => return None,
            BackfillEffect::Stop { name, stop } => {
                let result = match stop {
                    Stop::Pause => backfill::pause(&self.target, &name).await,
                    Stop::Cancel => backfill::cancel(&self.target, &name).await,
                }
                .map_err(|e| e.to_string());
                BackfillMsg::Stopped { name, stop, result }
            }
        })
    }

    async fn run_backfill(
        &self,
        registry: &backfill::Registry,
        name: &str,
        mode: backfill::Mode,
        opts: &backfill::Options,
    ) -> std::result::Result<backfill::RunReport, String> {
        let progress = self.progress();
        let reporter = progress.reporter();
        // Pause and cancel go through the run table (`backfill::pause`), as from any terminal.
        let control = backfill::Control::default();
        let result =
            backfill::start(&self.target, registry, name, opts, mode, &control, reporter).await;
        progress.finish().await;
        result.map_err(|e| e.to_string())
    }
}

/// OSC 52: the terminal (and tmux, and an SSH client's terminal) puts `text` on the clipboard.
/// Written between frames by the event loop's thread, so it never lands inside a frame.
fn copy_to_clipboard(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout();
    write!(out, "\x1b]52;c;{}\x07", base64(text.as_bytes())).ok();
    out.flush().ok();
}

/// Standard base64 with padding (OSC 52's encoding).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// How long a signalled session gets to let go of its locks before we say it did not.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Cancel or terminate a blocker, check that its locks went, and write the audit row either way:
/// a cancel that leaves the locks held (idle in transaction) is a failure, never "sent".
pub async fn signal_audited(
    target: &Target,
    blocker: &Blocker,
    signal: Signal,
) -> Result<Signalled> {
    let s = Session::connect(&target.conn, signal.verb()).await?;
    let result = match blockers::signal(&s, blocker.pid, signal).await {
        Ok(true) => released(&s, blocker.pid).await,
        Ok(false) => Ok(Signalled::Gone),
        Err(e) => Err(e),
    };
    let mut event = NewEvent::new(
        signal.verb(),
        match &result {
            Ok(Signalled::Released) => Outcome::Ok,
            Ok(_) | Err(_) => Outcome::Failed,
        },
    );
    event.detail = serde_json::json!({
        "via": VIA,
        "target": target.name,
        "environment": target.environment.as_str(),
        "pid": blocker.pid,
        "user": blocker.user,
        "application": blocker.application,
        "state": blocker.state,
        "query": blocker.query,
    });
    match &result {
        Ok(Signalled::Gone) => {
            event.error = Some(format!("pid {} was gone before the signal", blocker.pid))
        }
        Ok(Signalled::StillHolding(state)) => {
            event.error = Some(format!(
                "{} sent, but pid {} still holds its locks ({state})",
                signal.verb(),
                blocker.pid
            ))
        }
        Err(e) => event.error = Some(e.to_string()),
        Ok(Signalled::Released) => {}
    }
    // Never waits on the runner lock when the tables exist: a blocked run holds it right now.
    let audit = async {
        schema::ensure_unlocked(&s, target.lock_wait, &Reporter::silent()).await?;
        audit::record(&s, &event).await
    }
    .await;
    match (result, audit) {
        (Ok(outcome), Ok(())) => Ok(outcome),
        (Ok(_), Err(e)) => Err(Error::Failed(format!(
            "the signal was sent to pid {}, but the audit row could not be written: {e}",
            blocker.pid
        ))),
        (Err(e), _) => Err(e),
    }
}

/// Poll until `pid` holds no lock any more, up to [`RELEASE_WAIT`].
async fn released(s: &Session, pid: i32) -> Result<Signalled> {
    let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
    loop {
        match blockers::still_holding(s, pid).await? {
            None => return Ok(Signalled::Released),
            Some(state) if tokio::time::Instant::now() >= deadline => {
                return Ok(Signalled::StillHolding(state));
            }
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}
