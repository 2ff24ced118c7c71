//! Pure `update` tests of the Backfills pane: keys, dialogs, events and polls in; state and
//! effects out. No terminal, no database.

use crate::tui::sample::{code, key};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::sample;
use super::*;
use crate::config::Environment;
use crate::tui::sample as screen;

/// Connected at 0003 with the sample rows polled and the Backfills pane focused.
fn app() -> App {
    let mut app = screen::connected(Environment::Development, 3, vec![], vec![], true);
    update(
        &mut app,
        Msg::Backfill(BackfillMsg::Overview(Ok(sample::rows()))),
    );
    update(&mut app, key('5'));
    assert_eq!(app.focus, Pane::Backfills);
    app
}

/// Move the cursor to the backfill called `name`.
fn select(app: &mut App, name: &str) {
    update(app, code(KeyCode::Home));
    while app.selected_backfill().map(|r| r.name.as_str()) != Some(name) {
        let before = app.pane(Pane::Backfills).selected;
        update(app, key('j'));
        assert_ne!(
            before,
            app.pane(Pane::Backfills).selected,
            "{name} not listed"
        );
    }
}

fn dry_ran(app: &mut App, name: &str, purpose: DryPurpose, dry: DryRun) -> Vec<Effect> {
    update(
        app,
        Msg::Backfill(BackfillMsg::DryRan {
            name: name.into(),
            purpose,
            result: Ok(dry),
        }),
    )
}

fn effect(e: BackfillEffect) -> Vec<Effect> {
    vec![Effect::Backfill(e)]
}

fn logged(app: &App, needle: &str) -> bool {
    app.log.iter().any(|l| l.text.contains(needle))
}

#[test]
fn b_from_another_pane_brings_the_backfills_pane_up_and_runs_nothing() {
    let mut app = screen::connected(Environment::Development, 3, vec![], vec![], true);
    update(
        &mut app,
        Msg::Backfill(BackfillMsg::Overview(Ok(sample::rows()))),
    );
    assert_eq!(app.focus, Pane::Revisions);
    assert_eq!(app.pane_in(Slot::BottomRight), Some(Pane::Log));
    assert!(update(&mut app, key('b')).is_empty());
    assert_eq!(app.focus, Pane::Backfills);
    assert_eq!(app.pane_in(Slot::BottomRight), Some(Pane::Backfills));
    // x elsewhere never cancels a run the operator cannot see.
    update(&mut app, key('1'));
    assert!(update(&mut app, key('x')).is_empty());
    assert!(app.popup.is_none());
    assert_eq!(app.focus, Pane::Backfills);
}

#[test]
fn b_dry_runs_the_selected_backfill_and_shows_the_result_in_a_dialog() {
    let mut app = app();
    select(&mut app, "cleanup");
    assert_eq!(
        update(&mut app, key('b')),
        effect(BackfillEffect::DryRun {
            name: "cleanup".into(),
            purpose: DryPurpose::Show
        })
    );
    // One dry run at a time.
    assert!(update(&mut app, key('b')).is_empty());
    assert!(logged(&app, "a dry run of cleanup is still going"));
    assert!(
        dry_ran(
            &mut app,
            "cleanup",
            DryPurpose::Show,
            sample::dry_run("cleanup")
        )
        .is_empty()
    );
    assert!(app.backfills.dry_running.is_none());
    let Some(Popup::Backfill(BackfillDialog::DryRun { dry, .. })) = &app.popup else {
        panic!("dry-run dialog expected, got {:?}", app.popup);
    };
    assert_eq!(dry.rows_to_do, 3000);
    assert!(logged(&app, "3000 rows to change"));
    // j scrolls, Esc closes, nothing runs.
    assert!(update(&mut app, key('j')).is_empty());
    assert!(matches!(
        app.popup,
        Some(Popup::Backfill(BackfillDialog::DryRun { scroll: 1, .. }))
    ));
    assert!(update(&mut app, code(KeyCode::Esc)).is_empty());
    assert!(app.popup.is_none());
}

