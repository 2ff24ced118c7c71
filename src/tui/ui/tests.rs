//! Screen snapshots at 80×24 and 120×40 (TestBackend + insta; the states come from
//! `tui::sample`, so pids, ages and timestamps are fixed), plus style checks that text
//! snapshots cannot see: production in red, nothing coloured under NO_COLOR.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use crate::catalog::{Catalog, Revision};
use crate::config::Environment;
use crate::ops::history::History;
use crate::plan::{Direction, Drift};
use crate::tui::app::{App, Monitor, Msg, Purpose, TargetInfo, update};
use crate::tui::sample;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn terminal(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| super::draw(app, f)).expect("draw");
    t
}

fn snapshot(name: &str, app: &App) {
    for (w, h) in SIZES {
        let t = terminal(app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), t.backend());
    }
}

fn key(app: &mut App, c: char) {
    update(
        app,
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
    );
}

fn history() -> Vec<crate::db::audit::Event> {
    vec![
        sample::event(4, "up", 2, 2, "failed"),
        sample::event(3, "down", 3, 2, "ok"),
        sample::event(2, "up", 0, 3, "ok"),
        sample::event(1, "cancel", 0, 0, "ok"),
    ]
}

#[test]
fn empty_catalog() {
    let target = sample::target(Environment::Development);
    let catalog = Catalog::default();
    let mut app = App::new(TargetInfo::from(&target), &catalog, true);
    let status = crate::ops::status::build(
        &target,
        &catalog,
        sample::status_at(&target, &sample::catalog(), 0).server,
        &[],
        None,
        vec![],
        None,
    );
    update(
        &mut app,
        sample::snapshot(&target, &catalog, status, vec![], None),
    );
    update(
        &mut app,
        Msg::History(Ok(History {
            applied: vec![],
            events: vec![],
        })),
    );
    snapshot("empty_catalog", &app);
}

#[test]
fn pending_work() {
    let mut app = sample::connected(Environment::Staging, 2, history(), vec![], true);
    key(&mut app, 'j');
    key(&mut app, 't');
    snapshot("pending_work", &app);
}

#[test]
fn pending_work_no_color_uses_letters() {
    let app = sample::connected(Environment::Staging, 2, history(), vec![], false);
    snapshot("pending_work_no_color", &app);
}

#[test]
fn sandbox_is_labelled() {
    let app = sample::connected(Environment::Sandbox, 2, vec![], vec![], true);
    let t = terminal(&app, 80, 24);
    assert!(t.backend().to_string().contains(" SANDBOX "));
}

#[test]
fn drift() {
    let target = sample::target(Environment::Production);
    let catalog = sample::catalog();
    let mut status = sample::status_at(&target, &catalog, 3);
    status.drift.push(Drift::ChecksumChanged {
        revision: Revision(2),
        name: "add_variants".into(),
        applied: 1,
        file: 2,
        change: crate::plan::Change::Content,
        diff: None,
    });
    status.revisions[1].drift = true;
    let mut app = sample::connected(Environment::Production, 3, history(), vec![], true);
    update(
        &mut app,
        sample::snapshot(&target, &catalog, status, vec![], None),
    );
    snapshot("drift", &app);
}

#[test]
fn unreachable() {
    let mut app = sample::connected(Environment::Production, 3, history(), vec![], true);
    let reason = "cannot connect to postgres://deploy@db1.internal:5432/orders: connection refused";
    update(
        &mut app,
        Msg::Monitor(Monitor::Unreachable {
            reason: reason.into(),
            retry_in_s: 8,
        }),
    );
    snapshot("unreachable", &app);
}

#[test]
fn lock_conflict() {
    let mut app = sample::connected(
        Environment::Production,
        3,
        history(),
        vec![sample::conflict(4200, 4121)],
        true,
    );
    key(&mut app, '3');
    snapshot("lock_conflict", &app);
}

