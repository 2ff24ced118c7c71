//! Pure `update` tests of the checklist overlay: keys in, state and effects out.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::config::Environment;
use crate::tui::sample;

fn key(app: &mut App, c: char) -> Vec<Effect> {
    let mods = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    update(app, Msg::Key(KeyEvent::new(KeyCode::Char(c), mods)))
}

fn code(app: &mut App, c: KeyCode) -> Vec<Effect> {
    update(app, Msg::Key(KeyEvent::new(c, KeyModifiers::NONE)))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        assert_eq!(key(app, c), vec![], "typing {c:?} runs nothing");
    }
}

fn run_check(checklist: &str, item: &str) -> Effect {
    Effect::Checklist(ChecklistOp::RunCheck {
        checklist: checklist.into(),
        item: item.into(),
    })
}

/// The overlay open on the sample pre-deploy run (backup unverified, committed passed,
/// rollback-plan failed).
fn open_app() -> App {
    let mut app = sample::connected(Environment::Production, 3, vec![], vec![], true);
    assert_eq!(
        key(&mut app, 'c'),
        vec![Effect::Checklist(ChecklistOp::Load), Effect::CheckHealth]
    );
    assert!(app.checklists.open && app.checklists.loading);
    update(
        &mut app,
        Msg::Checklists(Ok(sample::pre_deploy_in_progress())),
    );
    app
}

/// The view after `item` got `state`.
fn with(app: &App, item: &str, state: ItemState) -> ChecklistView {
    let mut v = app.checklists.views[0].clone();
    sample::record(&mut v, item, state, "evidence");
    v
}

#[test]
fn c_opens_on_pre_deploy_and_esc_closes_without_touching_the_main_screen() {
    let mut app = open_app();
    let c = &app.checklists;
    assert_eq!(c.view().map(|v| v.name.as_str()), Some("pre-deploy"));
    assert_eq!(c.selected_item().map(|i| i.id.as_str()), Some("backup"));
    // Main-screen keys mean something else here: `u` does not start an upgrade.
    assert_eq!(key(&mut app, 'u'), vec![]);
    assert!(!app.is_busy());
    code(&mut app, KeyCode::Esc);
    assert!(!app.checklists.open);
    assert_eq!(
        key(&mut app, 'c'),
        vec![Effect::Checklist(ChecklistOp::Load), Effect::CheckHealth]
    );
    key(&mut app, 'c');
    assert!(!app.checklists.open, "c closes it again");
}

#[test]
fn switching_checklists_wraps_and_resets_the_cursor() {
    let mut app = open_app();
    key(&mut app, 'j');
    key(&mut app, 'l');
    assert_eq!(app.checklists.view().unwrap().name, "deploy-sequence");
    assert_eq!(app.checklists.selected, 0);
    key(&mut app, 'h');
    key(&mut app, 'h');
    assert_eq!(
        app.checklists.view().unwrap().name,
        "recovery-partial-corruption"
    );
    // A reload keeps the checklist shown.
    update(&mut app, Msg::Checklists(Ok(sample::checklists())));
    assert_eq!(
        app.checklists.view().unwrap().name,
        "recovery-partial-corruption"
    );
}

#[test]
fn r_runs_the_selected_check_and_shows_it_running_until_its_result() {
    let mut app = open_app();
    for _ in 0..3 {
        key(&mut app, 'j');
    }
    assert_eq!(
        key(&mut app, 'r'),
        vec![run_check("pre-deploy", "rollback-plan")]
    );
    assert!(app.checklists.is_running("pre-deploy", "rollback-plan"));
    // One operation at a time: a second r is refused and says why.
    assert_eq!(key(&mut app, 'r'), vec![]);
    assert!(
        app.checklists
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("still running")
    );
    let view = with(&app, "rollback-plan", ItemState::Passed);
    let effects = update(
        &mut app,
        Msg::ChecklistDone {
            op: ChecklistOp::RunCheck {
                checklist: "pre-deploy".into(),
                item: "rollback-plan".into(),
            },
            result: Ok(view),
        },
    );
    assert_eq!(effects, vec![]);
    assert!(app.checklists.running.is_none());
    assert_eq!(
        app.checklists.selected_item().unwrap().state,
        ItemState::Passed
    );
    assert!(
        app.log
            .iter()
            .any(|l| l.text.contains("rollback-plan passed"))
    );
}