#[test]
fn a_failed_dry_run_is_logged_with_its_reason() {
    let mut app = app();
    select(&mut app, "cleanup");
    update(&mut app, key('b'));
    update(
        &mut app,
        Msg::Backfill(BackfillMsg::DryRan {
            name: "cleanup".into(),
            purpose: DryPurpose::Show,
            result: Err("backfill cleanup requires schema revision 0003, but the database is at 0002\nrun `pgshift up 0003` first".into()),
        }),
    );
    assert!(app.popup.is_none());
    assert!(app.backfills.dry_running.is_none());
    assert!(logged(&app, "requires schema revision 0003"));
    assert!(logged(&app, "pgshift up 0003"));
}

#[test]
fn capital_b_asks_with_the_dry_run_numbers_and_runs_only_after_yes() {
    let mut app = app();
    select(&mut app, "cleanup");
    assert_eq!(
        update(&mut app, key('B')),
        effect(BackfillEffect::DryRun {
            name: "cleanup".into(),
            purpose: DryPurpose::Confirm
        })
    );
    dry_ran(
        &mut app,
        "cleanup",
        DryPurpose::Confirm,
        sample::dry_run("cleanup"),
    );
    assert!(matches!(
        app.popup,
        Some(Popup::Backfill(BackfillDialog::ConfirmRun { .. }))
    ));
    assert!(app.backfills.local.is_empty(), "nothing runs before yes");
    assert_eq!(
        update(&mut app, key('y')),
        effect(BackfillEffect::Run {
            name: "cleanup".into(),
            mode: Mode::Run
        })
    );
    assert!(app.popup.is_none());
    let view = app.backfills.view(3).expect("cleanup row");
    assert_eq!(
        view.state,
        Shown::Running,
        "shown running before the poll sees it"
    );
    assert_eq!(view.runner.as_deref(), Some("this screen"));
    // A second B while it runs is refused.
    assert!(update(&mut app, key('B')).is_empty());
    assert!(logged(&app, "backfill cleanup is already running"));
}

#[test]
fn escape_declines_the_run_and_a_dry_run_with_nothing_to_do_does_not_ask() {
    let mut app = app();
    select(&mut app, "cleanup");
    update(&mut app, key('B'));
    dry_ran(
        &mut app,
        "cleanup",
        DryPurpose::Confirm,
        sample::dry_run("cleanup"),
    );
    assert!(update(&mut app, code(KeyCode::Esc)).is_empty());
    assert!(app.popup.is_none());
    assert!(app.backfills.local.is_empty());
    assert!(logged(&app, "not confirmed; nothing was run"));

    update(&mut app, key('B'));
    let mut nothing = sample::dry_run("cleanup");
    nothing.rows_to_do = 0;
    dry_ran(&mut app, "cleanup", DryPurpose::Confirm, nothing);
    assert!(app.popup.is_none());
    assert!(logged(&app, "nothing to do"));
}

#[test]
fn capital_b_on_a_backfill_running_elsewhere_names_the_runner() {
    let mut app = app();
    select(&mut app, "hashes");
    assert!(update(&mut app, key('B')).is_empty());
    assert!(logged(&app, "already running by pid 5150"));
}

#[test]
fn space_pauses_a_running_backfill_and_resumes_a_failed_one() {
    let mut app = app();
    select(&mut app, "hashes");
    assert_eq!(
        update(&mut app, key(' ')),
        effect(BackfillEffect::Stop {
            name: "hashes".into(),
            stop: Stop::Pause
        })
    );
    assert_eq!(
        app.backfills.view(0).and_then(|v| v.stopping),
        Some(Stop::Pause)
    );
    // Twice is once.
    assert!(update(&mut app, key(' ')).is_empty());
    let effects = update(
        &mut app,
        Msg::Backfill(BackfillMsg::Stopped {
            name: "hashes".into(),
            stop: Stop::Pause,
            result: Ok(crate::backfill::ControlReport {
                name: "hashes".into(),
                run_id: 7,
                state: crate::backfill::RunState::Paused,
                message: "backfill hashes: run #7 paused after key 135000".into(),
            }),
        }),
    );
    assert_eq!(effects, vec![Effect::Poll, Effect::LoadHistory]);
    assert!(app.backfills.stopping.is_empty());
    assert!(logged(&app, "run #7 paused after key 135000"));

    select(&mut app, "variants");
    assert_eq!(
        update(&mut app, key(' ')),
        effect(BackfillEffect::Run {
            name: "variants".into(),
            mode: Mode::Resume
        })
    );
    // Done and never-run backfills have nothing to pause or resume.
    select(&mut app, "sources");
    assert!(update(&mut app, key(' ')).is_empty());
    assert!(logged(
        &app,
        "backfill sources is done: nothing to pause or resume"
    ));
}

