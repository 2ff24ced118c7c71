//! Pure `update` tests: keys in, state and effects out. No terminal, no database.

use crate::tui::sample::{code, ctrl_c, key};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::config::Environment;
use crate::plan::{Plan, Step};
use crate::tui::sample;

fn app_at(env: Environment, rev: u32) -> App {
    sample::connected(env, rev, vec![], vec![], true)
}

fn plan(direction: Direction, from: u32, to: u32) -> Plan {
    let steps = if direction == Direction::Down {
        ((to + 1)..=from).rev().collect::<Vec<_>>()
    } else {
        ((from + 1)..=to).collect()
    };
    Plan {
        direction,
        from: Revision(from),
        to: Revision(to),
        steps: steps
            .into_iter()
            .map(|v| Step {
                revision: Revision(v),
                name: format!("m{v}"),
                direction,
                sql: "SELECT 1;".into(),
                no_transaction: false,
                checksum: 0,
                down: None,
                out_of_order: false,
            })
            .collect(),
    }
}

fn planned(app: &mut App, p: Plan) -> Vec<Effect> {
    update(
        app,
        Msg::Planned {
            purpose: Purpose::Confirm,
            result: Ok(sample::preview(p)),
        },
    )
}

#[test]
fn u_plans_an_upgrade_to_head_and_confirming_runs_exactly_the_confirmed_plan() {
    let mut app = app_at(Environment::Development, 2);
    assert_eq!(
        update(&mut app, key('u')),
        vec![Effect::Plan {
            direction: Direction::Up,
            spec: TargetSpec::Head,
            purpose: Purpose::Confirm
        }]
    );
    assert_eq!(app.activity, Activity::Planning(Purpose::Confirm));
    assert!(planned(&mut app, plan(Direction::Up, 2, 4)).is_empty());
    assert!(matches!(&app.popup, Some(Popup::Confirm(c)) if c.must_type.is_none()));
    let effects = update(&mut app, key('y'));
    assert_eq!(
        effects,
        vec![Effect::Migrate {
            direction: Direction::Up,
            spec: TargetSpec::Revision(Revision(4)),
            expect: (Revision(2), Revision(4))
        }]
    );
    assert!(app.popup.is_none());
    assert!(matches!(app.activity, Activity::Migrating(_)));
}

#[test]
fn t_sets_the_target_and_u_goes_there_instead_of_head() {
    let mut app = app_at(Environment::Development, 1);
    // Cursor starts on the current revision (0001); one down is 0002.
    assert_eq!(
        app.selected_revision().map(|r| r.revision),
        Some(Revision(1))
    );
    update(&mut app, key('j'));
    update(&mut app, key('t'));
    assert_eq!(app.target_rev, Some(Revision(2)));
    assert_eq!(
        update(&mut app, key('u')),
        vec![Effect::Plan {
            direction: Direction::Up,
            spec: TargetSpec::Revision(Revision(2)),
            purpose: Purpose::Confirm
        }]
    );
}

#[test]
fn escape_cancels_a_confirmation_and_nothing_runs() {
    let mut app = app_at(Environment::Development, 2);
    update(&mut app, key('u'));
    planned(&mut app, plan(Direction::Up, 2, 4));
    assert!(update(&mut app, code(KeyCode::Esc)).is_empty());
    assert!(app.popup.is_none());
    assert_eq!(app.activity, Activity::Idle);
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text.contains("nothing was run"))
    );
}

#[test]
fn production_downgrade_needs_the_revision_typed_and_y_is_not_enough() {
    let mut app = app_at(Environment::Production, 4);
    assert_eq!(
        update(&mut app, key('d')),
        vec![Effect::Plan {
            direction: Direction::Down,
            spec: TargetSpec::Steps(Direction::Down, 1),
            purpose: Purpose::Confirm
        }]
    );
    planned(&mut app, plan(Direction::Down, 4, 3));
    assert!(
        matches!(&app.popup, Some(Popup::Confirm(c)) if c.must_type.as_deref() == Some("0003"))
    );
    // `y` is typed into the box, not taken as yes.
    assert!(update(&mut app, key('y')).is_empty());
    assert!(
        update(&mut app, code(KeyCode::Enter)).is_empty(),
        "wrong text must not run"
    );
    assert!(
        app.popup.is_some(),
        "the dialog stays open after a wrong answer"
    );
    for c in "0003".chars() {
        update(&mut app, key(c));
    }
    assert_eq!(
        update(&mut app, code(KeyCode::Enter)),
        vec![Effect::Migrate {
            direction: Direction::Down,
            spec: TargetSpec::Revision(Revision(3)),
            expect: (Revision(4), Revision(3))
        }]
    );
}

