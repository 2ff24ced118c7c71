//! The lock pane's model: the monitor's live conflicts, plus the running migration's last
//! blockers kept through its backoff between tries (the worker is not waiting then, so the monitor
//! sees no conflict, but the blockers still hold their locks and the next try will wait again).
//! `C`/`K` act on either. Part of `update`.

use std::time::Instant;

use super::*;

/// The running migration's last known wait: its waiter row and blockers, and when they were seen.
#[derive(Debug, Clone)]
pub struct RunWait {
    pub conflict: Conflict,
    pub seen_at: Instant,
}

impl App {
    /// Whether `conflicts[i]` is the kept wait of our run (not a live one): drawn with its age.
    pub fn kept_conflict(&self, i: usize) -> Option<&RunWait> {
        (i == self.live_conflicts).then_some(self.run_wait.as_ref())?
    }
}

/// Our run's worker: `pgshift up …` / `pgshift down …`, not a monitor (or another screen's
/// monitor, which never waits on a lock anyway).
fn is_our_run(app: &App, waiter: &Blocker) -> bool {
    let Activity::Migrating(p) = &app.activity else {
        return false;
    };
    let action = format!("pgshift {} ", action_of(p.direction));
    waiter.application.starts_with(&action) && !waiter.application.contains(" monitor ")
}

/// The audit action (and `application_name` word) of a run in `direction`, as `migrate::Request`.
fn action_of(direction: Direction) -> &'static str {
    match direction {
        Direction::Up => "up",
        Direction::Down => "down",
    }
}

/// A monitor snapshot: the live conflicts; the run's own one refreshes the kept wait.
pub(super) fn on_conflicts(app: &mut App, conflicts: Vec<Conflict>) {
    if let Some(ours) = conflicts.iter().find(|c| is_our_run(app, &c.waiter)) {
        app.run_wait = Some(RunWait {
            conflict: ours.clone(),
            seen_at: app.now,
        });
    }
    rebuild(app, conflicts);
}

/// A `Blocked` or `StepRetry` event: the core's own view of who blocks the run.
pub(super) fn on_run_blockers(app: &mut App, blockers: Vec<Blocker>) {
    if blockers.is_empty() {
        return;
    }
    let Activity::Migrating(p) = &app.activity else {
        return;
    };
    let waiter = app
        .run_wait
        .as_ref()
        .map(|w| w.conflict.waiter.clone())
        .unwrap_or_else(|| Blocker {
            pid: 0,
            user: String::new(),
            application: format!("pgshift {} (this screen)", action_of(p.direction)),
            state: "between tries".into(),
            xact_age_s: None,
            query: p.statement.clone().unwrap_or_default(),
        });
    let wants = app
        .run_wait
        .as_ref()
        .map(|w| w.conflict.wants.clone())
        .unwrap_or_default();
    app.run_wait = Some(RunWait {
        conflict: Conflict {
            waiter,
            waiting_s: 0.0,
            wants,
            blockers,
        },
        seen_at: app.now,
    });
    let live = app.conflicts[..app.live_conflicts].to_vec();
    rebuild(app, live);
}

/// The run moved on (a step finished, the run ended): its old blockers are history.
pub(super) fn forget_run_wait(app: &mut App) {
    if app.run_wait.take().is_some() {
        let live = app.conflicts[..app.live_conflicts].to_vec();
        rebuild(app, live);
    }
}