#[test]
fn confirm_production_downgrade() {
    let mut app = sample::connected(Environment::Production, 4, history(), vec![], true);
    key(&mut app, 'd');
    let catalog = sample::catalog();
    let applied = crate::plan::Applied::catalog_through(&catalog, catalog.head());
    let plan = crate::plan::plan(
        &catalog,
        &applied,
        Direction::Down,
        crate::plan::TargetSpec::Steps(Direction::Down, 1),
    )
    .expect("plan");
    update(
        &mut app,
        Msg::Planned {
            purpose: Purpose::Confirm,
            result: Ok(sample::preview(plan)),
        },
    );
    key(&mut app, '0');
    key(&mut app, '0');
    snapshot("confirm_production_downgrade", &app);
}

#[test]
fn confirm_terminate_blocker() {
    let mut app = sample::connected(
        Environment::Production,
        3,
        history(),
        vec![sample::conflict(4200, 4121)],
        true,
    );
    key(&mut app, '3');
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('K'), KeyModifiers::SHIFT)),
    );
    snapshot("confirm_terminate_blocker", &app);
}

#[test]
fn help() {
    let mut app = sample::connected(Environment::Development, 3, vec![], vec![], true);
    key(&mut app, '?');
    snapshot("help", &app);
}

#[test]
fn production_badge_is_red_and_no_color_has_no_colour_at_all() {
    let app = sample::connected(
        Environment::Production,
        3,
        history(),
        vec![sample::conflict(4200, 4121)],
        true,
    );
    let t = terminal(&app, 80, 24);
    let buf = t.backend().buffer();
    let line: String = (0..80).map(|x| buf[(x, 0)].symbol().to_string()).collect();
    let x = line.find("PRODUCTION").expect("production badge") as u16;
    assert_eq!(buf[(x, 0)].bg, Color::Red);

    let plain = sample::connected(
        Environment::Production,
        3,
        history(),
        vec![sample::conflict(4200, 4121)],
        false,
    );
    let t = terminal(&plain, 80, 24);
    let coloured = t
        .backend()
        .buffer()
        .content
        .iter()
        .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
        .count();
    assert_eq!(coloured, 0, "NO_COLOR must not colour any cell");
}

#[test]
fn every_state_draws_at_tiny_sizes_without_panicking() {
    let mut app = sample::connected(
        Environment::Production,
        3,
        history(),
        vec![sample::conflict(4200, 4121)],
        true,
    );
    key(&mut app, '?');
    for (w, h) in [(1, 1), (10, 5), (40, 10), (79, 23), (300, 100)] {
        terminal(&app, w, h);
    }
}

#[test]
fn running_upgrade_blocked_by_a_lock() {
    use crate::event::Event;
    let mut app = sample::connected(
        Environment::Production,
        3,
        history(),
        vec![sample::conflict(4200, 4121)],
        true,
    );
    key(&mut app, 'u');
    let catalog = sample::catalog();
    let applied: Vec<_> = catalog
        .migrations
        .iter()
        .take(3)
        .map(|m| crate::plan::Applied {
            revision: m.revision,
            name: m.name.clone(),
            applied_on: String::new(),
            checksum: m.checksum,
            recorded: None,
        })
        .collect();
    let plan = crate::plan::plan(
        &catalog,
        &applied,
        Direction::Up,
        crate::plan::TargetSpec::Head,
    )
    .expect("plan");
    update(
        &mut app,
        Msg::Planned {
            purpose: Purpose::Confirm,
            result: Ok(sample::preview(plan)),
        },
    );
    key(&mut app, 'y');
    let blockers = sample::conflict(4200, 4121).blockers;
    for e in [
        Event::StepStarted {
            index: 1,
            total: 1,
            revision: Revision(4),
            name: "add_documents_index".into(),
            direction: Direction::Up,
        },
        Event::Statement {
            revision: Revision(4),
            line: 2,
            text: "CREATE INDEX CONCURRENTLY documents_id_idx ON documents (id)".into(),
        },
        Event::StepRetry {
            revision: Revision(4),
            attempt: 3,
            attempts: 10,
            reason: "lock_timeout (55P03)".into(),
            delay: std::time::Duration::from_millis(400),
            blockers,
        },
    ] {
        update(&mut app, Msg::Progress(e));
    }
    snapshot("running_upgrade_blocked", &app);
}