#[test]
fn non_production_downgrade_is_confirmed_with_y() {
    let mut app = app_at(Environment::Staging, 4);
    update(&mut app, key('d'));
    planned(&mut app, plan(Direction::Down, 4, 3));
    assert!(matches!(&app.popup, Some(Popup::Confirm(c)) if c.must_type.is_none()));
    assert!(matches!(
        update(&mut app, key('y')).as_slice(),
        [Effect::Migrate { .. }]
    ));
}

#[test]
fn capital_d_downgrades_to_the_cursor_including_base_and_refuses_upward() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, code(KeyCode::Home));
    assert_eq!(
        app.selected_revision().map(|r| r.revision),
        Some(Revision::BASE)
    );
    assert_eq!(
        update(&mut app, key('D')),
        vec![Effect::Plan {
            direction: Direction::Down,
            spec: TargetSpec::Revision(Revision::BASE),
            purpose: Purpose::Confirm
        }]
    );
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, code(KeyCode::End));
    assert!(
        update(&mut app, key('D')).is_empty(),
        "0004 is above current: nothing to downgrade to"
    );
    assert!(app.log.back().is_some_and(|l| l.level == Level::Warn));
}

#[test]
fn p_previews_without_a_confirmation_and_nothing_runs() {
    let mut app = app_at(Environment::Production, 2);
    assert!(matches!(
        update(&mut app, key('p')).as_slice(),
        [Effect::Plan {
            purpose: Purpose::Preview,
            ..
        }]
    ));
    update(
        &mut app,
        Msg::Planned {
            purpose: Purpose::Preview,
            result: Ok(sample::preview(plan(Direction::Up, 2, 4))),
        },
    );
    assert!(matches!(app.popup, Some(Popup::Preview { .. })));
    assert!(
        update(&mut app, key('y')).is_empty(),
        "y in a preview runs nothing"
    );
    assert!(app.popup.is_none());
}

#[test]
fn an_empty_plan_says_nothing_to_do_instead_of_asking() {
    let mut app = app_at(Environment::Development, 4);
    update(&mut app, key('u'));
    planned(&mut app, plan(Direction::Up, 4, 4));
    assert!(app.popup.is_none());
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text.contains("nothing to do"))
    );
}

#[test]
fn a_second_action_is_refused_while_one_runs() {
    let mut app = app_at(Environment::Development, 2);
    update(&mut app, key('u'));
    assert!(update(&mut app, key('u')).is_empty());
    assert!(update(&mut app, key('d')).is_empty());
}

#[test]
fn quit_asks_while_an_action_runs_and_leaves_at_once_when_idle() {
    let mut app = app_at(Environment::Development, 2);
    update(&mut app, key('u'));
    planned(&mut app, plan(Direction::Up, 2, 4));
    update(&mut app, key('y'));
    update(&mut app, key('q'));
    assert!(matches!(app.popup, Some(Popup::QuitWhileRunning)));
    assert!(!app.quit);
    update(&mut app, key('n'));
    assert!(!app.quit && app.popup.is_none());
    update(&mut app, ctrl_c());
    update(&mut app, ctrl_c());
    assert!(app.quit, "Ctrl-C twice leaves");
    let mut idle = app_at(Environment::Development, 2);
    update(&mut idle, key('q'));
    assert!(idle.quit);
}

