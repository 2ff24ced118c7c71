//! Production safety against real PostgreSQL: lint before apply, no-transaction migrations and
//! INVALID indexes, guarded retries naming the blocker, --terminate-blockers-after, and each
//! diagnosed failure class produced for real.

use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;

const LONG: Duration = Duration::from_secs(60);

/// A pgshift process whose stderr can be watched while it runs.
struct Live {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Live {
    fn spawn(db: &TestDb, args: &[&str]) -> Live {
        let mut child = db
            .pgshift()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Live {
            child,
            stderr,
            reader,
        }
    }

    fn stderr_has(&self, needle: &str) -> bool {
        self.stderr.lock().unwrap().contains(needle)
    }

    fn wait_for(&self, needle: &str) {
        wait_until(LONG, needle, || self.stderr_has(needle));
    }

    fn finish(mut self) -> Run {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

fn audit_detail(db: &TestDb, action: &str, path: &str) -> String {
    db.scalar(&format!(
        "SELECT coalesce(detail #>> '{{{path}}}', 'NULL') FROM pgshift_events WHERE action = '{action}' ORDER BY id DESC LIMIT 1"
    ))
}

fn remove_demo(db: &TestDb, stem: &str) {
    for side in ["up", "down"] {
        std::fs::remove_file(db.migrations().join(format!("{stem}.{side}.sql"))).ok();
    }
}

// ---------------------------------------------------------------- lint

#[test]
fn up_refuses_lint_errors_touches_nothing_and_allow_lint_is_audited() {
    let db = TestDb::with_demo_migrations();
    db.write_migration(
        "0006_index_title.up.sql",
        "CREATE INDEX documents_title_idx ON documents (title);\n",
    );
    db.write_migration(
        "0006_index_title.down.sql",
        "DROP INDEX documents_title_idx;\n",
    );
    let refused = db.run(&["up"]);
    refused
        .code(1)
        .stderr_has("require-concurrent-index-creation")
        .stderr_has("0006 line 1");
    assert_eq!(
        db.applied(),
        Vec::<u32>::new(),
        "nothing may run when lint refuses"
    );
    assert_eq!(db.scalar("SELECT to_regclass('documents') IS NULL"), "t");

    let json = db.run(&["up", "--json"]);
    json.code(1);
    assert_eq!(json.json()["error"]["kind"], "refused");

    db.run(&["up", "--allow-lint"]).ok();
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(audit_detail(&db, "up", "lint,allow_lint_flag"), "true");
    assert_eq!(audit_detail(&db, "up", "lint,errors_overridden"), "1");
    assert_eq!(
        audit_detail(&db, "up", "lint,findings,0,rule"),
        "require-concurrent-index-creation"
    );
}

#[test]
fn allow_directive_lets_up_run_and_status_plan_and_audit_report_it() {
    let db = TestDb::with_demo_migrations();
    db.write_migration(
        "0006_drop_origin.up.sql",
        "-- pgshift: allow ban-drop-column origin is unused since release 41\nALTER TABLE documents DROP COLUMN origin;\n",
    );
    let status = db.run(&["status", "--json"]).json();
    let lint = &status["result"]["lint"];
    let finding = lint
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["findings"].as_array().unwrap().clone())
        .find(|f| f["rule"] == "ban-drop-column")
        .expect("status lints pending migrations");
    assert_eq!(finding["allowed"], "origin is unused since release 41");
    assert_eq!(finding["line"], 2);
    db.run(&["status"])
        .ok()
        .stdout_has("allowed because: origin is unused since release 41");
    let plan = db.run(&["plan", "up", "--json"]).json();
    assert_eq!(plan["result"]["steps"].as_array().unwrap().len(), 6);
    assert!(
        plan["result"]["lint"]
            .to_string()
            .contains("ban-drop-column")
    );

    db.run(&["up"]).ok();
    assert_eq!(audit_detail(&db, "up", "lint,allow_lint_flag"), "false");
    assert_eq!(
        audit_detail(&db, "up", "lint,findings,0,allowed"),
        "origin is unused since release 41"
    );
}

#[test]
fn lint_defaults_to_pending_and_falls_back_to_the_catalog_offline() {
    let db = TestDb::with_demo_migrations();
    db.write_migration(
        "0006_rewrite.up.sql",
        "UPDATE documents SET content = '';\n",
    );
    let pending = db.run(&["lint", "--json"]);
    pending.code(1);
    let doc = pending.json();
    assert_eq!(doc["result"]["scope"], "pending");
    assert_eq!(doc["result"]["errors"], 1);
    assert_eq!(doc["result"]["migrations"].as_array().unwrap().len(), 6);

    std::fs::remove_file(db.migrations().join("0006_rewrite.up.sql")).unwrap();
    db.run(&["up"]).ok();
    db.run(&["lint"])
        .ok()
        .stdout_has("nothing to lint: no pending migrations");

    // No database configured: the whole catalog, offline.
    let offline = Run::from(
        pgshift_bare(db.dir.path())
            .args([
                "--migrations",
                db.migrations().to_str().unwrap(),
                "lint",
                "--json",
            ])
            .output()
            .unwrap(),
    );
    offline.ok();
    let doc = offline.json();
    assert_eq!(doc["result"]["scope"], "catalog");
    assert_eq!(doc["result"]["migrations"].as_array().unwrap().len(), 5);

    // Configured but unreachable: the catalog, saying why.
    let unreachable = Run::from(
        pgshift_bare(db.dir.path())
            .args([
                "--database-url",
                "postgres://postgres@127.0.0.1:1/x",
                "--migrations",
            ])
            .arg(db.migrations())
            .args(["lint", "--json"])
            .output()
            .unwrap(),
    );
    unreachable.ok();
    assert!(
        unreachable.json()["result"]["note"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
}

#[test]
fn lint_files_names_rule_line_why_and_fix_and_every_rule_is_listed() {
    let db = TestDb::new();
    db.write_migration(
        "0001_bad.up.sql",
        "-- tables\nALTER TABLE t ALTER COLUMN c TYPE bigint;\nVACUUM FULL t;\n",
    );
    let run = db.run(&[
        "lint",
        db.migrations().join("0001_bad.up.sql").to_str().unwrap(),
    ]);
    run.code(1)
        .stdout_has("line 2    ERROR    changing-column-type")
        .stdout_has("line 3    ERROR    vacuum-full-or-cluster")
        .stdout_has("why: ")
        .stdout_has("fix: ");
    let rules = db.run(&["lint", "--rules", "--json"]).json();
    let names: Vec<String> = rules["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect();
    for rule in [
        "backfill-in-migration",
        "require-concurrent-index-creation",
        "adding-not-nullable-field",
    ] {
        assert!(
            names.iter().any(|n| n == rule),
            "{rule} missing from {names:?}"
        );
    }
}

/// Each positive example is real SQL PostgreSQL accepts (so the rules describe statements that
/// would really run), and lint flags it; its safe rewrite runs too and is not flagged.
#[test]
fn lint_examples_are_real_sql_flagged_and_their_rewrites_are_clean() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0004"]).ok();
    let cases: [(&str, &str, &str); 9] = [
        (
            "require-concurrent-index-creation",
            "CREATE INDEX d_title ON documents (title)",
            "CREATE TABLE n (id int); CREATE INDEX n_id ON n (id)",
        ),
        (
            "adding-field-with-default",
            "ALTER TABLE documents ADD COLUMN token uuid DEFAULT gen_random_uuid()",
            "ALTER TABLE documents ADD COLUMN token uuid",
        ),
        (
            "adding-not-nullable-field",
            "ALTER TABLE documents ALTER COLUMN source_id SET NOT NULL",
            "ALTER TABLE documents ADD CONSTRAINT s_nn CHECK (source_id IS NOT NULL) NOT VALID",
        ),
        (
            "constraint-missing-not-valid",
            "ALTER TABLE documents ADD CONSTRAINT t_len CHECK (length(title) < 1000)",
            "ALTER TABLE documents ADD CONSTRAINT t_len CHECK (length(title) < 1000) NOT VALID",
        ),
        (
            "changing-column-type",
            "ALTER TABLE documents ALTER COLUMN origin TYPE varchar(200)",
            "ALTER TABLE documents ADD COLUMN origin2 varchar(200)",
        ),
        (
            "renaming-column",
            "ALTER TABLE documents RENAME COLUMN origin TO origin_kind",
            "ALTER TABLE documents ADD COLUMN origin_kind text",
        ),
        (
            "disallowed-unique-constraint",
            "ALTER TABLE documents ADD CONSTRAINT d_title_key UNIQUE (title)",
            "ALTER TABLE documents ADD COLUMN note text",
        ),
        (
            "ban-drop-column",
            "ALTER TABLE documents DROP COLUMN origin",
            "ALTER TABLE documents ALTER COLUMN origin DROP DEFAULT",
        ),
        (
            "backfill-in-migration",
            "UPDATE documents SET origin = 'api'",
            "ALTER TABLE documents ALTER COLUMN origin SET DEFAULT 'api'",
        ),
    ];
    for (i, (rule, bad, good)) in cases.iter().enumerate() {
        for (sql, flagged) in [(bad, true), (good, false)] {
            db.exec(&format!("BEGIN; {sql}; ROLLBACK"));
            let file = format!("{:04}_case.up.sql", 100 + i * 2 + usize::from(flagged));
            std::fs::write(db.dir.path().join(&file), format!("{sql};\n")).unwrap();
            let run = db.run(&[
                "lint",
                "--json",
                db.dir.path().join(&file).to_str().unwrap(),
            ]);
            let text = run.json()["result"].to_string();
            assert_eq!(
                text.contains(&format!("\"rule\":\"{rule}\"")),
                flagged,
                "{rule} on {sql}: {text}"
            );
        }
    }
}

// ---------------------------------------------------------------- no-transaction

#[test]
fn failed_concurrent_index_leaves_invalid_index_reported_then_dropped_by_the_retry() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0005"]).ok();
    db.write_migration(
        "0006_unique_titles.up.sql",
        "-- pgshift: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS documents_created_idx ON documents (created_at);\nCREATE UNIQUE INDEX CONCURRENTLY documents_title_key ON documents (title);\n",
    );
    db.write_migration(
        "0006_unique_titles.down.sql",
        "-- pgshift: no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS documents_title_key;\n",
    );
    db.exec("INSERT INTO documents (title) VALUES ('same'), ('same')");

    let failed = db.run(&["up"]);
    failed
        .code(1)
        .stderr_has("23505")
        .stderr_has("statement at line 3")
        .stderr_has("statements before the failing one stay applied");
    assert_eq!(
        db.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'documents_created_idx'::regclass"
        ),
        "t",
        "the statement before the failing one stays applied"
    );
    assert_eq!(
        db.applied(),
        vec![1, 2, 3, 4, 5],
        "history only after every statement succeeded"
    );
    assert_eq!(
        db.scalar(
            "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'documents_title_key'::regclass"
        ),
        "t"
    );
    let status = db.run(&["status", "--json"]).json();
    assert_eq!(
        status["result"]["invalid_indexes"][0]["index"],
        "public.documents_title_key"
    );
    assert_eq!(status["result"]["invalid_indexes"][0]["table"], "documents");
    db.run(&["status"])
        .ok()
        .stdout_has("INVALID indexes")
        .stdout_has("public.documents_title_key on documents");

    db.exec(
        "DELETE FROM documents WHERE id = (SELECT max(id) FROM documents WHERE title = 'same')",
    );
    db.run(&["up"])
        .ok()
        .stderr_has("dropping INVALID index documents_title_key");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        db.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'documents_title_key'::regclass"
        ),
        "t"
    );
    assert_eq!(
        db.run(&["status", "--json"]).json()["result"]["invalid_indexes"],
        serde_json::json!([])
    );
    db.run(&["down", "--yes"]).ok();
    assert_eq!(
        db.scalar("SELECT to_regclass('documents_title_key') IS NULL"),
        "t"
    );
}