#[test]
fn x_cancels_only_after_confirmation() {
    let mut app = app();
    select(&mut app, "variants");
    assert!(update(&mut app, key('x')).is_empty());
    assert!(matches!(
        app.popup,
        Some(Popup::Backfill(BackfillDialog::ConfirmCancel { .. }))
    ));
    assert!(update(&mut app, key('n')).is_empty());
    assert!(app.popup.is_none());
    update(&mut app, key('x'));
    assert_eq!(
        update(&mut app, key('y')),
        effect(BackfillEffect::Stop {
            name: "variants".into(),
            stop: Stop::Cancel
        })
    );
    // Nothing to cancel on a backfill that never ran.
    select(&mut app, "cleanup");
    assert!(update(&mut app, key('x')).is_empty());
    assert!(app.popup.is_none());
    assert!(logged(&app, "no run to cancel"));
}

#[test]
fn progress_events_drive_the_row_and_only_start_retry_and_end_reach_the_log() {
    let mut app = app();
    select(&mut app, "cleanup");
    update(&mut app, key(' ')); // never run: refused
    update(&mut app, key('B'));
    dry_ran(
        &mut app,
        "cleanup",
        DryPurpose::Confirm,
        sample::dry_run("cleanup"),
    );
    update(&mut app, key('y'));
    let log_len = app.log.len();
    update(
        &mut app,
        Msg::Progress(Event::BackfillStarted {
            name: "cleanup".into(),
            run_id: 9,
            resumed_from: None,
            rows_done: 0,
            rows_estimate: 3000,
            batch_size: 2000,
        }),
    );
    assert!(app.log.len() > log_len, "start is logged");
    let log_len = app.log.len();
    update(
        &mut app,
        Msg::Progress(Event::BackfillProgress {
            name: "cleanup".into(),
            rows_done: 1500,
            rows_estimate: 3000,
            rate: 750.0,
            eta_s: Some(2.0),
            batch_ms_p50: 40,
            batch_ms_max: 55,
            batch_size: 2000,
            batches: 1,
            retries: 0,
        }),
    );
    assert_eq!(app.log.len(), log_len, "progress is not logged");
    let v = app.backfills.view(3).expect("row");
    assert_eq!((v.rows_done, v.rows_estimate), (1500, Some(3000)));
    assert_eq!(v.fraction, Some(0.5));
    assert_eq!((v.rate, v.eta_s), (750.0, Some(2.0)));
    assert_eq!(v.batch_ms, Some((40, 55)));
    update(
        &mut app,
        Msg::Progress(Event::BackfillRetry {
            name: "cleanup".into(),
            attempt: 1,
            attempts: 10,
            reason: "lock_timeout (55P03)".into(),
            delay: std::time::Duration::from_millis(200),
            batch_size: 1000,
        }),
    );
    assert!(
        app.backfills
            .view(3)
            .and_then(|v| v.retrying)
            .is_some_and(|r| r.contains("55P03"))
    );
    assert_eq!(app.log.back().map(|l| l.level), Some(Level::Warn));
    // Held for a lagging replica: shown on the row, logged once, cleared by the next batch.
    let lagging = crate::db::topology::Lagging {
        replica: "r1".into(),
        lag: std::time::Duration::from_millis(12_300),
        max: std::time::Duration::from_secs(10),
    };
    let log_len = app.log.len();
    for waited in [0, 1, 2] {
        update(
            &mut app,
            Msg::Progress(Event::replica_wait(
                Some("cleanup"),
                None,
                &lagging,
                std::time::Duration::from_secs(waited),
            )),
        );
    }
    assert_eq!(
        app.log.len(),
        log_len + 1,
        "a wait is logged once, not every poll"
    );
    assert!(logged(
        &app,
        "backfill cleanup: waiting for replica r1: replay lag 12.3s > 10s"
    ));
    assert_eq!(
        app.backfills.view(3).and_then(|v| v.waiting).as_deref(),
        Some("waiting for replica r1: replay lag 12.3s > 10s")
    );
    update(
        &mut app,
        Msg::Progress(Event::BackfillProgress {
            name: "cleanup".into(),
            rows_done: 2000,
            rows_estimate: 3000,
            rate: 750.0,
            eta_s: Some(1.0),
            batch_ms_p50: 40,
            batch_ms_max: 55,
            batch_size: 2000,
            batches: 2,
            retries: 1,
        }),
    );
    assert_eq!(app.backfills.view(3).and_then(|v| v.waiting), None);
    let effects = update(
        &mut app,
        Msg::Backfill(BackfillMsg::Ran {
            name: "cleanup".into(),
            result: Err("backfill cleanup failed: statement timeout (57014)".into()),
        }),
    );
    assert_eq!(effects, vec![Effect::Poll, Effect::LoadHistory]);
    assert!(app.backfills.local.is_empty());
    assert!(logged(&app, "statement timeout (57014)"));
    // The row falls back to the run table's view (never run in this sample until the next poll).
    assert_eq!(
        app.backfills.view(3).map(|v| v.state),
        Some(Shown::NeverRun)
    );
}

