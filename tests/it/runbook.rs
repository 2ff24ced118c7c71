//! The runbook made executable, against real PostgreSQL: checklists and their automatic checks,
//! recorded and resumed runs, the pre-deploy gate, health in each state, startup (lines, replicas,
//! degraded mode, DEV_CREATE_TABLES), serve, and diagnosis.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

const RUNNING: &str = "🔄 Running database migrations...";
const COMPLETED: &str = "✅ Database migrations completed successfully";
const FAILED: &str = "❌ Database migrations failed: ";
const DEGRADED: &str = "🚨 Application will start but database operations may fail";

/// Write `config/pgshift.toml` with one target for this database, plus `extra` TOML.
fn write_config(db: &TestDb, environment: &str, target_extra: &str, extra: &str) -> PathBuf {
    let dir = db.dir.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pgshift.toml");
    let text = format!(
        "[targets.main]\nurl = \"{}\"\nenvironment = \"{environment}\"\nmigrations = \"{}\"\nlock_wait = \"5s\"\n{target_extra}\n{extra}\n",
        db.url,
        db.migrations().display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// pgshift with the config in the test dir (found as ./config/pgshift.toml).
fn run_cfg(db: &TestDb, args: &[&str]) -> Run {
    run_cfg_env(db, args, &[])
}

fn run_cfg_env(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = pgshift_bare(db.dir.path());
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().unwrap())
}

fn item<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["result"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no item {id} in {doc:#}"))
}

fn stdout_lines(r: &Run) -> Vec<&str> {
    r.stdout.lines().collect()
}

// ---------------------------------------------------------------- startup

#[test]
fn six_replicas_starting_at_once_apply_each_migration_once_and_print_the_lines_exactly() {
    let db = TestDb::with_demo_migrations();
    let children: Vec<_> = (0..6)
        .map(|_| {
            db.pgshift()
                .arg("startup")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let run = Run::from(child.wait_with_output().unwrap());
        run.ok();
        assert_eq!(
            stdout_lines(&run),
            vec![RUNNING, COMPLETED],
            "stderr:\n{}",
            run.stderr
        );
    }
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    // One audited startup did the work; the others found nothing to do.
    assert_eq!(db.events(), vec![("startup".to_string(), "ok".to_string())]);
    db.run(&["health"]).ok();
}

#[test]
fn failed_startup_prints_failed_and_degraded_exits_0_and_health_reports_failed() {
    let db = TestDb::with_demo_migrations();
    db.write_migration(
        "0006_broken.up.sql",
        "ALTER TABLE no_such_table ADD COLUMN x int;",
    );
    db.write_migration("0006_broken.down.sql", "SELECT 1;");
    let run = db.run(&["startup"]);
    run.ok();
    let lines = stdout_lines(&run);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], RUNNING);
    assert!(
        lines[1].starts_with(FAILED) && lines[1].contains("no_such_table"),
        "{lines:?}"
    );
    assert_eq!(lines[2], DEGRADED);
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    // One audit row for the one failure (migrate::run wrote it; startup does not add another).
    assert_eq!(
        db.events(),
        vec![("startup".to_string(), "failed".to_string())]
    );

    let health = db.run(&["--json", "health"]);
    health.code(1);
    let h = health.json();
    assert_eq!(h["result"]["status"], "degraded");
    assert_eq!(h["result"]["migrations"]["state"], "failed");
    assert_eq!(h["result"]["migrations"]["pending"], serde_json::json!([6]));
    assert!(
        h["result"]["migrations"]["last_error"]["error"]
            .as_str()
            .unwrap()
            .contains("no_such_table")
    );
    let alerts = h["result"]["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["severity"] == "immediate" && a["kind"] == "migration_failure"),
        "{alerts:?}"
    );

    // Strict: the same failure is an exit code.
    let strict = db.run(&["startup", "--strict"]);
    strict.code(1);
    assert_eq!(stdout_lines(&strict)[2], DEGRADED);

    // Fixed and retried: healthy again.
    db.write_migration(
        "0006_broken.up.sql",
        "ALTER TABLE documents ADD COLUMN x int;",
    );
    let fixed = db.run(&["startup"]);
    assert_eq!(stdout_lines(fixed.ok()), vec![RUNNING, COMPLETED]);
    db.run(&["health"]).ok().stdout_has("status      ok");
}

#[test]
fn startup_on_an_unreachable_database_starts_degraded_and_names_the_connection_section() {
    let db = TestDb::with_demo_migrations();
    let mut c = pgshift_bare(db.dir.path());
    c.args([
        "--database-url",
        "postgres://postgres@127.0.0.1:1/nowhere",
        "--migrations",
    ])
    .arg(db.migrations())
    .arg("startup")
    .stdin(Stdio::null());
    let run = Run::from(c.output().unwrap());
    run.ok();
    let lines = stdout_lines(&run);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].starts_with(FAILED), "{lines:?}");
    assert_eq!(lines[2], DEGRADED);
    run.stderr_has("runbook: Connection Timeout")
        .stderr_has("pg_isready -h 127.0.0.1 -p 1");
}