#[test]
fn progress_events_drive_the_status_and_the_log() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, key('u'));
    planned(&mut app, plan(Direction::Up, 3, 4));
    update(&mut app, key('y'));
    update(
        &mut app,
        Msg::Progress(Event::StepStarted {
            index: 1,
            total: 1,
            revision: Revision(4),
            name: "m4".into(),
            direction: Direction::Up,
        }),
    );
    let blocker = sample::conflict(1, 4121).blockers[0].clone();
    update(
        &mut app,
        Msg::Progress(Event::StepRetry {
            revision: Revision(4),
            attempt: 2,
            attempts: 10,
            reason: "lock_timeout (55P03)".into(),
            delay: std::time::Duration::from_millis(300),
            blockers: vec![blocker],
        }),
    );
    let Activity::Migrating(p) = &app.activity else {
        panic!("not migrating: {:?}", app.activity)
    };
    assert_eq!(p.step, Some((1, 1, "0004_m4".into())));
    assert_eq!(p.attempt.as_ref().map(|a| (a.0, a.1)), Some((2, 10)));
    assert_eq!(p.blockers[0].pid, 4121);
    assert!(
        app.log
            .iter()
            .any(|l| l.text.contains("blocked by pid 4121") && l.level == Level::Warn)
    );
    let effects = update(
        &mut app,
        Msg::Migrated(Err(std::sync::Arc::new(crate::error::Error::Failed(
            "upgrade 0004 failed: lock_timeout\n  Nothing was applied.".into(),
        )))),
    );
    assert_eq!(effects, vec![Effect::Poll, Effect::LoadHistory]);
    assert_eq!(app.activity, Activity::Idle);
    assert!(
        app.log
            .iter()
            .any(|l| l.level == Level::Error && l.text.starts_with("upgrade 0004 failed"))
    );
}

#[test]
fn cancel_and_terminate_ask_with_the_blocker_and_send_the_signal_once_confirmed() {
    let mut app = sample::connected(
        Environment::Development,
        3,
        vec![],
        vec![sample::conflict(900, 4121)],
        true,
    );
    update(&mut app, key('3'));
    assert_eq!(app.focus, Pane::Locks);
    // Row 0 is the waiter: its first blocker is the one acted on.
    assert_eq!(app.selected_blocker().map(|b| b.pid), Some(4121));
    assert!(update(&mut app, key('K')).is_empty());
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("no confirmation")
    };
    assert!(
        matches!(&c.pending, Pending::Signal { blocker, signal: Signal::Terminate } if blocker.pid == 4121)
    );
    // Destructive: a bare Enter does not run it.
    assert!(update(&mut app, code(KeyCode::Enter)).is_empty());
    assert!(app.popup.is_some());
    let effects = update(&mut app, key('y'));
    assert!(
        matches!(effects.as_slice(), [Effect::Signal { blocker, signal: Signal::Terminate }] if blocker.pid == 4121)
    );
    assert_eq!(app.activity, Activity::Signalling(4121));
    let after = update(
        &mut app,
        Msg::Signalled {
            pid: 4121,
            signal: Signal::Terminate,
            result: Ok(Signalled::Released),
        },
    );
    assert_eq!(after, vec![Effect::Poll, Effect::LoadHistory]);
}

#[test]
fn cancel_without_a_conflict_explains_instead_of_asking() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, key('C'));
    assert!(app.popup.is_none());
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text.contains("select a blocker"))
    );
}

#[test]
fn tab_shift_tab_and_numbers_switch_panes() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, code(KeyCode::Tab));
    assert_eq!(app.focus, Pane::History);
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
    );
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
    );
    assert_eq!(app.focus, Pane::Fleet);
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
    );
    assert_eq!(app.focus, Pane::Backfills);
    update(&mut app, key('2'));
    assert_eq!(app.focus, Pane::History);
}

