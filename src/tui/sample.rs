//! Deterministic screen states (fixed pids, ages, timestamps) for the snapshot tests and the render
//! benchmark. Built through the real `update` path from the real core types, never drawn in use.

use std::path::PathBuf;
use std::time::Duration;

use super::app::{App, Monitor, Msg, TargetInfo, update};
use crate::catalog::{Catalog, Migration, Revision};
use crate::config::{ConnInfo, Environment, Guard, Target};
use crate::db::ServerInfo;
use crate::db::audit::Event;
use crate::db::blockers::{Blocker, Conflict};
use crate::db::lock::Holder;
use crate::ops::gate::{self, Caller, Checklists, Gate, GateResult, GateState, Policy};
use crate::ops::history::History;
use crate::ops::migrate::Preview;
use crate::ops::status::{self, Status};
use crate::plan::{Applied, Direction, Plan, TargetSpec};
use crate::runbook::{ChecklistView, ItemState, RunState};

/// A key press as the terminal delivers it (upper case arrives with Shift).
pub fn key(c: char) -> Msg {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mods = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    Msg::Key(KeyEvent::new(KeyCode::Char(c), mods))
}

/// A special key (Enter, Esc, Tab, arrows) without modifiers.
pub fn code(c: crossterm::event::KeyCode) -> Msg {
    Msg::Key(crossterm::event::KeyEvent::new(
        c,
        crossterm::event::KeyModifiers::NONE,
    ))
}

pub fn ctrl_c() -> Msg {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
}

pub fn target(environment: Environment) -> Target {
    Target {
        name: if environment == Environment::Sandbox {
            "sandbox".into()
        } else {
            "orders".into()
        },
        conn: ConnInfo::parse("postgres://deploy@db1.internal:5432/orders")
            .unwrap_or_else(|_| unreachable_conn()),
        environment,
        guard: Guard::default(),
        lock_wait: Duration::from_secs(30),
        migrations: PathBuf::from("migrations"),
        scratch_url: None,
        require_checklist_hours: None,
        source: "sample".into(),
        expected_replicas: Vec::new(),
        out_of_order: false,
    }
}

fn unreachable_conn() -> ConnInfo {
    ConnInfo::from_pg(tokio_postgres::Config::new())
}

/// The demo catalog's shape: 0003 irreversible, 0004 no-transaction.
pub fn catalog() -> Catalog {
    let m = |v: u32, name: &str, up: &str, down: Option<&str>| {
        Migration::new(Revision(v), name, up.into(), down.map(Into::into))
    };
    let migrations = [
        m(
            1,
            "baseline",
            "CREATE TABLE proposals (id bigint PRIMARY KEY, title text NOT NULL);",
            Some("DROP TABLE proposals;"),
        ),
        m(
            2,
            "add_variants",
            "ALTER TABLE proposals ADD COLUMN variants jsonb;",
            Some("ALTER TABLE proposals DROP COLUMN variants;"),
        ),
        m(
            3,
            "add_target_schema_tables",
            "CREATE TABLE documents (id bigint PRIMARY KEY);",
            None,
        ),
        m(
            4,
            "add_documents_index",
            "-- pgshift: no-transaction\nCREATE INDEX CONCURRENTLY documents_id_idx ON documents (id);",
            Some("DROP INDEX documents_id_idx;"),
        ),
    ];
    Catalog {
        dir: PathBuf::from("migrations"),
        migrations: migrations.into_iter().filter_map(Result::ok).collect(),
        ..Default::default()
    }
}

fn server() -> ServerInfo {
    ServerInfo {
        version: "15.14".into(),
        database: "orders".into(),
        role: "deploy".into(),
        read_only: false,
        // No TLS line in the header for a socket: keeps the layout snapshots about layout.
        tls: crate::tls::TlsState::unix_socket(),
    }
}

fn applied(catalog: &Catalog, up_to: u32) -> Vec<Applied> {
    let mut applied = Applied::catalog_through(catalog, crate::catalog::Revision(up_to));
    for a in &mut applied {
        a.applied_on = "2026-11-20T10:00:00Z".into();
    }
    applied
}