#[test]
fn dev_create_tables_creates_the_schema_in_one_transaction_on_dev_when_migration_fails() {
    let db = TestDb::with_demo_migrations();
    // The demo's 0005 builds an index CONCURRENTLY, which cannot join one transaction.
    for side in ["up", "down"] {
        std::fs::remove_file(
            db.migrations()
                .join(format!("0005_index_documents_concurrently.{side}.sql")),
        )
        .unwrap();
    }
    // History records a revision whose file is gone: migration refuses (drift).
    db.exec(
        "CREATE TABLE refinery_schema_history(version int4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255));
         INSERT INTO refinery_schema_history VALUES (9, 'gone', 'x', '1');",
    );
    write_config(&db, "development", "", "");
    let run = run_cfg_env(&db, &["startup"], &[("DEV_CREATE_TABLES", "true")]);
    run.ok();
    let lines = stdout_lines(&run);
    assert_eq!(lines[0], RUNNING);
    assert!(lines[1].starts_with(FAILED), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("DEV_CREATE_TABLES=true: created the schema DIRECTLY")),
        "{lines:?}"
    );
    assert!(!lines.contains(&DEGRADED), "{lines:?}");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 9]);
    assert!(db.schema_dump().contains("CREATE TABLE public.documents"));
    assert!(
        db.events()
            .contains(&("dev_create_tables".to_string(), "ok".to_string()))
    );
}

#[test]
fn dev_create_tables_is_refused_on_production() {
    let db = TestDb::with_demo_migrations();
    db.exec(
        "CREATE TABLE refinery_schema_history(version int4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255));
         INSERT INTO refinery_schema_history VALUES (9, 'gone', 'x', '1');",
    );
    write_config(&db, "production", "", "");
    let run = run_cfg_env(&db, &["startup"], &[("DEV_CREATE_TABLES", "true")]);
    run.ok().stderr_has("refused on production target main");
    let lines = stdout_lines(&run);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[2], DEGRADED);
    assert_eq!(db.applied(), vec![9]);
    assert!(!db.schema_dump().contains("CREATE TABLE"));
    // The failed startup is recorded, with the missing-files diagnosis in health.
    let h = run_cfg(&db, &["--json", "health"]);
    h.code(5);
    let h = h.json();
    assert_eq!(h["result"]["migrations"]["state"], "drift");
    assert_eq!(
        h["result"]["diagnosis"][0]["failure"],
        "missing_migration_files"
    );
    assert!(
        h["result"]["diagnosis"][0]["solutions"][0]
            .as_str()
            .unwrap()
            .contains("0009_gone.up.sql")
    );
}

// ---------------------------------------------------------------- health

#[test]
fn health_reports_ok_pending_drift_and_unreachable_with_their_exit_codes() {
    let db = TestDb::with_demo_migrations();
    // pending
    let r = db.run(&["--json", "health"]);
    r.code(10);
    let h = r.json();
    assert_eq!(h["result"]["status"], "degraded");
    assert_eq!(h["result"]["migrations"]["state"], "pending");
    assert_eq!(h["result"]["database"]["reachable"], true);
    assert!(h["result"]["database"]["latency_ms"].as_u64().is_some());
    assert!(
        h["result"]["database"]["version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric)
    );
    assert_eq!(h["result"]["alerts"][0]["severity"], "warning");
    assert_eq!(h["result"]["backfills"]["state"], "none");
    // ok
    db.run(&["up"]).ok();
    let r = db.run(&["--json", "health"]);
    r.ok();
    let h = r.json();
    assert_eq!(h["result"]["status"], "ok");
    assert_eq!(h["result"]["migrations"]["state"], "ok");
    assert_eq!(h["result"]["alerts"], serde_json::json!([]));
    // a failed backfill degrades with an error alert
    db.exec("INSERT INTO pgshift_backfill_runs (name, state, batch_size, operator, last_error) VALUES ('hashes', 'failed', 100, 't', 'boom')");
    let r = db.run(&["--json", "health"]);
    r.code(1);
    let h = r.json();
    assert_eq!(h["result"]["backfills"]["state"], "failed");
    assert!(
        h["result"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["severity"] == "error" && a["kind"] == "backfill_failure")
    );
    db.exec("DELETE FROM pgshift_backfill_runs");
    // drift: a file changed after it was applied
    let up = db.migrations().join("0002_add_variants.up.sql");
    let text = std::fs::read_to_string(&up).unwrap();
    std::fs::write(&up, format!("{text}\n-- edited after apply\n")).unwrap();
    let r = db.run(&["--json", "health"]);
    r.code(5);
    let h = r.json();
    assert_eq!(h["result"]["migrations"]["state"], "drift");
    assert_eq!(h["result"]["alerts"][0]["kind"], "schema_out_of_sync");
    // unreachable
    let mut c = pgshift_bare(db.dir.path());
    c.args([
        "--json",
        "--database-url",
        "postgres://postgres@127.0.0.1:1/nowhere",
        "--migrations",
    ])
    .arg(db.migrations())
    .arg("health");
    let r = Run::from(c.output().unwrap());
    r.code(3);
    let h = r.json();
    assert_eq!(h["result"]["status"], "down");
    assert_eq!(h["result"]["database"]["reachable"], false);
    assert_eq!(h["result"]["alerts"][0]["severity"], "critical");
    assert_eq!(h["result"]["diagnosis"][0]["failure"], "connection_timeout");
}

#[test]
fn up_with_missing_migration_files_names_the_runbook_section_and_the_file() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up"]).ok();
    std::fs::remove_file(db.migrations().join("0004_add_ingestion_run_errors.up.sql")).unwrap();
    std::fs::remove_file(
        db.migrations()
            .join("0004_add_ingestion_run_errors.down.sql"),
    )
    .unwrap();
    db.write_migration("0006_more.up.sql", "CREATE TABLE more_things (id int);");
    let r = db.run(&["up"]);
    r.code(5)
        .stderr_has("runbook: Missing Migration Files")
        .stderr_has("0004_add_ingestion_run_errors.up.sql");
}