#[test]
fn motion_keys_stay_in_range_and_page_by_the_screen() {
    let events = (1..=100)
        .rev()
        .map(|i| sample::event(i, "up", 1, 2, "ok"))
        .collect();
    let mut app = sample::connected(Environment::Development, 3, events, vec![], true);
    update(
        &mut app,
        Msg::Resize {
            width: 80,
            height: 24,
        },
    );
    update(&mut app, key('2'));
    update(&mut app, code(KeyCode::Up));
    assert_eq!(app.pane(Pane::History).selected, 0);
    update(&mut app, code(KeyCode::PageDown));
    assert_eq!(app.pane(Pane::History).selected, app.page);
    update(&mut app, code(KeyCode::End));
    assert_eq!(app.pane(Pane::History).selected, 99);
    update(&mut app, key('j'));
    assert_eq!(app.pane(Pane::History).selected, 99);
    update(&mut app, code(KeyCode::PageUp));
    assert_eq!(app.pane(Pane::History).selected, 99 - app.page);
    // Newest first: row 0 is the highest id.
    update(&mut app, code(KeyCode::Home));
    assert_eq!(app.selected_event().map(|e| e.id), Some(100));
}

#[test]
fn filter_narrows_the_focused_pane_and_esc_clears_it() {
    let events = vec![
        sample::event(3, "down", 2, 1, "failed"),
        sample::event(2, "up", 1, 2, "ok"),
        sample::event(1, "up", 0, 1, "ok"),
    ];
    let mut app = sample::connected(Environment::Development, 3, events, vec![], true);
    update(&mut app, key('2'));
    update(&mut app, key('/'));
    assert!(app.filtering);
    for c in "fail".chars() {
        update(&mut app, key(c));
    }
    assert_eq!(app.pane(Pane::History).visible, vec![0]);
    // While typing, letters are text, not commands.
    assert!(!app.quit && app.popup.is_none());
    update(&mut app, code(KeyCode::Enter));
    assert!(!app.filtering);
    assert_eq!(app.pane(Pane::History).filter, "fail");
    update(&mut app, key('/'));
    update(&mut app, code(KeyCode::Esc));
    assert_eq!(app.pane(Pane::History).visible.len(), 3);
}

#[test]
fn unreachable_keeps_the_last_state_refuses_actions_and_recovers() {
    let mut app = app_at(Environment::Production, 3);
    let reason = "cannot connect to postgres://deploy@db1:5432/orders: connection refused\n  Check that the server is running";
    update(
        &mut app,
        Msg::Monitor(Monitor::Unreachable {
            reason: reason.into(),
            retry_in_s: 4,
        }),
    );
    assert!(app.health.is_unreachable());
    assert_eq!(app.current(), Some(Revision(3)), "last known state is kept");
    assert!(
        app.log
            .iter()
            .any(|l| l.level == Level::Error && l.text.contains("connection refused"))
    );
    assert!(
        update(&mut app, key('u')).is_empty(),
        "nothing runs against an unreachable database"
    );
    assert_eq!(
        update(&mut app, key('r')),
        vec![Effect::ReloadCatalog, Effect::Poll, Effect::LoadHistory]
    );
    let target = sample::target(Environment::Production);
    let status = sample::status_at(&target, &sample::catalog(), 3);
    let effects = update(
        &mut app,
        sample::snapshot(&target, &sample::catalog(), status, vec![], None),
    );
    assert_eq!(
        app.health,
        Health::Degraded("1 migration(s) pending".into()),
        "pgshift health's answer at 0003 of 0004"
    );
    assert_eq!(
        effects,
        vec![Effect::LoadHistory, Effect::FlushOfflineChecklists],
        "history is reloaded after reconnecting, checklist results kept offline are written"
    );
}

#[test]
fn drift_makes_health_degraded() {
    let target = sample::target(Environment::Development);
    let catalog = sample::catalog();
    let mut status = sample::status_at(&target, &catalog, 2);
    status.drift.push(crate::plan::Drift::MissingFile {
        revision: Revision(9),
        name: "gone".into(),
    });
    let mut app = app_at(Environment::Development, 2);
    update(
        &mut app,
        sample::snapshot(&target, &sample::catalog(), status, vec![], None),
    );
    assert!(
        matches!(&app.health, Health::Degraded(why) if why.contains("out of sync")),
        "{:?}",
        app.health
    );
}