/// CREATE INDEX CONCURRENTLY waits for every transaction that writes the table. The runner lock is
/// a session lock on the worker and the monitor never sits in a transaction, so the only thing the
/// build waits for is the application's transaction: when it ends, the migration completes. The
/// wait blocks no app query, so it is not cut by lock_timeout (no rebuild per retry), and the
/// blocker is still reported.
#[test]
fn concurrent_index_under_the_runner_lock_waits_only_for_app_transactions() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0004"]).ok();
    let writer = Holder::hold(&db, "UPDATE documents SET title = title WHERE id = -1");
    let live = Live::spawn(&db, &["up", "--lock-timeout", "200ms", "--retries", "3"]);
    live.wait_for(&format!("waits for a lock held by pid {}", writer.pid));
    // Keep the app transaction open well past lock_timeout while the build waits.
    wait_until(LONG, "the index build to wait for 1 s", || {
        db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgshift up%'
               AND datname = current_database()
               AND wait_event_type = 'Lock' AND now() - state_change > interval '1 second'",
        ) == "1"
    });
    let idle_in_tx = db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgshift%'
           AND datname = current_database() AND state LIKE 'idle in transaction%'",
    );
    assert_eq!(
        idle_in_tx, "0",
        "no pgshift session may hold a transaction open during CONCURRENTLY"
    );
    // App reads and writes of the table go on while the build waits.
    db.exec("INSERT INTO documents (title) VALUES ('written during the build')");
    drop(writer);
    let run = live.finish();
    run.ok().stderr_has("test blocker");
    assert!(
        !run.stderr.contains("attempt 1/3"),
        "the build was not cut and retried:\n{}",
        run.stderr
    );
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        db.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'documents_source_id_idx'::regclass"
        ),
        "t"
    );
}

