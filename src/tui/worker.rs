//! Runs [`Effect`]s on tokio tasks with the same core functions as the CLI and sends the outcome
//! back as a [`Msg`]. The UI never waits for any of them.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc::UnboundedSender};

use super::app::{
    BackfillEffect, BackfillMsg, ChecklistOp, Effect, HISTORY_LIMIT, Msg, Signal, Stop,
};
use crate::backfill;
use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::audit::{self, NewEvent, Outcome};
use crate::db::blockers::{self, Blocker};
use crate::db::{Session, schema};
use crate::error::{Error, Result};
use crate::event::{Event, Reporter};
use crate::ops::{self, migrate};
use crate::plan::{Direction, TargetSpec};
use crate::runbook::{self, ChecklistView, Runbook};

/// The audit `detail.via` of actions started from the TUI.
const VIA: &str = "tui";

#[derive(Clone)]
pub struct Worker {
    target: Arc<Target>,
    catalog: Arc<Catalog>,
    /// The checklists, or why they could not be loaded (shown in the overlay).
    runbook: Arc<std::result::Result<Runbook, String>>,
    tx: UnboundedSender<Msg>,
    /// Wakes the monitor for an immediate poll.
    poke: Arc<Notify>,
}

impl Worker {
    pub fn new(
        target: Arc<Target>,
        catalog: Arc<Catalog>,
        runbook: Arc<std::result::Result<Runbook, String>>,
        tx: UnboundedSender<Msg>,
        poke: Arc<Notify>,
    ) -> Self {
        Worker {
            target,
            catalog,
            runbook,
            tx,
            poke,
        }
    }

