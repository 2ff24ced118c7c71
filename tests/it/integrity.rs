//! History commits only if the step's SQL ran: client-side failures, transaction control hidden in
//! a migration, connections lost between the pipelined messages. Each case runs one step through
//! `apply::run_step` (the catalog would refuse most of these files before they get here, so the
//! guard below it is tested on its own), then checks history and schema against the message.

use std::time::Duration;

use pgshift::catalog::Revision;
use pgshift::config::Guard;
use pgshift::db::apply::{self, Durability, Prepared, Runner};
use pgshift::db::{Session, schema};
use pgshift::event::Reporter;
use pgshift::interrupt::Interrupt;
use pgshift::plan::{Direction, Step};

use crate::common::{Holder, TestDb, block_on, column_at, wait_until};

fn step(revision: u32, direction: Direction, sql: &str) -> Step {
    Step {
        revision: Revision(revision),
        name: "t".into(),
        direction,
        sql: sql.into(),
        no_transaction: false,
        checksum: 42,
        down: None,
        out_of_order: false,
    }
}

/// Run one step the way `up`/`down` do and return its error text (empty on success).
fn run_one(db: &TestDb, s: &Step, guard: &Guard) -> String {
    let conn = db.conn();
    block_on(async {
        let worker = Session::connect(&conn, "test").await.unwrap();
        let monitor = Session::connect(&conn, "test monitor").await.unwrap();
        let lock =
            pgshift::db::lock::acquire_runner(&worker, Duration::from_secs(5), &Reporter::silent())
                .await
                .unwrap();
        schema::ensure(&lock).await.unwrap();
        let prepared = Prepared::new(&worker).await.unwrap();
        let interrupt = Interrupt::none();
        let reporter = Reporter::silent();
        let runner = Runner {
            worker: &worker,
            monitor: &monitor,
            prepared: &prepared,
            guard,
            interrupt: &interrupt,
            reporter: &reporter,
            run: None,
        };
        match apply::run_step(&runner, s, Durability::Flush).await {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    })
}

fn stamp(db: &TestDb, version: u32) {
    db.exec(&format!(
        "CREATE TABLE IF NOT EXISTS refinery_schema_history(version int4 PRIMARY KEY, name VARCHAR(255), \
         applied_on VARCHAR(255), checksum VARCHAR(255));
         INSERT INTO refinery_schema_history VALUES ({version}, 't', 'now', '42')"
    ));
}

fn exists(db: &TestDb, table: &str) -> bool {
    db.scalar(&format!("SELECT to_regclass('{table}') IS NOT NULL")) == "t"
}

#[test]
fn sql_that_was_never_sent_leaves_history_untouched_up_and_down() {
    let db = TestDb::new();
    let err = run_one(
        &db,
        &step(
            1,
            Direction::Up,
            "CREATE TABLE nul_up (id int);\n-- a NUL: \0\n",
        ),
        &Guard::default(),
    );
    assert!(err.contains("was never sent"), "{err}");
    assert!(!err.contains("rolled back"), "{err}");
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert!(!exists(&db, "nul_up"));

    db.exec("CREATE TABLE keep (id int)");
    stamp(&db, 1);
    let err = run_one(
        &db,
        &step(1, Direction::Down, "DROP TABLE keep;\n-- \0\n"),
        &Guard::default(),
    );
    assert!(err.contains("was never sent"), "{err}");
    assert_eq!(db.applied(), vec![1]);
    assert!(exists(&db, "keep"));
}

#[test]
fn an_embedded_commit_then_a_failure_records_nothing_and_says_what_committed() {
    let db = TestDb::new();
    let err = run_one(
        &db,
        &step(
            1,
            Direction::Up,
            "CREATE TABLE before_commit (id int);\nCOMMIT;\nSELECT 1/0;\n",
        ),
        &Guard::default(),
    );
    assert_eq!(db.applied(), Vec::<u32>::new());
    // The part before its own COMMIT did commit: the message must not claim a rollback.
    assert!(exists(&db, "before_commit"));
    assert!(err.contains("ended pgshift's transaction itself"), "{err}");
    assert!(!err.contains("was rolled back"), "{err}");
}

#[test]
fn an_embedded_commit_or_rollback_without_error_records_nothing() {
    for (n, sql) in [
        "CREATE TABLE a1 (id int);\nCOMMIT;\nCREATE TABLE b1 (id int);",
        "CREATE TABLE a2 (id int);\nROLLBACK;\nCREATE TABLE b2 (id int);",
        "CREATE TABLE a3 (id int);\nROLLBACK;\nBEGIN;\nCREATE TABLE b3 (id int);",
        "CREATE TABLE a4 (id int);\nEND;",
    ]
    .iter()
    .enumerate()
    {
        let db = TestDb::new();
        let err = run_one(&db, &step(1, Direction::Up, sql), &Guard::default());
        assert_eq!(db.applied(), Vec::<u32>::new(), "case {n}: {sql}");
        assert!(
            err.contains("ended pgshift's transaction itself"),
            "case {n}: {err}"
        );
    }
    // Down: a ROLLBACK inside the down SQL keeps the history row.
    let db = TestDb::new();
    stamp(&db, 1);
    let err = run_one(
        &db,
        &step(1, Direction::Down, "ROLLBACK;\nSELECT 1;"),
        &Guard::default(),
    );
    assert!(err.contains("ended pgshift's transaction itself"), "{err}");
    assert_eq!(db.applied(), vec![1]);
}

#[test]
fn a_failing_statement_is_rolled_back_and_names_its_line() {
    let db = TestDb::new();
    db.exec("CREATE TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1)");
    let err = run_one(
        &db,
        &step(
            1,
            Direction::Up,
            "CREATE TABLE fresh (id int);\n\nINSERT INTO u VALUES (1);\n",
        ),
        &Guard::default(),
    );
    assert!(err.contains("(23505)"), "{err}");
    assert!(err.contains("was rolled back"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert!(!exists(&db, "fresh"));
}

/// Terminate the pgshift test worker once it runs a query containing `prefix`.
fn terminate_when_running(url: String, prefix: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let find = format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name LIKE 'pgshift test %' AND state = 'active' \
             AND query LIKE '%{prefix}%'"
        );
        wait_until(Duration::from_secs(20), prefix, || {
            !column_at(&url, &find).is_empty()
        });
        let pid = column_at(&url, &find).remove(0);
        column_at(&url, &format!("SELECT pg_terminate_backend({pid})"));
    })
}