/// `pgshift health` at `up_to`, judged by the real `health::assess` (`last`: a failed run).
pub fn health_at(
    target: &Target,
    catalog: &Catalog,
    up_to: u32,
    last: Option<crate::health::LastFailure>,
) -> crate::health::Health {
    crate::health::assess(target, Ok(catalog), observed(catalog, up_to, last))
}

/// The last migration run failed (as `health` reads it from `pgshift_events`).
pub fn failed_up() -> crate::health::LastFailure {
    crate::health::LastFailure {
        action: "up".into(),
        outcome: crate::db::audit::Outcome::Failed,
        at: "2026-11-20T10:05:00Z".into(),
        operator: "alice@deploy-1".into(),
        error: "upgrade 0004 failed: relation \"documents\" does not exist (42P01)".into(),
        sqlstate: Some("42P01".into()),
    }
}

/// The monitor's snapshot of `status`, with `pgshift health` judged from the history that status
/// describes (a drifted row gets a wrong checksum, a missing file stays applied) and `last`.
pub fn snapshot(
    target: &Target,
    catalog: &Catalog,
    status: Status,
    conflicts: Vec<Conflict>,
    last: Option<crate::health::LastFailure>,
) -> Msg {
    let mut history: Vec<Applied> = status
        .revisions
        .iter()
        .filter(|r| r.applied)
        .map(|r| Applied {
            revision: r.revision,
            name: r.name.clone(),
            applied_on: r.applied_on.clone().unwrap_or_default(),
            checksum: catalog
                .get(r.revision)
                .map_or(0, |m| m.checksum.wrapping_add(u64::from(r.drift))),
            recorded: None,
        })
        .collect();
    for d in &status.drift {
        if !history.iter().any(|a| a.revision == d.revision()) {
            history.push(Applied {
                revision: d.revision(),
                name: "gone".into(),
                applied_on: String::new(),
                checksum: 0,
                recorded: None,
            });
        }
    }
    let mut observed = observed(catalog, 0, last);
    observed.history = observed.history.map(|(_, last)| (history, last));
    Msg::Monitor(Monitor::Snapshot {
        status: Box::new(status),
        conflicts,
        health: Box::new(crate::health::assess(target, Ok(catalog), observed)),
    })
}

fn observed(
    catalog: &Catalog,
    up_to: u32,
    last: Option<crate::health::LastFailure>,
) -> crate::health::Observed {
    crate::health::Observed {
        latency_ms: 3,
        version: server().version,
        read_only: false,
        history: Ok((applied(catalog, up_to), last)),
        invalid_indexes: vec![],
        backfills: crate::health::BackfillsHealth {
            state: crate::health::BackfillState::None,
            runs: vec![],
            error: None,
        },
        topology: None,
    }
}

pub fn status_at(target: &Target, catalog: &Catalog, up_to: u32) -> Status {
    status::build(
        target,
        catalog,
        server(),
        &applied(catalog, up_to),
        None,
        vec![],
        None,
    )
}

pub fn event(id: i64, action: &str, from: u32, to: u32, outcome: &str) -> Event {
    let secs = id % 60;
    Event {
        id,
        at: format!("2026-11-24T09:{:02}:{secs:02}.000+00:00", (id / 60) % 60),
        operator: "alice@bastion".into(),
        db_role: "deploy".into(),
        action: action.into(),
        from_revision: Some(Revision(from)),
        to_revision: Some(Revision(to)),
        outcome: outcome.into(),
        duration_ms: Some(1200 + id),
        error: (outcome == "failed").then(|| {
            "upgrade 0004 failed: lock_timeout (55P03) after 10 tries; blocked by pid 4121 (idle in transaction 14m). Nothing was applied for 0004.".into()
        }),
        detail: if outcome == "failed" { serde_json::json!({"sqlstate": "55P03"}) } else { serde_json::json!({}) },
    }
}

pub fn conflict(waiter_pid: i32, blocker_pid: i32) -> Conflict {
    Conflict {
        waiter: Blocker {
            pid: waiter_pid,
            user: "deploy".into(),
            application: "pgshift up alice@bastion".into(),
            state: "active".into(),
            xact_age_s: Some(3.0),
            query: "ALTER TABLE ingestion_runs ADD COLUMN error_text text".into(),
        },
        waiting_s: 2.5,
        wants: "relation ingestion_runs (AccessExclusiveLock)".into(),
        blockers: vec![Blocker {
            pid: blocker_pid,
            user: "app".into(),
            application: "orders-api".into(),
            state: "idle in transaction".into(),
            xact_age_s: Some(840.0),
            query: "SELECT * FROM ingestion_runs WHERE id = $1 FOR UPDATE".into(),
        }],
    }
}

