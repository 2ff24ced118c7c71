//! Keys → state and effects: the part of `update` that interprets the key map against the
//! current state (panes, filter prompt, dialogs, confirmations).

use super::*;

pub(super) fn on_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    if app.popup.is_some() {
        return on_popup_key(app, ev);
    }
    if app.checklists.open {
        return checklist::on_key(app, ev);
    }
    if app.filtering {
        return on_filter_key(app, ev);
    }
    if app.command.is_some() {
        return super::command::on_key(app, ev);
    }
    match keys::action(Scope::Main, ev) {
        Some(a) => on_action(app, a),
        None => vec![],
    }
}

pub(super) fn on_action(app: &mut App, a: Action) -> Vec<Effect> {
    let focus = app.focus;
    match a {
        Action::Quit => return quit(app),
        Action::Help => app.popup = Some(Popup::Help { scroll: 0 }),
        Action::NextPane => {
            return focus_on(app, Pane::ALL[(focus.index() + 1) % Pane::ALL.len()]);
        }
        Action::PrevPane => {
            let prev = (focus.index() + Pane::ALL.len() - 1) % Pane::ALL.len();
            return focus_on(app, Pane::ALL[prev]);
        }
        Action::Focus(p) => return focus_on(app, p),
        Action::Up => app.move_cursor(focus, Motion::Up),
        Action::Down => app.move_cursor(focus, Motion::Down),
        Action::PageUp => app.move_cursor(focus, Motion::PageUp),
        Action::PageDown => app.move_cursor(focus, Motion::PageDown),
        Action::Home => app.move_cursor(focus, Motion::Home),
        Action::End => app.move_cursor(focus, Motion::End),
        Action::Filter => app.filtering = true,
        Action::Command => app.command = Some(String::new()),
        Action::Refresh => return refresh(app),
        Action::SetTarget if focus == Pane::Fleet => return super::fleet::open_target(app),
        Action::Upgrade if focus == Pane::Fleet => {
            return super::fleet::plan(app, super::fleet::FleetJob::Up("head".into()));
        }
        Action::Dismiss if focus == Pane::Fleet && app.fleet.running() => {
            return super::fleet::stop(app).unwrap_or_default();
        }
        Action::Detail => super::detail::open(app),
        Action::SetTarget if focus != Pane::Revisions => super::detail::open(app),
        Action::Accept => ask_accept(app),
        Action::SetTarget => set_target_revision(app),
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
        Action::DowngradeTo => return downgrade_to_cursor(app),
        Action::Preview => return preview(app),
        Action::Checklists => return checklist::open(app),
        Action::CancelBlocker => super::locks::ask_signal(app, Signal::Cancel),
        Action::TerminateBlocker => super::locks::ask_signal(app, Signal::Terminate),
        Action::BackfillDryRun
        | Action::BackfillRun
        | Action::BackfillPauseResume
        | Action::BackfillCancel => return super::backfills::on_action(app, a),
        Action::Dismiss => return dismiss(app),
        // Dialog and overlay actions; the main screen never maps keys to them.
        Action::Confirm
        | Action::RunCheck
        | Action::RunAllChecks
        | Action::ConfirmItem
        | Action::SkipItem
        | Action::NewRun
        | Action::NextChecklist
        | Action::PrevChecklist
        | Action::Close => {}
    }
    vec![]
}

/// `q`: a fleet rollout stops launching first, as Ctrl-C does in `pgshift fleet up`; anything
/// still running asks before leaving.
fn quit(app: &mut App) -> Vec<Effect> {
    if let Some(effects) = super::fleet::stop(app) {
        return effects;
    }
    // A running check is asked about too: quitting abandons it unrecorded.
    if app.is_busy() || app.checklists.running.is_some() || app.fleet.running() {
        app.popup = Some(Popup::QuitWhileRunning);
    } else if !super::backfills::ask_quit(app) {
        app.quit = true;
    }
    vec![]
}

fn focus_on(app: &mut App, pane: Pane) -> Vec<Effect> {
    app.focus = pane;
    super::fleet::on_focus(app)
}

