//! Results → state: monitor snapshots, history, plans, progress events, and the ends of runs,
//! accepts, catalog reloads and offline flushes. Part of `update`.

use super::*;

pub(super) fn on_monitor(app: &mut App, m: Monitor) -> Vec<Effect> {
    match m {
        Monitor::Snapshot {
            status,
            conflicts,
            health,
        } => {
            let reconnected = app.health.is_unreachable();
            let first = app.status.is_none();
            if reconnected {
                app.log(Level::Info, "database reachable again");
            }
            let moved = app
                .status
                .as_ref()
                .is_some_and(|s| s.current != status.current);
            app.health = Health::of(&health);
            app.checklists.health = Some(*health);
            set_status(app, *status);
            locks::on_conflicts(app, conflicts);
            // After an outage, or when someone (maybe another operator) moved the database, the
            // audit trail changed too.
            let mut effects = vec![];
            if reconnected || moved {
                effects.push(Effect::LoadHistory);
            }
            // Checklist results kept while it was unreachable go to the database now (also at
            // start, for results kept by an earlier session).
            if reconnected || first {
                effects.push(Effect::FlushOfflineChecklists);
            }
            effects
        }
        Monitor::PollFailed(reason) => {
            app.health = Health::Degraded(first_line(&reason).to_string());
            vec![]
        }
        Monitor::Unreachable { reason, retry_in_s } => {
            if !app.health.is_unreachable() {
                log_error(app, &format!("database unreachable: {reason}"));
            }
            app.health = Health::Unreachable {
                reason: first_line(&reason).to_string(),
                retry_in_s,
            };
            // The header counts down from here (the 1 s tick redraws it).
            app.retry_at = Some(app.now + std::time::Duration::from_secs(retry_in_s));
            vec![]
        }
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

pub(super) fn on_planned(
    app: &mut App,
    purpose: Purpose,
    result: Result<Preview, String>,
) -> Vec<Effect> {
    app.activity = Activity::Idle;
    let preview = match result {
        Ok(p) => p,
        Err(e) => {
            log_error(app, &e);
            return vec![];
        }
    };
    let plan = &preview.plan;
    match purpose {
        Purpose::Preview => app.popup = Some(Popup::Preview { preview, scroll: 0 }),
        Purpose::Confirm if plan.is_empty() => {
            app.log(
                Level::Info,
                format!("nothing to do: the database is at {}", plan.from),
            );
        }
        Purpose::Confirm => {
            let must_type = (plan.is_destructive() && app.target.environment.is_production())
                .then(|| plan.to.to_string());
            app.popup = Some(Popup::Confirm(Confirm::new(
                Pending::Migrate(preview),
                must_type,
            )));
        }
    }
    vec![]
}

/// The core reports a waiting step's blockers every poll; log them only when they change.
pub fn same_blockers(before: &[Blocker], now: &[Blocker]) -> bool {
    before.len() == now.len() && before.iter().zip(now).all(|(a, b)| a.pid == b.pid)
}

pub(super) fn on_progress(app: &mut App, e: Event) {
    if super::backfills::is_backfill(&e) {
        return super::backfills::on_event(app, e);
    }
    let repeat = match (&app.activity, &e) {
        (Activity::Migrating(p), Event::Blocked { blockers, .. }) => {
            same_blockers(&p.blockers, blockers)
        }
        // A replica wait repeats every poll: its first line goes to the log.
        (_, Event::ReplicaWait { waited_s, .. }) => {
            *waited_s >= crate::db::topology::LAG_POLL.as_secs_f64()
        }
        _ => false,
    };
    if !repeat && let Some(line) = crate::output::event_line(&e) {
        let level = match &e {
            Event::Log { level, .. } => *level,
            Event::StepRetry { .. }
            | Event::Blocked { .. }
            | Event::LockBusy { .. }
            | Event::ReplicaWait { .. } => Level::Warn,
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
            locks::forget_run_wait(app);
        }
        Event::Blocked { blockers, .. } => {
            p.blockers = blockers.clone();
            locks::on_run_blockers(app, blockers);
        }
        Event::StepRetry {
            attempt,
            attempts,
            reason,
            blockers,
            ..
        } => {
            p.attempt = Some((attempt, attempts, reason));
            p.blockers = blockers.clone();
            locks::on_run_blockers(app, blockers);
        }
        Event::StepFinished { .. } => {
            p.attempt = None;
            p.blockers.clear();
            locks::forget_run_wait(app);
        }
        Event::Statement { line, text, .. } => {
            p.statement = Some(format!(
                "line {line}: {}",
                crate::output::one_line(&text, 120)
            ))
        }
        Event::ReplicaWait { .. } => {
            p.statement = crate::output::event_line(&e).map(|l| l.trim_start().to_string());
        }
        // Backfill progress is the Backfills pane's, not a migration's.
        Event::Log { .. }
        | Event::BackfillStarted { .. }
        | Event::BackfillProgress { .. }
        | Event::BackfillRetry { .. }
        | Event::BackfillStopped { .. } => {}
    }
}

pub(super) fn on_history(app: &mut App, r: Result<History, String>) -> Vec<Effect> {
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

pub(super) fn on_migrated(app: &mut App, r: Result<Report, Arc<Error>>) -> Vec<Effect> {
    app.activity = Activity::Idle;
    locks::forget_run_wait(app);
    match r {
        Ok(rep) => app.log(Level::Info, rep.summary()),
        Err(e) => log_error(app, &e.to_string()),
    }
    vec![Effect::Poll, Effect::LoadHistory]
}

pub(super) fn on_accepted(
    app: &mut App,
    result: Result<crate::ops::accept::Acceptance, String>,
) -> Vec<Effect> {
    match result {
        Ok(a) => app.log(
            Level::Info,
            format!(
                "accepted {}_{}: checksum {} -> {} (audited; no migration SQL ran)",
                a.revision, a.name, a.old_checksum, a.new_checksum
            ),
        ),
        Err(e) => log_error(app, &format!("accept failed: {e}")),
    }
    vec![Effect::Poll, Effect::LoadHistory]
}

pub(super) fn on_catalog_reloaded(app: &mut App, r: Result<Vec<Revision>, String>) -> Vec<Effect> {
    match r {
        Ok(added) => {
            if !added.is_empty() {
                let names: Vec<String> = added.iter().map(ToString::to_string).collect();
                app.log(
                    Level::Info,
                    format!("new migration file(s): {}", names.join(", ")),
                );
            }
        }
        Err(e) => log_error(
            app,
            &format!(
                "the migration files did not reload (the last good catalog stays in use): {e}"
            ),
        ),
    }
    vec![]
}

pub(super) fn on_offline_flushed(app: &mut App, r: Result<usize, String>) -> Vec<Effect> {
    match r {
        Ok(0) => vec![],
        Ok(n) => {
            app.log(
                Level::Info,
                format!("{n} checklist result(s) kept while the database was unreachable are now recorded"),
            );
            // The overlay's view was the offline one: load the recorded state.
            if app.checklists.open {
                checklist::open(app)
            } else {
                vec![]
            }
        }
        Err(e) => {
            log_error(
                app,
                &format!(
                    "checklist results kept offline could not be recorded yet (kept, retried on the next reconnect): {e}"
                ),
            );
            vec![]
        }
    }
}