/// An app connected to `status`, with history loaded.
pub fn connected(
    environment: Environment,
    up_to: u32,
    events: Vec<Event>,
    conflicts: Vec<Conflict>,
    color: bool,
) -> App {
    let target = target(environment);
    let catalog = catalog();
    let mut app = App::new(TargetInfo::from(&target), &catalog, color);
    update(
        &mut app,
        Msg::Resize {
            width: 80,
            height: 24,
        },
    );
    let status = status_at(&target, &catalog, up_to);
    update(
        &mut app,
        Msg::Monitor(Monitor::Snapshot {
            status: Box::new(status),
            conflicts,
            health: Box::new(health_at(&target, &catalog, up_to, None)),
        }),
    );
    update(
        &mut app,
        Msg::History(Ok(History {
            applied: vec![],
            events,
        })),
    );
    app
}

/// The runner lock held by someone else (for the header).
pub fn holder() -> Holder {
    Holder {
        pid: 5150,
        application: "pgshift up bob@ci".into(),
        user: "deploy".into(),
        client: "10.0.0.7".into(),
        since: "2026-11-24T09:00:00Z".into(),
        state: "active".into(),
        held_s: 12.0,
    }
}

/// The benchmark's screen: `events` history rows and `waits` lock conflicts (two rows each).
pub fn big(events: usize, waits: usize) -> App {
    let history = (0..events as i64)
        .rev()
        .map(|i| {
            event(
                i + 1,
                if i % 7 == 0 { "down" } else { "up" },
                2,
                3,
                if i % 11 == 0 { "failed" } else { "ok" },
            )
        })
        .collect();
    let conflicts = (0..waits as i32)
        .map(|i| conflict(10_000 + i, 20_000 + i))
        .collect();
    connected(Environment::Production, 3, history, conflicts, true)
}

/// The embedded checklists as the overlay gets them from `runbook::overview`, nothing recorded.
pub fn checklists() -> Vec<ChecklistView> {
    crate::runbook::definition::load(std::path::Path::new("/nonexistent"))
        .unwrap_or_default()
        .iter()
        .map(ChecklistView::blank)
        .collect()
}

/// Record `state` with `evidence` for `item` of `view` (run 12, fixed operator and time).
pub fn record(view: &mut ChecklistView, item: &str, state: ItemState, evidence: &str) {
    view.run_id = Some(12);
    view.state = RunState::InProgress;
    if let Some(i) = view.items.iter_mut().find(|i| i.id == item) {
        i.state = state;
        i.operator = Some("alice@bastion".into());
        i.at = Some("2026-11-24T09:14:05.000+00:00".into());
        i.evidence = Some(evidence.into());
    }
}

/// The pre-deploy checklist half way: committed passed, backup undecided, rollback plan failed.
pub fn pre_deploy_in_progress() -> Vec<ChecklistView> {
    let mut all = checklists();
    if let Some(pre) = all.first_mut() {
        record(
            pre,
            "committed",
            ItemState::Passed,
            "migrations/ is clean and main is not ahead of origin/main",
        );
        record(
            pre,
            "backup",
            ItemState::Unverified,
            "no backup_command configured and WAL archiving is off (pg_stat_archiver): confirm with the backup id",
        );
        record(
            pre,
            "rollback-plan",
            ItemState::Failed,
            "0005_add_x has no down migration: write migrations/0005_add_x.down.sql",
        );
    }
    all
}

/// `pgshift health` with one migration pending (degraded: the schema is behind the files).
pub fn health_pending(target: &Target) -> crate::health::Health {
    use crate::health::*;
    Health {
        status: HealthStatus::Degraded,
        target: target.name.clone(),
        environment: target.environment,
        database: DatabaseHealth {
            reachable: true,
            latency_ms: Some(3),
            version: Some("15.14".into()),
            error: None,
        },
        migrations: MigrationsHealth {
            state: MigrationState::Pending,
            current: Some(Revision(3)),
            head: Some(Revision(4)),
            pending: vec![Revision(4)],
            drift: vec![],
            last_error: None,
            catalog_error: None,
        },
        backfills: BackfillsHealth {
            state: BackfillState::None,
            runs: vec![],
            error: None,
        },
        topology: None,
        alerts: vec![],
        diagnosis: vec![],
    }
}

