//! The runbook made executable: checklists as data, automatic checks, recorded resumable runs,
//! the pre-deploy checklist gate (applied by `ops::gate`), and diagnosis of runbook failures.
//!
//! Core API for the CLI and the TUI's checklist overlay (plain async functions, no terminal):
//! [`Runbook::load`], [`overview`], [`view`], [`run_check`], [`run_checks`], [`confirm`], [`skip`],
//! [`start_run`]; [`pre_deploy_gate`] for `ops::gate`.

pub mod checks;
pub mod definition;
/// Moved to [`crate::remedy`] (health and startup use it, and the runbook uses health).
pub use crate::remedy as diagnose;
mod git;
mod rehearsal;

use crate::catalog::Revision;
use crate::config::{Loaded, Target};
use crate::db::checklist_runs as runs;
use crate::db::{Session, schema};
use crate::error::{Error, Result};
use crate::event::Reporter;
use crate::ops::gate::{ChecklistAnswer, Checklists, PreDeployChecklist};
pub use checks::CheckOutcome;
pub use definition::{CheckKind, Checklist, ChecklistConfig, ChecklistItem};
pub use runs::ItemState;

/// The checklists and the settings their checks use.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub checklists: Vec<Checklist>,
    pub config: ChecklistConfig,
}

impl Runbook {
    /// Embedded checklists overridden by `[checklists] dir` (default `config/checklists`).
    pub fn load(loaded: &Loaded) -> Result<Runbook> {
        let config = ChecklistConfig::from_loaded(loaded)?;
        let checklists = definition::load(&config.dir())?;
        Ok(Runbook { checklists, config })
    }

    /// The embedded checklists (overridden by `config/checklists`) with default settings: what the
    /// gates read when no config file was loaded (the library's `migrate_on_startup`).
    pub fn defaults() -> Result<Runbook> {
        let config = ChecklistConfig::default();
        let checklists = definition::load(&config.dir())?;
        Ok(Runbook { checklists, config })
    }

    pub fn checklist(&self, name: &str) -> Result<&Checklist> {
        self.checklists
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "no checklist named {name:?}; known: {}",
                    self.checklists
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
}

/// One item with its latest recorded state in the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemView {
    pub id: String,
    pub text: String,
    pub help: String,
    pub check: Option<CheckKind>,
    pub state: ItemState,
    pub operator: Option<String>,
    pub at: Option<String>,
    pub evidence: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    NotStarted,
    InProgress,
    Failed,
    Passed,
}

/// The checklist overlay and `pgshift checklist` show the same word in the same colour.
impl crate::marks::Marked for RunState {
    fn word(&self) -> &'static str {
        match self {
            RunState::NotStarted => "not started",
            RunState::InProgress => "in progress",
            RunState::Failed => "FAILED",
            RunState::Passed => "passed",
        }
    }

    fn role(&self) -> crate::marks::Role {
        use crate::marks::Role;
        match self {
            RunState::NotStarted => Role::Dim,
            RunState::InProgress => Role::Warn,
            RunState::Failed => Role::Error,
            RunState::Passed => Role::Ok,
        }
    }
}

/// A checklist and its current (newest) run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChecklistView {
    pub name: String,
    pub title: String,
    pub when: String,
    pub source: String,
    pub run_id: Option<i64>,
    pub state: RunState,
    pub items: Vec<ItemView>,
}

impl ChecklistView {
    /// The checklist with nothing recorded (the TUI shows it while the database is unreachable).
    pub fn blank(c: &Checklist) -> ChecklistView {
        ChecklistView::build(c, None)
    }