/// The overlay on pre-deploy half way through: local-testing running (`r`), the cursor on
/// rollback-plan (failed, with its evidence).
fn checklist_app() -> App {
    let mut app = sample::connected(Environment::Production, 3, history(), vec![], true);
    key(&mut app, 'c');
    update(
        &mut app,
        Msg::Checklists(Ok(sample::pre_deploy_in_progress())),
    );
    let health = sample::health_pending(&sample::target(Environment::Production));
    update(&mut app, Msg::HealthChecked(Box::new(health)));
    key(&mut app, 'j');
    key(&mut app, 'j');
    key(&mut app, 'r');
    key(&mut app, 'j');
    app
}

#[test]
fn checklist_overlay_with_a_running_check() {
    let app = checklist_app();
    snapshot("checklist_overlay", &app);
    let screen = terminal(&app, 80, 24).backend().to_string();
    assert!(screen.contains("running..."), "{screen}");
    assert!(screen.contains("needs confirmation"), "{screen}");
    assert!(screen.contains("0005_add_x has no down"), "{screen}");
    assert!(
        screen.contains("health DEGRADED · migrations pending (1)"),
        "{screen}"
    );
}

#[test]
fn checklist_note_prompt() {
    let mut app = sample::connected(Environment::Production, 3, history(), vec![], true);
    key(&mut app, 'c');
    update(
        &mut app,
        Msg::Checklists(Ok(sample::pre_deploy_in_progress())),
    );
    // The cursor is on backup (needs confirmation): confirm it with a note.
    key(&mut app, 'y');
    for c in "backup b-2041".chars() {
        key(&mut app, c);
    }
    snapshot("checklist_note_prompt", &app);
}

#[test]
fn checklist_overlay_draws_at_tiny_sizes_without_panicking() {
    let mut app = checklist_app();
    key(&mut app, 's');
    for (w, h) in [(1, 1), (10, 5), (40, 10), (79, 23), (300, 100)] {
        terminal(&app, w, h);
    }
}

#[test]
fn checklist_load_error() {
    let mut app = sample::connected(Environment::Production, 3, history(), vec![], true);
    key(&mut app, 'c');
    update(
        &mut app,
        Msg::Checklists(Err(
            "config/checklists/pre-deploy.toml: item id \"backup\" appears twice".into(),
        )),
    );
    let screen = terminal(&app, 80, 24).backend().to_string();
    assert!(screen.contains("could not be loaded"), "{screen}");
    assert!(screen.contains("appears twice"), "{screen}");
}

#[test]
fn long_revision_names_are_cut_not_wrapped() {
    let target = sample::target(Environment::Development);
    let mut catalog = sample::catalog();
    let long = "index_documents_concurrently_with_a_very_long_name";
    catalog.migrations.push(
        crate::catalog::Migration::new(Revision(9), long, "select 1;".into(), None)
            .expect("migration"),
    );
    let app = App::new(TargetInfo::from(&target), &catalog, false);
    let t = terminal(&app, 80, 24);
    let screen: Vec<String> = (0..24)
        .map(|y| {
            (0..80)
                .map(|x| t.backend().buffer()[(x, y)].symbol().to_string())
                .collect()
        })
        .collect();
    let row = screen
        .iter()
        .position(|l| l.contains("0009"))
        .expect("row for 0009");
    assert!(
        screen[row].contains("index_documents_concurr"),
        "{}",
        screen[row]
    );
    assert!(
        screen[row].contains('…'),
        "cut with an ellipsis: {}",
        screen[row]
    );
    assert!(
        !screen[row + 1].contains("with_a_very_long_name"),
        "no wrapped tail: {}",
        screen[row + 1]
    );
}

#[test]
fn confirm_upgrade_shows_lint_findings_and_refusing_gates_before_yes() {
    let mut app = sample::connected(Environment::Production, 3, history(), vec![], true);
    update(
        &mut app,
        Msg::Planned {
            purpose: Purpose::Confirm,
            result: Ok(sample::refused_upgrade()),
        },
    );
    snapshot("confirm_upgrade_refused_by_gates", &app);
    let screen = format!("{}", terminal(&app, 80, 24).backend());
    for needle in [
        "REFUSED lint",
        "REFUSED checklist: refusing to upgrade: no pre-deploy checklist",
        "require-concurrent-index-creation",
        "REFUSED: y records the attempt (nothing runs)",
    ] {
        assert!(
            screen.contains(needle),
            "{needle:?} not on screen:\n{screen}"
        );
    }
}

