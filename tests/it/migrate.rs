//! up / down / status / history / plan / stamp / new against real PostgreSQL.

use crate::common::*;

#[test]
fn up_head_then_down_base_then_up_head_leaves_an_identical_schema() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up"])
        .ok()
        .stderr_has("✅ Database migrations completed successfully");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    let first = db.schema_dump();
    assert!(first.contains("CREATE TABLE public.documents"), "{first}");
    db.run(&["down", "base", "--yes"]).ok();
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert!(
        !db.schema_dump().contains("CREATE TABLE"),
        "base must have no user tables"
    );
    db.run(&["up"]).ok();
    assert_eq!(db.schema_dump(), first);
    let events = db.events();
    assert_eq!(
        events,
        vec![
            ("up".into(), "ok".into()),
            ("down".into(), "ok".into()),
            ("up".into(), "ok".into())
        ]
    );
}

#[test]
fn up_to_a_revision_and_by_steps_then_down_by_steps() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    assert_eq!(db.applied(), vec![1, 2]);
    db.run(&["up", "+1"]).ok();
    assert_eq!(db.applied(), vec![1, 2, 3]);
    db.run(&["down", "--yes"]).ok();
    assert_eq!(db.applied(), vec![1, 2]);
    db.run(&["down", "-2", "--yes"]).ok();
    assert_eq!(db.applied(), Vec::<u32>::new());
    db.run(&["up", "+9"])
        .code(2)
        .stderr_has("only 5 are possible");
    db.run(&["up", "0007"])
        .code(2)
        .stderr_has("revision 0007 is not in the catalog");
}

#[test]
fn up_at_head_is_a_noop_without_an_audit_row() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up"]).ok();
    let r = db.run(&["up", "--json"]);
    r.ok();
    assert_eq!(r.json()["result"]["steps"].as_array().unwrap().len(), 0);
    assert_eq!(db.events().len(), 1);
}

#[test]
fn status_check_exits_10_while_pending_and_0_at_head() {
    let db = TestDb::with_demo_migrations();
    let r = db.run(&["status", "--check", "--json"]);
    r.code(10);
    let j = r.json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["result"]["current"], 0);
    assert_eq!(j["result"]["head"], 5);
    assert_eq!(j["result"]["pending"].as_array().unwrap().len(), 5);
    assert!(j["result"]["runner_lock"].is_null());
    db.run(&["up"]).ok();
    db.run(&["status", "--check"])
        .ok()
        .stdout_has("(up to date)");
}

#[test]
fn failing_migration_rolls_back_schema_history_and_data_and_is_audited() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    db.exec("INSERT INTO sources (name, kind) VALUES ('keep-me', 'manual')");
    let before = db.schema_dump();
    // Valid first statements, then a failure: the whole step must roll back.
    db.write_migration(
        "0004_add_ingestion_run_errors.up.sql",
        "-- pgshift: allow backfill-in-migration the test needs data changes to roll back\nALTER TABLE ingestion_runs ADD COLUMN error_text text;\nDELETE FROM sources;\nSELECT 1/0;\n",
    );
    let r = db.run(&["up"]);
    r.code(1)
        .stderr_has("upgrade 0004 failed: division by zero (22012)");
    r.stderr_has("0004 was rolled back");
    r.stderr_has("❌ Database migrations failed");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    assert_eq!(db.schema_dump(), before);
    assert_eq!(db.scalar("SELECT count(*) FROM sources"), "1");
    let events = db.events();
    assert_eq!(
        events.last().unwrap(),
        &("up".to_string(), "failed".to_string())
    );
    let err = db.scalar(
        "SELECT error || ' ' || (detail->>'sqlstate') FROM pgshift_events ORDER BY id DESC LIMIT 1",
    );
    assert!(
        err.contains("division by zero") && err.ends_with("22012"),
        "{err}"
    );
}

#[test]
fn downgrade_needs_yes_when_stdin_is_not_a_terminal_and_changes_nothing() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up"]).ok();
    let r = db.run(&["down", "base"]);
    r.code(2)
        .stderr_has("pass --yes")
        .stderr_has("DROP TABLE proposals;");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
}