#[test]
fn up_blocked_by_a_lock_names_the_blocking_pid_and_permission_denied_names_the_role() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    let holder = Holder::hold(&db, "LOCK TABLE documents IN ACCESS EXCLUSIVE MODE");
    let r = db.run(&["up", "--lock-timeout", "100ms", "--retries", "2"]);
    r.code(4)
        .stderr_has("runbook: Lock Conflicts")
        .stderr_has(&format!("pg_cancel_backend({})", holder.pid));
    drop(holder);

    let role = format!("pgshift_ro_{}", fastrand::u32(..));
    db.exec(&format!(
        "CREATE ROLE {role} LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
    ));
    let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
    let mut c = pgshift_bare(db.dir.path());
    c.args(["--database-url", &url, "--migrations"])
        .arg(db.migrations())
        .arg("up")
        .stdin(Stdio::null());
    let r = Run::from(c.output().unwrap());
    db.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role};"));
    r.code(1)
        .stderr_has("runbook: Permission Denied")
        .stderr_has(&format!("role {role}"));
}

// ---------------------------------------------------------------- checklist checks

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(db: &TestDb, item_id: &str) -> (Run, serde_json::Value) {
    let r = run_cfg(
        db,
        &["--json", "checklist", "pre-deploy", "--check", item_id],
    );
    let doc = r.json();
    let it = item(&doc, item_id).clone();
    (r, it)
}

#[test]
fn committed_and_pushed_check_fails_on_a_dirty_tree_or_unpushed_commits_and_passes_when_pushed() {
    let db = TestDb::with_demo_migrations();
    write_config(&db, "staging", "", "");
    let (_, it) = check(&db, "committed");
    assert_eq!(it["state"], "failed");
    assert!(
        it["evidence"]
            .as_str()
            .unwrap()
            .contains("not in a git work tree"),
        "{it}"
    );

    let repo = db.migrations();
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "migrations"]);
    let (_, it) = check(&db, "committed");
    assert_eq!(it["state"], "failed");
    assert!(
        it["evidence"].as_str().unwrap().contains("no upstream"),
        "{it}"
    );

    let remote = db.dir.path().join("remote.git");
    git(
        db.dir.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&repo, &["push", "-q", "-u", "origin", "HEAD"]);
    let (_, it) = check(&db, "committed");
    assert_eq!(it["state"], "passed", "{it}");

    db.write_migration("0006_new.up.sql", "CREATE TABLE t5 (id int);");
    let (_, it) = check(&db, "committed");
    assert_eq!(it["state"], "failed");
    assert!(
        it["evidence"].as_str().unwrap().contains("0006_new.up.sql"),
        "{it}"
    );

    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "0005"]);
    let (_, it) = check(&db, "committed");
    assert_eq!(it["state"], "failed");
    assert!(
        it["evidence"].as_str().unwrap().contains("1 commit(s)"),
        "{it}"
    );
}

#[test]
fn rollback_plan_check_fails_for_a_migration_without_down_and_shows_the_down_sql() {
    let db = TestDb::with_demo_migrations();
    write_config(&db, "staging", "", "");
    run_cfg(&db, &["up"]).ok();
    db.write_migration(
        "0006_add_x.up.sql",
        "ALTER TABLE documents ADD COLUMN x int;",
    );
    let (_, it) = check(&db, "rollback-plan");
    assert_eq!(it["state"], "failed");
    assert!(
        it["evidence"]
            .as_str()
            .unwrap()
            .contains("0006_add_x.down.sql"),
        "{it}"
    );
    db.write_migration(
        "0006_add_x.down.sql",
        "ALTER TABLE documents DROP COLUMN x;",
    );
    let (_, it) = check(&db, "rollback-plan");
    assert_eq!(it["state"], "passed");
    assert!(
        it["evidence"]
            .as_str()
            .unwrap()
            .contains("ALTER TABLE documents DROP COLUMN x;"),
        "{it}"
    );
}