/// `conflicts` = the live ones, then the kept wait of our run when the monitor no longer sees it;
/// one row per waiter and per blocker. The cursor stays on its blocker.
fn rebuild(app: &mut App, mut conflicts: Vec<Conflict>) {
    let keep = app.selected_blocker().map(|b| b.pid);
    app.live_conflicts = conflicts.len();
    let run_is_live = conflicts.iter().any(|c| is_our_run(app, &c.waiter));
    if !run_is_live && let Some(w) = &app.run_wait {
        conflicts.push(w.conflict.clone());
    }
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

/// The statement a waiting session is stuck on. `pg_stat_activity.query` holds the whole string
/// the client sent: for a migration file that is every statement, comments first. Show the first
/// statement naming the relation it waits for, else the first one that is not a comment.
pub fn blocked_statement(query: &str, wants: &str) -> String {
    let statements = crate::sql::statements(query);
    let relation = wants
        .strip_prefix("relation ")
        .and_then(|r| r.split(' ').next())
        .filter(|r| !r.is_empty());
    let naming = relation.and_then(|r| {
        let bare = r.rsplit('.').next().unwrap_or(r).trim_matches('"');
        statements
            .iter()
            .find(|s| s.text.to_lowercase().contains(&bare.to_lowercase()))
    });
    match naming.or(statements.first()) {
        Some(s) => s.text.trim().to_string(),
        None => query.trim().to_string(),
    }
}

/// `C`/`K` on the selected blocker. `C` on a session idle in transaction cannot help (there is no
/// query to cancel; its locks stay until its transaction ends): say so and offer to terminate.
pub(super) fn ask_signal(app: &mut App, signal: Signal) {
    let Some(blocker) = app.selected_blocker().cloned() else {
        app.log(
            Level::Warn,
            format!(
                "{}: select a blocker in the Lock conflicts pane (3) first",
                signal.verb()
            ),
        );
        return;
    };
    let (signal, note) = if signal == Signal::Cancel && blocker.idle_in_transaction() {
        let why = format!(
            "pid {} is {}: it runs no query, so cancel cannot release its locks (they stay until its transaction ends). Terminate the session instead?",
            blocker.pid, blocker.state
        );
        app.log(
            Level::Warn,
            format!(
                "cancel cannot help: pid {} is idle in transaction; K terminates it (asks first)",
                blocker.pid
            ),
        );
        (Signal::Terminate, Some(why))
    } else {
        (signal, None)
    };
    let must_type = (signal == Signal::Terminate && app.target.environment.is_production())
        .then(|| blocker.pid.to_string());
    app.popup = Some(Popup::Confirm(Confirm {
        pending: Pending::Signal { blocker, signal },
        must_type,
        typed: String::new(),
        scroll: 0,
        note,
    }));
}

/// A cancel or terminate ended: say whether the locks are gone, and what to do if not.
pub(super) fn on_signalled(
    app: &mut App,
    pid: i32,
    signal: Signal,
    result: Result<Signalled, String>,
) -> Vec<Effect> {
    app.activity = Activity::Idle;
    match result {
        Ok(Signalled::Released) => app.log(
            Level::Info,
            format!(
                "{} of pid {pid}: its locks are released (audited)",
                signal.verb()
            ),
        ),
        Ok(Signalled::StillHolding(state)) => log_error(
            app,
            &format!(
                "{} of pid {pid} did not release its locks: it is {state} (audited as failed)\n{}",
                signal.verb(),
                match signal {
                    Signal::Cancel =>
                        "A cancel stops a running query only; K terminates the session, which ends its transaction.",
                    Signal::Terminate =>
                        "It may still be shutting down: r refreshes; check the lock pane.",
                }
            ),
        ),
        Ok(Signalled::Gone) => app.log(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blocked_statement_is_the_one_naming_the_waited_relation_not_the_comment() {
        let file = "-- 0004: runs of the ingestion pipeline get an error column\n-- reviewed by bob\nCREATE TABLE x (id int);\nALTER TABLE ingestion_runs ADD COLUMN error_text text;\n";
        assert_eq!(
            blocked_statement(file, "relation ingestion_runs (AccessExclusiveLock)"),
            "ALTER TABLE ingestion_runs ADD COLUMN error_text text"
        );
        assert_eq!(
            blocked_statement(file, "transactionid (ShareLock)"),
            "CREATE TABLE x (id int)"
        );
        assert_eq!(
            blocked_statement("SELECT 1", "relation public.t (AccessShareLock)"),
            "SELECT 1"
        );
    }
}