#[test]
fn downgrade_through_irreversible_is_refused_before_anything_runs() {
    let db = TestDb::with_demo_migrations();
    std::fs::remove_file(db.migrations().join("0002_add_variants.down.sql")).unwrap();
    db.run(&["up"]).ok();
    let r = db.run(&["down", "0001", "--yes"]);
    r.code(1).stderr_has("irreversible");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    assert_eq!(db.events().last().unwrap().1, "refused");
    // Down to just above it works.
    db.run(&["down", "0002", "--yes"]).ok();
    assert_eq!(db.applied(), vec![1, 2]);
}

#[test]
fn bad_catalog_exits_5_and_touches_nothing() {
    let db = TestDb::with_demo_migrations();
    db.write_migration("0005_oops.up.sql", "");
    db.write_migration("0006_x.down.sql", "select 1;");
    let r = db.run(&["up", "--json"]);
    r.code(5);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("0005_oops.up.sql: contains no SQL"), "{msg}");
    assert!(
        msg.contains("0006_x.down.sql: down migration without an up"),
        "{msg}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );
}

#[test]
fn edited_applied_migration_is_drift_exit_5_and_blocks_up() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    db.write_migration("0001_baseline.up.sql", "CREATE TABLE proposals (id int);\n");
    let r = db.run(&["status"]);
    r.code(5)
        .stdout_has("DRIFT")
        .stdout_has("0001_baseline: the up file changed after it was applied");
    db.run(&["up"]).code(5).stderr_has("disagree");
    assert_eq!(db.applied(), vec![1, 2]);
    // A history row without a file is drift too.
    db.write_migration(
        "0001_baseline.up.sql",
        &std::fs::read_to_string(repo().join("migrations/0001_baseline.up.sql")).unwrap(),
    );
    db.exec("INSERT INTO refinery_schema_history VALUES (9, 'from_another_branch', '2026-01-01T00:00:00Z', '1')");
    db.run(&["status"])
        .code(5)
        .stdout_has("0009_from_another_branch: applied, but no such migration file");
}

#[test]
fn unreachable_database_exits_3_and_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(
        pgshift_bare(dir.path())
            .args([
                "status",
                "--database-url",
                "postgres://app:hunter2secret@127.0.0.1:1/app",
                "--migrations",
            ])
            .arg(repo().join("migrations"))
            .output()
            .unwrap(),
    );
    r.code(3)
        .stderr_has("cannot connect to postgres://app@127.0.0.1:1/app");
    assert!(!r.stderr.contains("hunter2secret") && !r.stdout.contains("hunter2secret"));
    let r = Run::from(
        pgshift_bare(dir.path())
            .args([
                "status",
                "--json",
                "--database-url",
                "postgres://app:hunter2secret@127.0.0.1:1/app",
                "--migrations",
            ])
            .arg(repo().join("migrations"))
            .output()
            .unwrap(),
    );
    r.code(3);
    assert_eq!(r.json()["error"]["kind"], "unreachable");
    assert!(!r.stdout.contains("hunter2secret"));
}

#[test]
fn nothing_configured_is_a_usage_error_for_commands() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(pgshift_bare(dir.path()).args(["status"]).output().unwrap());
    r.code(2).stderr_has("no database configured");
}

#[test]
fn runner_lock_busy_exits_4_naming_the_holder() {
    let db = TestDb::with_demo_migrations();
    let _holder = Holder::hold(
        &db,
        "SELECT pg_advisory_lock(hashtextextended('pgshift:runner:' || current_database(), 0))",
    );
    let r = db.run(&["up", "--lock-wait", "1s"]);
    r.code(4)
        .stderr_has("another pgshift holds the runner lock")
        .stderr_has("test blocker");
    assert_eq!(db.applied(), Vec::<u32>::new());
    let s = db.run(&["status", "--json"]);
    assert_eq!(
        s.json()["result"]["runner_lock"]["application"],
        "test blocker"
    );
}

#[test]
fn lock_timeout_retries_are_bounded_name_the_blocker_and_apply_nothing() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    let blocker = Holder::hold(&db, "LOCK TABLE ingestion_runs IN ACCESS SHARE MODE");
    let r = db.run(&["up", "--lock-timeout", "100ms", "--retries", "3"]);
    r.code(4)
        .stderr_has("upgrade 0004 failed")
        .stderr_has("after 3 tries")
        .stderr_has(&format!("pid {}", blocker.pid))
        .stderr_has("55P03");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    assert_eq!(db.events().last().unwrap().1, "failed");
}