/// Issue 12, defect 6: at 80 columns the header keeps the environment, target, TLS state and the
/// lock holder whole (the brand, role, address and version go first, never half of `15.20`);
/// durations keep their unit; a long statement in a confirmation wraps instead of being cut.
/// At 160×45 everything fits.
#[test]
fn truncation_never_changes_meaning() {
    let mut events = history();
    events[0].duration_ms = Some(72);
    let mut app = sample::connected(Environment::Production, 3, events, vec![], true);
    if let Some(s) = app.status.as_mut() {
        s.server.version = "15.20".into();
        s.server.tls = crate::tls::TlsState {
            mode: crate::tls::SslMode::VerifyFull,
            encrypted: true,
            protocol: Some("TLSv1.3"),
            verified: crate::tls::Verified::Full,
            unix_socket: false,
        };
        s.runner_lock = Some(sample::holder());
    }
    let sql = "UPDATE proposals SET variants = jsonb_build_object('default', jsonb_build_object('title', title, 'created_by', 'migration 0004')) WHERE variants IS NULL AND title IS NOT NULL AND id BETWEEN 1 AND 1000000;";
    let plan = crate::plan::Plan {
        direction: Direction::Up,
        from: Revision(3),
        to: Revision(4),
        steps: vec![crate::plan::Step {
            revision: Revision(4),
            name: "fill_variants".into(),
            direction: Direction::Up,
            sql: sql.into(),
            no_transaction: false,
            checksum: 0,
            down: None,
            out_of_order: false,
        }],
    };
    let screen = |app: &App, w, h| {
        let t = terminal(app, w, h);
        let b = t.backend().buffer().clone();
        let rows: Vec<String> = (0..h)
            .map(|y| (0..w).map(|x| b[(x, y)].symbol().to_string()).collect())
            .collect();
        (t, rows)
    };
    let (t, rows) = screen(&app, 80, 24);
    insta::assert_snapshot!("truncation_main_80x24", t.backend());
    assert!(rows[0].contains("orders  PRODUCTION"), "{}", rows[0]);
    assert!(rows[0].contains("TLS verify-full"), "{}", rows[0]);
    assert!(
        !rows[0].contains("PG 15.2 ") && !rows[0].ends_with("PG 15.2"),
        "{}",
        rows[0]
    );
    assert!(rows[1].contains("runner lock: pid 5150"), "{}", rows[1]);
    assert!(rows.iter().any(|r| r.contains("72ms")), "{rows:?}");
    assert!(!rows.iter().any(|r| r.contains("72m│")), "{rows:?}");
    // Production: the top line is the red bar.
    assert_eq!(t.backend().buffer()[(70, 0)].bg, Color::Red);
    let (t, rows) = screen(&app, 160, 45);
    insta::assert_snapshot!("truncation_main_160x45", t.backend());
    assert!(rows[0].contains("PG 15.20"), "{}", rows[0]);
    update(
        &mut app,
        Msg::Planned {
            purpose: Purpose::Confirm,
            result: Ok(sample::preview(plan)),
        },
    );
    for (w, h) in [(80, 24), (160, 45)] {
        let (t, rows) = screen(&app, w, h);
        insta::assert_snapshot!(format!("truncation_confirm_{w}x{h}"), t.backend());
        let text = rows.join(" ");
        assert!(
            text.contains("1000000;"),
            "the statement's end is on screen at {w}x{h}:\n{}",
            rows.join("\n")
        );
    }
}

fn rows_of(app: &App, w: u16, h: u16) -> Vec<String> {
    let t = terminal(app, w, h);
    let b = t.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| b[(x, y)].symbol().to_string()).collect())
        .collect()
}