#[test]
fn shift_r_runs_the_unfinished_checks_one_after_the_other_and_stops_on_an_error() {
    let mut app = open_app();
    // committed passed already: backup, local-testing, rollback-plan, team-notified remain.
    assert_eq!(key(&mut app, 'R'), vec![run_check("pre-deploy", "backup")]);
    assert!(app.checklists.is_queued("pre-deploy", "local-testing"));
    assert!(!app.checklists.is_queued("pre-deploy", "committed"));
    let done = |app: &mut App, item: &str, result| {
        update(
            app,
            Msg::ChecklistDone {
                op: ChecklistOp::RunCheck {
                    checklist: "pre-deploy".into(),
                    item: item.into(),
                },
                result,
            },
        )
    };
    let v = with(&app, "backup", ItemState::Unverified);
    assert_eq!(
        done(&mut app, "backup", Ok(v)),
        vec![run_check("pre-deploy", "local-testing")]
    );
    let e = done(
        &mut app,
        "local-testing",
        Err("cannot connect to the database\nwhat next: check the server".into()),
    );
    assert_eq!(e, vec![], "an error stops the queue");
    assert!(app.checklists.running.is_none());
    let n = app.checklists.notice.clone().unwrap();
    assert_eq!(n.level, Level::Error);
    assert!(
        n.text
            .contains("checking local-testing failed: cannot connect"),
        "{n:?}"
    );
    assert!(
        app.log
            .iter()
            .any(|l| l.text.contains("not run: rollback-plan, team-notified"))
    );
}

#[test]
fn checks_to_run_resumes_or_starts_over_when_the_run_passed() {
    let views = sample::pre_deploy_in_progress();
    assert_eq!(
        checks_to_run(&views[0]),
        ["backup", "local-testing", "rollback-plan", "team-notified"]
    );
    let mut passed = views[0].clone();
    passed.state = RunState::Passed;
    assert_eq!(
        checks_to_run(&passed).len(),
        5,
        "a passed run is checked again in full"
    );
}

#[test]
fn an_item_without_a_check_says_to_confirm_or_skip() {
    let mut app = open_app();
    key(&mut app, 'l'); // deploy-sequence: its second item has no automatic check
    key(&mut app, 'j');
    let item = app.checklists.selected_item().unwrap().clone();
    assert!(item.check.is_none(), "{item:?}");
    assert_eq!(key(&mut app, 'r'), vec![]);
    assert!(
        app.checklists
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("no automatic check")
    );
}

#[test]
fn y_asks_for_a_note_and_enter_records_the_confirmation() {
    let mut app = open_app();
    assert_eq!(key(&mut app, 'y'), vec![]);
    assert_eq!(
        app.checklists.prompt.as_ref().unwrap().kind,
        NoteKind::Confirm
    );
    // Letters that are keys elsewhere (q, c, r, y) are text in the prompt.
    typed(&mut app, "qcry b-2041");
    code(&mut app, KeyCode::Backspace);
    assert!(app.checklists.open);
    let effects = code(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![Effect::Checklist(ChecklistOp::Confirm {
            checklist: "pre-deploy".into(),
            item: "backup".into(),
            note: "qcry b-204".into(),
        })]
    );
    assert!(app.checklists.prompt.is_none());
    assert!(app.checklists.is_running("pre-deploy", "backup"));
}

#[test]
fn an_empty_note_is_not_sent_and_esc_cancels_the_prompt() {
    let mut app = open_app();
    key(&mut app, 's');
    typed(&mut app, "   ");
    assert_eq!(code(&mut app, KeyCode::Enter), vec![]);
    assert!(app.checklists.prompt.is_some(), "still asking");
    assert!(
        app.checklists
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("reason")
    );
    typed(&mut app, "staging has no backups");
    code(&mut app, KeyCode::Esc);
    assert!(app.checklists.prompt.is_none());
    assert!(app.checklists.open, "Esc in the prompt keeps the overlay");
    assert!(app.checklists.running.is_none());
    key(&mut app, 's');
    typed(&mut app, "staging has no backups");
    assert_eq!(
        code(&mut app, KeyCode::Enter),
        vec![Effect::Checklist(ChecklistOp::Skip {
            checklist: "pre-deploy".into(),
            item: "backup".into(),
            reason: "staging has no backups".into(),
        })]
    );
}