    fn build(c: &Checklist, run: Option<(i64, Vec<runs::ItemRecord>)>) -> ChecklistView {
        let (run_id, records) = match run {
            Some((id, r)) => (Some(id), r),
            None => (None, Vec::new()),
        };
        let items: Vec<ItemView> = c
            .items
            .iter()
            .map(|i| {
                let rec = records.iter().find(|r| r.item == i.id);
                ItemView {
                    id: i.id.clone(),
                    text: i.text.clone(),
                    help: i.help.clone(),
                    check: i.check,
                    state: rec.map_or(ItemState::Pending, |r| r.state),
                    operator: rec.map(|r| r.operator.clone()),
                    at: rec.map(|r| r.at.clone()),
                    evidence: rec.and_then(|r| r.evidence.clone()),
                }
            })
            .collect();
        let state = if run_id.is_none() {
            RunState::NotStarted
        } else if items.iter().all(|i| i.state.is_done()) {
            RunState::Passed
        } else if items.iter().any(|i| i.state == ItemState::Failed) {
            RunState::Failed
        } else {
            RunState::InProgress
        };
        ChecklistView {
            name: c.name.clone(),
            title: c.title.clone(),
            when: c.when.clone(),
            source: c.source.clone(),
            run_id,
            state,
            items,
        }
    }

    pub fn item(&self, id: &str) -> Option<&ItemView> {
        self.items.iter().find(|i| i.id == id)
    }
}

/// Every checklist with its newest run (read-only: creates nothing).
pub async fn overview(rb: &Runbook, target: &Target) -> Result<Vec<ChecklistView>> {
    let s = Session::connect(&target.conn, "checklist").await?;
    let mut out = Vec::with_capacity(rb.checklists.len());
    for c in &rb.checklists {
        out.push(ChecklistView::build(
            c,
            runs::latest_run(&s, &c.name).await?,
        ));
    }
    Ok(out)
}

/// One checklist with its newest run.
pub async fn view(rb: &Runbook, target: &Target, name: &str) -> Result<ChecklistView> {
    let c = rb.checklist(name)?;
    let s = Session::connect(&target.conn, "checklist").await?;
    Ok(ChecklistView::build(c, runs::latest_run(&s, name).await?))
}

/// Start a fresh run of `name`, leaving any unfinished one behind. Returns the run id.
pub async fn start_run(rb: &Runbook, target: &Target, name: &str) -> Result<i64> {
    rb.checklist(name)?;
    let s = Session::connect(&target.conn, "checklist").await?;
    ensure(&s, target).await?;
    let run = runs::new_run_id(&s).await?;
    // A marker row makes the new run the newest one before any item is recorded.
    runs::record(
        &s,
        run,
        name,
        runs::RUN_MARKER,
        ItemState::Pending,
        "new run started",
        catalog_head(target),
    )
    .await?;
    Ok(run)
}

/// The head of the target's migration files, recorded with each item so the pre-deploy gate knows
/// which migrations a checklist covered.
fn catalog_head(target: &Target) -> Option<Revision> {
    crate::catalog::Catalog::load(&target.migrations)
        .ok()
        .map(|c| c.head())
}

/// The run new records go to: the newest run unless it already passed (then a new one), so an
/// interrupted checklist resumes where it stopped.
async fn open_run(s: &Session, target: &Target, c: &Checklist) -> Result<i64> {
    ensure(s, target).await?;
    match runs::latest_run(s, &c.name).await? {
        Some((id, records))
            if ChecklistView::build(c, Some((id, records.clone()))).state != RunState::Passed =>
        {
            Ok(id)
        }
        _ => runs::new_run_id(s).await,
    }
}

async fn record(
    rb: &Runbook,
    target: &Target,
    name: &str,
    item: &str,
    state: ItemState,
    evidence: &str,
) -> Result<ItemView> {
    let c = rb.checklist(name)?;
    c.item(item)?;
    let s = Session::connect(&target.conn, "checklist").await?;
    let run = open_run(&s, target, c).await?;
    runs::record(&s, run, name, item, state, evidence, catalog_head(target)).await?;
    let view = ChecklistView::build(c, runs::latest_run(&s, name).await?);
    view.item(item)
        .cloned()
        .ok_or_else(|| Error::Failed(format!("item {item} vanished from checklist {name}")))
}

