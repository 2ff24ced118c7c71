//! Snapshots of the Backfills pane and its dialogs at 80×24 and 120×40 from fixed sample rows
//! (`app::backfills::sample`), plus style checks a text snapshot cannot see.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use crate::config::Environment;
use crate::event::Event;
use crate::tui::app::backfills::sample as rows;
use crate::tui::app::{App, BackfillMsg, DryPurpose, Msg, update};
use crate::tui::sample;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn terminal(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| super::super::draw(app, f)).expect("draw");
    t
}

fn snapshot(name: &str, app: &App) {
    for (w, h) in SIZES {
        let t = terminal(app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

fn key(app: &mut App, c: char) {
    let mods = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    update(app, Msg::Key(KeyEvent::new(KeyCode::Char(c), mods)));
}

/// Connected at 0003, the sample rows polled, the Backfills pane focused on row `select`.
fn app(env: Environment, color: bool, select: usize) -> App {
    let mut app = sample::connected(env, 3, vec![], vec![], color);
    update(
        &mut app,
        Msg::Backfill(BackfillMsg::Overview(Ok(rows::rows()))),
    );
    key(&mut app, '5');
    for _ in 0..select {
        key(&mut app, 'j');
    }
    app
}

fn dry_ran(app: &mut App, purpose: DryPurpose) {
    // As if `b`/`B` asked for it: only an awaited dry run is shown.
    app.backfills.dry_running = Some(("hashes".into(), purpose));
    update(
        app,
        Msg::Backfill(BackfillMsg::DryRan {
            name: "hashes".into(),
            purpose,
            result: Ok(rows::dry_run("hashes")),
        }),
    );
}

#[test]
fn backfills_running_with_progress() {
    snapshot("backfills_running", &app(Environment::Development, true, 0));
}

#[test]
fn backfills_failed_with_error() {
    snapshot("backfills_failed", &app(Environment::Development, true, 1));
}

#[test]
fn backfills_no_color() {
    snapshot(
        "backfills_no_color",
        &app(Environment::Development, false, 1),
    );
}

#[test]
fn backfills_dry_run_dialog() {
    let mut app = app(Environment::Development, true, 3);
    dry_ran(&mut app, DryPurpose::Show);
    snapshot("backfills_dry_run", &app);
}

#[test]
fn backfills_confirm_run_on_production() {
    let mut app = app(Environment::Production, true, 3);
    dry_ran(&mut app, DryPurpose::Confirm);
    snapshot("backfills_confirm_run", &app);
}

#[test]
fn backfills_run_from_this_screen_retrying() {
    let mut app = app(Environment::Development, true, 3);
    key(&mut app, 'B');
    update(
        &mut app,
        Msg::Backfill(BackfillMsg::DryRan {
            name: "cleanup".into(),
            purpose: DryPurpose::Confirm,
            result: Ok(rows::dry_run("cleanup")),
        }),
    );
    key(&mut app, 'y');
    for e in [
        Event::BackfillStarted {
            name: "cleanup".into(),
            run_id: 9,
            resumed_from: None,
            rows_done: 0,
            rows_estimate: 3000,
            batch_size: 2000,
        },
        Event::BackfillProgress {
            name: "cleanup".into(),
            rows_done: 2000,
            rows_estimate: 3000,
            rate: 1000.0,
            eta_s: Some(1.0),
            batch_ms_p50: 40,
            batch_ms_max: 55,
            batch_size: 2000,
            batches: 1,
            retries: 0,
        },
        Event::BackfillRetry {
            name: "cleanup".into(),
            attempt: 2,
            attempts: 10,
            reason: "lock_timeout (55P03)".into(),
            delay: std::time::Duration::from_millis(400),
            batch_size: 1000,
        },
    ] {
        update(&mut app, Msg::Progress(e));
    }
    snapshot("backfills_local_retrying", &app);
}

#[test]
fn failed_is_red_with_colour_and_nothing_is_coloured_without() {
    let find = |t: &Terminal<TestBackend>, needle: &str| {
        let buf = t.backend().buffer();
        (0..buf.area.height).find_map(|y| {
            let line: String = (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect();
            line.find(needle).map(|x| {
                let col = line[..x].chars().count() as u16;
                buf[(col, y)].fg
            })
        })
    };
    let coloured = terminal(&app(Environment::Development, true, 1), 80, 24);
    assert_eq!(find(&coloured, "FAILED"), Some(Color::Red));
    let plain = terminal(&app(Environment::Development, false, 1), 80, 24);
    assert_eq!(find(&plain, "FAILED"), Some(Color::Reset));
    let buf = plain.backend().buffer();
    assert!(
        buf.content()
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR: no cell is coloured"
    );
}