/// `r`: files, monitor and history again, and the fleet's rows when that pane is in front.
fn refresh(app: &mut App) -> Vec<Effect> {
    let mut effects = vec![Effect::ReloadCatalog, Effect::Poll, Effect::LoadHistory];
    if app.focus == Pane::Fleet {
        effects.extend(super::fleet::refresh(app));
    }
    effects
}

/// `t` in Revisions: the revision under the cursor becomes `u`'s target.
fn set_target_revision(app: &mut App) {
    if app.focus != Pane::Revisions {
        return;
    }
    let Some(r) = app.selected_revision().map(|r| r.revision) else {
        return;
    };
    match app.current() {
        // `u` only goes up: a target at or below current would be ignored by it.
        Some(c) if r <= c => app.log(
            Level::Warn,
            format!(
                "{r} is applied (the database is at {c}): t sets an upgrade target above it; D downgrades to the cursor (asks first)"
            ),
        ),
        _ => {
            app.target_rev = Some(r);
            app.log(Level::Info, format!("target revision set to {r}"));
        }
    }
}

/// `D`: plan a downgrade to the revision under the cursor, which must be below current.
fn downgrade_to_cursor(app: &mut App) -> Vec<Effect> {
    let Some(rev) = app.selected_revision().map(|r| r.revision) else {
        return vec![];
    };
    if app.current().is_some_and(|c| rev >= c) {
        app.log(Level::Warn, format!("downgrade to {rev}: pick a revision below the current one in Revisions (base included)"));
        return vec![];
    }
    start_plan(
        app,
        Direction::Down,
        TargetSpec::Revision(rev),
        Purpose::Confirm,
    )
}

/// `p`: preview what D would do when the cursor is below current, else the upgrade.
fn preview(app: &mut App) -> Vec<Effect> {
    let focus = app.focus;
    let down = app
        .selected_revision()
        .map(|r| r.revision)
        .filter(|r| focus == Pane::Revisions && app.current().is_some_and(|c| *r < c));
    match down {
        Some(rev) => start_plan(
            app,
            Direction::Down,
            TargetSpec::Revision(rev),
            Purpose::Preview,
        ),
        None => start_plan(app, Direction::Up, app.upgrade_target(), Purpose::Preview),
    }
}