    /// Start `effect` in the background.
    pub fn run(&self, effect: Effect) {
        if effect == Effect::Poll {
            self.poke.notify_one();
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

    async fn execute(&self, effect: Effect) -> Option<Msg> {
        Some(match effect {
            Effect::Poll => return None,
            Effect::LoadHistory => Msg::History(
                ops::history::history(&self.target, &self.catalog, HISTORY_LIMIT)
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
                Ok(rb) => runbook::overview(rb, &self.target)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.clone()),
            }),
            Effect::CheckHealth => {
                Msg::HealthChecked(Box::new(crate::health::check(&self.target).await))
            }
            Effect::Checklist(op) => Msg::ChecklistDone {
                result: self.checklist(&op).await,
                op,
            },
            Effect::Backfill(e) => Msg::Backfill(self.backfill(e).await),
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
                    let (reporter, forward) = self.progress();
                    let r = runbook::run_check(rb, t, checklist, item, &reporter).await;
                    drop(reporter);
                    forward.await.ok();
                    r?;
                    checklist
                }
                ChecklistOp::Confirm {
                    checklist,
                    item,
                    note,
                } => {
                    runbook::confirm(rb, t, checklist, item, note).await?;
                    checklist
                }
                ChecklistOp::Skip {
                    checklist,
                    item,
                    reason,
                } => {
                    runbook::skip(rb, t, checklist, item, reason).await?;
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

    /// A reporter whose events arrive as `Msg::Progress`; await the handle after dropping the
    /// reporter so every event is delivered before the result.
    fn progress(&self) -> (Reporter, tokio::task::JoinHandle<()>) {
        let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let tx = self.tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(e) = erx.recv().await {
                tx.send(Msg::Progress(e)).ok();
            }
        });
        (Reporter::new(etx), forward)
    }

    async fn plan(
        &self,
        direction: Direction,
        spec: TargetSpec,
    ) -> std::result::Result<crate::plan::Plan, String> {
        let req = migrate::Request::new(direction, spec);
        migrate::preview(&self.target, &self.catalog, &req)
            .await
            .map_err(|e| e.to_string())
    }

    /// `migrate::run` with progress events forwarded as `Msg::Progress`, all delivered before the
    /// final `Msg::Migrated`.
    /// `pgshift accept` as confirmed: refused when the drift is not what the dialog showed.
    async fn accept(
        &self,
        revision: crate::catalog::Revision,
        shown: &[crate::plan::Drift],
    ) -> crate::Result<crate::ops::accept::Acceptance> {
        let preview = crate::ops::accept::preview(&self.target, &self.catalog, revision).await?;
        if preview.drift != shown {
            return Err(Error::Refused(format!(
                "{revision} changed since its diff was shown; nothing was accepted. Review it again."
            )));
        }
        let (reporter, forward) = self.progress();
        let result =
            crate::ops::accept::accept(&self.target, &self.catalog, &preview, &reporter).await;
        drop(reporter);
        forward.await.ok();
        result
    }

    async fn migrate(
        &self,
        direction: Direction,
        spec: TargetSpec,
        expect: (crate::catalog::Revision, crate::catalog::Revision),
    ) -> std::result::Result<migrate::Report, Arc<Error>> {
        let mut req = migrate::Request::new(direction, spec);
        req.expect = Some(expect);
        req.detail = serde_json::json!({ "via": VIA });
        if direction == Direction::Up {
            // The same lint gate as `pgshift up`: errors nobody allowed are refused here too
            // (overriding them is a CLI decision: `up --allow-lint`, audited).
            let blocking = crate::lint::blocking_between(&self.catalog, expect.0, expect.1);
            if !blocking.is_empty() {
                // Refused, exit 1, as `pgshift up` refuses them.
                return Err(Arc::new(Error::Refused(format!(
                    "lint found error(s) in the migrations to run ({}); nothing was run. See `pgshift lint` for why and the safe rewrite; fix the migration, add `-- pgshift: allow RULE reason`, or run `pgshift up --allow-lint`.",
                    blocking.join(", ")
                ))));
            }
        }
        let (reporter, forward) = self.progress();
        let result = migrate::run(&self.target, &self.catalog, &req, &reporter).await;
        drop(reporter);
        forward.await.ok();
        result.map_err(Arc::new)
    }
}

impl Worker {
    /// A backfill effect with the CLI's own core functions; a run's events arrive as
    /// `Msg::Progress` before its `BackfillMsg::Ran`.
    async fn backfill(&self, effect: BackfillEffect) -> BackfillMsg {
        let registry = backfill::registry(&self.target, &self.catalog);
        let opts = backfill::Options::default();
        match effect {
            BackfillEffect::DryRun { name, purpose } => {
                let result = match &registry {
                    Ok(r) => backfill::dry_run(&self.target, r, &name, &opts, &Reporter::silent())
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
            BackfillEffect::Run { name, resume } => {
                let result = match &registry {
                    Ok(r) => self.run_backfill(r, &name, resume, &opts).await,
                    Err(e) => Err(e.to_string()),
                };
                BackfillMsg::Ran { name, result }
            }
            BackfillEffect::Stop { name, stop } => {
                let result = match stop {
                    Stop::Pause => backfill::pause(&self.target, &name).await,
                    Stop::Cancel => backfill::cancel(&self.target, &name).await,
                }
                .map_err(|e| e.to_string());
                BackfillMsg::Stopped { name, stop, result }
            }
        }
    }

    async fn run_backfill(
        &self,
        registry: &backfill::Registry,
        name: &str,
        resume: bool,
        opts: &backfill::Options,
    ) -> std::result::Result<backfill::RunReport, String> {
        let (reporter, forward) = self.progress();
        // Pause and cancel go through the run table (`backfill::pause`), as from any terminal.
        let control = backfill::Control::default();
        let result = if resume {
            backfill::resume(&self.target, registry, name, opts, &control, &reporter).await
        } else {
            backfill::run(&self.target, registry, name, opts, &control, &reporter).await
        };
        drop(reporter);
        forward.await.ok();
        result.map_err(|e| e.to_string())
    }
}

/// Cancel or terminate a blocker and write the audit row either way.
pub async fn signal_audited(target: &Target, blocker: &Blocker, signal: Signal) -> Result<bool> {
    let s = Session::connect(&target.conn, signal.verb()).await?;
    let terminate = signal == Signal::Terminate;
    let result = blockers::signal(&s, blocker.pid, terminate).await;
    let mut event = NewEvent::new(
        signal.verb(),
        match &result {
            Ok(true) => Outcome::Ok,
            Ok(false) | Err(_) => Outcome::Failed,
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
        Ok(false) => event.error = Some(format!("pid {} was gone before the signal", blocker.pid)),
        Err(e) => event.error = Some(e.to_string()),
        Ok(true) => {}
    }
    let audit = async {
        schema::ensure(&s).await?;
        audit::record(&s, &event).await
    }
    .await;
    match (result, audit) {
        (Ok(sent), Ok(())) => Ok(sent),
        (Ok(_), Err(e)) => Err(Error::Failed(format!(
            "the signal was sent to pid {}, but the audit row could not be written: {e}",
            blocker.pid
        ))),
        (Err(e), _) => Err(e),
    }
}