/// Issue 12, defect 7: a backfill that ended paused or cancelled is not `ok` in History.
#[test]
fn paused_and_cancelled_backfills_are_not_ok_in_history() {
    let mut paused = sample::event(2, "backfill hashes", 0, 0, "ok");
    paused.from_revision = None;
    paused.to_revision = None;
    paused.detail = serde_json::json!({"state": "paused"});
    let mut cancelled = paused.clone();
    cancelled.id = 1;
    cancelled.detail = serde_json::json!({"state": "cancelled"});
    let app = sample::connected(
        Environment::Development,
        3,
        vec![paused, cancelled],
        vec![],
        true,
    );
    let rows = rows_of(&app, 120, 40);
    assert!(
        rows.iter().any(|r| r.contains("backfill hashes paused")),
        "{rows:#?}"
    );
    assert!(
        rows.iter().any(|r| r.contains("backfill hashes cancelled")),
        "{rows:#?}"
    );
    assert!(
        !rows.iter().any(|r| r.contains("backfill hashes ok")),
        "{rows:#?}"
    );
}

/// Issue 12, defect 7: the status line shows the newest message for a while, then `ready`.
#[test]
fn status_line_messages_clear_after_a_while() {
    let mut app = sample::connected(Environment::Development, 3, vec![], vec![], true);
    app.log(crate::event::Level::Info, "target revision set to 0004");
    let status = |app: &App| rows_of(app, 80, 24)[22].clone();
    assert!(status(&app).contains("target revision set to 0004"));
    app.now += crate::tui::app::STATUS_MESSAGE_FOR;
    assert_eq!(status(&app).trim(), "ready");
}

#[test]
fn detail_of_a_failed_event() {
    let mut app = sample::connected(Environment::Production, 3, history(), vec![], true);
    key(&mut app, '2');
    key(&mut app, 'v');
    snapshot("detail_failed_event", &app);
}

#[test]
fn fleet_idle() {
    let app = sample::fleet(Environment::Staging, true);
    snapshot("fleet_idle", &app);
}

#[test]
fn fleet_idle_no_color() {
    let app = sample::fleet(Environment::Staging, false);
    snapshot("fleet_idle_no_color", &app);
    let t = terminal(&app, 80, 24);
    let colored = t
        .backend()
        .buffer()
        .content()
        .iter()
        .any(|c| c.fg != Color::Reset || c.bg != Color::Reset);
    assert!(!colored, "NO_COLOR: nothing is coloured");
}

#[test]
fn fleet_mid_rollout() {
    let mut app = sample::fleet_rollout(true);
    // The cursor on the refused row: its reason in full below the table (no note column at 80).
    for _ in 0..4 {
        key(&mut app, 'j');
    }
    snapshot("fleet_mid_rollout", &app);
}

#[test]
fn fleet_confirm_production_is_typed() {
    let mut app = sample::fleet(Environment::Staging, true);
    update(
        &mut app,
        Msg::Fleet(crate::tui::app::FleetMsg::Planned(Ok(sample::fleet_plan()))),
    );
    snapshot("fleet_confirm_production", &app);
}

#[test]
fn fleet_confirm_backfill_names_the_backfill() {
    let mut app = sample::fleet(Environment::Staging, true);
    let mut plan = sample::fleet_plan();
    plan.job = crate::tui::app::FleetJob::Backfill("hashes".into());
    plan.text = "TARGET      ENV   PLAN       STEPS NOTE\n\
                 eu-1        PROD  -              0 backfill\n\
                 eu-2        PROD  -              0 backfill\n\
                 stage       stage -              0 backfill\n\
                 zz-gone     PROD  ?              0 not run: backfill \"hashes\" is not defined for zz-gone\n"
        .into();
    update(
        &mut app,
        Msg::Fleet(crate::tui::app::FleetMsg::Planned(Ok(plan))),
    );
    snapshot("fleet_confirm_backfill", &app);
}

#[test]
fn fleet_production_marker_is_red() {
    let app = sample::fleet(Environment::Staging, true);
    let t = terminal(&app, 80, 24);
    let buf = t.backend().buffer();
    let red = (0..buf.area.height).any(|y| {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        line.contains("eu-1") && (0..buf.area.width).any(|x| buf[(x, y)].bg == Color::Red)
    });
    assert!(red, "PROD is drawn in red on the eu-1 row");
}
