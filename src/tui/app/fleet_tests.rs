//! Pure `update` tests of the Fleet pane: keys, commands, plans and rollout events in; rows,
//! dialogs and effects out. No terminal, no database.

use crate::tui::sample::{code, ctrl_c, key};
use crossterm::event::KeyCode;

use super::*;
use crate::config::Environment;
use crate::error::ExitCode;
use crate::fleet::rollout::{Confirmation, TargetState};
use crate::tui::sample as screen;

fn gather_all() -> Vec<Effect> {
    vec![Effect::Fleet(FleetEffect::Gather { group: None })]
}

fn plan(production: usize) -> FleetPlan {
    let mut p = screen::fleet_plan();
    p.confirmation = Confirmation {
        with_work: 3,
        production,
        word: "all".into(),
    };
    p
}

fn event(target: &str, state: TargetState) -> Msg {
    Msg::Fleet(FleetMsg::Event(crate::fleet::rollout::FleetEvent::Target {
        target: target.into(),
        canary: false,
        state,
    }))
}

/// The sample fleet on screen, a non-production rollout confirmed and running.
fn running() -> App {
    let mut app = screen::fleet(Environment::Staging, true);
    update(&mut app, key('u'));
    update(&mut app, Msg::Fleet(FleetMsg::Planned(Ok(plan(0)))));
    let effects = update(&mut app, key('y'));
    assert_eq!(
        effects,
        vec![Effect::Fleet(FleetEffect::Run {
            id: "fleet-20261203T091500Z-1a2b".into()
        })]
    );
    assert!(app.fleet.running());
    app
}

fn last_log(app: &App) -> String {
    app.log.back().map(|l| l.text.clone()).unwrap_or_default()
}

#[test]
fn six_and_shift_f_open_the_pane_and_read_the_rows_once() {
    let mut app = screen::connected(Environment::Staging, 3, vec![], vec![], true);
    assert_eq!(update(&mut app, key('6')), gather_all());
    assert_eq!(app.focus, Pane::Fleet);
    update(&mut app, key('1'));
    // A gather in flight is not asked for twice.
    assert_eq!(update(&mut app, key('F')), vec![]);
    assert_eq!(app.focus, Pane::Fleet);
    update(
        &mut app,
        Msg::Fleet(FleetMsg::Gathered {
            group: None,
            result: Ok(screen::fleet_rows()),
        }),
    );
    assert_eq!(app.fleet.rows.len(), 6);
    assert_eq!(app.pane(Pane::Fleet).visible.len(), 6);
    update(&mut app, key('1'));
    assert_eq!(
        update(&mut app, key('6')),
        vec![],
        "read once, r reads again"
    );
    let effects = update(&mut app, key('r'));
    assert!(effects.contains(&gather_all()[0]), "{effects:?}");
}