#[test]
fn local_testing_rehearses_up_down_up_on_a_scratch_database_and_catches_a_broken_down() {
    let db = TestDb::with_demo_migrations();
    write_config(&db, "staging", "", "");
    run_cfg(&db, &["up", "0002"]).ok();
    let (_, it) = check(&db, "local-testing");
    assert_eq!(it["state"], "passed", "{it}");
    let evidence = it["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("setup up base -> 0002")
            && evidence.contains("down 0005 -> 0002")
            && evidence.contains("up again 0002 -> 0005"),
        "{evidence}"
    );
    let scratch = evidence
        .split("scratch database ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(
        db.column(&format!(
            "SELECT 1 FROM pg_database WHERE datname = '{scratch}'"
        )),
        Vec::<String>::new(),
        "scratch database left behind"
    );
    assert_eq!(db.applied(), vec![1, 2], "the target itself is untouched");

    db.write_migration(
        "0004_add_ingestion_run_errors.down.sql",
        "DROP TABLE this_table_does_not_exist;",
    );
    let (r, it) = check(&db, "local-testing");
    r.code(1);
    assert_eq!(it["state"], "failed");
    let evidence = it["evidence"].as_str().unwrap();
    assert!(
        evidence.contains("rehearsal failed") && evidence.contains("this_table_does_not_exist"),
        "{evidence}"
    );
    assert_eq!(db.applied(), vec![1, 2]);
}

#[test]
fn backup_and_notification_checks_use_the_configured_commands_else_need_confirmation() {
    let db = TestDb::with_demo_migrations();
    write_config(&db, "staging", "", "");
    let (_, it) = check(&db, "backup");
    assert_eq!(it["state"], "unverified");
    assert!(
        it["evidence"]
            .as_str()
            .unwrap()
            .contains("archive_mode=off"),
        "{it}"
    );
    let (_, it) = check(&db, "team-notified");
    assert_eq!(it["state"], "unverified");

    write_config(
        &db,
        "staging",
        "",
        "[checklists]\nbackup_command = \"echo 2001-01-01T00:00:00Z\"\nnotify_command = \"echo told $PGSHIFT_TARGET about $PGSHIFT_CHECKLIST; exit 3\"\n",
    );
    let (_, it) = check(&db, "backup");
    assert_eq!(it["state"], "failed");
    assert!(it["evidence"].as_str().unwrap().contains("too old"), "{it}");
    let (_, it) = check(&db, "team-notified");
    assert_eq!(it["state"], "failed");
    assert!(
        it["evidence"].as_str().unwrap().contains("exited 3"),
        "{it}"
    );

    write_config(
        &db,
        "staging",
        "",
        "[checklists]\nbackup_command = \"date +%s\"\nbackup_max_age = \"1h\"\nnotify_command = \"echo told $PGSHIFT_TARGET about $PGSHIFT_CHECKLIST\"\n",
    );
    let (_, it) = check(&db, "backup");
    assert_eq!(it["state"], "passed", "{it}");
    let (_, it) = check(&db, "team-notified");
    assert_eq!(it["state"], "passed");
    assert!(
        it["evidence"]
            .as_str()
            .unwrap()
            .contains("told main about pre-deploy"),
        "{it}"
    );
}

#[test]
fn post_deploy_verification_checks_health_head_invalid_indexes_and_backfills() {
    let db = TestDb::with_demo_migrations();
    write_config(&db, "staging", "", "");
    let r = run_cfg(&db, &["--json", "checklist", "post-deploy", "--run-checks"]);
    r.code(1);
    let doc = r.json();
    assert_eq!(item(&doc, "health")["state"], "failed");
    assert_eq!(item(&doc, "at-head")["state"], "failed");
    assert_eq!(item(&doc, "no-invalid-indexes")["state"], "passed");
    assert_eq!(item(&doc, "backfills")["state"], "passed");
    assert_eq!(item(&doc, "backfills")["evidence"], "no backfills ran");

    run_cfg(&db, &["up"]).ok();
    let r = run_cfg(&db, &["--json", "checklist", "post-deploy", "--run-checks"]);
    r.ok();
    assert_eq!(r.json()["result"]["state"], "passed");

    // A backfill still running and an INVALID index fail a fresh run.
    db.exec("INSERT INTO pgshift_backfill_runs (name, state, batch_size, operator) VALUES ('hashes', 'running', 100, 't')");
    db.exec("CREATE TABLE dup (x int); INSERT INTO dup VALUES (1), (1);");
    block_on(async {
        let c = db.client().await;
        assert!(
            c.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY dup_x ON dup (x)")
                .await
                .is_err()
        );
    });
    let r = run_cfg(&db, &["--json", "checklist", "post-deploy", "--run-checks"]);
    r.code(1);
    let doc = r.json();
    assert!(
        item(&doc, "no-invalid-indexes")["evidence"]
            .as_str()
            .unwrap()
            .contains("dup_x")
    );
    assert!(
        item(&doc, "backfills")["evidence"]
            .as_str()
            .unwrap()
            .contains("hashes running")
    );
}