/// Run one item's automatic check and record the outcome.
pub async fn run_check(
    rb: &Runbook,
    target: &Target,
    name: &str,
    item: &str,
    reporter: &Reporter,
) -> Result<ItemView> {
    let c = rb.checklist(name)?;
    let i = c.item(item)?;
    let Some(kind) = i.check else {
        return Err(Error::Usage(format!(
            "item {item} of {name} has no automatic check: confirm it with --confirm {item} --note '...' or skip it with --skip {item} --reason '...'"
        )));
    };
    let cx = checks::CheckContext {
        target,
        config: &rb.config,
        checklist: name,
        reporter,
    };
    let outcome = checks::run(kind, &cx).await;
    record(rb, target, name, item, outcome.state, &outcome.evidence).await
}

/// Run every automatic check of the current run that is not done yet (resuming: passed,
/// confirmed and skipped items are left alone).
pub async fn run_checks(
    rb: &Runbook,
    target: &Target,
    name: &str,
    reporter: &Reporter,
) -> Result<ChecklistView> {
    let current = view(rb, target, name).await?;
    let fresh = current.state == RunState::Passed || current.run_id.is_none();
    for item in &current.items {
        if item.check.is_some() && (fresh || !item.state.is_done()) {
            run_check(rb, target, name, &item.id, reporter).await?;
        }
    }
    view(rb, target, name).await
}

/// The operator confirms an item, with a note (e.g. the backup id).
pub async fn confirm(
    rb: &Runbook,
    target: &Target,
    name: &str,
    item: &str,
    note: &str,
) -> Result<ItemView> {
    if note.trim().is_empty() {
        return Err(Error::Usage(format!(
            "confirming {item} needs a note saying what you checked (e.g. --note 'backup b-2041')"
        )));
    }
    record(rb, target, name, item, ItemState::Confirmed, note.trim()).await
}

/// The operator skips an item, with a reason.
pub async fn skip(
    rb: &Runbook,
    target: &Target,
    name: &str,
    item: &str,
    reason: &str,
) -> Result<ItemView> {
    if reason.trim().is_empty() {
        return Err(Error::Usage(format!(
            "skipping {item} needs a reason (e.g. --reason 'staging: no backup policy')"
        )));
    }
    record(rb, target, name, item, ItemState::Skipped, reason.trim()).await
}

impl PreDeployChecklist for Runbook {
    fn answer<'a>(
        &'a self,
        target: &'a Target,
        s: &'a Session,
    ) -> futures_util::future::BoxFuture<'a, Result<ChecklistAnswer>> {
        Box::pin(pre_deploy_gate(self, target, s))
    }
}

impl From<std::result::Result<Runbook, String>> for Checklists {
    fn from(r: std::result::Result<Runbook, String>) -> Self {
        match r {
            Ok(rb) => Checklists::Loaded(std::sync::Arc::new(rb)),
            Err(e) => Checklists::Unavailable(e),
        }
    }
}