#[test]
fn a_connection_terminated_during_the_history_insert_records_nothing() {
    let db = TestDb::new();
    stamp(&db, 99);
    // An uncommitted row with the same version: the insert waits for it after the SQL ran, the
    // moment between the messages.
    let holder = Holder::hold(
        &db,
        "INSERT INTO refinery_schema_history VALUES (1, 'other', 'now', '1')",
    );
    let guard = Guard {
        lock_timeout: Duration::from_secs(30),
        ..Guard::default()
    };
    let killer = terminate_when_running(db.url.clone(), "INSERT INTO refinery_schema_history");
    let err = run_one(
        &db,
        &step(1, Direction::Up, "CREATE TABLE between_msgs (id int);"),
        &guard,
    );
    killer.join().unwrap();
    drop(holder);
    assert!(err.contains("connection was lost"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(db.applied(), vec![99]);
    assert!(!exists(&db, "between_msgs"));
}

#[test]
fn a_connection_terminated_during_the_sql_records_nothing() {
    let db = TestDb::new();
    let killer = terminate_when_running(db.url.clone(), "CREATE TABLE during_sql");
    let err = run_one(
        &db,
        &step(
            1,
            Direction::Up,
            "CREATE TABLE during_sql (id int);\nSELECT pg_sleep(30);",
        ),
        &Guard::default(),
    );
    killer.join().unwrap();
    assert!(err.contains("connection was lost"), "{err}");
    assert!(err.contains("rolled back"), "{err}");
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert!(!exists(&db, "during_sql"));
}

// ---- The catalog refuses what cannot run as written (exit 5, nothing changed) ----

#[test]
fn up_refuses_nul_bytes_and_transaction_control_before_anything_runs() {
    let db = TestDb::new();
    db.write_migration("0001_ok.up.sql", "CREATE TABLE ok (id int);\n");
    std::fs::write(
        db.migrations().join("0002_nul.up.sql"),
        b"CREATE TABLE nul (id int);\n-- \0\n",
    )
    .unwrap();
    db.write_migration(
        "0003_commit.up.sql",
        "CREATE TABLE c (id int);\nCOMMIT;\nSELECT 1/0;\n",
    );
    let r = db.run(&["up", "--allow-lint"]);
    r.code(5)
        .stderr_has("0002_nul.up.sql: a NUL byte at byte offset 30")
        .stderr_has("0003_commit.up.sql: line 2: `COMMIT` at top level");
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert!(!exists(&db, "ok"));
    db.run(&["status", "--check"]).code(5);
}

#[test]
fn unreadable_entries_named_like_migrations_are_all_errors() {
    let db = TestDb::new();
    db.write_migration("0001_ok.up.sql", "CREATE TABLE ok (id int);\n");
    std::os::unix::fs::symlink(
        "/nonexistent/0002.sql",
        db.migrations().join("0002_dangling.up.sql"),
    )
    .unwrap();
    std::fs::create_dir(db.migrations().join("0003_dir.up.sql")).unwrap();
    std::os::unix::fs::symlink(
        db.migrations().join("0003_dir.up.sql"),
        db.migrations().join("0003_dir.down.sql"),
    )
    .unwrap();
    let r = db.run(&["status"]);
    r.code(5)
        .stderr_has("0002_dangling.up.sql: is a symlink to /nonexistent/0002.sql")
        .stderr_has("0003_dir.up.sql: is a directory")
        .stderr_has("0003_dir.down.sql: is a symlink to");
    db.run(&["up"]).code(5);
    assert_eq!(db.applied(), Vec::<u32>::new());
}

// ---- Interrupted runs leave a trace; the lock does not outlive a killed client ----

/// A catalog whose 0002 sleeps: 0001 commits, 0002 is in flight when the test strikes.
fn sleepy_catalog(db: &TestDb, seconds: u32) {
    db.write_migration("0001_fast.up.sql", "CREATE TABLE fast (id int);\n");
    db.write_migration(
        "0002_slow.up.sql",
        &format!("CREATE TABLE slow (id int);\nSELECT pg_sleep({seconds});\n"),
    );
    db.write_migration("0003_never.up.sql", "CREATE TABLE never (id int);\n");
}

const SLOW_STEP: &str = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
     AND query LIKE 'CREATE TABLE slow%'";

/// Start `pgshift ARGS` and wait until 0002's SQL runs on the server.
fn spawn_until_slow_step(
    db: &TestDb,
    args: &[&str],
) -> (std::process::Child, crate::common::StderrLog) {
    let mut child = db
        .pgshift()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = crate::common::StderrLog::follow(child.stderr.take().unwrap());
    wait_until(Duration::from_secs(20), "the slow step to start", || {
        !db.column(SLOW_STEP).is_empty()
    });
    (child, stderr)
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// The newest audit row as `history --json` shows it.
fn last_event(db: &TestDb) -> serde_json::Value {
    let h = db.run(&["--json", "history"]);
    h.ok();
    h.json()["result"]["events"][0].clone()
}

#[test]
fn kill_9_mid_run_frees_the_lock_within_3s_and_shows_as_interrupted() {
    let db = TestDb::new();
    sleepy_catalog(&db, 30);
    let (mut child, _stderr) = spawn_until_slow_step(&db, &["up"]);
    // While it runs, the row says `started`, from -> plan, at the last committed step.
    let live = last_event(&db);
    assert_eq!(live["outcome"], "started", "{live}");
    assert_eq!(live["to_revision"], 1, "{live}");
    assert_eq!(live["detail"]["plan"]["to"], 3, "{live}");
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let killed = std::time::Instant::now();
    // client_connection_check_interval ends the orphaned pg_sleep, the rollback frees the lock:
    // a new run gets it within --lock-wait 3s (else exit 4). 0002 is not applied: make it quick.
    db.write_migration("0002_slow.up.sql", "CREATE TABLE slow (id int);\n");
    let r = db.run(&["up", "--lock-wait", "3s"]);
    r.ok();
    assert!(
        killed.elapsed() < Duration::from_secs(6),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(db.applied(), vec![1, 2, 3]);
    // The dead run is recorded as interrupted at 0001, with the new run after it.
    let h = db.run(&["--json", "history"]);
    let events = h.json()["result"]["events"].clone();
    assert_eq!(events[0]["outcome"], "ok", "{events}");
    assert_eq!(events[1]["outcome"], "interrupted", "{events}");
    assert_eq!(events[1]["to_revision"], 1, "{events}");
    assert_eq!(
        db.column("SELECT outcome FROM pgshift_events ORDER BY id"),
        vec!["interrupted", "ok"]
    );
}

#[test]
fn a_killed_run_reads_interrupted_in_history_and_health_before_any_new_run() {
    let db = TestDb::new();
    sleepy_catalog(&db, 30);
    let (mut child, _stderr) = spawn_until_slow_step(&db, &["up"]);
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(Duration::from_secs(5), "the orphaned step to end", || {
        db.column(SLOW_STEP).is_empty()
    });
    let e = last_event(&db);
    assert_eq!(e["outcome"], "interrupted", "{e}");
    assert_eq!(e["to_revision"], 1, "{e}");
    assert!(e["error"].as_str().unwrap().contains("interrupted"), "{e}");
    let text = db.run(&["history"]);
    text.ok().stdout_has("interrupted");
    let health = db.run(&["--json", "health"]);
    let h = health.json();
    assert_eq!(h["result"]["migrations"]["state"], "failed", "{h}");
    assert_eq!(
        h["result"]["migrations"]["last_error"]["outcome"], "interrupted",
        "{h}"
    );
    assert_eq!(db.applied(), vec![1]);
    assert!(!exists(&db, "slow"));
}

fn graceful_stop(sig: &str, reason: &str, args: &[&str]) {
    let db = TestDb::new();
    sleepy_catalog(&db, 60);
    let (mut child, stderr) = spawn_until_slow_step(&db, args);
    signal(&child, sig);
    let status = child.wait().unwrap();
    let action = args[0];
    if action == "up" {
        assert_eq!(status.code(), Some(1), "{}", stderr.text());
        assert!(
            stderr.text().contains(&format!("interrupt ({reason})")),
            "{}",
            stderr.text()
        );
    }
    assert_eq!(db.applied(), vec![1], "{}", stderr.text());
    assert!(!exists(&db, "slow") && !exists(&db, "never"));
    assert_eq!(
        db.column("SELECT action || ' ' || outcome FROM pgshift_events ORDER BY id"),
        vec![format!("{action} interrupted")]
    );
    let error = db.scalar("SELECT error FROM pgshift_events");
    assert!(
        error.contains(&format!("interrupted by {reason}")),
        "{error}"
    );
    assert!(error.contains("the database is at 0001"), "{error}");
    assert!(!error.contains("Statement timeout"), "{error}");
    assert_eq!(
        db.scalar("SELECT detail->>'interrupted_by' FROM pgshift_events"),
        reason
    );
}

#[test]
fn sigterm_mid_run_cancels_rolls_back_and_audits() {
    graceful_stop("-TERM", "SIGTERM", &["up"]);
}

#[test]
fn sighup_mid_run_cancels_rolls_back_and_audits() {
    graceful_stop("-HUP", "SIGHUP", &["up"]);
}

#[test]
fn sigterm_during_startup_cancels_rolls_back_and_audits() {
    graceful_stop("-TERM", "SIGTERM", &["startup"]);
}

#[test]
fn an_interrupted_concurrent_index_build_says_an_invalid_index_remains_and_the_next_run_drops_it() {
    let db = TestDb::new();
    db.exec("CREATE TABLE docs (id int); INSERT INTO docs SELECT generate_series(1, 100)");
    db.write_migration(
        "0001_idx.up.sql",
        "-- pgshift: no-transaction\nCREATE INDEX CONCURRENTLY docs_id_idx ON docs (id);\n",
    );
    // An open writer: the build waits for it after creating its (still INVALID) index.
    let writer = Holder::hold(&db, "INSERT INTO docs VALUES (0)");
    let mut child = db
        .pgshift()
        .args(["up"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = crate::common::StderrLog::follow(child.stderr.take().unwrap());
    wait_until(Duration::from_secs(20), "the build to wait", || {
        db.scalar("SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('docs_id_idx')")
            == "1"
    });
    signal(&child, "-TERM");
    child.wait().unwrap();
    let text = stderr.text();
    assert!(
        text.contains("leaves index docs_id_idx INVALID (not rolled back)"),
        "{text}"
    );
    assert!(!text.contains("0001 was rolled back"), "{text}");
    assert!(!text.contains("Statement timeout"), "{text}");
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('docs_id_idx')"),
        "f"
    );
    drop(writer);
    db.run(&["up"]).ok();
    assert_eq!(
        db.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('docs_id_idx')"),
        "t"
    );
}

// ---- Faults of the server: read-only, missing privilege, restart, disk full ----

#[test]
fn a_read_only_database_refuses_the_run_before_any_step_and_says_why() {
    let db = TestDb::new();
    db.write_migration("0001_a.up.sql", "CREATE TABLE a (id int);\n");
    db.run(&["up"]).ok();
    db.write_migration("0002_b.up.sql", "CREATE TABLE b (id int);\n");
    db.exec(&format!(
        "ALTER DATABASE {} SET default_transaction_read_only = on",
        db.name
    ));
    let r = db.run(&["up"]);
    r.code(1)
        .stderr_has("read-only transaction (25006)")
        .stderr_has("Point the target at the primary");
    db.exec(&format!(
        "BEGIN READ WRITE; ALTER DATABASE {} RESET default_transaction_read_only; COMMIT",
        db.name
    ));
    assert_eq!(db.applied(), vec![1]);
    assert!(!exists(&db, "b"));
}

#[test]
fn a_role_without_create_fails_the_step_rolls_it_back_and_names_the_role() {
    let db = TestDb::new();
    db.write_migration("0001_a.up.sql", "CREATE TABLE a (id int);\n");
    db.run(&["up"]).ok();
    let role = format!("{}_app", db.name);
    db.exec(&format!(
        "CREATE ROLE {role} LOGIN;
         GRANT CONNECT ON DATABASE {db} TO {role};
         GRANT USAGE ON SCHEMA public TO {role};
         GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         ALTER TABLE refinery_schema_history OWNER TO {role};
         ALTER TABLE pgshift_events OWNER TO {role};
         ALTER TABLE pgshift_backfill_runs OWNER TO {role};
         ALTER TABLE pgshift_checklist_runs OWNER TO {role};",
        db = db.name
    ));
    let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
    let up_as_role = || {
        crate::common::Run::from(
            crate::common::pgshift_bare(db.dir.path())
                .args(["--database-url", &url, "--migrations"])
                .arg(db.migrations())
                .arg("up")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    };
    // Without CREATE on the schema, nothing can start: refused before any step.
    db.write_migration("0002_b.up.sql", "ALTER TABLE a ADD COLUMN b int;\n");
    up_as_role()
        .code(1)
        .stderr_has("permission denied for schema public (42501)")
        .stderr_has("GRANT CREATE ON SCHEMA public");
    assert_eq!(db.applied(), vec![1]);
    // With CREATE but not owning the table it alters: the step fails and rolls back.
    db.exec(&format!("GRANT CREATE ON SCHEMA public TO {role}"));
    up_as_role()
        .code(1)
        .stderr_has("must be owner of table a (42501)")
        .stderr_has("0002 was rolled back")
        .stderr_has("statement at line 1: ALTER TABLE a ADD COLUMN b int")
        .stderr_has("Permission denied");
    assert_eq!(db.applied(), vec![1]);
    assert_eq!(
        db.column("SELECT outcome || ' ' || db_role FROM pgshift_events ORDER BY id"),
        vec!["ok postgres".to_string(), format!("failed {role}")]
    );
    db.exec(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

/// `pgshift ARGS` against a fault cluster's `postgres` database.
fn on_cluster(
    c: &crate::common::fault_cluster::FaultCluster,
    dir: &std::path::Path,
) -> std::process::Command {
    let mut cmd = crate::common::pgshift_bare(dir);
    cmd.args(["--database-url", &c.url("postgres"), "--migrations"])
        .arg(dir.join("migrations"))
        .stdin(std::process::Stdio::null());
    cmd
}

#[test]
fn a_server_restart_mid_step_rolls_it_back_and_the_run_reads_interrupted() {
    let c = crate::common::fault_cluster::FaultCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("0001_fast.up.sql"), "CREATE TABLE fast (id int);\n").unwrap();
    std::fs::write(
        m.join("0002_slow.up.sql"),
        "CREATE TABLE slow (id int);\nSELECT pg_sleep(60);\n",
    )
    .unwrap();
    let child = on_cluster(&c, dir.path())
        .arg("up")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the slow step", || {
        !c.column("SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE TABLE slow%'")
            .is_empty()
    });
    c.restart_fast();
    let r = crate::common::Run::from(child.wait_with_output().unwrap());
    r.code(3)
        .stderr_has("(57P01)")
        .stderr_has("0002 was rolled back");
    assert!(!r.stderr.contains("Connection timeout"), "{}", r.stderr);
    assert_eq!(
        c.column("SELECT version::text FROM refinery_schema_history ORDER BY 1"),
        vec!["1"]
    );
    assert_eq!(c.column("SELECT to_regclass('slow') IS NULL")[0], "t");
    // The monitor died with the server: the row could not be finished, and reads interrupted.
    let h = crate::common::Run::from(
        on_cluster(&c, dir.path())
            .args(["--json", "history"])
            .output()
            .unwrap(),
    );
    let e = h.json()["result"]["events"][0].clone();
    assert_eq!(e["outcome"], "interrupted", "{e}");
    assert_eq!(e["to_revision"], 1, "{e}");
    std::fs::write(m.join("0002_slow.up.sql"), "CREATE TABLE slow (id int);\n").unwrap();
    crate::common::Run::from(on_cluster(&c, dir.path()).arg("up").output().unwrap()).ok();
    assert_eq!(
        c.column("SELECT outcome FROM pgshift_events ORDER BY id"),
        vec!["interrupted", "ok"]
    );
}

/// A small tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: std::path::PathBuf, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(&at).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        std::process::Command::new("chown")
            .arg("postgres:")
            .arg(&at)
            .status()
            .ok();
        Some(Tmpfs(at))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status()
            .ok();
    }
}

#[test]
fn disk_full_fails_the_step_rolls_it_back_and_gives_the_disk_space_advice() {
    let c = crate::common::fault_cluster::FaultCluster::start();
    let Some(tiny) = Tmpfs::mount(c.dir.join("tiny"), "1m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs CAP_SYS_ADMIN)");
        return;
    };
    c.column(&format!(
        "CREATE TABLESPACE tiny LOCATION '{}'",
        tiny.0.display()
    ));
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("0001_a.up.sql"), "CREATE TABLE a (id int);\n").unwrap();
    std::fs::write(
        m.join("0002_big.up.sql"),
        "CREATE TABLE big (v text) TABLESPACE tiny;\n\
         INSERT INTO big SELECT repeat('x', 500) FROM generate_series(1, 20000);\n",
    )
    .unwrap();
    let r = crate::common::Run::from(on_cluster(&c, dir.path()).arg("up").output().unwrap());
    r.code(1)
        .stderr_has("No space left on device")
        .stderr_has("(53100)")
        .stderr_has("0002 was rolled back")
        .stderr_has("statement at line 2: INSERT INTO big")
        .stderr_has("Disk space");
    assert_eq!(
        c.column("SELECT version::text FROM refinery_schema_history ORDER BY 1"),
        vec!["1"]
    );
    assert_eq!(
        c.column("SELECT outcome FROM pgshift_events ORDER BY id"),
        vec!["failed"]
    );
}

#[test]
fn a_connection_cut_while_committing_says_the_outcome_is_unknown() {
    let c = crate::common::fault_cluster::FaultCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    // A deferred trigger makes COMMIT itself slow: the moment to cut the connection.
    std::fs::write(
        m.join("0001_slow_commit.up.sql"),
        "CREATE TABLE t (id int);\n\
         CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$\n\
         BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;\n\
         CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED\n\
         FOR EACH ROW EXECUTE FUNCTION slow_commit();\n\
         INSERT INTO t VALUES (1);\n",
    )
    .unwrap();
    let child = on_cluster(&c, dir.path())
        .args(["up", "--allow-lint"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let committing = "SELECT pid FROM pg_stat_activity WHERE query = 'COMMIT' AND state = 'active'";
    wait_until(Duration::from_secs(20), "COMMIT to run", || {
        !c.column(committing).is_empty()
    });
    // SIGKILL the backend: the server restarts without a word to the client.
    let pid = c.column(committing).remove(0);
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    let r = crate::common::Run::from(child.wait_with_output().unwrap());
    r.code(3)
        .stderr_has("the connection was lost while committing 0001")
        .stderr_has("check `pgshift status`");
    assert!(!r.stderr.contains("rolled back"), "{}", r.stderr);
    // It did not commit (crash recovery discards it); only the database could tell.
    let count = "SELECT count(*) FROM refinery_schema_history";
    wait_until(Duration::from_secs(30), "crash recovery", || {
        c.try_column(count).is_ok()
    });
    assert_eq!(c.column(count)[0], "0");
}