// ---------------------------------------------------------------- recorded runs and the gate

/// A short pre-deploy checklist (one automatic item, one by hand) in config/checklists/.
fn short_pre_deploy(db: &TestDb) {
    let dir = db.dir.path().join("config").join("checklists");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pre-deploy.toml"),
        "name = \"pre-deploy\"\ntitle = \"Short pre-deploy\"\n[[items]]\nid = \"rollback-plan\"\ntext = \"Rollback plan prepared\"\ncheck = \"rollback_plan\"\n[[items]]\nid = \"team-notified\"\ntext = \"Team notification sent\"\n",
    )
    .unwrap();
}

#[test]
fn checklist_runs_are_recorded_with_who_and_evidence_and_resume_where_they_stopped() {
    let db = TestDb::with_demo_migrations();
    write_config(&db, "staging", "", "");
    let r = run_cfg(&db, &["--json", "checklist", "pre-deploy", "--run-checks"]);
    r.code(1);
    let doc = r.json();
    let run_id = doc["result"]["run_id"].as_i64().unwrap();
    assert_eq!(item(&doc, "backup")["state"], "unverified");
    assert_eq!(item(&doc, "rollback-plan")["state"], "passed");
    assert!(
        item(&doc, "rollback-plan")["operator"]
            .as_str()
            .unwrap()
            .contains('@')
    );

    // Confirm and skip by hand; both need their text.
    run_cfg(&db, &["checklist", "pre-deploy", "--confirm", "backup"]).code(2);
    run_cfg(
        &db,
        &[
            "checklist",
            "pre-deploy",
            "--confirm",
            "backup",
            "--note",
            "snapshot b-2041",
        ],
    )
    .code(1);
    run_cfg(
        &db,
        &[
            "checklist",
            "pre-deploy",
            "--skip",
            "team-notified",
            "--reason",
            "staging only",
        ],
    )
    .code(1);

    // Resume: checks run again only for items not done; the run id stays.
    let r = run_cfg(&db, &["--json", "checklist", "pre-deploy", "--run-checks"]);
    let doc = r.json();
    assert_eq!(doc["result"]["run_id"].as_i64().unwrap(), run_id);
    assert_eq!(item(&doc, "backup")["state"], "confirmed");
    assert_eq!(item(&doc, "backup")["evidence"], "snapshot b-2041");
    assert_eq!(item(&doc, "team-notified")["state"], "skipped");
    let rows = db.column(&format!(
        "SELECT item || ':' || count(*) FROM pgshift_checklist_runs WHERE run_id = {run_id} GROUP BY item ORDER BY item"
    ));
    assert_eq!(
        rows,
        vec![
            "backup:2",
            "committed:2",
            "local-testing:1",
            "rollback-plan:1",
            "team-notified:2"
        ],
        "passed and confirmed items are not re-run"
    );
    // --new starts over.
    let r = run_cfg(&db, &["--json", "checklist", "pre-deploy", "--new"]);
    r.code(10);
    let doc = r.json();
    assert_ne!(doc["result"]["run_id"].as_i64().unwrap(), run_id);
    assert_eq!(doc["result"]["state"], "in_progress");
    assert!(
        doc["result"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["state"] == "pending")
    );
    // The overview lists every checklist with its newest run.
    let list = run_cfg(&db, &["--json", "checklist"]);
    let list = list.ok().json();
    let states: Vec<(&str, &str)> = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states.len(), 7);
    assert_eq!(states[0], ("pre-deploy", "in_progress"));
    assert_eq!(states[1], ("deploy-sequence", "not_started"));
}

#[test]
fn up_on_production_refuses_without_a_recent_passed_pre_deploy_checklist_when_required() {
    let db = TestDb::with_demo_migrations();
    short_pre_deploy(&db);
    write_config(&db, "production", "require_checklist_hours = 4", "");
    let r = run_cfg(&db, &["up"]);
    r.code(1)
        .stderr_has("no pre-deploy checklist passed on main (production) in the last 4h");
    assert_eq!(db.applied(), Vec::<u32>::new());

    let r = run_cfg(&db, &["checklist", "pre-deploy", "--run-checks"]);
    r.code(10)
        .stdout_has("next: pgshift checklist pre-deploy --confirm team-notified");
    run_cfg(
        &db,
        &[
            "checklist",
            "pre-deploy",
            "--confirm",
            "team-notified",
            "--note",
            "#deploys 14:02",
        ],
    )
    .ok();
    run_cfg(&db, &["--json", "checklist", "pre-deploy"]).ok();
    run_cfg(&db, &["up"]).ok();
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);

    // New migration files: the checklist that passed covered head 0005, not 0006.
    db.write_migration(
        "0006_add_x.up.sql",
        "ALTER TABLE documents ADD COLUMN x int;",
    );
    db.write_migration(
        "0006_add_x.down.sql",
        "ALTER TABLE documents DROP COLUMN x;",
    );
    run_cfg(&db, &["up"])
        .code(1)
        .stderr_has("covered other migration files than the ones being deployed (head 0006)");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    run_cfg(&db, &["checklist", "pre-deploy", "--new", "--run-checks"]).code(10);
    run_cfg(
        &db,
        &[
            "checklist",
            "pre-deploy",
            "--confirm",
            "team-notified",
            "--note",
            "#deploys 15:10",
        ],
    )
    .ok();
    run_cfg(&db, &["up"]).ok();
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5, 6]);
}