#[test]
fn the_cursor_stays_on_its_backfill_across_polls_and_a_failed_poll_keeps_the_rows() {
    let mut app = app();
    select(&mut app, "sources");
    let mut rows = sample::rows();
    rows.reverse();
    update(&mut app, Msg::Backfill(BackfillMsg::Overview(Ok(rows))));
    assert_eq!(
        app.selected_backfill().map(|r| r.name.as_str()),
        Some("sources")
    );
    update(
        &mut app,
        Msg::Backfill(BackfillMsg::Overview(Err(
            "reading pgshift_backfill_runs: permission denied (42501)\nmore".into(),
        ))),
    );
    assert_eq!(app.backfills.rows.len(), 4);
    assert_eq!(
        app.backfills.error.as_deref(),
        Some("reading pgshift_backfill_runs: permission denied (42501)")
    );
}

#[test]
fn quitting_with_a_run_started_here_asks_then_pauses_and_quits_when_it_stopped() {
    let mut app = app();
    select(&mut app, "cleanup");
    update(&mut app, key('B'));
    dry_ran(
        &mut app,
        "cleanup",
        DryPurpose::Confirm,
        sample::dry_run("cleanup"),
    );
    update(&mut app, key('y'));
    assert!(update(&mut app, key('q')).is_empty());
    assert!(!app.quit);
    assert!(matches!(
        app.popup,
        Some(Popup::Backfill(BackfillDialog::Quit { .. }))
    ));
    // n keeps watching.
    update(&mut app, key('n'));
    assert!(app.popup.is_none() && !app.quit);
    update(&mut app, key('q'));
    assert_eq!(
        update(&mut app, key('y')),
        effect(BackfillEffect::Stop {
            name: "cleanup".into(),
            stop: Stop::Pause
        })
    );
    assert!(!app.quit, "waits for the pause");
    update(
        &mut app,
        Msg::Backfill(BackfillMsg::Ran {
            name: "cleanup".into(),
            result: Ok(crate::backfill::RunReport {
                name: "cleanup".into(),
                run_id: Some(9),
                state: crate::backfill::Ended::Run(crate::backfill::RunState::Paused),
                resumed: false,
                rows: 2000,
                rows_total: 2000,
                batches: 1,
                retries: 0,
                batch_ms_p50: 40,
                batch_ms_max: 40,
                duration_ms: 100,
                cursor: Some("2000".into()),
                next: Some("resume with `pgshift backfill resume cleanup`".into()),
                remaining: None,
            }),
        }),
    );
    assert!(app.quit);
    assert!(logged(&app, "pgshift backfill resume cleanup"));
}

#[test]
fn ctrl_c_in_the_quit_dialog_leaves_at_once() {
    let mut app = app();
    select(&mut app, "variants");
    update(&mut app, key(' ')); // resume the failed run from here
    update(&mut app, key('q'));
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(app.quit);
}

#[test]
fn an_unreachable_database_refuses_backfill_actions() {
    let mut app = app();
    update(
        &mut app,
        Msg::Monitor(Monitor::Unreachable {
            reason: "connection refused".into(),
            retry_in_s: 2,
        }),
    );
    select(&mut app, "cleanup");
    assert!(update(&mut app, key('b')).is_empty());
    assert!(update(&mut app, key('B')).is_empty());
    assert!(logged(&app, "the database is unreachable"));
}