#[test]
fn n_starts_a_new_run_and_the_result_replaces_the_view() {
    let mut app = open_app();
    assert_eq!(
        key(&mut app, 'n'),
        vec![Effect::Checklist(ChecklistOp::NewRun {
            checklist: "pre-deploy".into()
        })]
    );
    let mut fresh = sample::checklists().remove(0);
    fresh.run_id = Some(13);
    fresh.state = RunState::InProgress;
    update(
        &mut app,
        Msg::ChecklistDone {
            op: ChecklistOp::NewRun {
                checklist: "pre-deploy".into(),
            },
            result: Ok(fresh),
        },
    );
    let v = app.checklists.view().unwrap();
    assert_eq!(v.run_id, Some(13));
    assert!(v.items.iter().all(|i| i.state == ItemState::Pending));
    assert!(
        app.checklists
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("new run #13")
    );
}

#[test]
fn a_result_arriving_after_close_still_updates_the_state() {
    let mut app = open_app();
    key(&mut app, 'r');
    code(&mut app, KeyCode::Esc);
    assert!(!app.checklists.open);
    let v = with(&app, "backup", ItemState::Failed);
    update(
        &mut app,
        Msg::ChecklistDone {
            op: ChecklistOp::RunCheck {
                checklist: "pre-deploy".into(),
                item: "backup".into(),
            },
            result: Ok(v),
        },
    );
    assert!(app.checklists.running.is_none());
    assert_eq!(app.checklists.views[0].items[0].state, ItemState::Failed);
    // Reopening while nothing runs reloads from the database.
    assert_eq!(
        key(&mut app, 'c'),
        vec![Effect::Checklist(ChecklistOp::Load), Effect::CheckHealth]
    );
}

#[test]
fn reopening_while_a_check_runs_does_not_reload_over_it() {
    let mut app = open_app();
    key(&mut app, 'r');
    code(&mut app, KeyCode::Esc);
    assert_eq!(key(&mut app, 'c'), vec![]);
    assert!(app.checklists.open);
}

#[test]
fn a_load_error_is_shown_and_logged() {
    let mut app = sample::connected(Environment::Production, 3, vec![], vec![], true);
    key(&mut app, 'c');
    update(&mut app, Msg::Checklists(Err("connection refused".into())));
    assert_eq!(
        app.checklists.load_error.as_deref(),
        Some("connection refused")
    );
    assert!(!app.checklists.loading);
    assert!(
        app.log
            .iter()
            .any(|l| l.text.contains("checklists not loaded"))
    );
    assert_eq!(
        key(&mut app, 'r'),
        vec![],
        "nothing to run without a checklist"
    );
}

#[test]
fn ctrl_c_in_the_overlay_and_in_the_prompt_quits() {
    let mut app = open_app();
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(app.quit);
    let mut app = open_app();
    key(&mut app, 'y');
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(app.quit);
}

#[test]
fn question_mark_opens_help_over_the_overlay_and_esc_returns_to_it() {
    let mut app = open_app();
    key(&mut app, '?');
    assert!(matches!(app.popup, Some(Popup::Help { .. })));
    code(&mut app, KeyCode::Esc);
    assert!(app.popup.is_none());
    assert!(app.checklists.open);
}

#[test]
fn quitting_while_a_check_runs_asks_first() {
    let mut app = open_app();
    key(&mut app, 'r');
    code(&mut app, KeyCode::Esc);
    key(&mut app, 'q');
    assert!(!app.quit);
    assert!(matches!(app.popup, Some(Popup::QuitWhileRunning)));
    key(&mut app, 'y');
    assert!(app.quit);
}