#[test]
fn step_waiting_on_a_lock_succeeds_once_the_blocker_ends() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    let blocker = Holder::hold(&db, "LOCK TABLE ingestion_runs IN ACCESS SHARE MODE");
    let mut child = db
        .pgshift()
        .args(["up", "--lock-timeout", "100ms", "--retries", "50"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = StderrLog::follow(child.stderr.take().unwrap());
    // Wait until pgshift has retried at least once, naming our blocker.
    wait_until(
        std::time::Duration::from_secs(20),
        "pgshift to retry on the blocker",
        || {
            stderr.text().contains("attempt 1/50")
                && stderr.text().contains(&format!("pid {}", blocker.pid))
        },
    );
    drop(blocker);
    assert!(child.wait().unwrap().success(), "{}", stderr.text());
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
}

#[test]
fn eight_concurrent_ups_apply_each_migration_exactly_once() {
    let db = TestDb::with_demo_migrations();
    let children: Vec<_> = (0..8)
        .map(|_| {
            db.pgshift()
                .args(["up", "--json"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect();
    let mut applied_steps = 0;
    for r in &runs {
        assert!(
            r.code == 0 || r.code == 4,
            "unexpected exit {}: {}",
            r.code,
            r.stderr
        );
        if r.code == 0 {
            applied_steps += r.json()["result"]["steps"].as_array().unwrap().len();
        }
    }
    assert_eq!(
        applied_steps, 5,
        "each migration applied exactly once across all runners"
    );
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pgshift_events WHERE action = 'up' AND outcome = 'ok'"),
        "1"
    );
}

#[test]
fn plan_prints_sql_and_changes_nothing_online_and_offline() {
    let db = TestDb::with_demo_migrations();
    let r = db.run(&["plan", "up", "0002"]);
    r.ok()
        .stdout_has("upgrade base -> 0002: 2 step(s)")
        .stdout_has("ADD COLUMN variants jsonb");
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert_eq!(
        db.scalar("SELECT to_regclass('pgshift_events') IS NULL"),
        "t"
    );
    // Offline: FROM and TO given, no database at all.
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(
        pgshift_bare(dir.path())
            .args(["plan", "down", "0003", "0001", "--migrations"])
            .arg(db.migrations())
            .output()
            .unwrap(),
    );
    r.ok()
        .stdout_has("downgrade 0003 -> 0001: 2 step(s) (DESTRUCTIVE")
        .stdout_has("DROP TABLE ingestion_runs;");
}

#[test]
fn history_lists_applied_migrations_and_audit_events_newest_first() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    db.run(&["down", "--yes"]).ok();
    let j = db.run(&["history", "--json"]).ok().json();
    let applied = j["result"]["applied"].as_array().unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["name"], "baseline");
    let events = j["result"]["events"].as_array().unwrap();
    assert_eq!(events[0]["action"], "down");
    assert_eq!(events[0]["from_revision"], 2);
    assert_eq!(events[0]["to_revision"], 1);
    assert_eq!(events[1]["action"], "up");
    assert!(events[0]["operator"].as_str().unwrap().contains('@'));
}

#[test]
fn stamp_adopts_an_existing_schema_and_reports_alembic_version() {
    let db = TestDb::with_demo_migrations();
    // An Alembic-managed database at 0002: tables exist, no pgshift history.
    for f in ["0001_baseline.up.sql", "0002_add_variants.up.sql"] {
        db.exec(&std::fs::read_to_string(db.migrations().join(f)).unwrap());
    }
    db.exec("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('0002')");
    db.run(&["status"])
        .ok()
        .stdout_has("alembic_version holds 0002")
        .stdout_has("pgshift stamp 0002");
    db.run(&["up"])
        .code(1)
        .stderr_has("42P07")
        .stderr_has("pgshift stamp");
    db.run(&["stamp", "0002"])
        .ok()
        .stdout_has("recorded 2 as applied");
    assert_eq!(db.applied(), vec![1, 2]);
    db.run(&["up"]).ok();
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    // Stamping down removes history rows only with --yes.
    db.run(&["stamp", "0001"]).code(2).stderr_has("--yes");
    db.run(&["stamp", "0001", "--yes"]).ok();
    assert_eq!(db.applied(), vec![1]);
    assert!(
        db.scalar("SELECT to_regclass('documents') IS NOT NULL") == "t",
        "stamp runs no SQL"
    );
}

#[test]
fn new_writes_the_next_pair_and_refuses_a_clash() {
    let db = TestDb::with_demo_migrations();
    let r = db.run(&["new", "Add index to documents", "--json"]);
    r.ok();
    assert_eq!(r.json()["result"]["revision"], 6);
    assert!(
        db.migrations()
            .join("0006_add_index_to_documents.up.sql")
            .is_file()
    );
    assert!(
        db.migrations()
            .join("0006_add_index_to_documents.down.sql")
            .is_file()
    );
    db.run(&["new", "add index to documents"])
        .code(2)
        .stderr_has("already exists");
    // Until it is filled in, the catalog refuses to run.
    db.run(&["up"]).code(5).stderr_has("contains no SQL");
}

#[test]
fn permission_denied_says_which_privilege_and_changes_nothing() {
    let db = TestDb::with_demo_migrations();
    let role = format!("{}_app", db.name);
    db.exec(&format!(
        "CREATE ROLE {role} LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC"
    ));
    let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
    let r = Run::from(
        pgshift_bare(db.dir.path())
            .args(["up", "--database-url", &url, "--migrations"])
            .arg(db.migrations())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    r.code(1)
        .stderr_has("42501")
        .stderr_has("GRANT CREATE ON SCHEMA");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );
    db.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn connection_lost_mid_step_exits_3_with_nothing_applied_and_is_audited() {
    let db = TestDb::new();
    db.write_migration(
        "0001_slow.up.sql",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n",
    );
    let child = db
        .pgshift()
        .args(["up"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let find_worker = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                       AND application_name LIKE 'pgshift up %' \
                       AND application_name NOT LIKE '%monitor%' AND query LIKE '%pg_sleep%'";
    wait_until(
        std::time::Duration::from_secs(20),
        "the step to start",
        || !db.column(find_worker).is_empty(),
    );
    db.exec(&format!(
        "SELECT pg_terminate_backend(pid) FROM ({find_worker}) w"
    ));
    let r = Run::from(child.wait_with_output().unwrap());
    r.code(3).stderr_has("connection");
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert_eq!(db.scalar("SELECT to_regclass('slow') IS NULL"), "t");
    assert_eq!(db.events(), vec![("up".to_string(), "failed".to_string())]);
}

#[test]
fn ctrl_c_cancels_the_running_step_rolls_it_back_and_audits() {
    let db = TestDb::new();
    db.write_migration("0001_fast.up.sql", "CREATE TABLE fast (id int);\n");
    db.write_migration(
        "0002_slow.up.sql",
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n",
    );
    db.write_migration("0003_never.up.sql", "CREATE TABLE never (id int);\n");
    let mut child = db
        .pgshift()
        .args(["up"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = StderrLog::follow(child.stderr.take().unwrap());
    wait_until(
        std::time::Duration::from_secs(20),
        "the slow step to start",
        || {
            !db.column("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CREATE TABLE slow%'")
                .is_empty()
        },
    );
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{}", stderr.text());
    assert!(
        stderr
            .text()
            .contains("canceling statement due to user request (57014)"),
        "{}",
        stderr.text()
    );
    assert_eq!(db.applied(), vec![1]);
    assert_eq!(
        db.scalar("SELECT to_regclass('slow') IS NULL AND to_regclass('never') IS NULL"),
        "t"
    );
    // The audit row says what stopped it.
    assert_eq!(
        db.events(),
        vec![("up".to_string(), "interrupted".to_string())]
    );
}

#[test]
fn no_subcommand_without_a_terminal_exits_like_status_on_drift() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0001"]).ok();
    db.write_migration("0001_baseline.up.sql", "CREATE TABLE proposals (id int);\n");
    db.run(&[]).code(5).stdout_has("DRIFT");
}