#[test]
fn no_definitions_explains_where_they_go() {
    let mut app = screen::connected(Environment::Development, 3, vec![], vec![], true);
    update(&mut app, Msg::Backfill(BackfillMsg::Overview(Ok(vec![]))));
    update(&mut app, key('5'));
    assert!(update(&mut app, key('b')).is_empty());
    assert!(logged(
        &app,
        "no backfills are defined in migrations/backfills"
    ));
}

/// Issue 12, defect 4: Esc cancels a dry run in flight on the server, and its late result never
/// pops up a "Run backfill?" the operator did not just ask for.
#[test]
fn esc_cancels_an_in_flight_dry_run_and_its_late_result_asks_nothing() {
    let mut app = app();
    select(&mut app, "cleanup");
    update(&mut app, key('B'));
    assert_eq!(
        update(&mut app, code(KeyCode::Esc)),
        effect(BackfillEffect::CancelDryRun)
    );
    assert!(app.backfills.dry_running.is_none());
    assert!(logged(&app, "cancelling the dry run on the server"));
    // The lock is released later and the dry run completes after all: no dialog.
    assert!(
        dry_ran(
            &mut app,
            "cleanup",
            DryPurpose::Confirm,
            sample::dry_run("cleanup")
        )
        .is_empty()
    );
    assert!(app.popup.is_none(), "{:?}", app.popup);
    assert!(logged(&app, "the cancelled dry run ended"));
    // Esc with nothing in flight does nothing.
    assert!(update(&mut app, code(KeyCode::Esc)).is_empty());
}

#[test]
fn a_dry_run_finishing_while_another_dialog_is_open_does_not_ask_over_it() {
    let mut app = app();
    select(&mut app, "cleanup");
    update(&mut app, key('B'));
    update(&mut app, key('?'));
    assert!(matches!(app.popup, Some(Popup::Help { .. })));
    dry_ran(
        &mut app,
        "cleanup",
        DryPurpose::Confirm,
        sample::dry_run("cleanup"),
    );
    assert!(matches!(app.popup, Some(Popup::Help { .. })));
    assert!(logged(&app, "dry run ready; B asks to run it"));
}

/// Issue 12: on production `B` and `x` need the backfill's name typed; nowhere does a bare Enter
/// run them; the cancel dialog's `Esc` means "back", as in every dialog.
#[test]
fn backfill_run_and_cancel_need_y_or_the_typed_name_on_production() {
    let mut app = app();
    select(&mut app, "variants");
    update(&mut app, key('x'));
    assert!(
        update(&mut app, code(KeyCode::Enter)).is_empty(),
        "bare Enter"
    );
    assert!(app.popup.is_some());
    assert_eq!(
        update(&mut app, key('y')),
        effect(BackfillEffect::Stop {
            name: "variants".into(),
            stop: Stop::Cancel
        })
    );
    let mut prod = screen::connected(Environment::Production, 3, vec![], vec![], true);
    update(
        &mut prod,
        Msg::Backfill(BackfillMsg::Overview(Ok(sample::rows()))),
    );
    update(&mut prod, key('5'));
    select(&mut prod, "variants");
    update(&mut prod, key('x'));
    assert!(update(&mut prod, key('y')).is_empty(), "y is text here");
    assert!(update(&mut prod, code(KeyCode::Enter)).is_empty());
    for c in "variants".chars() {
        update(&mut prod, key(c));
    }
    assert_eq!(
        update(&mut prod, code(KeyCode::Enter)),
        effect(BackfillEffect::Stop {
            name: "variants".into(),
            stop: Stop::Cancel
        })
    );
    select(&mut prod, "cleanup");
    update(&mut prod, key('B'));
    dry_ran(
        &mut prod,
        "cleanup",
        DryPurpose::Confirm,
        sample::dry_run("cleanup"),
    );
    assert!(update(&mut prod, key('y')).is_empty());
    for c in "cleanup".chars() {
        update(&mut prod, key(c));
    }
    // `y` was typed first: "ycleanup" is not the name.
    assert!(update(&mut prod, code(KeyCode::Enter)).is_empty());
    for c in "cleanup".chars() {
        update(&mut prod, key(c));
    }
    assert_eq!(
        update(&mut prod, code(KeyCode::Enter)),
        effect(BackfillEffect::Run {
            name: "cleanup".into(),
            mode: Mode::Run
        })
    );
}