/// The last audit row's action, outcome and the checklist gate's state in its detail.
fn last_gate_row(db: &TestDb) -> String {
    db.scalar(
        "SELECT action || ' ' || outcome || ' ' || coalesce((SELECT g->>'state' FROM jsonb_array_elements(detail->'gates') g WHERE g->>'gate' = 'checklist'), 'none') || ' ' || coalesce(detail->>'caller', 'none') FROM pgshift_events ORDER BY id DESC LIMIT 1",
    )
}

#[test]
fn every_front_end_refuses_a_production_upgrade_without_a_fresh_checklist_and_audits_it() {
    let db = TestDb::with_demo_migrations();
    short_pre_deploy(&db);
    write_config(&db, "production", "require_checklist_hours = 4", "");
    run_cfg(&db, &["up"])
        .code(1)
        .stderr_has("no pre-deploy checklist passed on main (production) in the last 4h");
    assert_eq!(last_gate_row(&db), "up refused refused cli");

    // serve's retry: the same gate, refused with 403 and audited.
    let mut c = pgshift_bare(db.dir.path());
    c.stdin(Stdio::null());
    let server = Server::start_with(c, Some("tok-0123456789abcdef"));
    let (code, body) = server.request(
        "POST",
        "/admin/migrations/retry",
        &["Authorization: Bearer tok-0123456789abcdef"],
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("no pre-deploy checklist passed"), "{body}");
    assert_eq!(last_gate_row(&db), "retry refused refused serve");
    drop(server);

    // startup: refused, so the application starts degraded (exit 1 with --strict).
    run_cfg(&db, &["startup", "--strict"])
        .code(1)
        .stdout_has(DEGRADED);
    assert_eq!(last_gate_row(&db), "startup refused refused startup");
    assert_eq!(db.applied(), Vec::<u32>::new(), "no front end ran anything");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pgshift_events WHERE outcome = 'refused'"),
        "3",
        "one audit row per refusal"
    );
}

#[test]
fn up_on_production_only_warns_when_the_checklist_is_not_required() {
    let db = TestDb::with_demo_migrations();
    write_config(&db, "production", "", "");
    run_cfg(&db, &["up"])
        .ok()
        .stderr_has("warning: no pre-deploy checklist passed on main (production) in the last 24h");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
}

// ---------------------------------------------------------------- serve

struct Server {
    child: std::process::Child,
    addr: String,
}

impl Server {
    fn start(db: &TestDb, token: Option<&str>) -> Server {
        Server::start_with(db.pgshift(), token)
    }

    /// `serve` from `c` (e.g. with the config in the test dir instead of --database-url).
    fn start_with(mut c: Command, token: Option<&str>) -> Server {
        c.args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            c.env("PGSHIFT_SERVE_TOKEN", t);
        }
        let mut child = c.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut addr = None;
        let mut line = String::new();
        while stderr.read_line(&mut line).unwrap() > 0 {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                addr = Some(rest.split_whitespace().next().unwrap().to_string());
                break;
            }
            line.clear();
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()).ok());
        Server {
            child,
            addr: addr.expect("serve did not report its address"),
        }
    }

    /// One raw HTTP/1.1 request: (status, body).
    fn request(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
        self.request_to(&self.addr, method, path, headers)
    }

    /// [`Server::request`] naming `host` in the `Host` header (as a browser would for a DNS name).
    fn request_to(&self, host: &str, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[test]
fn serve_health_migrations_page_and_retry_with_and_without_the_token() {
    let db = TestDb::with_demo_migrations();
    let server = Server::start(&db, Some("s3cret-token-0123456789"));
    let (code, body) = server.request("GET", "/health", &[]);
    assert_eq!(code, 200);
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["migrations"]["state"], "pending");

    let (code, body) = server.request("GET", "/admin/migrations", &["Accept: application/json"]);
    assert_eq!(code, 200);
    let m: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        m["migrations"]["pending"],
        serde_json::json!([1, 2, 3, 4, 5])
    );
    let (code, page) = server.request(
        "GET",
        "/admin/migrations",
        &["Accept: text/html,application/xhtml+xml"],
    );
    assert_eq!(code, 200);
    assert!(
        page.contains("<th>current</th><td>base</td>")
            && page.contains("<th>target (head)</th><td>0005</td>"),
        "{page}"
    );
    assert!(
        page.contains("Retry Migrations") && !page.contains("s3cret-token-0123456789"),
        "{page}"
    );

    let (code, body) = server.request("POST", "/admin/migrations/retry", &[]);
    assert_eq!(code, 401, "{body}");
    let (code, _) = server.request(
        "POST",
        "/admin/migrations/retry",
        &["Authorization: Bearer wrong"],
    );
    assert_eq!(code, 401);
    assert_eq!(
        db.applied(),
        Vec::<u32>::new(),
        "refused requests run nothing"
    );

    let (code, body) = server.request(
        "POST",
        "/admin/migrations/retry",
        &["Authorization: Bearer s3cret-token-0123456789"],
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    assert_eq!(db.events(), vec![("retry".to_string(), "ok".to_string())]);
    let (_, body) = server.request("GET", "/health", &[]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"],
        "ok"
    );
}