#[test]
fn a_database_moved_by_someone_else_reloads_history() {
    let mut app = app_at(Environment::Development, 2);
    let target = sample::target(Environment::Development);
    let status = sample::status_at(&target, &sample::catalog(), 3);
    assert_eq!(
        update(
            &mut app,
            sample::snapshot(&target, &sample::catalog(), status.clone(), vec![], None)
        ),
        vec![Effect::LoadHistory]
    );
    assert!(
        update(
            &mut app,
            sample::snapshot(&target, &sample::catalog(), status, vec![], None)
        )
        .is_empty()
    );
}

#[test]
fn the_lock_cursor_follows_its_blocker_across_polls() {
    let mut app = sample::connected(
        Environment::Development,
        3,
        vec![],
        vec![sample::conflict(900, 4121), sample::conflict(901, 4122)],
        true,
    );
    update(&mut app, key('3'));
    update(&mut app, code(KeyCode::End));
    assert_eq!(app.selected_blocker().map(|b| b.pid), Some(4122));
    let target = sample::target(Environment::Development);
    let status = sample::status_at(&target, &sample::catalog(), 3);
    // The first conflict ended: the cursor stays on 4122.
    update(
        &mut app,
        sample::snapshot(
            &target,
            &sample::catalog(),
            status,
            vec![sample::conflict(901, 4122)],
            None,
        ),
    );
    assert_eq!(app.selected_blocker().map(|b| b.pid), Some(4122));
}

#[test]
fn help_opens_with_question_mark_and_closes_with_esc() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, key('?'));
    assert!(matches!(app.popup, Some(Popup::Help { .. })));
    update(&mut app, key('j'));
    assert!(matches!(app.popup, Some(Popup::Help { scroll: 1 })));
    update(&mut app, code(KeyCode::Esc));
    assert!(app.popup.is_none());
}

#[test]
fn the_log_is_bounded() {
    let mut app = app_at(Environment::Development, 3);
    for i in 0..LOG_CAPACITY + 10 {
        app.log(Level::Info, format!("line {i}"));
    }
    assert_eq!(app.log.len(), LOG_CAPACITY);
    assert_eq!(
        app.pane(Pane::Log).selected,
        LOG_CAPACITY - 1,
        "the log follows its tail"
    );
}

#[test]
fn a_failed_history_reload_keeps_the_last_known_events() {
    let mut app = sample::connected(
        Environment::Development,
        3,
        vec![sample::event(1, "up", 0, 3, "ok")],
        vec![],
        true,
    );
    update(
        &mut app,
        Msg::History(Err("cannot connect to postgres://x: refused".into())),
    );
    assert_eq!(app.history.len(), 1);
    assert!(app.history_error.is_none());
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text.contains("history not refreshed"))
    );
    let mut fresh = App::new(app.target.clone(), &sample::catalog(), true);
    update(&mut fresh, Msg::History(Err("cannot connect".into())));
    assert_eq!(fresh.history_error.as_deref(), Some("cannot connect"));
}

#[test]
fn a_waiting_step_logs_its_blockers_once_not_every_poll() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, key('u'));
    planned(&mut app, plan(Direction::Up, 3, 4));
    update(&mut app, key('y'));
    let blockers = sample::conflict(1, 4121).blockers;
    let before = app.log.len();
    for _ in 0..5 {
        update(
            &mut app,
            Msg::Progress(Event::Blocked {
                revision: Revision(4),
                blockers: blockers.clone(),
            }),
        );
    }
    assert_eq!(app.log.len(), before + 1);
    let other = sample::conflict(1, 4122).blockers;
    update(
        &mut app,
        Msg::Progress(Event::Blocked {
            revision: Revision(4),
            blockers: other,
        }),
    );
    assert_eq!(app.log.len(), before + 2, "a new blocker is logged");
}

#[path = "app/locks_tests.rs"]
mod locks_tests;