// ---------------------------------------------------------------- guarded retries

#[test]
fn retries_name_the_blocker_in_output_and_log_and_succeed_when_it_ends() {
    let db = TestDb::with_demo_migrations();
    remove_demo(&db, "0005_index_documents_concurrently");
    db.run(&["up", "0003"]).ok();
    let blocker = Holder::hold(&db, "SELECT count(*) FROM ingestion_runs");
    let live = Live::spawn(&db, &["up", "--lock-timeout", "100ms", "--retries", "50"]);
    live.wait_for("attempt 2/50");
    assert!(live.stderr_has(&format!(
        "pid {} (user postgres, test blocker, idle in transaction",
        blocker.pid
    )));
    assert!(live.stderr_has("SELECT count(*) FROM ingestion_runs"));
    drop(blocker);
    let run = live.finish();
    run.ok().stderr_has("0004 done in");
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
    let log_dir = db.dir.path().join("state");
    let log = read_logs(&log_dir);
    assert!(
        log.contains("test blocker"),
        "the log names the blocker:\n{log}"
    );
}

fn read_logs(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in walk(dir) {
        if entry.extension().is_some_and(|e| e == "log") {
            text.push_str(&std::fs::read_to_string(&entry).unwrap_or_default());
        }
    }
    text
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn lock_conflict_exhausts_retries_exits_4_names_the_blocker_and_changes_nothing() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    let blocker = Holder::hold(&db, "LOCK TABLE ingestion_runs IN ACCESS SHARE MODE");
    let run = db.run(&["up", "--lock-timeout", "150ms", "--retries", "2", "--json"]);
    run.code(4);
    let err = &run.json()["error"];
    assert_eq!(err["sqlstate"], "55P03");
    assert_eq!(err["diagnosis"], "lock_conflict");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(&format!("blocked by pid {}", blocker.pid))
    );
    assert_eq!(db.applied(), vec![1, 2, 3]);
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'error_text'"
        ),
        "0"
    );
    assert!(db.events().contains(&("up".into(), "failed".into())));
}