/// `plan` as the TUI previews it on a development target: every gate passes or does not apply.
pub fn preview(plan: Plan) -> Preview {
    let policy = Policy::new(Caller::Tui, Checklists::none());
    let checklist = GateResult::new(
        Gate::Checklist,
        GateState::Skipped,
        "not a production target",
    );
    let verdict = gate::verdict(&plan, &catalog(), &policy, checklist);
    Preview { plan, verdict }
}

/// An upgrade 0003 → 0005 on production where 0005 builds an index without CONCURRENTLY (a lint
/// error) and no pre-deploy checklist passed: both gates refuse, before the operator's yes.
pub fn refused_upgrade() -> Preview {
    let mut catalog = catalog();
    if let Ok(m) = Migration::new(
        Revision(5),
        "index_documents_title",
        "CREATE INDEX documents_title_idx ON documents (title);".into(),
        Some("DROP INDEX documents_title_idx;".into()),
    ) {
        catalog.migrations.push(m);
    }
    let plan = crate::plan::plan(
        &catalog,
        &applied(&catalog, 3),
        Direction::Up,
        TargetSpec::Head,
    )
    // The sample catalog always plans; an empty plan would show as "nothing to do".
    .unwrap_or_else(|_| Plan {
        direction: Direction::Up,
        from: Revision(3),
        to: Revision(3),
        steps: vec![],
    });
    let policy = Policy::new(Caller::Tui, Checklists::none());
    let checklist = GateResult::new(
        Gate::Checklist,
        GateState::Refused,
        "refusing to upgrade: no pre-deploy checklist passed on orders (production) in the last 4h: run `pgshift checklist pre-deploy --run-checks` and confirm the rest (required by require_checklist_hours = 4). Nothing was run.",
    );
    let verdict = gate::verdict(&plan, &catalog, &policy, checklist);
    Preview { plan, verdict }
}

/// One fleet status row as `fleet::status::gather` makes it.
fn fleet_row(
    name: &str,
    environment: Environment,
    current: Option<u32>,
    state: crate::fleet::status::RowState,
) -> crate::fleet::status::Row {
    use crate::fleet::status::RowState;
    let head = 4;
    let reachable = state != RowState::Unreachable;
    crate::fleet::status::Row {
        target: name.into(),
        environment,
        url: format!("postgres://deploy@{name}.internal:5432/orders"),
        state,
        current: current.map(Revision),
        head: Some(Revision(head)),
        pending: current.map_or(vec![], |c| (c + 1..=head).map(Revision).collect()),
        drift: vec![],
        health: reachable.then_some(crate::health::HealthStatus::Ok),
        runner_lock: None,
        role: reachable.then(|| "deploy".into()),
        read_only: reachable.then_some(false),
        replication: reachable.then_some("primary"),
        replica_lag_s: None,
        tls: None,
        error: (!reachable).then(|| {
            format!("cannot connect to postgres://deploy@{name}.internal:5432/orders: connection refused (is the server running and accepting connections on that host and port?)")
        }),
        exit_code: if reachable {
            crate::error::ExitCode::Ok
        } else {
            crate::error::ExitCode::Unreachable
        },
        elapsed_ms: 12,
    }
}

/// A fleet of six: staging at head, two EU production primaries pending (one with a replica
/// lagging, one whose runner lock another pgshift holds), a standby, a tenant and one unreachable.
pub fn fleet_rows() -> Vec<crate::fleet::status::Row> {
    use crate::fleet::status::RowState;
    let mut rows = vec![
        fleet_row("eu-1", Environment::Production, Some(2), RowState::Pending),
        fleet_row("eu-2", Environment::Production, Some(2), RowState::Pending),
        fleet_row("stage", Environment::Staging, Some(4), RowState::Ok),
        fleet_row(
            "tenant-acme",
            Environment::Production,
            Some(3),
            RowState::Pending,
        ),
        fleet_row(
            "us-standby",
            Environment::Production,
            Some(2),
            RowState::Pending,
        ),
        fleet_row(
            "zz-gone",
            Environment::Production,
            None,
            RowState::Unreachable,
        ),
    ];
    rows[0].replica_lag_s = Some(1.5);
    rows[1].runner_lock = Some(holder());
    rows[4].replication = Some("standby");
    rows[4].replica_lag_s = Some(3.2);
    rows
}