/// Issue 12, defect 7: clearing a filter keeps the cursor on its row (it jumped to `base`, so
/// `p`/`D` aimed at base), and Esc on the main screen clears a filter kept with Enter.
#[test]
fn clearing_a_filter_keeps_the_cursor_and_esc_clears_a_kept_filter() {
    let mut app = app_at(Environment::Development, 4);
    update(&mut app, key('/'));
    for c in "variants".chars() {
        update(&mut app, key(c));
    }
    assert_eq!(
        app.selected_revision().map(|r| r.revision),
        Some(Revision(2))
    );
    update(&mut app, code(KeyCode::Esc));
    assert!(app.pane(Pane::Revisions).filter.is_empty());
    assert_eq!(
        app.selected_revision().map(|r| r.revision),
        Some(Revision(2)),
        "the cursor stays on 0002 after the filter is cleared"
    );
    // Kept with Enter, then cleared with Esc from the main screen.
    update(&mut app, key('/'));
    for c in "baseline".chars() {
        update(&mut app, key(c));
    }
    update(&mut app, code(KeyCode::Enter));
    assert!(!app.filtering);
    assert_eq!(app.pane(Pane::Revisions).visible.len(), 1);
    update(&mut app, code(KeyCode::Esc));
    assert!(app.pane(Pane::Revisions).filter.is_empty());
    assert_eq!(
        app.selected_revision().map(|r| r.revision),
        Some(Revision(1))
    );
}

/// Issue 12, defect 7: the unreachable retry counts down with the clock, and `r` retries now
/// without raising the next wait (the monitor doubles its backoff only after a full wait).
#[test]
fn the_retry_countdown_ticks_down() {
    let mut app = app_at(Environment::Development, 3);
    update(
        &mut app,
        Msg::Monitor(Monitor::Unreachable {
            reason: "connection refused".into(),
            retry_in_s: 8,
        }),
    );
    assert_eq!(app.retry_in_s(), 8);
    app.now += std::time::Duration::from_millis(3500);
    update(&mut app, Msg::Tick);
    assert_eq!(app.retry_in_s(), 5);
    app.now += std::time::Duration::from_secs(10);
    assert_eq!(app.retry_in_s(), 0);
}

/// Issue 12, defect 7: `j` in a dialog stops where its last line is at the bottom.
#[test]
fn j_stops_at_the_end_of_a_dialog() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, key('?'));
    for _ in 0..500 {
        update(&mut app, key('j'));
    }
    let Some(Popup::Help { scroll }) = app.popup else {
        panic!("help closed")
    };
    let limit = crate::tui::ui::scroll_limit(&app, 80, 24).unwrap_or(0);
    assert!(limit > 0 && scroll == limit, "{scroll} vs {limit}");
    update(&mut app, key('k'));
    assert!(matches!(app.popup, Some(Popup::Help { scroll }) if scroll == limit - 1));
}

/// Issue 12, defect 7: `t` on an applied revision says why instead of being silently ignored by
/// `u`; status-line messages clear after a while; `r` reports new migration files.
#[test]
fn t_on_an_applied_revision_is_refused_with_a_reason() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, code(KeyCode::Home));
    update(&mut app, key('j'));
    assert_eq!(
        app.selected_revision().map(|r| r.revision),
        Some(Revision(1))
    );
    update(&mut app, key('t'));
    assert_eq!(app.target_rev, None);
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text.contains("0001 is applied"))
    );
    update(&mut app, code(KeyCode::End));
    update(&mut app, key('t'));
    assert_eq!(app.target_rev, Some(Revision(4)));
}

#[test]
fn new_migration_files_are_reported_after_r() {
    let mut app = app_at(Environment::Development, 3);
    update(&mut app, Msg::CatalogReloaded(Ok(vec![Revision(5)])));
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text == "new migration file(s): 0005")
    );
    update(
        &mut app,
        Msg::CatalogReloaded(Err("duplicate version 0005".into())),
    );
    assert!(
        app.log
            .iter()
            .any(|l| l.level == Level::Error && l.text.contains("last good catalog"))
    );
}