#[test]
fn tab_reaches_the_fleet_pane_after_backfills() {
    let mut app = screen::connected(Environment::Staging, 3, vec![], vec![], true);
    update(&mut app, key('5'));
    assert_eq!(update(&mut app, code(KeyCode::Tab)), gather_all());
    assert_eq!(app.focus, Pane::Fleet);
    update(&mut app, code(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Revisions);
}

#[test]
fn colon_fleet_chooses_a_group_and_drops_rows_of_the_old_one() {
    let mut app = screen::fleet(Environment::Staging, true);
    update(&mut app, key(':'));
    for c in "fleet prod".chars() {
        update(&mut app, key(c));
    }
    let effects = update(&mut app, code(KeyCode::Enter));
    assert_eq!(
        effects,
        vec![Effect::Fleet(FleetEffect::Gather {
            group: Some("prod".into())
        })]
    );
    assert!(app.fleet.rows.is_empty());
    // A late answer for the old group is not this group's rows.
    update(
        &mut app,
        Msg::Fleet(FleetMsg::Gathered {
            group: None,
            result: Ok(screen::fleet_rows()),
        }),
    );
    assert!(app.fleet.rows.is_empty() && app.fleet.gathering);
    update(
        &mut app,
        Msg::Fleet(FleetMsg::Gathered {
            group: Some("prod".into()),
            result: Err("no group named \"prod\" in fleet.toml; known groups: f".into()),
        }),
    );
    assert!(
        app.fleet
            .error
            .as_deref()
            .unwrap_or("")
            .contains("known groups")
    );
}

#[test]
fn u_plans_then_a_production_rollout_needs_the_word_typed() {
    let mut app = screen::fleet(Environment::Staging, true);
    assert_eq!(
        update(&mut app, key('u')),
        vec![Effect::Fleet(FleetEffect::Plan {
            group: None,
            job: FleetJob::Up("head".into())
        })]
    );
    assert_eq!(update(&mut app, key('u')), vec![], "one plan at a time");
    update(&mut app, Msg::Fleet(FleetMsg::Planned(Ok(plan(2)))));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("the confirmation is open");
    };
    assert_eq!(c.must_type.as_deref(), Some("all"));
    // `y` is a letter of the word here, not a yes; a wrong word runs nothing.
    assert_eq!(update(&mut app, key('y')), vec![]);
    assert_eq!(update(&mut app, code(KeyCode::Enter)), vec![]);
    assert!(!app.fleet.running());
    assert!(last_log(&app).contains("type all exactly"));
    for c in "all".chars() {
        update(&mut app, key(c));
    }
    let effects = update(&mut app, code(KeyCode::Enter));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Fleet(FleetEffect::Run { .. })]
    ));
    assert!(app.fleet.running());
}

#[test]
fn esc_on_the_confirmation_runs_nothing_and_nothing_to_do_asks_nothing() {
    let mut app = screen::fleet(Environment::Staging, true);
    update(&mut app, key('u'));
    update(&mut app, Msg::Fleet(FleetMsg::Planned(Ok(plan(0)))));
    assert_eq!(update(&mut app, code(KeyCode::Esc)), vec![]);
    assert!(app.popup.is_none() && !app.fleet.running());
    update(&mut app, key('u'));
    let mut none = plan(0);
    none.confirmation.with_work = 0;
    update(&mut app, Msg::Fleet(FleetMsg::Planned(Ok(none))));
    assert!(app.popup.is_none());
    assert!(
        last_log(&app).contains("nothing to run"),
        "{}",
        last_log(&app)
    );
    update(&mut app, key('u'));
    update(
        &mut app,
        Msg::Fleet(FleetMsg::Planned(Err(
            "canary \"eu-9\" is not a member of this fleet".into(),
        ))),
    );
    assert!(app.popup.is_none() && !app.fleet.planning);
}

#[test]
fn rollout_events_become_each_rows_live_state() {
    let mut app = running();
    update(
        &mut app,
        event(
            "eu-2",
            TargetState::Running {
                step: 1,
                total: 2,
                revision: crate::catalog::Revision(3),
            },
        ),
    );
    let blocked = || {
        event(
            "tenant-acme",
            TargetState::Blocked {
                revision: crate::catalog::Revision(4),
                pids: vec![4121],
            },
        )
    };
    update(&mut app, blocked());
    let logged = app.log.len();
    update(&mut app, blocked());
    assert_eq!(app.log.len(), logged, "a repeated state is logged once");
    let live = |app: &App, name: &str| {
        app.fleet
            .rows
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.live.as_ref())
            .map(|l| l.state.label())
    };
    assert_eq!(live(&app, "eu-2").as_deref(), Some("running 1/2"));
    assert_eq!(
        live(&app, "tenant-acme").as_deref(),
        Some("blocked by pid 4121")
    );
    assert_eq!(app.fleet.counts(), (0, 2, 0, 0));
}

#[test]
fn esc_and_the_first_quit_stop_launching_the_second_asks() {
    let mut app = running();
    assert_eq!(
        update(&mut app, code(KeyCode::Esc)),
        vec![Effect::Fleet(FleetEffect::Stop)]
    );
    assert!(app.fleet.rollout.as_ref().is_some_and(|r| r.stopping));
    assert_eq!(update(&mut app, code(KeyCode::Esc)), vec![]);
    let mut app = running();
    assert_eq!(
        update(&mut app, ctrl_c()),
        vec![Effect::Fleet(FleetEffect::Stop)]
    );
    assert!(!app.quit);
    update(&mut app, key('q'));
    assert!(matches!(app.popup, Some(Popup::QuitWhileRunning)));
    assert!(!app.quit);
}