#[test]
fn serve_without_a_configured_token_disables_retry() {
    let db = TestDb::with_demo_migrations();
    let server = Server::start(&db, None);
    let (code, body) = server.request(
        "POST",
        "/admin/migrations/retry",
        &["Authorization: Bearer anything"],
    );
    assert_eq!(code, 403);
    assert!(
        body.contains("retry is disabled") && body.contains("PGSHIFT_SERVE_TOKEN"),
        "{body}"
    );
    let (_, page) = server.request("GET", "/admin/migrations", &["Accept: text/html"]);
    assert!(page.contains("Retry is disabled"), "{page}");
    assert_eq!(db.applied(), Vec::<u32>::new());
}

#[test]
fn serve_refuses_other_host_names_short_tokens_and_bad_listen_addresses() {
    let db = TestDb::with_demo_migrations();
    // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1.
    let server = Server::start(&db, Some("s3cret-token-0123456789"));
    let port = server.addr.rsplit_once(':').unwrap().1.to_string();
    for path in ["/health", "/admin/migrations"] {
        let (code, body) = server.request_to(&format!("evil.example:{port}"), "GET", path, &[]);
        assert_eq!(code, 421, "{path}: {body}");
        assert!(
            body.contains("DNS rebinding") && body.contains("[serve] hosts"),
            "{body}"
        );
    }
    let (code, _) = server.request_to(
        "evil.example",
        "POST",
        "/admin/migrations/retry",
        &["Authorization: Bearer s3cret-token-0123456789"],
    );
    assert_eq!(code, 421);
    assert_eq!(
        db.applied(),
        Vec::<u32>::new(),
        "a refused host runs nothing"
    );
    for ok_host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(
            server.request_to(&ok_host, "GET", "/health", &[]).0,
            200,
            "{ok_host}"
        );
    }
    drop(server);

    let short = run_cfg_env(
        &db,
        &[
            "--database-url",
            &db.url,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        &[("PGSHIFT_SERVE_TOKEN", "t0ken")],
    );
    short.code(2).stderr_has("at least 16 bytes");
    for listen in ["nonsense", "127.0.0.1:99999", "256.1.1.1:80", ":8080"] {
        db.run(&["serve", "--listen", listen])
            .code(2)
            .stderr_has("cannot listen on");
    }
}

#[test]
fn serve_retry_audit_row_names_the_caller_and_the_token_id_never_the_token() {
    let db = TestDb::with_demo_migrations();
    let token = "s3cret-token-0123456789";
    let server = Server::start(&db, Some(token));
    let (code, body) = server.request(
        "POST",
        "/admin/migrations/retry",
        &[&format!("Authorization: Bearer {token}")],
    );
    assert_eq!(code, 200, "{body}");
    let caller =
        db.scalar("SELECT detail->'requested_by' FROM pgshift_events WHERE action = 'retry'");
    let caller: serde_json::Value = serde_json::from_str(&caller).unwrap();
    assert!(
        caller["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{caller}"
    );
    assert_eq!(caller["token_id"], pgshift::serve::token_id(token));
    assert_eq!(caller["token_id"].as_str().unwrap().len(), 8);
    let row = db.scalar("SELECT t::text FROM pgshift_events t");
    assert!(!row.contains(token), "{row}");
}

// ---------------------------------------------------------------- library API

#[test]
fn migrate_on_startup_library_api_returns_typed_outcomes_and_strict_errors() {
    use pgshift::config::Environment;
    use pgshift::startup::{Config, Outcome, migrate_on_startup};
    let db = TestDb::with_demo_migrations();
    let cfg = Config::from_url(&db.url, db.migrations(), Environment::Development).unwrap();
    match block_on(migrate_on_startup(&cfg)).unwrap() {
        Outcome::Migrated {
            from, to, steps, ..
        } => {
            assert_eq!((from.0, to.0, steps), (0, 5, 5));
        }
        other => panic!("expected Migrated, got {other:?}"),
    }
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);

    db.write_migration(
        "0006_broken.up.sql",
        "ALTER TABLE missing_table ADD COLUMN y int;",
    );
    let outcome = block_on(migrate_on_startup(&cfg)).unwrap();
    assert!(outcome.is_degraded(), "{outcome:?}");
    assert_eq!(outcome.exit_code(false) as u8, 0);
    let strict = Config {
        strict: true,
        ..cfg.clone()
    };
    let err = block_on(migrate_on_startup(&strict)).unwrap_err();
    assert!(err.to_string().contains("missing_table"), "{err}");

    // DEV_CREATE_TABLES cannot fix SQL that fails: it rolls back and stays degraded.
    let dev = Config {
        dev_create_tables: true,
        ..cfg
    };
    match block_on(migrate_on_startup(&dev)).unwrap() {
        Outcome::Degraded {
            dev_create_tables: Some(why),
            ..
        } => assert!(why.contains("rolled back"), "{why}"),
        other => panic!("expected Degraded, got {other:?}"),
    }
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
}