#[test]
fn terminate_blockers_after_ends_the_blocker_audits_it_and_completes() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    let blocker = Holder::hold(&db, "SELECT count(*) FROM ingestion_runs");
    let pid = blocker.pid;
    let run = db.run(&[
        "up",
        "--lock-timeout",
        "100ms",
        "--retries",
        "12",
        "--terminate-blockers-after",
        "700ms",
    ]);
    run.ok().stderr_has(&format!("terminated pid {pid}"));
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
        )),
        "0"
    );
    assert_eq!(
        audit_detail(&db, "terminate-blocker", "blocker,pid"),
        pid.to_string()
    );
    assert_eq!(
        audit_detail(&db, "terminate-blocker", "blocker,application"),
        "test blocker"
    );
    assert_eq!(
        db.scalar("SELECT outcome FROM pgshift_events WHERE action = 'terminate-blocker'"),
        "ok"
    );
    drop(blocker);
}

#[test]
fn without_terminate_flag_blockers_are_never_terminated() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    let blocker = Holder::hold(&db, "SELECT count(*) FROM ingestion_runs");
    db.run(&["up", "--lock-timeout", "100ms", "--retries", "3"])
        .code(4);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {}",
            blocker.pid
        )),
        "1"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pgshift_events WHERE action = 'terminate-blocker'"),
        "0"
    );
}