#[test]
fn enter_opens_the_target_like_colon_target_but_not_during_a_rollout() {
    let mut app = screen::fleet(Environment::Staging, true);
    update(&mut app, key('j'));
    assert_eq!(
        update(&mut app, code(KeyCode::Enter)),
        vec![Effect::SwitchTarget("eu-2".into())]
    );
    let mut app = running();
    update(&mut app, key('j'));
    assert_eq!(update(&mut app, code(KeyCode::Enter)), vec![]);
    assert!(last_log(&app).contains("wait for it to end"));
}

#[test]
fn single_target_actions_wait_for_the_fleet_rollout() {
    let mut app = running();
    update(&mut app, key('1'));
    assert_eq!(update(&mut app, key('u')), vec![]);
    assert!(last_log(&app).contains("fleet rollout is running"));
}

#[test]
fn a_finished_rollout_keeps_its_results_until_r() {
    let mut app = running();
    update(
        &mut app,
        event(
            "eu-1",
            TargetState::Done {
                from: crate::catalog::Revision(2),
                to: crate::catalog::Revision(4),
                steps: 2,
                duration_ms: 50,
            },
        ),
    );
    let summary = crate::fleet::rollout::Summary {
        run_id: "fleet-20261203T091500Z-1a2b".into(),
        group: None,
        to: "head".into(),
        operator: "alice@bastion".into(),
        started_at: "2026-12-03T09:15:00Z".into(),
        duration_ms: 900,
        stopped: None,
        targets: vec![],
        exit_code: ExitCode::Ok,
    };
    let effects = update(&mut app, Msg::Fleet(FleetMsg::Finished(Ok(summary))));
    assert_eq!(
        effects,
        vec![
            Effect::Fleet(FleetEffect::Gather { group: None }),
            Effect::Poll,
            Effect::LoadHistory
        ]
    );
    assert!(!app.fleet.running());
    assert!(
        app.log
            .iter()
            .any(|l| l.text.contains("fleet-20261203T091500Z-1a2b: 0 done"))
    );
    update(
        &mut app,
        Msg::Fleet(FleetMsg::Gathered {
            group: None,
            result: Ok(screen::fleet_rows()),
        }),
    );
    assert!(
        app.fleet.rows[0].live.is_some(),
        "kept after the automatic read"
    );
    update(&mut app, key('r'));
    assert!(app.fleet.rows.iter().all(|r| r.live.is_none()));
}

#[test]
fn v_reads_a_row_whole() {
    let mut app = screen::fleet(Environment::Staging, true);
    update(&mut app, code(KeyCode::End));
    update(&mut app, key('v'));
    let Some(Popup::Detail(d)) = &app.popup else {
        panic!("detail open");
    };
    assert_eq!(d.title, "fleet target zz-gone");
    assert!(d.lines.iter().any(|l| l.contains("connection refused")));
}

#[test]
fn a_target_switch_mid_read_leaves_nothing_in_flight() {
    let mut app = screen::fleet(Environment::Staging, true);
    update(&mut app, key('r'));
    update(&mut app, key('u'));
    assert!(app.fleet.gathering && app.fleet.planning);
    let mut other = screen::connected(Environment::Staging, 3, vec![], vec![], true);
    other.fleet = std::mem::take(&mut app.fleet).carried();
    other.refresh_view(Pane::Fleet);
    assert_eq!(other.fleet.rows.len(), 6);
    update(&mut other, key('6'));
    assert_eq!(update(&mut other, key('r')).last(), gather_all().last());
    assert_eq!(
        update(&mut other, key('u')),
        vec![Effect::Fleet(FleetEffect::Plan {
            group: None,
            job: FleetJob::Up("head".into())
        })]
    );
}

/// `:LINE` typed and Enter pressed.
fn command(app: &mut App, line: &str) -> Vec<Effect> {
    update(app, key(':'));
    for c in line.chars() {
        update(app, key(c));
    }
    update(app, code(KeyCode::Enter))
}