/// The Fleet pane focused, its rows gathered.
pub fn fleet(environment: Environment, color: bool) -> App {
    use super::app::{FleetEffect, FleetMsg};
    let mut app = connected(environment, 3, vec![], vec![], color);
    let effects = update(&mut app, key('6'));
    debug_assert_eq!(
        effects,
        vec![super::app::Effect::Fleet(FleetEffect::Gather {
            group: None
        })]
    );
    update(
        &mut app,
        Msg::Fleet(FleetMsg::Gathered {
            group: None,
            result: Ok(fleet_rows()),
        }),
    );
    // Rows read a while ago, as the title says.
    app.now += std::time::Duration::from_secs(12);
    app
}

/// The confirmation of a rollout touching production (typed: `all`).
pub fn fleet_plan() -> super::app::FleetPlan {
    super::app::FleetPlan {
        id: "fleet-20261203T091500Z-1a2b".into(),
        group: None,
        job: super::app::FleetJob::Up("head".into()),
        text: "TARGET      ENV   PLAN       STEPS NOTE\n\
               eu-1        PROD  0002→0004      2 \n\
               eu-2        PROD  0002→0004      2 \n\
               stage       stage 0004           0 up to date\n\
               tenant-acme PROD  0003→0004      1 \n\
               us-standby  PROD  0002→0004      2 gates refuse: us-standby is a standby (read-only): migrations run on the primary\n\
               zz-gone     PROD  ?              0 not run: cannot connect to postgres://deploy@zz-gone.internal:5432/orders: connection refused\n\
               4 of 6 target(s) to run, 1 without a plan (reported as failed, not run); steps: 0003_add_target_schema_tables, 0004_add_documents_index\n"
            .into(),
        confirmation: crate::fleet::rollout::Confirmation {
            with_work: 5,
            production: 5,
            word: "all".into(),
        },
        targets: 6,
    }
}

/// A rollout in the middle of its wave: the canary done, one running, one blocked, one failed
/// (refused by the gates), the unreachable one failed, and one still waiting.
pub fn fleet_rollout(color: bool) -> App {
    use super::app::{FleetMsg, Pending, Popup};
    use crate::fleet::rollout::{FleetEvent, TargetState};
    let mut app = fleet(Environment::Staging, color);
    app.popup = Some(Popup::Confirm(super::app::Confirm::new(
        Pending::Fleet(Box::new(fleet_plan())),
        None,
    )));
    update(&mut app, key('y'));
    let target = |name: &str, canary: bool, state: TargetState| FleetEvent::Target {
        target: name.into(),
        canary,
        state,
    };
    let events = vec![
        FleetEvent::Phase {
            message: "canary: eu-1".into(),
        },
        target(
            "eu-1",
            true,
            TargetState::Done {
                from: Revision(2),
                to: Revision(4),
                steps: 2,
                duration_ms: 840,
            },
        ),
        FleetEvent::Phase {
            message: "wave 1/1: 4 target(s)".into(),
        },
        target("eu-2", false, TargetState::Running {
            step: 1,
            total: 2,
            revision: Revision(3),
        }),
        target("stage", false, TargetState::UpToDate),
        target("tenant-acme", false, TargetState::Blocked {
            revision: Revision(4),
            pids: vec![4121],
        }),
        target("us-standby", false, TargetState::Refused {
            reason: "upgrade refused: us-standby is a standby (read-only); run it on the primary".into(),
            exit_code: crate::error::ExitCode::Failed,
        }),
        target("zz-gone", false, TargetState::Failed {
            error: "cannot connect to postgres://deploy@zz-gone.internal:5432/orders: connection refused".into(),
            exit_code: crate::error::ExitCode::Unreachable,
        }),
    ];
    for e in events {
        update(&mut app, Msg::Fleet(FleetMsg::Event(e)));
    }
    app
}