// ---------------------------------------------------------------- diagnoses

#[test]
fn permission_denied_is_diagnosed() {
    let db = TestDb::with_demo_migrations();
    let role = format!("{}_nocreate", db.name);
    db.exec(&format!(
        "CREATE ROLE {role} LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC"
    ));
    let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
    let run = Run::from(
        pgshift_bare(db.dir.path())
            .args(["--database-url", &url, "--migrations"])
            .arg(db.migrations())
            .args(["up", "--json"])
            .output()
            .unwrap(),
    );
    run.code(1);
    let err = &run.json()["error"];
    assert_eq!(err["sqlstate"], "42501");
    assert_eq!(err["diagnosis"], "permission_denied");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("GRANT CREATE ON SCHEMA")
    );
    db.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn read_only_database_is_diagnosed() {
    let db = TestDb::with_demo_migrations();
    db.exec(&format!(
        "ALTER DATABASE {} SET default_transaction_read_only = on",
        db.name
    ));
    let run = db.run(&["up", "--json"]);
    run.code(1);
    let err = &run.json()["error"];
    assert_eq!(err["sqlstate"], "25006");
    assert_eq!(err["diagnosis"], "read_only");
    db.run(&["status"]).ok().stdout_has("READ ONLY");
}

#[test]
fn statement_timeout_is_diagnosed_and_rolled_back() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0004"]).ok();
    remove_demo(&db, "0005_index_documents_concurrently");
    db.write_migration(
        "0005_slow.up.sql",
        "ALTER TABLE documents ADD COLUMN slow int;\nSELECT pg_sleep(5);\n",
    );
    let run = db.run(&["up", "--statement-timeout", "300ms", "--json"]);
    run.code(1);
    let err = &run.json()["error"];
    assert_eq!(err["sqlstate"], "57014");
    assert_eq!(err["diagnosis"], "statement_timeout");
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM information_schema.columns WHERE column_name = 'slow'"),
        "0"
    );
}

#[test]
fn deadlock_is_diagnosed() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0004"]).ok();
    remove_demo(&db, "0005_index_documents_concurrently");
    db.write_migration(
        "0005_two_tables.up.sql",
        "ALTER TABLE documents ADD COLUMN a int;\nALTER TABLE sources ADD COLUMN b int;\n",
    );
    // The app holds sources, pgshift takes documents and waits for sources, then the app reads
    // documents: a lock cycle PostgreSQL breaks by failing pgshift's step with 40P01.
    let app = deadlocking_app(&db);
    let run = db.run(&["up", "--lock-timeout", "20s", "--retries", "1", "--json"]);
    app.join().unwrap();
    run.code(4);
    let err = &run.json()["error"];
    assert_eq!(err["sqlstate"], "40P01");
    assert_eq!(err["diagnosis"], "deadlock");
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
}

fn deadlocking_app(db: &TestDb) -> std::thread::JoinHandle<()> {
    let conn = db.conn();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        block_on(async move {
            let (c, connection) = conn.pg.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            let (w, connection) = conn.pg.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            c.batch_execute("BEGIN; LOCK TABLE sources IN SHARE MODE")
                .await
                .unwrap();
            ready_tx.send(()).unwrap();
            // Wait until pgshift holds documents and waits for sources.
            let deadline = std::time::Instant::now() + LONG;
            loop {
                let waiting: i64 = w
                    .query_one(
                        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                         WHERE NOT l.granted AND a.application_name LIKE 'pgshift%'
                           AND a.datname = current_database()
                           AND l.relation = 'sources'::regclass",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if waiting > 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "pgshift never waited for sources"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Closes the cycle; whichever side the deadlock detector picks, ours ends.
            c.batch_execute("SELECT count(*) FROM documents").await.ok();
            c.batch_execute("ROLLBACK").await.ok();
        })
    });
    ready_rx.recv_timeout(LONG).unwrap();
    handle
}