#[test]
fn colon_fleet_up_and_fleet_backfill_plan_their_job_and_the_title_says_which() {
    let mut app = screen::connected(Environment::Staging, 3, vec![], vec![], true);
    assert_eq!(
        command(&mut app, "fleet-backfill hashes"),
        vec![Effect::Fleet(FleetEffect::Plan {
            group: None,
            job: FleetJob::Backfill("hashes".into())
        })]
    );
    assert_eq!(app.focus, Pane::Fleet, "the plan shows on the Fleet pane");
    assert!(last_log(&app).contains("planning the backfill hashes"));
    let mut p = plan(1);
    p.job = FleetJob::Backfill("hashes".into());
    update(&mut app, Msg::Fleet(FleetMsg::Planned(Ok(p))));
    let Some(Popup::Confirm(c)) = &app.popup else {
        panic!("the confirmation is open");
    };
    assert!(
        matches!(&c.pending, Pending::Fleet(p) if p.job == FleetJob::Backfill("hashes".into())),
        "the backfill's plan is asked about"
    );
    update(&mut app, code(KeyCode::Esc));
    assert!(
        app.popup.is_none() && !app.fleet.running(),
        "Esc runs nothing"
    );
    assert_eq!(
        command(&mut app, "fu 0002"),
        vec![Effect::Fleet(FleetEffect::Plan {
            group: None,
            job: FleetJob::Up("0002".into())
        })]
    );
    update(&mut app, Msg::Fleet(FleetMsg::Planned(Err("x".into()))));
    assert_eq!(command(&mut app, "fleet-backfill"), vec![]);
    assert!(last_log(&app).contains(":fleet-backfill needs a backfill name"));
}

#[test]
fn rows_are_read_again_every_30s_while_the_pane_is_in_front_and_idle() {
    use std::time::Duration;
    let mut app = screen::fleet(Environment::Staging, true);
    // The sample's rows were read 12 s ago.
    assert_eq!(update(&mut app, Msg::Tick), vec![]);
    app.now += Duration::from_secs(18);
    assert_eq!(
        update(&mut app, Msg::Tick),
        gather_all(),
        "30 s after the read"
    );
    assert_eq!(update(&mut app, Msg::Tick), vec![], "one read at a time");
    // That read took 6 s: the next waits ten times as long, 60 s.
    app.now += Duration::from_secs(6);
    update(
        &mut app,
        Msg::Fleet(FleetMsg::Gathered {
            group: None,
            result: Ok(screen::fleet_rows()),
        }),
    );
    app.now += Duration::from_secs(59);
    assert_eq!(update(&mut app, Msg::Tick), vec![]);
    app.now += Duration::from_secs(1);
    // Another pane in front: the fleet is not read.
    app.focus = Pane::Revisions;
    assert_eq!(update(&mut app, Msg::Tick), vec![]);
    app.focus = Pane::Fleet;
    // A dialog open, or a rollout running: not read either.
    update(&mut app, key('u'));
    update(&mut app, Msg::Fleet(FleetMsg::Planned(Ok(plan(0)))));
    assert_eq!(update(&mut app, Msg::Tick), vec![]);
    update(&mut app, key('y'));
    assert!(app.fleet.running());
    assert_eq!(update(&mut app, Msg::Tick), vec![]);
}

#[test]
fn a_failed_read_is_not_polled_again_and_shows_no_age() {
    let mut app = screen::connected(Environment::Staging, 3, vec![], vec![], true);
    assert_eq!(update(&mut app, key('6')), gather_all());
    update(
        &mut app,
        Msg::Fleet(FleetMsg::Gathered {
            group: None,
            result: Err("no targets configured in pgshift.toml".into()),
        }),
    );
    assert!(app.fleet.read_at.is_none());
    app.now += std::time::Duration::from_secs(120);
    assert_eq!(
        update(&mut app, Msg::Tick),
        vec![],
        "r reads again, not a timer"
    );
    assert_eq!(update(&mut app, key('r')).last(), gather_all().last());
}