/// Read any line whole: Enter or `v` on a History, lock or Log row opens its full text; `c`
/// copies it (OSC 52).
#[test]
fn enter_or_v_reads_a_row_whole_and_c_copies_it() {
    let events = vec![sample::event(4, "up", 3, 4, "failed")];
    let mut app = sample::connected(
        Environment::Development,
        3,
        events,
        vec![sample::conflict(900, 4121)],
        true,
    );
    update(&mut app, key('2'));
    update(&mut app, code(KeyCode::Enter));
    let Some(Popup::Detail(d)) = &app.popup else {
        panic!("no detail: {:?}", app.popup)
    };
    let text = d.text();
    assert!(text.contains("SQLSTATE  55P03"), "{text}");
    assert!(
        text.contains("Nothing was applied for 0004."),
        "the whole error: {text}"
    );
    assert!(text.contains("diagnosis:"), "{text}");
    assert!(text.contains("when      2026-11-24 09:00:04 UTC"), "{text}");
    let effects = update(&mut app, key('c'));
    assert!(matches!(effects.as_slice(), [Effect::Copy(t)] if t.contains("55P03")));
    assert!(app.popup.is_some(), "copying keeps the dialog open");
    update(&mut app, code(KeyCode::Esc));
    assert!(app.popup.is_none());
    // The lock pane: the waiter's blocked statement and the blocker chain.
    update(&mut app, key('3'));
    update(&mut app, key('v'));
    let Some(Popup::Detail(d)) = &app.popup else {
        panic!("no detail")
    };
    let text = d.text();
    assert!(
        text.contains("ALTER TABLE ingestion_runs ADD COLUMN error_text text"),
        "{text}"
    );
    assert!(
        text.contains("└ pid 4121 (orders-api, user app) idle in transaction"),
        "{text}"
    );
    assert!(text.contains("K terminates it"), "{text}");
    update(&mut app, code(KeyCode::Esc));
    // The log: an error with its next lines.
    update(
        &mut app,
        Msg::Migrated(Err(std::sync::Arc::new(crate::error::Error::Failed(
            "upgrade 0004 failed: lock_timeout\n  Nothing was applied.".into(),
        )))),
    );
    update(&mut app, key('4'));
    let last = app.pane(Pane::Log).visible.len() - 1;
    app.panes[Pane::Log.index()].selected = last - 1;
    update(&mut app, code(KeyCode::Enter));
    let Some(Popup::Detail(d)) = &app.popup else {
        panic!("no detail")
    };
    assert_eq!(
        d.lines,
        vec![
            "upgrade 0004 failed: lock_timeout",
            "  Nothing was applied."
        ]
    );
}

#[test]
fn osc52_payload_is_standard_base64() {
    use crate::tui::worker::base64;
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64("pid 4121 → K".as_bytes()), "cGlkIDQxMjEg4oaSIEs=");
}

/// The `:` command line: actions without a key; unknown commands say so.
#[test]
fn colon_commands_switch_focus_filter_history_open_checklists_and_ask_to_switch_targets() {
    let events = vec![
        sample::event(2, "up", 3, 4, "ok"),
        sample::event(1, "up", 2, 3, "ok"),
    ];
    let mut app = sample::connected(Environment::Development, 4, events, vec![], true);
    let type_line = |app: &mut App, line: &str| {
        update(app, key(':'));
        for c in line.chars() {
            update(app, key(c));
        }
        update(app, code(KeyCode::Enter))
    };
    assert!(type_line(&mut app, "history 0004").is_empty());
    assert_eq!(app.focus, Pane::History);
    assert_eq!(
        app.pane(Pane::History).visible,
        vec![0],
        "only the event reaching 0004"
    );
    assert_eq!(
        type_line(&mut app, "target staging"),
        vec![Effect::SwitchTarget("staging".into())]
    );
    let effects = type_line(&mut app, "checklist rollback");
    assert!(app.checklists.open);
    assert_eq!(app.checklists.wanted.as_deref(), Some("rollback"));
    assert!(effects.contains(&Effect::Checklist(ChecklistOp::Load)));
    app.checklists.open = false;
    assert!(type_line(&mut app, "frobnicate now").is_empty());
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text.starts_with("unknown command :frobnicate"))
    );
    // Esc drops a half-typed command; letters typed there are not keys.
    update(&mut app, key(':'));
    update(&mut app, key('q'));
    update(&mut app, code(KeyCode::Esc));
    assert!(app.command.is_none() && !app.quit);
}