#[test]
fn health_with_unreadable_migration_files_is_an_integrity_failure_and_serve_retry_reports_failures()
{
    let db = TestDb::with_demo_migrations();
    db.run(&["up"]).ok();
    db.write_migration(
        "0006_broken.up.sql",
        "ALTER TABLE missing_table ADD COLUMN y int;",
    );
    let server = Server::start(&db, Some("t0ken-t0ken-t0ken-t0ken"));
    let (code, body) = server.request(
        "POST",
        "/admin/migrations/retry",
        &["Authorization: Bearer t0ken-t0ken-t0ken-t0ken"],
    );
    assert_eq!(code, 500, "{body}");
    let b: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(b["sqlstate"], "42P01");
    assert!(b["error"].as_str().unwrap().contains("missing_table"));
    assert_eq!(
        db.events().last().unwrap(),
        &("retry".to_string(), "failed".to_string())
    );
    let (_, page) = server.request("GET", "/admin/migrations", &["Accept: text/html"]);
    assert!(
        page.contains("Last error") && page.contains("missing_table"),
        "{page}"
    );
    drop(server);

    std::fs::remove_dir_all(db.migrations()).unwrap();
    let r = db.run(&["--json", "health"]);
    r.code(5);
    let h = r.json();
    assert_eq!(h["result"]["migrations"]["state"], "failed");
    assert!(
        h["result"]["migrations"]["catalog_error"]
            .as_str()
            .unwrap()
            .contains("cannot read migrations directory")
    );
    assert_eq!(
        h["result"]["diagnosis"][0]["failure"],
        "missing_migration_files"
    );
}

#[test]
fn startup_that_cannot_get_the_runner_lock_is_recorded_once_and_health_names_the_holder() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    let holder = Holder::hold(
        &db,
        "SELECT pg_advisory_lock(hashtextextended('pgshift:runner:' || current_database(), 0))",
    );
    let run = db.run(&["--lock-wait", "300ms", "startup"]);
    run.ok();
    let lines = stdout_lines(&run);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].starts_with(FAILED) && lines[1].contains("runner lock"),
        "{lines:?}"
    );
    assert_eq!(lines[2], DEGRADED);
    run.stderr_has("runbook: Lock Conflicts")
        .stderr_has(&format!("pid {}", holder.pid));
    assert_eq!(
        db.events(),
        vec![
            ("up".to_string(), "ok".to_string()),
            ("startup".to_string(), "failed".to_string())
        ]
    );
    let h = db.run(&["--json", "health"]);
    h.code(1);
    let h = h.json();
    assert_eq!(h["result"]["migrations"]["state"], "failed");
    assert_eq!(h["result"]["diagnosis"][0]["failure"], "lock_conflict");
    drop(holder);
    assert_eq!(
        stdout_lines(db.run(&["startup"]).ok()),
        vec![RUNNING, COMPLETED]
    );
    db.run(&["health"]).ok();
}

// ---------------------------------------------------------------- startup log file

/// Every `*.log` under the test's data dir (PGSHIFT_DATA_DIR puts the logs in `<dir>/logs`).
fn log_text(db: &TestDb) -> String {
    let dir = db.dir.path().join("state").join("logs");
    let mut text = String::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.path().extension().is_some_and(|x| x == "log") {
            text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    text
}

#[test]
fn startup_logs_each_event_once() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    // 0004 waits on this lock: its retries are forwarded from the migration to startup's output.
    let holder = Holder::hold(&db, "LOCK TABLE documents IN ACCESS EXCLUSIVE MODE");
    let earlier = log_text(&db).len(); // the log file is per day: skip `up 0003`'s lines
    let run = db.run(&["startup", "--lock-timeout", "50ms", "--retries", "2"]);
    drop(holder);
    run.ok().stderr_has("attempt 1/2");
    let log = log_text(&db)[earlier..].to_string();
    for line in ["attempt 1/2", RUNNING, FAILED, DEGRADED] {
        assert_eq!(
            log.matches(line).count(),
            1,
            "`{line}` must be logged exactly once:\n{log}"
        );
    }
}