#[test]
fn connection_refused_and_timeout_are_diagnosed() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Run::from(
        pgshift_bare(dir.path())
            .args([
                "--database-url",
                "postgres://postgres@127.0.0.1:1/x",
                "--migrations",
            ])
            .arg(repo().join("migrations"))
            .args(["status", "--json"])
            .output()
            .unwrap(),
    );
    refused.code(3);
    assert_eq!(refused.json()["error"]["diagnosis"], "connection_refused");

    // A listener that accepts TCP and never speaks PostgreSQL (a hung server or proxy).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/x?connect_timeout=1");
    let started = std::time::Instant::now();
    let timeout = Run::from(
        pgshift_bare(dir.path())
            .args(["--database-url", &url, "--migrations"])
            .arg(repo().join("migrations"))
            .args(["status", "--json"])
            .output()
            .unwrap(),
    );
    timeout.code(3);
    assert_eq!(timeout.json()["error"]["diagnosis"], "connection_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the handshake must be bounded"
    );
    drop(silent);
}

#[test]
fn disk_full_messages_map_to_the_disk_space_diagnosis() {
    // Filling the disk is not feasible here; the mapping from what the server says is checked.
    use pgshift::diagnosis::Diagnosis;
    use pgshift::error::DbFailure;
    let failure = |state: Option<&str>, message: &str| DbFailure {
        sqlstate: state.map(str::to_string),
        message: message.into(),
        detail: None,
        hint: None,
        line: None,
    };
    assert_eq!(
        Diagnosis::of(&failure(Some("53100"), "could not extend file")),
        Some(Diagnosis::DiskFull)
    );
    assert_eq!(
        Diagnosis::of(&failure(
            Some("XX000"),
            "could not write to file \"base/pgsql_tmp/x\": No space left on device"
        )),
        Some(Diagnosis::DiskFull)
    );
    assert_eq!(
        Diagnosis::of(&failure(Some("XX000"), "something else")),
        None
    );
}

// ---------------------------------------------------------------- runner lock held as a type

#[test]
fn an_audited_cancel_creates_pgshift_tables_only_under_the_runner_lock() {
    use pgshift::config::Environment;
    use pgshift::tui::app::Signal;
    use pgshift::tui::worker::signal_audited;
    let db = TestDb::new();
    let mut target =
        pgshift::startup::Config::from_url(&db.url, db.migrations(), Environment::Development)
            .unwrap()
            .target;
    target.lock_wait = Duration::from_millis(300);
    let gone = pgshift::db::blockers::Blocker {
        pid: 999_999,
        user: "app".into(),
        application: "worker".into(),
        state: "idle in transaction".into(),
        xact_age_s: Some(3.0),
        query: "UPDATE t SET x = 1".into(),
    };
    // Another runner holds the lock: the tables are missing, so the audit waits for it, then
    // gives up instead of creating them beside that run.
    let runner = Holder::hold(
        &db,
        "SELECT pg_advisory_xact_lock(hashtextextended('pgshift:runner:' || current_database(), 0))",
    );
    let err = block_on(signal_audited(&target, &gone, Signal::Cancel)).unwrap_err();
    assert!(err.to_string().contains("runner lock"), "{err}");
    assert_eq!(
        db.scalar("SELECT to_regclass('pgshift_events') IS NULL"),
        "t"
    );
    drop(runner);
    // Lock free: tables created under it, the failed cancel audited.
    let sent = block_on(signal_audited(&target, &gone, Signal::Cancel)).unwrap();
    assert_eq!(
        sent,
        pgshift::tui::app::Signalled::Gone,
        "pid 999999 does not exist"
    );
    assert_eq!(
        db.events(),
        vec![("cancel".to_string(), "failed".to_string())]
    );
}