/// Checklist results kept while the database was unreachable are written when it returns.
#[test]
fn reconnecting_writes_the_checklist_results_kept_offline() {
    let mut app = app_at(Environment::Development, 3);
    update(
        &mut app,
        Msg::Monitor(Monitor::Unreachable {
            reason: "connection refused".into(),
            retry_in_s: 1,
        }),
    );
    let target = sample::target(Environment::Development);
    let catalog = sample::catalog();
    let status = sample::status_at(&target, &catalog, 3);
    let effects = update(
        &mut app,
        sample::snapshot(&target, &catalog, status, vec![], None),
    );
    assert!(
        effects.contains(&Effect::FlushOfflineChecklists),
        "{effects:?}"
    );
    update(&mut app, Msg::OfflineFlushed(Ok(2)));
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text.starts_with("2 checklist result(s) kept"))
    );
}

#[test]
fn after_a_failed_upgrade_with_pending_migrations_the_header_and_overlay_say_degraded() {
    let target = sample::target(Environment::Production);
    let catalog = sample::catalog();
    let mut app = app_at(Environment::Production, 3);
    let status = sample::status_at(&target, &catalog, 3);
    update(
        &mut app,
        sample::snapshot(&target, &catalog, status, vec![], Some(sample::failed_up())),
    );
    assert_eq!(app.health, Health::Degraded("migrations failed".into()));
    let overlay = app
        .checklists
        .health
        .as_ref()
        .expect("the overlay's health");
    assert_eq!(overlay.status, crate::health::HealthStatus::Degraded);
    assert_eq!(
        overlay.migrations.state,
        crate::health::MigrationState::Failed,
        "the overlay and the header read the same health"
    );
}

#[test]
fn a_on_a_drifted_row_asks_with_its_diff_and_accepts_only_after_the_revision_is_typed() {
    let mut app = app_at(Environment::Production, 3);
    let target = sample::target(Environment::Production);
    let catalog = sample::catalog();
    let mut status = sample::status_at(&target, &catalog, 3);
    let drift = crate::plan::Drift::ChecksumChanged {
        revision: Revision(2),
        name: "add_variants".into(),
        applied: 1,
        file: 2,
        change: crate::plan::Change::Content,
        diff: Some(
            "--- applied\n+++ file\n-ADD COLUMN variants json;\n+ADD COLUMN variants jsonb;\n"
                .into(),
        ),
    };
    status.drift.push(drift.clone());
    status.revisions[1].drift = true;
    update(
        &mut app,
        sample::snapshot(&target, &catalog, status, vec![], None),
    );
    // The cursor starts on the current revision (0003): one up is the drifted 0002.
    update(&mut app, key('k'));
    assert_eq!(
        app.selected_revision().map(|r| r.revision),
        Some(Revision(2))
    );
    assert!(update(&mut app, key('a')).is_empty());
    assert!(matches!(
        &app.popup,
        Some(Popup::Confirm(c)) if c.must_type.as_deref() == Some("0002")
            && matches!(&c.pending, Pending::Accept { revision: Revision(2), drift: d } if d == &vec![drift.clone()])
    ));
    assert!(
        update(&mut app, key('y')).is_empty(),
        "y is text on production"
    );
    assert!(update(&mut app, code(KeyCode::Enter)).is_empty());
    for c in "0002".chars() {
        update(&mut app, key(c));
    }
    assert_eq!(
        update(&mut app, code(KeyCode::Enter)),
        vec![Effect::Accept {
            revision: Revision(2),
            shown: vec![drift],
        }]
    );
    // A row whose files match: nothing to accept, said so.
    update(&mut app, key('k'));
    assert!(update(&mut app, key('a')).is_empty());
    assert!(app.popup.is_none());
    assert!(
        app.log
            .back()
            .is_some_and(|l| l.text.contains("match what was applied"))
    );
}
