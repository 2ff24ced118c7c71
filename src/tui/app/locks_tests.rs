//! The lock pane through a blocked run's backoff, and `C`/`K` on what it shows.

use std::time::Duration;

use crate::tui::sample::key;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::config::Environment;
use crate::tui::sample;

fn snapshot(app: &App, conflicts: Vec<Conflict>) -> Msg {
    sample::snapshot(
        &sample::target(app.target.environment),
        &sample::catalog(),
        app.status.clone().expect("status"),
        conflicts,
        None,
    )
}

/// An upgrade 0003 → 0004 running, its worker (pid 900) blocked by pid 4121.
fn blocked_run(env: Environment) -> App {
    let mut app = sample::connected(env, 3, vec![], vec![], true);
    app.activity = Activity::Migrating(Progress {
        direction: Direction::Up,
        from: Revision(3),
        to: Revision(4),
        step: Some((1, 1, "0004_add_documents_index".into())),
        attempt: None,
        blockers: vec![],
        waiting_for_runner: None,
        statement: None,
    });
    let live = snapshot(&app, vec![sample::conflict(900, 4121)]);
    update(&mut app, live);
    app
}

fn retry(app: &mut App, attempt: u32) {
    let blockers = sample::conflict(900, 4121).blockers;
    update(
        app,
        Msg::Progress(Event::StepRetry {
            revision: Revision(4),
            attempt,
            attempts: 10,
            reason: "lock_timeout (55P03)".into(),
            delay: Duration::from_secs(2),
            blockers,
        }),
    );
}

#[test]
fn a_blocked_runs_blockers_stay_listed_and_actionable_through_its_backoff() {
    let mut app = blocked_run(Environment::Development);
    let start = app.now;
    for attempt in 1..=3 {
        retry(&mut app, attempt);
        // The backoff: the worker waits for nothing, so the monitor sees no conflict.
        app.now = start + Duration::from_secs(2 * u64::from(attempt));
        let empty = snapshot(&app, vec![]);
        update(&mut app, empty);
        assert_eq!(app.live_conflicts, 0);
        assert_eq!(app.conflicts.len(), 1, "the run's wait is kept");
        assert!(app.kept_conflict(0).is_some());
        update(&mut app, key('3'));
        assert_eq!(app.selected_blocker().map(|b| b.pid), Some(4121));
        // The next try waits again: live, and the kept copy is not listed twice.
        let live = snapshot(&app, vec![sample::conflict(900, 4121)]);
        update(&mut app, live);
        assert_eq!(app.conflicts.len(), 1);
        assert!(app.kept_conflict(0).is_none());
    }
    // K works on the kept blocker between tries.
    retry(&mut app, 4);
    let empty = snapshot(&app, vec![]);
    update(&mut app, empty);
    update(&mut app, key('K'));
    assert!(
        matches!(&app.popup, Some(Popup::Confirm(c)) if matches!(&c.pending, Pending::Signal { blocker, signal: Signal::Terminate } if blocker.pid == 4121))
    );
    // The step finishing ends the wait.
    app.popup = None;
    update(
        &mut app,
        Msg::Progress(Event::StepFinished {
            revision: Revision(4),
            elapsed: Duration::from_secs(9),
            attempts: 5,
        }),
    );
    assert!(app.conflicts.is_empty());
    assert!(app.run_wait.is_none());
}

#[test]
fn c_on_an_idle_in_transaction_blocker_says_it_cannot_help_and_offers_terminate() {
    let mut app = blocked_run(Environment::Development);
    update(&mut app, key('3'));
    update(&mut app, key('C'));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("no dialog")
    };
    assert!(
        matches!(
            &c.pending,
            Pending::Signal {
                signal: Signal::Terminate,
                ..
            }
        ),
        "terminate is offered: {:?}",
        c.pending
    );
    assert!(
        c.note
            .as_deref()
            .is_some_and(|n| n.contains("cancel cannot release its locks")),
        "{:?}",
        c.note
    );
    assert!(
        app.log
            .iter()
            .any(|l| l.text.contains("cancel cannot help"))
    );
}

#[test]
fn terminate_on_production_needs_the_pid_typed() {
    let mut app = blocked_run(Environment::Production);
    update(&mut app, key('3'));
    update(&mut app, key('K'));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("no dialog")
    };
    assert_eq!(c.must_type.as_deref(), Some("4121"));
    assert!(update(&mut app, key('y')).is_empty(), "y is text here");
    assert!(
        update(
            &mut app,
            Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
        )
        .is_empty()
    );
    for ch in "4121".chars() {
        update(&mut app, key(ch));
    }
    let effects = update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
    );
    assert!(matches!(
        effects.as_slice(),
        [Effect::Signal {
            signal: Signal::Terminate,
            ..
        }]
    ));
}

#[test]
fn a_cancel_that_leaves_the_locks_held_is_reported_as_failed_not_sent() {
    let mut app = blocked_run(Environment::Development);
    update(
        &mut app,
        Msg::Signalled {
            pid: 4121,
            signal: Signal::Cancel,
            result: Ok(Signalled::StillHolding("idle in transaction".into())),
        },
    );
    let errors: Vec<&str> = app
        .log
        .iter()
        .filter(|l| l.level == Level::Error)
        .map(|l| l.text.as_str())
        .collect();
    assert!(
        errors
            .iter()
            .any(|t| t.contains("did not release its locks")),
        "{errors:?}"
    );
    assert!(!app.log.iter().any(|l| l.text.contains("sent to pid")));
}