/// Esc: cancel the dry run in flight, else clear the focused pane's kept filter.
fn dismiss(app: &mut App) -> Vec<Effect> {
    if let Some(effects) = super::backfills::cancel_dry_run(app) {
        return effects;
    }
    let focus = app.focus;
    if !app.pane(focus).filter.is_empty() {
        clear_filter(app, focus);
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
    if app.fleet.running() {
        app.log(
            Level::Warn,
            "a fleet rollout is running (it may be upgrading this target): wait for it to end",
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

/// The drifted revision under the cursor: its changed files' drift, with diffs, in a dialog.
fn ask_accept(app: &mut App) {
    let Some(rev) = app.selected_revision().map(|r| r.revision) else {
        return;
    };
    let drift: Vec<crate::plan::Drift> = app
        .status
        .iter()
        .flat_map(|s| &s.drift)
        .filter(|d| d.revision() == rev)
        .filter(|d| {
            matches!(
                d,
                crate::plan::Drift::ChecksumChanged { .. } | crate::plan::Drift::DownChanged { .. }
            )
        })
        .cloned()
        .collect();
    if drift.is_empty() {
        app.log(
            Level::Warn,
            format!("accept {rev}: its files match what was applied; a drifted row (!) with a changed file can be accepted"),
        );
        return;
    }
    let must_type = app
        .target
        .environment
        .is_production()
        .then(|| rev.to_string());
    app.popup = Some(Popup::Confirm(Confirm::new(
        Pending::Accept {
            revision: rev,
            drift,
        },
        must_type,
    )));
}

fn on_filter_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    let pane = app.focus;
    match keys::action(Scope::Dialog, ev) {
        Some(Action::Quit) => return on_action(app, Action::Quit),
        Some(Action::Confirm) if ev.code == KeyCode::Enter => app.filtering = false,
        Some(Action::Dismiss) if ev.code == KeyCode::Esc => {
            app.filtering = false;
            clear_filter(app, pane);
            return vec![];
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

/// Clear `pane`'s filter, keeping the cursor on the row it was on (not the first row: `p`/`D`
/// act on the cursor, and jumping to `base` would aim them elsewhere).
fn clear_filter(app: &mut App, pane: Pane) {
    let p = app.pane(pane);
    let row = p.visible.get(p.selected).copied();
    app.pane_mut(pane).filter.clear();
    app.refresh_view(pane);
    if let Some(row) = row {
        let p = app.pane_mut(pane);
        if let Some(pos) = p.visible.iter().position(|i| *i == row) {
            p.selected = pos;
        }
    }
}

fn on_popup_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    // `j` stops where the dialog's last line is at the bottom.
    let limit = crate::tui::ui::scroll_limit(app, app.size.0, app.size.1).unwrap_or(u16::MAX);
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
                scroll.saturating_add(1).min(limit)
            };
            app.popup = Some(match popup {
                Popup::Preview { preview, .. } => Popup::Preview { preview, scroll },
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
        Popup::Confirm(c) => return on_confirm_key(app, c, action, ev, limit),
        Popup::Detail(d) => return super::detail::on_key(app, d, action, ev, limit),
        Popup::Backfill(d) => return super::backfills::on_dialog_key(app, d, action, ev),
    }
    vec![]
}

/// Keys in a confirmation. Typing mode (production downgrade or terminate) takes characters as
/// the text to type, so only Enter, Esc, arrows and Backspace act there. A destructive action
/// never runs on a bare Enter: `y` (or the typed text, then Enter) runs it.
fn on_confirm_key(
    app: &mut App,
    mut c: Confirm,
    action: Option<Action>,
    ev: &KeyEvent,
    limit: u16,
) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    let typing = c.must_type.is_some();
    let cancel = ev.code == KeyCode::Esc || (!typing && action == Some(Action::Dismiss));
    let enter = ev.code == KeyCode::Enter;
    let run = if typing {
        enter
    } else if enter {
        !c.is_destructive()
    } else {
        action == Some(Action::Confirm)
    };
    if action == Some(Action::Quit) {
        // Quitting while idle just closes the dialog with the app; while busy it asks.
        return on_action(app, Action::Quit);
    }
    if cancel {
        app.log(Level::Info, "not confirmed; nothing was run");
        return vec![];
    }
    if enter && !typing && !run {
        app.log(
            Level::Warn,
            "Enter alone does not run a destructive action: press y to run it, Esc to cancel",
        );
        app.popup = Some(Popup::Confirm(c));
        return vec![];
    }
    if run {
        if let Some(want) = &c.must_type
            && !typed_matches(want, &c.typed)
        {
            app.log(
                Level::Warn,
                format!(
                    "type {want} exactly to confirm (you typed {:?}); nothing was run",
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
        KeyCode::Down => c.scroll = c.scroll.saturating_add(1).min(limit),
        KeyCode::Backspace => {
            c.typed.pop();
        }
        KeyCode::Char(ch) if typing && c.typed.chars().count() < 64 => c.typed.push(ch),
        _ if action == Some(Action::Up) => c.scroll = c.scroll.saturating_sub(1),
        _ if action == Some(Action::Down) => c.scroll = c.scroll.saturating_add(1).min(limit),
        _ => {}
    }
    app.popup = Some(Popup::Confirm(c));
    vec![]
}

/// The typed confirmation: the exact text, or the same revision written another way (`4`).
pub(super) fn typed_matches(want: &str, typed: &str) -> bool {
    let typed = typed.trim();
    typed == want || Revision::parse(want).is_some_and(|w| Revision::parse(typed) == Some(w))
}

fn confirmed(app: &mut App, pending: Pending) -> Vec<Effect> {
    match pending {
        Pending::Migrate(preview) => {
            let plan = preview.plan;
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
        Pending::Fleet(plan) => super::fleet::confirmed(app, *plan),
        Pending::Accept { revision, drift } => {
            app.log(Level::Info, format!("accept {revision} confirmed"));
            vec![Effect::Accept {
                revision,
                shown: drift,
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
