//! Runs [`Effect`]s on tokio tasks with the same core functions as the CLI and sends the outcome
//! back as a [`Msg`]. The UI never waits for any of them.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc::UnboundedSender};

use super::app::{BackfillEffect, BackfillMsg, Effect, HISTORY_LIMIT, Msg, Signal, Stop};
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

/// The audit `detail.via` of actions started from the TUI.
const VIA: &str = "tui";

#[derive(Clone)]
pub struct Worker {
    target: Arc<Target>,
    catalog: Arc<Catalog>,
    tx: UnboundedSender<Msg>,
    /// Wakes the monitor for an immediate poll.
    poke: Arc<Notify>,
}

impl Worker {
    pub fn new(
        target: Arc<Target>,
        catalog: Arc<Catalog>,
        tx: UnboundedSender<Msg>,
        poke: Arc<Notify>,
    ) -> Self {
        Worker {
            target,
            catalog,
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
            Effect::Backfill(e) => Msg::Backfill(self.backfill(e).await),
        })
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
    async fn migrate(
        &self,
        direction: Direction,
        spec: TargetSpec,
        expect: (crate::catalog::Revision, crate::catalog::Revision),
    ) -> std::result::Result<migrate::Report, String> {
        let mut req = migrate::Request::new(direction, spec);
        req.expect = Some(expect);
        req.detail = serde_json::json!({ "via": VIA });
        let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let tx = self.tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(e) = erx.recv().await {
                tx.send(Msg::Progress(e)).ok();
            }
        });
        let reporter = Reporter::new(etx);
        let result = migrate::run(&self.target, &self.catalog, &req, &reporter).await;
        drop(reporter);
        forward.await.ok();
        result.map_err(|e| e.to_string())
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
        let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let tx = self.tx.clone();
        let forward = tokio::spawn(async move {
            while let Some(e) = erx.recv().await {
                tx.send(Msg::Progress(e)).ok();
            }
        });
        let reporter = Reporter::new(etx);
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