/// Did a pre-deploy checklist pass on this database within the window? Production only: with
/// `require_checklist_hours` on the target, refuse without one; otherwise warn after `warn_hours`.
/// Read-only on `s` (the run's worker session under the lock, or a preview's).
pub async fn pre_deploy_gate(
    rb: &Runbook,
    target: &Target,
    s: &Session,
) -> Result<ChecklistAnswer> {
    if !target.environment.is_production() {
        return Ok(ChecklistAnswer::Clear);
    }
    let (hours, required) = match target.require_checklist_hours {
        Some(h) => (h, true),
        None => (
            rb.config
                .warn_hours
                .unwrap_or(definition::DEFAULT_WARN_HOURS),
            false,
        ),
    };
    let c = rb.checklist(definition::PRE_DEPLOY)?;
    let head = catalog_head(target);
    let runs = runs::recent_runs(s, definition::PRE_DEPLOY, hours).await?;
    let passed: Vec<Vec<runs::ItemRecord>> = runs
        .into_iter()
        .filter(|run| ChecklistView::build(c, Some(run.clone())).state == RunState::Passed)
        .map(|(_, records)| records)
        .collect();
    // A run counts only if every item was recorded against the migrations being deployed.
    let covers = |records: &[runs::ItemRecord]| {
        c.items.iter().all(|i| {
            records
                .iter()
                .find(|r| r.item == i.id)
                .is_some_and(|r| r.catalog_head == head)
        })
    };
    if passed.iter().any(|r| covers(r)) {
        return Ok(ChecklistAnswer::Clear);
    }
    let head_text = head.map_or("unknown".to_string(), |h| h.to_string());
    let message = if passed.is_empty() {
        format!(
            "no pre-deploy checklist passed on {} (production) in the last {hours}h: run `pgshift checklist pre-deploy --run-checks` and confirm the rest",
            target.name
        )
    } else {
        format!(
            "the pre-deploy checklist that passed on {} in the last {hours}h covered other migration files than the ones being deployed (head {head_text}): run `pgshift checklist pre-deploy --new --run-checks` again",
            target.name
        )
    };
    Ok(if required {
        ChecklistAnswer::Refuse(format!(
            "refusing to upgrade: {message} (required by require_checklist_hours = {hours}). Nothing was run."
        ))
    } else {
        ChecklistAnswer::Warn(message)
    })
}

/// Create pgshift's tables when the run table is missing, under the runner lock as `schema::ensure`
/// wants.
async fn ensure(s: &Session, target: &Target) -> Result<()> {
    schema::ensure_unlocked(s, target.lock_wait, &Reporter::silent()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use runs::ItemRecord;

    fn rec(item: &str, state: ItemState) -> ItemRecord {
        ItemRecord {
            item: item.into(),
            state,
            operator: "me@host".into(),
            at: "t".into(),
            evidence: None,
            catalog_head: None,
        }
    }

    fn pre_deploy() -> Checklist {
        definition::load(std::path::Path::new("/nonexistent"))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_run_passes_only_when_every_item_is_passed_confirmed_or_skipped() {
        let c = pre_deploy();
        assert_eq!(ChecklistView::build(&c, None).state, RunState::NotStarted);
        let mut records = vec![
            rec("backup", ItemState::Confirmed),
            rec("committed", ItemState::Passed),
            rec("local-testing", ItemState::Passed),
            rec("rollback-plan", ItemState::Passed),
        ];
        assert_eq!(
            ChecklistView::build(&c, Some((1, records.clone()))).state,
            RunState::InProgress
        );
        records.push(rec("team-notified", ItemState::Unverified));
        assert_eq!(
            ChecklistView::build(&c, Some((1, records.clone()))).state,
            RunState::InProgress
        );
        records.push(rec("rollback-plan", ItemState::Failed));
        records.remove(3);
        assert_eq!(
            ChecklistView::build(&c, Some((1, records.clone()))).state,
            RunState::Failed
        );
        let done: Vec<_> = c
            .items
            .iter()
            .map(|i| rec(&i.id, ItemState::Skipped))
            .collect();
        assert_eq!(
            ChecklistView::build(&c, Some((1, done))).state,
            RunState::Passed
        );
    }

    #[test]
    fn records_for_items_the_checklist_no_longer_has_are_ignored() {
        let c = pre_deploy();
        let mut done: Vec<_> = c
            .items
            .iter()
            .map(|i| rec(&i.id, ItemState::Passed))
            .collect();
        done.push(rec(runs::RUN_MARKER, ItemState::Pending));
        done.push(rec("retired-item", ItemState::Failed));
        assert_eq!(
            ChecklistView::build(&c, Some((1, done))).state,
            RunState::Passed
        );
    }
}
